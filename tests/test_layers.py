"""nnref.layers: Modules that call only nnref's Functions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import nnref.functional as NF
from nnref.layers import Linear, ReLU, Sigmoid, Softmax, Tanh


def test_linear_matches_torch_linear_with_same_weights():
    torch.manual_seed(0)
    ours = Linear(5, 3)
    ref = nn.Linear(5, 3)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 5)
    torch.testing.assert_close(ours(x), ref(x))
    ours(x).pow(2).sum().backward()
    ref(x).pow(2).sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad)


def test_linear_initialisation_is_uniform_with_bound_one_over_sqrt_p():
    torch.manual_seed(0)
    layer = Linear(400, 300)
    bound = 1 / math.sqrt(400)
    assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    # U(−a, a) has standard deviation a/√3
    assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert layer.weight.mean().abs().item() < 0.01 * bound


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_linear_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        Linear(bad, 3)


@pytest.mark.parametrize(
    "layer,fn",
    [
        (Sigmoid(), torch.sigmoid),
        (ReLU(), torch.relu),
        (Tanh(), torch.tanh),
        (Softmax(), lambda z: torch.softmax(z, -1)),
    ],
)
def test_activation_layers_match_builtins(layer, fn):
    z = torch.randn(6, 4)
    torch.testing.assert_close(layer(z), fn(z))


def test_layers_call_only_nnref_functions(monkeypatch):
    """With torch.nn.functional's versions sabotaged, nnref layers still work, and their autograd nodes are nnref's."""
    import torch.nn.functional as TF

    for name in ("linear", "relu", "sigmoid", "tanh", "softmax"):
        monkeypatch.setattr(TF, name, lambda *a, **k: (_ for _ in ()).throw(AssertionError("torch.nn.functional used")))
    x = torch.randn(3, 4, requires_grad=True)
    lin = Linear(4, 2)
    outs = {"Linear": lin(x), "Sigmoid": Sigmoid()(x), "ReLU": ReLU()(x), "Tanh": Tanh()(x), "Softmax": Softmax()(x)}
    expected = {
        "Linear": NF.LinearFunction,
        "Sigmoid": NF.SigmoidFunction,
        "ReLU": NF.ReLUFunction,
        "Tanh": NF.TanhFunction,
        "Softmax": NF.SoftmaxFunction,
    }
    for name, out in outs.items():
        assert type(out.grad_fn).__name__ == expected[name].__name__ + "Backward", name


def test_linear_error_names_the_shape():
    with pytest.raises(ValueError, match="inner dimensions must agree"):
        Linear(5, 3)(torch.randn(2, 4))
