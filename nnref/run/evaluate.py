"""Using a model: its loss and accuracy on a split, and what ``nnref eval`` and ``nnref predict`` compute.

Everything here returns values (the CLI prints them): :func:`evaluate` for a model in memory,
:func:`evaluate_checkpoint` and :func:`predict_image` for a checkpoint on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .. import viz
from ..data import DataError, class_names, load_data
from ..digits import IMAGE_SUFFIXES, prepare_digit, to_byte_row, to_row
from . import knn
from .checkpoint import load_checkpoint
from .config import KNNConfig, TrainConfig, TrainingError, config_from_dict, resolve_device

__all__ = [
    "evaluate",
    "load_model",
    "from_state",
    "LOADERS",
    "Evaluation",
    "evaluate_checkpoint",
    "Prediction",
    "predict_pictures",
    "pictures_in",
    "predict_image",
    "load_image",
    "save_inputs",
]


@torch.no_grad()
def evaluate(
    model, x: torch.Tensor, y: torch.Tensor, fused: bool = True, batch_size: int = 4096
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and predictions (N,) of a parametric model on rows x (N, p) with labels y (N,)."""
    was_training = model.training
    model.eval()
    total, preds = 0.0, []
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i : i + batch_size])
        total += float(model.loss(logits, y[i : i + batch_size], fused=fused, reduction="sum"))
        preds.append(model.predictions(logits))
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=x.device)
    return total / max(x.shape[0], 1), float((pred == y).float().mean()) if len(y) else float("nan"), pred


def _parametric(state: dict, cfg: TrainConfig, device, data_root=None, download: bool = False):
    model = cfg.build_model()
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


def evaluate_checkpoint(
    path, data_root=None, download: bool = True, device: str = "auto", batch_size: int = 4096
) -> Evaluation:
    """Test accuracy and confusion matrix of a checkpoint (parametric or KNN)."""
    dev = resolve_device(device)
    model, cfg = load_model(path, dev, data_root, download)
    data = load_data(cfg, dev, data_root, download)
    pred = torch.cat(
        [model.predict(data.test_x[i : i + batch_size]) for i in range(0, data.test_x.shape[0], batch_size)]
    )
    matrix = viz.confusion_matrix(data.test_y, pred, data.num_classes)
    correct, total = int(matrix.diag().sum()), int(matrix.sum())
    return Evaluation(
        cfg.model, correct / max(total, 1), correct, total, matrix, data.class_names, getattr(model, "k", None)
    )


def load_image(path, invert: bool = True) -> torch.Tensor:
    """A picture file → one normalised MNIST row (1, 784), prepared as MNIST's digits were
    (:func:`nnref.digits.prepare_digit`).  ``invert=False``: the picture is already light ink on dark."""
    return to_row(prepare_digit(path, ink="auto" if invert else "light"))


@dataclass
class Prediction:
    """The class probabilities of one image, in the order of ``class_names``; or why there are none (``error``).
    ``image`` is the 28 × 28 input the model saw."""

    probabilities: list[float]
    class_names: list[str]
    source: str = ""
    error: str = ""
    image: torch.Tensor | None = None

    @property
    def best(self) -> int:
        return max(range(len(self.probabilities)), key=self.probabilities.__getitem__)

    def to_dict(self) -> dict:
        if self.error:
            return {"image": self.source, "error": self.error}
        return {
            "image": self.source,
            "prediction": self.class_names[self.best],
            "probability": self.probabilities[self.best],
            "probabilities": dict(zip(self.class_names, self.probabilities)),
        }


def pictures_in(paths) -> list[Path]:
    """The files named, and the pictures (by their suffix, sorted) in the folders named."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def predict_pictures(
    checkpoint, paths, invert: bool = True, data_root=None, download: bool = False
) -> list[Prediction]:
    """Classify pictures with a checkpoint (KNN: the vote shares of its chosen k): each file, and every picture of
    each folder.  A picture without a digit, or not a picture, gets its ``error`` instead of probabilities."""
    model, cfg = load_model(checkpoint, "cpu", data_root, download)
    names = class_names(cfg.positive_class, cfg.classes)
    results = []
    for path in pictures_in(paths):
        try:
            image = prepare_digit(path, ink="auto" if invert else "light")
        except DataError as exc:
            results.append(Prediction([], names, str(path), str(exc)))
            continue
        row = to_byte_row(image) if getattr(model, "stores_bytes", False) else to_row(image)  # (KNN on bytes)
        probs = model.predict_proba(row)[0]
        results.append(Prediction(probs.tolist(), names[: probs.shape[0]], str(path), image=image))
    return results


def predict_image(checkpoint, image, invert: bool = True) -> Prediction:
    """Classify one picture file with a checkpoint (KNN: the vote shares of the chosen k)."""
    (result,) = predict_pictures(checkpoint, [image], invert)
    if result.error:
        raise TrainingError(result.error)
    return result


def save_inputs(results: list[Prediction], folder) -> list[Path]:
    """Each picture's 28×28 input as a PNG in ``folder``, named after the picture (numbered where two share a name);
    returns the files written."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    written = []
    for i, r in enumerate(results):
        if r.image is None:
            continue
        name = Path(r.source).stem + ".png"
        name = name if name not in used else f"{i:03d}-{name}"
        used.add(name)
        Image.fromarray((r.image * 255).round().byte().numpy(), "L").save(folder / name)
        written.append(folder / name)
    return written
