"""nnref.playground: the lecture's 2-D task — the line, the MLP and KNN — and its TensorBoard pictures."""

from __future__ import annotations

import math

import pytest
import torch

from nnref import playground as P
from nnref.cli import main


@pytest.mark.parametrize("name", P.DATASETS)
def test_datasets_shapes_labels_and_repeatability(name):
    X, y = P.make_dataset(name, 200, seed=3)
    assert X.shape == (200, 2) and X.dtype == torch.float32
    assert set(y.tolist()) == {-1, 1}
    if name == "xor":  # labels come from the quadrant of uniform points: roughly balanced
        assert 60 <= int((y == 1).sum()) <= 140
    else:
        assert int((y == 1).sum()) == 100
    X2, y2 = P.make_dataset(name, 200, seed=3)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(X, P.make_dataset(name, 200, seed=4)[0])


def test_bad_dataset_arguments():
    with pytest.raises(ValueError, match="dataset must be one of"):
        P.make_dataset("moons")
    with pytest.raises(ValueError, match="samples must be at least 4"):
        P.make_dataset("xor", 2)


def _acc(model, name, seed=0, **cfg):
    X, y = P.make_dataset(name, 400, seed=seed)
    Xtr, ytr, Xte, yte = P.split(X, y, seed=seed)
    c = P.PlaygroundConfig(seed=seed, **cfg)
    if model == "knn":
        m = P.fit_knn(Xtr, ytr, c.k[0])
    else:
        m = (P.fit_logreg if model == "logreg" else P.fit_mlp)(Xtr, ytr, c)
    return P._accuracy(P.predict01(m, Xte), yte)


# The README's claims, on seeds other than the ones its table was measured on (that table: seeds 0-9).
@pytest.mark.parametrize("seed", [11, 12])
def test_logistic_regression_draws_a_line_blobs_yes_xor_and_circles_no(seed):
    assert _acc("logreg", "blobs", seed) >= 0.95
    assert _acc("logreg", "xor", seed) <= 0.75
    assert _acc("logreg", "circles", seed) <= 0.75


@pytest.mark.parametrize("name,seed", [("xor", 11), ("circles", 12)])
def test_one_hidden_layer_of_four_tanh_units_solves_xor_and_circles(name, seed):
    assert _acc("mlp", name, seed, hidden=(4,), activation="tanh") >= 0.95


@pytest.mark.parametrize("seed", [13])
def test_two_hidden_layers_solve_the_spirals(seed):
    assert _acc("mlp", "spirals", seed, hidden=(8, 8), activation="tanh") >= 0.90


@pytest.mark.parametrize("name", P.DATASETS)
def test_knn_k1_solves_every_dataset(name):
    # the spirals' noisy arms cost the nearest neighbour a few points on some draws (92.5% at worst over seeds
    # 0-9, docs/results/playground-seeds.log); every other dataset ≥ 95% on every seed measured
    floor = 0.90 if name == "spirals" else 0.95
    assert all(_acc("knn", name, seed, k=(1,)) >= floor for seed in (11, 12, 13))


def test_restarts_keep_the_lowest_training_loss():
    """Best of several starts: never worse on the training loss than the first start alone."""
    X, y = P.make_dataset("xor", 200, seed=5)
    t = (y > 0).float()
    losses = []
    for restarts in (1, 3):
        cfg = P.PlaygroundConfig(hidden=(2,), steps=300, restarts=restarts, seed=5)
        model = P.fit_mlp(X, y, cfg)
        with torch.no_grad():
            losses.append(float(model.loss(model(X), t)))
    assert losses[1] <= losses[0] + 1e-6


def test_standardisation_is_folded_into_the_first_layer():
    """The returned model takes raw points: its line w·x + b = 0 is the boundary in the data's own plane."""
    X, y = P.make_dataset("blobs", 300, seed=1)
    X = X * 10 + 50  # far from the origin and badly scaled: standardisation matters
    model = P.fit_logreg(X, y, P.PlaygroundConfig(steps=300))
    assert P._accuracy(P.predict01(model, X), y) >= 0.95
    w, b = model.linear.weight.detach()[0], float(model.linear.bias.detach()[0])
    on_line = ((X @ w + b) >= 0).long()
    assert torch.equal(on_line, P.predict01(model, X))


def test_line_distance_equals_the_geometric_distance_of_the_drawn_line():
    X, y = P.make_dataset("blobs", 300, seed=1)
    model = P.fit_logreg(X, y, P.PlaygroundConfig(steps=300))
    w, b = model.linear.weight.detach()[0], float(model.linear.bias.detach()[0])
    printed = P.line_distance(w, b)
    assert printed > 0.5  # the blobs' boundary does not pass through the origin
    fig = P.boundary_figure(model, X, y)
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_label() == "decision line"]
    (x1, x2), (y1, y2) = line.get_xdata(), line.get_ydata()
    geometric = abs(x1 * y2 - x2 * y1) / math.hypot(x2 - x1, y2 - y1)  # distance of the drawn segment's line from 0
    assert geometric == pytest.approx(printed, rel=1e-6)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert f"{printed:.3f}" in text and "|b|/‖w‖" in text


def test_line_segment_clips_to_the_box():
    seg = P.line_segment(torch.tensor([1.0, 1.0]), -1.0, (-2, 2, -2, 2))  # x + y = 1
    assert seg is not None
    for x, yv in seg:
        assert x + yv == pytest.approx(1.0) and -2 <= x <= 2 and -2 <= yv <= 2
    assert P.line_segment(torch.tensor([1.0, 0.0]), -10.0, (-2, 2, -2, 2)) is None  # x = 10 is outside


def test_cli_writes_boundaries_at_several_steps_and_pngs(tmp_path, capsys):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    png = tmp_path / "png"
    assert main(["playground", "--dataset", "xor", "--steps", "300", "--snapshots", "5", "--hidden", "4", "--restarts", "2",
                 "--k", "1,7", "--samples", "200", "--logdir", str(tmp_path), "--run-name", "pg", "--save-png", str(png),
                 "--quiet"]) == 0
    root = tmp_path / "pg" / "xor"
    for model in ("logreg", "mlp"):
        ea = EventAccumulator(str(root / model), size_guidance={"images": 0, "scalars": 0})
        ea.Reload()
        steps = [e.step for e in ea.Images("boundary")]
        assert len(steps) >= 5 and steps == sorted(steps) and steps[-1] == 300
        assert [e.step for e in ea.Scalars("accuracy/test")] == steps
        assert ea.Scalars("loss/train")
    ea = EventAccumulator(str(root / "mlp"), size_guidance={"images": 0})
    ea.Reload()
    assert len(ea.Images("hidden_neurons")) >= 5
    ea = EventAccumulator(str(root / "knn"), size_guidance={"images": 0, "scalars": 0})
    ea.Reload()
    assert [e.step for e in ea.Images("boundary/knn")] == [1, 7]
    ea = EventAccumulator(str(root / "summary"), size_guidance={"images": 0})
    ea.Reload()
    assert ea.Images("summary")
    for name, size in (("xor-summary.png", (1140, 400)), ("xor-logreg.png", (420, 420)), ("xor-mlp.png", (420, 420)),
                       ("xor-knn.png", (720, 380)), ("xor-mlp-neurons.png", None)):
        with Image.open(png / name) as im:
            im.verify()
        with Image.open(png / name) as im:
            if size:
                assert im.size == size, name
