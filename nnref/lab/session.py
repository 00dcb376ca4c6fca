"""One page's playground: its data, its models (:mod:`nnref.plane`'s — the playground's own), their training step
by step, and the frames that show them.

A :class:`PlaygroundSession` is used by one page at a time, from one thread at a time; the server
(:mod:`nnref.lab.server`) calls it between the messages it reads.  A frame is one binary message: a 4-byte
length, a JSON header (epoch, losses, accuracies, every network's weights), the weights as float32 where the class's
round measured them (``floats``: :func:`decode` puts them back into the layers) and, only when KNN changed, KNN's
class probabilities over the plane (``RESOLUTION``² pixels × classes, 0–255, rows from the bottom of the plane up).
The page draws the networks' heat maps (``RESOLUTION``²) and every hidden neuron's picture (``THUMBNAIL``²: the heat
map's grid, every third point) from the weights (``static/lab/model.js``), as TensorFlow Playground does: a frame
carries what changed, not pictures (about 1.1 KB for *A deeper network on the spirals*, 2 KB with its weights as
JSON).
"""

from __future__ import annotations

import copy
import io
import json
import math
import struct
import time

import torch

from .. import backprop, plane
from ..gradcheck import norm_relative_error, numerical_gradient
from ..layers import Linear
from ..plane import Descent, PlaygroundConfig
from ..training import diverged
from .classroom import preset_of, setup_words
from .state import DEFAULTS, FIELDS, BadMessage, check_state, classes_of

__all__ = ["PlaygroundSession", "RESOLUTION", "THUMBNAIL", "encode", "decode"]

#: Pixels per side of the heat map, and of each neuron's thumbnail.
RESOLUTION, THUMBNAIL = 108, 36  # a thumbnail is the node's own size (36 px): drawn without scaling
#: Points of the loss curve the teacher's tile shows (thinned evenly as the run goes on).
CURVE = 60
_KINDS = {"line": ("line",), "mlp": ("mlp",), "knn": ("knn",), "compare": ("line", "mlp", "knn")}


def encode(header: dict, blobs: list[bytes] = ()) -> bytes:
    """One binary message: the header's length (4 bytes, little-endian), the header as JSON, the blobs."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def decode(message: bytes) -> tuple[dict, bytes]:
    """The header and the payload of a message made by :func:`encode` — the networks' weights sent as float32
    (``floats``) put back into their layers, as the page's ``static/socket.js`` does."""
    (n,) = struct.unpack_from("<I", message)
    header, rest = json.loads(message[4 : 4 + n]), message[4 + n :]
    count = header.get("floats", 0)
    if count:
        expand_layers(header, struct.unpack_from(f"<{count}f", rest))
        rest = rest[4 * count :]
    return header, rest


def expand_layers(header: dict, floats) -> dict:
    """Every network of a frame's header whose ``layers`` are sent as float32 — ``{"at": k, "shapes": [[c, p],
    …]}``: from float ``k`` on, each layer's weights (c × p, row by row), then its biases (c) — with its layers
    as lists again: ``[{"w": [[…] × c], "b": […]}, …]``."""
    for holder in [header.get("network"), *header.get("models", [])]:
        packed = (holder or {}).get("layers")
        if isinstance(packed, dict):
            at, layers = packed["at"], []
            for c, p in packed["shapes"]:
                w = [list(floats[at + r * p : at + (r + 1) * p]) for r in range(c)]
                layers.append({"w": w, "b": list(floats[at + c * p : at + c * p + c])})
                at += c * p + c
            holder["layers"] = layers
    return header


class PlaygroundSession:
    """The live playground of one page: ``configure`` with (partial) states, ``advance`` while playing, ``frame``
    to draw.

    What a change keeps follows the group of the fields it changes (:data:`nnref.lab.state.GROUPS`): a recipe
    change keeps the weights, the epoch and the loss curve and applies from the next step — the run goes on playing
    if it played; a KNN change rebuilds only KNN; a network change gives new networks on the same points and a data
    change new points, each from epoch 0, paused (Play trains them), as Reset and New weights do.  Every new network
    starts a new ``generation``: the page begins a new loss curve."""

    def __init__(self, state: dict | None = None, version: int = 0, notes: tuple[str, ...] = ()) -> None:
        self.notes = tuple(notes)  # what the lab says on every frame (whose Functions train: nnref lab --functions)
        self.state = {**DEFAULTS, **check_state(state or {})}
        classes_of(self.state["dataset"], self.state["classes"])
        self._check_typed(self.state)
        self._knn_stamp, self._knn_sent, self._knn_scores = 0, None, (None, {})
        self.init = 0  # "new weights" presses: the descent's seed is seed + 1000 · init, the playground's r-th start
        self.playing, self.diverged, self.version, self.generation = False, None, version, 0
        self._make_data()
        self._build()

    # -- configuration ------------------------------------------------------------------------------
    def configure(self, changes: dict, version: int | None = None) -> bool:
        """Lay a checked partial state over the current one and do what the changed fields' groups say (see the
        class).  Returns whether the points changed (the page then needs them again)."""
        new = {**self.state, **check_state(changes)}
        classes_of(new["dataset"], new["classes"])
        groups = {FIELDS[name].group for name in new if new[name] != self.state[name]}
        lower_rate = new["lr"] < self.state["lr"]
        before, self.state = self.state, new
        try:
            self._check_typed(new)
        except BadMessage:
            self.state = before
            raise
        if "data" in groups:
            self._make_data()
            self._build()
        elif "network" in groups:
            self._build()
        else:
            if "recipe" in groups:
                self._set_recipe(lower_rate)
            if "knn" in groups:
                self._build_knn()
            if "weights" in groups:
                self._type_weights([w for w in new["weights"] if w not in before["weights"]])
        self.version = self.version + 1 if version is None else version
        return "data" in groups

    def _set_recipe(self, lower_rate: bool) -> None:
        """The new learning rate, momentum, batch size or penalty, from the next step on the same weights — except
        after a divergence, where the weights are NaN: a lower learning rate then starts again from the same
        initial weights."""
        if self.diverged and lower_rate:
            self._build()
            return
        for d in self.descents.values():
            d.set_recipe(**self._recipe_changes())

    @property
    def network(self) -> str | None:
        """The network the page draws, whose weights are typed by hand and whose backward pass is shown: the MLP,
        else the line (None for KNN alone)."""
        return "mlp" if "mlp" in self.descents else "line" if "line" in self.descents else None

    def _shape(self) -> list[tuple[int, int]]:
        """(neurons, inputs) of each layer of the network drawn, input side first."""
        kind = self.network
        return [] if kind is None else [tuple(m.weight.shape) for m in self._models[kind].linears()]

    def _check_typed(self, state: dict) -> None:
        """Every typed weight names a weight or a bias of the network as it will be, and the instance of the backward
        view is of one of its classes."""
        if state["instance"] and state["instance"][2] >= self._classes_of(state):
            raise BadMessage(
                f"the instance's class {state['instance'][2]} is not one of the {self._classes_of(state)} classes"
            )
        if not state["weights"]:
            return
        hidden = state["hidden"] if state["model"] in ("mlp", "compare") else []
        outputs = 1 if self._classes_of(state) == 2 else self._classes_of(state)
        sizes = [len(state["inputs"]), *hidden, outputs]
        for layer, neuron, source, _ in state["weights"]:
            if state["model"] == "knn":
                raise BadMessage("k-nearest neighbours have no weights to type")
            if layer >= len(sizes) - 1 or neuron >= sizes[layer + 1] or source >= sizes[layer]:
                raise BadMessage(
                    f"there is no weight {source + 1} of neuron {neuron + 1} in layer {layer + 1}: the "
                    f"layers have {', '.join(map(str, sizes[1:]))} neurons on {sizes[0]} inputs"
                )

    def _classes_of(self, state: dict) -> int:
        if state["dataset"] != "custom":
            return state["classes"]
        labels = [p[2] for p in state["points"]]
        return max(2, max(labels) + 1) if labels else 2

    def _type_weights(self, typed: list, refresh: bool = True) -> None:
        """Give the drawn network's weights the values typed (in the plane's own coordinates, as drawn): at once,
        playing or paused."""
        kind = self.network
        if kind is None or not typed:
            return
        net = self._plane_net()
        with torch.no_grad():
            linears = [m for m in net.modules() if isinstance(m, Linear)]
            for layer, neuron, source, value in typed:
                if source < 0:
                    linears[layer].bias[neuron] = value
                else:
                    linears[layer].weight[neuron, source] = value
        self._take(net, refresh)

    def apply_step(self) -> None:
        """The lecture's per-instance SGD: one step w ← w − α dL/dw on the instance of the backward view, in the
        plane's own coordinates (what the view shows)."""
        kind, instance = self.network, self.state["instance"]
        if kind is None or not instance:
            raise BadMessage("pick an instance first (click on the plane with the backward pass open)")
        net = self._plane_net()
        inputs = plane.features(torch.tensor([instance[:2]]), self.models[kind].names)[0]
        backprop.sgd_step(net, backprop.worked_pass(net, inputs, int(instance[2])), self.state["lr"])
        self.applied += 1  # a step of the run: counted, and the loss chart gets its point
        self._take(net)

    def _plane_net(self) -> torch.nn.Module:
        """A copy of the drawn network in the plane's own coordinates, exactly as shown."""
        return copy.deepcopy(self.models[self.network].net)

    def _take(self, net: torch.nn.Module, refresh: bool = True) -> None:
        """Make ``net`` (the plane's coordinates) the drawn network's weights: the descent trains on from them, and
        the model shown holds them exactly — the values typed, not their round trip through the standardisation —
        until the next step of training moves them."""
        self.descents[self.network].set_parameters(net)
        self.exact = [p.detach().clone() for p in net.parameters()]
        if refresh:
            self._refresh()

    def _make_data(self) -> None:
        """The points and their split, as the playground makes them (the same seed: the same points on each side).
        Your own points are split as you placed them: training points, and test points only where you chose."""
        s = self.state
        if s["dataset"] == "custom":
            pts = torch.tensor([p[:3] for p in s["points"]], dtype=torch.float32).reshape(-1, 3)
            test = torch.tensor([len(p) > 3 and p[3] == 1 for p in s["points"]], dtype=torch.bool)
            X, y = pts[:, :2], pts[:, 2].long()
            self.classes = max(2, int(y.max()) + 1) if len(y) else 2
            self.Xtr, self.ytr, self.Xte, self.yte = X[~test], y[~test], X[test], y[test]
            return
        X, y = plane.make_points(s["dataset"], s["samples"], s["noise"], s["seed"], s["classes"])
        self.classes = s["classes"]
        self.Xtr, self.ytr, self.Xte, self.yte = plane.split(X, y, 1 - s["ratio"] / 100, s["seed"])

    def _config(self) -> PlaygroundConfig:
        s = self.state
        return PlaygroundConfig(
            lr=s["lr"],
            momentum=s["momentum"],
            batch_size=s["batch"],
            hidden=tuple(s["hidden"]),
            activation=s["activation"],
            features=tuple(s["inputs"]),
            k=(s["k"],),
            metric=s["metric"],
            seed=s["seed"],
            **self._penalty(),
        )

    def _penalty(self) -> dict:
        rate, kind = self.state["regRate"], self.state["regularization"]
        return {"weight_decay": rate if kind == "L2" else 0.0, "l1": rate if kind == "L1" else 0.0}

    def _recipe_changes(self) -> dict:
        s = self.state
        return {"lr": s["lr"], "momentum": s["momentum"], "batch_size": s["batch"], **self._penalty()}

    def _build(self) -> None:
        """Fresh models with the initial weights of the seed and the "new weights" count, at epoch 0, paused."""
        self._models, self.descents, self.diverged = {}, {}, None  # (new networks: nothing to update in place)
        self._stale = False
        self.exact, self.applied = None, 0
        self.playing, self.generation = False, self.generation + 1
        self.curve, self.shown = [], None  # the teacher's tile: this network's loss curve, the last frame's header
        trainable = self.Xtr.shape[0] > 0
        for kind in _KINDS[self.state["model"]]:
            if kind == "knn":
                self._build_knn()
            elif trainable:
                name = "logreg" if kind == "line" else "mlp"
                self.descents[kind] = Descent(
                    name, self.Xtr, self.ytr, self.classes, self._config(), self.state["seed"] + 1000 * self.init
                )
        self._refresh()
        self._type_weights(self.state["weights"])  # typed by hand: part of the initial weights
        self.initial_loss = {kind: d.loss() for kind, d in self.descents.items()}

    def _build_knn(self) -> None:
        self._knn_stamp += 1  # a new KNN: its map goes out with the next frame
        k = self.state["k"]
        if self.Xtr.shape[0] >= k:
            self._models["knn"] = plane.fit_knn(self.Xtr, self.ytr, k, self.state["metric"], self.classes)
        else:
            self._models.pop("knn", None)
        self._refresh()

    @property
    def models(self) -> dict:
        """The models shown, by kind, in the order they are shown (the line, the network, KNN): each network with
        its descent's standardisation folded in, brought up to date when training moved it."""
        if self._stale:
            self._refresh()
        return self._models

    def _refresh(self) -> None:
        """The models as they stand now (the descents' standardisation folded in), in the order they are shown:
        the line, the network, KNN."""
        self._stale = False
        shown = self._models
        models = {**shown, **{kind: d.model(into=shown.get(kind)) for kind, d in self.descents.items()}}
        self._models = {kind: models[kind] for kind in _KINDS[self.state["model"]] if kind in models}
        if self.exact is not None and self.network is not None:  # typed by hand or stepped: exactly those values
            with torch.no_grad():
                for mine, exact in zip(self._models[self.network].net.parameters(), self.exact):
                    mine.copy_(exact)

    def reset(self, new_weights: bool = False) -> None:
        """Back to epoch 0, paused: the same initial weights (or, with ``new_weights``, the next start's)."""
        self.init += new_weights
        self._build()

    # -- training -----------------------------------------------------------------------------------
    @property
    def epoch(self) -> float:
        return next(iter(self.descents.values())).epoch if self.descents else 0.0

    @property
    def steps(self) -> int:
        """The steps taken since the network started: gradient descent's (Play, Step) and Apply's."""
        return (next(iter(self.descents.values())).steps if self.descents else 0) + self.applied

    def advance(self, seconds: float = 0.0) -> int:
        """Gradient-descent steps of every model being trained, for ``seconds`` (at least one step); stops and
        records why when a loss or a weight becomes NaN or infinite."""
        if not self.descents or self.diverged:
            return 0
        end, steps = time.perf_counter() + seconds, 0
        while True:
            losses = [d.step() for d in self.descents.values()]
            steps += 1
            if time.perf_counter() >= end:
                break
        self.trained(losses)
        return steps

    def training(self) -> list:
        """The descents a round of the class's training (:mod:`nnref.lab.crowd`) steps for this page: none
        unless it plays and has not diverged."""
        return list(self.descents.values()) if self.playing and not self.diverged else []

    def trained(self, losses: list = (), finite: bool | None = None) -> None:
        """After steps of training (here, or with the class): the last losses; stop and say why when a loss or a
        weight became NaN or infinite, else show the models as they now stand (brought up to date when next read).
        ``finite``: whether the losses and the weights are finite, where the class's round already knows."""
        self.exact = None  # training moves the weights typed
        if finite is None:
            weights = [p for d in self.descents.values() for p in d.net.parameters()]
            finite = not diverged(torch.tensor([float(v) for v in losses]), weights)
        if not finite:
            self.playing = False
            self.diverged = (
                f"Training diverged at epoch {self.epoch:.1f}: the loss became NaN or infinite. Lower the learning "
                f"rate (now {self.state['lr']:g}) to start again from the same weights, or press Reset."
            )
        else:
            self._stale = True

    def test_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test points (m, 2) and their classes (m,)."""
        return self.Xte, self.yte

    def nothing_to_train(self) -> str | None:
        """Why Play and Step have nothing to do, in words for the page; None when they train."""
        if self.diverged:
            return self.diverged
        if self.descents:
            return None
        if self.state["model"] == "knn":
            return (
                "k-nearest neighbours have nothing to train: they keep the training points, and each point of the "
                "plane takes the vote of its k nearest. Change k or the distance to see the regions change."
            )
        return "Nothing to train yet: click on the plane to add points (choose their class under Your own points)."

    def _notices(self, scores: list[dict]) -> list[str]:
        """What the page says about the set-up as it stands, each only while it is true: an empty plane of your
        own, a k larger than the points, a divergence, a loss that grew far above where it started."""
        notices, n, k = list(self.notes), self.Xtr.shape[0], self.state["k"]
        if self.state["dataset"] == "custom" and n == 0:
            notices.append("Your own points: click on the plane to add points of the chosen class, or import a CSV.")
        if "knn" in _KINDS[self.state["model"]] and 0 < n < k:
            notices.append(
                f"k = {k} is larger than the {n} training points: KNN needs at least k points to vote. "
                "Lower k, or add points."
            )
        if self.diverged:
            notices.append(self.diverged)
        for kind, score in zip(self._models, scores):
            start, now = self.initial_loss.get(kind), score.get("train_loss")
            if start is not None and now is not None and self.epoch >= 1 and now > max(2 * start, start + 1):
                notices.append(
                    f"The training loss grew from {start:.2f} to {now:.2f}: with a learning rate of "
                    f"{self.state['lr']:g} each step overshoots the minimum. Lower the learning rate."
                )
                break
        return notices

    # -- what the page draws -----------------------------------------------------------------------------
    def data_message(self) -> dict:
        """The points, for the page to draw (sent when the data changes)."""

        def points(X, y):
            return [[round(float(a), 4), round(float(b), 4), int(c)] for (a, b), c in zip(X.tolist(), y.tolist())]

        return {
            "type": "data",
            "version": self.version,
            "classes": self.classes,
            "train": points(self.Xtr, self.ytr),
            "test": points(self.Xte, self.yte),
        }

    def frame(self, looks: dict | None = None) -> bytes:
        """The binary frame: the header (weights, scores) and KNN's map when it changed (see the module's
        docstring).  The page draws every picture of a network from the weights the header carries.  ``looks``:
        what the class's round measured of this page's networks, by kind (:meth:`nnref.lab.crowd.Group.look`)."""
        header = {
            "type": "frame",
            "version": self.version,
            "epoch": round(self.epoch, 3),
            "steps": self.steps,
            "classes": self.classes,
            "resolution": RESOLUTION,
            "thumbnail": THUMBNAIL,
            "playing": self.playing,
            "generation": self.generation,
            "models": [],
        }
        maps, layers, floats = [], {}, []
        for kind in list(self._models):
            entry, layers[kind] = self._shown(kind, (looks or {}).get(kind))
            if kind == "knn":
                entry["map"] = self._knn_map(self._models[kind], maps)
            elif kind != self.network:  # the line beside the network: its own weights
                entry["layers"] = _placed(layers[kind], floats)
            header["models"].append(entry)
        if self.network is not None:
            header["network"] = {
                "inputs": list(self.state["inputs"]),
                "activation": self.state["activation"],
                "layers": _placed(layers[self.network], floats),
            }
        if floats:
            header["floats"] = sum(len(f) for f in floats) // 4
        if self.diverged:
            header["diverged"] = self.diverged
        header["notices"] = self._notices(header["models"])
        if self.state["instance"] and self.network is not None:
            header["backward"] = self._worked()
        self._keep_for_the_teacher(header, b"".join(floats))
        return encode(header, [*floats, *maps])

    def _shown(self, kind: str, look: dict | None) -> tuple[dict, list | None]:
        """A model's entry in the frame (its scores) and its layers (None for KNN): from the class's ``look`` at
        it where there is one, else measured here."""
        if look is None:
            model = self._models[kind] if kind == "knn" else self.models[kind]
            return {"kind": kind, **self._scores(kind, model)}, None if kind == "knn" else _layers(model.linears())
        entry = {"kind": kind, **look["scores"]}
        if look["line"] is not None:
            w1, w2, b = look["line"]
            entry["line"] = {"w": [w1, w2], "b": b, "distance": abs(b) / math.hypot(w1, w2)}
        return entry, (look["floats"], look["shapes"])

    # -- what the teacher's page shows of this page (nnref.lab.classroom) ---------------------------------
    def _keep_for_the_teacher(self, header: dict, floats: bytes = b"") -> None:
        """The frame just drawn, and its point of the loss curve (at most ``CURVE`` points, thinned evenly)."""
        self.shown, self._shown_floats = header, floats
        shown = next((m for m in header["models"] if m["kind"] == (self.network or "knn")), {})
        loss = shown.get("train_loss")
        if loss is not None and (not self.curve or self.curve[-1][0] != header["epoch"]):
            self.curve.append([header["epoch"], round(loss, 4)])
            if len(self.curve) > CURVE:
                self.curve = self.curve[::2]

    def summary(self) -> dict:
        """This page as the teacher's tile shows it: the set-up in words (and the preset it is, if one), the epoch,
        the test accuracy and the loss curve of the network drawn (KNN's when alone), whether it plays or diverged,
        and the network's weights, from which the teacher's page draws the decision boundary."""
        header = self.shown or {"models": [], "epoch": 0.0}
        shown = next((m for m in header["models"] if m["kind"] == (self.network or "knn")), {})
        return {
            "setup": setup_words(self.state),
            "preset": preset_of(self.state),
            "model": self.state["model"],
            "epoch": header["epoch"],
            "accuracy": shown.get("test_accuracy"),
            "curve": list(self.curve),
            "playing": self.playing,
            "diverged": bool(self.diverged),
            "classes": self.classes,
            "network": self._shown_network(header),
        }

    def _shown_network(self, header: dict) -> dict | None:
        """The network of the frame just drawn, its layers as lists (sent as float32, they are put back)."""
        network = header.get("network")
        if network is None or not isinstance(network["layers"], dict):
            return network
        floats = struct.unpack(f"<{len(self._shown_floats) // 4}f", self._shown_floats)
        return expand_layers({"network": dict(network)}, floats)["network"]

    def _knn_map(self, model, maps: list[bytes]) -> int:
        """KNN's class probabilities over the plane (``RESOLUTION``² × classes bytes) go out once per KNN: they
        change only when KNN does.  Returns the KNN's stamp; its map is in ``maps`` when this frame carries it."""
        if self._knn_sent != self._knn_stamp:
            probs = model.predict_proba(plane.grid(resolution=RESOLUTION))
            maps.append((probs * 255).round().to(torch.uint8).numpy().tobytes())
            self._knn_sent = self._knn_stamp
        return self._knn_stamp

    def _worked(self) -> dict:
        """The backward pass view: the worked example of the instance on the drawn network, in the plane's own
        coordinates (the standardisation folded in: the lecture's x and w), by nnref's hand-written backward."""
        x1, x2, y = self.state["instance"]
        model = self.models[self.network]
        inputs = model.inputs(torch.tensor([[x1, x2]]))[0]
        if y >= model.num_classes:
            return {"error": f"class {y} is not one of this network's {model.num_classes} classes"}
        worked = backprop.as_dict(backprop.worked_pass(model.net, inputs, int(y)), self.state["lr"])
        return {**worked, "x": [x1, x2], "inputs": list(model.names), "model": self.network}

    def _scores(self, kind: str, model) -> dict:
        """Loss and accuracy on the training and the test points (KNN's: accuracy, once per KNN); the line's
        geometry."""
        if kind == "knn":
            if self._knn_scores[0] != self._knn_stamp:
                self._knn_scores = (self._knn_stamp, self._knn_accuracies(model))
            return dict(self._knn_scores[1])
        n = len(self.ytr)
        with torch.no_grad():  # one forward pass over both splits
            logits = model.net(model.inputs(torch.cat([self.Xtr, self.Xte])))
        scores = {}
        for split, z, y in (("train", logits[:n], self.ytr), ("test", logits[n:], self.yte)):
            loss, accuracy = float("nan"), float("nan")
            if len(y):
                loss = float(model.net.loss(z, y.float() if model.net.binary else y))
                accuracy = float((model.net.predictions(z) == y).float().mean())
            scores |= {f"{split}_loss": _finite(loss), f"{split}_accuracy": _finite(accuracy)}
        line = model.line()
        if line is not None:
            w, b = line
            scores["line"] = {"w": [float(w[0]), float(w[1])], "b": b, "distance": plane.line_distance(w, b)}
        return scores

    def _knn_accuracies(self, model) -> dict:
        return {
            f"{split}_accuracy": float((model.predict(X) == y).float().mean()) if len(y) else None
            for split, X, y in (("train", self.Xtr, self.ytr), ("test", self.Xte, self.yte))
        }

    # -- the lecture's gradient check, and the export ------------------------------------------------
    def gradient_check(self, rows: int = 64) -> dict:
        """nnref's hand-written gradient of the training loss against the numerical gradient (forward and central
        differences, Δ = 1e-6, float64) at the current weights, on the first ``rows`` training points: the largest
        relative error ‖a − n‖ / max(‖a‖, ‖n‖) over the weight and bias tensors."""
        kind = "mlp" if "mlp" in self.descents else "line" if "line" in self.descents else None
        if kind is None:
            return {"type": "gradcheck", "message": "KNN has no parameters: there is no gradient to check."}
        d = self.descents[kind]
        net = copy.deepcopy(d.net).double()
        X, t = d.X[:rows].double(), d.t[:rows].double() if d.classes == 2 else d.t[:rows]
        names = [n for n, _ in net.named_parameters()]
        params = [p.detach().clone() for p in net.parameters()]

        def loss(*ps):
            logits = torch.func.functional_call(net, dict(zip(names, ps)), (X,))
            return net.loss(logits, t)

        start = time.perf_counter()
        leaves = [p.clone().requires_grad_() for p in params]
        analytic = torch.autograd.grad(loss(*leaves), leaves)
        errors = {}
        for method in ("forward", "central"):
            numeric = numerical_gradient(loss, params, delta=1e-6, method=method)
            errors[method] = max(norm_relative_error(a, n) for a, n in zip(analytic, numeric))
        return {
            "type": "gradcheck",
            "model": kind,
            "parameters": sum(p.numel() for p in params),
            "rows": X.shape[0],
            "forward": errors["forward"],
            "central": errors["central"],
            "seconds": round(time.perf_counter() - start, 3),
        }

    def export_model(self) -> bytes:
        """The trained model as a ``.pt`` file: the state dict of a network that takes the raw inputs, and what is
        needed to rebuild it (``nnref.models.MLP(len(inputs), hidden, 1 if classes == 2 else classes,
        activation)``, or logistic / softmax regression for the line)."""
        kind = "mlp" if "mlp" in self.models and "mlp" in self.descents else "line" if "line" in self.descents else None
        if kind is None:
            raise BadMessage("KNN keeps its training points, not a network: export the data as CSV instead")
        model = self.models[kind]
        buffer = io.BytesIO()
        torch.save(
            {
                "state_dict": model.net.state_dict(),
                "model": "logreg" if kind == "line" else "mlp",
                "inputs": list(model.names),
                "hidden": list(self.state["hidden"]) if kind == "mlp" else [],
                "activation": self.state["activation"],
                "classes": self.classes,
                "epoch": self.epoch,
                "state": self.state,
            },
            buffer,
        )
        return buffer.getvalue()


def _finite(value: float):
    return value if math.isfinite(value) else None


def _rounded(t: torch.Tensor) -> list:
    return (
        [round(v, 5) if math.isfinite(v) else None for v in t.detach().flatten().tolist()]
        if t.dim() <= 1
        else [_rounded(row) for row in t.detach()]
    )


def _placed(layers, floats: list[bytes]):
    """A network's layers as the header carries them: lists, or — weights measured for the class at once, as float32
    bytes and the layers' shapes — where they start among the frame's ``floats`` (appended to them)."""
    if isinstance(layers, list):
        return layers
    blob, shapes = layers
    at = sum(len(f) for f in floats) // 4
    floats.append(blob)
    return {"at": at, "shapes": shapes}


def _layers(linears: list) -> list[dict]:
    """The weights of every layer, input side first: the links the page draws, and all it needs to draw the
    network's heat map and every neuron's picture (``static/lab/model.js``)."""
    return [{"w": _rounded(m.weight), "b": _rounded(m.bias)} for m in linears]
