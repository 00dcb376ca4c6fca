"""The lecture's layers as ``torch.autograd.Function`` s, each forward beside its hand-written backward.

Nine Functions, in the lecture's order: the neuron's weighted sum (:class:`LinearFunction`), the activations
(:class:`SigmoidFunction`, :class:`SoftmaxFunction`, :class:`ReLUFunction`, :class:`TanhFunction`), and the
negative log-likelihood on probabilities (:class:`CrossEntropyFunction`, :class:`BinaryCrossEntropyFunction`) or,
fused and stable, on logits (:class:`SoftmaxCrossEntropyFunction`, :class:`SigmoidBinaryCrossEntropyFunction`).
Each ``backward`` is the local gradient times the upstream gradient g — the chain rule — written by hand;
``torch.autograd.gradcheck`` and the lecture's numerical gradient prove every one (``nnref gradcheck``).  A forward
evaluates its formula with PyTorch's fused, numerically stable kernels (``addmm``, ``sigmoid``, ``log_softmax``),
so nnref trains as fast as the built-in layers; each backward is made of differentiable torch operations, so double
backward works too.

Use the plain functions at the bottom (:func:`linear`, :func:`sigmoid`, :func:`softmax`, :func:`relu`,
:func:`tanh`, :func:`cross_entropy`, :func:`binary_cross_entropy`, :func:`softmax_cross_entropy`,
:func:`sigmoid_binary_cross_entropy`): they check their inputs (:mod:`nnref._checks`) and raise a ``ValueError``
or ``TypeError`` naming the argument before any computation, then call ``Function.apply``.  The base every Function
stands on — a cheap ``apply`` and ``torch.autocast``'s policy — is :mod:`nnref._dispatch`.

Notation: ``n`` batch size, ``p`` input features, ``c`` classes / output units, ``g`` the upstream gradient
dL/d(output) that backward receives.
"""

from __future__ import annotations

import sys

import torch

from . import _checks as check
from ._checks import REDUCTIONS, value_checks
from ._dispatch import FLOAT32, FLOAT32_ON_CUDA, LOWER, Function, autocast_args

__all__ = [
    "LinearFunction",
    "SigmoidFunction",
    "SoftmaxFunction",
    "ReLUFunction",
    "TanhFunction",
    "CrossEntropyFunction",
    "BinaryCrossEntropyFunction",
    "SoftmaxCrossEntropyFunction",
    "SigmoidBinaryCrossEntropyFunction",
    "linear",
    "sigmoid",
    "softmax",
    "relu",
    "tanh",
    "cross_entropy",
    "binary_cross_entropy",
    "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "value_checks",
    "REDUCTIONS",
    "FUNCTIONS",
]


# --------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------
class LinearFunction(Function):
    """z = x Wᵀ + b; under autocast in the low-precision dtype, like ``torch.nn.functional.linear``.

    Shapes: x (n, p), W (c, p), b (c,) or None  →  z (n, c).
    """

    autocast = LOWER

    @staticmethod
    def forward(x, weight, bias):
        if bias is None:
            return x.matmul(weight.t())
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx, g):
        """dz/dx = W, dz/dW = x, dz/db = 1, so with g = dL/dz (n, c):

        dL/dx = g W (n, p),  dL/dW = gᵀ x (c, p),  dL/db = Σ_rows g (c,).
        """
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = g.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_w = g.t().mm(x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(dim=0)
        return grad_x, grad_w, grad_b


class _SavesOutput(Function):
    """An activation whose local gradient is a function of its output a: it saves a, not z."""

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)


class SigmoidFunction(_SavesOutput):
    """a = σ(z) = 1 / (1 + e^(−z)), element-wise, finite for any z.  Shapes: z (*) → a (*)."""

    @staticmethod
    def forward(z):
        return _sigmoid(z)

    @staticmethod
    def backward(ctx, g):
        """da/dz = a(1 − a), from the saved output a:  dL/dz = g · a(1 − a)."""
        (a,) = ctx.saved_tensors
        return g * a * (1 - a)


class SoftmaxFunction(_SavesOutput):
    """a_i = e^(z_i) / Σ_j e^(z_j) along the last dimension (max-subtracted; under autocast float32 on CUDA,
    like ``torch.softmax``).  Shapes: z (*, c) → a (*, c)."""

    autocast = FLOAT32_ON_CUDA

    @staticmethod
    def forward(z):
        return _softmax(z)

    @staticmethod
    def backward(ctx, g):
        """Jacobian da_i/dz_j = a_i(δ_ij − a_j), applied as a vector product without building the c×c matrix:

        dL/dz_j = Σ_i g_i a_i(δ_ij − a_j) = a_j (g_j − Σ_i g_i a_i),  that is  dL/dz = a ⊙ (g − Σ_i g_i a_i).
        """
        (a,) = ctx.saved_tensors
        return a * (g - (g * a).sum(dim=-1, keepdim=True))


class ReLUFunction(_SavesOutput):
    """a = max(z, 0), element-wise.  Shapes: z (*) → a (*)."""

    @staticmethod
    def forward(z):
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        """da/dz = 1[z > 0]:  dL/dz = g · 1[z > 0].

        With the saved output a = max(z, 0) ≥ 0, the indicator 1[z > 0] is exactly sign(a) ∈ {0, 1}
        (one fast kernel; comparing and casting a boolean mask costs five times more on CPU).
        """
        (a,) = ctx.saved_tensors
        indicator = a.sign()
        if torch.is_grad_enabled():  # this backward is itself being differentiated: no in-place product
            return g * indicator
        return indicator.mul_(g)  # in place on the fresh indicator: one pass over memory less


class TanhFunction(_SavesOutput):
    """a = tanh(z), element-wise.  Shapes: z (*) → a (*)."""

    @staticmethod
    def forward(z):
        return torch.tanh(z)

    @staticmethod
    def backward(ctx, g):
        """da/dz = 1 − a², from the saved output:  dL/dz = g · (1 − a²)."""
        (a,) = ctx.saved_tensors
        return g * ((1 - a) * (1 + a))  # 1 − a², without rounding a² first (accurate where a is near ±1)


# --------------------------------------------------------------------------------------------------
# Losses (the negative log-likelihood)
# --------------------------------------------------------------------------------------------------
class _LossFunction(Function):
    """A loss of (prediction, target, reduction): it saves both tensors and remembers the reduction.
    Losses run in float32 under autocast."""

    autocast = FLOAT32

    @staticmethod
    def setup_context(ctx, inputs, output):
        prediction, target, reduction = inputs
        ctx.save_for_backward(prediction, target)
        ctx.reduction = reduction


class CrossEntropyFunction(_LossFunction):
    """L = −log a_y on probabilities (the lecture's unfused multi-class loss).

    Shapes: probs (n, c) in [0, 1], labels (n,) int64 in [0, c)  →  () for "mean"/"sum", (n,) for "none".
    log a_y is clamped at −100 so a_y = 0 stays finite.
    """

    @staticmethod
    def forward(probs, labels, reduction):
        p_y = probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        return _reduce(-_clamped_log(p_y), reduction)

    @staticmethod
    def backward(ctx, g):
        """dL/da = (0, …, −1/a_y, …, 0): only the true class's probability receives gradient."""
        probs, labels = ctx.saved_tensors
        grad_a = None
        if ctx.needs_input_grad[0]:
            index = labels.unsqueeze(-1)
            p_y = probs.gather(-1, index).squeeze(-1)
            g_rows = _expand_grad(g, p_y, ctx.reduction)
            src = (-g_rows / p_y.clamp_min(torch.finfo(probs.dtype).tiny)).unsqueeze(-1)
            grad_a = torch.zeros_like(probs).scatter(-1, index, src)
        return grad_a, None, None


class BinaryCrossEntropyFunction(_LossFunction):
    """L = −y log a − (1 − y) log(1 − a), element-wise on probabilities a and targets y in [0, 1].

    Shapes: probs (*), targets (*) of the same shape  →  () for "mean"/"sum", (*) for "none".
    Logs are clamped at −100 like PyTorch's, so a = 0 or a = 1 stays finite.
    """

    @staticmethod
    def forward(probs, targets, reduction):
        loss = -(targets * _clamped_log(probs) + (1 - targets) * _clamped_log1m(probs))
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        """dL/da = −y/a + (1 − y)/(1 − a) = (a − y) / (a(1 − a)), the denominator floored at 1e-12;
        dL/dy = log(1 − a) − log a (clamped logs)."""
        probs, targets = ctx.saved_tensors
        g_el = _expand_grad(g, probs, ctx.reduction)
        grad_a = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_a = g_el * (probs - targets) / (probs * (1 - probs)).clamp_min(BCE_EPS)
        if ctx.needs_input_grad[1]:
            grad_y = g_el * (_clamped_log1m(probs) - _clamped_log(probs))
        return grad_a, grad_y, None


class SoftmaxCrossEntropyFunction(_LossFunction):
    """Softmax and cross-entropy fused, from logits: L = log Σ_j e^(z_j) − z_y (log-sum-exp, stable).

    Shapes: logits (n, c), labels (n,) int64 in [0, c)  →  () for "mean"/"sum", (n,) for "none".
    """

    @staticmethod
    def forward(logits, labels, reduction):
        log_p_y = _log_softmax(logits).gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # log a_y, one per row
        return -log_p_y if reduction == "none" else -_reduce(log_p_y, reduction)

    @staticmethod
    def backward(ctx, g):
        """dL/dz = softmax(z) − onehot(y), times g (divided by n for "mean")."""
        logits, labels = ctx.saved_tensors
        grad_z = None
        if ctx.needs_input_grad[0]:
            onehot = torch.zeros_like(logits).scatter_(-1, labels.unsqueeze(-1), 1.0)
            softmax = _log_softmax(logits).exp()  # e^(log-softmax), rounded as PyTorch's own cross-entropy
            grad_z = (softmax - onehot) * _row_grad(g, labels.shape[0], ctx.reduction)
        return grad_z, None, None


class SigmoidBinaryCrossEntropyFunction(_LossFunction):
    """Sigmoid and binary cross-entropy fused, from logits, stable for any z:

    L = max(z, 0) − z y + log(1 + e^(−|z|)).
    Shapes: logits (*), targets (*) of the same shape in [0, 1]  →  () or (*) for "none".
    """

    @staticmethod
    def forward(logits, targets, reduction):
        loss = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        """dL/dz = σ(z) − y;  dL/dy = −z (both times g, divided by N for "mean")."""
        logits, targets = ctx.saved_tensors
        g_el = _expand_grad(g, logits, ctx.reduction)
        grad_z = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_z = g_el * (_sigmoid(logits) - targets)
        if ctx.needs_input_grad[1]:
            grad_y = -g_el * logits
        return grad_z, grad_y, None


# --------------------------------------------------------------------------------------------------
# The arithmetic the Functions share.  Plain differentiable torch ops, so a backward that calls them can itself be
# differentiated (double backward).
# --------------------------------------------------------------------------------------------------
#: log() is clamped here, like ``torch.nn.functional.binary_cross_entropy``: a probability of exactly
#: 0 or 1 costs at most 100 nats instead of ``inf``.
LOG_CLAMP = -100.0
#: Denominator floor of the BCE gradient, the one PyTorch's ``binary_cross_entropy_backward`` uses: 1e-12 as a
#: float32 constant (9.99999996e-13), in every dtype — so at a = 0 or 1 the gradients agree to the last digit.
BCE_EPS = 9.999999960041972e-13


def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    """σ(z) = 1 / (1 + e^(−z)).  PyTorch's fused kernel evaluates it without overflow: for z < 0 it
    computes e^z / (1 + e^z), so only e^(−|z|) ∈ (0, 1] is ever formed."""
    return torch.sigmoid(z)


def _log_softmax(z: torch.Tensor) -> torch.Tensor:
    """log a_i = z_i − log Σ_j e^(z_j) (log-sum-exp); the fused kernel subtracts the row maximum first.

    For many rows of a few classes in float32/64 on a CPU the same steps are written out — s = z − max z, then
    s − log Σ e^s — where PyTorch's fused kernel runs its vector loop along the classes, several times slower for
    tens of thousands of rows of 4 classes (what the lab's class measures every frame, :mod:`nnref.lab.crowd`)."""
    if not _written_out(z) or z.numel() < _MANY:
        return torch.log_softmax(z, dim=-1)
    s = z - z.amax(-1, keepdim=True)
    return s - s.exp().sum(-1, keepdim=True).log()


_MANY = 4096  # (below this the fused kernel's one call is the cheaper)


def _softmax(z: torch.Tensor) -> torch.Tensor:
    """a_i = e^(z_i − max z) / Σ_j e^(z_j − max z): max-subtracted, so no e^(·) exceeds 1.

    One fused kernel, except for a few classes (MNIST's 10) in float32/64 on a CPU, where the four small kernels
    written out here take half its time (the fused kernel's vector loop runs along the classes)."""
    if not _written_out(z):
        return torch.softmax(z, dim=-1)
    e = (z - z.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


_FEW_CLASSES = 16


def _written_out(z: torch.Tensor) -> bool:
    """Whether the softmax's steps are written out rather than fused: a few classes, float32/64, on a CPU."""
    return z.shape[-1] <= _FEW_CLASSES and z.device.type == "cpu" and z.dtype in (torch.float32, torch.float64)


def _clamped_log(a: torch.Tensor) -> torch.Tensor:
    return torch.log(a).clamp(min=LOG_CLAMP)


def _clamped_log1m(a: torch.Tensor) -> torch.Tensor:
    """log(1 − a), clamped: ``log1p(−a)`` keeps its digits for a near 0 (in float32, 1 − 2.7e-8 rounds to 1 and
    log(1 − a) to 0, where log1p(−a) = −2.7e-8), as PyTorch's ``binary_cross_entropy`` computes it."""
    return torch.log1p(-a).clamp(min=LOG_CLAMP)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _row_grad(g: torch.Tensor, n: int, reduction: str) -> torch.Tensor:
    """dL/dL_i for each row i of a row-wise loss, shaped to multiply an (n, c) gradient: g/n for "mean", g for
    "sum" (a scalar, the same for every row), g as a column (n, 1) for "none"."""
    if reduction == "mean":
        return g / n
    if reduction == "sum":
        return g
    return g.unsqueeze(-1)


def _expand_grad(g: torch.Tensor, like: torch.Tensor, reduction: str) -> torch.Tensor:
    """dL/d(per-element loss) for each reduction: g/N for "mean", g for "sum", g itself for "none"."""
    if reduction == "mean":
        return (g / like.numel()).expand_as(like)
    if reduction == "sum":
        return g.expand_as(like)
    return g


# --------------------------------------------------------------------------------------------------
# The nine, by name
# --------------------------------------------------------------------------------------------------
#: nnref's nine Functions by name, in the lecture's order.
FUNCTIONS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        LinearFunction,
        SigmoidFunction,
        SoftmaxFunction,
        ReLUFunction,
        TanhFunction,
        CrossEntropyFunction,
        BinaryCrossEntropyFunction,
        SoftmaxCrossEntropyFunction,
        SigmoidBinaryCrossEntropyFunction,
    )
}


#: Each Function's ``torch.autocast`` policy, as its class declares it, read once here: ``torch.compile`` cannot read
#: a class attribute of an autograd Function, so the plain functions below look it up by name.
_AUTOCAST = {name: cls.autocast for name, cls in FUNCTIONS.items()}
_this_module = sys.modules[__name__]


def _apply(name: str, *args):
    """``apply`` of the Function this module names ``name`` now — nnref's, or a student's that
    :func:`nnref.exercises.use_functions` put in its place — with the autocast cast of nnref's policy done before
    ``apply``, in code that ``torch.compile`` traces: Dynamo handles ``Function.apply`` itself and does not run
    nnref's ``apply`` (which casts too), so without this a compiled Linear under autocast would save its float32
    weight beside a bfloat16 output (``expected m1 and m2 to have the same dtype``).  Eagerly the second cast is a
    no-op."""
    return getattr(_this_module, name).apply(*autocast_args(_AUTOCAST[name], args))


# --------------------------------------------------------------------------------------------------
# The plain functions: checked inputs, then the Function's apply
# --------------------------------------------------------------------------------------------------
def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """z = x Wᵀ + b.  x (n, p), W (c, p), b (c,) or None → z (n, c)."""
    check.matrix(x, "x", "(n, p)")
    check.matrix(W, "W", "(c, p)")
    if W.shape[1] != x.shape[1]:
        raise ValueError(
            f"W has shape {tuple(W.shape)} = (c, p) with p = {W.shape[1]}, but x has shape "
            f"{tuple(x.shape)} = (n, p) with p = {x.shape[1]}: the inner dimensions must agree"
        )
    if b is not None:
        check.floating(b, "b")
        if b.dim() != 1 or b.shape[0] != W.shape[0]:
            raise ValueError(f"b must have shape (c,) = ({W.shape[0]},), got shape {tuple(b.shape)}")
    if (x.dtype != W.dtype or (b is not None and b.dtype != W.dtype)) and not check.autocast_on(x):
        raise TypeError(
            f"x, W and b must share one dtype, got x {x.dtype}, W {W.dtype}"
            + (f", b {b.dtype}" if b is not None else "")
        )
    check.same_device(x=x, W=W, b=b)
    return _apply("LinearFunction", x, W, b)


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    """a = 1/(1 + e^(−z)) element-wise; z (*) → a (*)."""
    check.floating(z, "z")
    return _apply("SigmoidFunction", z)


def softmax(z: torch.Tensor) -> torch.Tensor:
    """Softmax along the last dimension; z (*, c) → a (*, c)."""
    check.floating(z, "z")
    if z.dim() < 1:
        raise ValueError("z must have at least one dimension (the classes), got a 0-D tensor")
    return _apply("SoftmaxFunction", z)


def relu(z: torch.Tensor) -> torch.Tensor:
    """a = max(z, 0) element-wise; z (*) → a (*)."""
    check.floating(z, "z")
    return _apply("ReLUFunction", z)


def tanh(z: torch.Tensor) -> torch.Tensor:
    """a = tanh(z) element-wise; z (*) → a (*)."""
    check.floating(z, "z")
    return _apply("TanhFunction", z)


def cross_entropy(probs: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """−log a_y.  probs (n, c) in [0, 1], y (n,) integer in [0, c)."""
    check.reduction(reduction)
    check.matrix(probs, "probs", "(n, c)")
    y = check.class_labels(y, probs.shape[0], probs.shape[1], "y")
    check.same_device(probs=probs, y=y)
    check.unit_interval(probs, "probs")
    return check.labels_reported(lambda: _apply("CrossEntropyFunction", probs, y, reduction), y, probs, "y")


def binary_cross_entropy(probs: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """−y log a − (1−y) log(1−a).  probs (*) in [0, 1], y (*) in [0, 1] (same shape)."""
    check.reduction(reduction)
    check.floating(probs, "probs")
    y = check.binary_targets(probs, y, "probs")
    check.unit_interval(probs, "probs")
    return _apply("BinaryCrossEntropyFunction", probs, y, reduction)


def softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Fused softmax + cross-entropy.  logits (n, c), y (n,) integer in [0, c)."""
    check.reduction(reduction)
    check.matrix(logits, "logits", "(n, c)")
    y = check.class_labels(y, logits.shape[0], logits.shape[1], "y")
    check.same_device(logits=logits, y=y)
    return check.labels_reported(lambda: _apply("SoftmaxCrossEntropyFunction", logits, y, reduction), y, logits, "y")


def sigmoid_binary_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Fused sigmoid + binary cross-entropy.  logits (*), y (*) in [0, 1] (same shape)."""
    check.reduction(reduction)
    check.floating(logits, "logits")
    y = check.binary_targets(logits, y, "logits")
    return _apply("SigmoidBinaryCrossEntropyFunction", logits, y, reduction)
