"""The lab's state: one definition, here — every field with its kind, default, range, options, group and meaning,
the limits, the presets, the inputs, datasets and classes — which the page fetches from the server
(``/lab/definition.json``, :func:`definition`) and serialises to the URL, and against which every message a page
sends is checked before anything uses it.

A page sends JSON messages.  :func:`parse_message` turns the text into a checked message or raises
:class:`BadMessage` with a sentence the page shows — malformed JSON, NaN or infinite numbers, an unknown
message type or field, a value of the wrong type, outside its range, or too large (a million neurons) — and the
session and the server go on.

Each field belongs to a group, and the group says what a change of the field does (:data:`GROUPS`,
docs/playground.md): a ``recipe`` change keeps the weights, the epoch and the loss curve and applies from the next
step; a ``knn`` change rebuilds only KNN; a ``network`` change gives new networks on the same data; a ``data``
change gives new points (and new networks).  ``page`` fields are the page's alone (what it draws, hidden
controls): the server never sees them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from ..choices import ACTIVATIONS, CLASSES, COLOURS, DATASETS, DOMAIN, FEATURES, METRICS, NOISE, check_classes

__all__ = [
    "BadMessage",
    "Field",
    "FIELDS",
    "DEFAULTS",
    "SERVER_FIELDS",
    "GROUPS",
    "MESSAGES",
    "LIMITS",
    "PRESETS",
    "HIDEABLE",
    "parse_message",
    "check_state",
    "check_fields",
    "definition",
]

#: The caps on what a page can ask for.
LIMITS = {
    "layers": 6,
    "neurons": 8,
    "points": 1000,
    "samples": 1000,
    "k": 50,
    "message_bytes": 256 * 1024,
    "weight": 1000,
    "typed": 600,
}
MODELS = ("line", "mlp", "knn", "compare")
REGULARIZATIONS = ("none", "L1", "L2")

#: What a change of a field of each group does (the rules docs/playground.md states; PlaygroundSession keeps them).
GROUPS = {
    "data": "new points (and new networks on them)",
    "network": "a new network on the same points",
    "recipe": "the same weights, epoch and loss curve: the change applies from the next step",
    "knn": "KNN rebuilt with the new k or distance; the networks go on",
    "weights": "the weights typed by hand take their values at once; the run goes on from them",
    "inspect": "the worked example of one instance (the backward pass view): nothing is rebuilt",
    "page": "the page alone (what it draws): the server never sees it",
}

#: The groups of controls a classroom link can hide (``&hide=regularization,checks``): the page's sections.
HIDEABLE = ("training", "model", "rate", "activation", "regularization", "knn", "data", "network", "view", "checks")


class BadMessage(ValueError):
    """A message the lab refuses, with the reason in words for the page."""


@dataclass(frozen=True)
class Field:
    """One field of the state.  ``kind``: number, integer, choice, flag, list (of ``options``), hidden (layer
    sizes), inputs or points; ``lo``/``hi``/``step`` the range of a number (the page's slider too); ``options`` the
    values a choice (or a list's entries) may take, or those the page offers for a number; ``labels`` what the page
    shows for them."""

    kind: str
    default: Any
    group: str
    doc: str
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    options: tuple | None = None
    labels: tuple | None = None

    def check(self, name: str, value):
        """The value, checked (a list's entries in their canonical order), or :class:`BadMessage`."""
        return _CHECKS[self.kind](self, name, value)


def _number(field: Field, name: str, value, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise BadMessage(f"{name} must be {'a whole number' if integer else 'a number'}, got {_short(value)}")
    if not math.isfinite(value) or not field.lo <= value <= field.hi:
        raise BadMessage(f"{name} must be between {field.lo:g} and {field.hi:g}, got {value!r}")
    return value


def _choice(field: Field, name: str, value):
    if value not in field.options:
        raise BadMessage(f"{name} must be one of {', '.join(map(str, field.options))}, got {_short(value)}")
    return value


def _flag(field: Field, name: str, value):
    if not isinstance(value, bool):
        raise BadMessage(f"{name} must be true or false, got {_short(value)}")
    return value


def _list(field: Field, name: str, value):
    if not isinstance(value, list) or len(value) > len(field.options):
        raise BadMessage(f"{name} must be a list of {', '.join(field.options)}, got {_short(value)}")
    chosen = {_choice(field, name, v) for v in value}
    return [f for f in field.options if f in chosen]


def _inputs(field: Field, name: str, value):
    if not isinstance(value, list) or not value:
        raise BadMessage(f"{name} must be a non-empty list of {', '.join(field.options)}, got {_short(value)}")
    return _list(field, name, value)


def _hidden(field: Field, name: str, value):
    if not isinstance(value, list) or len(value) > LIMITS["layers"]:
        raise BadMessage(f"{name} must be a list of at most {LIMITS['layers']} layer sizes, got {_short(value)}")
    neurons = Field("integer", 1, field.group, "", lo=1, hi=LIMITS["neurons"])
    return [_number(neurons, f"{name} (neurons in a layer)", v, integer=True) for v in value]


def _points(field: Field, name: str, value):
    """Your own points: [x1, x2, class] — a training point — or [x1, x2, class, 1], a test point."""
    if not isinstance(value, list) or len(value) > LIMITS["points"]:
        raise BadMessage(
            f"{name} must be a list of at most {LIMITS['points']} points [x1, x2, class], got {_short(value)}"
        )
    coordinate = Field("number", 0, "", "", lo=DOMAIN[0], hi=DOMAIN[1])
    label, split = Field("integer", 0, "", "", lo=0, hi=3), Field("integer", 0, "", "", lo=0, hi=1)
    points = []
    for p in value:
        if not isinstance(p, list) or len(p) not in (3, 4):
            raise BadMessage(
                f"each of {name} must be [x1, x2, class] or [x1, x2, class, 1] (a test point), got {_short(p)}"
            )
        point = [
            _number(coordinate, "a point's x1", p[0]),
            _number(coordinate, "a point's x2", p[1]),
            _number(label, "a point's class", p[2], integer=True),
        ]
        if len(p) == 4 and _number(split, "a point's split (0 training, 1 test)", p[3], integer=True):
            point.append(1)
        points.append(point)
    return points


def _instance(field: Field, name: str, value):
    """The instance of the worked example: [x1, x2, class], or [] for none."""
    if value == []:
        return []
    if not isinstance(value, list) or len(value) != 3:
        raise BadMessage(f"{name} must be [x1, x2, class] or [], got {_short(value)}")
    return _points(field, name, [value])[0]


def _typed_weights(field: Field, name: str, value):
    """Weights typed by hand: [layer, neuron, input, value] entries, input −1 for the neuron's bias (layer 0 takes
    the network's inputs; whether the indices exist is checked against the network: PlaygroundSession)."""
    if not isinstance(value, list) or len(value) > LIMITS["typed"]:
        raise BadMessage(
            f"{name} must be a list of at most {LIMITS['typed']} [layer, neuron, input, value], got {_short(value)}"
        )
    index, w = (
        Field("integer", 0, "", "", lo=-1, hi=64),
        Field("number", 0, "", "", lo=-LIMITS["weight"], hi=LIMITS["weight"]),
    )
    typed = {}
    for entry in value:
        if not isinstance(entry, list) or len(entry) != 4:
            raise BadMessage(f"each of {name} must be [layer, neuron, input, value], got {_short(entry)}")
        key = tuple(
            _number(index, f"a typed weight's {part}", v, integer=True)
            for part, v in zip(("layer", "neuron", "input"), entry[:3])
        )
        typed[key] = _number(w, "a typed weight", entry[3])
    return [[*key, v] for key, v in typed.items()]  # (the last value typed for a weight wins)


_CHECKS = {
    "instance": _instance,
    "weights": _typed_weights,
    "number": _number,
    "integer": lambda f, n, v: _number(f, n, v, integer=True),
    "choice": _choice,
    "flag": _flag,
    "list": _list,
    "inputs": _inputs,
    "hidden": _hidden,
    "points": _points,
}


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


_DATASET_LABELS = {
    "circles": "Circles",
    "xor": "XOR",
    "blobs": "Gaussian blobs",
    "spirals": "Spirals",
    "custom": "Your own points",
}
_DATASETS = ("circles", "xor", "blobs", "spirals", "custom")  # the menu's order
assert set(_DATASETS) == {*DATASETS, "custom"}

#: Every field of the state, by group.
FIELDS: dict[str, Field] = {
    "dataset": Field(
        "choice",
        "circles",
        "data",
        "blobs, xor, circles, spirals, or your own points",
        options=_DATASETS,
        labels=tuple(_DATASET_LABELS[d] for d in _DATASETS),
    ),
    "classes": Field("integer", 2, "data", "how many classes (2-4)", lo=2, hi=4, step=1),
    "noise": Field("number", 0.2, "data", "standard deviation of the points' jitter", lo=0, hi=3, step=0.05),
    "samples": Field("integer", 400, "data", "points in the dataset", lo=20, hi=LIMITS["samples"], step=10),
    "ratio": Field("integer", 50, "data", "percentage of points used for training", lo=10, hi=90, step=10),
    "seed": Field("integer", 1, "data", "decides the points, the split and the initial weights", lo=0, hi=2**31 - 1),
    "points": Field("points", [], "data", "your own points [x1, x2, class] (and [x1, x2, class, 1]: a test point)"),
    "model": Field(
        "choice",
        "mlp",
        "network",
        "line, mlp, knn, or compare (all three side by side)",
        options=MODELS,
        labels=("The line (logistic regression)", "Neural network (MLP)", "k-nearest neighbours", "All three"),
    ),
    "inputs": Field(
        "inputs",
        ["x1", "x2"],
        "network",
        "the network's inputs",
        options=FEATURES,
        labels=("X₁", "X₂", "X₁²", "X₂²", "X₁X₂", "sin X₁", "sin X₂"),
    ),
    "hidden": Field("hidden", [4, 2], "network", "neurons in each hidden layer"),
    "activation": Field(
        "choice",
        "tanh",
        "network",
        "the hidden layers' activation",
        options=ACTIVATIONS,
        labels=("ReLU", "Sigmoid", "Tanh", "Linear"),
    ),
    "lr": Field(
        "number",
        0.03,
        "recipe",
        "learning rate α",
        lo=1e-6,
        hi=10,
        options=(0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10),
    ),
    "momentum": Field("number", 0.9, "recipe", "SGD momentum", lo=0, hi=0.99, options=(0, 0.5, 0.9, 0.99)),
    "batch": Field("integer", 10, "recipe", "batch size (0: every training point in each step)", lo=0, hi=100, step=1),
    "regularization": Field(
        "choice", "none", "recipe", "penalty on the weights", options=REGULARIZATIONS, labels=("None", "L1", "L2")
    ),
    "regRate": Field(
        "number",
        0.0,
        "recipe",
        "the penalty's rate λ",
        lo=0,
        hi=10,
        options=(0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10),
    ),
    "k": Field("integer", 5, "knn", "KNN: neighbours that vote", lo=1, hi=LIMITS["k"], step=1),
    "metric": Field(
        "choice", "euclidean", "knn", "KNN: distance", options=METRICS, labels=("Euclidean", "Manhattan", "Cosine")
    ),
    "showTest": Field("flag", False, "page", "show the test points"),
    "discretize": Field("flag", False, "page", "colour each point of the plane by its class alone"),
    "pointClass": Field("integer", 1, "page", "the class of the points you add", lo=0, hi=3),
    "pointSplit": Field(
        "choice",
        "train",
        "page",
        "whether the points you add train the model or test it",
        options=("train", "test"),
        labels=("Training", "Test"),
    ),
    "hide": Field("list", [], "page", "groups of controls hidden (a classroom link)", options=HIDEABLE),
    "backprop": Field(
        "flag", False, "page", "the backward pass view is open (a click on the plane picks the instance)"
    ),
    "weights": Field("weights", [], "weights", "weights typed by hand: [layer, neuron, input, value] (input −1: bias)"),
    "instance": Field("instance", [], "inspect", "the instance of the backward pass view: [x1, x2, class]"),
}
#: The fields the server uses (sent in "config" messages).
SERVER_FIELDS = tuple(name for name, f in FIELDS.items() if f.group != "page")
DEFAULTS = {name: FIELDS[name].default for name in SERVER_FIELDS}

#: The lecture's demos, one link each (``#preset=NAME``): a title and the fields they set.
PRESETS = {
    "the-line": {
        "title": "The line on the blobs",
        "state": {"dataset": "blobs", "noise": 0.8, "model": "line", "inputs": ["x1", "x2"], "lr": 0.03, "batch": 10},
    },
    "where-the-line-fails": {
        "title": "Where the line fails: XOR",
        "state": {"dataset": "xor", "noise": 0.2, "model": "line", "inputs": ["x1", "x2"]},
    },
    "one-layer-on-xor": {
        "title": "One hidden layer on XOR",
        "state": {
            "dataset": "xor",
            "noise": 0.2,
            "model": "mlp",
            "inputs": ["x1", "x2"],
            "hidden": [4],
            "activation": "tanh",
            "lr": 0.03,
        },
    },
    "deeper-net-on-spirals": {
        "title": "A deeper network on the spirals",
        "state": {
            "dataset": "spirals",
            "noise": 0.15,
            "model": "mlp",
            "inputs": ["x1", "x2", "sin x1", "sin x2"],
            "hidden": [8, 8, 6],
            "activation": "tanh",
            "lr": 0.03,
            "batch": 10,
        },
    },
    "worked-backward-pass": {
        "title": "The worked backward pass",
        "state": {
            "dataset": "blobs",
            "noise": 0.8,
            "model": "line",
            "inputs": ["x1", "x2"],
            "lr": 1,
            "momentum": 0,
            "batch": 1,
            "instance": [0.5, 0.6, 1],
            "weights": [[0, 0, 0, 0.2], [0, 0, 1, -0.1], [0, 0, -1, 0.06536]],
            "backprop": True,
        },
        "note": "The slide rounds a(1 − a) = 0.249 to 0.24, and so writes dL/dw₁ = −0.22, dL/dw₂ = −0.27 and "
        "dL/db = −0.46.",
    },
    "fit-the-line-by-hand": {
        "title": "Fit the line by hand",
        "state": {
            "dataset": "blobs",
            "noise": 0.8,
            "model": "line",
            "inputs": ["x1", "x2"],
            "lr": 0.03,
            "momentum": 0.9,
            "batch": 10,
            "weights": [[0, 0, 0, -0.4], [0, 0, 1, 1.2], [0, 0, -1, -2.0]],
        },
        "note": "Move the line (drag it, or type w₁, w₂ and b): what makes it good? The cross-entropy says. Then "
        "press Play and let gradient descent finish the job.",
    },
}

#: Message types and the fields each carries (beyond "type").
MESSAGES = {
    "config": {"state", "version"},
    "apply": set(),
    "play": set(),
    "pause": set(),
    "step": set(),
    "reset": set(),
    "reinit": set(),
    "ready": set(),
    "gradcheck": set(),
    "export": set(),
    "name": {"name"},
}


def definition() -> dict:
    """The state's definition as the page reads it (``/lab/definition.json``): every field, the limits, the
    presets, the groups, and the plane's datasets, classes, noise, inputs, colours and domain."""
    return {
        "fields": {name: {k: v for k, v in asdict(f).items() if v is not None} for name, f in FIELDS.items()},
        "server": list(SERVER_FIELDS),
        "groups": GROUPS,
        "limits": LIMITS,
        "presets": PRESETS,
        "classes": {**CLASSES, "custom": (2, 3, 4)},
        "noise": {**NOISE, "custom": 0},
        "colours": COLOURS,
        "domain": DOMAIN,
    }


def check_fields(state, names, check) -> dict:
    """A (partial) state whose fields are among ``names``, each value ``check(name, value)``-ed; an unknown field
    or a state that is not an object is refused.  The lab's and the MNIST page's states alike."""
    if not isinstance(state, dict):
        raise BadMessage(f"state must be an object of fields, got {_short(state)}")
    unknown = sorted(set(state) - set(names))
    if unknown:
        raise BadMessage(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"(the state has {', '.join(names)})"
        )
    return {name: check(name, value) for name, value in state.items()}


def check_state(state) -> dict:
    """A (partial) state of server fields, each checked; unknown fields are refused."""
    checked = check_fields(state, SERVER_FIELDS, lambda name, value: FIELDS[name].check(name, value))
    if checked.get("classes") is not None:
        classes_of(checked.get("dataset"), checked["classes"])
    return checked


def classes_of(dataset, classes: int) -> None:
    """:func:`nnref.choices.check_classes`, refused as a page's message is."""
    try:
        check_classes(dataset, classes)
    except ValueError as exc:
        raise BadMessage(str(exc)) from None


def _no_constants(name: str):
    raise BadMessage(f"numbers must be finite, got {name}")


def read_message(text: str | bytes, messages: dict, max_bytes: int, check) -> dict:
    """A page's text as a checked message, or :class:`BadMessage`: JSON of at most ``max_bytes``, finite numbers, an
    object whose type is a key of ``messages`` with only that type's fields; a ``config`` message's state checked
    by ``check`` and its version (the page's count of its changes: frames say which one they show) a whole number.
    The lab's and the MNIST page's messages alike."""
    if len(text) > max_bytes:
        raise BadMessage(f"a message is at most {max_bytes // 1024} KiB, got {len(text) // 1024} KiB")
    try:
        message = json.loads(text, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, BadMessage):
            raise
        raise BadMessage(f"a message must be JSON: {str(exc).split(':')[0]}") from None
    if not isinstance(message, dict) or message.get("type") not in messages:
        raise BadMessage(f"a message is an object whose type is one of {', '.join(messages)}, got {_short(message)}")
    extra = sorted(set(message) - {"type"} - messages[message["type"]])
    if extra:
        raise BadMessage(f"a {message['type']!r} message has no field {', '.join(map(repr, extra))}")
    if message["type"] == "config":
        message["state"] = check(message.get("state", {}))
        if "version" in message:
            _number(Field("integer", 0, "", "", lo=0, hi=2**31 - 1), "version", message["version"], integer=True)
    return message


def parse_message(text: str | bytes) -> dict:
    """The checked message of a page's text, or :class:`BadMessage`."""
    return read_message(text, MESSAGES, LIMITS["message_bytes"], check_state)
