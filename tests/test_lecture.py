"""The lecture's worked examples, reproduced with nnref's Functions."""

from __future__ import annotations

import math

import pytest
import torch

import nnref.functional as F
from nnref.models import LogisticRegression

D = torch.float64


def likelihood(observed: str, A: float) -> float:
    """Likelihood of a coin-toss sequence ('H'/'T') under Pr(H) = A, via nnref's binary cross-entropy:
    −log-likelihood = Σ −y log a − (1−y) log(1−a) with y = 1 for heads and a = A for every toss."""
    y = torch.tensor([1.0 if c == "H" else 0.0 for c in observed], dtype=D)
    a = torch.full_like(y, A)
    return math.exp(-float(F.binary_cross_entropy(a, y, reduction="sum")))


@pytest.mark.parametrize("observed,fair,biased", [("TH", 0.25, 0.16), ("THH", 0.125, 0.128), ("THHH", 0.0625, 0.1024)])
def test_coin_likelihoods(observed, fair, biased):
    assert likelihood(observed, 0.5) == pytest.approx(fair, abs=1e-12)
    assert likelihood(observed, 0.8) == pytest.approx(biased, abs=1e-12)


def test_coin_likelihood_ranking_flips_with_more_heads():
    # one head: the fair coin explains T,H better; two and three heads: the biased coin wins
    assert likelihood("TH", 0.5) > likelihood("TH", 0.8)
    assert likelihood("THH", 0.8) > likelihood("THH", 0.5)


def test_twenty_heads_negative_log_likelihood():
    y = torch.ones(20, dtype=D)
    nll_fair = F.binary_cross_entropy(torch.full_like(y, 0.5), y, reduction="sum")
    nll_biased = F.binary_cross_entropy(torch.full_like(y, 0.8), y, reduction="sum")
    assert float(nll_fair) == pytest.approx(13.8629436, abs=5e-8)
    assert float(nll_biased) == pytest.approx(4.462871, abs=5e-7)


def test_single_instance_backward_chain_rule():
    """dL/da = −1.9 and da/dz = 0.24 with x_1 = 0.5, x_p = 0.6: dL/dw = dL/da · da/dz · x, dL/db = dL/da · da/dz."""
    x = torch.tensor([[0.5, 0.6]], dtype=D)
    w = torch.zeros(1, 2, dtype=D, requires_grad=True)
    b = torch.zeros(1, dtype=D, requires_grad=True)
    dL_dz = torch.tensor([[-1.9 * 0.24]], dtype=D)
    F.linear(x, w, b).backward(dL_dz)  # LinearFunction.backward: dL/dW = gᵀ x, dL/db = Σ g
    assert w.grad[0, 0].item() == pytest.approx(-0.228, abs=1e-12)
    assert w.grad[0, 1].item() == pytest.approx(-0.2736, abs=1e-12)  # the slide rounds to −0.27
    assert b.grad.item() == pytest.approx(-0.456, abs=1e-12)


def test_single_instance_end_to_end_through_the_functions():
    """y = 1 and σ(z) = 1/1.9: autograd through nnref reports dL/da = −1/a = −1.9 and da/dz = a(1 − a)."""
    a_target = 1 / 1.9
    z0 = math.log(a_target / (1 - a_target))
    x = torch.tensor([[0.5, 0.6]], dtype=D)
    w = torch.tensor([[0.0, 0.0]], dtype=D, requires_grad=True)
    b = torch.tensor([z0], dtype=D, requires_grad=True)
    z = F.linear(x, w, b).squeeze(-1)
    a = F.sigmoid(z)
    z.retain_grad()
    a.retain_grad()
    loss = F.binary_cross_entropy(a, torch.ones(1, dtype=D), reduction="sum")
    loss.backward()
    assert a.item() == pytest.approx(a_target, abs=1e-12)
    assert a.grad.item() == pytest.approx(-1.9, abs=1e-12)
    da_dz = z.grad.item() / a.grad.item()
    assert da_dz == pytest.approx(a_target * (1 - a_target), abs=1e-12)
    assert round(da_dz, 2) == 0.25  # the slide writes 0.24 (it truncates)
    assert w.grad[0, 0].item() == pytest.approx(-1.9 * da_dz * 0.5, abs=1e-12)
    assert w.grad[0, 1].item() == pytest.approx(-1.9 * da_dz * 0.6, abs=1e-12)
    assert b.grad.item() == pytest.approx(-1.9 * da_dz, abs=1e-12)


def test_threshold_neuron_truth_table_learned_by_sgd():
    """X1 X2 X3 → Y, the majority function, learned by a sigmoid neuron with per-instance SGD: 8/8."""
    table = [
        ((1, 0, 0), 0),
        ((1, 0, 1), 1),
        ((1, 1, 0), 1),
        ((1, 1, 1), 1),
        ((0, 0, 1), 0),
        ((0, 1, 0), 0),
        ((0, 1, 1), 1),
        ((0, 0, 0), 0),
    ]
    X = torch.tensor([r for r, _ in table], dtype=torch.float32)
    y = torch.tensor([t for _, t in table], dtype=torch.float32)
    torch.manual_seed(0)
    neuron = LogisticRegression(3)
    opt = torch.optim.SGD(neuron.parameters(), lr=0.5)
    first_loss = float(neuron.loss(neuron(X), y).detach())
    for _ in range(300):
        for i in range(8):  # batch size 1: the lecture's per-instance SGD
            opt.zero_grad()
            neuron.loss(neuron(X[i : i + 1]), y[i : i + 1]).backward()
            opt.step()
    pred = neuron.predictions(neuron(X))
    assert pred.tolist() == y.long().tolist()
    assert float(neuron.loss(neuron(X), y).detach()) < first_loss / 4
    # the neuron's line: all weights positive, bias negative — "fire when enough inputs are on"
    assert (neuron.linear.weight > 0).all() and neuron.linear.bias.item() < 0
