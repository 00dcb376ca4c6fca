"""nnref.runlog: what a run writes for TensorBoard, read back from the event files and from a real server."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import urllib.parse

import pytest

from helpers import events, free_port, get_json, scalar, train_args
from nnref.cli import main
from nnref.config import TrainConfig, TrainingError
from nnref.runlog import make_run_dir


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


def test_knn_run_logs_each_k_and_neighbours(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "knn", "--k", "1,3,5")) == 0
    ea = events(tmp_path / "run")
    assert [s for s, _ in scalar(ea, "accuracy/test")] == [1, 3, 5]
    assert all(v > 0.9 for _, v in scalar(ea, "accuracy/test"))
    assert "knn/neighbours" in ea.Tags()["images"]


def test_run_dir_must_be_writable(tmp_path):
    (tmp_path / "file.txt").write_text("a file where a folder should be")
    with pytest.raises(TrainingError, match="cannot write the run to --logdir"):
        make_run_dir(TrainConfig(logdir=str(tmp_path / "file.txt"), run_name="r"))
    assert make_run_dir(TrainConfig(model="mlp", logdir=str(tmp_path))).name.startswith("mlp-")


def test_tensorboard_server_serves_the_scalars(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2")) == 0
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host",
                               "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, runs = time.time() + 90, []
        while time.time() < deadline and "run" not in runs:
            assert server.poll() is None, server.stderr.read()
            try:
                runs = get_json(port, "/data/runs")
            except OSError:
                pass
            time.sleep(0.5)
        assert "run" in runs
        tags = get_json(port, "/data/plugin/scalars/tags")
        assert {"loss/train", "loss/val", "accuracy/val", "accuracy/test", "lr"} <= set(tags["run"])
        q = urllib.parse.urlencode({"run": "run", "tag": "accuracy/val"})
        points = get_json(port, f"/data/plugin/scalars/scalars?{q}")
        assert len(points) == 2 and all(0 <= p[2] <= 1 for p in points)  # [wall_time, step, value]
        local = scalar(events(tmp_path / "run"), "accuracy/val")
        assert [(p[1], pytest.approx(p[2])) for p in points] == local
    finally:
        server.terminate()
        server.wait(timeout=30)
