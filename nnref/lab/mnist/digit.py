"""One digit through the model being trained, as the draw-a-digit page shows it: the forward pass — the 28 × 28
input, every hidden layer's activations, the ten probabilities — and the backward pass, dL/dx: the gradient of the
loss of one class with respect to the 784 input pixels, by nnref's hand-written backward (``torch.autograd.grad``
through nnref's Functions, a student's when ``nnref lab --functions`` put them in use).

The digit is a test digit of the gallery (its loss is that of its true class) or one drawn on the page (prepared as
MNIST's digits were, :func:`nnref.digits.prepare_digit`; its loss is that of the predicted class).
"""

from __future__ import annotations

import json
import struct

import torch

from ...digits import prepare_digit, to_row
from ..state import BadMessage
from .state import LIMITS
from .watch import forward, signed_bytes

__all__ = ["look_inside", "drawn_digit"]


def look_inside(model, image: torch.Tensor, label: int | None = None) -> tuple[dict, list[bytes]]:
    """``image`` (28, 28) in [0, 1] through ``model``: the header (probabilities, the predicted class, the class
    whose loss is differentiated — ``label``, else the prediction — that loss, the hidden layers' sizes) and the
    pictures as bytes: the input (784 gray), −dL/dx (784, 128 ± 127 · value / max), each hidden layer's
    activations (h, 128 ± 127 · a / max |a|)."""
    x = to_row(image).requires_grad_()
    with torch.enable_grad():
        hidden, logits = forward(model, x)
        probs = model.activation(logits.detach())[0]
        best = int(probs.argmax())
        target = best if label is None else int(label)
        loss = model.loss(logits, torch.tensor([target]))
        (grad,) = torch.autograd.grad(loss, x)  # nnref's hand-written backward, through every layer
    header = {
        "probabilities": [round(float(p), 5) for p in probs],
        "best": best,
        "target": target,
        "label": label,
        "loss": round(float(loss.detach()), 5),
        "hidden": [h.shape[-1] for h in hidden],
    }
    gray = (image.clamp(0, 1) * 255).round().to(torch.uint8).flatten().numpy().tobytes()
    pictures = [gray, signed_bytes(-grad)] + [signed_bytes(h.detach()) for h in hidden]
    return header, pictures


def drawn_digit(message: bytes) -> torch.Tensor:
    """A binary message from the page's pad — a 4-byte length, the JSON header ``{"type": "draw", "width",
    "height"}``, then width × height gray bytes (light ink on black) — as MNIST's 28 × 28 input, or
    :class:`BadMessage`."""
    try:
        (n,) = struct.unpack_from("<I", message)
        header, pixels = json.loads(message[4 : 4 + n]), message[4 + n :]
    except (struct.error, ValueError, UnicodeDecodeError):
        raise BadMessage("a binary message is a drawn digit: a 4-byte length, a JSON header, the gray pixels") from None
    side = LIMITS["draw_side"]
    if not isinstance(header, dict) or header.get("type") != "draw":
        raise BadMessage('a binary message is a drawn digit, {"type": "draw", "width", "height"} and its pixels')
    w, h = header.get("width"), header.get("height")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= side for v in (w, h))
    if not ok or len(pixels) != w * h:
        raise BadMessage(f"a drawing is width × height gray bytes, 8 to {side} pixels a side")
    gray = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(h, w).float() / 255
    return prepare_digit(gray, ink="light")
