"""MNIST through torchvision, decoded and normalised once, served in batches by a DataLoader.

Per-sample PIL transforms cost more than a whole training epoch of softmax regression, so the images
are decoded once into one float tensor (on the training device) and every batch is one index into it.
The shuffling generator is nnref's own, so a run (and a resumed run) sees exactly the same batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = [
    "MEAN",
    "cache_dir",
    "STD",
    "IMAGE_FILES",
    "DataError",
    "resolve_root",
    "check_idx_file",
    "load_mnist",
    "normalize",
    "MNISTSplits",
    "load_splits",
    "load_data",
    "class_names",
    "binary_labels",
    "EpochBatches",
    "IndexedRows",
    "make_loader",
    "to_images",
    "to_bytes",
    "PIXELS",
]

#: The mean and standard deviation of MNIST's training pixels (scaled to [0, 1]): the one place they live.
MEAN, STD = 0.1307, 0.3081
#: The four files torchvision's MNIST reads, under ``<root>/MNIST/raw/``.
IMAGE_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # unsigned bytes, 3-D / 1-D


class DataError(RuntimeError):
    """A problem with the data on disk, explained for a person (the CLI prints it and exits 1)."""


def resolve_root(data_root: str | os.PathLike | None = None) -> Path:
    """``--data-root``, else the ``NNREF_DATA_ROOT`` environment variable, else ``./data``."""
    if data_root:
        return Path(data_root)
    env = os.environ.get("NNREF_DATA_ROOT")
    return Path(env) if env else Path("data")


def _all_files(root: Path) -> list[Path]:
    raw = root / "MNIST" / "raw"
    return [raw / name for split in (True, False) for name in IMAGE_FILES[split]]


def _missing_message(root: Path, reason: str) -> str:
    files = "\n".join(f"  {p}" for p in _all_files(root))
    return (
        f"MNIST is not available under {root.resolve()} ({reason}).\n"
        f"nnref expects the four uncompressed IDX files:\n{files}\n"
        "Provide them by copying (or gunzipping) the original MNIST files there, point --data-root or "
        "NNREF_DATA_ROOT at a folder that holds MNIST/raw/, or allow downloads (drop --no-download)."
    )


def check_idx_file(path: Path, kind: str) -> int:
    """Check an IDX file's magic number and size; return its record count or raise :class:`DataError`."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            header = f.read(16 if kind == "images" else 8)
    except OSError as exc:
        raise DataError(f"cannot read MNIST file {path}: {exc.strerror or exc}") from None
    want = 16 if kind == "images" else 8
    if len(header) < want:
        raise DataError(f"MNIST file {path} is truncated: {size} bytes, shorter than its {want}-byte header")
    magic, count = struct.unpack(">II", header[:8])
    if magic != _IDX_MAGIC[kind]:
        raise DataError(
            f"MNIST file {path} is corrupt: magic number 0x{magic:08x}, expected 0x{_IDX_MAGIC[kind]:08x} "
            f"for an IDX {kind} file"
        )
    record = 1
    if kind == "images":
        rows, cols = struct.unpack(">II", header[8:16])
        record = rows * cols
    expected = want + count * record
    if size != expected:
        state = "truncated" if size < expected else "corrupt (longer than its header says)"
        raise DataError(
            f"MNIST file {path} is {state}: {size} bytes, but its header announces {count} records ({expected} bytes)"
        )
    return count


def load_mnist(root: str | os.PathLike, train: bool, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of one MNIST split, via ``torchvision.datasets.MNIST``.

    The IDX files are checked first, so a truncated or corrupt file is named in a :class:`DataError`
    instead of failing deep inside the reader; a missing dataset (downloads off, or every mirror
    failing) names the folder and the four files expected.  What torchvision decodes is kept in
    :func:`cache_dir` for the next run, which loads it without importing torchvision.
    """
    root = Path(root)
    if not all(p.exists() for p in _all_files(root)):
        from torchvision.datasets import MNIST

        if not download:
            raise DataError(_missing_message(root, "downloads are off (--no-download) and files are missing"))
        try:
            MNIST(str(root), train=train, download=True)
        except Exception as exc:  # every mirror failed, or we are offline
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(_missing_message(root, f"the download failed: {first}")) from None
    raw = root / "MNIST" / "raw"
    image_file, label_file = (raw / name for name in IMAGE_FILES[train])
    n_images = check_idx_file(image_file, "images")
    n_labels = check_idx_file(label_file, "labels")
    if n_images != n_labels:
        raise DataError(
            f"MNIST files disagree: {image_file} holds {n_images} images but {label_file} holds {n_labels} labels"
        )
    cached = _cache_file(image_file, label_file)
    if cached is not None and cached.is_file():
        with contextlib.suppress(Exception):  # (a cache that cannot be read is decoded again)
            kept = torch.load(cached, weights_only=True, mmap=True)
            return kept["images"], kept["labels"]
    from torchvision.datasets import MNIST

    ds = MNIST(str(root), train=train, download=False)
    images, labels = ds.data, ds.targets.long()
    if labels.numel() and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"MNIST file {label_file} is corrupt: labels must be digits 0-9, found {int(labels.max())}")
    _keep(cached, images, labels)
    return images, labels


#: How load_splits gives the pixels: normalised float32 rows, or MNIST's own bytes.
PIXELS = ("normalized", "bytes")


def cache_dir() -> Path:
    """Where decoded MNIST is kept between runs: ``$NNREF_CACHE_DIR``, else ``~/.cache/nnref``."""
    return Path(os.environ.get("NNREF_CACHE_DIR") or Path.home() / ".cache" / "nnref")


def _cache_file(*files: Path) -> Path | None:
    """The cache of one split's decoded tensors, named after the files' place, size and time (a changed file is
    decoded again); None where there is no home to keep it in."""
    try:
        stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    except OSError:
        return None
    return cache_dir() / f"mnist-{hashlib.sha1(repr(stats).encode()).hexdigest()[:20]}.pt"


def _keep(path: Path | None, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Keep what torchvision decoded, for the next run to load at once (``import torchvision`` alone takes more than
    a second); quietly nothing where the cache cannot be written."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"images": images.contiguous(), "labels": labels.contiguous()}, tmp)
        os.replace(tmp, path)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) → float32 rows (N, 784): x = (pixel/255 − 0.1307) / 0.3081."""
    rows = images.flatten(1).to(torch.float32, copy=True)  # a copy even of float input, which stays untouched
    return rows.div_(255.0).sub_(MEAN).div_(STD)  # in place: the arithmetic of x/255 − μ / σ, one allocation


def to_bytes(rows: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`normalize`: float rows (N, 784) → MNIST's uint8 rows (N, 784), on their device (exact
    for normalised MNIST; other values are clamped to 0 … 255 and rounded).  uint8 rows are returned as they are."""
    if rows.dtype == torch.uint8:
        return rows
    return ((rows.detach() * STD + MEAN).clamp(0, 1) * 255).round().to(torch.uint8)


def to_images(rows: torch.Tensor) -> torch.Tensor:
    """Rows (N, 784) — normalised floats or MNIST's bytes — → uint8 images (N, 28, 28) on the CPU."""
    return to_bytes(rows.cpu()).reshape(-1, 28, 28)


def class_names(positive_class: int | None = None, classes: tuple[int, int] | None = None) -> list[str]:
    """The names of the classes of a task: the ten digits, "not K"/"K", or the two digits A and B."""
    if positive_class is not None:
        return [f"not {positive_class}", str(positive_class)]
    if classes is not None:
        return [str(c) for c in classes]
    return [str(i) for i in range(10)]


def binary_labels(
    images: torch.Tensor,
    labels: torch.Tensor,
    positive_class: int | None = None,
    classes: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The binary task of logistic regression.

    ``positive_class=K``: label 1 where the digit is K, else 0 (all images kept).
    ``classes=(A, B)``: only digits A and B are kept; A → 0, B → 1.
    """
    if positive_class is not None:
        return images, (labels == positive_class).long()
    if classes is not None:
        a, b = classes
        keep = (labels == a) | (labels == b)
        return images[keep], (labels[keep] == b).long()
    return images, labels


@dataclass
class MNISTSplits:
    """Rows x (N, 784) and labels y (N,) int64 for train / val / test, on one device: normalised float32 rows, or
    (``pixels="bytes"``, what KNN searches) MNIST's own uint8 pixels.

    ``test_images`` keeps the raw uint8 test images (N, 28, 28) on the CPU for pictures; ``class_names``
    names the classes (index = label).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_images: torch.Tensor
    num_classes: int
    class_names: list[str]


def load_splits(
    root,
    download: bool = True,
    val_size: int = 5000,
    limit_train: int | None = None,
    positive_class: int | None = None,
    classes: tuple[int, int] | None = None,
    device: torch.device | str = "cpu",
    pixels: str = "normalized",
) -> MNISTSplits:
    """Train / validation / test splits.  The last ``val_size`` training images are held out for
    validation (model selection never looks at the test set); ``limit_train`` keeps the first N of the rest.
    ``pixels``: ``"normalized"`` float32 rows (:func:`normalize`) or ``"bytes"``, the uint8 pixels as stored."""
    if pixels not in PIXELS:
        raise ValueError(f"pixels must be one of {PIXELS}, got {pixels!r}")
    train_images, train_labels = load_mnist(root, train=True, download=download)
    test_images, test_labels = load_mnist(root, train=False, download=download)
    if not 0 <= val_size < train_images.shape[0]:
        raise DataError(f"--val-size must be in [0, {train_images.shape[0]}), got {val_size}")
    cut = train_images.shape[0] - val_size
    parts = {
        "train": (train_images[:cut][:limit_train], train_labels[:cut][:limit_train]),
        "val": (train_images[cut:], train_labels[cut:]),
        "test": (test_images, test_labels),
    }
    parts = {k: binary_labels(*v, positive_class=positive_class, classes=classes) for k, v in parts.items()}
    if parts["train"][0].shape[0] == 0:
        raise DataError("the training set is empty after --limit-train / --classes; nothing to train on")
    out = {}
    for name, (images, labels) in parts.items():
        rows = normalize(images) if pixels == "normalized" else images.flatten(1).contiguous()
        out[f"{name}_x"] = rows.to(device)
        out[f"{name}_y"] = labels.to(device)
    names = class_names(positive_class, classes)
    return MNISTSplits(**out, test_images=parts["test"][0], num_classes=len(names), class_names=names)


def load_data(cfg, device: torch.device | str = "cpu", data_root=None, download: bool | None = None) -> MNISTSplits:
    """The splits a run configuration asks for (its ``data_root``, ``val_size``, ``limit_train`` and binary
    task, in the pixels its model reads); ``data_root`` and ``download`` override the configuration's."""
    return load_splits(
        resolve_root(data_root or cfg.data_root),
        pixels=getattr(cfg, "pixels", "normalized"),
        download=cfg.download if download is None else download,
        val_size=cfg.val_size,
        limit_train=cfg.limit_train,
        positive_class=cfg.positive_class,
        classes=cfg.classes,
        device=device,
    )


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------
class IndexedRows(Dataset):
    """Rows of tensors already in memory, indexed by a whole batch of indices at once (unlike
    ``torch.utils.data.TensorDataset``, which takes one index and returns one row)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        if len({t.shape[0] for t in tensors}) != 1:
            raise ValueError("all tensors must have the same number of rows")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index: torch.Tensor):
        # index_select is about twice as fast as advanced indexing (t[index]) for a batch of rows
        return tuple(t.index_select(0, index) for t in self.tensors)


class EpochBatches(Sampler):
    """Yields one index tensor per batch: a fresh random permutation every epoch (on every device) — and, unlike
    ``torch.utils.data.BatchSampler``, a state that resumes mid-epoch.

    The permutation comes from a ``torch.Generator`` owned by the sampler.  ``state_dict(batches_done)``
    records the generator state at the start of the current epoch and how far into it training is;
    ``load_state_dict`` makes the next epoch replay that permutation from that batch on — exact resume.

    In a job of ``world`` processes every rank draws the same permutation and yields its own part of each
    global batch of ``batch_size`` (``torch.tensor_split``: sizes differ by at most one), so the job sees
    exactly the batches of one process; :meth:`global_batch_size` tells a rank how large a batch is in all.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.device = n, batch_size, shuffle, torch.device(device)
        self.rank, self.world = rank, world
        self.generator = torch.Generator().manual_seed(seed)
        self._epoch_state = self.generator.get_state()
        self._start_batch = 0

    def __len__(self) -> int:
        return (self.n - self._start_batch * self.batch_size + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        self._epoch_state = self.generator.get_state()
        start, self._start_batch = self._start_batch, 0
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)
        else:
            order = torch.arange(self.n)
        order = order.to(self.device)
        for i in range(start * self.batch_size, self.n, self.batch_size):
            batch = order[i : i + self.batch_size]
            yield batch if self.world == 1 else batch.tensor_split(self.world)[self.rank]

    def batches_per_epoch(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def global_batch_size(self, batch: int) -> int:
        """The size of global batch number ``batch`` (from 0) of an epoch: only the last one is shorter."""
        return min(self.batch_size, self.n - batch * self.batch_size)

    def state_dict(self, batches_done: int) -> dict:
        """Generator state and position: mid-epoch, replay this epoch from ``batches_done``; at an epoch's
        boundary (``batches_done`` 0, or all of them), start the next epoch afresh."""
        if batches_done == 0 or batches_done >= self.batches_per_epoch():
            return {"generator": self.generator.get_state(), "start_batch": 0}
        return {"generator": self._epoch_state.clone(), "start_batch": batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._start_batch = int(state["start_batch"])


def _as_is(batch):
    return batch


def make_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    rank: int = 0,
    world: int = 1,
) -> DataLoader:
    """A DataLoader over tensors in memory: one gather per batch, no per-sample work, no collation.
    ``loader.sampler`` is the :class:`EpochBatches` whose state a checkpoint keeps; with ``world`` > 1 it
    yields rank ``rank``'s part of every global batch."""
    sampler = EpochBatches(x.shape[0], batch_size, shuffle=shuffle, seed=seed, device=x.device, rank=rank, world=world)
    return DataLoader(IndexedRows(x, y), sampler=sampler, batch_size=None, collate_fn=_as_is)
