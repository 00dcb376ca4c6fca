"""Shared fixtures: tiny MNIST-format IDX files written into a temp folder (torchvision's layout)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from pathlib import Path

import pytest
import torch

#: Real MNIST, when CI (or the developer) points NNREF_DATA_ROOT at it.
REAL_MNIST = os.environ.get("NNREF_DATA_ROOT")

# The suite runs on pytest-xdist's workers (``-n auto`` in pyproject.toml), one per core, each given whole test files
# (``--dist loadfile``: a module's fixtures are set up once): each worker computes with one thread, so that two
# workers on two cores never fight over a core with spinning thread pools.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


#: The slowest test files (torchrun jobs, fresh interpreters, Chromium), started first so that no worker is left
#: with one of them at the end while the other has nothing to do (--dist loadfile --no-loadscope-reorder hands out
#: whole files in this order).
SLOWEST_FIRST = (
    "test_distributed",
    "test_bench",
    "test_interrupt",
    "test_digits",
    "test_notebook",
    "test_lab_browser",
    "test_lab_mnist_browser",
    "test_browser",
)


#: The tests of the lecture wing (docs/architecture.md): ``pytest -m lecture`` runs them alone, in under a minute —
#: the loop of someone changing a Function.  (Tests mirror modules; tests that need the real MNIST files or a
#: browser stay out of the fast lane.)
LECTURE_TESTS = (
    "test_functional",
    "test_gradcheck",
    "test_lecture",
    "test_layers",
    "test_models",
    "test_properties",
    "test_knn",
    "test_knn_bytes",
    "test_plane",
    "test_playground",
    "test_data",
    "test_digits",
    "test_viz",
    "test_architecture",
    "test_backprop",
    "test_exercises",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(getattr(item.module, "__name__", ""), len(rank)))  # stable sort
    for item in items:
        if (
            getattr(item.module, "__name__", "") in LECTURE_TESTS
            and not item.get_closest_marker("mnist")
            and not item.get_closest_marker("browser")
        ):
            item.add_marker(pytest.mark.lecture)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on the file ``path`` for the ``with`` block: xdist's workers take turns."""
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def write_idx_images(path: Path, images: torch.Tensor) -> None:
    n, rows, cols = images.shape
    path.write_bytes(struct.pack(">IIII", 0x00000803, n, rows, cols) + images.to(torch.uint8).numpy().tobytes())


def write_idx_labels(path: Path, labels: torch.Tensor) -> None:
    path.write_bytes(struct.pack(">II", 0x00000801, labels.shape[0]) + labels.to(torch.uint8).numpy().tobytes())


def synthetic_digits(n: int, seed: int, noise: int = 60, bar: int = 230) -> tuple[torch.Tensor, torch.Tensor]:
    """Learnable fake digits: class c is a bright bar on row 2 + 2c (and column 4 + 2c), plus noise.
    A ``bar`` inside the range of strong ``noise`` makes a task that no model gets right every time."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    labels = labels[torch.randperm(n, generator=g)]
    images = torch.randint(0, noise, (n, 28, 28), generator=g)
    for c in range(10):
        rows = labels == c
        images[rows, 2 + 2 * c, 4:24] = bar
        images[rows, 4:24, 4 + 2 * c] = bar * 200 // 230
    return images.to(torch.uint8), labels


def make_tiny_mnist(root: Path, n_train: int = 600, n_test: int = 200, **digits) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = synthetic_digits(n, seed, **digits)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A data root holding MNIST/raw/ with 600 training and 200 test synthetic digits."""
    return make_tiny_mnist(tmp_path / "data")


@pytest.fixture
def hard_mnist(tmp_path) -> Path:
    """Like ``tiny_mnist``, but noisy enough that KNN's accuracy depends on k."""
    return make_tiny_mnist(tmp_path / "hard", bar=60, noise=255)


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch, tmp_path_factory):
    """Unit tests never see the developer's NNREF_DATA_ROOT unless they ask for REAL_MNIST, and keep decoded MNIST in
    the session's own cache (never the developer's ~/.cache/nnref)."""
    monkeypatch.delenv("NNREF_DATA_ROOT", raising=False)
    monkeypatch.setenv("NNREF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nnref-cache"))


def real_mnist_root() -> Path:
    """The real MNIST folder (CI: ../shared/data, via NNREF_DATA_ROOT); the test is skipped without it — and fails
    where NNREF_REQUIRE_MNIST is set (CI), so a missing dataset never passes as a skip there."""
    if REAL_MNIST and (Path(REAL_MNIST) / "MNIST" / "raw").is_dir():
        return Path(REAL_MNIST).resolve()
    if os.environ.get("NNREF_REQUIRE_MNIST"):
        raise RuntimeError(
            f"the real-MNIST tests must run here, but NNREF_DATA_ROOT={REAL_MNIST!r} holds no MNIST/raw/"
        )
    pytest.skip("set NNREF_DATA_ROOT to a folder holding MNIST/raw/ to run the real-data tests")


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    """The real MNIST folder, for tests marked ``mnist`` (skipped without it, failed without it in CI)."""
    return real_mnist_root()


@pytest.fixture(scope="session")
def mnist_mlp(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, data root): a 784-300-10 MLP trained for three epochs on the real MNIST (97.9% on its test set),
    once for the whole session — under xdist, by the first worker that needs it, in the folder all workers share
    (the others wait for it; nothing writes to it after)."""
    root = real_mnist_root()
    from nnref.cli import main

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # …/pytest-N, above each worker's own
    checkpoint = shared / "mnist-mlp" / "mlp" / "checkpoint.pt"
    with _locked(shared / "mnist-mlp.lock"):
        if not checkpoint.is_file():
            assert (
                main(
                    [
                        "train",
                        "mlp",
                        "--hidden",
                        "300",
                        "--epochs",
                        "3",
                        "--data-root",
                        str(root),
                        "--no-download",
                        "--logdir",
                        str(shared / "mnist-mlp"),
                        "--run-name",
                        "mlp",
                        "--quiet",
                        "--device",
                        "cpu",
                    ]
                )
                == 0
            )
    return checkpoint, root
