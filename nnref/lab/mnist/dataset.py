"""MNIST for the ``/mnist`` page: decoded once per server, on the first page's socket, and shared read-only by every
page — a second page costs its model and buffers, not another copy of the data.

Decoding took 1.35 s on this project's machine, torchvision's import included (``nnref bench --only mnist``,
docs/results/bench-mnist.log, at a light load; the shared tensors are 200.6 MiB). Doing it on
the first ``/mnist`` socket rather than at start keeps ``nnref lab`` starting at once and costs the playground
nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ...data import IMAGE_FILES, DataError, load_mnist, normalize, resolve_root

__all__ = ["MNISTViews", "SharedMNIST", "VALIDATION", "GALLERY", "VAL_SIZE"]

#: Images held out of training for validation (the last ones, as ``nnref train`` holds them out), and the fixed
#: subset of them the page re-measures a few times a second.
VAL_SIZE, VALIDATION = 5000, 2000
#: The test digits of the gallery: the first ones of the test set.
GALLERY = 24


@dataclass(frozen=True)
class MNISTViews:
    """What every page reads and none writes.  Rows are normalised (``nnref.data.normalize``): train_x (n, 784)
    float32 with train_y (n,) int64; val_x (v, 784), val_y — the validation subset; test_x (10,000, 784), test_y;
    gallery (g, 28, 28) uint8, the first test images, their labels gallery_y (g,) and rows gallery_x (g, 784);
    ``root`` the folder, ``val_size`` the images held out of training (``--val-size`` of ``nnref train``)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    gallery: torch.Tensor
    gallery_y: torch.Tensor
    gallery_x: torch.Tensor
    root: str
    val_size: int

    @property
    def nbytes(self) -> int:
        tensors = (self.train_x, self.val_x, self.test_x, self.gallery, self.gallery_x)
        return sum(t.numel() * t.element_size() for t in tensors)


class SharedMNIST:
    """The MNIST of one server (``data_root``: ``--data-root``, else ``$NNREF_DATA_ROOT``, else ``./data``):
    :meth:`get` decodes it on first use — once, whichever page asks first — and hands every page the same
    :class:`MNISTViews`.  A failure (no files, downloads off) is not remembered: the next page tries again, so
    files copied in meanwhile are found."""

    def __init__(self, data_root=None, download: bool = True) -> None:
        self.root, self.download = resolve_root(data_root), download
        self.seconds: float | None = None  # how long the decoding took
        self._lock, self._views = threading.Lock(), None

    def available(self) -> bool:
        """Whether the four files are there (nothing is read)."""
        raw = Path(self.root) / "MNIST" / "raw"
        return all((raw / name).is_file() for split in IMAGE_FILES.values() for name in split)

    @property
    def loaded(self) -> bool:
        return self._views is not None

    def get(self) -> MNISTViews:
        """The shared views, decoding MNIST first if no page has yet; :class:`~nnref.data.DataError` when it is not
        there (and may not be downloaded)."""
        with self._lock:
            if self._views is None:
                start = time.perf_counter()
                self._views = _decode(self.root, self.download)
                self.seconds = time.perf_counter() - start
            return self._views


def _decode(root: Path, download: bool) -> MNISTViews:
    """The splits of ``nnref train``: the last ``VAL_SIZE`` training images held out (a sixth of a smaller set)."""
    images, labels = load_mnist(root, train=True, download=download)
    test_images, test_y = load_mnist(root, train=False, download=download)
    held = min(VAL_SIZE, images.shape[0] // 6)
    if held < 10 or test_images.shape[0] < 10:
        raise DataError(f"MNIST under {root} is too small for the page: {images.shape[0]} training images")
    cut, g = images.shape[0] - held, min(GALLERY, test_images.shape[0])
    test_x = normalize(test_images)
    return MNISTViews(
        train_x=normalize(images[:cut]),
        train_y=labels[:cut].clone(),
        val_x=normalize(images[cut:][:VALIDATION]),
        val_y=labels[cut:][:VALIDATION].clone(),
        test_x=test_x,
        test_y=test_y,
        gallery=test_images[:g].clone(),
        gallery_y=test_y[:g].clone(),
        gallery_x=test_x[:g].clone(),
        root=str(Path(root).resolve()),
        val_size=held,
    )
