"""nnref.models: the four models, KNN against scikit-learn."""

from __future__ import annotations

import pytest
import torch

import nnref.functional as F
from bad_inputs import KNN_CASES
from nnref.models import MLP, KNNClassifier, LogisticRegression, SoftmaxRegression


def test_shapes_and_probabilities():
    x = torch.randn(5, 784)
    lr, sm, mlp = LogisticRegression(784), SoftmaxRegression(784, 10), MLP(784, (30, 20), 10, "sigmoid")
    assert lr(x).shape == (5,) and lr.predict_proba(x).shape == (5,)
    assert sm(x).shape == (5, 10) and mlp(x).shape == (5, 10)
    torch.testing.assert_close(sm.predict_proba(x).sum(-1), torch.ones(5))
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


@pytest.mark.parametrize("bad", [dict(hidden=()), dict(hidden=(0,)), dict(activation="gelu")])
def test_mlp_rejects_bad_configuration(bad):
    kwargs = dict(in_features=4, hidden=(3,), num_classes=2, activation="relu") | bad
    with pytest.raises(ValueError):
        MLP(**kwargs)


def test_fused_and_unfused_losses_agree():
    torch.manual_seed(0)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    model = SoftmaxRegression(6, 3)
    z = model(x)
    torch.testing.assert_close(model.loss(z, y, fused=True), model.loss(z, y, fused=False))
    lr = LogisticRegression(6)
    t = torch.randint(0, 2, (8,))
    torch.testing.assert_close(lr.loss(lr(x), t, fused=True), lr.loss(lr(x), t, fused=False))


# --------------------------------------------------------------------------------------------------
# KNN
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_knn_agrees_with_scikit_learn_brute(metric, k):
    sk = pytest.importorskip("sklearn.neighbors")
    g = torch.Generator().manual_seed(k)
    X, y = torch.randn(300, 12, generator=g), torch.randint(0, 4, (300,), generator=g)
    Q = torch.randn(150, 12, generator=g)
    ours = KNNClassifier(k, metric, chunk_size=32).fit(X, y).predict(Q)
    ref = sk.KNeighborsClassifier(k, algorithm="brute", metric=metric).fit(X.numpy(), y.numpy()).predict(Q.numpy())
    assert ours.tolist() == ref.tolist()


def test_knn_neighbours_are_the_true_nearest():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(200, 5, generator=g), torch.randint(0, 3, (200,), generator=g)
    Q = torch.randn(20, 5, generator=g)
    d, idx = KNNClassifier(5, chunk_size=7).fit(X, y).kneighbors(Q)
    ref = torch.cdist(Q.double(), X.double()) ** 2
    exp_d, exp_idx = ref.topk(5, largest=False)
    assert idx.tolist() == exp_idx.tolist()
    torch.testing.assert_close(d, exp_d)


def test_knn_tie_rules_are_deterministic():
    # two records at exactly the same distance: the earlier record wins the neighbour slot
    X = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 5.0]])
    y = torch.tensor([2, 1, 0])
    knn = KNNClassifier(1).fit(X, y)
    assert knn.kneighbors(torch.zeros(1, 2))[1].tolist() == [[0]]
    # a 1-1 vote between classes 2 and 1: the smaller label wins (scikit-learn's rule)
    assert KNNClassifier(2).fit(X, y).predict(torch.zeros(1, 2)).tolist() == [1]
    torch.testing.assert_close(KNNClassifier(2).fit(X, y).predict_proba(torch.zeros(1, 2)),
                               torch.tensor([[0.0, 0.5, 0.5]]))


def test_knn_chunking_does_not_change_predictions():
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(500, 8, generator=g), torch.randint(0, 5, (500,), generator=g)
    Q = torch.randn(97, 8, generator=g)
    a = KNNClassifier(3, chunk_size=1).fit(X, y).predict(Q)
    b = KNNClassifier(3, chunk_size=10_000).fit(X, y).predict(Q)
    assert torch.equal(a, b)
    for block in (1, 7, 64, 499, 10_000):  # the records are searched block by block: the blocks change nothing
        d, i = KNNClassifier(3, chunk_size=16, block_size=block).fit(X, y).kneighbors(Q)
        d0, i0 = KNNClassifier(3).fit(X, y).kneighbors(Q)
        assert torch.equal(i, i0) and torch.equal(d, d0), block


def test_knn_memory_is_the_training_set():
    X, y = torch.randn(100, 10), torch.randint(0, 2, (100,))
    knn = KNNClassifier(3).fit(X, y)
    assert knn.memory_bytes() >= X.numel() * 4


@pytest.mark.parametrize("call,exc,pattern", KNN_CASES)
def test_knn_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_knn_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(2)
    X, y, Q = torch.randn(400, 16, generator=g), torch.randint(0, 4, (400,), generator=g), torch.randn(50, 16, generator=g)
    cpu = KNNClassifier(3).fit(X, y).predict(Q)
    gpu = KNNClassifier(3).fit(X.cuda(), y.cuda()).predict(Q.cuda())
    assert torch.equal(cpu, gpu.cpu())


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
            F.SoftmaxCrossEntropyFunction.__name__ + "Backward", F.SigmoidBinaryCrossEntropyFunction.__name__ + "Backward")


@pytest.mark.parametrize("make", [lambda: LogisticRegression(784), lambda: SoftmaxRegression(784, 10),
                                  lambda: MLP(784, (64, 32), 10), lambda: MLP(784, 48, 10, "tanh")])
def test_each_model_under_cpu_autocast_matches_its_builtin_twin(make):
    """bfloat16 autocast on the CPU: same logits dtype, values, float32 loss and float32 gradients as the same
    network of torch.nn layers under the same autocast, within bfloat16's tolerance."""
    import torch.nn.functional as TF

    from nnref.bench import builtin_twin

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
