"""nnref.models: the parametric models, their shared classifier interface, their losses and autocast."""

from __future__ import annotations

import pytest
import torch

import nnref.functional as F
from nnref.models import MLP, LogisticRegression, SoftmaxRegression


def test_shapes_and_probabilities():
    x = torch.randn(5, 784)
    lr, sm, mlp = LogisticRegression(784), SoftmaxRegression(784, 10), MLP(784, (30, 20), 10, "sigmoid")
    assert lr(x).shape == (5,) and lr.predict_proba(x).shape == (5, 2)
    torch.testing.assert_close(lr.predict_proba(x)[:, 1], torch.sigmoid(lr(x)).detach())
    assert sm(x).shape == (5, 10) and mlp(x).shape == (5, 10)
    for model in (lr, sm, mlp):  # every classifier: probabilities (n, c) summing to 1, predict = their argmax
        probs = model.predict_proba(x)
        torch.testing.assert_close(probs.sum(-1), torch.ones(5))
        assert torch.equal(model.predict(x), probs.argmax(-1)) and not probs.requires_grad
    assert [o.shape for o in mlp.hidden_outputs(x)] == [(5, 30), (5, 20)]
    assert MLP(784, 8, 1)(x).shape == (5,)


def test_mlp_is_built_only_from_nnref_layers():
    from torch import nn

    import nnref.layers as L

    mlp = MLP(10, (8, 6), 3, "tanh")
    for m in mlp.modules():
        assert not isinstance(m, (nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softmax))
    kinds = [type(m) for m in mlp.layers]
    assert kinds == [L.Linear, L.Tanh, L.Linear, L.Tanh, L.Linear]


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(hidden=(0,)), "hidden must be positive layer sizes"),
        (dict(hidden=(3, True)), "hidden must be positive layer sizes"),
        (dict(activation="gelu"), "activation must be one of"),
    ],
)
def test_mlp_rejects_bad_configuration(bad, message):
    kwargs = dict(in_features=4, hidden=(3,), num_classes=2, activation="relu") | bad
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)


def test_an_mlp_without_hidden_layers_is_softmax_or_logistic_regression():
    """The lab's network with every hidden layer removed: the same function, parameter for parameter."""
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    for classes, twin in ((3, SoftmaxRegression(4, 3)), (1, LogisticRegression(4))):
        mlp = MLP(4, (), classes)
        twin.linear.load_state_dict(mlp.layers[0].state_dict())
        torch.testing.assert_close(mlp(x), twin(x))
        assert mlp.hidden_outputs(x) == []


def test_fused_and_unfused_losses_agree():
    torch.manual_seed(0)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    model = SoftmaxRegression(6, 3)
    z = model(x)
    torch.testing.assert_close(model.loss(z, y, fused=True), model.loss(z, y, fused=False))
    lr = LogisticRegression(6)
    t = torch.randint(0, 2, (8,))
    torch.testing.assert_close(lr.loss(lr(x), t, fused=True), lr.loss(lr(x), t, fused=False))


def test_models_train_with_nnref_functions_only():
    """A few SGD steps on separable data drive the loss down for every parametric model."""
    torch.manual_seed(0)
    X = torch.randn(64, 5)
    y = (X[:, 0] + X[:, 1] > 0).long()
    for model in (LogisticRegression(5), SoftmaxRegression(5, 2), MLP(5, (8,), 2, "tanh"), MLP(5, 8, 1)):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        first = float(model.loss(model(X), y).detach())
        for _ in range(50):
            opt.zero_grad()
            model.loss(model(X), y).backward()
            opt.step()
        assert float(model.loss(model(X), y).detach()) < first / 2, type(model).__name__
        # the default (fused) loss is nnref's own Function
        assert type(model.loss(model(X), y).grad_fn).__name__ in (
            F.SoftmaxCrossEntropyFunction.__name__ + "Backward",
            F.SigmoidBinaryCrossEntropyFunction.__name__ + "Backward",
        )


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(784),
        lambda: SoftmaxRegression(784, 10),
        lambda: MLP(784, (64, 32), 10),
        lambda: MLP(784, 48, 10, "tanh"),
    ],
)
def test_each_model_under_cpu_autocast_matches_its_builtin_twin(make):
    """bfloat16 autocast on the CPU: same logits dtype, values, float32 loss and float32 gradients as the same
    network of torch.nn layers under the same autocast, within bfloat16's tolerance."""
    import torch.nn.functional as TF

    from nnref.bench.twins import builtin_twin

    torch.manual_seed(0)
    model = make()
    twin = builtin_twin(model)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 784, generator=g)
    y = torch.randint(0, 2, (32,), generator=g).float() if model.binary else torch.randint(0, 10, (32,), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, ref = model(x), twin(x).squeeze(-1) if model.binary else twin(x)
        loss_ours = model.loss(ours, y)
        loss_ref = TF.binary_cross_entropy_with_logits(ref, y) if model.binary else TF.cross_entropy(ref, y)
    assert ours.dtype == ref.dtype == torch.bfloat16 and loss_ours.dtype == loss_ref.dtype == torch.float32
    torch.testing.assert_close(ours.float(), ref.float(), rtol=3e-2, atol=3e-2)
    torch.testing.assert_close(loss_ours, loss_ref, rtol=2e-2, atol=2e-2)
    loss_ours.backward()
    loss_ref.backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert p.grad.dtype == q.grad.dtype == torch.float32
        torch.testing.assert_close(p.grad.view_as(q.grad), q.grad, rtol=5e-2, atol=5e-3)
