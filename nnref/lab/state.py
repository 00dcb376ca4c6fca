"""The lab's state: one object, the same on the page (``static/lab/state.js``, serialised to the URL) and here,
where every message a page sends is checked against it before anything uses it.

A page sends JSON messages.  :func:`parse_message` turns the text into a checked message or raises
:class:`BadMessage` with a sentence the page shows — malformed JSON, NaN or infinite numbers, an unknown
message type or field, a value of the wrong type, outside its range, or too large (a million neurons) — and the
session and the server go on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from ..settings import ACTIVATIONS, CLASSES, DATASETS, FEATURES, METRICS

__all__ = ["BadMessage", "FIELDS", "DEFAULTS", "MESSAGES", "LIMITS", "parse_message", "check_state"]

#: The caps on what a page can ask for.
LIMITS = {"layers": 6, "neurons": 8, "points": 1000, "samples": 1000, "k": 50, "message_bytes": 256 * 1024}
MODELS = ("line", "mlp", "knn", "compare")
REGULARIZATIONS = ("none", "L1", "L2")


class BadMessage(ValueError):
    """A message the lab refuses, with the reason in words for the page."""


def _number(lo: float, hi: float, integer: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise BadMessage(f"{name} must be {'a whole number' if integer else 'a number'}, got {value!r}")
        if not math.isfinite(value) or not lo <= value <= hi:
            raise BadMessage(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
        return value
    return check


def _choice(options) -> Callable[[str, Any], Any]:
    def check(name: str, value):
        if value not in options:
            raise BadMessage(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")
        return value
    return check


def _flag(name: str, value):
    if not isinstance(value, bool):
        raise BadMessage(f"{name} must be true or false, got {value!r}")
    return value


def _hidden(name: str, value):
    if not isinstance(value, list) or len(value) > LIMITS["layers"]:
        raise BadMessage(f"{name} must be a list of at most {LIMITS['layers']} layer sizes, got {_short(value)}")
    return [_number(1, LIMITS["neurons"], integer=True)(f"{name} (neurons in a layer)", v) for v in value]


def _inputs(name: str, value):
    if not isinstance(value, list) or not value or len(value) > len(FEATURES):
        raise BadMessage(f"{name} must be a non-empty list of {', '.join(FEATURES)}, got {_short(value)}")
    chosen = {_choice(FEATURES)(name, v) for v in value}
    return [f for f in FEATURES if f in chosen]


def _points(name: str, value):
    if not isinstance(value, list) or len(value) > LIMITS["points"]:
        raise BadMessage(f"{name} must be a list of at most {LIMITS['points']} points [x1, x2, class], "
                         f"got {_short(value)}")
    coordinate, label = _number(-6, 6), _number(0, 3, integer=True)
    points = []
    for p in value:
        if not isinstance(p, list) or len(p) != 3:
            raise BadMessage(f"each of {name} must be [x1, x2, class], got {_short(p)}")
        points.append([coordinate("a point's x1", p[0]), coordinate("a point's x2", p[1]), label("a point's class", p[2])])
    return points


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


@dataclass(frozen=True)
class Field:
    check: Callable[[str, Any], Any]
    default: Any
    doc: str


#: Every field of the state the server uses (the page also keeps what only it draws: show test data,
#: discretize, hidden controls).
FIELDS: dict[str, Field] = {
    "dataset": Field(_choice((*DATASETS, "custom")), "circles", "blobs, xor, circles, spirals, or your own points"),
    "classes": Field(_number(2, 4, integer=True), 2, "how many classes (2-4)"),
    "noise": Field(_number(0, 3), 0.2, "standard deviation of the points' jitter"),
    "samples": Field(_number(20, LIMITS["samples"], integer=True), 400, "points in the dataset"),
    "ratio": Field(_number(10, 90, integer=True), 50, "percentage of points used for training"),
    "seed": Field(_number(0, 2**31 - 1, integer=True), 1, "decides the points, the split and the initial weights"),
    "points": Field(_points, [], "your own points [x1, x2, class] (dataset custom)"),
    "model": Field(_choice(MODELS), "mlp", "line, mlp, knn, or compare (all three side by side)"),
    "inputs": Field(_inputs, ["x1", "x2"], "the network's inputs"),
    "hidden": Field(_hidden, [4, 2], "neurons in each hidden layer"),
    "activation": Field(_choice(tuple(ACTIVATIONS)), "tanh", "the hidden layers' activation"),
    "lr": Field(_number(1e-6, 10), 0.03, "learning rate α"),
    "momentum": Field(_number(0, 0.99), 0.9, "SGD momentum"),
    "batch": Field(_number(0, 100, integer=True), 10, "batch size (0: every training point in each step)"),
    "regularization": Field(_choice(REGULARIZATIONS), "none", "penalty on the weights"),
    "regRate": Field(_number(0, 10), 0.0, "the penalty's rate λ"),
    "k": Field(_number(1, LIMITS["k"], integer=True), 5, "KNN: neighbours that vote"),
    "metric": Field(_choice(METRICS), "euclidean", "KNN: distance"),
}
DEFAULTS = {name: field.default for name, field in FIELDS.items()}

#: Message types and the fields each carries (beyond "type").
MESSAGES = {"config": {"state", "version"}, "play": set(), "pause": set(), "step": set(), "reset": set(), "reinit": set(),
            "ready": set(), "gradcheck": set(), "export": set()}


def check_state(state) -> dict:
    """A (partial) state with every field checked; unknown fields are refused."""
    if not isinstance(state, dict):
        raise BadMessage(f"state must be an object of fields, got {_short(state)}")
    unknown = sorted(set(state) - set(FIELDS))
    if unknown:
        raise BadMessage(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"(the state has {', '.join(FIELDS)})")
    checked = {name: FIELDS[name].check(name, value) for name, value in state.items()}
    dataset, classes = checked.get("dataset"), checked.get("classes")
    if dataset in CLASSES and classes is not None and classes not in CLASSES[dataset]:
        raise BadMessage(f"{dataset} has {' or '.join(map(str, CLASSES[dataset]))} classes, not {classes}")
    return checked


def _no_constants(name: str):
    raise BadMessage(f"numbers must be finite, got {name}")


def parse_message(text: str | bytes) -> dict:
    """The checked message of a page's text, or :class:`BadMessage`."""
    if len(text) > LIMITS["message_bytes"]:
        raise BadMessage(f"a message is at most {LIMITS['message_bytes'] // 1024} KiB, got {len(text) // 1024} KiB")
    try:
        message = json.loads(text, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, BadMessage):
            raise
        raise BadMessage(f"a message must be JSON: {str(exc).split(':')[0]}") from None
    if not isinstance(message, dict) or message.get("type") not in MESSAGES:
        raise BadMessage(f"a message is an object whose type is one of {', '.join(MESSAGES)}, got {_short(message)}")
    extra = sorted(set(message) - {"type"} - MESSAGES[message["type"]])
    if extra:
        raise BadMessage(f"a {message['type']!r} message has no field {', '.join(map(repr, extra))}")
    if message["type"] == "config":
        message["state"] = check_state(message.get("state", {}))
        if "version" in message:  # the page's count of its changes: frames say which one they show
            _number(0, 2**31 - 1, integer=True)("version", message["version"])
    return message
