"""nnref.evaluate: ``nnref eval`` and ``nnref predict`` report what the training run reported."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import events, scalar, train_args

from nnref.cli import main
from nnref.data import load_splits
from nnref.run.evaluate import evaluate, evaluate_checkpoint, load_image, load_model, predict_image
from nnref.run.knn import chosen_k


def _printed_accuracy(out: str) -> float:
    correct, total = re.search(r"test accuracy: [\d.]+% \((\d+)/(\d+)\)", out).groups()
    return int(correct) / int(total)


def _printed_matrix(out: str, classes: int) -> list[list[int]]:
    rows = out.split("columns: predicted class)\n")[1].splitlines()[1 : 1 + classes]
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
    best_k = chosen_k(torch.load(ckpt, weights_only=True))
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


def test_a_knn_checkpoint_of_nnref_0_1_loads_and_votes_as_it_did(hard_mnist, tmp_path, capsys):
    """tests/data/knn-checkpoint-0.1.pt was written by nnref 0.1.0 (float records) with
    ``nnref train knn --k 1,3,5 --val-size 100`` on ``hard_mnist``; today's byte records predict what it stored."""
    from pathlib import Path

    old = Path(__file__).parent / "data" / "knn-checkpoint-0.1.pt"
    state = torch.load(old, weights_only=True)
    assert state["best_k"] == 5 and state["model"] is None  # a KNN checkpoint keeps no records: MNIST is re-read
    model, cfg = load_model(old, data_root=hard_mnist)
    assert model.stores_bytes and model.k == 5
    data = load_splits(hard_mnist, download=False, val_size=cfg.val_size, pixels=cfg.pixels)
    assert torch.equal(model.predict(data.test_x), state["test_predictions"])
    assert main(["eval", str(old), "--data-root", str(hard_mnist), "--no-download"]) == 0
    assert _printed_accuracy(capsys.readouterr().out) == pytest.approx(state["final"]["test_acc"], abs=1e-7)
    # today's run of the same command: the same choice, the same accuracies, a quarter of the records' memory
    assert main(train_args(hard_mnist, tmp_path, "knn", "--k", "1,3,5")) == 0
    new = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert new["best_k"] == state["best_k"] and new["results"] == state["results"]
    assert torch.equal(new["test_predictions"], state["test_predictions"])
    (old_bytes,), (new_bytes,) = state["final"]["records_bytes_per_rank"], new["final"]["records_bytes_per_rank"]
    assert new_bytes < 0.3 * old_bytes


def test_knn_chosen_k_for_checkpoints_without_best_k():
    results = {1: {"val_acc": 0.5}, 3: {"val_acc": 0.7}, 5: {"val_acc": 0.7}}
    assert chosen_k({"config": {"k": [1, 3, 5]}, "results": results}) == 3  # ties: the smaller k
    nan = {k: {"val_acc": float("nan")} for k in (5, 1)}
    assert chosen_k({"config": {"k": [5, 1]}, "results": nan}) == 5  # no validation: the first k asked for


def test_evaluate_checkpoint_returns_values(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "logreg", "--epochs", "2", "--classes", "3,8")) == 0
    r = evaluate_checkpoint(tmp_path / "run" / "checkpoint.pt", tiny_mnist, download=False, device="cpu")
    # 40 test images of 3 and 8, each class a distinct bar: a trained line separates them all
    assert r.class_names == ["3", "8"] and r.total == 40 == int(r.confusion.sum()) and r.accuracy == 1.0
    assert r.confusion.tolist() == [[20, 0], [0, 20]] and r.k is None
    model, cfg = load_model(tmp_path / "run" / "checkpoint.pt")
    assert cfg.model == "logreg" and not model.training and model.predict_proba(torch.zeros(2, 784)).shape == (2, 2)


def _pictures(root, folder, count=6):
    """MNIST test digits as people make pictures of them: ink on paper (JPEG), strokes on a canvas (PNG)."""
    from nnref.bench.digits import render
    from nnref.data import load_mnist

    images, labels = load_mnist(root, train=False, download=False)
    folder.mkdir()
    g = torch.Generator().manual_seed(4)
    for i in range(count):
        style = "paper" if i % 2 else "canvas"
        (folder / f"{i}-{int(labels[i])}.{'jpg' if style == 'paper' else 'png'}").write_bytes(
            render(images[i], style, g)
        )
    return [int(v) for v in labels[:count]]


def test_predict_classifies_pictures_and_folders_one_line_each(mnist_mlp, tmp_path, capsys):
    checkpoint, root = mnist_mlp
    labels = _pictures(root, tmp_path / "pics")
    capsys.readouterr()
    assert main(["predict", str(checkpoint), str(tmp_path / "pics")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    for i, (line, label) in enumerate(zip(lines, labels)):
        name, guess = re.fullmatch(r"(.+): (\d) \((\d+\.\d)%\)", line).group(1, 2)
        assert name.endswith(f"{i}-{label}.{'jpg' if i % 2 else 'png'}") and int(guess) == label
    files = sorted(str(p) for p in (tmp_path / "pics").iterdir())[:2]
    assert main(["predict", str(checkpoint), *files]) == 0 and len(capsys.readouterr().out.splitlines()) == 2


def test_predict_json_and_show_input(mnist_mlp, tmp_path, capsys):
    import json

    from PIL import Image

    checkpoint, root = mnist_mlp
    labels = _pictures(root, tmp_path / "pics", count=3)
    Image.new("L", (120, 80), 235).save(tmp_path / "pics" / "blank.png")
    capsys.readouterr()
    assert (
        main(["predict", str(checkpoint), str(tmp_path / "pics"), "--json", "--show-input", str(tmp_path / "in")]) == 1
    )
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert [r["image"].rsplit("/", 1)[1] for r in results] == ["0-7.png", "1-2.jpg", "2-1.png", "blank.png"]
    for r, label in zip(results[:3], labels):
        assert r["prediction"] == str(label) and abs(sum(r["probabilities"].values()) - 1) < 1e-5
        assert r["probability"] == max(r["probabilities"].values())
    assert results[3] == {"image": str(tmp_path / "pics" / "blank.png"), "error": results[3]["error"]}
    assert "no digit found" in results[3]["error"] and "blank.png: no digit found" in err  # exit 1: one had no digit
    shown = sorted(p.name for p in (tmp_path / "in").iterdir())
    assert shown == ["0-7.png", "1-2.png", "2-1.png"]
    with Image.open(tmp_path / "in" / "0-7.png") as im:
        assert im.size == (28, 28) and im.mode == "L"


def test_predict_with_a_knn_checkpoint_votes_with_its_chosen_k(mnist_mlp, tmp_path, capsys):
    checkpoint, root = mnist_mlp
    labels = _pictures(root, tmp_path / "pics", count=2)
    assert (
        main(
            [
                "train",
                "knn",
                "--k",
                "1,3",
                "--limit-train",
                "5000",
                "--data-root",
                str(root),
                "--no-download",
                "--logdir",
                str(tmp_path),
                "--run-name",
                "knn",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "knn" / "checkpoint.pt"), str(tmp_path / "pics"), "--json"]) == 0
    import json

    results = json.loads(capsys.readouterr().out)
    k = torch.load(tmp_path / "knn" / "checkpoint.pt", weights_only=True)["best_k"]
    for r, label in zip(results, labels):
        assert r["prediction"] == str(label)
        assert all(round(p * k) == p * k for p in r["probabilities"].values())  # vote shares of k neighbours


def test_predict_piped_into_head_ends_quietly(mnist_mlp, tmp_path):
    """``nnref predict … | head -1``: the reader goes after one line; no "Broken pipe" error, exit 0."""
    import os
    import subprocess
    import sys

    checkpoint, root = mnist_mlp
    _pictures(root, tmp_path / "pics", count=2)
    many = [str(p) for p in sorted((tmp_path / "pics").iterdir())] * 10
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # every line written at once: the second one meets the closed pipe
    head = subprocess.Popen(
        [sys.executable, "-m", "nnref", "predict", str(checkpoint), *many],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    first = head.stdout.readline()
    head.stdout.close()
    err = head.stderr.read().decode()
    assert head.wait(timeout=300) == 0 and b": " in first
    assert "Broken pipe" not in err and "Traceback" not in err, err


def test_load_image_keeps_its_name_and_prepares_like_mnist(mnist_mlp, tmp_path):
    checkpoint, root = mnist_mlp
    labels = _pictures(root, tmp_path / "pics", count=1)
    row = load_image(next((tmp_path / "pics").iterdir()))
    assert row.shape == (1, 784)
    model, _ = load_model(checkpoint)
    assert int(model.predict(row)) == labels[0]
    assert predict_image(checkpoint, next((tmp_path / "pics").iterdir())).class_names[:2] == ["0", "1"]
