"""Property tests: random shapes, dtypes, scales and layouts for every Function of the formulas, forward and
backward equal to PyTorch's built-in twin.  Cases include batch size 1, one class, non-contiguous inputs and
extreme logits (±1e4).

Nine Functions × ``EXAMPLES`` examples each (≥ 1,000 cases in all), derandomised so CI is repeatable.  Values are
compared within a tolerance scaled by their own size; gradients within one scaled by the *gradient's* size —
never by the forward's (at logits of 1e4 a loss is 1e4 but its gradient is at most 1, and a tolerance of 0.6 on
it would pass a wrong formula).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnref.functional as F
from nnref.formulas import FORMULAS

EXAMPLES = 120
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SCALES = [1e-3, 1.0, 10.0, 100.0, 1e4]  # 1e4: the extreme logits


def _tol(dtype, size: float) -> dict:
    """Relative tolerance, with an absolute floor at that fraction of the compared tensor's largest entry — and
    never below tiny/eps (1e-31 in float32): a result computed through a subnormal intermediate (a − y ≈ 1e-41)
    holds only that much absolute precision, in PyTorch's kernels as in nnref's."""
    finfo = torch.finfo(dtype)
    rel = 2e-5 if dtype == torch.float32 else 1e-9
    return dict(rtol=rel, atol=max(rel * size, finfo.tiny / finfo.eps))


def _example(entry, data):
    """Random inputs for ``entry``: sizes, dtype, the logits' scale, a transposed layout, reductions."""
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    n, c, p = (
        data.draw(st.integers(1, 9)),
        data.draw(st.integers(1 if not entry.loss else 2, 12)),
        data.draw(st.integers(1, 9)),
    )
    seed = data.draw(st.integers(0, 2**31 - 1))
    inputs = list(entry.make(torch.Generator().manual_seed(seed), torch.float64, n, c, p))
    scale = data.draw(st.sampled_from(SCALES))
    if entry.name == "cross_entropy":  # probabilities from logits up to ±30 (−log a_y stays under the clamp)
        inputs[0] = torch.softmax(torch.log(inputs[0]) * min(scale, 10.0), -1).clamp_min(1e-13)
    elif entry.name == "binary_cross_entropy":  # anywhere in [0, 1], exactly 0 and 1 included
        inputs[0] = torch.sigmoid(torch.special.logit(inputs[0]) * scale)
    elif entry.name == "linear":
        inputs[0] = inputs[0] * min(scale, 10.0)
    else:
        inputs[0] = inputs[0] * scale
    if data.draw(st.booleans()) and inputs[0].dim() == 2:  # non-contiguous: a transposed view of the same values
        inputs[0] = inputs[0].t().contiguous().t()
    if entry.name in ("binary_cross_entropy", "sigmoid_binary_cross_entropy") and seed % 2:
        inputs[1] = inputs[1].round()  # hard 0/1 targets half of the time
    inputs = [t.to(dtype) if t.is_floating_point() else t for t in inputs]
    kw = {"reduction": data.draw(st.sampled_from(F.REDUCTIONS))} if entry.loss else {}
    return inputs, dtype, kw, seed


def _assert_close_or_closer(x, y, truth, dtype) -> None:
    """nnref's ``x`` equals PyTorch's ``y`` within the tolerance — or, where they differ, nnref's is at least as close
    as PyTorch's to the value computed in float64 (``truth``), element by element: a float32 result that PyTorch
    rounds to 0 while nnref keeps e^(−37) ≈ 8.8e-17 is not a defect of nnref's."""
    tol = _tol(dtype, float(y.abs().max()))
    if torch.allclose(x, y, **tol):
        return
    truth = truth.to(dtype=torch.float64)
    slack = tol["atol"] + tol["rtol"] * truth.abs()
    closer = (x.double() - truth).abs() <= (y.double() - truth).abs() + slack
    if not closer.all():
        torch.testing.assert_close(x, y, **tol)  # (fails, with PyTorch's message)


def _grads(call, inputs, wants, kw, v):
    xs = [t.detach().clone().requires_grad_(w) for t, w in zip(inputs, wants)]
    out = call(*xs, **kw)
    return out, torch.autograd.grad((out * v.to(out.dtype)).sum(), [t for t in xs if t.requires_grad])


@pytest.mark.parametrize("entry", FORMULAS, ids=lambda e: e.name)
@SETTINGS
@given(data=st.data())
def test_function_equals_its_builtin_twin(entry, data):
    inputs, dtype, kw, seed = _example(entry, data)
    wants = entry.compared_grads()
    exact = [t.double() if t.is_floating_point() else t for t in inputs]
    out_e = entry.plain(*exact, **kw)
    v = torch.randn(out_e.shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    out_a, ga = _grads(entry.plain, inputs, wants, kw, v)
    out_b, gb = _grads(entry.builtin, inputs, wants, kw, v)
    out_e, ge = _grads(entry.plain, exact, wants, kw, v)
    _assert_close_or_closer(out_a.detach(), out_b.detach(), out_e.detach(), dtype)
    for x, y, truth in zip(ga, gb, ge):
        assert torch.isfinite(x).all()
        _assert_close_or_closer(x, y, truth, dtype)


@SETTINGS
@given(data=st.data())
def test_binary_cross_entropy_target_gradient(data):
    """dL/dy of the probability BCE is the derivative of the clamped loss, clamp(log(1 − a)) − clamp(log a):
    finite where PyTorch's target gradient is ±inf (a exactly 0 or 1)."""
    entry = next(e for e in FORMULAS if e.name == "binary_cross_entropy")
    (a, t), dtype, _, _ = _example(entry, data)
    ts = t.clone().requires_grad_()
    (g,) = torch.autograd.grad(F.binary_cross_entropy(a, ts, "sum"), ts)
    expected = torch.log1p(-a).clamp(min=-100) - torch.log(a).clamp(min=-100)
    torch.testing.assert_close(g, expected, **_tol(dtype, float(expected.abs().max())))
