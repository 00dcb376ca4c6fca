"""nnref.steps: the eager step, and (on a GPU) the CUDA-graphed step that must compute the same thing."""

from __future__ import annotations

import pytest
import torch

from nnref.models import MLP
from nnref.steps import EagerStep, GraphedStep, make_step

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _forward_loss(model):
    def fl(x, y):
        z = model(x)
        return model.loss(z, y), z
    return fl


def test_eager_step_fills_fresh_gradients_each_call():
    torch.manual_seed(0)
    model = MLP(6, 5, 3)
    step = EagerStep(_forward_loss(model), list(model.parameters()))
    x, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 1])
    step(x, y)
    first = [p.grad.clone() for p in model.parameters()]
    step(x, y)  # not accumulated: the same gradients again
    for a, p in zip(first, model.parameters()):
        assert torch.equal(a, p.grad)


def test_graphed_step_refuses_cpu_tensors():
    model = MLP(6, 5, 3)
    with pytest.raises(ValueError, match="CUDA graphs need CUDA tensors"):
        GraphedStep(_forward_loss(model), list(model.parameters()), torch.randn(4, 6), torch.zeros(4, dtype=torch.long))
    assert isinstance(make_step(model, True, torch.randn(4, 6), torch.zeros(4, dtype=torch.long), True), EagerStep)


@cuda
def test_graphed_step_matches_eager_on_cuda():
    torch.manual_seed(0)
    a = MLP(20, (16, 8), 4).cuda()
    b = MLP(20, (16, 8), 4).cuda()
    b.load_state_dict(a.state_dict())
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 20, generator=g).cuda(), torch.randint(0, 4, (8,), generator=g).cuda()) for _ in range(5)]
    batches.append((torch.randn(3, 20, generator=g).cuda(), torch.randint(0, 4, (3,), generator=g).cuda()))  # short
    eager = EagerStep(_forward_loss(a), list(a.parameters()))
    graphed = GraphedStep(_forward_loss(b), list(b.parameters()), *batches[0])
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    for x, y in batches * 2:
        la, _ = eager(x, y)
        lb, _ = graphed(x, y)
        torch.testing.assert_close(la, lb)
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa.grad, pb.grad)
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


@cuda
def test_training_on_cuda_through_the_cli(tiny_mnist, tmp_path):
    from nnref.cli import main
    from nnref.train import load_checkpoint

    for graphs in ([], ["--no-cuda-graphs"]):
        name = "g" if not graphs else "e"
        assert main(["train", "mlp", "--device", "cuda", "--hidden", "32", "--epochs", "2", "--data-root",
                     str(tiny_mnist), "--no-download", "--val-size", "100", "--logdir", str(tmp_path), "--run-name",
                     name, "--quiet", *graphs]) == 0
    g, e = (load_checkpoint(tmp_path / n / "checkpoint.pt") for n in ("g", "e"))
    for k in g["model"]:
        torch.testing.assert_close(g["model"][k], e["model"][k], rtol=1e-4, atol=1e-5)
