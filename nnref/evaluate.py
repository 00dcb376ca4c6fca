"""``nnref eval`` and ``nnref predict``: use a trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from . import viz
from .data import MEAN, STD, load_splits, resolve_root
from .models import KNNClassifier
from .train import TrainConfig, TrainingError, _class_names, build_model, evaluate, load_checkpoint, resolve_device

__all__ = ["load_model", "evaluate_checkpoint", "predict_image", "load_image", "format_confusion"]


def _data_for(cfg: TrainConfig, data_root, download: bool, device):
    return load_splits(resolve_root(data_root or cfg.data_root), download=download, val_size=cfg.val_size,
                       limit_train=cfg.limit_train, positive_class=cfg.positive_class, classes=cfg.classes,
                       device=device)


def load_model(path, device="cpu", data_root=None, download: bool = False):
    """(model, config) of a checkpoint.  A KNN checkpoint holds no records: they are re-read from MNIST."""
    state = load_checkpoint(path, map_location=device)
    cfg = TrainConfig.from_dict(state["config"])
    if cfg.model == "knn":
        data = _data_for(cfg, data_root, download, device)
        return KNNClassifier(max(cfg.k), cfg.metric).fit(data.train_x, data.train_y), cfg
    binary = cfg.positive_class is not None or cfg.classes is not None
    model = build_model(cfg, 784, 2 if binary else 10)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise TrainingError(f"checkpoint {path} does not match a {cfg.model!r} model: {exc}") from None
    return model.to(device).eval(), cfg


def format_confusion(matrix: torch.Tensor, names: list[str]) -> str:
    width = max(6, *(len(n) + 1 for n in names))
    head = "true\\pred".ljust(10) + "".join(n.rjust(width) for n in names)
    rows = [names[t].ljust(10) + "".join(str(int(v)).rjust(width) for v in matrix[t]) for t in range(len(names))]
    return "\n".join([head, *rows])


def evaluate_checkpoint(path, data_root=None, download: bool = True, device: str = "auto") -> int:
    dev = resolve_device(device)
    model, cfg = load_model(path, dev, data_root, download)
    data = _data_for(cfg, data_root, download, dev)
    if isinstance(model, KNNClassifier):
        pred = model.predict(data.test_x)
    else:
        _, _, pred = evaluate(model, data.test_x, data.test_y, fused=True)
    acc = float((pred == data.test_y).float().mean())
    names = _class_names(cfg, data.num_classes)
    matrix = viz.confusion_matrix(data.test_y, pred, data.num_classes)
    print(f"{cfg.model} checkpoint {path}\ntest accuracy: {acc:.2%} ({int(matrix.diag().sum())}/"
          f"{int(matrix.sum())})\n\nconfusion matrix (rows: true class, columns: predicted class)\n"
          f"{format_confusion(matrix, names)}")
    return 0


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


def predict_image(checkpoint, image, invert: bool = True) -> int:
    x = load_image(image, invert)
    model, cfg = load_model(checkpoint, "cpu")
    with torch.no_grad():
        probs = model.predict_proba(x)[0]
    if probs.dim() == 0:  # logistic regression: a = Pr(class 1)
        probs = torch.stack([1 - probs, probs])
    names = _class_names(cfg, probs.shape[0])
    best = int(probs.argmax())
    print(f"{Path(image).name}: predicted {names[best]} ({float(probs[best]):.1%})")
    for name, p in zip(names, probs.tolist()):
        bar = "#" * round(p * 40)
        print(f"  {name:>6}  {p:7.2%}  {bar}")
    return 0
