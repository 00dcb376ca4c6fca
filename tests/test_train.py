"""nnref.train: the training loop as a user runs it — every model, resume, divergence, kill -9, the schedule."""

from __future__ import annotations

import math
import re

import pytest
import torch
from helpers import events, scalar, train_args

from nnref.cli import main
from nnref.data import load_splits, make_loader
from nnref.run.checkpoint import load_checkpoint


@pytest.mark.parametrize(
    "model,extra",
    [
        ("logreg", ["--epochs", "3"]),
        ("softmax", ["--epochs", "3"]),
        ("mlp", ["--epochs", "3", "--hidden", "32,16", "--activation", "tanh"]),
        ("softmax", ["--epochs", "3", "--loss", "unfused"]),
        ("logreg", ["--epochs", "3", "--classes", "3,8", "--loss", "unfused", "--batch-size", "1", "--lr", "0.01"]),
        ("mlp", ["--epochs", "3", "--hidden", "32", "--amp", "bf16", "--compile", "--loss", "unfused"]),  # Inductor
    ],
)
def test_each_model_trains_through_the_cli(tiny_mnist, tmp_path, model, extra):
    assert main(train_args(tiny_mnist, tmp_path, model, *extra)) == 0
    ea = events(tmp_path / "run")
    losses = [v for _, v in scalar(events(tmp_path / "run" / "train"), "loss")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    test_acc = scalar(ea, "accuracy/test")[0][1]
    # better than always answering the most frequent class of the test set
    cfg = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]
    data = load_splits(
        tiny_mnist, download=False, val_size=100, positive_class=cfg["positive_class"], classes=cfg["classes"]
    )
    majority = float(torch.bincount(data.test_y).max()) / data.test_y.shape[0]
    assert test_acc > majority + 0.5 * (1 - majority), (test_acc, majority)


def test_dry_run_writes_nothing(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path / "logs", "mlp", "--dry-run", "--hidden", "8")) == 0
    assert not (tmp_path / "logs").exists()


def test_checkpoint_loads_with_weights_only_and_resume_round_trip(tiny_mnist, tmp_path):
    common = ["--epochs", "4", "--lr-schedule", "constant", "--hidden", "16", "--seed", "3", "--log-every", "3"]
    assert main(train_args(tiny_mnist, tmp_path / "a", "mlp", *common)) == 0
    full = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)
    assert full["epoch"] == 4 and full["config"]["model"] == "mlp" and full["finished"]
    half = train_args(tiny_mnist, tmp_path / "b", "mlp", *common)
    half[half.index("--epochs") + 1] = "2"
    assert main(half) == 0
    ckpt = tmp_path / "b" / "run" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["epoch"] == 2
    assert (
        main(
            [
                "train",
                "mlp",
                "--resume",
                str(ckpt),
                "--epochs",
                "4",
                "--quiet",
                "--data-root",
                str(tiny_mnist),
                "--no-download",
            ]
        )
        == 0
    )
    resumed = torch.load(ckpt, weights_only=True)
    assert resumed["epoch"] == 4
    for k in full["model"]:
        assert torch.equal(full["model"][k], resumed["model"][k]), k
    for sub, tag in (("", "loss/train_step"), ("train", "loss"), ("val", "loss"), ("val", "accuracy")):
        ea, ea_full = events(tmp_path / "b" / "run" / sub), events(tmp_path / "a" / "run" / sub)
        assert scalar(ea, tag) == scalar(ea_full, tag), (sub, tag)


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tiny_mnist, tmp_path, capsys):
    args = train_args(
        tiny_mnist,
        tmp_path,
        "mlp",
        "--epochs",
        "3",
        "--lr",
        "1e6",
        "--checkpoint-every",
        "1",
        "--hidden",
        "64",
        "--lr-schedule",
        "constant",
    )
    assert main(args) == 1
    err = capsys.readouterr().err
    assert re.search(
        r"training diverged: the loss or a gradient became NaN/Inf at epoch \d+, step \d+ of the epoch", err
    ), err
    assert "untouched" in err and "smaller --lr" in err
    step = int(err.split("global step ")[1].split(")")[0])
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["global_step"] == step - 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert not list((tmp_path / "run").glob(".checkpoint-*"))  # no torn temporary file left behind


# --------------------------------------------------------------------------------------------------
# The learning-rate schedule and weight decay are exactly what they claim to be
# --------------------------------------------------------------------------------------------------
def _cosine(lr: float, t: int, total: int) -> float:
    return 0.5 * lr * (1 + math.cos(math.pi * t / total))


def test_logged_lr_follows_the_cosine_schedule_also_when_epochs_are_raised_on_resume(tiny_mnist, tmp_path):
    # 500 training images, batch 50: 10 steps per epoch
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "2", "--batch-size", "50", "--lr", "0.2")) == 0
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert (
        main(
            [
                "train",
                "softmax",
                "--resume",
                str(ckpt),
                "--epochs",
                "5",
                "--quiet",
                "--data-root",
                str(tiny_mnist),
                "--no-download",
            ]
        )
        == 0
    )
    points = scalar(events(tmp_path / "run"), "lr")
    assert [s for s, _ in points] == [10, 20, 30, 40, 50]
    # the value at step s is the α of the update that produced s: ½·lr·(1 + cos(π (s − 1) / T)),
    # with T = 20 before the resume and T = 50 after it (the schedule is stretched over the new length)
    for step, value in points:
        total = 20 if step <= 20 else 50
        assert value == pytest.approx(_cosine(0.2, step - 1, total), rel=1e-6), step
    assert load_checkpoint(ckpt)["optimizer"]["param_groups"][0]["lr"] == pytest.approx(_cosine(0.2, 49, 50))


def test_weight_decay_is_torch_sgds_on_a_builtin_twin(tiny_mnist, tmp_path):
    import torch.nn.functional as TF

    from nnref.bench import builtin_twin
    from nnref.models import SoftmaxRegression

    recipe = ["--epochs", "1", "--batch-size", "50", "--lr", "0.1", "--momentum", "0.9", "--lr-schedule", "constant"]
    assert main(train_args(tiny_mnist, tmp_path / "wd", "softmax", *recipe, "--weight-decay", "0.05")) == 0
    assert main(train_args(tiny_mnist, tmp_path / "plain", "softmax", *recipe)) == 0
    torch.manual_seed(0)  # the run's seed: the same initial weights
    twin = builtin_twin(SoftmaxRegression(784, 10))
    opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=0.05)
    data = load_splits(tiny_mnist, download=False, val_size=100)
    for xb, yb in make_loader(data.train_x, data.train_y, 50, seed=0):
        opt.zero_grad()
        TF.cross_entropy(twin(xb), yb).backward()
        opt.step()
    ours = load_checkpoint(tmp_path / "wd" / "run" / "checkpoint.pt")["model"]
    plain = load_checkpoint(tmp_path / "plain" / "run" / "checkpoint.pt")["model"]
    torch.testing.assert_close(ours["linear.weight"], twin.weight.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours["linear.bias"], twin.bias.detach(), rtol=1e-5, atol=1e-6)
    assert (ours["linear.weight"] - plain["linear.weight"]).abs().max() > 1e-3  # the decay did something


# --------------------------------------------------------------------------------------------------
# nnref.run.train called directly: the guard, and train() with a configuration
# --------------------------------------------------------------------------------------------------
def test_the_divergence_guard_names_the_first_bad_step_of_those_it_read():
    from nnref.run.distributed import World
    from nnref.run.train import DivergenceGuard

    w = torch.nn.Parameter(torch.ones(3))
    guard = DivergenceGuard([w], torch.device("cpu"), every=4, world=World())
    for step, (loss, grad) in enumerate([(0.5, 1.0), (0.4, float("nan")), (float("inf"), 1.0), (0.3, 1.0)], 1):
        w.grad = torch.full((3,), grad)
        guard.record(torch.tensor(loss))
        assert guard.due() == (step == 4)
    assert guard.check(step_after=14) == 12  # steps 11–14 were flagged: the gradient of step 12 was NaN
    assert not guard.due() and guard.check(step_after=14) is None  # nothing pending any more


def test_train_with_a_configuration_returns_its_metrics_and_leaves_a_resumable_run(tiny_mnist, tmp_path):
    import dataclasses

    from nnref.run.checkpoint import load_checkpoint
    from nnref.run.config import TrainConfig
    from nnref.run.train import train

    cfg = TrainConfig(model="mlp", epochs=2, hidden=(16,), data_root=str(tiny_mnist), download=False, val_size=100)
    cfg = dataclasses.replace(cfg, logdir=str(tmp_path), run_name="run", quiet=True)
    lines = []
    results = train(cfg, console=lines.append)
    assert results["test_acc"] > 0.5 and results["val_acc"] > 0.5
    state = load_checkpoint(results["checkpoint"])
    assert state["epoch"] == 2 and tuple(state["config"]["hidden"]) == (16,)
