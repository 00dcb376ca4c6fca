"""Property tests: random shapes, dtypes and values for every Function, forward and backward equal to
PyTorch's built-ins.  Cases include batch size 1, one class, non-contiguous inputs and extreme logits.

Nine Functions × ``EXAMPLES`` examples each (≥ 1,000 cases in all), derandomised so CI is repeatable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnref.functional as F

EXAMPLES = 120
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

dtypes = st.sampled_from([torch.float32, torch.float64])
sizes = st.integers(1, 9)
scales = st.sampled_from([1e-3, 1.0, 10.0, 100.0, 1e4])  # 1e4: the extreme logits


def _tensor(draw, shape, dtype, scale, non_contiguous):
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    if non_contiguous and len(shape) == 2:
        return (torch.randn(shape[1], shape[0], generator=g, dtype=torch.float64) * scale).to(dtype).t()
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)


@st.composite
def matrices(draw, scale=None, min_cols=1):
    dtype = draw(dtypes)
    n, c = draw(sizes), draw(st.integers(min_cols, 12))
    s = draw(scales) if scale is None else scale
    return _tensor(draw, (n, c), dtype, s, draw(st.booleans())), draw(st.integers(0, 2**31 - 1))


def _tol(dtype, magnitude=1.0):
    if dtype == torch.float32:
        return dict(rtol=2e-5, atol=2e-5 * max(1.0, magnitude))
    return dict(rtol=1e-7, atol=1e-10 * max(1.0, magnitude))


def _same(ours, ref, inputs, dtype, magnitude=1.0, weight_seed=0, differentiate=None):
    """Forward values and the gradients of Σ v ⊙ output (random v) with respect to every float input
    (or those ``differentiate`` marks)."""
    differentiate = differentiate or [t.is_floating_point() for t in inputs]
    a = [t.detach().clone().requires_grad_(d) for t, d in zip(inputs, differentiate)]
    b = [t.detach().clone().requires_grad_(d) for t, d in zip(inputs, differentiate)]
    out_a, out_b = ours(*a), ref(*b)
    torch.testing.assert_close(out_a, out_b, **_tol(dtype, magnitude))
    v = torch.randn(out_a.shape, generator=torch.Generator().manual_seed(weight_seed), dtype=dtype)
    ga = torch.autograd.grad((out_a * v).sum(), [t for t in a if t.requires_grad])
    gb = torch.autograd.grad((out_b * v).sum(), [t for t in b if t.requires_grad])
    for x, y in zip(ga, gb):
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x, y, **_tol(dtype, magnitude))


@SETTINGS
@given(st.data())
def test_linear_property(data):
    dtype = data.draw(dtypes)
    n, p, c = data.draw(sizes), data.draw(sizes), data.draw(sizes)
    x = _tensor(data.draw, (n, p), dtype, data.draw(st.sampled_from([0.1, 1.0, 10.0])), data.draw(st.booleans()))
    W = _tensor(data.draw, (c, p), dtype, 1.0, data.draw(st.booleans()))
    b = _tensor(data.draw, (c,), dtype, 1.0, False) if data.draw(st.booleans()) else None
    mag = float(x.abs().max()) * p * 4
    if b is None:
        _same(lambda x, W: F.linear(x, W), lambda x, W: TF.linear(x, W), (x, W), dtype, mag)
    else:
        _same(F.linear, TF.linear, (x, W, b), dtype, mag)


@SETTINGS
@given(matrices())
def test_sigmoid_property(zs):
    z, seed = zs
    _same(F.sigmoid, torch.sigmoid, (z,), z.dtype, weight_seed=seed)


@SETTINGS
@given(matrices())
def test_tanh_property(zs):
    z, seed = zs
    _same(F.tanh, torch.tanh, (z,), z.dtype, weight_seed=seed)


@SETTINGS
@given(matrices())
def test_relu_property(zs):
    z, seed = zs
    _same(F.relu, torch.relu, (z,), z.dtype, weight_seed=seed)


@SETTINGS
@given(matrices())
def test_softmax_property(zs):
    z, seed = zs
    _same(F.softmax, lambda z: torch.softmax(z, -1), (z,), z.dtype, weight_seed=seed)


@SETTINGS
@given(matrices(), st.sampled_from(F.REDUCTIONS), st.data())
def test_softmax_cross_entropy_property(zs, reduction, data):
    z, seed = zs
    y = torch.randint(0, z.shape[1], (z.shape[0],), generator=torch.Generator().manual_seed(seed))
    mag = float(z.abs().max())
    _same(lambda z: F.softmax_cross_entropy(z, y, reduction), lambda z: TF.cross_entropy(z, y, reduction=reduction),
          (z,), z.dtype, mag, seed)


@SETTINGS
@given(matrices(scale=None), st.sampled_from(F.REDUCTIONS))
def test_sigmoid_binary_cross_entropy_property(zs, reduction):
    z, seed = zs
    t = torch.rand(z.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    if seed % 2:
        t = t.round()  # hard 0/1 labels half of the time
    mag = float(z.abs().max())
    _same(lambda z, t: F.sigmoid_binary_cross_entropy(z, t, reduction),
          lambda z, t: TF.binary_cross_entropy_with_logits(z, t, reduction=reduction), (z, t), z.dtype, mag, seed)


@SETTINGS
@given(st.data(), st.sampled_from(F.REDUCTIONS))
def test_cross_entropy_on_probabilities_property(data, reduction):
    """Probabilities from a softmax of logits up to ±30, where −log a_y is below the −100 clamp."""
    z, seed = data.draw(matrices(scale=data.draw(st.sampled_from([0.1, 1.0, 10.0]))))
    probs = torch.softmax(z.clamp(-30, 30), -1)
    y = torch.randint(0, z.shape[1], (z.shape[0],), generator=torch.Generator().manual_seed(seed))
    _same(lambda p: F.cross_entropy(p, y, reduction), lambda p: TF.nll_loss(torch.log(p), y, reduction=reduction),
          (probs,), z.dtype, 1.0, seed)


@SETTINGS
@given(matrices(), st.sampled_from(F.REDUCTIONS))
def test_binary_cross_entropy_property(zs, reduction):
    """Probabilities anywhere in [0, 1], including exactly 0 and 1 from extreme logits.

    dL/da is compared with PyTorch's; dL/dy with the derivative of the clamped loss,
    clamp(log(1 − a)) − clamp(log a), which stays finite where PyTorch's target gradient is ±inf."""
    z, seed = zs
    a = torch.sigmoid(z)
    t = torch.rand(z.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    _same(lambda a, t: F.binary_cross_entropy(a, t, reduction),
          lambda a, t: TF.binary_cross_entropy(a, t, reduction=reduction), (a, t), z.dtype, 1.0, seed, [True, False])
    ts = t.clone().requires_grad_()
    (g,) = torch.autograd.grad(F.binary_cross_entropy(a, ts, "sum"), ts)
    expected = torch.log(1 - a).clamp(min=-100) - torch.log(a).clamp(min=-100)
    torch.testing.assert_close(g, expected, **_tol(z.dtype))
