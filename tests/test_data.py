"""nnref.data: torchvision MNIST on tiny IDX files, clear errors, the tensor-resident loader."""

from __future__ import annotations

import struct

import pytest
import torch

from nnref import data as D
from nnref.data import DataError, load_mnist, load_splits, make_loader, resolve_root


def test_resolve_root_order(monkeypatch, tmp_path):
    assert str(resolve_root()) == "data"
    monkeypatch.setenv("NNREF_DATA_ROOT", str(tmp_path))
    assert resolve_root() == tmp_path
    assert str(resolve_root("elsewhere")) == "elsewhere"


def test_load_tiny_mnist_through_torchvision(tiny_mnist):
    images, labels = load_mnist(tiny_mnist, train=True, download=False)
    assert images.shape == (600, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (600,) and labels.dtype == torch.long and set(labels.tolist()) == set(range(10))


def test_splits_hold_out_the_last_training_images(tiny_mnist):
    s = load_splits(tiny_mnist, download=False, val_size=100)
    assert s.train_x.shape == (500, 784) and s.val_x.shape == (100, 784) and s.test_x.shape == (200, 784)
    images, labels = load_mnist(tiny_mnist, train=True, download=False)
    torch.testing.assert_close(s.val_x, D.normalize(images[500:]))
    assert torch.equal(s.val_y, labels[500:])
    expected = ((images[:500].float() / 255 - 0.1307) / 0.3081).reshape(500, 784)
    torch.testing.assert_close(s.train_x, expected)
    limited = load_splits(tiny_mnist, download=False, val_size=100, limit_train=50)
    assert limited.train_x.shape == (50, 784) and torch.equal(limited.val_y, s.val_y)


def test_binary_tasks(tiny_mnist):
    s = load_splits(tiny_mnist, download=False, val_size=100, positive_class=3)
    _, labels = load_mnist(tiny_mnist, train=True, download=False)
    assert torch.equal(s.train_y, (labels[:500] == 3).long()) and s.num_classes == 2
    s = load_splits(tiny_mnist, download=False, val_size=100, classes=(3, 8))
    keep = (labels[:500] == 3) | (labels[:500] == 8)
    assert s.train_x.shape[0] == int(keep.sum())
    assert torch.equal(s.train_y, (labels[:500][keep] == 8).long())


def test_missing_dataset_with_downloads_off_names_folder_and_files(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path / "nowhere", train=True, download=False)
    msg = str(info.value)
    assert "nowhere" in msg and "--no-download" in msg
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in msg
    assert "MNIST/raw" in msg.replace("\\", "/")


def test_failed_download_gives_the_same_guidance(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: HTTP Error 403: Forbidden")

    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(DataError, match=r"download failed: Error downloading .*403") as info:
        load_mnist(tmp_path / "empty", train=True, download=True)
    assert "t10k-labels-idx1-ubyte" in str(info.value)


def _raw(root):
    return root / "MNIST" / "raw"


def test_truncated_idx_file_is_named(tiny_mnist):
    path = _raw(tiny_mnist) / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is truncated: 5000 bytes"):
        load_mnist(tiny_mnist, train=True, download=False)


def test_truncated_header_is_named(tiny_mnist):
    path = _raw(tiny_mnist) / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte is truncated"):
        load_mnist(tiny_mnist, train=False, download=False)


def test_wrong_magic_number_is_named(tiny_mnist):
    path = _raw(tiny_mnist) / "train-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[:4] = struct.pack(">I", 0x00000803)
    path.write_bytes(bytes(data))
    with pytest.raises(
        DataError, match=r"train-labels-idx1-ubyte is corrupt: magic number 0x00000803, expected 0x00000801"
    ):
        load_mnist(tiny_mnist, train=True, download=False)


def test_image_and_label_counts_that_differ(tiny_mnist):
    from conftest import write_idx_labels

    write_idx_labels(_raw(tiny_mnist) / "train-labels-idx1-ubyte", torch.zeros(599, dtype=torch.uint8))
    with pytest.raises(DataError, match="600 images but .* 599 labels"):
        load_mnist(tiny_mnist, train=True, download=False)


def test_labels_outside_0_9(tiny_mnist):
    from conftest import write_idx_labels

    write_idx_labels(_raw(tiny_mnist) / "t10k-labels-idx1-ubyte", torch.full((200,), 12, dtype=torch.uint8))
    with pytest.raises(DataError, match="labels must be digits 0-9"):
        load_mnist(tiny_mnist, train=False, download=False)


def test_loader_shuffles_every_epoch_and_covers_everything():
    x = torch.arange(10.0).unsqueeze(1)
    y = torch.arange(10)
    loader = make_loader(x, y, batch_size=4, seed=0)
    epochs = [torch.cat([yb for _, yb in loader]).tolist() for _ in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(10))
    assert epochs[0] != epochs[1] != epochs[2]
    assert [xb.shape[0] for xb, _ in loader] == [4, 4, 2]
    for xb, yb in loader:
        assert torch.equal(xb.squeeze(1).long(), yb)


def test_loader_is_a_dataloader_and_repeatable_from_seed():
    from torch.utils.data import DataLoader

    x, y = torch.randn(50, 3), torch.arange(50)
    a, b = make_loader(x, y, 8, seed=3), make_loader(x, y, 8, seed=3)
    assert isinstance(a, DataLoader)
    assert [yb.tolist() for _, yb in a] == [yb.tolist() for _, yb in b]


def test_sampler_state_resumes_mid_epoch_exactly():
    x, y = torch.randn(20, 2), torch.arange(20)
    ref = make_loader(x, y, 3, seed=5)
    next(iter(ref))  # epoch 1 consumed
    full = [yb.tolist() for _, yb in ref]  # epoch 2
    run = make_loader(x, y, 3, seed=5)
    next(iter(run))
    it = iter(run)
    seen = [next(it)[1].tolist() for _ in range(3)]  # three batches into epoch 2, then "killed"
    state = run.sampler.state_dict(batches_done=3)
    resumed = make_loader(x, y, 3, seed=999)
    resumed.sampler.load_state_dict(state)
    rest = [yb.tolist() for _, yb in resumed]
    assert seen + rest == full
    after_ref = [yb.tolist() for _, yb in ref]
    after_resumed = [yb.tolist() for _, yb in resumed]
    assert after_ref == after_resumed  # and the epoch after is identical too


def test_decoded_mnist_is_kept_for_the_next_run_which_needs_no_torchvision(tiny_mnist, tmp_path, monkeypatch):
    """The first load decodes through torchvision and keeps the tensors; the next loads them without importing it;
    a changed file is decoded again."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    monkeypatch.setenv("NNREF_CACHE_DIR", str(cache))
    first = load_mnist(tiny_mnist, train=True, download=False)
    assert len(list(cache.glob("mnist-*.pt"))) == 1
    code = (
        f"import sys; from nnref.data import load_mnist; x, y = load_mnist({str(tiny_mnist)!r}, True, False); "
        "print('torchvision' in sys.modules, int(x.sum()), int(y.sum()))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", str(int(first[0].sum())), str(int(first[1].sum()))]
    labels = tiny_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[8] = (data[8] + 1) % 10  # the first label changes
    labels.write_bytes(bytes(data))
    assert int(load_mnist(tiny_mnist, train=True, download=False)[1][0]) == (int(first[1][0]) + 1) % 10


def test_to_bytes_undoes_normalize_exactly_and_load_splits_gives_either():
    from nnref.data import normalize, to_bytes

    every = torch.arange(256, dtype=torch.uint8).reshape(1, 256).repeat(3, 1)
    assert torch.equal(to_bytes(normalize(every)), every)
    assert to_bytes(every) is every  # bytes stay as they are


def test_load_splits_gives_normalised_rows_or_mnists_own_bytes(tiny_mnist):
    from nnref.data import normalize

    floats = load_splits(tiny_mnist, download=False, val_size=100)
    raw = load_splits(tiny_mnist, download=False, val_size=100, pixels="bytes")
    assert raw.train_x.dtype == torch.uint8 and raw.train_x.shape == floats.train_x.shape
    for split in ("train", "val", "test"):
        assert torch.equal(normalize(getattr(raw, f"{split}_x")), getattr(floats, f"{split}_x"))
        assert torch.equal(getattr(raw, f"{split}_y"), getattr(floats, f"{split}_y"))
    with pytest.raises(ValueError, match="pixels must be one of"):
        load_splits(tiny_mnist, download=False, pixels="floats")
