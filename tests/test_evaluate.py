"""nnref.evaluate: ``nnref eval`` and ``nnref predict`` report what the training run reported."""

from __future__ import annotations

import re

import pytest
import torch

from helpers import events, scalar, train_args
from nnref.cli import main
from nnref.data import load_splits
from nnref.evaluate import evaluate, evaluate_checkpoint, knn_chosen_k, load_model
from nnref.models import KNNClassifier


def _printed_accuracy(out: str) -> float:
    correct, total = re.search(r"test accuracy: [\d.]+% \((\d+)/(\d+)\)", out).groups()
    return int(correct) / int(total)


def _printed_matrix(out: str, classes: int) -> list[list[int]]:
    rows = out.split("columns: predicted class)\n")[1].splitlines()[1:1 + classes]
    return [[int(v) for v in line.split()[1:]] for line in rows]


def test_eval_of_softmax_prints_the_logged_test_accuracy_and_sklearns_confusion_matrix(tiny_mnist, tmp_path, capsys):
    from sklearn.metrics import confusion_matrix

    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2")) == 0
    ckpt = tmp_path / "run" / "checkpoint.pt"
    capsys.readouterr()
    assert main(["eval", str(ckpt), "--data-root", str(tiny_mnist), "--no-download"]) == 0
    out = capsys.readouterr().out
    logged = scalar(events(tmp_path / "run"), "accuracy/test")[-1][1]
    assert _printed_accuracy(out) == pytest.approx(logged, abs=1e-7)
    model, _ = load_model(ckpt)
    data = load_splits(tiny_mnist, download=False, val_size=100)
    _, _, pred = evaluate(model, data.test_x, data.test_y)
    assert _printed_matrix(out, 10) == confusion_matrix(data.test_y.numpy(), pred.numpy(), labels=range(10)).tolist()


def test_eval_of_knn_votes_with_the_k_chosen_on_validation(hard_mnist, tmp_path, capsys):
    from sklearn.metrics import confusion_matrix
    from sklearn.neighbors import KNeighborsClassifier

    assert main(train_args(hard_mnist, tmp_path, "knn", "--k", "1,5,9")) == 0
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ea = events(tmp_path / "run")
    by_k = dict(scalar(ea, "accuracy_by_k/test"))
    best_k = knn_chosen_k(torch.load(ckpt, weights_only=True))
    assert best_k != 9 and by_k[best_k] != by_k[9]  # the old bug (voting with the largest k) would show
    assert scalar(ea, "accuracy/test") == [(best_k, by_k[best_k])]  # the run's reported accuracy: the chosen k
    logged = {best_k: by_k[best_k]}
    capsys.readouterr()
    assert main(["eval", str(ckpt), "--data-root", str(hard_mnist), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert f"(k = {best_k}, chosen on validation)" in out
    assert _printed_accuracy(out) == pytest.approx(logged[best_k], abs=1e-7)
    data = load_splits(hard_mnist, download=False, val_size=100)
    sk = KNeighborsClassifier(best_k, algorithm="brute").fit(data.train_x.numpy(), data.train_y.numpy())
    expected = confusion_matrix(data.test_y.numpy(), sk.predict(data.test_x.numpy()), labels=range(10))
    assert _printed_matrix(out, 10) == expected.tolist()


def test_knn_chosen_k_for_checkpoints_without_best_k():
    results = {1: {"val_acc": 0.5}, 3: {"val_acc": 0.7}, 5: {"val_acc": 0.7}}
    assert knn_chosen_k({"config": {"k": [1, 3, 5]}, "results": results}) == 3  # ties: the smaller k
    nan = {k: {"val_acc": float("nan")} for k in (5, 1)}
    assert knn_chosen_k({"config": {"k": [5, 1]}, "results": nan}) == 5  # no validation: the first k asked for


def test_evaluate_checkpoint_returns_values(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "logreg", "--epochs", "1", "--classes", "3,8")) == 0
    r = evaluate_checkpoint(tmp_path / "run" / "checkpoint.pt", tiny_mnist, download=False, device="cpu")
    assert r.class_names == ["3", "8"] and r.total == int(r.confusion.sum()) and 0.5 < r.accuracy <= 1
    knn, _ = load_model(tmp_path / "run" / "checkpoint.pt")
    assert not isinstance(knn, KNNClassifier) and not knn.training


def test_predict_classifies_an_image_file(tiny_mnist, tmp_path, capsys):
    from PIL import Image

    from nnref.data import load_mnist

    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "3")) == 0
    images, labels = load_mnist(tiny_mnist, train=False, download=False)
    png = tmp_path / "digit.png"
    Image.fromarray(images[0].numpy()).resize((56, 56)).save(png)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run" / "checkpoint.pt"), str(png)]) == 0
    out = capsys.readouterr().out
    assert f"predicted {int(labels[0])}" in out
    probs = [float(line.split()[1].rstrip("%")) for line in out.splitlines()[1:]]
    assert len(probs) == 10 and abs(sum(probs) - 100) < 0.1
    # the same digit, dark on white paper, is inverted and still recognised
    Image.fromarray(255 - images[0].numpy()).save(png)
    assert main(["predict", str(tmp_path / "run" / "checkpoint.pt"), str(png)]) == 0
    assert f"predicted {int(labels[0])}" in capsys.readouterr().out
