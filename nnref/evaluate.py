"""Using a model: its loss and accuracy on a split, and what ``nnref eval`` and ``nnref predict`` compute.

Everything here returns values (the CLI prints them): :func:`evaluate` for a model in memory,
:func:`evaluate_checkpoint` and :func:`predict_image` for a checkpoint on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import viz
from .checkpoint import load_checkpoint
from . import knn
from .config import KNNConfig, TrainConfig, TrainingError, config_from_dict, resolve_device
from .data import MEAN, STD, class_names, load_data
from .models import build_model

__all__ = ["evaluate", "load_model", "from_state", "LOADERS", "knn_chosen_k", "Evaluation", "evaluate_checkpoint", "Prediction",
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
    """The k a KNN run chose on validation (:func:`nnref.knn.chosen_k`)."""
    return knn.chosen_k(state)


def _parametric(state: dict, cfg: TrainConfig, device, data_root=None, download: bool = False):
    model = build_model(cfg.model, 784, 2 if cfg.binary else 10, cfg.hidden, cfg.activation)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"does not match a {cfg.model!r} model: {exc}") from None
    return model.to(device).eval()


#: How a checkpoint becomes a classifier, by its configuration's class.
LOADERS = {TrainConfig: _parametric, KNNConfig: knn.from_checkpoint}


def load_model(path, device="cpu", data_root=None, download: bool = False):
    """(classifier, configuration) of a checkpoint, on ``device``: a parametric model in eval mode, or KNN voting
    with the k its run chose (its records re-read from MNIST).  Either answers ``predict`` and
    ``predict_proba`` (:class:`nnref.models.Classifier`)."""
    return from_state(load_checkpoint(path, map_location=device), path, device, data_root, download)


def from_state(state: dict, path, device="cpu", data_root=None, download: bool = False):
    """:func:`load_model` of a checkpoint already read (``path`` names it in errors)."""
    cfg = config_from_dict(state["config"])
    try:
        return LOADERS[type(cfg)](state, cfg, device, data_root, download), cfg
    except ValueError as exc:
        raise TrainingError(f"checkpoint {path} {exc}") from None


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


def evaluate_checkpoint(path, data_root=None, download: bool = True, device: str = "auto",
                        batch_size: int = 4096) -> Evaluation:
    """Test accuracy and confusion matrix of a checkpoint (parametric or KNN)."""
    dev = resolve_device(device)
    model, cfg = load_model(path, dev, data_root, download)
    data = load_data(cfg, dev, data_root, download)
    pred = torch.cat([model.predict(data.test_x[i:i + batch_size]) for i in range(0, data.test_x.shape[0],
                                                                                 batch_size)])
    matrix = viz.confusion_matrix(data.test_y, pred, data.num_classes)
    correct, total = int(matrix.diag().sum()), int(matrix.sum())
    return Evaluation(cfg.model, correct / max(total, 1), correct, total, matrix, data.class_names,
                      getattr(model, "k", None))


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
    probs = model.predict_proba(x)[0]
    return Prediction(probs.tolist(), class_names(cfg.positive_class, cfg.classes)[:probs.shape[0]])
