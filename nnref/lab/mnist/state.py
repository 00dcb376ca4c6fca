"""The ``/mnist`` page's state: one definition, here — every field with its kind, default, range, options, group
and meaning — which the page fetches (``/mnist/definition.json``, :func:`definition`), keeps in its URL, and against
which every message it sends is checked before anything uses it (:func:`parse_message`).

A bad message — malformed JSON, a NaN learning rate, a batch of zero, a hidden layer of a million units, an
unknown field or message — raises :class:`~nnref.lab.state.BadMessage` with a sentence the page shows; the session
and the server go on.

What a change does follows the field's group (:data:`GROUPS`, docs/playground.md): a ``recipe`` change (learning
rate, momentum, batch size) keeps the weights and the curves and applies from the next step; a ``network`` change
(model, hidden layers, activation, seed) gives a new model at step 0, paused.
"""

from __future__ import annotations

from dataclasses import asdict

from ...choices import ACTIVATIONS
from ..state import BadMessage, Field, _short, check_fields, read_message

__all__ = ["FIELDS", "DEFAULTS", "GROUPS", "LIMITS", "MESSAGES", "definition", "check_state", "parse_message"]

#: The caps on what a page can ask for.
LIMITS = {"layers": 2, "units": 1024, "batch": 1024, "gallery": 24, "message_bytes": 64 * 1024, "draw_side": 512}

#: What a change of a field of each group does.
GROUPS = {
    "network": "a new model at step 0, paused (Play trains it)",
    "recipe": "the same weights and curves: the change applies from the next step",
}

#: The default weight decay: small enough to cost little accuracy, large enough that the ten templates read as
#: digits (scripts/mnist_decay.py measures both: docs/results/mnist-decay.log).
DECAY = 0.01

_ACTIVATIONS = tuple(a for a in ("relu", "tanh", "sigmoid") if a in ACTIVATIONS)

#: Every field of the page's state.
FIELDS: dict[str, Field] = {
    "model": Field(
        "choice",
        "softmax",
        "network",
        "softmax regression, or an MLP with one or two hidden layers",
        options=("softmax", "mlp"),
        labels=("Softmax regression", "MLP (hidden layers)"),
    ),
    "hidden": Field(
        "sizes",
        [100],
        "network",
        f"units in each hidden layer of the MLP (1 or {LIMITS['layers']} layers of 1 to {LIMITS['units']:,})",
        lo=1,
        hi=LIMITS["units"],
        options=(16, 32, 64, 100, 128, 256, 512, 1024),
    ),
    "activation": Field(
        "choice",
        "relu",
        "network",
        "the hidden layers' activation",
        options=_ACTIVATIONS,
        labels=("ReLU", "Tanh", "Sigmoid"),
    ),
    "seed": Field(
        "integer", 0, "network", "decides the initial weights and the order of the batches", lo=0, hi=2**31 - 1
    ),
    "lr": Field(
        "number",
        0.1,
        "recipe",
        "learning rate α",
        lo=1e-6,
        hi=100,
        options=(0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 100),
    ),
    "momentum": Field("number", 0.0, "recipe", "SGD momentum", lo=0, hi=0.99, options=(0, 0.5, 0.9, 0.99)),
    "batch": Field(
        "integer",
        64,
        "recipe",
        "images in each step's batch",
        lo=1,
        hi=LIMITS["batch"],
        options=(1, 8, 16, 32, 64, 128, 256, 512, 1024),
    ),
    "decay": Field(
        "number",
        DECAY,
        "recipe",
        "weight decay λ (L2): each step pulls every weight toward 0 by α·λ·w, so the border pixels that no digit "
        "lights — whose weights no gradient ever moves — fade from the templates",
        lo=0,
        hi=1,
        options=(0, 0.001, 0.003, 0.01, 0.03),
    ),
}
DEFAULTS = {name: field.default for name, field in FIELDS.items()}

#: Message types and the fields each carries (beyond "type"); a drawn digit comes as a binary message.
MESSAGES = {
    "config": {"state", "version"},
    "play": set(),
    "pause": set(),
    "step": set(),
    "reset": set(),
    "reinit": set(),
    "ready": set(),
    "export": set(),
    "name": {"name"},
    "inspect": {"index"},
}


def definition() -> dict:
    """The state's definition as the page reads it (``/mnist/definition.json``)."""
    return {
        "fields": {name: {k: v for k, v in asdict(f).items() if v is not None} for name, f in FIELDS.items()},
        "groups": GROUPS,
        "limits": LIMITS,
    }


def _sizes(field: Field, name: str, value) -> list[int]:
    """Hidden layer sizes: a list of 1 to ``LIMITS['layers']`` whole numbers in [lo, hi]."""
    if not isinstance(value, list) or not 1 <= len(value) <= LIMITS["layers"]:
        raise BadMessage(f"{name} must be a list of 1 or {LIMITS['layers']} layer sizes, got {_short(value)}")
    units = Field("integer", 1, field.group, "", lo=field.lo, hi=field.hi)
    return [units.check(f"{name} (units in a hidden layer)", v) for v in value]


def _check(name: str, value):
    field = FIELDS[name]
    return _sizes(field, name, value) if field.kind == "sizes" else field.check(name, value)


def check_state(state) -> dict:
    """A (partial) state, each field checked; unknown fields are refused."""
    return check_fields(state, FIELDS, _check)


def parse_message(text: str) -> dict:
    """The checked message of a page's text, or :class:`BadMessage` (:func:`nnref.lab.state.read_message`, and an
    ``inspect`` message's index a test digit of the gallery)."""
    message = read_message(text, MESSAGES, LIMITS["message_bytes"], check_state)
    if message["type"] == "inspect" and message.get("index") is not None:
        Field("integer", 0, "", "", lo=0, hi=LIMITS["gallery"] - 1).check("index (a test digit)", message["index"])
    return message
