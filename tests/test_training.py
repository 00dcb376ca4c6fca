"""nnref.training: the lecture's training step, and the one rule of when training has diverged."""

from __future__ import annotations

import math

import pytest
import torch

from nnref.models import MLP, SoftmaxRegression
from nnref.training import AMP_DTYPES, EagerStep, diverged, finite, forward_loss_of


def test_eager_step_fills_fresh_gradients_each_call():
    torch.manual_seed(0)
    model = MLP(6, 5, 3)
    step = EagerStep(forward_loss_of(model), list(model.parameters()))
    x, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 1])
    step(x, y)
    first = [p.grad.clone() for p in model.parameters()]
    step(x, y)  # not accumulated: the same gradients again
    for a, p in zip(first, model.parameters()):
        assert torch.equal(a, p.grad)


def test_an_eager_step_then_the_update_is_one_step_of_gradient_descent():
    torch.manual_seed(0)
    model = SoftmaxRegression(6, 3)
    before = [p.detach().clone() for p in model.parameters()]
    step = EagerStep(forward_loss_of(model), list(model.parameters()))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss, logits = step(torch.randn(8, 6), torch.randint(0, 3, (8,)))
    assert logits.shape == (8, 3) and loss.dim() == 0
    step.update(optimizer)
    for b, p in zip(before, model.parameters()):
        torch.testing.assert_close(p.detach(), b - 0.5 * p.grad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_training_has_diverged_when_the_loss_a_gradient_or_a_weight_is_not_finite(bad):
    good = [torch.ones(3, 2), torch.zeros(4)]
    assert not diverged(torch.tensor(0.3), good) and bool(finite(torch.tensor(0.3), good))
    assert diverged(torch.tensor(bad), good)  # the loss
    assert diverged(torch.tensor([0.3, bad]))  # one loss of several (the lab's models, a per-row loss)
    assert diverged(torch.tensor(0.3), [torch.ones(3, 2), torch.tensor([0.0, bad, 1.0, 2.0])])  # one weight
    assert finite(torch.tensor(bad)).dim() == 0  # a flag that stays on the device until it is read


def test_the_amp_choices_name_their_dtypes():
    assert AMP_DTYPES == {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
