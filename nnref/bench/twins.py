"""The bench's fair reference: the same network as nnref's, made of ``torch.nn`` layers, with the same weights."""

from __future__ import annotations

from torch import nn

from ..layers import ACTIVATIONS, Linear
from ..models import MLP

__all__ = ["builtin_twin"]


def builtin_twin(model: nn.Module) -> nn.Module:
    """The same network made of ``torch.nn`` layers, with the same weights (the bench's fair reference)."""
    twins = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}
    if isinstance(model, MLP):
        layers = []
        for layer in model.layers:
            if isinstance(layer, Linear):
                lin = nn.Linear(layer.in_features, layer.out_features)
                lin.load_state_dict(layer.state_dict())
                layers.append(lin)
            else:
                name = next(k for k, v in ACTIVATIONS.items() if isinstance(layer, v))
                layers.append(twins[name]())
        return nn.Sequential(*layers)
    lin = nn.Linear(model.linear.in_features, model.linear.out_features)
    lin.load_state_dict(model.linear.state_dict())
    return lin
