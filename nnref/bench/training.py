"""Training: whole SGD steps (eager, compiled, on CUDA graphed), the data path, and time to an accuracy target
— nnref's models against the same networks made of ``torch.nn`` layers, same weights, same batches."""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as TF

from .. import functional as F
from ..data import MEAN, STD, make_loader
from ..fast.steps import build_step
from ..models import MLP, SoftmaxRegression
from ..training import forward_loss_of
from .core import Context, row, seconds_per_call, section, side_by_side, sync
from .twins import builtin_twin

__all__ = [
    "Stepper",
    "PlainLoop",
    "bench_train_steps",
    "bench_compile",
    "bench_loader",
    "Recipe",
    "RECIPES",
    "bench_time_to_accuracy",
]


class Stepper:
    """One SGD step on the next batch of a fixed list, through nnref's training step (:mod:`nnref.training`):
    forward, loss, backward (eager, compiled or replayed from a CUDA graph, in float32 or under autocast),
    update."""

    def __init__(
        self,
        model,
        loss_fn,
        batches,
        lr=0.05,
        momentum=0.9,
        graphed: bool = False,
        compiled: bool = False,
        amp: str = "off",
        mode: str | None = None,
    ):
        self.batches, self.i = batches, 0
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        fl = forward_loss_of(model, amp=amp, graphed=graphed, loss_fn=loss_fn)
        self.step = build_step(
            fl, model.parameters(), *batches[0], cuda_graphs=graphed, compile=compiled, amp=amp, compile_mode=mode
        )

    def __call__(self):
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        loss, _ = self.step(x, y)
        self.step.update(self.opt)
        return loss


class PlainLoop:
    """The loop a user writes: ``zero_grad``, forward, loss, ``backward()``, ``optimizer.step()`` — no step
    object, no autocast context — on the next batch of a fixed list."""

    def __init__(self, model, loss_fn, batches, lr=0.05, momentum=0.9):
        self.model, self.loss_fn, self.batches, self.i = model, loss_fn, batches, 0
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def __call__(self):
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss


def _model_twin_batches(make, data, bs: int, device):
    """An nnref model (seed 0), its torch.nn twin with the same weights, and 32 random batches of ``bs``
    training rows: what every step comparison runs on."""
    torch.manual_seed(0)
    model = make().to(device)
    twin = builtin_twin(model).to(device)
    g = torch.Generator().manual_seed(0)
    idx = [torch.randint(0, data.train_x.shape[0], (bs,), generator=g).to(device) for _ in range(32)]
    return model, twin, [(data.train_x[i], data.train_y[i]) for i in idx]


@section("steps")
def steps_section(ctx: Context) -> list[dict]:
    """A whole SGD step (momentum 0.9) of softmax regression and the 784-800-10 MLP at batch 1, 128 and 512
    against the same networks of torch.nn layers — through nnref's step object (value checks on, as ``nnref train``
    runs on a CPU) and, on a CPU, as the plain loop a user writes; on CUDA also replayed from a CUDA graph, and
    under autocast."""
    return bench_train_steps(ctx.data, ctx.device, ctx.profile.step_batches, ctx.profile.repeats)


def bench_train_steps(data, device, batch_sizes=(1, 128, 512), repeats: int = 7) -> list[dict]:
    """A whole SGD step of nnref models against the same networks of torch.nn layers, with the same initial
    weights and batches.  On CUDA also with the forward+backward replayed from a CUDA graph — nnref's graphed
    step against the built-in eager step (what a user of each gets from nnref's trainer and from a plain loop)
    and against the built-in graphed the same way."""
    rows = []
    for name, make in (
        ("softmax regression", lambda: SoftmaxRegression(784, 10)),
        ("MLP 784-800-10", lambda: MLP(784, 800, 10)),
    ):
        for bs in batch_sizes:
            model, twin, batches = _model_twin_batches(make, data, bs, device)
            number = 50 if bs == 1 else 10 if device.type == "cpu" else 50
            with F.value_checks(device.type == "cpu"):
                ours = Stepper(model, F.softmax_cross_entropy, batches)
                ref = Stepper(twin, TF.cross_entropy, batches)
                t_ours, t_ref = side_by_side(ours, ref, device, number=number, repeats=repeats)
                rows.append(row(f"train step {name}, batch {bs}", t_ours, t_ref))
                if device.type == "cpu" and bs > 1:  # the same step as a plain loop: the two must agree
                    ours, ref = (
                        PlainLoop(model, F.softmax_cross_entropy, batches),
                        PlainLoop(twin, TF.cross_entropy, batches),
                    )
                    t_ours, t_ref = side_by_side(ours, ref, device, number=number, repeats=repeats)
                    rows.append(row(f"train step {name}, batch {bs}: a plain loop", t_ours, t_ref))
                if device.type == "cuda":
                    rows += _cuda_step_rows(model, twin, batches, ref, name, bs, number, repeats)
    return rows


def _cuda_step_rows(model, twin, batches, ref_eager, name, bs, number, repeats) -> list[dict]:
    """On a GPU: nnref's graphed step against the built-in eager one and the built-in graphed the same way,
    and with autocast (bf16, fp16).  Each side gets its own copy of the weights: an eager step resets .grad,
    which a graph's static gradients must keep."""
    device, rows = batches[0][0].device, []
    for amp in ("off", "bf16", "fp16"):
        ours = Stepper(copy.deepcopy(model), F.softmax_cross_entropy, batches, graphed=True, amp=amp)
        ref = Stepper(copy.deepcopy(twin), TF.cross_entropy, batches, graphed=True, amp=amp)
        how = "" if amp == "off" else f", autocast {amp}"
        if amp == "off":
            t_o, t_r = side_by_side(ours, ref_eager, device, number=number, repeats=repeats)
            rows.append(row(f"train step {name}, batch {bs}: nnref CUDA graph vs built-in eager", t_o, t_r))
        t_o, t_r = side_by_side(ours, ref, device, number=number, repeats=repeats)
        rows.append(row(f"train step {name}, batch {bs}{how}: both CUDA graph", t_o, t_r))
    return rows


@section("compile")
def compile_section(ctx: Context) -> list[dict]:
    """The MLP step with forward and loss through torch.compile (backward: AOTAutograd from nnref's hand-written
    formulas): compiled nnref against the built-in eager and the built-in compiled; on CUDA also nnref's CUDA
    graph against mode="reduce-overhead", to choose how nnref train --compile runs there."""
    return bench_compile(
        ctx.data, ctx.device, ctx.profile.compile_batches, ctx.profile.repeats, ctx.profile.compile_hidden
    )


def bench_compile(data, device, batch_sizes=(128, 512), repeats: int = 7, hidden: int = 800) -> list[dict]:
    rows = []
    for bs in batch_sizes:
        model, twin, batches = _model_twin_batches(lambda: MLP(784, hidden, 10), data, bs, device)
        name = f"train step MLP 784-{hidden}-10, batch {bs}"
        number = 10 if device.type == "cpu" else 50
        graphed = device.type == "cuda"
        with F.value_checks(False):  # the data was validated once; the compiled graph keeps its own assertions
            ours = Stepper(copy.deepcopy(model), F.softmax_cross_entropy, batches, compiled=True, graphed=graphed)
            ref = Stepper(copy.deepcopy(twin), TF.cross_entropy, batches, compiled=True, graphed=graphed)
            ref_eager = Stepper(copy.deepcopy(twin), TF.cross_entropy, batches)
            how = " (both captured as CUDA graphs)" if graphed else ""
            t_o, t_r = side_by_side(ours, ref_eager, device, number=number, repeats=repeats)
            rows.append(row(f"{name}: nnref compiled{how} vs built-in eager", t_o, t_r))
            t_o, t_r = side_by_side(ours, ref, device, number=number, repeats=repeats)
            rows.append(row(f"{name}: both compiled{how}", t_o, t_r))
            if graphed:
                ro = Stepper(
                    copy.deepcopy(model), F.softmax_cross_entropy, batches, compiled=True, mode="reduce-overhead"
                )
                t_o, t_r = side_by_side(ours, ro, device, number=number, repeats=repeats)
                rows.append(row(f"{name}: nnref compiled + nnref's CUDA graph vs compiled reduce-overhead", t_o, t_r))
    return rows


@section("loader")
def loader_section(ctx: Context) -> list[dict]:
    """One epoch of nnref's tensor-resident loader against torchvision's DataLoader with ToTensor per sample,
    and as a share of a softmax-regression training epoch."""
    return bench_loader(ctx.data, ctx.root, ctx.device, ctx.profile.loader_repeats)


def bench_loader(data, root, device, repeats: int = 3, batch_size: int = 128) -> list[dict]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    loader = make_loader(data.train_x, data.train_y, batch_size)
    tv = datasets.MNIST(
        str(root),
        train=True,
        download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))]),
    )
    tv_loader = DataLoader(tv, batch_size=batch_size, shuffle=True)

    def epoch(ld):
        for xb, yb in ld:
            if device.type == "cuda" and xb.device.type != "cuda":
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)

    ours, ref = side_by_side(
        lambda: epoch(loader), lambda: epoch(tv_loader), device, number=1, repeats=repeats, warmup=1
    )
    # a softmax-regression training epoch with the same loader (the figure the loader is measured against)
    torch.manual_seed(0)
    stepper = Stepper(
        SoftmaxRegression(784, 10).to(device),
        None,
        [(data.train_x[:batch_size], data.train_y[:batch_size])],
        lr=0.05,
        momentum=0.0,
    )

    def train_epoch():
        for xb, yb in loader:
            stepper.step(xb, yb)
            stepper.step.update(stepper.opt)

    train_t = statistics.median(seconds_per_call(train_epoch, device, 1) for _ in range(repeats))
    return [
        row(f"loader epoch, batch {batch_size}: nnref vs DataLoader+ToTensor", ours, ref),
        {
            "name": f"loader epoch as share of a softmax-regression training epoch ({train_t * 1e3:.0f} ms)",
            "nnref": ours * 1e3,
            "reference": train_t * 1e3,
            "unit": "ms",
            "ratio": ours / train_t,
        },
    ]


# --------------------------------------------------------------------------------------------------
@dataclass
class Recipe:
    """A training recipe run to a test-accuracy target (evaluation every ``every`` steps, not timed)."""

    name: str
    make: object
    target: float
    lr: float
    momentum: float
    batch_size: int
    every: int
    nesterov: bool = False

    def describe(self) -> str:
        nesterov = " Nesterov" if self.nesterov else ""
        return f"SGD lr {self.lr}, momentum {self.momentum}{nesterov}, batch {self.batch_size}"


#: The MLP with the README's default recipe, with a faster one (larger batch, Nesterov, measured over seeds
#: to reach 98.0% in fewer steps), and softmax regression.
RECIPES = (
    Recipe("MLP 784-800-10 to 98.0%", lambda: MLP(784, 800, 10), 0.98, 0.05, 0.9, 128, 100),
    Recipe("MLP 784-800-10 to 98.0%, fast recipe", lambda: MLP(784, 800, 10), 0.98, 0.15, 0.9, 512, 25, nesterov=True),
    Recipe("softmax regression to 92.0%", lambda: SoftmaxRegression(784, 10), 0.92, 0.05, 0.0, 64, 100),
)


def _time_to(
    model, loss_fn, data, recipe: Recipe, max_epochs: int, device, step_options: dict
) -> tuple[float, float, int]:
    """Training seconds (evaluation excluded) until test accuracy ≥ target: (seconds, accuracy, steps)."""
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    loader = make_loader(data.train_x, data.train_y, recipe.batch_size, seed=0)
    example = (data.train_x[: recipe.batch_size], data.train_y[: recipe.batch_size])
    sync(device)
    t = time.perf_counter()  # building the step (compiling, capturing a graph) counts as training time
    step = build_step(
        forward_loss_of(
            model, loss_fn=loss_fn, graphed=step_options.get("cuda_graphs", False), amp=step_options.get("amp", "off")
        ),
        params,
        *example,
        **step_options,
    )
    spent, steps, acc = 0.0, 0, 0.0
    for _ in range(max_epochs):
        for xb, yb in loader:
            step(xb, yb)
            step.update(opt)
            steps += 1
            if steps % recipe.every:
                continue
            sync(device)
            spent += time.perf_counter() - t
            with torch.no_grad():
                acc = float((model(data.test_x).argmax(-1) == data.test_y).float().mean())
            if acc >= recipe.target:
                return spent, acc, steps
            sync(device)
            t = time.perf_counter()
    return float("inf"), acc, steps


@section("accuracy")
def accuracy_section(ctx: Context) -> list[dict]:
    """Wall time of training (evaluation excluded) until a test-accuracy target — the MLP to 98.0% with the
    default and a fast recipe, softmax regression to 92.0% — nnref beside the same recipe with built-in layers,
    the sides alternating (medians)."""
    return bench_time_to_accuracy(ctx.data, ctx.device, ctx.profile.accuracy_epochs, ctx.profile.accuracy_repeats)


def bench_time_to_accuracy(
    data, device, max_epochs: int = 10, repeats: int = 3, recipes=RECIPES, variants=None
) -> list[dict]:
    """``variants``: how each side runs its steps — on a CPU eager, on CUDA with CUDA graphs (and autocast)."""
    if variants is None:
        variants = (
            {"eager": {}}
            if device.type == "cpu"
            else {
                "CUDA graph": {"cuda_graphs": True},
                "CUDA graph, autocast bf16": {"cuda_graphs": True, "amp": "bf16"},
            }
        )
    rows = []
    for recipe in recipes:
        for how, options in variants.items():
            runs = {"nnref": [], "reference": []}
            for _ in range(repeats):
                torch.manual_seed(0)
                model = recipe.make().to(device)
                twin = builtin_twin(model).to(device)
                with F.value_checks(device.type == "cpu"):
                    runs["nnref"].append(
                        _time_to(model, F.softmax_cross_entropy, data, recipe, max_epochs, device, options)
                    )
                    runs["reference"].append(
                        _time_to(twin, TF.cross_entropy, data, recipe, max_epochs, device, options)
                    )
            (t_o, acc_o, s_o), (t_r, acc_r, s_r) = (sorted(runs[k])[len(runs[k]) // 2] for k in ("nnref", "reference"))
            rows.append(
                row(
                    f"time to accuracy: {recipe.name} ({recipe.describe()}; both {how})",
                    t_o,
                    t_r,
                    unit="s",
                    scale=1.0,
                    steps_nnref=s_o,
                    steps_reference=s_r,
                    accuracy_nnref=acc_o,
                    accuracy_reference=acc_r,
                    repeats=repeats,
                    seconds_nnref=[r[0] for r in runs["nnref"]],
                    seconds_reference=[r[0] for r in runs["reference"]],
                )
            )
    return rows
