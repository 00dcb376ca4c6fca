"""The lecture's gradient checking: compare a hand-written backward with the numerical gradient.

    dL/dw ≈ (L(w + Δ) − L(w)) / Δ            (forward difference, the slide's formula)
    dL/dw ≈ (L(w + Δ) − L(w − Δ)) / (2Δ)     (central difference: error O(Δ²) instead of O(Δ))

"only used for checking the correctness": it costs one evaluation of L per parameter.
:func:`check_functions` runs it, ``torch.autograd.gradcheck`` and ``gradgradcheck`` on every Function;
``nnref gradcheck`` prints the table (:mod:`nnref.run.gradcheck_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from . import functional as F
from .formulas import FORMULAS

__all__ = [
    "numerical_gradient",
    "relative_error",
    "norm_relative_error",
    "CheckResult",
    "check_functions",
    "CASES",
    "SweepPoint",
    "DELTAS",
    "sweep_size",
    "delta_sweep",
    "best_deltas",
    "CostRow",
    "numerical_cost",
]


def numerical_gradient(
    f: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor] | torch.Tensor,
    delta: float = 1e-6,
    method: str = "forward",
) -> tuple[torch.Tensor | None, ...]:
    """The numerical gradient of the scalar ``f(*inputs)`` with respect to every floating-point input.

    Each element w of each input is nudged by Δ and f re-evaluated:
    ``method="forward"`` gives (L(w+Δ) − L(w))/Δ, ``method="central"`` (L(w+Δ) − L(w−Δ))/(2Δ).
    Returns one gradient per input, shaped like it (``None`` for non-float inputs such as labels).
    The inputs are not modified.  Use float64: in float32, Δ = 1e-6 is lost in rounding.
    """
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    if method not in ("forward", "central"):
        raise ValueError(f"method must be 'forward' or 'central', got {method!r}")
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta!r}")
    work = [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in inputs]

    def loss() -> float:
        out = f(*work)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"f must return a scalar loss, got {shape}")
        return float(out)

    grads: list[torch.Tensor | None] = []
    with torch.no_grad():
        base = loss() if method == "forward" else None
        for t in work:
            if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
                grads.append(None)
                continue
            grad = torch.empty_like(t)
            flat, gflat = t.view(-1), grad.view(-1)
            for i in range(flat.numel()):
                w = flat[i].item()
                flat[i] = w + delta
                up = loss()
                if method == "forward":
                    gflat[i] = (up - base) / delta
                else:
                    flat[i] = w - delta
                    gflat[i] = (up - loss()) / (2 * delta)
                flat[i] = w
            grads.append(grad)
    return tuple(grads)


def relative_error(analytic: torch.Tensor, numeric: torch.Tensor, floor: float = 1e-8) -> float:
    """max |a − n| / max(|a|, |n|, floor) over the elements (the CS231n measure)."""
    scale = torch.maximum(analytic.abs(), numeric.abs()).clamp_min(floor)
    return float(((analytic - numeric).abs() / scale).max())


def norm_relative_error(analytic: torch.Tensor, numeric: torch.Tensor) -> float:
    """‖a − n‖ / max(‖a‖, ‖n‖): the error of a whole gradient, which an entry near zero cannot inflate (a deep
    network at its first steps has entries of 1e-8 whose numerical estimate keeps only a few digits)."""
    scale = max(float(analytic.norm()), float(numeric.norm()), 1e-300)
    return float((analytic - numeric).norm()) / scale


#: The Functions checked, by name: :data:`nnref.formulas.FORMULAS` (inputs kept away from kinks, such as ReLU
#: at 0, and from the clamped ends of the probability losses, where a derivative is not defined).
CASES = {entry.function.__name__: entry for entry in FORMULAS}


@dataclass
class CheckResult:
    name: str
    gradcheck: bool
    gradgradcheck: bool
    max_rel_error: float
    tolerance: float
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.gradcheck and self.gradgradcheck and self.max_rel_error <= self.tolerance


def _scalarize(fn, output_weights):
    """L = Σ v ⊙ fn(inputs) with fixed random weights v: a scalar whose gradient exercises every output."""

    def loss(*inputs):
        out = fn(*inputs)
        return (out * output_weights).sum()

    return loss


def check_functions(seed: int = 0, tolerance: float = 1e-6, delta: float = 1e-6, entries=None) -> list[CheckResult]:
    """gradcheck, gradgradcheck and the central-difference numerical gradient for every Function of the
    catalogue (or of ``entries``), in float64."""
    results = []
    for entry in entries if entries is not None else CASES.values():
        gen = torch.Generator().manual_seed(seed)
        fn, inputs = entry.as_function(entry.inputs(dtype=torch.float64, seed=seed))
        inputs = tuple(t.detach().clone().requires_grad_() for t in inputs)
        row = CheckResult(entry.function.__name__, False, False, float("inf"), tolerance)
        try:
            row.gradcheck = torch.autograd.gradcheck(fn, inputs, raise_exception=False)
            row.gradgradcheck = torch.autograd.gradgradcheck(fn, inputs, raise_exception=False)
            weights = torch.randn(fn(*inputs).shape, generator=gen, dtype=torch.float64)
            loss = _scalarize(fn, weights)
            analytic = torch.autograd.grad(loss(*inputs), inputs)
            numeric = numerical_gradient(loss, inputs, delta=delta, method="central")
            row.max_rel_error = max(relative_error(a, n) for a, n in zip(analytic, numeric))
        except Exception as exc:  # a failing row is reported, not raised: the table shows every Function
            row.error = f"{type(exc).__name__}: {exc}"
        results.append(row)
    return results


# --------------------------------------------------------------------------------------------------
# The lecture's two complaints about the numerical gradient, measured: "inaccurate" and "slow"
# --------------------------------------------------------------------------------------------------
@dataclass
class SweepPoint:
    method: str  # "forward" or "central"
    dtype: str  # "float32" or "float64"
    delta: float
    error: float  # max relative error against the hand-written gradient (computed in float64)


def _sweep_problem(seed: int):
    """Softmax regression's loss L(W, b) on 16 random points with 20 features and 5 classes: a scalar of
    105 parameters, whose exact gradient nnref's backward gives."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, 20, generator=g, dtype=torch.float64), torch.randint(0, 5, (16,), generator=g)
    W = torch.randn(5, 20, generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(5, generator=g, dtype=torch.float64)

    def loss(W, b, x=x):
        return F.softmax_cross_entropy(F.linear(x.to(W.dtype), W, b), y)

    return loss, (W, b)


#: The Δ grid of the sweep: 10^(e/4) for e = −48 … −4 (1e-12 to 0.1).
DELTAS = tuple(10.0 ** (e / 4) for e in range(-48, -3))


def sweep_size(deltas: Sequence[float] = DELTAS) -> int:
    """How many numerical gradients :func:`delta_sweep` computes (for a progress bar)."""
    return 4 * len(deltas)


def delta_sweep(deltas: Sequence[float] | None = None, seed: int = 0, progress=None) -> list[SweepPoint]:
    """The error of the forward difference (L(w+Δ) − L(w))/Δ and of the central difference against the
    hand-written gradient, for Δ from 1e-12 to 1e-1, in float32 and float64.  Each curve is a V: truncation
    error (∝ Δ forward, ∝ Δ² central) on the right, rounding error (∝ ε/Δ) on the left.  ``progress(1)`` is
    called after each numerical gradient."""
    deltas = list(deltas) if deltas is not None else list(DELTAS)
    loss, (W, b) = _sweep_problem(seed)
    Wg, bg = W.clone().requires_grad_(), b.clone().requires_grad_()
    exact = torch.autograd.grad(loss(Wg, bg), (Wg, bg))
    points = []
    for dtype in (torch.float32, torch.float64):
        params = (W.to(dtype), b.to(dtype))
        for method in ("forward", "central"):
            for delta in deltas:
                numeric = numerical_gradient(loss, params, delta=delta, method=method)
                error = max(relative_error(e, n.double()) for e, n in zip(exact, numeric))
                points.append(SweepPoint(method, str(dtype).removeprefix("torch."), delta, min(error, 1.0)))
                if progress is not None:
                    progress(1)
    return points


def best_deltas(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """The bottom of each V: the Δ with the smallest error, per (method, dtype)."""
    best: dict = {}
    for p in points:
        key = (p.method, p.dtype)
        if key not in best or p.error < best[key].error:
            best[key] = p
    return list(best.values())


@dataclass
class CostRow:
    model: str
    parameters: int
    backward_seconds: float
    numerical_seconds: float  # forward differences: one extra forward pass per parameter
    measured_parameters: int  # how many parameters were nudged; the rest is extrapolated

    @property
    def ratio(self) -> float:
        return self.numerical_seconds / self.backward_seconds


def numerical_cost(batch: int = 100, mlp_sample: int = 1000, seed: int = 0, progress=None) -> list[CostRow]:
    """The lecture's "slow": one forward-difference numerical gradient against one backward pass, on a batch
    of MNIST-shaped rows, for logistic regression (785 parameters), softmax regression (7,850) and the
    784-800-10 MLP (636,010 — timed on ``mlp_sample`` parameters and extrapolated, as the table says)."""
    import time

    from .models import MLP, LogisticRegression, SoftmaxRegression

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(batch, 784, generator=g), torch.randint(0, 10, (batch,), generator=g)
    rows = []
    for name, model, target in (
        ("logistic regression", LogisticRegression(784), (y == 0).long()),
        ("softmax regression", SoftmaxRegression(784, 10), y),
        ("MLP 784-800-10", MLP(784, 800, 10), y),
    ):
        params = [p for p in model.parameters()]
        n = sum(p.numel() for p in params)

        def loss(model=model, target=target):
            return model.loss(model(x), target)

        loss().backward()  # warm up
        start = time.perf_counter()
        loss().backward()
        backward = time.perf_counter() - start
        sample = n if n <= 10_000 else mlp_sample
        flat = [(p, i) for p in params for i in range(p.numel())][:: max(1, n // sample)][:sample]
        with torch.no_grad():
            start = time.perf_counter()
            base = float(loss())
            for p, i in flat:  # (L(w + Δ) − L(w)) / Δ, one parameter at a time
                view = p.view(-1)
                w = float(view[i])
                view[i] = w + 1e-3
                _ = (float(loss()) - base) / 1e-3
                view[i] = w
            numerical = (time.perf_counter() - start) * n / len(flat)
        rows.append(CostRow(name, n, backward, numerical, len(flat)))
        if progress is not None:
            progress(1)
    return rows
