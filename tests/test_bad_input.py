"""The bad-input table: every way a user can feed nnref something wrong gets a precise error.

Command line: exit code 2 for usage errors (argparse), 1 for everything else, a one-line message on
stderr and never a traceback.  API: a ValueError / TypeError / RuntimeError naming the problem.
README.md's "Bad input" table summarises the rows below.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import pytest
import torch

from nnref.cli import main
from test_functional import BAD_INPUTS as FUNCTION_BAD_INPUTS


@pytest.fixture
def softmax_checkpoint(tiny_mnist, tmp_path):
    assert main(["train", "softmax", "--data-root", str(tiny_mnist), "--no-download", "--val-size", "100", "--epochs",
                 "1", "--logdir", str(tmp_path / "ckpt"), "--run-name", "sm", "--quiet"]) == 0
    return tmp_path / "ckpt" / "sm" / "checkpoint.pt"


def _run(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def _train(root, tmp_path, *extra):
    return ["train", *extra[:1], "--data-root", str(root), "--no-download", "--val-size", "100", "--logdir",
            str(tmp_path / "runs"), "--quiet", *extra[1:]]


def _raw(root, name):
    return root / "MNIST" / "raw" / name


def _truncate(root):
    p = _raw(root, "train-images-idx3-ubyte")
    p.write_bytes(p.read_bytes()[:1000])


def _bad_magic(root):
    p = _raw(root, "t10k-images-idx3-ubyte")
    p.write_bytes(struct.pack(">I", 0x0801) + p.read_bytes()[4:])


def _count_mismatch(root):
    from conftest import write_idx_labels

    write_idx_labels(_raw(root, "train-labels-idx1-ubyte"), torch.zeros(10, dtype=torch.uint8))


# (id, argv builder(root, tmp, ckpt), exit code, stderr pattern, data corruption)
CLI_CASES = [
    ("unknown model", lambda r, t, c: ["train", "cnn"], 2, r"invalid choice: 'cnn'", None),
    ("lr zero", lambda r, t, c: _train(r, t, "softmax", "--lr", "0"), 2, r"--lr: must be a finite number > 0", None),
    ("lr negative", lambda r, t, c: _train(r, t, "softmax", "--lr", "-0.1"), 2, r"--lr: must be a finite number > 0", None),
    ("lr not a number", lambda r, t, c: _train(r, t, "softmax", "--lr", "fast"), 2, r"--lr: expected a number", None),
    ("epochs zero", lambda r, t, c: _train(r, t, "softmax", "--epochs", "0"), 2, r"--epochs: must be at least 1", None),
    ("batch size zero", lambda r, t, c: _train(r, t, "softmax", "--batch-size", "0"), 2,
     r"--batch-size: must be at least 1", None),
    ("k zero", lambda r, t, c: _train(r, t, "knn", "--k", "0"), 2, r"--k: every size must be at least 1", None),
    ("k larger than training set", lambda r, t, c: _train(r, t, "knn", "--k", "501"), 1,
     r"k = 501 is larger than the training set \(500 images\)", None),
    ("hidden empty", lambda r, t, c: _train(r, t, "mlp", "--hidden", ""), 2, r"--hidden: expected one or more", None),
    ("hidden zero", lambda r, t, c: _train(r, t, "mlp", "--hidden", "300,0"), 2, r"--hidden: every size must be at least 1",
     None),
    ("unknown activation", lambda r, t, c: _train(r, t, "mlp", "--activation", "gelu"), 2,
     r"--activation: invalid choice: 'gelu'", None),
    ("unknown metric", lambda r, t, c: _train(r, t, "knn", "--metric", "hamming"), 2, r"--metric: invalid choice", None),
    ("unknown device", lambda r, t, c: _train(r, t, "softmax", "--device", "tpu"), 2,
     r"--device: expected auto, cpu, cuda or cuda:N", None),
    ("missing --resume file", lambda r, t, c: _train(r, t, "softmax", "--resume", str(t / "nope.pt")), 1,
     r"checkpoint .*nope.pt does not exist", None),
    ("unreadable --resume file", lambda r, t, c: _train(r, t, "softmax", "--resume", str(t / "garbage.pt")), 1,
     r"garbage.pt could not be read as an nnref checkpoint", "garbage"),
    ("checkpoint of another model", lambda r, t, c: _train(r, t, "mlp", "--resume", str(c)), 1,
     r"written by a 'softmax' run, it cannot resume a 'mlp' run", "checkpoint"),
    ("dataset missing, downloads off", lambda r, t, c: _train(t / "empty", t, "softmax"), 1,
     r"MNIST is not available under .*empty.*train-images-idx3-ubyte", None),
    ("truncated IDX file", lambda r, t, c: _train(r, t, "softmax"), 1,
     r"train-images-idx3-ubyte is truncated: 1000 bytes", _truncate),
    ("wrong magic number", lambda r, t, c: _train(r, t, "softmax"), 1,
     r"t10k-images-idx3-ubyte is corrupt: magic number 0x00000801", _bad_magic),
    ("image/label counts differ", lambda r, t, c: _train(r, t, "softmax"), 1, r"600 images but .* 10 labels",
     _count_mismatch),
    ("unwritable --logdir", lambda r, t, c: _train(r, t, "softmax", "--logdir", str(t / "file.txt" / "runs")), 1,
     r"cannot write the run to --logdir", "file"),
    ("val size too large", lambda r, t, c: _train(r, t, "softmax", "--val-size", "600"), 1,
     r"--val-size must be in \[0, 600\)", None),
    ("predict: not an image", lambda r, t, c: ["predict", str(c), str(t / "garbage.pt")], 1,
     r"garbage.pt is not a readable image", "garbage+checkpoint"),
    ("predict: missing image", lambda r, t, c: ["predict", str(c), str(t / "none.png")], 1, r"none.png does not exist",
     "checkpoint"),
    ("eval: not a checkpoint", lambda r, t, c: ["eval", str(t / "garbage.pt")], 1, r"could not be read", "garbage"),
    ("classes identical", lambda r, t, c: _train(r, t, "logreg", "--classes", "3,3"), 2,
     r"--classes: the two classes must differ", None),
    ("positive class not a digit", lambda r, t, c: _train(r, t, "logreg", "--positive-class", "12"), 2,
     r"--positive-class: expected a digit 0-9", None),
]


@pytest.mark.parametrize("name,argv,code,pattern,setup", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_command_line_bad_input(name, argv, code, pattern, setup, tiny_mnist, tmp_path, capsys, request):
    ckpt = None
    if setup == "garbage" or setup == "garbage+checkpoint":
        (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint, nor an image")
    if setup in ("checkpoint", "garbage+checkpoint"):
        ckpt = request.getfixturevalue("softmax_checkpoint")
        capsys.readouterr()
    if setup == "file":
        (tmp_path / "file.txt").write_text("a file where a folder should be")
    if callable(setup):
        setup(tiny_mnist)
    got, err = _run(argv(tiny_mnist, tmp_path, ckpt), capsys)
    assert got == code, err
    assert re.search(pattern, err, re.S), err
    assert "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_gpu(tiny_mnist, tmp_path, capsys):
    code, err = _run(_train(tiny_mnist, tmp_path, "softmax", "--device", "cuda"), capsys)
    assert code == 2 and "PyTorch sees no CUDA GPU" in err


def test_no_traceback_in_a_real_process(tmp_path):
    """The installed command prints one message and exits 1 — no traceback — on a data error."""
    proc = subprocess.run([sys.executable, "-m", "nnref.cli", "train", "softmax", "--data-root", str(tmp_path),
                           "--no-download", "--logdir", str(tmp_path / "runs")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "MNIST is not available" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "nnref.cli", "train", "softmax", "--lr", "-1"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--lr" in proc.stderr


# ------ API rows: the Functions' checks (tests/test_functional.py) and KNN's (tests/test_models.py) ------
def test_api_table_is_covered():
    """The Function rows of the README table are test_functional.BAD_INPUTS, run there; keep them all."""
    assert len(FUNCTION_BAD_INPUTS) >= 20
    kinds = {row[0] for row in FUNCTION_BAD_INPUTS}
    for needed in ("linear inner dims", "linear bias length", "ce batch mismatch", "ce float labels",
                   "ce label too large", "bce targets outside", "probs outside [0,1]", "linear x rank"):
        assert needed in kinds
    assert len(CLI_CASES) >= 25
