"""nnref.lab.session as a state machine: random sequences of what a person does on the page — every control,
Play, Pause, Step, Reset, New weights, time passing — and after each one, what was kept and what was rebuilt
(the rules of nnref/lab/state.py's GROUPS and docs/playground.md):

* a recipe change (learning rate, momentum, batch, regularization and its rate) keeps the weights, the epoch, the
  loss curve (the generation) and the points, applies from the next step, and keeps playing if it played;
* a KNN change (k, distance) rebuilds only KNN;
* a network change (model, inputs, layers, activation) gives new networks on the same points, at epoch 0, paused;
* a data change (dataset, classes, noise, points, ratio, seed) gives new points and new networks, at epoch 0, paused.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from nnref import plane
from nnref.lab.session import PlaygroundSession, decode
from nnref.lab.state import FIELDS, PRESETS, SERVER_FIELDS, BadMessage

RECIPE = {
    "lr": st.sampled_from([0.003, 0.03, 0.1, 0.3]),
    "momentum": st.sampled_from(FIELDS["momentum"].options),
    "batch": st.sampled_from([0, 1, 5, 10, 30]),
    "regularization": st.sampled_from(FIELDS["regularization"].options),
    "regRate": st.sampled_from([0, 0.001, 0.01, 0.1]),
}
KNN = {"k": st.integers(1, 9), "metric": st.sampled_from(FIELDS["metric"].options)}
NETWORK = {
    "model": st.sampled_from(FIELDS["model"].options),
    "activation": st.sampled_from(FIELDS["activation"].options),
    "hidden": st.lists(st.integers(1, 4), max_size=3),
    "inputs": st.lists(st.sampled_from(FIELDS["inputs"].options), min_size=1, max_size=3, unique=True),
}
DATA = {
    "dataset": st.sampled_from(["blobs", "xor", "circles", "spirals"]),
    "noise": st.sampled_from([0.0, 0.1, 0.3]),
    "samples": st.sampled_from([40, 60, 100]),
    "ratio": st.sampled_from([30, 50, 70]),
    "seed": st.integers(0, 5),
}


def _one_change(fields: dict):
    return st.sampled_from(sorted(fields)).flatmap(lambda name: fields[name].map(lambda value: {name: value}))


class PageActions(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = PlaygroundSession({"samples": 60, "hidden": [3], "model": "compare", "k": 3})

    # -- what the page's controls send ------------------------------------------------------------------
    def _weights(self) -> dict:
        return {kind: [p.detach().clone() for p in d.net.parameters()] for kind, d in self.s.descents.items()}

    def _snapshot(self) -> dict:
        s = self.s
        return {
            "weights": self._weights(),
            "epoch": s.epoch,
            "generation": s.generation,
            "playing": s.playing,
            "points": (s.Xtr, s.Xte),
            "knn": s.models.get("knn"),
            "version": s.version,
        }

    def _same_weights(self, before: dict) -> bool:
        now = self._weights()
        return now.keys() == before.keys() and all(
            torch.equal(a, b) for kind in now for a, b in zip(now[kind], before[kind])
        )

    @rule(change=_one_change(RECIPE))
    def recipe(self, change):
        before = self._snapshot()
        self.s.configure(change)
        if self.s.diverged is None and before["generation"] == self.s.generation:  # (a divergence may restart)
            assert self._same_weights(before["weights"]), change
            assert self.s.epoch == before["epoch"] and self.s.playing == before["playing"]
            assert self.s.models.get("knn") is before["knn"]
            for d in self.s.descents.values():  # applies from the next step
                assert d.optimizer.param_groups[0]["lr"] == self.s.state["lr"]
                assert d.cfg.batch_size == self.s.state["batch"]
        assert self.s.Xtr is before["points"][0]

    @rule(change=_one_change(KNN))
    def knn(self, change):
        before = self._snapshot()
        self.s.configure(change)
        assert self._same_weights(before["weights"]) and self.s.epoch == before["epoch"]
        assert self.s.generation == before["generation"] and self.s.playing == before["playing"]
        assert self.s.Xtr is before["points"][0]
        knn = self.s.models.get("knn")
        if knn is not None:
            assert knn.k == self.s.state["k"] and knn.metric == self.s.state["metric"]

    def _changes(self, change: dict) -> bool:
        """Whether ``change`` gives a field a value other than the one it has (lists in their canonical order)."""
        return any(FIELDS[k].check(k, v) != self.s.state[k] for k, v in change.items())

    @rule(change=_one_change(NETWORK))
    def network(self, change):
        before, changes = self._snapshot(), self._changes(change)
        self.s.configure({**change, "weights": []})  # (as the page sends it: weights typed for the old network go)
        if not changes:  # the value it already had: nothing rebuilt
            assert self.s.generation == before["generation"] and self._same_weights(before["weights"])
            return
        assert self.s.generation == before["generation"] + 1 and self.s.epoch == 0 and not self.s.playing
        assert self.s.Xtr is before["points"][0]  # the same points

    @rule(change=_one_change(DATA))
    def data(self, change):
        before, changes = self._snapshot(), self._changes(change)
        self.s.configure({**change, "weights": []})
        if not changes:
            assert self._same_weights(before["weights"]) and self.s.Xtr is before["points"][0]
            return
        assert self.s.generation == before["generation"] + 1 and self.s.epoch == 0 and not self.s.playing
        state = self.s.state
        X, y = plane.make_points(state["dataset"], state["samples"], state["noise"], state["seed"], state["classes"])
        assert torch.equal(torch.cat([self.s.Xtr, self.s.Xte]).sort(0).values, X.sort(0).values)

    @rule()
    def play_for_a_while(self):
        if self.s.nothing_to_train():
            return
        self.s.playing = True
        before = self._snapshot()
        self.s.advance(0.0)
        if not self.s.diverged:
            assert self.s.epoch > before["epoch"] and not self._same_weights(before["weights"])
            assert self.s.generation == before["generation"]

    @rule()
    def pause(self):
        self.s.playing = False

    @rule(name=st.sampled_from(sorted(PRESETS)))
    def preset_after_preset(self, name):
        """What the page sends for a preset link: its set-up, then Reset — its own epoch 0 and a new loss curve,
        whatever ran before (a preset of only recipe fields included)."""
        before, preset = self.s.generation, {k: v for k, v in PRESETS[name]["state"].items() if k in SERVER_FIELDS}
        self.s.configure({**preset, "samples": 60})  # (the page sends the server's fields)
        self.s.reset()
        assert self.s.epoch == 0 and self.s.steps == 0 and not self.s.playing
        assert self.s.generation > before
        for field, value in preset.items():
            assert self.s.state[field] == FIELDS[field].check(field, value), (name, field)

    @rule()
    def reset(self):
        first = PlaygroundSession(self.s.state)  # the weights this set-up starts from
        self.s.init = 0
        self.s.reset()
        assert self.s.epoch == 0 and not self.s.playing
        for kind, d in self.s.descents.items():
            for a, b in zip(d.net.parameters(), first.descents[kind].net.parameters()):
                assert torch.equal(a, b)

    @rule()
    def new_weights(self):
        before = self._weights()
        self.s.reset(new_weights=True)
        assert self.s.epoch == 0 and not self.s.playing
        assert not before or self.s.state["weights"] or not self._same_weights(before)  # (typed weights stay typed)

    @invariant()
    def the_frame_says_what_the_session_holds(self):
        header, _ = decode(self.s.frame())
        assert header["epoch"] == round(self.s.epoch, 3) and header["generation"] == self.s.generation
        assert [m["kind"] for m in header["models"]] == list(self.s.models)


PageActions.TestCase.settings = settings(
    max_examples=12, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_every_sequence_of_a_persons_actions_keeps_and_rebuilds_what_the_rules_say = PageActions.TestCase


def test_a_recipe_change_while_playing_keeps_training_from_where_it_was():
    """The bug a teacher met: change the momentum while playing and the epoch went back to 0 with new points."""
    s = PlaygroundSession({"dataset": "xor", "hidden": [4]})
    s.playing = True
    for _ in range(20):
        s.advance(0.0)
    epoch, weight, points = s.epoch, s.descents["mlp"].net.layers[0].weight.detach().clone(), s.Xtr
    for change in ({"momentum": 0.5}, {"lr": 0.1}, {"batch": 20}, {"regularization": "L2"}, {"regRate": 0.01}):
        assert s.configure(change) is False  # the points are not sent again
        assert s.playing and s.epoch == epoch and s.Xtr is points
        assert torch.equal(s.descents["mlp"].net.layers[0].weight, weight), change
    s.advance(0.0)
    assert s.epoch > epoch and not torch.equal(s.descents["mlp"].net.layers[0].weight, weight)


def test_a_batch_size_change_keeps_the_epoch_count_continuous():
    s = PlaygroundSession({"dataset": "xor", "batch": 10, "samples": 100, "ratio": 50})  # 5 steps an epoch
    for _ in range(7):
        s.advance(0.0)
    assert s.epoch == 7 / 5
    s.configure({"batch": 25})  # 2 steps an epoch from here
    assert s.epoch == 7 / 5
    s.advance(0.0)
    assert s.epoch == 7 / 5 + 1 / 2


def test_in_side_by_side_k_and_the_distance_rebuild_only_knn():
    s = PlaygroundSession({"dataset": "xor", "model": "compare", "hidden": [4], "k": 7})
    for _ in range(10):
        s.advance(0.0)
    line, mlp, epoch = s.models["line"], s.models["mlp"], s.epoch
    s.configure({"k": 9})
    s.configure({"metric": "manhattan"})
    assert s.models["line"] is line and s.models["mlp"] is mlp and s.epoch == epoch
    assert s.models["knn"].k == 9 and s.models["knn"].metric == "manhattan"


def test_your_own_points_stay_where_you_put_them():
    """Every point placed is a training point, unless placed as a test point: nothing is re-split."""
    points = []
    s = PlaygroundSession({"dataset": "custom", "points": []})
    assert s.Xtr.shape[0] == 0 and s.nothing_to_train() and decode(s.frame())[0]["notices"]
    for i, (x1, x2) in enumerate([(1, 1), (-1, -1), (2, -2), (-2, 2), (3, 3), (0, 4)]):
        points.append([x1, x2, i % 2] + ([1] if i == 5 else []))
        s.configure({"points": [list(p) for p in points]})
        shown = [p[:3] for p in s.data_message()["train"]] + [p[:3] for p in s.data_message()["test"]]
        assert sorted(map(tuple, shown)) == sorted(tuple(float(v) for v in p[:3]) for p in points)
        assert s.Xtr.shape[0] == min(i + 1, 5) and s.Xte.shape[0] == (i == 5)  # the sixth was placed as a test point


def test_knn_has_nothing_to_train_and_says_when_k_is_larger_than_the_points():
    s = PlaygroundSession({"dataset": "custom", "points": [[1, 1, 0], [-1, -1, 1], [2, -2, 0]], "model": "knn", "k": 7})
    assert "nothing to train" in s.nothing_to_train()
    (notice,) = decode(s.frame())[0]["notices"]
    assert "k = 7 is larger than the 3 training points" in notice
    s.configure({"k": 3})
    assert decode(s.frame())[0]["notices"] == []


def test_a_loss_that_grows_far_above_its_start_is_said_and_the_notice_goes_with_it():
    s = PlaygroundSession({"dataset": "xor", "hidden": [4], "lr": 10, "activation": "tanh"})
    while s.epoch < 3:
        s.advance(0.0)
    notices = decode(s.frame())[0]["notices"]
    assert any("learning rate of 10 each step overshoots" in n for n in notices), notices
    s.reset()
    assert decode(s.frame())[0]["notices"] == []


# --------------------------------------------------------------------------------------------------
# The backward pass view and weights by hand
# --------------------------------------------------------------------------------------------------
WORKED = {
    "dataset": "blobs",
    "model": "line",
    "inputs": ["x1", "x2"],
    "lr": 1,
    "momentum": 0,
    "instance": [0.5, 0.6, 1],
    "weights": [[0, 0, 0, 0.2], [0, 0, 1, -0.1], [0, 0, -1, 0.06536]],
}


def test_the_worked_example_in_the_lecture_s_own_coordinates():
    """The lab standardises the inputs it trains on; the view shows the lecture's own x and w (the slide's numbers)."""
    s = PlaygroundSession(WORKED)
    assert s.descents["line"].std.sub(1).abs().max() > 0.5  # (the inputs are standardised for training)
    view = decode(s.frame())[0]["backward"]
    (layer,) = view["layers"]
    assert layer["w"] == [[0.2, -0.1]] and layer["b"] == [0.06536] and layer["a_prev"] == [0.5, 0.6]
    assert [round(v, 3) for v in (layer["dL_da"][0], layer["da_dz"][0], *layer["dL_dw"][0], layer["dL_db"][0])] == [
        -1.9,
        0.249,
        -0.237,
        -0.284,
        -0.474,
    ]


def test_a_typed_weight_is_exactly_that_value_and_training_goes_on_from_it():
    s = PlaygroundSession({"dataset": "xor", "hidden": [3, 2], "inputs": ["x1", "x2", "sin x1"]})
    for _ in range(5):
        s.advance(0.0)
    epoch = s.epoch
    s.configure({"weights": [[0, 1, 2, 0.123456789], [1, 0, -1, -3.3], [2, 0, 1, 7.25]]})
    net = s.models["mlp"].net
    assert net.layers[0].weight[1, 2].item() == torch.tensor(0.123456789).item()
    assert net.layers[2].bias[0].item() == torch.tensor(-3.3).item() and net.layers[4].weight[0, 1].item() == 7.25
    assert s.epoch == epoch  # nothing restarted
    header = decode(s.frame())[0]
    assert header["network"]["layers"][0]["w"][1][2] == round(0.123456789, 5)
    s.advance(0.0)  # and gradient descent goes on from the typed values
    assert s.models["mlp"].net.layers[4].weight[0, 1].item() != 7.25


def test_apply_performs_exactly_one_sgd_step_of_the_instance():
    s = PlaygroundSession({**WORKED, "lr": 0.5})
    view = decode(s.frame())[0]["backward"]["layers"][0]
    before = [p.detach().clone() for p in s.models["line"].net.parameters()]
    s.apply_step()
    after = list(s.models["line"].net.parameters())
    grads = [torch.tensor(view["dL_dw"]), torch.tensor(view["dL_db"])]
    for old, new, grad in zip(before, after, grads):
        torch.testing.assert_close(new.detach(), old - 0.5 * grad, rtol=0, atol=2e-6)  # (the view's 6 decimals)
    assert decode(s.frame())[0]["backward"]["layers"][0]["w"] == [[round(v, 6) for v in view["w_new"][0]]]


def test_typed_weights_and_the_instance_are_checked_against_the_network():
    from nnref.lab.state import BadMessage

    s = PlaygroundSession({"dataset": "xor", "hidden": [2]})
    for bad, said in (
        ({"weights": [[0, 5, 0, 1.0]]}, "there is no weight 1 of neuron 6 in layer 1"),
        ({"weights": [[3, 0, 0, 1.0]]}, "there is no weight"),
        ({"instance": [0.5, 0.5, 3]}, "the instance's class 3 is not one of the 2 classes"),
    ):
        with pytest.raises(BadMessage, match=said):
            s.configure(bad)
    assert s.state["weights"] == [] and s.state["instance"] == []  # refused: nothing kept
    s.configure({"hidden": [2, 2], "weights": [[1, 1, 1, 0.5]]})  # a new network and its typed weight together
    assert s.models["mlp"].net.layers[2].weight[1, 1].item() == 0.5


# --------------------------------------------------------------------------------------------------
# A recipe change is what the next step does (not only kept: used)
# --------------------------------------------------------------------------------------------------
def _expected_step(d, lr: float, weight_decay: float = 0.0, l1: float = 0.0) -> list[torch.Tensor]:
    """The weights after one plain SGD step (no momentum) on the whole training set, computed here by autograd."""
    params = [p.detach().clone().requires_grad_() for p in d.net.parameters()]
    names = [n for n, _ in d.net.named_parameters()]
    logits = torch.func.functional_call(d.net, dict(zip(names, params)), (d.X,))
    loss = d.net.loss(logits, d.t)
    if l1:
        loss = loss + l1 * sum(p.abs().sum() for n, p in zip(names, params) if n.endswith("weight"))
    grads = torch.autograd.grad(loss, params)
    return [(p - lr * (g + weight_decay * p)).detach() for p, g in zip(params, grads)]


START = {"dataset": "blobs", "samples": 60, "model": "line", "lr": 0.03, "momentum": 0, "batch": 0}


@pytest.mark.parametrize(
    "change,expect",
    [
        ({"lr": 0.3}, {"lr": 0.3}),
        ({"lr": 0.001}, {"lr": 0.001}),
        ({"regularization": "L2", "regRate": 0.1}, {"lr": 0.03, "weight_decay": 0.1}),
        ({"regularization": "L1", "regRate": 0.1}, {"lr": 0.03, "l1": 0.1}),
    ],
)
def test_a_new_learning_rate_or_penalty_is_the_size_of_the_next_update(change, expect):
    s = PlaygroundSession(START)
    s.advance(0.0)  # mid-run
    d, generation = s.descents["line"], s.generation
    now = [p.detach().clone() for p in d.net.parameters()]
    s.configure(change)
    assert s.descents["line"] is d and s.generation == generation and s.epoch == 1  # the same run goes on
    assert all(torch.equal(p, q) for p, q in zip(d.net.parameters(), now))
    expected = _expected_step(d, **expect)
    s.advance(0.0)
    for got, want in zip(d.net.parameters(), expected):
        torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-7)


def test_momentum_set_to_zero_makes_the_next_update_the_plain_gradient_step():
    s = PlaygroundSession({**START, "momentum": 0.9})
    for _ in range(3):
        s.advance(0.0)  # a momentum buffer built up
    s.configure({"momentum": 0})
    d = s.descents["line"]
    expected = _expected_step(d, lr=0.03)
    s.advance(0.0)
    for got, want in zip(d.net.parameters(), expected):
        torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-7)


def test_momentum_raised_mid_run_carries_the_last_update_into_the_next():
    s = PlaygroundSession(START)
    d = s.descents["line"]
    s.advance(0.0)
    s.configure({"momentum": 0.5})
    plain = _expected_step(d, lr=0.03)  # −α g₂ alone
    now = [p.detach().clone() for p in d.net.parameters()]
    s.advance(0.0)
    for p, w in zip(d.net.parameters(), plain):
        # PyTorch's SGD starts the momentum buffer at the first step that has momentum: this update is −α g₂ (the
        # buffer begins now), and the next one carries half of it
        torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-7)
    assert d.optimizer.param_groups[0]["momentum"] == 0.5
    assert all(d.optimizer.state[p]["momentum_buffer"] is not None for p in d.net.parameters())
    step2 = [p.detach() - n for p, n in zip(d.net.parameters(), now)]
    plain3 = _expected_step(d, lr=0.03)
    here = [p.detach().clone() for p in d.net.parameters()]
    s.advance(0.0)
    for p, h, w, u in zip(d.net.parameters(), here, plain3, step2):
        torch.testing.assert_close(p.detach() - h, (w - h) + 0.5 * u, rtol=1e-4, atol=1e-7)


def test_a_new_batch_size_is_the_size_of_the_next_batch():
    s = PlaygroundSession({**START, "samples": 100, "ratio": 50})  # 50 training points
    s.advance(0.0)
    assert s.epoch == 1  # the whole training set in a step
    s.configure({"batch": 10})
    s.advance(0.0)
    assert s.epoch == pytest.approx(1 + 10 / 50)  # a batch of 10 of the 50: a fifth of an epoch
    s.configure({"batch": 25})
    s.advance(0.0)
    assert s.epoch == pytest.approx(1.2 + 25 / 50)


def test_apply_is_one_step_of_the_worked_example_counted_among_the_steps():
    preset = {k: v for k, v in PRESETS["worked-backward-pass"]["state"].items() if k in SERVER_FIELDS}
    s = PlaygroundSession(preset)
    shown = decode(s.frame())[0]["backward"]["layers"][0]  # the update the view shows
    s.apply_step()
    assert s.steps == 1 and s.epoch == 0  # one instance: a step, not an epoch
    now = decode(s.frame())[0]["network"]["layers"][0]
    assert now["w"][0] == pytest.approx(shown["w_new"][0], abs=1e-5)
    assert now["b"] == pytest.approx(shown["b_new"], abs=1e-5)
    s.apply_step()
    assert s.steps == 2
    with pytest.raises(BadMessage, match="pick an instance"):
        PlaygroundSession({**preset, "instance": []}).apply_step()
    with pytest.raises(BadMessage, match="pick an instance"):
        PlaygroundSession({**preset, "model": "knn", "weights": []}).apply_step()


def test_a_change_counts_a_version_and_after_a_divergence_only_a_lower_rate_restarts():
    s = PlaygroundSession(START)
    s.configure({"momentum": 0.5})
    s.configure({"lr": 0.1}, version=7)
    s.configure({"batch": 5})
    assert s.version == 8  # the page's count, else one more than the last
    s.diverged, generation = "diverged", s.generation
    s.configure({"momentum": 0.9, "lr": 0.1})  # the same rate: the run stays as it is
    assert s.generation == generation and s.diverged
    s.configure({"lr": 0.01})  # a lower one starts again from the same initial weights
    assert s.generation == generation + 1 and s.diverged is None
