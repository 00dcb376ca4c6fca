"""nnref.export: ONNX (run by onnxruntime) and torch.export programs that compute what the model computes."""

from __future__ import annotations

import onnxruntime  # noqa: F401  (dev dependencies: their absence fails this module, it never skips it)
import onnxscript  # noqa: F401
import pytest
import torch
from helpers import train_args

from nnref.cli import main
from nnref.data import load_splits
from nnref.run.evaluate import load_model
from nnref.run.export import export_model, load_exported


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory):
    from conftest import make_tiny_mnist

    tmp = tmp_path_factory.mktemp("export")
    root = make_tiny_mnist(tmp / "data")
    assert main(train_args(root, tmp, "mlp", "--epochs", "2", "--hidden", "32")) == 0
    return tmp / "run" / "checkpoint.pt", root


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_exported_model_agrees_with_nnref_on_any_batch_size(mlp_checkpoint, tmp_path, capsys, fmt):
    ckpt, root = mlp_checkpoint
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(ckpt), str(out)]) == 0
    assert f"wrote {out} ({fmt})" in capsys.readouterr().out
    model, _ = load_model(ckpt)
    exported = load_exported(out)
    data = load_splits(root, download=False, val_size=100)
    for n in (1, 7, 200):  # the batch dimension is dynamic
        x = data.test_x[:n]
        with torch.no_grad():
            ours = model(x)
        theirs = exported(x)
        assert theirs.shape == ours.shape
        torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)
        assert torch.equal(theirs.argmax(-1), ours.argmax(-1))


def test_binary_model_exports_one_logit_per_row(tmp_path):
    from nnref.models import LogisticRegression

    model = LogisticRegression(784)
    path = export_model(model, tmp_path / "logreg.onnx")
    x = torch.randn(5, 784)
    torch.testing.assert_close(load_exported(path)(x), model(x).detach(), rtol=0, atol=1e-5)


def test_knn_checkpoint_is_refused_with_a_clear_error(tiny_mnist, tmp_path, capsys):
    assert main(train_args(tiny_mnist, tmp_path, "knn", "--k", "1")) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run" / "checkpoint.pt"), str(tmp_path / "knn.onnx")]) == 1
    err = capsys.readouterr().err
    assert "KNN checkpoint: export covers the parametric models" in err and "Traceback" not in err
    assert not (tmp_path / "knn.onnx").exists()


@pytest.mark.mnist
def test_onnxruntime_predicts_the_full_mnist_test_set_like_nnref(tmp_path, real_mnist):
    root = real_mnist
    assert (
        main(
            [
                "train",
                "mlp",
                "--epochs",
                "1",
                "--hidden",
                "100",
                "--data-root",
                str(root),
                "--no-download",
                "--logdir",
                str(tmp_path),
                "--run-name",
                "m",
                "--quiet",
            ]
        )
        == 0
    )
    ckpt = tmp_path / "m" / "checkpoint.pt"
    model, _ = load_model(ckpt)
    data = load_splits(root, download=False)
    with torch.no_grad():
        ours = model(data.test_x)
    for fmt in ("onnx", "pt2"):
        assert main(["export", str(ckpt), str(tmp_path / f"m.{fmt}")]) == 0
        theirs = load_exported(tmp_path / f"m.{fmt}")(data.test_x)
        assert torch.equal(theirs.argmax(-1), ours.argmax(-1)), fmt  # all 10,000 predictions identical
        assert float((theirs - ours).abs().max()) < 1e-4, fmt
