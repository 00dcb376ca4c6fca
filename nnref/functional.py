"""The lecture's layers as ``torch.autograd.Function`` s with hand-written backward passes.

Every Function follows PyTorch's "Extending PyTorch" form: ``forward`` without ``ctx``, a
``setup_context`` that saves tensors with ``save_for_backward``, and a ``backward`` written from the
lecture's local gradient by the chain rule.  Forward passes evaluate the lecture's formula with
PyTorch's fused, numerically stable kernels (``addmm``, ``sigmoid``, ``log_softmax`` …) — the same
arithmetic the built-in layers do — so nnref trains as fast as they do; what nnref writes by hand, and
what gradcheck proves, is every derivative.  Each backward is made of differentiable torch operations,
so double backward (``gradgradcheck``) works, and ``generate_vmap_rule = True`` makes the Functions
work under ``torch.func.grad`` and ``torch.func.vmap``.

Use the plain functions at the bottom (``linear``, ``sigmoid``, ``softmax``, ``relu``, ``tanh``,
``cross_entropy``, ``binary_cross_entropy``, ``softmax_cross_entropy``,
``sigmoid_binary_cross_entropy``): they check their inputs and raise a ``ValueError`` or ``TypeError``
naming the argument *before* any computation, then call ``Function.apply``.

Notation: ``n`` batch size, ``p`` input features, ``c`` classes / output units, ``g`` the upstream
gradient dL/d(output) that backward receives.
"""

from __future__ import annotations

import contextlib
import inspect
import threading

import torch

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
]

REDUCTIONS = ("mean", "sum", "none")

#: log() is clamped here, like ``torch.nn.functional.binary_cross_entropy``: a probability of exactly
#: 0 or 1 costs at most 100 nats instead of ``inf``.
LOG_CLAMP = -100.0
#: Denominator floor of the BCE gradient, the one PyTorch's ``binary_cross_entropy_backward`` uses: 1e-12 as a
#: float32 constant (9.99999996e-13), in every dtype — so at a = 0 or 1 the gradients agree to the last digit.
BCE_EPS = 9.999999960041972e-13


# --------------------------------------------------------------------------------------------------
# Pure-tensor helpers shared by forward and backward.  They are plain differentiable torch ops, so a
# backward that calls them can itself be differentiated (double backward).
# --------------------------------------------------------------------------------------------------
def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    """σ(z) = 1 / (1 + e^(−z)).  PyTorch's fused kernel evaluates it without overflow: for z < 0 it
    computes e^z / (1 + e^z), so only e^(−|z|) ∈ (0, 1] is ever formed."""
    return torch.sigmoid(z)


def _log_softmax(z: torch.Tensor) -> torch.Tensor:
    """log a_i = z_i − log Σ_j e^(z_j) (log-sum-exp); the fused kernel subtracts the row maximum first."""
    return torch.log_softmax(z, dim=-1)


def _softmax(z: torch.Tensor) -> torch.Tensor:
    """a_i = e^(z_i − max z) / Σ_j e^(z_j − max z), one fused kernel."""
    return torch.softmax(z, dim=-1)


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


def _expand_grad(g: torch.Tensor, like: torch.Tensor, reduction: str) -> torch.Tensor:
    """dL/d(per-element loss) for each reduction: g/N for "mean", g for "sum", g itself for "none"."""
    if reduction == "mean":
        return (g / like.numel()).expand_as(like)
    if reduction == "sum":
        return g.expand_as(like)
    return g


# --------------------------------------------------------------------------------------------------
# The base of every Function: autocast policy and the cost of apply()
# --------------------------------------------------------------------------------------------------
#: Autocast policies, as PyTorch's built-ins have them (per device type; other devices follow CUDA's).
LOWER = {"cpu": "lower", "cuda": "lower"}  # matrix products: the autocast dtype everywhere
FLOAT32 = {"cpu": "float32", "cuda": "float32"}  # losses: float32 everywhere
FLOAT32_ON_CUDA = {"cuda": "float32"}  # softmax: float32 on CUDA; CPU autocast leaves it in the input's dtype
NONE: dict = {}  # element-wise activations: the input's dtype


def _autocast_dtype(args, policy: dict) -> torch.dtype | None:
    """The dtype ``torch.autocast`` asks this call to run in, or None (autocast off, or no cast)."""
    if not policy:
        return None
    device_type = args[0].device.type  # every nnref Function takes a tensor first
    if not torch.is_autocast_enabled(device_type):
        return None
    rule = policy.get(device_type, policy.get("cuda") if device_type != "cpu" else None)
    if rule is None:
        return None
    return torch.get_autocast_dtype(device_type) if rule == "lower" else torch.float32


class _Bound:
    """What ``inspect.Signature.bind`` returns, for a call that gives every argument positionally."""

    __slots__ = ("args",)
    kwargs: dict = {}

    def __init__(self, args: tuple) -> None:
        self.args = args

    def apply_defaults(self) -> None:
        pass


class _PositionalSignature(inspect.Signature):
    """``forward``'s signature, with a ``bind`` that passes a complete positional call straight through.

    PyTorch binds the arguments of every ``apply`` of a ``setup_context``-style Function to ``forward``'s
    signature with ``inspect`` (``torch.autograd.function._bind_default_args``), which costs more than the
    rest of a small layer's forward and backward together.  Every nnref call gives all arguments
    positionally, so nothing needs binding; any other call takes the ordinary path.
    """

    __slots__ = ("_count",)

    def __init__(self, signature: inspect.Signature) -> None:
        super().__init__(list(signature.parameters.values()))
        self._count = len(self.parameters)

    def bind(self, *args, **kwargs):
        if not kwargs and len(args) == self._count:
            return _Bound(args)
        return super().bind(*args, **kwargs)


class _Function(torch.autograd.Function):
    """The base of every nnref Function.

    * ``generate_vmap_rule = True``: ``torch.func.vmap`` / ``grad`` work (every backward is torch ops).
    * ``autocast``: the Function's policy under ``torch.autocast``, the built-ins' one per device type —
      "lower" (the matrix product runs in the autocast dtype), "float32" (losses; softmax on CUDA), or no
      entry (the input's dtype: the element-wise activations).
      The cast happens in ``apply``, before the Function, as a recorded autograd op: gradients flow back to
      float32 parameters in float32.  (``torch.amp.custom_fwd`` does not work with ``setup_context``
      Functions, PyTorch issue #132388.)
    * ``forward`` gets a :class:`_PositionalSignature`, so ``apply`` costs what an old-style Function's does.
    """

    generate_vmap_rule = True
    autocast: dict = NONE

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get("forward")
        if isinstance(forward, staticmethod):
            forward.__func__.__signature__ = _PositionalSignature(inspect.signature(forward.__func__))

    @classmethod
    def apply(cls, *args):
        return super().apply(*_autocast_args(cls.autocast, args))


def _autocast_args(policy: dict, args: tuple) -> tuple:
    """The arguments cast to the dtype ``torch.autocast`` asks a Function of this ``policy`` to run in (as they
    are when autocast is off or the policy keeps the input's dtype)."""
    dtype = _autocast_dtype(args, policy)
    if dtype is None:
        return args
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() and
                 a.dtype != torch.float64 else a for a in args)


def _call(fn: type[_Function], policy: dict, *args):
    """``fn.apply(*args)`` with the autocast cast done *before* ``apply``, in code that ``torch.compile`` traces:
    Dynamo handles ``Function.apply`` itself and does not run the ``apply`` override above, so without this a
    compiled Linear under autocast would save its float32 weight beside a bfloat16 output and its backward
    would multiply the two (``expected m1 and m2 to have the same dtype``).  Eagerly the second cast is a no-op.
    ``policy`` is ``fn.autocast``, passed as the module constant it is (Dynamo cannot read a dict attribute of
    a Function class handed to it as an argument)."""
    return fn.apply(*_autocast_args(policy, args))


# --------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------
class LinearFunction(_Function):
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


class _SavesOutput(_Function):
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

        dL/dz_j = Σ_i g_i a_i(δ_ij − a_j) = a_j (g_j − Σ_i g_i a_i).
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
        return g * a.sign()


class TanhFunction(_SavesOutput):
    """a = tanh(z), element-wise.  Shapes: z (*) → a (*)."""

    @staticmethod
    def forward(z):
        return torch.tanh(z)

    @staticmethod
    def backward(ctx, g):
        """da/dz = 1 − a², from the saved output:  dL/dz = g · (1 − a²)."""
        (a,) = ctx.saved_tensors
        return g * (1 - a * a)


# --------------------------------------------------------------------------------------------------
# Losses (the negative log-likelihood)
# --------------------------------------------------------------------------------------------------
class _LossFunction(_Function):
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
            a = _softmax(logits)  # recomputed from the saved logits with a differentiable op (double backward)
            # dL/dL_i, the same for every row i (a scalar) unless reduction is "none"
            g_rows = g / labels.shape[0] if ctx.reduction == "mean" else g
            g_rows = g_rows.unsqueeze(-1) if ctx.reduction == "none" else g_rows
            grad_z = a * g_rows  # a fresh tensor: the −1 of onehot(y) is added in place
            grad_z.scatter_add_(-1, labels.unsqueeze(-1), -g_rows.expand(labels.shape[0], 1))
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
# Input checks
# --------------------------------------------------------------------------------------------------
_state = threading.local()


def _value_checks_on() -> bool:
    return getattr(_state, "value_checks", True)


@contextlib.contextmanager
def value_checks(enabled: bool):
    """Turn the *value* checks (label range, probability range) on or off inside a ``with`` block.

    Shape, rank and dtype checks always run: they cost nothing.  Value checks read the data (a
    reduction and a device→host copy per call), so a training loop that validated its whole dataset
    once may switch them off for its hot loop, e.g. on a GPU or under ``torch.compile``.
    """
    previous = _value_checks_on()
    _state.value_checks = enabled
    try:
        yield
    finally:
        _state.value_checks = previous


def _can_read_values(*tensors: torch.Tensor) -> bool:
    """Values can be read back eagerly: checks on, outside functorch transforms, not meta tensors."""
    if not _value_checks_on():
        return False
    is_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if is_wrapped is not None and any(is_wrapped(t) for t in tensors):
        return False
    return not any(t.device.type == "meta" for t in tensors)


def _check_values(ok, message: str, read) -> None:
    """A value check that works eagerly and inside ``torch.compile``.

    Compiled (Dynamo is tracing): ``ok()`` — a boolean tensor — becomes an assertion in the graph, which
    raises ``RuntimeError(message)`` when it fails; no graph break, no host sync.  Eager: ``read()`` runs
    the check and raises the precise ``ValueError`` naming the offending value.
    """
    if not _value_checks_on():
        return
    if torch.compiler.is_compiling():
        torch._assert_async(ok(), message)
    else:
        read()


def _autocast_on(t: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(t.device.type)


def _check_tensor(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


def _check_float(t: torch.Tensor, name: str) -> None:
    _check_tensor(t, name)
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def _check_reduction(reduction) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_same_device(**tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{k} on {v}" for k, v in devices.items())
        raise ValueError(f"all inputs must be on the same device, got {listing}")


def _check_class_labels(labels, n: int, c: int, name: str = "labels") -> torch.Tensor:
    _check_tensor(labels, name)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer class indices (dtype int64), got dtype {labels.dtype}; "
            "convert with labels.long() if the values are whole numbers"
        )
    if labels.dim() != 1:
        raise ValueError(f"{name} must have shape (n,), got shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} entries but the batch has n = {n} rows")

    if not _kernel_checks_labels(labels):
        _check_values(lambda: ((labels >= 0) & (labels < c)).all(),
                      f"{name} must lie in [0, {c}) for c = {c} classes", lambda: _read_labels(labels, c, name))
    return labels.long()


def _read_labels(labels: torch.Tensor, c: int, name: str) -> None:
    if _can_read_values(labels) and labels.numel() > 0:
        lo, hi = torch.stack(torch.aminmax(labels)).tolist()  # one reduction, one device→host copy
        if lo < 0 or hi >= c:
            raise ValueError(f"{name} must lie in [0, {c}) for c = {c} classes, found {lo if lo < 0 else hi}")


def _kernel_checks_labels(labels: torch.Tensor) -> bool:
    """On the CPU, eagerly, the class-index losses need no separate pass over the labels: their ``gather``
    refuses an index outside [0, c) by itself, and :func:`_apply_with_labels` turns that into our error."""
    return labels.device.type == "cpu" and not torch.compiler.is_compiling()


def _apply_with_labels(fn, prediction: torch.Tensor, labels: torch.Tensor, reduction: str, name: str):
    """``fn.apply(prediction, labels, reduction)``; an out-of-range label reported by the CPU kernel becomes
    the ValueError the other devices get from the check before the call."""
    try:
        return _call(fn, FLOAT32, prediction, labels, reduction)
    except (RuntimeError, IndexError):
        if _kernel_checks_labels(labels):
            _read_labels(labels, prediction.shape[-1], name)
        raise


def _check_unit_interval(t: torch.Tensor, name: str) -> None:
    def read():
        if _can_read_values(t) and t.numel() > 0:
            lo, hi = torch.stack(torch.aminmax(t.detach())).tolist()  # NaN propagates into lo/hi
            if not (lo >= 0 and hi <= 1):
                raise ValueError(f"{name} must lie in [0, 1], found {lo if not lo >= 0 else hi}")

    _check_values(lambda: ((t >= 0) & (t <= 1)).all(), f"{name} must lie in [0, 1]", read)


def _check_matrix(t, name: str, what: str) -> None:
    _check_float(t, name)
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape {what}, got shape {tuple(t.shape)} ({t.dim()}-D)")


# --------------------------------------------------------------------------------------------------
# The public plain-function API
# --------------------------------------------------------------------------------------------------
def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """z = x Wᵀ + b.  x (n, p), W (c, p), b (c,) or None → z (n, c)."""
    _check_matrix(x, "x", "(n, p)")
    _check_matrix(W, "W", "(c, p)")
    if W.shape[1] != x.shape[1]:
        raise ValueError(
            f"W has shape {tuple(W.shape)} = (c, p) with p = {W.shape[1]}, but x has shape "
            f"{tuple(x.shape)} = (n, p) with p = {x.shape[1]}: the inner dimensions must agree"
        )
    if b is not None:
        _check_float(b, "b")
        if b.dim() != 1 or b.shape[0] != W.shape[0]:
            raise ValueError(f"b must have shape (c,) = ({W.shape[0]},), got shape {tuple(b.shape)}")
    if (x.dtype != W.dtype or (b is not None and b.dtype != W.dtype)) and not _autocast_on(x):
        raise TypeError(
            f"x, W and b must share one dtype, got x {x.dtype}, W {W.dtype}"
            + (f", b {b.dtype}" if b is not None else "")
        )
    _check_same_device(x=x, W=W, b=b)
    return _call(LinearFunction, LOWER, x, W, b)


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    """a = 1/(1 + e^(−z)) element-wise; z (*) → a (*)."""
    _check_float(z, "z")
    return _call(SigmoidFunction, NONE, z)


def softmax(z: torch.Tensor) -> torch.Tensor:
    """Softmax along the last dimension; z (*, c) → a (*, c)."""
    _check_float(z, "z")
    if z.dim() < 1:
        raise ValueError("z must have at least one dimension (the classes), got a 0-D tensor")
    return _call(SoftmaxFunction, FLOAT32_ON_CUDA, z)


def relu(z: torch.Tensor) -> torch.Tensor:
    """a = max(z, 0) element-wise; z (*) → a (*)."""
    _check_float(z, "z")
    return _call(ReLUFunction, NONE, z)


def tanh(z: torch.Tensor) -> torch.Tensor:
    """a = tanh(z) element-wise; z (*) → a (*)."""
    _check_float(z, "z")
    return _call(TanhFunction, NONE, z)


def cross_entropy(probs: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """−log a_y.  probs (n, c) in [0, 1], y (n,) integer in [0, c)."""
    _check_reduction(reduction)
    _check_matrix(probs, "probs", "(n, c)")
    y = _check_class_labels(y, probs.shape[0], probs.shape[1], "y")
    _check_same_device(probs=probs, y=y)
    _check_unit_interval(probs, "probs")
    return _apply_with_labels(CrossEntropyFunction, probs, y, reduction, "y")


def _check_binary_targets(probs: torch.Tensor, y, first: str) -> torch.Tensor:
    _check_tensor(y, "y")
    if y.shape != probs.shape:
        raise ValueError(
            f"y must have the same shape as {first}, got y {tuple(y.shape)} and {first} {tuple(probs.shape)}"
        )
    if y.is_complex():
        raise TypeError(f"y must be real, got dtype {y.dtype}")
    if not y.is_floating_point():
        y = y.to(probs.dtype)
    elif y.dtype != probs.dtype and not _autocast_on(probs):
        raise TypeError(f"y must have the dtype of {first} ({probs.dtype}), got {y.dtype}")
    _check_same_device(**{first: probs, "y": y})
    _check_unit_interval(y, "y (binary targets)")
    return y


def binary_cross_entropy(probs: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """−y log a − (1−y) log(1−a).  probs (*) in [0, 1], y (*) in [0, 1] (same shape)."""
    _check_reduction(reduction)
    _check_float(probs, "probs")
    y = _check_binary_targets(probs, y, "probs")
    _check_unit_interval(probs, "probs")
    return _call(BinaryCrossEntropyFunction, FLOAT32, probs, y, reduction)


def softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Fused softmax + cross-entropy.  logits (n, c), y (n,) integer in [0, c)."""
    _check_reduction(reduction)
    _check_matrix(logits, "logits", "(n, c)")
    y = _check_class_labels(y, logits.shape[0], logits.shape[1], "y")
    _check_same_device(logits=logits, y=y)
    return _apply_with_labels(SoftmaxCrossEntropyFunction, logits, y, reduction, "y")


def sigmoid_binary_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Fused sigmoid + binary cross-entropy.  logits (*), y (*) in [0, 1] (same shape)."""
    _check_reduction(reduction)
    _check_float(logits, "logits")
    y = _check_binary_targets(logits, y, "logits")
    return _call(SigmoidBinaryCrossEntropyFunction, FLOAT32, logits, y, reduction)
