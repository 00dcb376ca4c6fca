"""nnref.functional: gradcheck, gradgradcheck, equality with PyTorch's built-ins, stability, torch.func."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as TF
from bad_inputs import FUNCTION_CASES
from torch.autograd import gradcheck, gradgradcheck
from torch.func import grad, vmap

import nnref.functional as F
from nnref.formulas import FORMULAS

D = torch.float64
SHAPES = [(1, 1, 2), (1, 3, 10), (5, 1, 2), (4, 3, 10), (7, 5, 2)]  # (n, p, c): batch 1 and >1, p = 1, c = 2 and 10


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _check(fn, inputs):
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    assert gradgradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def _grad_subsets(n):
    """Every non-empty combination of which of n inputs require grad."""
    return [mask for mask in itertools.product([True, False], repeat=n) if any(mask)]


# --------------------------------------------------------------------------------------------------
# gradcheck / gradgradcheck
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,p,c", SHAPES)
@pytest.mark.parametrize("mask", _grad_subsets(3))
def test_linear_gradcheck(n, p, c, mask):
    g = _gen()
    x, W, b = (
        torch.randn(n, p, generator=g, dtype=D),
        torch.randn(c, p, generator=g, dtype=D),
        torch.randn(c, generator=g, dtype=D),
    )
    inputs = tuple(t.requires_grad_(m) for t, m in zip((x, W, b), mask))
    _check(F.linear, inputs)


def test_linear_without_bias_and_non_contiguous():
    g = _gen(1)
    x = torch.randn(3, 4, generator=g, dtype=D).t().requires_grad_()  # (4, 3), a transposed view
    W = torch.randn(3, 2, generator=g, dtype=D).t().requires_grad_()  # (2, 3), a transposed view
    assert not x.is_contiguous() and not W.is_contiguous()
    _check(lambda x, W: F.linear(x, W, None), (x, W))
    _check(F.linear, (x, W, torch.randn(2, generator=g, dtype=D, requires_grad=True)))


UNARY = {"sigmoid": F.sigmoid, "softmax": F.softmax, "relu": F.relu, "tanh": F.tanh}


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("n,c", [(1, 2), (1, 10), (6, 2), (6, 10)])
def test_activation_gradcheck(name, n, c):
    z = torch.randn(n, c, generator=_gen(2), dtype=D)
    if name == "relu":
        z = z + 0.1 * torch.sign(z)  # away from the kink at 0
    _check(UNARY[name], (z.requires_grad_(),))


@pytest.mark.parametrize("name", UNARY)
def test_activation_gradcheck_non_contiguous(name):
    z = torch.randn(10, 6, generator=_gen(3), dtype=D)
    z = (z + 0.1 * torch.sign(z)).t()
    assert not z.is_contiguous()
    _check(UNARY[name], (z.requires_grad_(),))


@pytest.mark.parametrize("reduction", F.REDUCTIONS)
@pytest.mark.parametrize("n,c", [(1, 2), (1, 10), (5, 2), (5, 10)])
def test_class_losses_gradcheck(reduction, n, c):
    g = _gen(4)
    z = torch.randn(n, c, generator=g, dtype=D)
    y = torch.randint(0, c, (n,), generator=g)
    probs = torch.softmax(z, -1)
    _check(lambda z: F.softmax_cross_entropy(z, y, reduction), (z.clone().requires_grad_(),))
    _check(lambda p: F.cross_entropy(p, y, reduction), (probs.requires_grad_(),))
    _check(lambda z: F.softmax_cross_entropy(z.t(), y, reduction), (z.t().contiguous().requires_grad_(),))


@pytest.mark.parametrize("reduction", F.REDUCTIONS)
@pytest.mark.parametrize("shape", [(1,), (6,), (4, 1), (3, 5)])
@pytest.mark.parametrize("mask", _grad_subsets(2))
def test_binary_losses_gradcheck(reduction, shape, mask):
    g = _gen(5)
    a = torch.rand(*shape, generator=g, dtype=D) * 0.8 + 0.1
    z = torch.randn(*shape, generator=g, dtype=D)
    y = torch.rand(*shape, generator=g, dtype=D)
    _check(
        lambda a, y: F.binary_cross_entropy(a, y, reduction),
        (a.requires_grad_(mask[0]), y.clone().requires_grad_(mask[1])),
    )
    _check(
        lambda z, y: F.sigmoid_binary_cross_entropy(z, y, reduction),
        (z.requires_grad_(mask[0]), y.requires_grad_(mask[1])),
    )


def test_needs_input_grad_is_respected():
    """Backward does no work (returns None) for inputs that need no gradient."""
    x = torch.randn(4, 3, dtype=D)
    W = torch.randn(2, 3, dtype=D, requires_grad=True)
    b = torch.randn(2, dtype=D)
    F.linear(x, W, b).sum().backward()
    assert W.grad is not None and x.grad is None and b.grad is None
    ctx_seen = {}

    class Spy(F.LinearFunction):
        @staticmethod
        def backward(ctx, g):
            out = F.LinearFunction.backward(ctx, g)
            ctx_seen["out"] = out
            return out

    Spy.apply(x, W, b).sum().backward()
    grad_x, grad_w, grad_b = ctx_seen["out"]
    assert grad_x is None and grad_b is None and grad_w is not None


def _loss_cases():
    g = _gen(11)
    z, y = torch.randn(4, 3, generator=g, dtype=D), torch.randint(0, 3, (4,), generator=g)
    a, t = torch.rand(4, generator=g, dtype=D) * 0.8 + 0.1, torch.rand(4, generator=g, dtype=D)
    return [
        (F.CrossEntropyFunction, torch.softmax(z, -1), y),
        (F.SoftmaxCrossEntropyFunction, z, y),
        (F.BinaryCrossEntropyFunction, a, t),
        (F.SigmoidBinaryCrossEntropyFunction, z[:, 0], t),
    ]


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("reduction", F.REDUCTIONS)
def test_every_loss_respects_needs_input_grad(case, reduction):
    """A loss's backward returns None — and computes nothing — for each input that needs no gradient."""
    fn, prediction, target = _loss_cases()[case]
    seen = {}

    class Spy(fn):
        @staticmethod
        def backward(ctx, g):
            seen["needs"], seen["out"] = tuple(ctx.needs_input_grad), fn.backward(ctx, g)
            return seen["out"]

    masks = [(True, False), (True, True), (False, True)] if target.is_floating_point() else [(True, False)]
    for mask in masks:
        inputs = [prediction.clone().requires_grad_(mask[0]), target.clone().requires_grad_(mask[1])]
        out = Spy.apply(*inputs, reduction)
        grads = torch.autograd.grad(out.sum(), [t for t in inputs if t.requires_grad])
        assert seen["needs"][:2] == mask
        for needed, returned in zip(mask, seen["out"][:2]):
            assert (returned is not None) == needed, (fn.__name__, mask)
        assert seen["out"][2] is None  # the reduction is not a tensor
        assert all(torch.isfinite(gr).all() for gr in grads)


def test_only_save_for_backward_holds_tensors():
    """No tensor is stored as a ctx attribute: saved tensors go through save_for_backward."""
    z = torch.randn(3, 4, requires_grad=True)
    y = torch.randint(0, 4, (3,))
    outs = [
        F.linear(z, torch.randn(2, 4, requires_grad=True)),
        F.sigmoid(z),
        F.softmax(z),
        F.relu(z),
        F.tanh(z),
        F.softmax_cross_entropy(z, y),
        F.cross_entropy(F.softmax(z), y),
        F.binary_cross_entropy(torch.sigmoid(z), torch.rand(3, 4)),
        F.sigmoid_binary_cross_entropy(z, torch.rand(3, 4)),
    ]
    for out in outs:
        node = out.grad_fn
        tensors = [k for k, v in vars(node).items() if isinstance(v, torch.Tensor)] if hasattr(node, "__dict__") else []
        assert tensors == [], f"{type(node).__name__} keeps tensors {tensors} as ctx attributes"


# --------------------------------------------------------------------------------------------------
# Equal to PyTorch's built-ins, forward and backward, float32 and float64
# --------------------------------------------------------------------------------------------------
def _compare(entry, inputs, dtype, **kw):
    """nnref and the built-in on the same inputs: the values, and the gradients of Σ v ⊙ output (random v) with
    respect to every input whose built-in gradient is defined."""
    tol = entry.tolerance(dtype)
    wants = entry.compared_grads()
    a = [t.detach().clone().requires_grad_(w) for t, w in zip(inputs, wants)]
    b = [t.detach().clone().requires_grad_(w) for t, w in zip(inputs, wants)]
    out_a, out_b = entry.plain(*a, **kw), entry.builtin(*b, **kw)
    torch.testing.assert_close(out_a, out_b, **tol)
    w = torch.randn(out_a.shape, dtype=dtype, generator=_gen(9))
    ga = torch.autograd.grad((out_a * w).sum(), [t for t in a if t.requires_grad])
    gb = torch.autograd.grad((out_b * w).sum(), [t for t in b if t.requires_grad])
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("entry", FORMULAS, ids=lambda e: e.name)
def test_equal_to_builtins(entry, dtype):
    inputs = list(entry.inputs(n=8, c=10, p=5, dtype=dtype, seed=6))
    if entry.name in ("softmax_cross_entropy", "sigmoid_binary_cross_entropy", "sigmoid", "softmax", "tanh"):
        inputs[0] = inputs[0] * 3  # logits that span the curve
    for kw in [{"reduction": r} for r in F.REDUCTIONS] if entry.loss else [{}]:
        _compare(entry, inputs, dtype, **kw)


def test_linear_without_bias_equals_the_builtin():
    g = _gen(6)
    x, W = torch.randn(8, 5, generator=g, dtype=D), torch.randn(3, 5, generator=g, dtype=D)
    torch.testing.assert_close(F.linear(x, W), TF.linear(x, W), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Numerical stability
# --------------------------------------------------------------------------------------------------
def _finite_value_and_grad(fn, *inputs):
    inputs = [t.clone().requires_grad_() for t in inputs]
    out = fn(*inputs)
    grads = torch.autograd.grad(out.sum(), inputs)
    assert torch.isfinite(out).all(), out
    for g in grads:
        assert torch.isfinite(g).all(), g
    return out, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_losses_stable_at_extreme_logits(dtype):
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    y = torch.tensor([1, 0])
    out, (g,) = _finite_value_and_grad(lambda z: F.softmax_cross_entropy(z, y, "none"), z)
    torch.testing.assert_close(out, TF.cross_entropy(z, y, reduction="none"))
    torch.testing.assert_close(out, torch.tensor([2e4, 2e4 + math.log(2)], dtype=dtype))
    # dL/dz = softmax(z) − onehot(y): row 1 puts all its mass on class 0, row 2 splits it between 1 and 2
    torch.testing.assert_close(g, torch.tensor([[1.0, -1.0, 0.0], [-1.0, 0.5, 0.5]], dtype=dtype))
    zb = torch.tensor([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    t = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    out, (g,) = _finite_value_and_grad(lambda z: F.sigmoid_binary_cross_entropy(z, t, "none"), zb)
    torch.testing.assert_close(out, torch.tensor([1e4, 1e4, 0, 0], dtype=dtype))
    torch.testing.assert_close(g, torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_finite_at_1000(dtype):
    z = torch.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    a, (g,) = _finite_value_and_grad(F.sigmoid, z)
    torch.testing.assert_close(a, torch.sigmoid(z))
    assert a[0] == 0 and a[-1] == 1 and a[2] == 0.5
    zs = z.clone().requires_grad_()
    torch.sigmoid(zs).sum().backward()
    torch.testing.assert_close(g, zs.grad, rtol=1e-6, atol=0)  # a(1 − a): 0.25 at 0, e^−50 at ±50, 0 at ±1000
    assert g[2] == 0.25 and g[0] == 0 and g[-1] == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_probability_losses_finite_at_0_and_1(dtype):
    a = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    out, (ga, gt) = _finite_value_and_grad(lambda a, t: F.binary_cross_entropy(a, t, "none"), a, t)
    torch.testing.assert_close(out, TF.binary_cross_entropy(a, t, reduction="none"))
    torch.testing.assert_close(out, torch.tensor([100.0, 100.0, 0.0, 0.0], dtype=dtype))
    # dL/da = (a − y)/max(a(1 − a), 1e-12), PyTorch's own floor; dL/dy = clamp(log(1 − a)) − clamp(log a)
    assert ga.tolist() == pytest.approx([-1e12, 1e12, 0.0, 0.0], rel=1e-6)
    a_ref = a.clone().requires_grad_()
    TF.binary_cross_entropy(a_ref, t, reduction="sum").backward()
    torch.testing.assert_close(ga, a_ref.grad)
    assert gt.tolist() == [100.0, -100.0, 100.0, -100.0]
    p = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    y = torch.tensor([0, 0])
    out, (gp,) = _finite_value_and_grad(lambda p: F.cross_entropy(p, y, "none"), p)
    torch.testing.assert_close(out, torch.tensor([100.0, 0.0], dtype=dtype))
    tiny = torch.finfo(dtype).tiny  # −1/a_y, with a_y = 0 floored at the dtype's smallest normal number
    assert gp.tolist() == [[-1 / tiny, 0.0], [-1.0, 0.0]]


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4), (2, 3, 40)])
def test_softmax_is_taken_along_the_last_dimension_of_any_rank(shape):
    """softmax's documented shape is (*, c): one vector of classes, or a batch of batches, normalised over the last
    dimension — values and gradients as torch.softmax(z, -1) (a softmax over another dimension fails here).  A few
    classes and many take its two ways on a CPU: written out, and the fused kernel."""
    g = _gen()
    z = torch.randn(*shape, generator=g, dtype=D, requires_grad=True)
    ours, ref = F.softmax(z), torch.softmax(z, -1)
    torch.testing.assert_close(ours, ref)
    w = torch.randn(*shape, generator=g, dtype=D)
    (g_ours,), (g_ref,) = torch.autograd.grad((ours * w).sum(), z), torch.autograd.grad((ref * w).sum(), z)
    torch.testing.assert_close(g_ours, g_ref)


def test_softmax_rows_sum_to_one_at_extremes():
    z = torch.tensor([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    a = F.softmax(z)
    torch.testing.assert_close(a.sum(-1), torch.ones(2))
    torch.testing.assert_close(a, torch.tensor([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))  # values, not finiteness


# --------------------------------------------------------------------------------------------------
# torch.func: per-sample gradients of the lecture's per-instance loss
# --------------------------------------------------------------------------------------------------
def _per_sample_check(ours, builtin, params, X, Y):
    """Per-sample gradients of nnref's loss through ``vmap(grad(...))`` equal those of the same loss made of
    PyTorch's built-ins — computed one instance at a time with ordinary autograd, so a wrong hand-written
    backward (or a wrong vmap rule) cannot agree with it."""
    per_sample = vmap(grad(ours), in_dims=(None, 0, 0))(params, X, Y)
    for i in range(X.shape[0]):
        ps = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
        builtin(ps, X[i], Y[i]).backward()
        for name in params:
            torch.testing.assert_close(per_sample[name][i], ps[name].grad, rtol=1e-10, atol=1e-12)


def test_vmap_grad_softmax_regression_per_sample():
    g = _gen(7)
    params = {"W": torch.randn(4, 3, generator=g, dtype=D), "b": torch.randn(4, generator=g, dtype=D)}
    X, Y = torch.randn(6, 3, generator=g, dtype=D), torch.randint(0, 4, (6,), generator=g)

    def fused(p, x, y):
        return F.softmax_cross_entropy(F.linear(x.unsqueeze(0), p["W"], p["b"]), y.unsqueeze(0))

    def unfused(p, x, y):
        return F.cross_entropy(F.softmax(F.linear(x.unsqueeze(0), p["W"], p["b"])), y.unsqueeze(0))

    def builtin(p, x, y):
        return TF.cross_entropy(TF.linear(x.unsqueeze(0), p["W"], p["b"]), y.unsqueeze(0))

    _per_sample_check(fused, builtin, params, X, Y)
    _per_sample_check(unfused, builtin, params, X, Y)


def test_vmap_grad_mlp_and_logistic_per_sample():
    g = _gen(8)
    params = {
        "W1": torch.randn(5, 3, generator=g, dtype=D),
        "b1": torch.randn(5, generator=g, dtype=D),
        "W2": torch.randn(1, 5, generator=g, dtype=D),
        "b2": torch.randn(1, generator=g, dtype=D),
    }
    X, Y = torch.randn(5, 3, generator=g, dtype=D), torch.randint(0, 2, (5,), generator=g).to(D)

    def network(act, lin, x, p):
        h = act["tanh"](lin(x.unsqueeze(0), p["W1"], p["b1"]))
        h = act["relu"](h) + act["sigmoid"](h)
        return lin(h, p["W2"], p["b2"]).squeeze(-1)

    def ours(p, x, y):
        z = network({"tanh": F.tanh, "relu": F.relu, "sigmoid": F.sigmoid}, F.linear, x, p)
        return F.sigmoid_binary_cross_entropy(z, y.unsqueeze(0)) + F.binary_cross_entropy(F.sigmoid(z), y.unsqueeze(0))

    def builtin(p, x, y):
        z = network({"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}, TF.linear, x, p)
        return TF.binary_cross_entropy_with_logits(z, y.unsqueeze(0)) + TF.binary_cross_entropy(
            torch.sigmoid(z), y.unsqueeze(0)
        )

    _per_sample_check(ours, builtin, params, X, Y)


# --------------------------------------------------------------------------------------------------
# Bad input: a clear error naming the argument, before any computation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,call,exc,pattern", FUNCTION_CASES, ids=[b[0] for b in FUNCTION_CASES])
def test_bad_input_raises_clear_error(name, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_value_checks_can_be_switched_off_for_hot_loops():
    """Off, the checks that read the data do not run (an out-of-range probability goes through unread); the
    shape checks still do; after the block they are on again."""
    bad_probs, target = torch.tensor([1.5, 0.5]), torch.tensor([1.0, 0.0])
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\], found 1.5"):
        F.binary_cross_entropy(bad_probs, target)
    with F.value_checks(False):
        assert torch.isfinite(F.binary_cross_entropy(bad_probs.clamp(max=0.9), target))
        F.binary_cross_entropy(bad_probs, target)  # not read: no error (log(1 − 1.5) is NaN, clamped or not)
        F.cross_entropy(torch.tensor([[0.2, 1.3]]), torch.tensor([0]))  # nor here
        with pytest.raises(ValueError, match="y has 1 entries"):
            F.softmax_cross_entropy(torch.randn(2, 3), torch.tensor([0]))
        with F.value_checks(True):  # nested: on again inside
            with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
                F.binary_cross_entropy(bad_probs, target)
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):  # back on after the block
        F.binary_cross_entropy(bad_probs, target)


def test_relu_derivative_at_the_kink_is_zero_eagerly():
    """da/dz = 1[z > 0]: 0 at z = 0 exactly, as PyTorch's ReLU has it (a mask z ≥ 0 would give 1)."""
    z = torch.tensor([-1.0, 0.0, 2.0, -0.0], requires_grad=True)
    F.relu(z).sum().backward()
    assert z.grad.tolist() == [0.0, 0.0, 1.0, 0.0]
    zeros = torch.zeros(2, 3, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(F.relu(zeros), zeros, torch.ones(2, 3, dtype=D))
    assert torch.equal(g, torch.zeros(2, 3, dtype=D))


# --------------------------------------------------------------------------------------------------
# torch.autocast: the built-ins' policy — Linear in the low-precision dtype, losses in float32
# --------------------------------------------------------------------------------------------------
AUTOCAST = [("cpu", torch.bfloat16)] + (
    [("cuda", torch.float16), ("cuda", torch.bfloat16)] if torch.cuda.is_available() else []
)


def _bce_outside_autocast(a, t, **kw):
    """CUDA autocast refuses the built-in probability BCE ("unsafe to autocast"): its twin runs in float32."""
    with torch.autocast(a.device.type, enabled=False):
        return TF.binary_cross_entropy(a.float(), t.float(), **kw)


def _autocast_inputs(entry, device, low):
    """What each Function receives in an autocast forward: float32 parameters and rows for Linear (which lowers
    them itself), the low-precision output of the layer before for everything after it."""
    inputs = list(entry.inputs(n=16, c=10, p=20, dtype=torch.float32, seed=12, device=device))
    if entry.name != "linear":
        inputs[0] = inputs[0].to(low)
    return [inputs] + ([[inputs[0].float()]] if entry.name == "softmax" else [])  # softmax also on float32 input


@pytest.mark.parametrize("device,low", AUTOCAST)
@pytest.mark.parametrize("entry", FORMULAS, ids=lambda e: e.name)
def test_every_function_under_autocast_matches_its_builtin_twin(entry, device, low):
    """Same output dtype, values and gradients (in the inputs' dtypes) within the low-precision tolerance: values
    to 2% of their size, gradients to 2% of the largest gradient (an absolute floor of 2e-2 would let a wrong
    formula pass: the loss gradients here are about 0.006)."""
    builtin = _bce_outside_autocast if entry.name == "binary_cross_entropy" and device == "cuda" else entry.builtin
    for inputs in _autocast_inputs(entry, device, low):
        wants = entry.compared_grads()
        a = [t.detach().clone().requires_grad_(w) for t, w in zip(inputs, wants)]
        b = [t.detach().clone().requires_grad_(w) for t, w in zip(inputs, wants)]
        with torch.autocast(device, dtype=low):
            out_a, out_b = entry.plain(*a), builtin(*b)
        assert out_a.dtype == out_b.dtype, (entry.name, out_a.dtype, out_b.dtype)
        scale = float(out_b.detach().float().abs().max())
        torch.testing.assert_close(out_a.float(), out_b.float(), rtol=2e-2, atol=2e-2 * scale, msg=entry.name)
        w = torch.rand(out_a.shape, generator=_gen(13)).to(device)
        ga = torch.autograd.grad((out_a.float() * w).sum(), [t for t in a if t.requires_grad])
        gb = torch.autograd.grad((out_b.float() * w).sum(), [t for t in b if t.requires_grad])
        for x, y, inp in zip(ga, gb, [t for t in a if t.requires_grad]):
            assert x.dtype == y.dtype == inp.dtype, entry.name
            torch.testing.assert_close(
                x.float(), y.float(), rtol=2e-2, atol=2e-2 * float(y.float().abs().max()), msg=entry.name
            )


@pytest.mark.parametrize("device,low", AUTOCAST)
def test_an_mlp_under_autocast_keeps_float32_parameters_and_gradients(device, low):
    from nnref.models import MLP

    torch.manual_seed(0)
    model = MLP(784, (64, 32), 10).to(device)
    x, y = torch.randn(32, 784, device=device), torch.randint(0, 10, (32,), device=device)
    with torch.autocast(device, dtype=low):
        logits = model(x)
        loss = model.loss(logits, y)
    assert logits.dtype == low and loss.dtype == torch.float32
    loss.backward()
    assert all(p.dtype == p.grad.dtype == torch.float32 for p in model.parameters())


# --------------------------------------------------------------------------------------------------
# torch.compile: zero graph breaks with the checks on, and nnref's own backward
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def dynamo_counters():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()


def test_compiled_gradients_are_the_hand_written_ones(dynamo_counters):
    """At a probability of exactly 0 or 1 the derivative of BCE's clamped forward is NaN (autograd: 0 · ∞),
    while nnref's backward (a − y)/max(a(1 − a), 1e-12) stays finite: the compiled gradient is nnref's."""
    t = torch.tensor([1.0, 0.0, 1.0])

    def forward_only(p, t):  # nnref's forward formula, left to autograd
        return (-(t * torch.log(p).clamp(min=-100) + (1 - t) * torch.log(1 - p).clamp(min=-100))).mean()

    p = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    torch.compile(forward_only, fullgraph=True)(p, t).backward()
    assert torch.isnan(p.grad[0]) and torch.isnan(p.grad[2])
    q = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    torch.compile(lambda p, t: F.binary_cross_entropy(p, t), fullgraph=True)(q, t).backward()
    eager = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    F.binary_cross_entropy(eager, t).backward()
    assert torch.isfinite(q.grad).all() and torch.equal(q.grad, eager.grad)
    assert q.grad[0] == pytest.approx(-1 / 3 / 1e-12, rel=1e-6)
    # and the ReLU's indicator 1[z > 0] at the kink
    z = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    torch.compile(lambda z: F.relu(z).sum(), fullgraph=True)(z).backward()
    assert z.grad.tolist() == [0.0, 0.0, 1.0]
    assert not dynamo_counters["graph_break"]


def test_compiled_value_checks_raise_without_a_graph_break(dynamo_counters):
    f = torch.compile(lambda p, t: F.binary_cross_entropy(p, t), fullgraph=True)
    t = torch.tensor([1.0, 0.0])
    assert torch.isfinite(f(torch.tensor([0.3, 0.6]), t))
    with pytest.raises(RuntimeError, match=r"probs must lie in \[0, 1\]"):
        f(torch.tensor([0.3, 1.6]), t)
    with pytest.raises(RuntimeError, match="index out of bounds|labels must lie"):  # a label outside [0, c) too
        torch.compile(lambda z, y: F.softmax_cross_entropy(z, y), fullgraph=True)(
            torch.randn(2, 3), torch.tensor([0, 7])
        )
    assert not dynamo_counters["graph_break"]
