"""Using a model: its loss and accuracy on a split, and what ``nnref eval`` and ``nnref predict`` compute.

Everything here returns values (the CLI prints them): :func:`evaluate` for a model in memory,
:func:`evaluate_checkpoint` and :func:`predict_image` for a checkpoint on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import viz
from .checkpoint import load_checkpoint
from .config import TrainConfig, TrainingError, resolve_device
from .data import MEAN, STD, class_names, load_data
from .models import KNNClassifier, build_model

__all__ = ["evaluate", "load_model", "knn_chosen_k", "Evaluation", "evaluate_checkpoint", "Prediction",
           "predict_image", "load_image"]


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, fused: bool = True,
             batch_size: int = 4096) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and predictions (N,) of a parametric model on rows x (N, p) with labels y (N,)."""
    was_training = model.training
    model.eval()
    total, preds = 0.0, []
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i:i + batch_size])
        total += float(model.loss(logits, y[i:i + batch_size], fused=fused, reduction="sum"))
        preds.append(model.predictions(logits))
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=x.device)
    return total / max(x.shape[0], 1), float((pred == y).float().mean()) if len(y) else float("nan"), pred


def knn_chosen_k(state: dict) -> int:
    """The k a KNN run chose on validation (the one its ``accuracy/test`` was reported for)."""
    if state.get("best_k") is not None:
        return int(state["best_k"])
    results, ks = state.get("results") or {}, tuple(state["config"]["k"])
    if results and all(v.get("val_acc") == v.get("val_acc") for v in results.values()):  # no NaN: had validation
        return max(results, key=lambda k: (results[k]["val_acc"], -k))
    return ks[0]


def load_model(path, device="cpu", data_root=None, download: bool = False):
    """(model, config) of a checkpoint, on ``device``, in eval mode.

    A KNN checkpoint holds no records: they are re-read from MNIST, and the model votes with the k the
    run chose on validation.
    """
    state = load_checkpoint(path, map_location=device)
    cfg = TrainConfig.from_dict(state["config"])
    if cfg.model == "knn":
        data = load_data(cfg, device, data_root, download)
        return KNNClassifier(knn_chosen_k(state), cfg.metric).fit(data.train_x, data.train_y), cfg
    model = build_model(cfg.model, 784, 2 if cfg.binary else 10, cfg.hidden, cfg.activation)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise TrainingError(f"checkpoint {path} does not match a {cfg.model!r} model: {exc}") from None
    return model.to(device).eval(), cfg


@dataclass
class Evaluation:
    """Test-set result of a checkpoint: accuracy, the confusion matrix (rows: true class) and class names."""

    model: str
    accuracy: float
    correct: int
    total: int
    confusion: torch.Tensor
    class_names: list[str]
    k: int | None = None


def evaluate_checkpoint(path, data_root=None, download: bool = True, device: str = "auto") -> Evaluation:
    """Test accuracy and confusion matrix of a checkpoint (parametric or KNN)."""
    dev = resolve_device(device)
    model, cfg = load_model(path, dev, data_root, download)
    data = load_data(cfg, dev, data_root, download)
    if isinstance(model, KNNClassifier):
        pred = model.predict(data.test_x)
    else:
        _, _, pred = evaluate(model, data.test_x, data.test_y, fused=True)
    matrix = viz.confusion_matrix(data.test_y, pred, data.num_classes)
    correct, total = int(matrix.diag().sum()), int(matrix.sum())
    return Evaluation(cfg.model, correct / max(total, 1), correct, total, matrix, data.class_names,
                      model.k if isinstance(model, KNNClassifier) else None)


def load_image(path, invert: bool = True) -> torch.Tensor:
    """A grayscale image file → one normalised MNIST row (1, 784).

    The image is converted to grayscale and resized to 28×28.  MNIST digits are light on a dark
    background; with ``invert`` a picture whose border is mostly light (a dark digit on white paper) is
    inverted to match.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
            pixels = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(28, 28)
    except FileNotFoundError:
        raise TrainingError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise TrainingError(f"{path} is not a readable image ({type(exc).__name__}: {exc})") from None
    x = pixels.float() / 255.0
    border = torch.cat([x[0], x[-1], x[:, 0], x[:, -1]])
    if invert and float(border.mean()) > 0.5:
        x = 1.0 - x
    return ((x - MEAN) / STD).reshape(1, 784)


@dataclass
class Prediction:
    """The class probabilities of one image, in the order of ``class_names``."""

    probabilities: list[float]
    class_names: list[str]

    @property
    def best(self) -> int:
        return max(range(len(self.probabilities)), key=self.probabilities.__getitem__)


def predict_image(checkpoint, image, invert: bool = True) -> Prediction:
    """Classify one image file with a checkpoint (KNN: the vote shares of the chosen k)."""
    x = load_image(image, invert)
    model, cfg = load_model(checkpoint, "cpu")
    with torch.no_grad():
        probs = model.predict_proba(x)[0]
    if probs.dim() == 0:  # logistic regression: a = Pr(class 1)
        probs = torch.stack([1 - probs, probs])
    return Prediction(probs.tolist(), class_names(cfg.positive_class, cfg.classes)[:probs.shape[0]])
