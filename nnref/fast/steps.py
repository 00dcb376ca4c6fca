"""The training step made fast: compiled with ``torch.compile``, replayed as a CUDA graph, with fp16 loss scaling.

* :class:`GraphedStep` — on a GPU, the Python side of a small network (one ``Function.apply`` per layer,
  forward and backward) costs more than its kernels; the whole forward and backward are recorded once as
  a CUDA graph and replayed with one call: the same kernels on the same memory, without the Python.
* ``compile=True`` — forward and loss go through ``torch.compile(fullgraph=True)``; AOTAutograd compiles
  the backward from nnref's hand-written backward formulas (never from the derivative of the forward).
* ``amp`` — ``"bf16"`` or ``"fp16"`` runs the forward under ``torch.autocast``; fp16 (CUDA only) scales
  the loss with ``torch.amp.GradScaler`` and skips the update of a step whose gradients overflowed.

The step itself — forward, loss, backward, update — is the lecture's :class:`nnref.training.EagerStep`.
"""

from __future__ import annotations

import torch

from ..functional import value_checks
from ..training import EagerStep, ForwardLoss, forward_loss_of

__all__ = ["GraphedStep", "make_step", "build_step"]


class GraphedStep(EagerStep):
    """Forward + loss + backward captured as one CUDA graph for batches shaped like the example.

    The batch is copied into static input tensors, the graph is replayed, and the gradients land in
    the same ``.grad`` tensors every time (the caller must not set them to ``None``).  A batch of
    another shape (the last, shorter batch of an epoch) runs eagerly into those same tensors.
    Value checks are skipped inside the graph: a graph cannot read data back to the host, so the data
    must be validated before (as :func:`nnref.run.train.train` does once for the whole dataset).
    """

    def __init__(
        self,
        forward_loss: ForwardLoss,
        params: list[torch.Tensor],
        example_x: torch.Tensor,
        example_y: torch.Tensor,
        warmup: int = 3,
        scaler=None,
    ) -> None:
        if example_x.device.type != "cuda":
            raise ValueError("CUDA graphs need CUDA tensors; use EagerStep on the CPU")
        super().__init__(forward_loss, params, scaler)
        self.x, self.y = example_x.clone(), example_y.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), value_checks(False):  # warm up (cuBLAS handles, allocator) off the graph
            for _ in range(warmup):
                for p in self.params:
                    p.grad = None
                loss, _ = forward_loss(self.x, self.y)
                self._backward(loss)
                del loss  # let this iteration's autograd graph go before the next one is built
        torch.cuda.current_stream().wait_stream(side)
        for p in self.params:
            p.grad = None  # so that backward inside the graph allocates static gradient tensors
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), value_checks(False):
            self.loss, self.logits = forward_loss(self.x, self.y)
            self._backward(self.loss)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, weight: float = 1.0):
        if x.shape != self.x.shape or y.shape != self.y.shape or weight != 1.0:
            for p in self.params:
                p.grad.zero_()
            with value_checks(False):
                loss, logits = self.forward_loss(x, y)
            self._backward(loss, weight)  # accumulates into the zeroed static gradients
            return loss, logits
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return self.loss, self.logits


def build_step(
    forward_loss: ForwardLoss,
    params,
    example_x,
    example_y,
    cuda_graphs: bool = True,
    compile: bool = False,
    amp: str = "off",
    compile_mode: str | None = None,
    fullgraph: bool = True,
):
    """A step around ``forward_loss``: compiled with ``torch.compile`` when asked; replayed as a CUDA graph on CUDA when
    ``cuda_graphs``; with a GradScaler for fp16."""
    device = example_x.device
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(
            "--amp fp16 needs a CUDA GPU (fp16 on a CPU is slow and needs loss scaling); use --amp bf16 on a CPU"
        )
    if compile:
        forward_loss = torch.compile(forward_loss, fullgraph=fullgraph, dynamic=False, mode=compile_mode)
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
    params = [p for p in params if p.requires_grad]
    if cuda_graphs and device.type == "cuda":
        return GraphedStep(forward_loss, params, example_x, example_y, scaler=scaler)
    return EagerStep(forward_loss, params, scaler)


def make_step(
    model, fused: bool, example_x, example_y, cuda_graphs: bool, compile: bool = False, amp: str = "off", net=None
):
    """The step for ``model`` (an nnref model with ``loss``): compiled and/or graphed as asked and possible.

    On CUDA with ``cuda_graphs`` the (compiled or eager) forward+backward is captured as a CUDA graph;
    ``amp="fp16"`` adds a GradScaler (CUDA only: bfloat16 needs none).  With ``net`` (a
    DistributedDataParallel wrapper of ``model``) the step is never graphed, and compiled with graph breaks
    allowed (Dynamo splits DDP's graph at its gradient buckets).
    """
    graphed = cuda_graphs and example_x.device.type == "cuda" and net is None
    forward_loss = forward_loss_of(model, fused, amp, graphed, net)
    return build_step(
        forward_loss, model.parameters(), example_x, example_y, graphed, compile, amp, fullgraph=net is None
    )
