"""nnref.backprop: the lecture's worked example on any network of the plane — its numbers are the slide's, every
gradient equals autograd's of that instance's loss through PyTorch's own operations, the batch gradient the
trainer uses is their mean, and the update is exactly one SGD step."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as TF

from nnref import plane
from nnref.backprop import as_dict, sgd_step, worked_pass
from nnref.choices import ACTIVATIONS
from nnref.models import MLP, LogisticRegression, SoftmaxRegression


def test_the_slides_worked_example():
    """x = (0.5, 0.6), y = 1, weights with a = 1/1.9: dL/da = −1.9, da/dz = 0.249, dL/dw = −0.237, −0.284,
    dL/db = −0.474 (the slide rounds a(1 − a) to 0.24 and writes −0.22, −0.27, −0.46)."""
    net = LogisticRegression(2)
    with torch.no_grad():
        net.linear.weight.copy_(torch.tensor([[0.2, -0.1]]))
        net.linear.bias.fill_(0.06536)
    layer = worked_pass(net, torch.tensor([0.5, 0.6]), 1).layers[0]
    assert float(layer.a[0]) == pytest.approx(1 / 1.9, abs=1e-5)
    assert round(float(layer.dL_da[0]), 3) == -1.9 and round(float(layer.da_dz[0]), 3) == 0.249
    assert [round(float(v), 3) for v in layer.dL_dw[0]] == [-0.237, -0.284] and round(
        float(layer.dL_db[0]), 3
    ) == -0.474
    # each global gradient is the product of its local gradients: dz/dw · da/dz · dL/da
    assert torch.allclose(layer.dL_dw[0], layer.a_prev * layer.da_dz[0] * layer.dL_da[0])


def _reference_loss(net, params, x: torch.Tensor, y: int):
    """The instance's loss through PyTorch's own operations (none of nnref's Functions), on ``params``."""
    h, weights = x.reshape(1, -1), iter(params)
    names = [net.activation_name] * len(net.hidden) if isinstance(net, MLP) else []
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda z: z}
    for name in names:
        h = act[name](TF.linear(h, next(weights), next(weights)))
    z = TF.linear(h, next(weights), next(weights))
    if net.binary:
        return TF.binary_cross_entropy(torch.sigmoid(z.reshape(-1)), torch.tensor([float(y)], dtype=z.dtype))
    return TF.nll_loss(torch.log(torch.softmax(z, -1)), torch.tensor([y]))


NETWORKS = [
    (depth, activation, classes)
    for depth in range(4)
    for activation in ACTIVATIONS
    for classes in (2, 3)
    if depth or activation == "tanh"
]


@pytest.mark.parametrize("depth,activation,classes", NETWORKS)
def test_every_gradient_equals_autograds_of_the_instances_loss(depth, activation, classes):
    torch.manual_seed(depth * 10 + classes)
    net = (
        MLP(3, [4, 3, 5][:depth], 1 if classes == 2 else classes, activation)
        if depth
        else LogisticRegression(3)
        if classes == 2
        else SoftmaxRegression(3, classes)
    ).double()
    for _ in range(3):  # three instances
        x, y = torch.randn(3, dtype=torch.float64), int(torch.randint(classes, ()))
        worked = worked_pass(net, x, y)
        params = [p.detach().clone().requires_grad_() for p in net.parameters()]
        reference = _reference_loss(net, params, x, y)
        expected = torch.autograd.grad(reference, params)
        got = [g for layer in worked.layers for g in (layer.dL_dw, layer.dL_db)]
        assert worked.loss == pytest.approx(float(reference), rel=1e-12)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        for (
            layer
        ) in worked.layers:  # the chain rule, as the view shows it: dL/dw = a_prev · dL/dz, dL/dz = da/dz · dL/da
            torch.testing.assert_close(layer.dL_dw, layer.dL_dz.unsqueeze(1) * layer.a_prev.unsqueeze(0))
            if layer.da_dz is not None:
                torch.testing.assert_close(layer.dL_dz, layer.da_dz * layer.dL_da)


@pytest.mark.parametrize("kind,classes", [("logreg", 2), ("mlp", 2), ("logreg", 3), ("mlp", 4)])
def test_the_batch_gradient_the_trainer_uses_is_the_mean_of_the_instances(kind, classes):
    X, y = plane.make_points("blobs", 40, classes=classes)
    descent = plane.Descent(
        kind, X, y, classes, plane.PlaygroundConfig(batch_size=0, weight_decay=0.0, hidden=(3,)), seed=1
    )
    params = list(descent.net.parameters())
    descent.step_fn(descent.X, descent.t)  # the trainer's step: forward, fused loss, nnref's backward
    batch = [p.grad.clone() for p in params]
    per_instance = [worked_pass(descent.net, descent.X[i], int(y[i])) for i in range(X.shape[0])]
    for j, g in enumerate(batch):
        layer, which = divmod(j, 2)
        mean = torch.stack([w.layers[layer].dL_db if which else w.layers[layer].dL_dw for w in per_instance]).mean(0)
        torch.testing.assert_close(mean, g, rtol=1e-4, atol=1e-6)


def test_the_update_is_exactly_one_sgd_step():
    net = MLP(2, [3], 1, "tanh")
    before = copy.deepcopy(net)
    worked = worked_pass(net, torch.tensor([0.3, -0.7]), 0)
    sgd_step(net, worked, lr=0.5)
    for (name, new), old in zip(net.named_parameters(), before.parameters()):
        layer = worked.layers[int(name.split(".")[1]) // 2]
        grad = layer.dL_db if name.endswith("bias") else layer.dL_dw
        assert torch.equal(new.detach(), old.detach() - 0.5 * grad), name
    shown = as_dict(worked, 0.5)["layers"][0]
    assert shown["w_new"][0][0] == pytest.approx(float(net.layers[0].weight[0, 0]), abs=1e-6)
