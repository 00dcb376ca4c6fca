"""nnref.run.launch: ``nnref train MODEL`` to the program that runs it, called directly (not through the CLI)."""

from __future__ import annotations

import pytest

from nnref.run import launch
from nnref.run.config import KNNConfig, TrainConfig


def test_the_model_picks_the_configuration():
    assert {m: launch.config_class(m) for m in ("logreg", "softmax", "mlp", "knn")} == {
        "logreg": TrainConfig,
        "softmax": TrainConfig,
        "mlp": TrainConfig,
        "knn": KNNConfig,
    }


def test_options_a_model_does_not_take_are_named_and_refused_before_anything_runs(tmp_path):
    assert launch.foreign_options("knn", {"k": (1, 3), "lr": 0.1, "hidden": (8,)}) == ["hidden", "lr"]
    assert launch.foreign_options("mlp", {"lr": 0.1, "k": (3,)}) == ["k"]
    with pytest.raises(ValueError, match="hidden, lr do not apply to knn"):
        launch.train("knn", {"lr": 0.1, "hidden": (8,), "logdir": str(tmp_path)})
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


@pytest.mark.parametrize("model", ["softmax", "knn"])
def test_each_model_runs_its_program_and_returns_its_results(tiny_mnist, tmp_path, model):
    options = {"data_root": str(tiny_mnist), "download": False, "val_size": 100, "quiet": True}
    options |= {"logdir": str(tmp_path), "run_name": "run"}
    options |= {"epochs": 1, "batch_size": 100} if model == "softmax" else {"k": (1, 3)}
    lines = []
    results = launch.train(model, options, console=lines.append)
    assert results["test_acc"] > 0.5  # the tiny digits are easy
    assert results["run_dir"] == str(tmp_path / "run") and (tmp_path / "run" / "checkpoint.pt").is_file()
    assert ("best_k" in results) == (model == "knn")  # the program the model picked: KNN scores every k
