"""The checks every plain function of :mod:`nnref.functional` makes before it computes: the inputs' types, shapes,
devices and dtypes (they cost nothing: always on), and their values — labels in [0, c), probabilities in [0, 1] —
which read the data (a reduction and a device→host copy), so a training loop that validated its dataset once may
switch them off for its hot loop (:func:`value_checks`).

Each raises a ``TypeError`` or ``ValueError`` that names the argument, before any computation.  Value checks work
eagerly and inside ``torch.compile`` (an assertion in the graph: no graph break, no host sync); inside
``torch.func`` transforms, where values cannot be read, they are skipped.  This is plumbing, not the lecture.
"""

from __future__ import annotations

import contextlib
import threading

import torch

__all__ = [
    "REDUCTIONS",
    "value_checks",
    "tensor",
    "floating",
    "matrix",
    "reduction",
    "same_device",
    "class_labels",
    "unit_interval",
    "binary_targets",
    "labels_reported",
    "autocast_on",
]

REDUCTIONS = ("mean", "sum", "none")

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


def autocast_on(t: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(t.device.type)


def tensor(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


def floating(t: torch.Tensor, name: str) -> None:
    tensor(t, name)
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def reduction(value) -> None:
    if value not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {value!r}")


def same_device(**tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{k} on {v}" for k, v in devices.items())
        raise ValueError(f"all inputs must be on the same device, got {listing}")


def class_labels(labels, n: int, c: int, name: str = "labels") -> torch.Tensor:
    tensor(labels, name)
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
        _check_values(
            lambda: ((labels >= 0) & (labels < c)).all(),
            f"{name} must lie in [0, {c}) for c = {c} classes",
            lambda: _read_labels(labels, c, name),
        )
    return labels.long()


def _read_labels(labels: torch.Tensor, c: int, name: str) -> None:
    if _can_read_values(labels) and labels.numel() > 0:
        lo, hi = torch.stack(torch.aminmax(labels)).tolist()  # one reduction, one device→host copy
        if lo < 0 or hi >= c:
            raise ValueError(f"{name} must lie in [0, {c}) for c = {c} classes, found {lo if lo < 0 else hi}")


def _kernel_checks_labels(labels: torch.Tensor) -> bool:
    """On the CPU, eagerly, the class-index losses need no separate pass over the labels: their ``gather``
    refuses an index outside [0, c) by itself, and :func:`labels_reported` turns that into our error."""
    return labels.device.type == "cpu" and not torch.compiler.is_compiling()


def labels_reported(run, labels: torch.Tensor, prediction: torch.Tensor, name: str):
    """``run()`` (a loss's apply); an out-of-range label reported by the CPU kernel becomes the ValueError the other
    devices get from the check before the call."""
    try:
        return run()
    except (RuntimeError, IndexError):
        if _kernel_checks_labels(labels):
            _read_labels(labels, prediction.shape[-1], name)
        raise


def unit_interval(t: torch.Tensor, name: str) -> None:
    def read():
        if _can_read_values(t) and t.numel() > 0:
            extremes = torch.aminmax(t.detach())  # NaN propagates into both
            lo, hi = extremes.min.item(), extremes.max.item()
            if not (lo >= 0 and hi <= 1):
                raise ValueError(f"{name} must lie in [0, 1], found {lo if not lo >= 0 else hi}")

    _check_values(lambda: ((t >= 0) & (t <= 1)).all(), f"{name} must lie in [0, 1]", read)


def matrix(t, name: str, what: str) -> None:
    floating(t, name)
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape {what}, got shape {tuple(t.shape)} ({t.dim()}-D)")


def binary_targets(probs: torch.Tensor, y, first: str) -> torch.Tensor:
    tensor(y, "y")
    if y.shape != probs.shape:
        raise ValueError(
            f"y must have the same shape as {first}, got y {tuple(y.shape)} and {first} {tuple(probs.shape)}"
        )
    if y.is_complex():
        raise TypeError(f"y must be real, got dtype {y.dtype}")
    if not y.is_floating_point():
        y = y.to(probs.dtype)
    elif y.dtype != probs.dtype and not autocast_on(probs):
        raise TypeError(f"y must have the dtype of {first} ({probs.dtype}), got {y.dtype}")
    same_device(**{first: probs, "y": y})
    unit_interval(y, "y (binary targets)")
    return y
