"""The lecture's worked example, on any network of the plane: the chain rule at work for one instance.

For an instance (x, y) — "x = (0.5, …, 0.6), y = 1" on the slide — the **forward** pass gives every neuron's z and
a, the probabilities and the loss L; the **backward** pass goes from the loss back, one layer at a time: each
neuron's dL/da, its local gradient da/dz and dL/dz = da/dz · dL/da; each link's dL/dw = a_prev · dL/dz — the
product of the local gradients —, each bias's dL/db = dL/dz; and the **update** w ← w − α dL/dw.

Every gradient is nnref's hand-written backward — each Function's own, run by autograd on that one instance — and
the loss is the lecture's unfused one (σ then binary cross-entropy, or softmax then cross-entropy), so dL/da is
−1/a for the true class, as on the slide.  A softmax output has no da/dz of one neuron (its Jacobian couples them):
its dL/dz = a − onehot(y) comes straight from the Functions' backward.

Shapes: the network takes p inputs; a layer of c neurons after one of p has z, a, dL/da, da/dz, dL/dz (c,),
W and dL/dW (c, p), b and dL/db (c,).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import functional as F
from .layers import Linear
from .models import MLP

__all__ = ["LayerPass", "WorkedPass", "worked_pass", "sgd_step", "as_dict"]


@dataclass
class LayerPass:
    """One layer of the worked pass: what enters it (a_prev (p,)), its neurons' z, a (c,) and gradients, its
    parameters W (c, p), b (c,) and their gradients."""

    activation: str  # sigmoid, softmax, tanh, relu or linear
    a_prev: torch.Tensor
    z: torch.Tensor
    a: torch.Tensor
    dL_da: torch.Tensor
    da_dz: torch.Tensor | None  # None for softmax: its Jacobian couples the neurons
    dL_dz: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    dL_dw: torch.Tensor
    dL_db: torch.Tensor


@dataclass
class WorkedPass:
    """The forward and backward pass of one instance: the layers, input side first; the class probabilities (k,);
    the loss L = −log a_y."""

    y: int
    layers: list[LayerPass]
    probabilities: torch.Tensor
    loss: float


_NAMES = {"Sigmoid": "sigmoid", "Softmax": "softmax", "Tanh": "tanh", "ReLU": "relu", "Identity": "linear"}


def _stack(net: torch.nn.Module) -> list[tuple[Linear, torch.nn.Module]]:
    """(Linear, the activation after it) for every layer, input side first; the last one's is the output's."""
    if isinstance(net, MLP):
        modules = list(net.layers)
        hidden = [(modules[i], modules[i + 1]) for i in range(0, len(modules) - 1, 2)]
        return [*hidden, (modules[-1], net.activation)]
    return [(net.linear, net.activation)]


def worked_pass(net: torch.nn.Module, inputs: torch.Tensor, y: int) -> WorkedPass:
    """The worked example for one instance: ``inputs`` (p,) the network's inputs for it, ``y`` its class."""
    stack = _stack(net)
    h, zs, activations = inputs.reshape(1, -1).to(stack[0][0].weight.dtype), [], []
    for linear, activation in stack:
        z = linear(h)
        a = activation(z.squeeze(-1) if net.binary and linear is stack[-1][0] else z)
        zs.append(z)
        activations.append(a)
        h = a
    out = activations[-1]
    if net.binary:
        loss = F.binary_cross_entropy(out, torch.tensor([float(y)], dtype=out.dtype))
        probabilities = torch.cat([1 - out, out]).detach()
    else:
        loss = F.cross_entropy(out, torch.tensor([y]))
        probabilities = out[0].detach()
    params = [p for linear, _ in stack for p in (linear.weight, linear.bias)]
    grads = torch.autograd.grad(loss, [*zs, *activations, *params])
    n = len(stack)
    dL_dz, dL_da, dL_dp = grads[:n], grads[n : 2 * n], grads[2 * n :]
    names = [_NAMES[type(activation).__name__] for _, activation in stack]
    locals_ = _local_gradients(stack, zs, names, net.binary)
    layers = []
    for i, (linear, _) in enumerate(stack):
        name, z, a, local = names[i], zs[i], activations[i], locals_[i]
        layers.append(
            LayerPass(
                activation=name,
                a_prev=(inputs if i == 0 else activations[i - 1]).detach().reshape(-1).to(z.dtype),
                z=z.detach().reshape(-1),
                a=a.detach().reshape(-1),
                dL_da=dL_da[i].reshape(-1),
                da_dz=None if local is None else local.reshape(-1),
                dL_dz=dL_dz[i].reshape(-1),
                weight=linear.weight.detach().clone(),
                bias=linear.bias.detach().clone(),
                dL_dw=dL_dp[2 * i],
                dL_db=dL_dp[2 * i + 1],
            )
        )
    return WorkedPass(y=int(y), layers=layers, probabilities=probabilities, loss=float(loss.detach()))


def _local_gradients(stack, zs, names: list[str], binary: bool) -> list[torch.Tensor | None]:
    """Each layer's local gradient da/dz, by its activation's hand-written backward with an upstream gradient of
    ones, on z cut from the network (so that a layer's a depends on its own z alone): one autograd call for all.
    None for a softmax, whose Jacobian couples its neurons."""
    cut = [z.detach().requires_grad_() for z in zs]
    outs, ins = [], []
    for (linear, activation), name, z in zip(stack, names, cut):
        if name != "softmax":
            ins.append(z)
            outs.append(activation(z.squeeze(-1) if binary and linear is stack[-1][0] else z))
    grads = iter(torch.autograd.grad(outs, ins, [torch.ones_like(o) for o in outs]) if outs else ())
    return [None if name == "softmax" else next(grads) for name in names]


def sgd_step(net: torch.nn.Module, worked: WorkedPass, lr: float) -> None:
    """The lecture's per-instance update, in place: w ← w − α dL/dw and b ← b − α dL/db for every layer."""
    with torch.no_grad():
        for (linear, _), layer in zip(_stack(net), worked.layers):
            linear.weight.copy_(layer.weight - lr * layer.dL_dw)
            linear.bias.copy_(layer.bias - lr * layer.dL_db)


def _numbers(t: torch.Tensor | None, digits: int = 6):
    """A tensor's values rounded to ``digits`` decimals, as a list (rows as lists for a matrix)."""
    if t is None:
        return None
    return (torch.round(t.detach().double() * 10**digits) / 10**digits).tolist()


def as_dict(worked: WorkedPass, lr: float) -> dict:
    """The worked pass as the page shows it: per layer, each neuron's z, a, dL/da, da/dz, dL/dz, and each parameter's
    value, gradient, step α·dL/dw and new value (lists in the layer's (c, p) order, rows by neuron)."""
    layers = []
    for layer in worked.layers:
        step_w, step_b = lr * layer.dL_dw, lr * layer.dL_db
        layers.append(
            {
                "activation": layer.activation,
                "a_prev": _numbers(layer.a_prev),
                "z": _numbers(layer.z),
                "a": _numbers(layer.a),
                "dL_da": _numbers(layer.dL_da),
                "da_dz": _numbers(layer.da_dz),
                "dL_dz": _numbers(layer.dL_dz),
                "w": _numbers(layer.weight),
                "dL_dw": _numbers(layer.dL_dw),
                "w_new": _numbers(layer.weight - step_w),
                "b": _numbers(layer.bias),
                "dL_db": _numbers(layer.dL_db),
                "b_new": _numbers(layer.bias - step_b),
            }
        )
    return {
        "y": worked.y,
        "loss": round(worked.loss, 6),
        "probabilities": _numbers(worked.probabilities),
        "lr": lr,
        "layers": layers,
    }
