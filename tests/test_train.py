"""nnref.train through the command line, as a user calls it: training, TensorBoard, checkpoints, resume."""

from __future__ import annotations

import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import json
from pathlib import Path

import pytest
import torch

from nnref.cli import main
from nnref.train import load_checkpoint

TB_SIZE = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance=TB_SIZE)
    ea.Reload()
    return ea


def scalar(ea, tag):
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def train_args(root, logdir, model, *extra):
    return ["train", model, "--data-root", str(root), "--no-download", "--val-size", "100", "--logdir", str(logdir),
            "--run-name", "run", "--quiet", *extra]


@pytest.mark.parametrize("model,extra", [
    ("logreg", ["--epochs", "3"]),
    ("softmax", ["--epochs", "3"]),
    ("mlp", ["--epochs", "3", "--hidden", "32,16", "--activation", "tanh"]),
    ("softmax", ["--epochs", "3", "--loss", "unfused"]),
    ("logreg", ["--epochs", "3", "--classes", "3,8", "--loss", "unfused", "--batch-size", "1", "--lr", "0.01"]),
])
def test_each_model_trains_through_the_cli(tiny_mnist, tmp_path, model, extra):
    assert main(train_args(tiny_mnist, tmp_path, model, *extra)) == 0
    ea = events(tmp_path / "run")
    losses = [v for _, v in scalar(ea, "loss/train")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert scalar(ea, "accuracy/test")[0][1] > 0.5
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_tensorboard_run_holds_everything(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2", "--log-every", "2")) == 0
    run = tmp_path / "run"
    assert [p.name for p in run.iterdir() if p.is_dir()] == []  # hparams are not a stray sibling run
    ea = events(run)
    tags = ea.Tags()
    for tag in ("loss/train", "loss/val", "accuracy/train", "accuracy/val", "accuracy/test", "lr", "loss/train_step"):
        values = [v for _, v in scalar(ea, tag)]
        assert values and all(math.isfinite(v) for v in values), tag
    assert len(scalar(ea, "loss/val")) == 2
    for name in ("linear.weight", "linear.bias"):
        assert f"params/{name}" in tags["histograms"] and f"grads/{name}" in tags["histograms"]
        assert len(ea.Histograms(f"params/{name}")) == 2
    for tag in ("weights/templates", "test/misclassified", "test/confusion_matrix"):
        assert tag in tags["images"], tag
        img = ea.Images(tag)[0]
        assert img.width > 100 and img.height > 100
    assert "config/text_summary" in tags["tensors"] and "command/text_summary" in tags["tensors"]
    hp = ea.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hp and "_hparams_/session_start_info" in hp
    start = hp["_hparams_/session_start_info"]
    assert b"lr" in start and b"batch_size" in start


def test_mlp_logs_first_layer_filters(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "mlp", "--epochs", "1", "--hidden", "16")) == 0
    tags = events(tmp_path / "run").Tags()
    assert "weights/first_layer_filters" in tags["images"]
    assert "params/layers.0.weight" in tags["histograms"]


def test_knn_run_logs_each_k_and_neighbours(tiny_mnist, tmp_path, capsys):
    assert main(train_args(tiny_mnist, tmp_path, "knn", "--k", "1,3,5")) == 0
    ea = events(tmp_path / "run")
    assert [s for s, _ in scalar(ea, "accuracy/test")] == [1, 3, 5]
    assert all(v > 0.9 for _, v in scalar(ea, "accuracy/test"))
    assert "knn/neighbours" in ea.Tags()["images"]


def test_dry_run_writes_nothing(tiny_mnist, tmp_path, capsys):
    assert main(train_args(tiny_mnist, tmp_path / "logs", "mlp", "--dry-run", "--hidden", "8")) == 0
    assert not (tmp_path / "logs").exists()


def test_checkpoint_loads_with_weights_only_and_resume_round_trip(tiny_mnist, tmp_path):
    common = ["--epochs", "4", "--lr-schedule", "constant", "--hidden", "16", "--seed", "3"]
    assert main(train_args(tiny_mnist, tmp_path / "a", "mlp", *common)) == 0
    full = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)
    assert full["epoch"] == 4 and full["config"]["model"] == "mlp"
    half = train_args(tiny_mnist, tmp_path / "b", "mlp", *common)
    half[half.index("--epochs") + 1] = "2"
    assert main(half) == 0
    ckpt = tmp_path / "b" / "run" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["epoch"] == 2
    assert main(["train", "mlp", "--resume", str(ckpt), "--epochs", "4", "--quiet", "--data-root", str(tiny_mnist),
                 "--no-download"]) == 0
    resumed = torch.load(ckpt, weights_only=True)
    assert resumed["epoch"] == 4
    for k in full["model"]:
        assert torch.equal(full["model"][k], resumed["model"][k]), k
    ea = events(tmp_path / "b" / "run")
    assert [s for s, _ in scalar(ea, "loss/train")] == [s for s, _ in scalar(events(tmp_path / "a" / "run"), "loss/train")]


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tiny_mnist, tmp_path, capsys):
    args = train_args(tiny_mnist, tmp_path, "mlp", "--epochs", "3", "--lr", "1e6", "--checkpoint-every", "1",
                      "--hidden", "64", "--lr-schedule", "constant")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert re.search(r"training diverged: the loss or a gradient became NaN/Inf at epoch \d+, step \d+ of the epoch",
                     err), err
    assert "untouched" in err and "smaller --lr" in err
    step = int(err.split("global step ")[1].split(")")[0])
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["global_step"] == step - 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert not list((tmp_path / "run").glob(".checkpoint-*"))  # no torn temporary file left behind


# --------------------------------------------------------------------------------------------------
# kill -9 at an arbitrary point, resume, and get bit-identical weights
# --------------------------------------------------------------------------------------------------
def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nnref.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_then_resume_is_bit_identical(tiny_mnist, tmp_path, seed):
    common = ["--epochs", "8", "--batch-size", "8", "--hidden", "64", "--checkpoint-every", "20", "--seed", str(seed),
              "--momentum", "0.9", "--lr", "0.01"]
    ref = _cli(*train_args(tiny_mnist, tmp_path / "ref", "mlp", *common))
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    reference = torch.load(tmp_path / "ref" / "run" / "checkpoint.pt", weights_only=True)
    total = reference["global_step"]

    victim = _cli(*train_args(tiny_mnist, tmp_path / "kill", "mlp", *common))
    ckpt = tmp_path / "kill" / "run" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.05, 0.6))  # an arbitrary point after the first checkpoint
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    state = load_checkpoint(ckpt)
    assert 0 < state["global_step"] < total
    resume = _cli("train", "mlp", "--resume", str(ckpt), "--quiet", "--data-root", str(tiny_mnist), "--no-download")
    out, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    final = torch.load(ckpt, weights_only=True)
    assert final["global_step"] == total
    for k in reference["model"]:
        assert torch.equal(reference["model"][k], final["model"][k]), k
    for a, b in zip(reference["optimizer"]["state"].values(), final["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    # the resumed TensorBoard run shows each step once, the same steps as the uninterrupted run
    ea, ea_ref = events(ckpt.parent), events(tmp_path / "ref" / "run")
    for tag in ("loss/train_step", "loss/train", "accuracy/val"):
        steps = [s for s, _ in scalar(ea, tag)]
        assert steps == sorted(set(steps)) == [s for s, _ in scalar(ea_ref, tag)], tag


# --------------------------------------------------------------------------------------------------
# A real TensorBoard server reads the run back over HTTP
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def test_tensorboard_server_serves_the_scalars(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2")) == 0
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host",
                               "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, runs = time.time() + 90, []
        while time.time() < deadline and "run" not in runs:
            assert server.poll() is None, server.stderr.read()
            try:
                runs = _get(port, "/data/runs")
            except OSError:
                pass
            time.sleep(0.5)
        assert "run" in runs
        tags = _get(port, "/data/plugin/scalars/tags")
        assert {"loss/train", "loss/val", "accuracy/val", "accuracy/test", "lr"} <= set(tags["run"])
        q = urllib.parse.urlencode({"run": "run", "tag": "accuracy/val"})
        points = _get(port, f"/data/plugin/scalars/scalars?{q}")
        assert len(points) == 2 and all(0 <= p[2] <= 1 for p in points)  # [wall_time, step, value]
        local = scalar(events(tmp_path / "run"), "accuracy/val")
        assert [(p[1], pytest.approx(p[2])) for p in points] == local
    finally:
        server.terminate()
        server.wait(timeout=30)


# --------------------------------------------------------------------------------------------------
# eval and predict
# --------------------------------------------------------------------------------------------------
def test_eval_prints_accuracy_and_confusion_matrix(tiny_mnist, tmp_path, capsys):
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2")) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run" / "checkpoint.pt"), "--data-root", str(tiny_mnist), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "confusion matrix" in out
    rows = [line for line in out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 10
    assert sum(int(v) for line in rows for v in line.split()[1:]) == 200


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
