"""The lecture's training step — forward, loss, backward — as one callable, eager or from a CUDA graph.

A step object fills every parameter's ``.grad`` and returns ``(loss, logits)``; the caller then checks
the gradients and calls ``optimizer.step()`` (so learning-rate schedules keep working).

On a GPU, the Python side of a small network — one ``Function.apply`` per layer, forward and backward —
costs more than its kernels.  :class:`GraphedStep` records the whole forward and backward once as a CUDA
graph and afterwards replays it with one call: the same kernels, in the same order, on the same
memory, without the Python.
"""

from __future__ import annotations

from typing import Callable

import torch

from .functional import value_checks

__all__ = ["EagerStep", "GraphedStep", "make_step"]

ForwardLoss = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


class EagerStep:
    """Plain autograd: ``.grad`` is reset, then forward, loss and backward run op by op."""

    def __init__(self, forward_loss: ForwardLoss, params: list[torch.Tensor]) -> None:
        self.forward_loss, self.params = forward_loss, list(params)

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        for p in self.params:
            p.grad = None
        loss, logits = self.forward_loss(x, y)
        loss.backward()
        return loss, logits


class GraphedStep:
    """Forward + loss + backward captured as one CUDA graph for batches shaped like the example.

    The batch is copied into static input tensors, the graph is replayed, and the gradients land in
    the same ``.grad`` tensors every time (the caller must not set them to ``None``).  A batch of
    another shape (the last, shorter batch of an epoch) runs eagerly into those same tensors.
    Value checks are skipped inside the graph: a graph cannot read data back to the host, so the data
    must be validated before (as :func:`nnref.train.train` does once for the whole dataset).
    """

    def __init__(self, forward_loss: ForwardLoss, params: list[torch.Tensor], example_x: torch.Tensor,
                 example_y: torch.Tensor, warmup: int = 3) -> None:
        if example_x.device.type != "cuda":
            raise ValueError("CUDA graphs need CUDA tensors; use EagerStep on the CPU")
        self.forward_loss, self.params = forward_loss, list(params)
        self.x, self.y = example_x.clone(), example_y.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), value_checks(False):  # warm up (cuBLAS handles, allocator) off the graph
            for _ in range(warmup):
                for p in self.params:
                    p.grad = None
                loss, _ = forward_loss(self.x, self.y)
                loss.backward()
                del loss  # let this iteration's autograd graph go before the next one is built
        torch.cuda.current_stream().wait_stream(side)
        for p in self.params:
            p.grad = None  # so that backward inside the graph allocates static gradient tensors
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), value_checks(False):
            self.loss, self.logits = forward_loss(self.x, self.y)
            self.loss.backward()

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        if x.shape != self.x.shape or y.shape != self.y.shape:
            for p in self.params:
                p.grad.zero_()
            with value_checks(False):
                loss, logits = self.forward_loss(x, y)
            loss.backward()  # accumulates into the zeroed static gradients
            return loss, logits
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return self.loss, self.logits


def make_step(model, fused: bool, example_x, example_y, cuda_graphs: bool):
    """The step for ``model`` (an nnref model with ``loss``): graphed when asked for and on CUDA."""

    def forward_loss(x, y):
        logits = model(x)
        return model.loss(logits, y, fused=fused), logits

    params = [p for p in model.parameters() if p.requires_grad]
    if cuda_graphs and example_x.device.type == "cuda":
        return GraphedStep(forward_loss, params, example_x, example_y)
    return EagerStep(forward_loss, params)
