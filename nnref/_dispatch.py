"""The base every nnref Function stands on: a cheap ``apply`` and ``torch.autocast``'s policy.

This is plumbing, not the lecture: the Functions themselves — each forward beside its hand-written backward — are
:mod:`nnref.functional`.  What the base does, and why:

* ``generate_vmap_rule = True``: ``torch.func.vmap`` / ``grad`` work (every backward is made of torch ops).
* autocast: each Function declares a policy, the built-ins' one per device type — "lower" (the matrix product
  runs in the autocast dtype: :data:`LOWER`), "float32" (losses everywhere, softmax on CUDA: :data:`FLOAT32`,
  :data:`FLOAT32_ON_CUDA`), or none (the input's dtype: the element-wise activations, :data:`NONE`).  The cast
  happens before the Function, as a recorded autograd op, so gradients flow back to float32 parameters in float32.
  (``torch.amp.custom_fwd`` does not work with ``setup_context`` Functions, PyTorch issue #132388.)
* a cheap ``apply``: PyTorch binds the arguments of every ``apply`` of a ``setup_context``-style Function to
  ``forward``'s signature with ``inspect`` (``torch.autograd.function._bind_default_args``), which costs more than
  the rest of a small layer's forward and backward together; every nnref call gives all arguments positionally, so
  :class:`_PositionalSignature` passes such a call straight through.
* :func:`autocast_args` is the cast itself, which :mod:`nnref.functional`'s plain functions also do in code that
  ``torch.compile`` traces: Dynamo handles ``Function.apply`` itself and does not run the ``apply`` override, so
  without it a compiled Linear under autocast would save its float32 weight beside a bfloat16 output and its
  backward would multiply the two.
"""

from __future__ import annotations

import inspect

import torch

__all__ = ["Function", "autocast_args", "LOWER", "FLOAT32", "FLOAT32_ON_CUDA", "NONE"]

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


class Function(torch.autograd.Function):
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
        return super().apply(*autocast_args(cls.autocast, args))


def autocast_args(policy: dict, args: tuple) -> tuple:
    """The arguments cast to the dtype ``torch.autocast`` asks a Function of this ``policy`` to run in (as they
    are when autocast is off or the policy keeps the input's dtype)."""
    dtype = _autocast_dtype(args, policy)
    if dtype is None:
        return args
    return tuple(
        a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() and a.dtype != torch.float64 else a
        for a in args
    )
