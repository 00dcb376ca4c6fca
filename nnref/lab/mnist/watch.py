"""What the ``/mnist`` page watches of a model while it trains: the validation loss, accuracy and confusion matrix,
every layer's numbers (the mean and spread of its activations and of its weights' gradients, the share of dead or
saturated units), the gallery's top three classes, and the templates (the rows of W, or the first layer's filters)
as bytes.  Everything here reads the model and returns values; nothing changes it.

The numbers a practitioner watches, as defined here: a ReLU unit is *dead* when it outputs 0 for every image of
the validation subset (no gradient reaches its weights); a sigmoid or tanh output is *saturated* within 1% of its
bounds (σ < 0.01 or > 0.99, |tanh| > 0.99), where its derivative is under 0.01 (σ′ ≤ 0.0099, tanh′ ≤ 0.0199) —
the share of saturated outputs over the units and the validation images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...layers import Linear

__all__ = ["Measure", "layers_of", "forward", "measure", "gradients", "top_three", "templates", "signed_bytes"]

#: The most first-layer filters a frame carries (a 10 × 10 grid).
FILTERS = 100
_SATURATED = {"sigmoid": lambda a: (a < 0.01) | (a > 0.99), "tanh": lambda a: a.abs() > 0.99}


@dataclass
class Measure:
    """The validation subset through the model: mean loss, accuracy, the confusion matrix (c × c counts, rows the
    true class), and per layer (hidden layers, then the output) its activations' mean and standard deviation and
    its share of dead (ReLU) or saturated (sigmoid, tanh) units."""

    loss: float
    accuracy: float
    confusion: list[list[int]]
    layers: list[dict] = field(default_factory=list)


def layers_of(model) -> list[torch.nn.Module]:
    """The model's modules in order: Linear, activation, …, Linear (softmax regression: its one Linear)."""
    return list(model.layers) if hasattr(model, "layers") else [model.linear]


def forward(model, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """x (n, 784) → (every hidden layer's activations [(n, h)…], logits (n, c)), by nnref's layers."""
    hidden, z = [], x
    for layer in layers_of(model):
        z = layer(z)
        if not isinstance(layer, Linear):
            hidden.append(z)
    return hidden, z


@torch.no_grad()
def measure(model, x: torch.Tensor, y: torch.Tensor, activation: str) -> Measure:
    """The validation subset x (n, 784), y (n,) through the model (see :class:`Measure`)."""
    hidden, logits = forward(model, x)
    loss = float(model.loss(logits, y))
    pred = logits.argmax(-1)
    c = logits.shape[-1]
    confusion = torch.bincount(y * c + pred, minlength=c * c).reshape(c, c)
    layers = [_activity(a, activation) for a in hidden]
    layers.append({"act_mean": float(logits.mean()), "act_std": float(logits.std())})
    return Measure(loss, float((pred == y).float().mean()), confusion.tolist(), layers)


def _activity(a: torch.Tensor, activation: str) -> dict:
    """A hidden layer's activations a (n, h): their mean and spread, and its dead or saturated share."""
    numbers = {"act_mean": float(a.mean()), "act_std": float(a.std())}
    if activation == "relu":
        numbers["dead"] = float((a <= 0).all(0).float().mean())
    elif activation in _SATURATED:
        numbers["saturated"] = float(_SATURATED[activation](a).float().mean())
    return numbers


def gradients(model) -> list[dict]:
    """Each Linear layer's weight gradient of the last step: its mean and standard deviation (None before one)."""
    out = []
    for layer in layers_of(model):
        if isinstance(layer, Linear):
            g = layer.weight.grad
            out.append(
                {"grad_mean": None, "grad_std": None}
                if g is None
                else {"grad_mean": float(g.mean()), "grad_std": float(g.std())}
            )
    return out


@torch.no_grad()
def top_three(model, x: torch.Tensor) -> list[list[list]]:
    """The three likeliest classes of each row of x (g, 784) and their probabilities: [[[class, p] × 3] × g]."""
    probs = model.predict_proba(x)
    p, c = probs.topk(min(3, probs.shape[-1]), dim=-1)
    return [[[k, round(v, 4)] for k, v in zip(ks, vs)] for ks, vs in zip(c.tolist(), p.tolist())]


def signed_bytes(rows: torch.Tensor) -> bytes:
    """Rows (k, p) as bytes 128 ± 127 · value / max |value of the row| (0 at 128): each picture at its own scale."""
    rows = rows.detach().float()
    scale = rows.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    return (128 + 127 * rows / scale).round().clamp(0, 255).to(torch.uint8).numpy().tobytes()


def templates(model) -> tuple[str, int, bytes]:
    """What the first layer's weights look like as 28 × 28 pictures: ("classes", c, the rows of W) for softmax
    regression, ("filters", k, the first k ≤ :data:`FILTERS` rows of W₁) for an MLP."""
    first = layers_of(model)[0]
    kind = "filters" if hasattr(model, "layers") else "classes"
    rows = first.weight[:FILTERS] if kind == "filters" else first.weight
    if torch.isfinite(rows).all():
        return kind, rows.shape[0], signed_bytes(rows)
    return kind, rows.shape[0], bytes([128]) * rows.numel()  # (a diverged model's NaN weights: blank pictures)
