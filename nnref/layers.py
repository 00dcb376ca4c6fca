"""``torch.nn.Module`` wrappers around nnref's Functions.

Each forward calls only :mod:`nnref.functional` (no ``torch.nn.functional``, no ``torch.nn.Linear``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import functional as F

__all__ = ["Linear", "Sigmoid", "Softmax", "ReLU", "Tanh", "Identity", "ACTIVATIONS"]


class Linear(nn.Module):
    """z = x Wᵀ + b.  x (n, in_features) → z (n, out_features).

    Parameters: ``weight`` W (out_features, in_features), ``bias`` b (out_features,).

    Initialisation: every entry of W and b is drawn from U(−1/√p, 1/√p) with p = in_features — the
    distribution ``torch.nn.Linear`` uses (its Kaiming-uniform with a = √5 reduces to this bound), so
    nnref and built-in models start from the same scale of weights.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _Activation(nn.Module):
    """An element-wise (or row-wise) activation: ``forward`` is the nnref function ``function``."""

    function = staticmethod(lambda z: z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.function(z)


class Sigmoid(_Activation):
    """a = σ(z), element-wise.  z (*) → a (*)."""

    function = staticmethod(F.sigmoid)


class Softmax(_Activation):
    """Softmax along the last dimension.  z (n, c) → a (n, c), rows summing to 1."""

    function = staticmethod(F.softmax)


class ReLU(_Activation):
    """a = max(z, 0), element-wise.  z (*) → a (*)."""

    function = staticmethod(F.relu)


class Tanh(_Activation):
    """a = tanh(z), element-wise.  z (*) → a (*)."""

    function = staticmethod(F.tanh)


class Identity(_Activation):
    """a = z: TensorFlow Playground's "linear" activation.  Its derivative is 1, so autograd passes the
    upstream gradient through unchanged and no Function is needed.  z (*) → a (*)."""


#: Hidden-layer activations by name, as the command line and the lab spell them.
ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "linear": Identity}
