"""The catalogue: each of nnref's Functions beside its PyTorch twin — one entry per Function, used by
``nnref gradcheck``, ``nnref bench`` and the tests (a new Function is one new entry).

An :class:`Entry` names the Function, its checked plain call, PyTorch's built-in computing the same thing, how
to make example inputs of any size, which inputs carry a gradient, and the tolerance its comparison with the
built-in allows.  :func:`builtin_twin` does the same for whole models: the same network made of ``torch.nn``
layers, with the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as TF
from torch import nn

from . import functional as F

__all__ = ["Entry", "FUNCTIONS", "by_name", "builtin_twin"]


@dataclass(frozen=True)
class Entry:
    """One Function and its twin.

    ``make(g, dtype, n, c, p)`` returns example inputs: n rows, c classes / output units, p input features
    (``g`` a ``torch.Generator``), away from the points where a derivative is undefined (ReLU's kink, the ends
    of [0, 1] for probabilities).  ``nnref(*inputs, **kw)`` and ``builtin(*inputs, **kw)`` compute the same
    value (``kw``: a loss's ``reduction``).  ``grads[i]`` says whether input i carries a gradient (labels do not);
    ``builtin_grads`` whether the built-in's gradient of it is comparable (PyTorch's BCE gives no finite target
    gradient at 0 and 1)."""

    name: str
    function: type
    nnref: Callable
    builtin: Callable
    make: Callable
    grads: tuple[bool, ...]
    formula: str
    loss: bool = False
    builtin_grads: tuple[bool, ...] | None = None
    bench_size: tuple[int, int, int] = (512, 800, 784)  # (n, c, p) of the bench's full-size comparison
    rtol32: float = 1e-5
    atol32: float = 1e-6

    def inputs(self, n: int = 4, c: int = 5, p: int = 3, dtype=torch.float64, seed: int = 0, device="cpu"):
        g = torch.Generator().manual_seed(seed)
        return tuple(t.to(device) for t in self.make(g, dtype, n, c, p))

    def tolerance(self, dtype) -> dict:
        """``torch.testing.assert_close`` tolerances of nnref against the built-in in ``dtype``."""
        return dict(rtol=self.rtol32, atol=self.atol32) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)

    def compared_grads(self) -> tuple[bool, ...]:
        return self.builtin_grads or self.grads

    def as_function(self, inputs: tuple, call: Callable | None = None, **kw):
        """(f, xs): ``f(*xs) == call(*inputs, **kw)`` (``call`` default: nnref's) where xs are the inputs that
        carry a gradient — the form ``torch.autograd.gradcheck`` and the numerical gradient take."""
        call = call or self.nnref
        which = [i for i, g in enumerate(self.grads) if g]

        def f(*xs):
            args = list(inputs)
            for i, x in zip(which, xs):
                args[i] = x
            return call(*args, **kw)

        return f, tuple(inputs[i] for i in which)


def _randn(g, dtype, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def _away_from_zero(t: torch.Tensor) -> torch.Tensor:
    return t + 0.2 * torch.sign(t)


def _labels(g, n, c):
    return torch.randint(0, c, (n,), generator=g)


def _unit(g, dtype, n):
    return (torch.rand(n, generator=g, dtype=torch.float64) * 0.8 + 0.1).to(dtype)


FUNCTIONS: tuple[Entry, ...] = (
    Entry(
        "linear",
        F.LinearFunction,
        F.linear,
        TF.linear,
        lambda g, d, n, c, p: (_randn(g, d, n, p), _randn(g, d, c, p) * p**-0.5, _randn(g, d, c)),
        (True, True, True),
        "z = x Wᵀ + b · dL/dx = g W, dL/dW = gᵀ x, dL/db = Σ g",
        rtol32=1e-5,
        atol32=1e-5,
    ),
    Entry(
        "sigmoid",
        F.SigmoidFunction,
        F.sigmoid,
        torch.sigmoid,
        lambda g, d, n, c, p: (_randn(g, d, n, c),),
        (True,),
        "a = 1/(1 + e^−z) · da/dz = a(1 − a)",
    ),
    Entry(
        "softmax",
        F.SoftmaxFunction,
        F.softmax,
        lambda z: torch.softmax(z, -1),
        lambda g, d, n, c, p: (_randn(g, d, n, c),),
        (True,),
        "a_i = e^z_i / Σ e^z_j · dL/dz = a ⊙ (g − Σ g a)",
    ),
    Entry(
        "relu",
        F.ReLUFunction,
        F.relu,
        torch.relu,
        lambda g, d, n, c, p: (_away_from_zero(_randn(g, d, n, c)),),
        (True,),
        "a = max(z, 0) · da/dz = 1[z > 0]",
    ),
    Entry(
        "tanh",
        F.TanhFunction,
        F.tanh,
        torch.tanh,
        lambda g, d, n, c, p: (_randn(g, d, n, c),),
        (True,),
        "a = tanh z · da/dz = 1 − a²",
    ),
    Entry(
        "cross_entropy",
        F.CrossEntropyFunction,
        F.cross_entropy,
        lambda a, y, reduction="mean": TF.nll_loss(torch.log(a), y, reduction=reduction),
        lambda g, d, n, c, p: (torch.softmax(_randn(g, d, n, c), -1), _labels(g, n, c)),
        (True, False),
        "L = −log a_y · dL/da = (0, …, −1/a_y, …, 0)",
        loss=True,
        bench_size=(512, 10, 0),
    ),
    Entry(
        "binary_cross_entropy",
        F.BinaryCrossEntropyFunction,
        F.binary_cross_entropy,
        TF.binary_cross_entropy,
        lambda g, d, n, c, p: (_unit(g, d, n), torch.rand(n, generator=g, dtype=torch.float64).to(d)),
        (True, True),
        "L = −y log a − (1 − y) log(1 − a) · dL/da = (a − y)/(a(1 − a))",
        loss=True,
        builtin_grads=(True, False),
        bench_size=(512, 1, 0),
    ),
    Entry(
        "softmax_cross_entropy",
        F.SoftmaxCrossEntropyFunction,
        F.softmax_cross_entropy,
        TF.cross_entropy,
        lambda g, d, n, c, p: (_randn(g, d, n, c), _labels(g, n, c)),
        (True, False),
        "L = log Σ e^z − z_y · dL/dz = softmax(z) − onehot(y)",
        loss=True,
        bench_size=(512, 10, 0),
    ),
    Entry(
        "sigmoid_binary_cross_entropy",
        F.SigmoidBinaryCrossEntropyFunction,
        F.sigmoid_binary_cross_entropy,
        TF.binary_cross_entropy_with_logits,
        lambda g, d, n, c, p: (_randn(g, d, n), torch.rand(n, generator=g, dtype=torch.float64).to(d)),
        (True, True),
        "L = max(z, 0) − z y + log(1 + e^−|z|) · dL/dz = σ(z) − y",
        loss=True,
        bench_size=(512, 1, 0),
    ),
)


def by_name(name: str) -> Entry:
    """The entry of a plain function ("linear") or of its Function ("LinearFunction")."""
    for entry in FUNCTIONS:
        if name in (entry.name, entry.function.__name__):
            return entry
    raise KeyError(f"no Function named {name!r} in the catalogue")


def builtin_twin(model: nn.Module) -> nn.Module:
    """The same network made of ``torch.nn`` layers, with the same weights (the bench's fair reference)."""
    from .layers import ACTIVATIONS, Linear
    from .models import MLP

    twins = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}
    if isinstance(model, MLP):
        layers = []
        for layer in model.layers:
            if isinstance(layer, Linear):
                lin = nn.Linear(layer.in_features, layer.out_features)
                lin.load_state_dict(layer.state_dict())
                layers.append(lin)
            else:
                name = next(k for k, v in ACTIVATIONS.items() if isinstance(layer, v))
                layers.append(twins[name]())
        return nn.Sequential(*layers)
    lin = nn.Linear(model.linear.in_features, model.linear.out_features)
    lin.load_state_dict(model.linear.state_dict())
    return lin
