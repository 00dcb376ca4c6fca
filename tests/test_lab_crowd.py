"""nnref.lab.crowd: the pages of a class train together — each page's run its own, by nnref's hand-written backward
(or a student's), whatever the crowd around it."""

from __future__ import annotations

import logging
import random

import pytest
import torch
from exercise_solutions import TanhFunction as OldStyleTanh

from nnref import functional
from nnref.choices import CLASSES, PlaygroundConfig
from nnref.exercises import use_functions
from nnref.lab import crowd
from nnref.lab.crowd import Group, PaddedGroup, batchable, family_of, shape_of, train_together
from nnref.plane import Descent, make_points, split

INPUTS = ("x1", "x2", "x1^2", "x2^2", "x1x2", "sin x1", "sin x2")


def _setup(rng: random.Random) -> dict:
    """A random valid set-up of the playground's network: data, classes, inputs, 0-3 layers, recipe, seed."""
    dataset = rng.choice(["blobs", "xor", "circles", "spirals"])
    return {
        "dataset": dataset,
        "classes": rng.choice(CLASSES[dataset]),
        "samples": rng.choice([40, 100, 200]),
        "inputs": tuple(sorted(rng.sample(INPUTS, rng.randint(1, 4)), key=INPUTS.index)),
        "hidden": tuple(rng.randint(1, 8) for _ in range(rng.randint(0, 3))),
        "activation": rng.choice(["relu", "sigmoid", "tanh", "linear"]),
        "batch": rng.choice([1, 5, 10, 30, 0]),
        "lr": rng.choice([0.003, 0.03, 0.1]),
        "momentum": rng.choice([0.0, 0.5, 0.9]),
        "weight_decay": rng.choice([0.0, 3e-4]),
        "l1": rng.choice([0.0, 0.0, 1e-3]),
        "seed": rng.randint(0, 10_000),
    }


def _descent(s: dict) -> Descent:
    X, y = make_points(s["dataset"], s["samples"], None, s["seed"], s["classes"])
    Xtr, ytr, _, _ = split(X, y, 0.5, s["seed"])
    cfg = PlaygroundConfig(
        lr=s["lr"],
        momentum=s["momentum"],
        weight_decay=s["weight_decay"],
        l1=s["l1"],
        batch_size=s["batch"],
        hidden=s["hidden"],
        activation=s["activation"],
        features=s["inputs"],
        seed=s["seed"],
    )
    return Descent("mlp" if s["hidden"] or s["classes"] == 2 else "logreg", Xtr, ytr, s["classes"], cfg, s["seed"])


def _weights(d: Descent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in d.net.parameters()]


def _largest_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a, b))


def _alone_and_together(setups: list[dict], steps: int) -> tuple[list, list, dict]:
    """Each set-up's descent trained alone, and trained with the others (``train_together``), ``steps`` steps each:
    the two lists of descents and the groups they were trained in."""
    alone, together, kept = [_descent(s) for s in setups], [_descent(s) for s in setups], {}
    for d in alone:
        for _ in range(steps):
            d.step()
    train_together(together, steps=steps, kept=kept)
    return alone, together, kept


def test_batched_training_equals_page_by_page_for_random_set_ups():
    rng = random.Random(35)
    setups = [_setup(rng) for _ in range(12)]
    setups += [dict(setups[0], seed=s) for s in (1, 2, 3)]  # a group of four of one shape, seeds apart
    alone, together, kept = _alone_and_together(setups, 30)
    for s, a, t in zip(setups, alone, together):
        assert t.steps == a.steps == 30 and t.epoch == a.epoch, s
        assert _largest_difference(_weights(a), _weights(t)) <= 1e-5, s
    # pages of the same points' counts stepped together, of whatever shapes: padded to one
    padded = [g for g in kept.values() if isinstance(g, PaddedGroup)]
    assert padded and max(len({shape_of(d) for d in g.descents}) for g in padded) > 2


def _ticks(group: PaddedGroup, count: int) -> list[tuple]:
    """What ``count`` paced ticks of a padded group compute: (x, t, weight, w, pages) each, the pages' weights as
    they stand (no step taken)."""
    ticks = []
    for _ in range(count):
        due = (2 * group.count + 1) * group.steps_per_epoch < 2 * (group.ticks + 1) * group.spe
        group.ticks += 1
        index = due.nonzero().flatten()
        group.count[index] += 1
        ticks.append((*group._batches(index), group.flat.detach()[index], group._pages(index)))
    return ticks


@pytest.mark.parametrize("functions", ["nnref's", "a student's linear layer"])
def test_a_padded_group_s_chain_rule_by_hand_is_autograd_s(functions):
    """PaddedGroup._gradient calls each Function's forward and backward itself: the same losses and gradients as
    ``torch.autograd.grad`` of the same loss through the same Functions, for pages of every shape, both losses,
    L1 and short batches."""
    rng = random.Random(44)
    setups = [dict(_setup(rng), samples=100, l1=rng.choice([0.0, 1e-3])) for _ in range(12)]
    student = {"LinearFunction": type("StudentLinear", (functional.LinearFunction,), {})}
    with use_functions(student if functions != "nnref's" else {}):
        kept: dict = {}
        train_together([_descent(s) for s in setups], steps=1, kept=kept)
        (group,) = kept.values()
        ticks = _ticks(group, 40)
        assert len({len(pages.index) for *_, pages in ticks}) > 3  # (ticks of few pages and of many)
        for x, t, weight, w, pages in ticks:
            by_hand, grad = group._gradient(x, t, weight, w, pages)
            w = w.clone().requires_grad_()
            loss = group._loss(x, t, weight, w, pages)
            (autograd,) = torch.autograd.grad(loss.sum(), w)
            torch.testing.assert_close(by_hand, loss.detach(), rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(grad, autograd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("classes", [2, 4])
def test_a_group_of_one_shape_s_chain_rule_by_hand_is_autograd_s(classes):
    rng = random.Random(46 + classes)
    setup = dict(_setup(rng), dataset="blobs", classes=classes, hidden=(5, 3), activation="sigmoid", l1=1e-3, batch=7)
    kept: dict = {}
    train_together([_descent(dict(setup, seed=s)) for s in range(5)], steps=1, kept=kept)
    (group,) = kept.values()
    assert type(group) is Group and not group.uniform  # (7 does not divide the points: short last batches)
    for _ in range(12):
        x, t, weight = group._batches()
        by_hand, grad = group._gradient(x, t, weight, group.flat.detach(), group._every_page())
        loss = group._loss(x, t, weight)
        (autograd,) = torch.autograd.grad(loss.sum(), group.flat)
        torch.testing.assert_close(by_hand, loss.detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(grad, autograd, rtol=1e-5, atol=1e-7)


def test_a_padded_group_with_an_old_style_function_trains_through_autograd():
    rng = random.Random(45)
    setups = [dict(_setup(rng), samples=100, activation="tanh", hidden=(3,) * rng.randint(1, 3)) for _ in range(5)]
    with use_functions({"TanhFunction": OldStyleTanh}):  # (the kit's style: forward(ctx, z))
        assert batchable() and not crowd.by_hand()
        alone, together, kept = _alone_and_together(setups, 10)
    assert any(isinstance(g, PaddedGroup) for g in kept.values())
    for s, a, t in zip(setups, alone, together):
        assert _largest_difference(_weights(a), _weights(t)) <= 1e-5, s


def test_pages_of_any_shapes_and_batch_sizes_keep_their_pace_in_one_padded_group():
    """Every page its own set-up — inputs, layers, widths, activation, classes, batch size — steps in one group, each
    page only on its share of the group's ticks: after two epochs' ticks each page has its two epochs, to within half
    a step of its own, and its weights are those of its own descent after as many steps (nothing of the padding
    leaks into a page)."""
    rng = random.Random(21)
    setups = [dict(_setup(rng), samples=100) for _ in range(10)]
    setups += [dict(setups[0], batch=1, seed=5), dict(setups[1], batch=0, seed=6)]  # the slowest, the fastest pace
    pages, kept = [_descent(s) for s in setups], {}
    train_together(pages, steps=1, kept=kept)  # (one step of each: the group is made)
    (group,) = kept.values()
    assert isinstance(group, PaddedGroup) and set(group.descents) == set(pages)
    assert group.steps_per_epoch == 50  # (the page of batch 1 on 50 points)
    before = [d.epoch for d in pages]
    for _ in range(2 * group.steps_per_epoch):
        group.step()
    for d, start in zip(pages, before):
        assert abs(d.epoch - start - 2) <= 0.5 / d.steps_per_epoch + 1e-9, (d.cfg.batch_size, d.epoch - start)
    for s, d in zip(setups, pages):
        alone = _descent(s)
        for _ in range(d.steps):
            alone.step()
        assert _largest_difference(_weights(alone), _weights(d)) <= 1e-5, s
    # a page's new batch size makes the group again, at the page's new pace
    pages[0].set_recipe(batch_size=50)
    train_together(pages, steps=1, kept=kept)
    assert kept[family_of(pages[0])] is not group


def test_a_page_s_run_is_the_same_alone_and_among_99_others():
    rng = random.Random(7)
    mine = {**_setup(rng), "dataset": "spirals", "hidden": (8, 8, 6), "activation": "tanh", "batch": 30}
    alone = _descent(mine)
    train_together([alone], steps=100)
    others = [dict(mine, seed=s, lr=rng.choice([0.003, 0.03, 0.1]), batch=rng.choice([30, 10])) for s in range(90)]
    others += [_setup(rng) for _ in range(9)]  # and nine pages of their own set-ups
    class_ = [_descent(s) for s in others[:50]] + [_descent(mine)] + [_descent(s) for s in others[50:]]
    train_together(class_, steps=100)
    assert _largest_difference(_weights(alone), _weights(class_[50])) <= 1e-6
    assert class_[50].epoch == alone.epoch


def _right_wrong_and_alone(pages: list[dict], planted: dict, steps: int) -> tuple[list, list, list]:
    """The pages trained together by nnref's Functions, together with the ``planted`` ones, and one by one with
    the planted ones: three lists of descents, ``steps`` steps each."""
    right = [_descent(s) for s in pages]
    train_together(right, steps=steps)
    with use_functions(planted):
        assert batchable()
        wrong = [_descent(s) for s in pages]
        train_together(wrong, steps=steps)
        one_by_one = [_descent(s) for s in pages]
        for d in one_by_one:
            for _ in range(steps):
                d.step()
    return right, wrong, one_by_one


class _WrongTanh(functional.TanhFunction):
    """A planted bug: the backward forgets the 1 − a² factor."""

    @staticmethod
    def backward(ctx, g):
        return g


@pytest.mark.parametrize("shapes", ["one shape", "padded to one"])
def test_a_planted_wrong_backward_changes_the_batched_training(shapes):
    setup = {**_setup(random.Random(3)), "hidden": (4, 4), "activation": "tanh", "lr": 0.1, "batch": 10}
    pages = [dict(setup, seed=s) for s in range(4)]
    if shapes == "padded to one":  # (other widths, depths and batch sizes: one PaddedGroup)
        pages = [dict(p, hidden=h, batch=b) for p, h, b in zip(pages, [(4, 4), (2,), (3, 5, 2), (6,)], [10, 5, 1, 0])]
    right, wrong, one_by_one = _right_wrong_and_alone(pages, {"TanhFunction": _WrongTanh}, steps=20)
    for r, w, o in zip(right, wrong, one_by_one):
        assert _largest_difference(_weights(r), _weights(w)) > 1e-3  # every page's training changed...
        assert _largest_difference(_weights(o), _weights(w)) <= 1e-5  # ...as the wrong backward trains it alone


def test_the_paged_linear_layer_is_each_page_s_linear_layer_and_passes_gradcheck():
    from nnref.lab.crowd import PagedLinearFunction

    g = torch.Generator().manual_seed(0)
    x, W, b = (torch.randn(*shape, generator=g, dtype=torch.float64) for shape in [(3, 5, 4), (3, 2, 4), (3, 2)])
    inputs = tuple(t.requires_grad_() for t in (x, W, b))
    assert torch.autograd.gradcheck(PagedLinearFunction.apply, inputs)
    z = PagedLinearFunction.apply(*inputs)
    for i in range(3):
        assert torch.allclose(z[i], functional.linear(x[i], W[i], b[i]))


_LINEAR = functional.LinearFunction  # (nnref's own, whatever is in use later)


class _WrongLinear(_LINEAR):
    """A planted bug in a student's Linear: the weights' gradient forgets the inputs (gᵀ 1 instead of gᵀ x)."""

    @staticmethod
    def backward(ctx, g):
        grad_x, _, grad_b = _LINEAR.backward(ctx, g)
        return grad_x, g.t().mm(torch.ones_like(ctx.saved_tensors[0])), grad_b


def test_a_student_s_linear_layer_trains_the_class_by_its_own_backward():
    setup = {**_setup(random.Random(4)), "hidden": (3,), "batch": 10, "lr": 0.1}
    pages = [dict(setup, seed=s, hidden=h) for s, h in zip(range(3), [(3,), (3,), (5, 2)])]
    right, wrong, one_by_one = _right_wrong_and_alone(pages, {"LinearFunction": _WrongLinear}, steps=10)
    for r, w, o in zip(right, wrong, one_by_one):
        assert _largest_difference(_weights(r), _weights(w)) > 1e-3
        assert _largest_difference(_weights(o), _weights(w)) <= 1e-5


class _UnbatchableLinear(functional.LinearFunction):
    """A student's Linear that reads a value (.item()): it works page by page, not under vmap."""

    @staticmethod
    def forward(x, weight, bias):
        scale = float(weight.abs().max().item() > -1)
        return scale * torch.addmm(bias, x, weight.t())


def test_functions_that_cannot_be_batched_train_page_by_page_and_say_so_once(caplog, monkeypatch):
    monkeypatch.setattr(crowd, "_BATCHABLE", {})
    setup = {**_setup(random.Random(5)), "hidden": (3,), "batch": 5}
    with caplog.at_level(logging.WARNING, logger="nnref.lab"), use_functions({"LinearFunction": _UnbatchableLinear}):
        pages = [_descent(dict(setup, seed=s)) for s in range(3)]
        alone = [_descent(dict(setup, seed=s)) for s in range(3)]
        for _ in range(2):
            train_together(pages, steps=5)
        for d in alone:
            for _ in range(10):
                d.step()
    said = [r.getMessage() for r in caplog.records if "cannot be batched" in r.getMessage()]
    assert len(said) == 1 and "one by one" in said[0]
    for p, a in zip(pages, alone):
        assert torch.equal(torch.cat([w.flatten() for w in _weights(p)]), torch.cat([w.flatten() for w in _weights(a)]))


def test_a_group_steps_pages_of_one_shape_with_their_own_recipes():
    setup = {**_setup(random.Random(9)), "hidden": (5,), "batch": 10, "samples": 100}
    pages = [_descent(dict(setup, seed=1, lr=lr)) for lr in (0.0, 0.1)]
    before = _weights(pages[0])
    group = Group(pages)
    group.step()  # (the pages' parameters are views of the group's: nothing to copy back)
    assert _largest_difference(before, _weights(pages[0])) == 0  # a learning rate of 0 moves nothing
    assert _largest_difference(before, _weights(pages[1])) > 0


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_momentum_carries_from_the_crowd_to_a_page_alone_and_back(momentum):
    setup = {**_setup(random.Random(11)), "momentum": momentum, "hidden": (4,), "batch": 10}
    mixed, alone = _descent(setup), _descent(setup)
    others = [_descent(dict(setup, seed=s)) for s in (1, 2)]  # (so that the page steps in a group)
    kept: dict = {}
    train_together([mixed, *others], steps=5, kept=kept)
    for _ in range(5):
        mixed.step()  # (a page's Step button: one step alone, between the class's rounds)
    train_together([mixed, *others], steps=5, kept=kept)
    train_together([mixed, *others], steps=5, kept=kept)
    for _ in range(20):
        alone.step()
    assert _largest_difference(_weights(mixed), _weights(alone)) <= 1e-6
    assert mixed.steps == alone.steps and mixed.epoch == alone.epoch


def test_pages_of_any_batch_size_get_the_same_epochs_per_second():
    """A page of batch 1 takes 50 steps an epoch on 50 points, one of the whole set takes one: the class's rounds
    give the steps to the page furthest behind in epochs, so neither waits for the other."""
    setup = {**_setup(random.Random(17)), "samples": 100, "hidden": (4,)}
    pages = [_descent(dict(setup, batch=batch)) for batch in (1, 1, 10, 0)]
    clock: dict = {}
    while min(d.epoch for d in pages) < 1:  # (however slow the machine: rounds until each page has an epoch)
        train_together(pages, seconds=0.1, clock=clock)
    epochs = sorted(d.epoch for d in pages)
    assert epochs[0] >= 0.5 * epochs[2] and epochs[-1] <= epochs[0] + 1, epochs
    # (batch 1: 10 times the steps of batch 10, which takes 5 times those of the whole set — give or take a step)
    assert pages[0].steps >= 10 * (pages[2].steps - 1) and pages[2].steps >= 5 * (pages[3].steps - 1)


def test_a_kept_group_trains_on_what_was_typed_and_changed_between_rounds():
    """The class's rounds keep their groups: a weight typed by hand between two rounds is trained on from its
    value, and a recipe changed between them applies from the next step — as for the page alone; momentum turned
    off and on again goes on from the buffer it had, as torch.optim.SGD's does."""
    setup = {**_setup(random.Random(13)), "hidden": (3,), "batch": 5, "samples": 100, "momentum": 0.5}
    pages, alone = [_descent(dict(setup, seed=s)) for s in range(3)], _descent(dict(setup, seed=0))
    kept: dict = {}
    train_together(pages, steps=4, kept=kept)
    group = kept[family_of(pages[0])]
    train_together(pages, steps=4, kept=kept)
    assert kept[family_of(pages[0])] is group  # the same pages, the same recipes: the same group
    with torch.no_grad():
        next(pages[0].net.parameters())[0, 0] = 2.5  # typed between rounds
    pages[0].set_recipe(lr=0.5, momentum=0.0)
    train_together(pages, steps=4, kept=kept)
    assert kept[family_of(pages[0])] is group  # (the group follows the page's new recipe)
    pages[0].set_recipe(momentum=0.9)
    train_together(pages, steps=4, kept=kept)
    for _ in range(8):
        alone.step()
    with torch.no_grad():
        next(alone.net.parameters())[0, 0] = 2.5
    alone.set_recipe(lr=0.5, momentum=0.0)
    for _ in range(4):
        alone.step()
    alone.set_recipe(momentum=0.9)
    for _ in range(4):
        alone.step()
    assert _largest_difference(_weights(pages[0]), _weights(alone)) <= 1e-6


# --------------------------------------------------------------------------------------------------
# A class on the server: 30 websocket pages
# --------------------------------------------------------------------------------------------------
def _rss() -> int:
    import gc

    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def test_thirty_pages_play_change_knobs_and_leave_each_its_own(caplog):
    import time

    from nnref.bench.classroom import play_class, random_setup
    from nnref.lab.server import LabServer

    rng = random.Random(30)
    setups = [random_setup(rng) for _ in range(30)]
    with LabServer(max_sessions=40) as lab:

        def all_gone():
            deadline = time.time() + 20
            while lab.app.state.sessions.open and time.time() < deadline:
                time.sleep(0.1)
            return lab.app.state.sessions.open == 0

        play_class(lab.url, setups, seconds=2)  # (a first class: the server's own memory grows to its working size)
        assert all_gone()
        start = _rss()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="nnref.lab"):
            pages = play_class(lab.url, setups, seconds=6, leave=True, seed=1, change_every=0.5)
            assert all_gone()  # every page that left ended its session
        end = _rss()
    for p in pages:
        assert p.frames > 0 and not p.errors, p  # every page got frames...
        assert p.foreign == 0, p  # ...its own, none of another page's
    assert any(p.latencies for p in pages)  # changes were made, and shown
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) <= len(pages) and all("a page closed" in line for line in lines), lines
    assert abs(end - start) <= 0.1 * start, (start, end)


def test_the_log_says_when_the_class_slows_its_pages_and_by_how_much(caplog):
    import time

    from nnref.lab.crowd import Crowd

    crowd = Crowd(0.008, alone=20.0, report=0.0)
    with caplog.at_level(logging.WARNING, logger="nnref.lab"):
        crowd.since = time.perf_counter() - 0.01
        crowd._count(3)  # a round in 10 ms: 100 frames/s each, as fast as alone: nothing to say
        assert not caplog.records
        crowd.since = time.perf_counter() - 1.0
        crowd._count(100)  # one round of 100 pages in a second: each gets 1 frame/s
    (line,) = [r.getMessage() for r in caplog.records]
    assert "100 pages play at once: each gets 1.0 frames/s, 5% of a page alone's 20" in line
    assert "--max-pages" in line


# --------------------------------------------------------------------------------------------------
# What the class's frames show: measured for a group at once, as each page measures it alone
# --------------------------------------------------------------------------------------------------
def _close(a, b, tol: float = 2e-5) -> bool:
    """Equal nested lists / dicts of numbers, within ``tol`` (the 5 decimals a frame rounds weights to)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b))
    return a == b


@pytest.mark.parametrize(
    "state",
    [
        {"dataset": "spirals", "model": "mlp", "inputs": ["x1", "x2", "sin x1"], "hidden": [5, 3], "batch": 10},
        {"dataset": "blobs", "classes": 3, "model": "mlp", "hidden": [4], "activation": "relu", "batch": 7},
        {"dataset": "xor", "model": "line", "inputs": ["x1", "x2"], "batch": 0, "regularization": "L1"},
        {"dataset": "circles", "model": "compare", "hidden": [3], "batch": 20, "momentum": 0.9},
    ],
)
def test_a_class_round_s_frames_show_what_each_page_shows_alone(state):
    from nnref.lab.crowd import Crowd
    from nnref.lab.session import PlaygroundSession, decode

    sessions = [PlaygroundSession({**state, "seed": seed}) for seed in (1, 2, 3)]
    for s in sessions:
        s.playing = True
    crowd = Crowd(0.0)
    for _ in range(3):
        frames = crowd._round(sessions)
    assert crowd.groups  # the pages did train as a group, and their frames came from its look
    tiles = {s: s.summary() for s in sessions}  # (what the teacher's tile shows of the class's frame)
    for s in sessions:
        together, _ = decode(frames[s])
        assert together.pop("floats") > 0  # (the weights went as float32, and came back into the layers)
        s._refresh()  # (what the page's own frame measures: its models, brought up to date)
        alone, _ = decode(s.frame())
        assert _close(together, alone), (together, alone)
        assert isinstance(tiles[s]["network"]["layers"], list)
        assert _close(tiles[s]["network"], s.summary()["network"])


def test_a_class_round_s_frames_of_pages_alone_in_their_shape_show_what_they_show_alone():
    from nnref.bench.classroom import random_setup
    from nnref.lab.crowd import Crowd
    from nnref.lab.session import PlaygroundSession, decode

    rng = random.Random(36)
    sessions = [PlaygroundSession(random_setup(rng)) for _ in range(8)]
    for s in sessions:
        s.playing = True
    crowd = Crowd(0.005)
    for _ in range(3):
        frames = crowd._round(sessions)
    (group,) = crowd.groups.values()  # (every page its own shape: padded to one group, its frames measured at once)
    assert isinstance(group, PaddedGroup) and len({shape_of(d) for d in group.descents}) > 4
    for s in sessions:
        together, _ = decode(frames[s])
        if s.training():
            assert together.pop("floats") > 0, s.state
        s._refresh()
        alone, _ = decode(s.frame())
        assert _close(together, alone), (s.state, together, alone)


def test_a_round_trains_the_class_and_draws_the_pages_waiting():
    """A page whose last frame is still on its way is trained in the round all the same (its frames come when it
    asks), a paused one is not, and a page that left is no longer a member."""
    import asyncio

    from nnref.lab.crowd import Crowd
    from nnref.lab.session import PlaygroundSession

    state = {"dataset": "xor", "model": "mlp", "hidden": [3], "batch": 10}
    waiting, travelling, paused = (PlaygroundSession({**state, "seed": seed}) for seed in (1, 2, 3))
    waiting.playing = travelling.playing = True
    crowd = Crowd(0.005)
    frames = crowd._round([waiting], [waiting, travelling, paused])
    assert list(frames) == [waiting]
    assert waiting.steps > 0 and travelling.steps > 0 and paused.steps == 0

    async def class_():
        asyncio.get_running_loop().call_later(0.2, crowd.leave, travelling)
        for _ in range(3):
            await asyncio.gather(crowd.train(waiting), crowd.train(travelling))
        assert travelling in crowd.members
        await asyncio.sleep(0.3)
        assert travelling not in crowd.members
        before = travelling.steps
        await crowd.train(waiting)
        assert travelling.steps == before and crowd.members.keys() == {waiting}

    asyncio.run(class_())


def test_a_page_back_during_the_round_gets_that_round_s_frame_at_once():
    import asyncio

    from nnref.lab.crowd import Crowd
    from nnref.lab.session import PlaygroundSession, decode

    state = {"dataset": "xor", "model": "mlp", "hidden": [3], "batch": 10}
    first, late, rebuilt = (PlaygroundSession({**state, "seed": seed}) for seed in (1, 2, 3))
    for s in (first, late, rebuilt):
        s.playing = True
    crowd = Crowd(0.005)
    crowd._round([first], [first, late, rebuilt])
    rebuilt.configure({"hidden": [4]})  # (a new network while the round ran: that round's frame is not its own)
    rebuilt.playing = True

    async def back() -> bytes:
        loop = asyncio.get_running_loop()
        mine = loop.create_future()
        crowd.waiting = {late: mine, rebuilt: loop.create_future()}
        assert crowd._late() == 1 and crowd.waiting.keys() == {rebuilt}  # (the rebuilt page waits for the next)
        return await mine

    frame, _ = decode(asyncio.run(back()))
    assert frame["floats"] > 0 and frame["steps"] == late.steps > 0
    late._refresh()
    for sent, linear in zip(frame["network"]["layers"], late.models["mlp"].linears()):
        assert torch.allclose(torch.tensor(sent["w"]), linear.weight.detach(), atol=1e-6)
