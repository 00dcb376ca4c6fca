"""nnref.run.playground: the lecture's 2-D task — the line, the MLP and KNN — and its TensorBoard pictures."""

from __future__ import annotations

import math

import pytest
import torch

from nnref import plane
from nnref.cli import main
from nnref.run import playground as P


def _acc(model, name, seed=0, **cfg):
    X, y = plane.make_points(name, 400, seed=seed)
    Xtr, ytr, Xte, yte = plane.split(X, y, seed=seed)
    c = plane.PlaygroundConfig(seed=seed, **cfg)
    if model == "knn":
        m = plane.fit_knn(Xtr, ytr, c.k[0])
    else:
        m = plane.fit(model, Xtr, ytr, 2, c, restarts=c.restarts if model == "mlp" else 1)[0]
    return float((m.predict(Xte) == yte).float().mean())


# The README's claims, at class-sized settings (the full recipe over seeds 0-9 is measured in
# docs/results/playground-seeds.log), on seeds other than the table's.
@pytest.mark.parametrize("seed", [11, 12])
def test_logistic_regression_draws_a_line_blobs_yes_xor_and_circles_no(seed):
    assert _acc("logreg", "blobs", seed, steps=300) >= 0.95
    assert _acc("logreg", "xor", seed, steps=300) <= 0.75
    assert _acc("logreg", "circles", seed, steps=300) <= 0.75


@pytest.mark.parametrize("name,seed", [("xor", 11), ("circles", 12)])
def test_one_hidden_layer_of_four_tanh_units_solves_xor_and_circles(name, seed):
    # 600 steps from 3 starts: at least 93% on seeds 11-15 (the full recipe: 96.7% at worst over seeds 0-9)
    assert _acc("mlp", name, seed, hidden=(4,), activation="tanh", steps=600, restarts=3) >= 0.9


def test_two_hidden_layers_solve_the_spirals():
    # 2000 steps from 2 starts: at least 92% on seeds 11-15 (the full recipe: 95.0% at worst over seeds 0-9)
    assert _acc("mlp", "spirals", 13, hidden=(8, 8), activation="tanh", steps=2000, restarts=2) >= 0.9


@pytest.mark.parametrize("name", plane.DATASETS)
def test_knn_k1_solves_every_dataset(name):
    # the spirals' noisy arms cost the nearest neighbour a few points on some draws (92.5% at worst over seeds
    # 0-9, docs/results/playground-seeds.log); every other dataset ≥ 95% on every seed measured
    floor = 0.90 if name == "spirals" else 0.95
    assert all(_acc("knn", name, seed, k=(1,)) >= floor for seed in (11, 12, 13))


def test_restarts_keep_the_lowest_training_loss():
    """Best of several starts: never worse on the training loss than the first start alone."""
    X, y = plane.make_points("xor", 200, seed=5)
    losses = []
    for restarts in (1, 3):
        cfg = plane.PlaygroundConfig(hidden=(2,), steps=300, restarts=restarts, seed=5)
        model = plane.fit("mlp", X, y, 2, cfg, restarts)[0]
        losses.append(model.loss_and_accuracy(X, y)[0])
    assert losses[1] <= losses[0] + 1e-6


def test_line_distance_equals_the_geometric_distance_of_the_drawn_line():
    X, y = plane.make_points("blobs", 300, seed=1)
    model = plane.fit("logreg", X, y, 2, plane.PlaygroundConfig(steps=300))[0]
    w, b = model.line()
    printed = plane.line_distance(w, b)
    assert printed > 0.5  # the blobs' boundary does not pass through the origin
    fig = P.boundary_figure(model, X, y)
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_label() == "decision line"]
    (x1, x2), (y1, y2) = line.get_xdata(), line.get_ydata()
    geometric = abs(x1 * y2 - x2 * y1) / math.hypot(x2 - x1, y2 - y1)  # distance of the drawn segment's line from 0
    assert geometric == pytest.approx(printed, rel=1e-6)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert f"{printed:.3f}" in text and "|b|/‖w‖" in text


def test_line_segment_clips_to_the_box():
    seg = plane.line_segment(torch.tensor([1.0, 1.0]), -1.0, (-2, 2, -2, 2))  # x + y = 1
    assert seg is not None
    for x, yv in seg:
        assert x + yv == pytest.approx(1.0) and -2 <= x <= 2 and -2 <= yv <= 2
    assert plane.line_segment(torch.tensor([1.0, 0.0]), -10.0, (-2, 2, -2, 2)) is None  # x = 10 is outside


def test_cli_writes_boundaries_at_several_steps_and_pngs(tmp_path, capsys):
    from helpers import events, scalar
    from PIL import Image

    png = tmp_path / "png"
    assert (
        main(
            [
                "playground",
                "--dataset",
                "xor",
                "--steps",
                "300",
                "--snapshots",
                "5",
                "--hidden",
                "4",
                "--restarts",
                "2",
                "--k",
                "1,7",
                "--samples",
                "200",
                "--logdir",
                str(tmp_path),
                "--run-name",
                "pg",
                "--save-png",
                str(png),
                "--quiet",
            ]
        )
        == 0
    )
    root = tmp_path / "pg" / "xor"
    for model in ("logreg", "mlp"):
        ea = events(root / model)
        steps = [e.step for e in ea.Images("boundary")]
        assert steps == [1, 60, 120, 180, 240, 300]
        for split in ("train", "test"):  # the accuracy curve at the snapshots, in the train and test sub-runs
            assert [s for s, _ in scalar(events(root / model / split), "accuracy")] == steps
        assert len(scalar(ea, "accuracy/test")) == 1 and scalar(ea, "accuracy/test")[0][0] == 300  # once, at the end
        assert [s for s, _ in scalar(ea, "loss/train_step")] == [1] + list(range(10, 301, 10))
    assert len(events(root / "mlp").Images("hidden_neurons")) == 6
    ea = events(root / "knn")
    assert [e.step for e in ea.Images("boundary/knn")] == [1, 7]
    assert [s for s, _ in scalar(ea, "accuracy_by_k/test")] == [1, 7]
    assert events(root / "summary").Images("summary")
    for name, size in (
        ("xor-summary.png", (1140, 400)),
        ("xor-logreg.png", (420, 420)),
        ("xor-mlp.png", (420, 420)),
        ("xor-knn.png", (720, 380)),
        ("xor-mlp-neurons.png", None),
    ):
        with Image.open(png / name) as im:
            im.verify()
        with Image.open(png / name) as im:
            if size:
                assert im.size == size, name
    from nnref.run.runs import describe_run

    info = describe_run(tmp_path / "pg")
    assert info.kind == "playground" and info.status == "finished" and "xor: logreg" in info.recipe
