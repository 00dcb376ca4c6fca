"""Each of the nine Functions described once: what it computes, in the lecture's symbols, and how it is checked.

One :class:`Formula` per Function, in the lecture's order (:data:`FORMULAS`): its ``apply`` arguments, its forward
formula and output, the gradient each argument receives (formula and shape), the extreme inputs it must survive,
its checked plain call, PyTorch's built-in computing the same thing, and how to make example inputs of any size.
Everything that speaks of a Function reads it from here: ``nnref gradcheck``'s table, the bench, the exercises'
checks and messages, and the tests — which also check that each Function's docstrings in
:mod:`nnref.functional` and the exercise kit state the same forward (a new Function is one new entry).

Notation: ``n`` instances, ``p`` features, ``c`` classes / output units, ``N`` the elements of a tensor, ``g`` the
upstream gradient dL/d(output) that backward receives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as TF

from . import functional as F

__all__ = ["Formula", "FORMULAS", "by_name"]


@dataclass(frozen=True)
class Formula:
    """One Function, described.

    ``args`` are its ``apply`` arguments in the lecture's symbols (``("z", "y", "reduction")``); ``forward`` is
    the formula it computes and ``output`` its result's shape; ``gradients[arg]`` is (formula, shape) of the
    gradient that argument receives, for the arguments that carry one.  ``extremes(dtype)`` gives inputs at the
    edges of float range, as ``[(args, what), …]``.

    ``make(g, dtype, n, c, p)`` returns example inputs: n rows, c classes / output units, p input features
    (``g`` a ``torch.Generator``), away from the points where a derivative is undefined (ReLU's kink, the ends
    of [0, 1] for probabilities).  ``plain(*inputs, **kw)`` (nnref's checked call) and ``builtin(*inputs, **kw)``
    compute the same value (``kw``: a loss's ``reduction``).  ``grads[i]`` says whether input i carries a
    gradient (labels do not); ``builtin_grads`` whether the built-in's gradient of it is comparable (PyTorch's
    BCE gives no finite target gradient at 0 and 1)."""

    name: str
    function: type
    plain: Callable
    builtin: Callable
    make: Callable
    grads: tuple[bool, ...]
    args: tuple[str, ...]
    forward: str
    output: str
    gradients: dict[str, tuple[str, str]] = field(default_factory=dict)
    extremes: Callable[[torch.dtype], list[tuple[tuple, str]]] | None = None
    mean_over: str = ""  # a loss's "mean": over the n rows ("n") or over all N elements ("N")
    optional: tuple[str, ...] = ()  # the arguments that may be None (the bias): then their gradient is None
    builtin_grads: tuple[bool, ...] | None = None
    bench_size: tuple[int, int, int] = (512, 800, 784)  # (n, c, p) of the bench's full-size comparison
    rtol32: float = 1e-5
    atol32: float = 1e-6

    @property
    def loss(self) -> bool:
        return self.args[-1] == "reduction"

    @property
    def result(self) -> str:
        """The symbol of what forward returns: z (the linear layer), a (an activation) or L (a loss)."""
        return self.forward.split(" ", 1)[0].split("_", 1)[0]

    def gradient(self, arg: str) -> str:
        """ "g W (n, p)", "softmax(z) − onehot(y), times g, ÷ n for 'mean' (n, c)": what ``arg`` receives."""
        formula, shape = self.gradients[arg]
        scaled = f", times g, ÷ {self.mean_over} for 'mean'" if self.mean_over else ""
        return f"{formula}{scaled} {shape}" if shape.startswith("(") else f"{formula}{scaled}, {shape}"

    @property
    def summary(self) -> str:
        """One line: the forward, then each gradient (``nnref gradcheck``'s table, the bench)."""
        grads = ", ".join(f"dL/d{arg} = {formula}" for arg, (formula, _) in self.gradients.items())
        return f"{self.forward} · {grads}"

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
        call = call or self.plain
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


def _t(rows, dtype) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


def _extreme_logits(dtype):
    return [((_t([[50.0, -50.0, 0.5, -3.0], [-50.0, 50.0, 50.0, 2.0]], dtype),), "logits of ±50")]


def _extreme_softmax_ce(dtype):
    z = _t([[50.0, -50.0, 0.0], [-50.0, 50.0, -50.0], [50.0, 50.0, -50.0]], dtype)
    return [((z, torch.tensor([1, 1, 2]), r), "logits of ±50") for r in F.REDUCTIONS]


def _extreme_sigmoid_bce(dtype):
    z, y = _t([50.0, -50.0, 50.0, -50.0, 0.3], dtype), _t([0.0, 1.0, 1.0, 0.0, 0.5], dtype)
    return [((z, y, r), "logits of ±50") for r in F.REDUCTIONS]


def _extreme_ce(dtype):
    eps = 1e-6
    a = _t([[eps, 0.5, 0.5 - eps], [1 - eps, eps / 2, eps / 2], [0.2, 0.3, 0.5]], dtype)
    return [((a, torch.tensor([0, 0, 2]), r), "probabilities near 0 and 1") for r in F.REDUCTIONS]


def _extreme_bce(dtype):
    eps = 1e-6
    a, y = _t([eps, 1 - eps, eps, 1 - eps, 0.5], dtype), _t([0.0, 1.0, 1.0, 0.0, 0.5], dtype)
    return [((a, y, r), "probabilities near 0 and 1") for r in F.REDUCTIONS]


_LOSS = "() for 'mean' and 'sum', (n,) for 'none'"

#: The nine Functions, described, in the lecture's order.
FORMULAS: tuple[Formula, ...] = (
    Formula(
        "linear",
        F.LinearFunction,
        F.linear,
        TF.linear,
        lambda g, d, n, c, p: (_randn(g, d, n, p), _randn(g, d, c, p) * p**-0.5, _randn(g, d, c)),
        (True, True, True),
        ("x", "W", "b"),
        "z = x Wᵀ + b",
        "(n, c)",
        {"x": ("g W", "(n, p)"), "W": ("gᵀ x", "(c, p)"), "b": ("Σ_rows g", "(c,)")},
        optional=("b",),
        rtol32=1e-5,
        atol32=1e-5,
    ),
    Formula(
        "sigmoid",
        F.SigmoidFunction,
        F.sigmoid,
        torch.sigmoid,
        lambda g, d, n, c, p: (_randn(g, d, n, c),),
        (True,),
        ("z",),
        "a = σ(z) = 1 / (1 + e^(−z))",
        "shaped like z",
        {"z": ("g · a(1 − a)", "shaped like z")},
        _extreme_logits,
    ),
    Formula(
        "softmax",
        F.SoftmaxFunction,
        F.softmax,
        lambda z: torch.softmax(z, -1),
        lambda g, d, n, c, p: (_randn(g, d, n, c),),
        (True,),
        ("z",),
        "a_i = e^(z_i) / Σ_j e^(z_j)",
        "(n, c), row by row",
        {"z": ("a ⊙ (g − Σ_i g_i a_i)", "(n, c)")},
        _extreme_logits,
    ),
    Formula(
        "relu",
        F.ReLUFunction,
        F.relu,
        torch.relu,
        lambda g, d, n, c, p: (_away_from_zero(_randn(g, d, n, c)),),
        (True,),
        ("z",),
        "a = max(z, 0)",
        "shaped like z",
        {"z": ("g · 1[z > 0]", "shaped like z")},
    ),
    Formula(
        "tanh",
        F.TanhFunction,
        F.tanh,
        torch.tanh,
        lambda g, d, n, c, p: (_randn(g, d, n, c),),
        (True,),
        ("z",),
        "a = tanh(z)",
        "shaped like z",
        {"z": ("g · (1 − a²)", "shaped like z")},
        _extreme_logits,
    ),
    Formula(
        "cross_entropy",
        F.CrossEntropyFunction,
        F.cross_entropy,
        lambda a, y, reduction="mean": TF.nll_loss(torch.log(a), y, reduction=reduction),
        lambda g, d, n, c, p: (torch.softmax(_randn(g, d, n, c), -1), _labels(g, n, c)),
        (True, False),
        ("a", "y", "reduction"),
        "L = −log a_y",
        _LOSS,
        {"a": ("(0, …, −1/a_y, …, 0)", "(n, c), in each row")},
        _extreme_ce,
        mean_over="n",
        bench_size=(512, 10, 0),
    ),
    Formula(
        "binary_cross_entropy",
        F.BinaryCrossEntropyFunction,
        F.binary_cross_entropy,
        TF.binary_cross_entropy,
        lambda g, d, n, c, p: (_unit(g, d, n), torch.rand(n, generator=g, dtype=torch.float64).to(d)),
        (True, True),
        ("a", "y", "reduction"),
        "L = −y log a − (1 − y) log(1 − a)",
        "() for 'mean' and 'sum', shaped like a for 'none'",
        {
            "a": ("−y/a + (1 − y)/(1 − a) = (a − y) / (a(1 − a))", "shaped like a"),
            "y": ("log(1 − a) − log a", "shaped like y"),
        },
        _extreme_bce,
        mean_over="N",
        builtin_grads=(True, False),
        bench_size=(512, 1, 0),
    ),
    Formula(
        "softmax_cross_entropy",
        F.SoftmaxCrossEntropyFunction,
        F.softmax_cross_entropy,
        TF.cross_entropy,
        lambda g, d, n, c, p: (_randn(g, d, n, c), _labels(g, n, c)),
        (True, False),
        ("z", "y", "reduction"),
        "L = log Σ_j e^(z_j) − z_y",
        _LOSS,
        {"z": ("softmax(z) − onehot(y)", "(n, c)")},
        _extreme_softmax_ce,
        mean_over="n",
        bench_size=(512, 10, 0),
    ),
    Formula(
        "sigmoid_binary_cross_entropy",
        F.SigmoidBinaryCrossEntropyFunction,
        F.sigmoid_binary_cross_entropy,
        TF.binary_cross_entropy_with_logits,
        lambda g, d, n, c, p: (_randn(g, d, n), torch.rand(n, generator=g, dtype=torch.float64).to(d)),
        (True, True),
        ("z", "y", "reduction"),
        "L = max(z, 0) − z y + log(1 + e^(−|z|))",
        "() for 'mean' and 'sum', shaped like z for 'none'",
        {"z": ("σ(z) − y", "shaped like z"), "y": ("−z", "shaped like y")},
        _extreme_sigmoid_bce,
        mean_over="N",
        bench_size=(512, 1, 0),
    ),
)


def by_name(name: str) -> Formula:
    """The formula of a plain function ("linear") or of its Function ("LinearFunction")."""
    for formula in FORMULAS:
        if name in (formula.name, formula.function.__name__):
            return formula
    raise KeyError(f"no Function named {name!r}: choose from {', '.join(f.function.__name__ for f in FORMULAS)}")
