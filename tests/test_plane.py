"""nnref.plane: the 2-D data (2–4 classes), the inputs, the models of the plane and their descent, the field."""

from __future__ import annotations

import math

import pytest
import torch

from nnref import plane
from nnref.plane import PlaygroundConfig

#: Class-sized settings: the README's claims hold here too (the full recipe's figures over ten seeds are
#: measured in docs/results/playground-seeds.log).
CLASS = dict(steps=300, restarts=1)


@pytest.mark.parametrize("name", plane.DATASETS)
@pytest.mark.parametrize("classes", [2, 3, 4])
def test_points_of_every_dataset_and_class_count(name, classes):
    if classes not in plane.CLASSES[name]:
        with pytest.raises(ValueError, match=f"{name} has .* classes, not {classes}"):
            plane.make_points(name, 120, classes=classes)
        return
    X, y = plane.make_points(name, 120, seed=3, classes=classes)
    assert X.shape == (120, 2) and X.dtype == torch.float32 and y.dtype == torch.long
    assert sorted(set(y.tolist())) == list(range(classes))
    counts = torch.bincount(y, minlength=classes)
    if name != "xor":  # equal blocks; XOR's labels come from the quadrant of uniform points
        assert counts.max() - counts.min() <= 1
    assert torch.equal(X, plane.make_points(name, 120, seed=3, classes=classes)[0])  # the seed decides
    assert not torch.equal(X, plane.make_points(name, 120, seed=4, classes=classes)[0])
    assert float(X.abs().max()) < 7.5  # within the plane the lab shows (its 6 and the noise)


def test_the_classes_are_where_the_dataset_says():
    X, y = plane.make_points("xor", 400, noise=0.0, seed=1, classes=4)
    quadrant = (X[:, 0] < 0).long() + 2 * (X[:, 1] < 0).long()
    assert torch.equal(quadrant, y)
    X, y = plane.make_points("circles", 300, noise=0.0, seed=1, classes=3)
    r = X.norm(dim=1)
    for c in range(3):  # class c lies in the c-th band from the centre out
        assert float(r[y == c].min()) >= 5 * c / 3 and float(r[y == c].max()) <= 5 * (c + 1) / 3
    X, y = plane.make_points("xor", 200, noise=0.0, seed=1)
    assert torch.equal((X[:, 0] * X[:, 1] > 0).long(), y)


def test_bad_dataset_arguments():
    with pytest.raises(ValueError, match="dataset must be one of"):
        plane.make_points("moons")
    with pytest.raises(ValueError, match="samples must be at least 6 for 3 classes"):
        plane.make_points("blobs", 5, classes=3)


def test_features_are_tensorflow_playgrounds_inputs():
    X = torch.tensor([[1.0, 2.0], [-0.5, 3.0]])
    f = plane.features(X, plane.FEATURES)
    expected = torch.stack(
        [X[:, 0], X[:, 1], X[:, 0] ** 2, X[:, 1] ** 2, X[:, 0] * X[:, 1], X[:, 0].sin(), X[:, 1].sin()], 1
    )
    assert torch.equal(f, expected)
    assert torch.equal(plane.features(X, ("sin x2", "x1")), torch.stack([X[:, 0], X[:, 1].sin()], 1))  # table order
    with pytest.raises(ValueError, match="inputs must be one or more of"):
        plane.features(X, ("x3",))
    with pytest.raises(ValueError, match="inputs must be one or more of"):
        plane.features(X, ())


def test_the_same_seed_gives_the_same_descent_and_another_seed_another():
    X, y = plane.make_points("spirals", 200, seed=2, classes=3)
    cfg = PlaygroundConfig(steps=40, hidden=(6, 5), batch_size=16, features=("x1", "x2", "sin x1"))
    runs = []
    for seed in (7, 7, 8):
        d = plane.Descent("mlp", X, y, 3, cfg, seed)
        losses = [float(d.step()) for _ in range(40)]
        runs.append((losses, d.model().predict_proba(plane.grid(resolution=20))))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]
    assert runs[0][0][-1] < runs[0][0][0]  # it learns


def test_minibatches_visit_every_point_once_per_epoch():
    X, y = plane.make_points("blobs", 50, seed=0)
    d = plane.Descent("logreg", X, y, 2, PlaygroundConfig(batch_size=8), seed=0)
    assert d.steps_per_epoch == 7
    seen = []
    for _ in range(7):
        xb, _ = d._batch()
        seen += [int(((d.X - row).abs().sum(1) == 0).nonzero()[0]) for row in xb]
        d.steps += 1
    assert sorted(seen) == list(range(50))
    assert d.epoch == 1.0


def test_the_folded_model_takes_raw_points_and_its_line_lies_in_the_plane():
    X, y = plane.make_points("blobs", 300, seed=1)
    X = X * 10 + 50  # far from the origin and badly scaled: standardisation matters
    model, _ = plane.fit("logreg", X, y, 2, PlaygroundConfig(**CLASS))
    assert float((model.predict(X) == y).float().mean()) >= 0.95
    w, b = model.line()
    assert torch.equal(((X @ w + b) >= 0).long(), model.predict(X))


def test_l1_pushes_weights_to_zero_and_l2_shrinks_them():
    X, y = plane.make_points("xor", 200, seed=3)
    sizes = {}
    for name, options in (("none", {}), ("l1", {"l1": 0.05}), ("l2", {"weight_decay": 0.05})):
        cfg = PlaygroundConfig(
            steps=400,
            hidden=(8,),
            weight_decay=options.get("weight_decay", 0.0),
            l1=options.get("l1", 0.0),
            features=plane.FEATURES,
        )
        model, _ = plane.fit("mlp", X, y, 2, cfg)
        w = torch.cat([layer.weight.flatten() for layer in model.linears()]).detach()
        sizes[name] = (float(w.abs().sum()), int((w.abs() < 1e-2).sum()))
    assert sizes["l1"][0] < sizes["none"][0] and sizes["l2"][0] < sizes["none"][0]
    assert sizes["l1"][1] > sizes["none"][1]  # L1 makes weights (nearly) exactly zero: a sparse network


@pytest.mark.parametrize("classes", [3, 4])
def test_more_than_two_classes_the_line_and_the_mlp_and_knn(classes):
    X, y = plane.make_points("blobs", 400, seed=5, classes=classes)
    Xtr, ytr, Xte, yte = plane.split(X, y, 0.3, 5)
    line, _ = plane.fit("logreg", Xtr, ytr, classes, PlaygroundConfig(**CLASS))
    mlp, _ = plane.fit("mlp", Xtr, ytr, classes, PlaygroundConfig(**CLASS, hidden=(8,)))
    knn = plane.fit_knn(Xtr, ytr, 5, classes=classes)
    for model in (line, mlp, knn):
        probs = model.predict_proba(Xte)
        assert probs.shape == (Xte.shape[0], classes)
        assert float((model.predict(Xte) == yte).float().mean()) >= 0.9
    assert line.line() is None  # more than two classes: no single line to draw
    field = plane.field(line, resolution=12)
    assert field.shape == (12, 12, classes) and torch.allclose(field.sum(-1), torch.ones(12, 12))


def test_grid_covers_the_domain_bottom_row_first():
    pts = plane.grid(resolution=5)
    assert pts.shape == (25, 2)
    assert pts[0].tolist() == [-6.0, -6.0] and pts[4].tolist() == [6.0, -6.0] and pts[-1].tolist() == [6.0, 6.0]
    wide = plane.view_bounds(torch.tensor([[10.0, 0.0]]))
    assert wide[1] == pytest.approx(10.6) and wide[0] == -6.0


def test_line_distance_and_segment():
    assert plane.line_distance(torch.tensor([3.0, 4.0]), -10.0) == pytest.approx(2.0)
    seg = plane.line_segment(torch.tensor([1.0, 1.0]), -1.0, (-2, 2, -2, 2))  # x + y = 1
    assert seg is not None
    for x, yv in seg:
        assert x + yv == pytest.approx(1.0) and -2 <= x <= 2 and -2 <= yv <= 2
    assert math.dist(*seg) > 1
    assert plane.line_segment(torch.tensor([1.0, 0.0]), -10.0, (-2, 2, -2, 2)) is None  # x = 10 is outside
