"""The bad-input tables: every way a user can feed nnref something wrong, and the error it must get.

README.md's "Bad input" table summarises these rows.  Each table is run by the test file of its module:
``FUNCTION_CASES`` by test_functional.py, ``KNN_CASES`` by test_models.py, ``CLI_CASES`` by test_cli.py.
"""

from __future__ import annotations

import struct

import torch
from conftest import write_idx_labels

import nnref.functional as F
from nnref.knn import KNNClassifier

D = torch.float64

# (id, call, exception type, message pattern)
FUNCTION_CASES = [
    ("linear x rank", lambda: F.linear(torch.randn(3), torch.randn(2, 3)), ValueError, r"x must have shape \(n, p\)"),
    ("linear W rank", lambda: F.linear(torch.randn(4, 3), torch.randn(3)), ValueError, r"W must have shape \(c, p\)"),
    ("linear inner dims", lambda: F.linear(torch.randn(4, 3), torch.randn(2, 5)), ValueError, "inner dimensions"),
    (
        "linear bias length",
        lambda: F.linear(torch.randn(4, 3), torch.randn(2, 3), torch.randn(3)),
        ValueError,
        r"b must have shape \(c,\) = \(2,\)",
    ),
    (
        "linear int x",
        lambda: F.linear(torch.ones(4, 3, dtype=torch.long), torch.randn(2, 3)),
        TypeError,
        "x must be a floating-point",
    ),
    ("linear dtype mix", lambda: F.linear(torch.randn(4, 3), torch.randn(2, 3, dtype=D)), TypeError, "one dtype"),
    ("linear not a tensor", lambda: F.linear([[1.0]], torch.randn(1, 1)), TypeError, "x must be a torch.Tensor"),
    ("softmax 0-d", lambda: F.softmax(torch.tensor(1.0)), ValueError, "at least one dimension"),
    ("sigmoid int", lambda: F.sigmoid(torch.ones(3, dtype=torch.long)), TypeError, "z must be a floating-point"),
    (
        "ce batch mismatch",
        lambda: F.softmax_cross_entropy(torch.randn(4, 3), torch.tensor([0, 1])),
        ValueError,
        "y has 2 entries but the batch has n = 4",
    ),
    (
        "ce float labels",
        lambda: F.softmax_cross_entropy(torch.randn(2, 3), torch.tensor([0.0, 1.0])),
        TypeError,
        "integer class indices",
    ),
    (
        "ce label too large",
        lambda: F.softmax_cross_entropy(torch.randn(2, 3), torch.tensor([0, 3])),
        ValueError,
        r"\[0, 3\).*found 3",
    ),
    (
        "ce negative label",
        lambda: F.cross_entropy(torch.full((2, 3), 1 / 3), torch.tensor([-1, 0])),
        ValueError,
        r"\[0, 3\).*found -1",
    ),
    (
        "ce logits rank",
        lambda: F.softmax_cross_entropy(torch.randn(3), torch.tensor([0])),
        ValueError,
        r"logits must have shape \(n, c\)",
    ),
    (
        "ce labels rank",
        lambda: F.softmax_cross_entropy(torch.randn(2, 3), torch.tensor([[0], [1]])),
        ValueError,
        r"y must have shape \(n,\)",
    ),
    (
        "probs outside [0,1]",
        lambda: F.cross_entropy(torch.tensor([[1.5, -0.5]]), torch.tensor([0])),
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    (
        "bce probs outside",
        lambda: F.binary_cross_entropy(torch.tensor([1.2]), torch.tensor([1.0])),
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    (
        "bce targets outside",
        lambda: F.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([2.0])),
        ValueError,
        r"binary targets.*\[0, 1\]",
    ),
    (
        "bce logits targets outside",
        lambda: F.sigmoid_binary_cross_entropy(torch.tensor([0.5]), torch.tensor([-1.0])),
        ValueError,
        r"binary targets.*\[0, 1\]",
    ),
    (
        "bce shape mismatch",
        lambda: F.sigmoid_binary_cross_entropy(torch.randn(4), torch.rand(3)),
        ValueError,
        "same shape",
    ),
    (
        "bad reduction",
        lambda: F.softmax_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), "avg"),
        ValueError,
        "reduction must be one of",
    ),
]


# (call, exception type, message pattern)
KNN_CASES = [
    (lambda: KNNClassifier(3).predict(torch.randn(2, 4)), RuntimeError, "before fit"),
    (
        lambda: KNNClassifier(3).fit(torch.randn(5, 4), torch.zeros(5, dtype=torch.long)).predict(torch.randn(2, 3)),
        ValueError,
        r"feature count seen in fit",
    ),
    (
        lambda: KNNClassifier(3).fit(torch.empty(0, 4), torch.empty(0, dtype=torch.long)),
        ValueError,
        "training set is empty",
    ),
    (
        lambda: KNNClassifier(6).fit(torch.randn(5, 4), torch.zeros(5, dtype=torch.long)).predict(torch.randn(1, 4)),
        ValueError,
        "larger than the training set",
    ),
    (lambda: KNNClassifier(0), ValueError, "k must be a positive integer"),
    (lambda: KNNClassifier(3, metric="chebyshev"), ValueError, "metric must be one of"),
    (lambda: KNNClassifier(3).fit(torch.randn(5, 4), torch.rand(5)), TypeError, "integer class labels"),
]


# --------------------------------------------------------------------------------------------------
# Command line and data: (id, argv builder(root, tmp, ckpt), exit code, stderr pattern, setup)
# --------------------------------------------------------------------------------------------------
def _train(root, tmp_path, *extra):
    return [
        "train",
        *extra[:1],
        "--data-root",
        str(root),
        "--no-download",
        "--val-size",
        "100",
        "--logdir",
        str(tmp_path / "runs"),
        "--quiet",
        *extra[1:],
    ]


def _raw(root, name):
    return root / "MNIST" / "raw" / name


def _truncate(root):
    p = _raw(root, "train-images-idx3-ubyte")
    p.write_bytes(p.read_bytes()[:1000])


def _bad_magic(root):
    p = _raw(root, "t10k-images-idx3-ubyte")
    p.write_bytes(struct.pack(">I", 0x0801) + p.read_bytes()[4:])


def _count_mismatch(root):
    write_idx_labels(_raw(root, "train-labels-idx1-ubyte"), torch.zeros(10, dtype=torch.uint8))


# (id, argv builder(root, tmp, ckpt), exit code, stderr pattern, data corruption)
CLI_CASES = [
    ("unknown model", lambda r, t, c: ["train", "cnn"], 2, r"invalid choice: 'cnn'", None),
    ("lr zero", lambda r, t, c: _train(r, t, "softmax", "--lr", "0"), 2, r"--lr: must be a finite number > 0", None),
    (
        "lr negative",
        lambda r, t, c: _train(r, t, "softmax", "--lr", "-0.1"),
        2,
        r"--lr: must be a finite number > 0",
        None,
    ),
    ("lr not a number", lambda r, t, c: _train(r, t, "softmax", "--lr", "fast"), 2, r"--lr: expected a number", None),
    ("epochs zero", lambda r, t, c: _train(r, t, "softmax", "--epochs", "0"), 2, r"--epochs: must be at least 1", None),
    (
        "batch size zero",
        lambda r, t, c: _train(r, t, "softmax", "--batch-size", "0"),
        2,
        r"--batch-size: must be at least 1",
        None,
    ),
    ("k zero", lambda r, t, c: _train(r, t, "knn", "--k", "0"), 2, r"--k: every size must be at least 1", None),
    (
        "k larger than training set",
        lambda r, t, c: _train(r, t, "knn", "--k", "501"),
        1,
        r"k = 501 is larger than the training set \(500 images\)",
        None,
    ),
    ("hidden empty", lambda r, t, c: _train(r, t, "mlp", "--hidden", ""), 2, r"--hidden: expected one or more", None),
    (
        "hidden zero",
        lambda r, t, c: _train(r, t, "mlp", "--hidden", "300,0"),
        2,
        r"--hidden: every size must be at least 1",
        None,
    ),
    (
        "unknown activation",
        lambda r, t, c: _train(r, t, "mlp", "--activation", "gelu"),
        2,
        r"--activation: invalid choice: 'gelu'",
        None,
    ),
    (
        "unknown metric",
        lambda r, t, c: _train(r, t, "knn", "--metric", "hamming"),
        2,
        r"--metric: invalid choice",
        None,
    ),
    (
        "unknown device",
        lambda r, t, c: _train(r, t, "softmax", "--device", "tpu"),
        2,
        r"--device: expected auto, cpu, cuda or cuda:N",
        None,
    ),
    (
        "missing --resume file",
        lambda r, t, c: _train(r, t, "softmax", "--resume", str(t / "nope.pt")),
        1,
        r"checkpoint .*nope.pt does not exist",
        None,
    ),
    (
        "unreadable --resume file",
        lambda r, t, c: _train(r, t, "softmax", "--resume", str(t / "garbage.pt")),
        1,
        r"garbage.pt could not be read as an nnref checkpoint",
        "garbage",
    ),
    (
        "checkpoint of another model",
        lambda r, t, c: _train(r, t, "mlp", "--resume", str(c)),
        1,
        r"written by a 'softmax' run, it cannot resume a 'mlp' run",
        "checkpoint",
    ),
    (
        "dataset missing, downloads off",
        lambda r, t, c: _train(t / "empty", t, "softmax"),
        1,
        r"MNIST is not available under .*empty.*train-images-idx3-ubyte",
        None,
    ),
    (
        "truncated IDX file",
        lambda r, t, c: _train(r, t, "softmax"),
        1,
        r"train-images-idx3-ubyte is truncated: 1000 bytes",
        _truncate,
    ),
    (
        "wrong magic number",
        lambda r, t, c: _train(r, t, "softmax"),
        1,
        r"t10k-images-idx3-ubyte is corrupt: magic number 0x00000801",
        _bad_magic,
    ),
    (
        "image/label counts differ",
        lambda r, t, c: _train(r, t, "softmax"),
        1,
        r"600 images but .* 10 labels",
        _count_mismatch,
    ),
    (
        "unwritable --logdir",
        lambda r, t, c: _train(r, t, "softmax", "--logdir", str(t / "file.txt" / "runs")),
        1,
        r"cannot write the run to --logdir",
        "file",
    ),
    (
        "val size too large",
        lambda r, t, c: _train(r, t, "softmax", "--val-size", "600"),
        1,
        r"--val-size must be in \[0, 600\)",
        None,
    ),
    (
        "predict: not an image",
        lambda r, t, c: ["predict", str(c), str(t / "garbage.pt")],
        1,
        r"garbage.pt is not a picture nnref can read",
        "garbage+checkpoint",
    ),
    (
        "predict: missing image",
        lambda r, t, c: ["predict", str(c), str(t / "none.png")],
        1,
        r"none.png does not exist",
        "checkpoint",
    ),
    ("eval: not a checkpoint", lambda r, t, c: ["eval", str(t / "garbage.pt")], 1, r"could not be read", "garbage"),
    (
        "classes identical",
        lambda r, t, c: _train(r, t, "logreg", "--classes", "3,3"),
        2,
        r"--classes: the two classes must differ",
        None,
    ),
    (
        "positive class not a digit",
        lambda r, t, c: _train(r, t, "logreg", "--positive-class", "12"),
        2,
        r"--positive-class: expected a digit 0-9",
        None,
    ),
]
