"""nnref.runlog: what a run writes for TensorBoard, read back from the event files and from a real server."""

from __future__ import annotations

import math
import urllib.parse

import pytest
from helpers import events, scalar, train_args

from nnref.cli import main
from nnref.run.config import TrainConfig, TrainingError
from nnref.run.runlog import make_run_dir


def test_tensorboard_run_holds_everything(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2", "--log-every", "2")) == 0
    run = tmp_path / "run"
    # the per-epoch curves live in two sub-runs (one chart per tag, train and val as two lines); hparams do not
    # make a stray sibling run; the projector's files are in 00000/
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["00000", "train", "val"]
    ea = events(run)
    tags = ea.Tags()
    for tag in ("accuracy/test", "loss/test", "lr", "loss/train_step"):
        values = [v for _, v in scalar(ea, tag)]
        assert values and all(math.isfinite(v) for v in values), tag
    for split in ("train", "val"):
        sub = events(run / split)
        assert sorted(sub.Tags()["scalars"]) == ["accuracy", "loss"]
        for tag in ("accuracy", "loss"):
            points = scalar(sub, tag)
            assert [s for s, _ in points] == [s for s, _ in scalar(ea, "lr")], (split, tag)  # once per epoch
            assert all(math.isfinite(v) for _, v in points)
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
    from tensorboard.plugins.hparams import plugin_data_pb2

    experiment = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/experiment"]).experiment
    sources = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert sources == {("", "accuracy/test"), ("", "loss/test"), ("val", "accuracy")}
    assert {"pr/0", "pr/9"} <= set(tags["tensors"]) or {"pr/0", "pr/9"} <= set(ea.PluginTagToContent("pr_curves"))


def test_mlp_logs_first_layer_filters(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "mlp", "--epochs", "1", "--hidden", "16")) == 0
    tags = events(tmp_path / "run").Tags()
    assert "weights/first_layer_filters" in tags["images"]
    assert "params/layers.0.weight" in tags["histograms"]


def test_knn_run_logs_each_k_and_neighbours(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path, "knn", "--k", "1,3,5")) == 0
    ea = events(tmp_path / "run")
    assert [s for s, _ in scalar(ea, "accuracy_by_k/test")] == [1, 3, 5]
    assert [s for s, _ in scalar(ea, "accuracy_by_k/val")] == [1, 3, 5]
    assert all(v > 0.9 for _, v in scalar(ea, "accuracy_by_k/test"))
    assert "knn/neighbours" in ea.Tags()["images"]


def test_run_dir_must_be_writable(tmp_path):
    (tmp_path / "file.txt").write_text("a file where a folder should be")
    with pytest.raises(TrainingError, match="cannot write the run to --logdir"):
        make_run_dir(TrainConfig(logdir=str(tmp_path / "file.txt"), run_name="r"))
    assert make_run_dir(TrainConfig(model="mlp", logdir=str(tmp_path))).name.startswith("mlp-")


def test_tensorboard_server_serves_the_scalars(tiny_mnist, tmp_path):
    from tensorboard_view import TensorBoardServer

    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2")) == 0
    with TensorBoardServer(tmp_path) as server:
        server.wait_for_runs(["run", "run/val"])
        tags = server.get("/data/plugin/scalars/tags")
        assert {"accuracy/test", "loss/test", "lr"} <= set(tags["run"])
        assert set(tags["run/train"]) == set(tags["run/val"]) == {"loss", "accuracy"}
        q = urllib.parse.urlencode({"run": "run/val", "tag": "accuracy"})
        points = server.get(f"/data/plugin/scalars/scalars?{q}")
        assert len(points) == 2 and all(0 <= p[2] <= 1 for p in points)  # [wall_time, step, value]
        local = scalar(events(tmp_path / "run" / "val"), "accuracy")
        assert [(p[1], pytest.approx(p[2])) for p in points] == local


def test_projector_and_pr_curves_are_served(tiny_mnist, tmp_path):
    """The projector serves the test images' pixels (once) and the MLP's last hidden layer before and after
    training, each with labels and a sprite; the PR-curve plugin has one curve per class."""
    import numpy as np
    from tensorboard_view import TensorBoardServer

    from nnref.data import load_splits

    assert main(train_args(tiny_mnist, tmp_path, "mlp", "--epochs", "2", "--hidden", "16")) == 0
    test_y = load_splits(tiny_mnist, download=False, val_size=100).test_y
    with TensorBoardServer(tmp_path) as server:
        server.wait_for_runs(["run"])
        assert server.get("/data/plugin/projector/runs") == ["run"]
        embeddings = {e["tensorName"]: e for e in server.get("/data/plugin/projector/info?run=run")["embeddings"]}
        assert set(embeddings) == {
            "test_images/pixels:00000",
            "test_images/last_hidden_layer:00000",
            "test_images/last_hidden_layer:00008",
        }  # 4 steps per epoch, 2 epochs
        before = after = None
        for name, e in embeddings.items():
            q = urllib.parse.urlencode({"run": "run", "name": name})
            rows, dim = e["tensorShape"]
            assert rows == 200 and dim == (784 if "pixels" in name else 16)
            tensor = np.frombuffer(server.get(f"/data/plugin/projector/tensor?{q}"), dtype=np.float32)
            assert tensor.size == rows * dim and np.isfinite(tensor).all()
            labels = server.get(f"/data/plugin/projector/metadata?{q}").decode().split()
            assert labels == [str(int(y)) for y in test_y]
            assert server.get(f"/data/plugin/projector/sprite_image?{q}")[:8] == b"\x89PNG\r\n\x1a\n"
            if "hidden" in name:
                before, after = (tensor, after) if name.endswith("00000") else (before, tensor)
        assert not np.allclose(before, after)  # the hidden layer changed as the network learned
        pr = server.get("/data/plugin/pr_curves/tags")["run"]
        assert set(pr) == {f"pr/{c}" for c in range(10)}
