"""The lecture's training step — forward, loss, backward, update — as one object.

A step object fills every parameter's ``.grad`` and returns ``(loss, logits)``; the caller checks the
gradients, then calls ``step.update(optimizer)`` (so learning-rate schedules keep working).

* :class:`EagerStep` — plain autograd, op by op: what the plane's :class:`~nnref.plane.Descent` runs, and what
  ``nnref train`` runs on a CPU;
* :func:`forward_loss_of` — ``(x, y) → (loss, logits)`` of a model, under ``torch.autocast`` when ``amp`` asks;
* :func:`finite` and :func:`diverged` — the one rule of when training has diverged: a loss, a gradient or a weight
  became NaN or infinite (``nnref train``, the lab's playground and its /mnist page all ask it).

The same step compiled with ``torch.compile``, replayed as a CUDA graph or with fp16 loss scaling is
:mod:`nnref.fast.steps`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["EagerStep", "forward_loss_of", "finite", "diverged", "AMP_DTYPES", "ForwardLoss"]

ForwardLoss = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]

#: ``--amp`` choices and the dtype autocast runs the matrix products in.
AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class EagerStep:
    """Plain autograd: ``.grad`` is reset, then forward, loss and backward run op by op."""

    def __init__(self, forward_loss: ForwardLoss, params: list[torch.Tensor], scaler=None) -> None:
        self.forward_loss, self.params, self.scaler = forward_loss, list(params), scaler

    def __call__(self, x: torch.Tensor, y: torch.Tensor, weight: float = 1.0):
        """Forward, loss, backward of one batch; the gradient is that of ``weight`` × the batch's mean loss
        (a rank's share of a global batch it holds unevenly; 1 otherwise)."""
        for p in self.params:
            p.grad = None
        loss, logits = self.forward_loss(x, y)
        self._backward(loss, weight)
        return loss, logits

    def _backward(self, loss: torch.Tensor, weight: float = 1.0) -> None:
        if weight != 1.0:
            loss = loss * weight
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    @property
    def checks_gradients(self) -> bool:
        """False when a GradScaler may legitimately produce inf gradients (it then skips the update)."""
        return self.scaler is None

    def update(self, optimizer: torch.optim.Optimizer) -> None:
        """w ← w − α ∂L/∂w (through the GradScaler with fp16: unscaled, skipped on overflow)."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


def forward_loss_of(
    model, fused: bool = True, amp: str = "off", graphed: bool = False, net=None, loss_fn=None
) -> ForwardLoss:
    """``(x, y) → (loss, logits)`` of a model, under ``torch.autocast`` when ``amp`` asks for it.
    The loss is the nnref model's own (``model.loss``) unless ``loss_fn(logits, y)`` is given; ``net``
    computes the logits instead of ``model`` (its DistributedDataParallel wrapper)."""
    dtype = AMP_DTYPES[amp]
    net = net if net is not None else model

    def forward_loss(x, y):
        with torch.autocast(
            x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=not graphed
        ):  # a CUDA graph must not keep autocast's cast cache
            logits = net(x)
            loss = loss_fn(logits, y) if loss_fn is not None else model.loss(logits, y, fused=fused)
            return loss, logits

    return forward_loss


def finite(loss: torch.Tensor, tensors=()) -> torch.Tensor:
    """A 0-dim bool tensor, True while the loss (any shape) and every tensor of ``tensors`` (gradients, weights) are
    finite: one NaN or infinity anywhere makes their sum non-finite.  It stays on the device: a caller that checks
    every step can keep the flags and read them later, without waiting for the device at each step."""
    with torch.no_grad():
        total = loss.detach().float().sum()
        for t in tensors:
            total = total + t.detach().float().sum()
        return torch.isfinite(total)


def diverged(loss: torch.Tensor, tensors=()) -> bool:
    """Training has diverged: the loss, or one of ``tensors`` (gradients, weights), is NaN or infinite."""
    return not bool(finite(loss, tensors))
