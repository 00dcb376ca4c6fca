"""Property tests: random shapes, dtypes, scales and layouts for every Function of the catalogue, forward and
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
from nnref.catalogue import FUNCTIONS

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


@pytest.mark.parametrize("entry", FUNCTIONS, ids=lambda e: e.name)
@SETTINGS
@given(data=st.data())
def test_function_equals_its_builtin_twin(entry, data):
    inputs, dtype, kw, seed = _example(entry, data)
    wants = entry.compared_grads()
    a = [t.detach().clone().requires_grad_(w) for t, w in zip(inputs, wants)]
    b = [t.detach().clone().requires_grad_(w) for t, w in zip(inputs, wants)]
    out_a, out_b = entry.nnref(*a, **kw), entry.builtin(*b, **kw)
    torch.testing.assert_close(out_a, out_b, **_tol(dtype, float(out_b.detach().abs().max())))
    v = torch.randn(out_a.shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    ga = torch.autograd.grad((out_a * v).sum(), [t for t in a if t.requires_grad])
    gb = torch.autograd.grad((out_b * v).sum(), [t for t in b if t.requires_grad])
    for x, y in zip(ga, gb):
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x, y, **_tol(dtype, float(y.abs().max())))


@SETTINGS
@given(data=st.data())
def test_binary_cross_entropy_target_gradient(data):
    """dL/dy of the probability BCE is the derivative of the clamped loss, clamp(log(1 − a)) − clamp(log a):
    finite where PyTorch's target gradient is ±inf (a exactly 0 or 1)."""
    entry = next(e for e in FUNCTIONS if e.name == "binary_cross_entropy")
    (a, t), dtype, _, _ = _example(entry, data)
    ts = t.clone().requires_grad_()
    (g,) = torch.autograd.grad(F.binary_cross_entropy(a, ts, "sum"), ts)
    expected = torch.log1p(-a).clamp(min=-100) - torch.log(a).clamp(min=-100)
    torch.testing.assert_close(g, expected, **_tol(dtype, float(expected.abs().max())))
