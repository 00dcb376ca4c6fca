"""``nnref bench``: nnref against PyTorch's built-ins (and scikit-learn), side by side in one process.

Every comparison alternates the two sides over several repetitions and reports medians and the ratio
nnref / reference (below 1 means nnref is faster).  Output: a markdown table on stdout, JSON (and the
cost-claim plot as PNG and in TensorBoard) under ``runs/bench/``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as TF
from torch import nn

from . import functional as F
from .data import MEAN, STD, load_splits, make_loader, resolve_root
from .models import MLP, KNNClassifier, SoftmaxRegression
from .steps import EagerStep, build_step, forward_loss_of

__all__ = ["SECTIONS", "run_bench", "bench_functions", "bench_train_steps", "bench_loader", "bench_knn",
           "bench_time_to_accuracy", "bench_cost", "builtin_twin", "side_by_side"]

#: The sections of ``nnref bench``, in the order they run.
SECTIONS = ("floor", "functions", "steps", "compile", "loader", "knn", "accuracy", "cost", "distributed")


# --------------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, number: int) -> float:
    """Seconds per call of fn, averaged over ``number`` back-to-back calls."""
    _sync(device)
    t = time.perf_counter()
    for _ in range(number):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / number


def side_by_side(a, b, device, number: int = 20, repeats: int = 7, warmup: int = 3) -> tuple[float, float]:
    """Median seconds per call of a and of b, alternating a, b, a, b … for ``repeats`` rounds."""
    times = interleaved({"a": a, "b": b}, device, number, repeats, warmup)
    return times["a"], times["b"]


def interleaved(cases: dict, device, number: int = 20, repeats: int = 7, warmup: int = 3) -> dict:
    """Median seconds per call of each case, the cases taking turns (a, b, c, a, b, c …) for ``repeats``
    rounds, so that a machine whose speed drifts treats every side alike."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times: dict = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(_time(fn, device, number))
    return {name: statistics.median(t) for name, t in times.items()}


def _row(name, t_nnref, t_ref, unit="ms", scale=1e3, **extra) -> dict:
    return {"name": name, "nnref": t_nnref * scale, "reference": t_ref * scale, "unit": unit,
            "ratio": t_nnref / t_ref if t_ref else float("nan"), **extra}


# --------------------------------------------------------------------------------------------------
# 1a. Functions vs built-ins
# --------------------------------------------------------------------------------------------------
def bench_functions(device, n: int = 512, p: int = 784, c: int = 800, repeats: int = 7) -> list[dict]:
    """Forward + backward of each Function against its built-in twin (float32)."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape, low=None):
        t = torch.randn(*shape, generator=g).to(device)
        return t

    x, W, b = rand(n, p), rand(c, p) * 0.03, rand(c)
    z = rand(n, c)
    z10 = rand(n, 10)
    y10 = torch.randint(0, 10, (n,), generator=g).to(device)
    probs10 = torch.softmax(z10, -1)
    a = torch.rand(n, generator=g).to(device) * 0.98 + 0.01
    t = torch.rand(n, generator=g).to(device)
    zb = rand(n)
    cases = [
        ("linear (512×784 → 800)", lambda x, W, b: F.linear(x, W, b), lambda x, W, b: TF.linear(x, W, b), (x, W, b)),
        ("sigmoid (512×800)", F.sigmoid, torch.sigmoid, (z,)),
        ("softmax (512×800)", F.softmax, lambda z: torch.softmax(z, -1), (z,)),
        ("relu (512×800)", F.relu, torch.relu, (z,)),
        ("tanh (512×800)", F.tanh, torch.tanh, (z,)),
        ("cross_entropy (512×10)", lambda p: F.cross_entropy(p, y10), lambda p: TF.nll_loss(torch.log(p), y10),
         (probs10,)),
        ("binary_cross_entropy (512)", lambda a: F.binary_cross_entropy(a, t), lambda a: TF.binary_cross_entropy(a, t),
         (a,)),
        ("softmax_cross_entropy (512×10)", lambda z: F.softmax_cross_entropy(z, y10),
         lambda z: TF.cross_entropy(z, y10), (z10,)),
        ("sigmoid_binary_cross_entropy (512)", lambda z: F.sigmoid_binary_cross_entropy(z, t),
         lambda z: TF.binary_cross_entropy_with_logits(z, t), (zb,)),
    ]
    rows = []
    for name, ours, ref, inputs in cases:
        inputs = [i.detach().clone().requires_grad_() for i in inputs]

        def run(fn, inputs=inputs):
            out = fn(*inputs)
            out.backward(torch.ones_like(out))

        t_ours, t_ref = side_by_side(lambda: run(ours), lambda: run(ref), device, number=20, repeats=repeats)
        rows.append(_row(f"fwd+bwd {name}", t_ours, t_ref, unit="µs", scale=1e6))
    return rows


# --------------------------------------------------------------------------------------------------
# 1b. The floor: what an autograd.Function costs before it computes anything
# --------------------------------------------------------------------------------------------------
class _IdentityOld(torch.autograd.Function):
    """The cheapest custom Function: the old ``forward(ctx, …)`` form (no vmap, no torch.func)."""

    @staticmethod
    def forward(ctx, z):
        return z.view_as(z)

    @staticmethod
    def backward(ctx, g):
        return g


class _IdentityNnref(F._Function):
    """The identity in nnref's own form: setup_context, vmap rule, autocast policy, compile-traceable."""

    @staticmethod
    def forward(z):
        return z.view_as(z)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g


def bench_floor(device, repeats: int = 15, number: int = 200) -> list[dict]:
    """Forward + backward of each Function on a (1, 10) tensor — where the fixed costs show — beside its
    built-in twin and beside the floor: the identity Function in nnref's form (which supports vmap, compile
    and autocast) and in the cheapest form PyTorch has.  ``above_floor_us`` is what a Function costs beyond
    the identity in nnref's form: its own kernels and checks."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 10, generator=g).to(device).requires_grad_()
    W = torch.randn(10, 10, generator=g).to(device).requires_grad_()
    b = torch.randn(10, generator=g).to(device).requires_grad_()
    y, t = torch.tensor([3], device=device), torch.rand(1, 10, generator=g).to(device)
    a = torch.rand(1, 10, generator=g).to(device).mul(0.9).add(0.05).requires_grad_()
    p = torch.softmax(torch.randn(1, 10, generator=g), -1).to(device).requires_grad_()
    pairs = {
        "linear": (lambda: F.linear(z, W, b), lambda: TF.linear(z, W, b)),
        "sigmoid": (lambda: F.sigmoid(z), lambda: torch.sigmoid(z)),
        "softmax": (lambda: F.softmax(z), lambda: torch.softmax(z, -1)),
        "relu": (lambda: F.relu(z), lambda: torch.relu(z)),
        "tanh": (lambda: F.tanh(z), lambda: torch.tanh(z)),
        "cross_entropy": (lambda: F.cross_entropy(p, y), lambda: TF.nll_loss(torch.log(p), y)),
        "binary_cross_entropy": (lambda: F.binary_cross_entropy(a, t), lambda: TF.binary_cross_entropy(a, t)),
        "softmax_cross_entropy": (lambda: F.softmax_cross_entropy(z, y), lambda: TF.cross_entropy(z, y)),
        "sigmoid_binary_cross_entropy": (lambda: F.sigmoid_binary_cross_entropy(z, t),
                                         lambda: TF.binary_cross_entropy_with_logits(z, t)),
    }

    def fwd_bwd(fn):
        return lambda: fn().sum().backward()

    cases = {"autograd alone": fwd_bwd(lambda: z * 1), "identity, forward(ctx) form": fwd_bwd(lambda: _IdentityOld
             .apply(z)), "identity, nnref's form": fwd_bwd(lambda: _IdentityNnref.apply(z))}
    for name, (ours, ref) in pairs.items():
        cases[f"nnref {name}"], cases[f"built-in {name}"] = fwd_bwd(ours), fwd_bwd(ref)
    us = {k: v * 1e6 for k, v in interleaved(cases, device, number=number, repeats=repeats).items()}
    floor = us["identity, nnref's form"]
    rows = [_row("floor: identity Function, nnref's form vs forward(ctx) form (1×10, fwd+bwd)", floor / 1e6,
                 us["identity, forward(ctx) form"] / 1e6, unit="µs", scale=1e6, autograd_alone_us=us["autograd alone"])]
    for name in pairs:
        ours = us[f"nnref {name}"]
        rows.append(_row(f"floor: fwd+bwd {name} (1×10) vs built-in", ours / 1e6, us[f"built-in {name}"] / 1e6,
                         unit="µs", scale=1e6, above_floor_us=ours - floor,
                         beyond_builtin_and_floor_us=ours - us[f"built-in {name}"] - (floor - us["autograd alone"])))
    return rows


# --------------------------------------------------------------------------------------------------
# 1b. Whole training steps
# --------------------------------------------------------------------------------------------------
def builtin_twin(model: nn.Module) -> nn.Module:
    """The same network made of ``torch.nn`` layers, with the same weights."""
    from .layers import Linear, ReLU, Sigmoid, Tanh

    if isinstance(model, MLP):
        layers = []
        for layer in model.layers:
            if isinstance(layer, Linear):
                lin = nn.Linear(layer.in_features, layer.out_features)
                lin.load_state_dict(layer.state_dict())
                layers.append(lin)
            else:
                layers.append({ReLU: nn.ReLU, Sigmoid: nn.Sigmoid, Tanh: nn.Tanh}[type(layer)]())
        return nn.Sequential(*layers)
    lin = nn.Linear(model.linear.in_features, model.linear.out_features)
    lin.load_state_dict(model.linear.state_dict())
    return lin


class _Stepper:
    """One SGD step on the next batch of a fixed list: forward, loss, backward (eager, compiled or replayed
    from a CUDA graph, in float32 or under autocast), update."""

    def __init__(self, model, loss_fn, batches, lr=0.05, momentum=0.9, graphed: bool = False,
                 compiled: bool = False, amp: str = "off", mode: str | None = None):
        self.batches, self.i = batches, 0
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        fl = forward_loss_of(model, amp=amp, graphed=graphed, loss_fn=loss_fn)
        self.step = build_step(fl, model.parameters(), *batches[0], cuda_graphs=graphed, compile=compiled, amp=amp,
                               compile_mode=mode)

    def __call__(self):
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        loss, _ = self.step(x, y)
        self.step.update(self.opt)
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


def bench_train_steps(data, device, batch_sizes=(1, 128, 512), repeats: int = 7) -> list[dict]:
    """A whole SGD step (momentum 0.9) of nnref models against the same networks of torch.nn layers, with
    the same initial weights and batches.  On CUDA also with the forward+backward replayed from a CUDA
    graph — nnref's graphed step against the built-in eager step (what a user of each gets from nnref's
    trainer and from a plain loop) and against the built-in graphed the same way."""
    rows = []
    for kind in ("softmax", "mlp"):
        for bs in batch_sizes:
            make = (lambda: SoftmaxRegression(784, 10)) if kind == "softmax" else (lambda: MLP(784, 800, 10))
            model, twin, batches = _model_twin_batches(make, data, bs, device)
            name = "softmax regression" if kind == "softmax" else "MLP 784-800-10"
            number = 50 if bs == 1 else 10 if device.type == "cpu" else 50
            with F.value_checks(device.type == "cpu"):
                ours = _Stepper(model, F.softmax_cross_entropy, batches)
                ref = _Stepper(twin, TF.cross_entropy, batches)
                t_ours, t_ref = side_by_side(ours, ref, device, number=number, repeats=repeats)
                rows.append(_row(f"train step {name}, batch {bs}", t_ours, t_ref))
                if device.type == "cuda":
                    rows += _cuda_step_rows(model, twin, batches, ref, name, bs, number, repeats)
    return rows


def _cuda_step_rows(model, twin, batches, ref_eager, name, bs, number, repeats) -> list[dict]:
    """On a GPU: nnref's graphed step against the built-in eager one and the built-in graphed the same way,
    and with autocast (bf16, fp16).  Each side gets its own copy of the weights: an eager step resets .grad,
    which a graph's static gradients must keep."""
    device, rows = batches[0][0].device, []
    for amp in ("off", "bf16", "fp16"):
        ours = _Stepper(copy.deepcopy(model), F.softmax_cross_entropy, batches, graphed=True, amp=amp)
        ref = _Stepper(copy.deepcopy(twin), TF.cross_entropy, batches, graphed=True, amp=amp)
        how = "" if amp == "off" else f", autocast {amp}"
        if amp == "off":
            t_o, t_r = side_by_side(ours, ref_eager, device, number=number, repeats=repeats)
            rows.append(_row(f"train step {name}, batch {bs}: nnref CUDA graph vs built-in eager", t_o, t_r))
        t_o, t_r = side_by_side(ours, ref, device, number=number, repeats=repeats)
        rows.append(_row(f"train step {name}, batch {bs}{how}: both CUDA graph", t_o, t_r))
    return rows


def bench_compile(data, device, batch_sizes=(128, 512), repeats: int = 7, hidden: int = 800) -> list[dict]:
    """The MLP step with forward and loss through ``torch.compile`` (backward: AOTAutograd from nnref's
    hand-written formulas): compiled nnref against the built-in eager and the built-in compiled.  On CUDA
    also the compiled step captured in nnref's CUDA graph against ``mode="reduce-overhead"`` (CUDA graphs
    by torch.compile itself), to choose how ``nnref train --compile`` runs there."""
    rows = []
    for bs in batch_sizes:
        model, twin, batches = _model_twin_batches(lambda: MLP(784, hidden, 10), data, bs, device)
        name = f"train step MLP 784-{hidden}-10, batch {bs}"
        number = 10 if device.type == "cpu" else 50
        graphed = device.type == "cuda"
        with F.value_checks(False):  # the data was validated once; the compiled graph keeps its own assertions
            ours = _Stepper(copy.deepcopy(model), F.softmax_cross_entropy, batches, compiled=True, graphed=graphed)
            ref = _Stepper(copy.deepcopy(twin), TF.cross_entropy, batches, compiled=True, graphed=graphed)
            ref_eager = _Stepper(copy.deepcopy(twin), TF.cross_entropy, batches)
            how = " (both captured as CUDA graphs)" if graphed else ""
            t_o, t_r = side_by_side(ours, ref_eager, device, number=number, repeats=repeats)
            rows.append(_row(f"{name}: nnref compiled{how} vs built-in eager", t_o, t_r))
            t_o, t_r = side_by_side(ours, ref, device, number=number, repeats=repeats)
            rows.append(_row(f"{name}: both compiled{how}", t_o, t_r))
            if graphed:
                ro = _Stepper(copy.deepcopy(model), F.softmax_cross_entropy, batches, compiled=True,
                              mode="reduce-overhead")
                t_o, t_r = side_by_side(ours, ro, device, number=number, repeats=repeats)
                rows.append(_row(f"{name}: nnref compiled + nnref's CUDA graph vs compiled reduce-overhead", t_o, t_r))
    return rows


# --------------------------------------------------------------------------------------------------
# 2. Data path
# --------------------------------------------------------------------------------------------------
def bench_loader(data, root, device, repeats: int = 3, batch_size: int = 128) -> list[dict]:
    """One epoch of nnref's loader vs DataLoader + ToTensor per sample, and vs a softmax training epoch."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    loader = make_loader(data.train_x, data.train_y, batch_size)
    tv = datasets.MNIST(str(root), train=True, download=False,
                        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))]))
    tv_loader = DataLoader(tv, batch_size=batch_size, shuffle=True)

    def epoch(ld):
        for xb, yb in ld:
            if device.type == "cuda" and xb.device.type != "cuda":
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)

    ours, ref = side_by_side(lambda: epoch(loader), lambda: epoch(tv_loader), device, number=1, repeats=repeats,
                             warmup=1)
    # a softmax-regression training epoch with the same loader (the figure the loader is measured against)
    torch.manual_seed(0)
    model = SoftmaxRegression(784, 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    step = EagerStep(forward_loss_of(model), list(model.parameters()))

    def train_epoch():
        for xb, yb in loader:
            step(xb, yb)
            opt.step()

    train_t = statistics.median(_time(train_epoch, device, 1) for _ in range(repeats))
    return [
        _row(f"loader epoch, batch {batch_size}: nnref vs DataLoader+ToTensor", ours, ref),
        {"name": f"loader epoch as share of a softmax-regression training epoch ({train_t * 1e3:.0f} ms)",
         "nnref": ours * 1e3, "reference": train_t * 1e3, "unit": "ms", "ratio": ours / train_t},
    ]


# --------------------------------------------------------------------------------------------------
# 3. KNN vs scikit-learn
# --------------------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _knn_sides(k: int, chunk: int | None = None) -> dict:
    """``side → (fit_predict(X_train, y_train, X_test) → predictions)`` for nnref, FAISS and scikit-learn."""
    def nnref(X, y, Q):
        return KNNClassifier(k, **({"chunk_size": chunk} if chunk else {})).fit(X, y).predict(Q).cpu()

    def faiss_flat(X, y, Q):
        import faiss

        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X.cpu().numpy())
        _, idx = index.search(Q.cpu().numpy(), k)  # exact L2, nearest first
        labels = y.cpu()[torch.from_numpy(idx)]
        return KNNClassifier(k).fit(X[:1].cpu(), y[:1].cpu()).vote_labels(labels)  # the same vote and tie rule

    def sklearn(X, y, Q):
        from sklearn.neighbors import KNeighborsClassifier

        return torch.from_numpy(KNeighborsClassifier(k, algorithm="brute").fit(X.cpu().numpy(), y.cpu().numpy())
                                .predict(Q.cpu().numpy()))

    sides = {"nnref": nnref, "sklearn": sklearn}
    try:
        import faiss  # noqa: F401
        sides["faiss"] = faiss_flat
    except ImportError:
        pass
    return sides


def knn_memory_child(side: str, root: str, k: int, n_test: int | None) -> None:
    """Run in a fresh process: peak resident memory added by one KNN fit + prediction (printed as JSON).

    A thread samples the resident set every millisecond while the prediction runs (``ru_maxrss`` would
    also count the data loading that precedes it)."""
    import threading

    data = load_splits(root, download=False, val_size=0)
    Xtr, ytr = data.train_x, data.train_y
    Xte = data.test_x[:n_test] if n_test else data.test_x
    fit_predict = _knn_sides(k)[side]
    before = _rss_bytes()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    fit_predict(Xtr, ytr, Xte)
    done.set()
    sampler.join()
    print(json.dumps({"peak_extra_bytes": max(peak[0], _rss_bytes()) - before}))


def _peak_memory(side: str, root, k: int, n_test: int | None) -> float:
    import subprocess
    import sys

    code = f"from nnref.bench import knn_memory_child; knn_memory_child({side!r}, {str(root)!r}, {k}, {n_test!r})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_extra_bytes"]


def bench_knn(data, root, device, k: int = 3, repeats: int = 2, n_test: int | None = None,
              memory_of=("nnref", "faiss", "sklearn")) -> list[dict]:
    """nnref's KNN against FAISS's exact IndexFlatL2 and scikit-learn's brute force: median times (the sides
    alternating), identical predictions, and the peak memory each adds (measured in a fresh process per
    side; on CUDA, nnref's peak GPU allocation)."""
    Xtr, ytr = data.train_x, data.train_y
    Xte = data.test_x[:n_test] if n_test else data.test_x
    yte = data.test_y[:Xte.shape[0]]
    sides = _knn_sides(k, chunk=None if device.type == "cpu" else 10000)  # a GPU holds the whole test set
    preds: dict = {}
    cases = {name: (lambda name=name, fn=fn: preds.__setitem__(name, fn(Xtr, ytr, Xte))) for name, fn in sides.items()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = interleaved(cases, device, number=1, repeats=repeats, warmup=1)
    memory = {name: _peak_memory(name, root, k, n_test) / 2**20 if name in memory_of else float("nan")
              for name in sides if device.type == "cpu" or name != "nnref"}
    if device.type == "cuda":
        memory["nnref"] = torch.cuda.max_memory_allocated(device) / 2**20
    rows, ours = [], preds["nnref"]
    for name in [s for s in ("faiss", "sklearn") if s in sides]:
        rows.append(_row(f"KNN k={k}, {Xte.shape[0]} test × {Xtr.shape[0]} train: nnref vs "
                         f"{'FAISS IndexFlatL2' if name == 'faiss' else 'scikit-learn brute force'}",
                         times["nnref"], times[name], unit="s", scale=1.0,
                         identical_predictions=float((ours == preds[name]).float().mean()),
                         accuracy_nnref=float((ours == yte.cpu()).float().mean()),
                         accuracy_reference=float((preds[name] == yte.cpu()).float().mean()),
                         peak_memory_nnref_mib=memory["nnref"], peak_memory_reference_mib=memory[name],
                         memory_kind="peak GPU memory allocated" if device.type == "cuda" else
                         "peak extra RSS, fresh process"))
    return rows


# --------------------------------------------------------------------------------------------------
# 4. Time to accuracy
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
    Recipe("MLP 784-800-10 to 98.0%, fast recipe", lambda: MLP(784, 800, 10), 0.98, 0.15, 0.9, 512, 25,
           nesterov=True),
    Recipe("softmax regression to 92.0%", lambda: SoftmaxRegression(784, 10), 0.92, 0.05, 0.0, 64, 100),
)


def _time_to(model, loss_fn, data, recipe: Recipe, max_epochs: int, device, step_options: dict
             ) -> tuple[float, float, int]:
    """Training seconds (evaluation excluded) until test accuracy ≥ target: (seconds, accuracy, steps)."""
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    loader = make_loader(data.train_x, data.train_y, recipe.batch_size, seed=0)
    example = (data.train_x[:recipe.batch_size], data.train_y[:recipe.batch_size])
    _sync(device)
    t = time.perf_counter()  # building the step (compiling, capturing a graph) counts as training time
    step = build_step(forward_loss_of(model, loss_fn=loss_fn, graphed=step_options.get("cuda_graphs", False),
                                      amp=step_options.get("amp", "off")), params, *example, **step_options)
    spent, steps, acc = 0.0, 0, 0.0
    for _ in range(max_epochs):
        for xb, yb in loader:
            step(xb, yb)
            step.update(opt)
            steps += 1
            if steps % recipe.every == 0:
                _sync(device)
                spent += time.perf_counter() - t
                with torch.no_grad():
                    acc = float((model(data.test_x).argmax(-1) == data.test_y).float().mean())
                if acc >= recipe.target:
                    return spent, acc, steps
                _sync(device)
                t = time.perf_counter()
    return float("inf"), acc, steps


def bench_time_to_accuracy(data, device, max_epochs: int = 10, repeats: int = 3, recipes=RECIPES,
                           variants=None) -> list[dict]:
    """Wall time of training (evaluation excluded) until a test-accuracy target, nnref beside the same recipe
    with built-in layers, the two sides alternating ``repeats`` times (medians reported).  ``variants``: how
    each side runs its steps — on a CPU eager (and compiled), on CUDA with CUDA graphs (and autocast)."""
    if variants is None:
        variants = {"eager": {}} if device.type == "cpu" else {
            "CUDA graph": {"cuda_graphs": True}, "CUDA graph, autocast bf16": {"cuda_graphs": True, "amp": "bf16"}}
    rows = []
    for recipe in recipes:
        for how, options in variants.items():
            runs = {"nnref": [], "reference": []}
            for _ in range(repeats):
                torch.manual_seed(0)
                model = recipe.make().to(device)
                twin = builtin_twin(model).to(device)
                with F.value_checks(device.type == "cpu"):
                    runs["nnref"].append(_time_to(model, F.softmax_cross_entropy, data, recipe, max_epochs, device,
                                                  options))
                    runs["reference"].append(_time_to(twin, TF.cross_entropy, data, recipe, max_epochs, device,
                                                      options))
            (t_o, acc_o, s_o), (t_r, acc_r, s_r) = (_median_run(runs[k]) for k in ("nnref", "reference"))
            rows.append(_row(f"time to accuracy: {recipe.name} ({recipe.describe()}; both {how})", t_o, t_r,
                             unit="s", scale=1.0, steps_nnref=s_o, steps_reference=s_r, accuracy_nnref=acc_o,
                             accuracy_reference=acc_r, repeats=repeats, seconds_nnref=[r[0] for r in runs["nnref"]],
                             seconds_reference=[r[0] for r in runs["reference"]]))
    return rows


def _median_run(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    """The run with the median time (seconds, accuracy, steps)."""
    return sorted(runs)[len(runs) // 2]


# --------------------------------------------------------------------------------------------------
# 4b. Scaling out: one process against a torchrun job of two
# --------------------------------------------------------------------------------------------------
def _run_job(args: list[str], ranks: int, threads: int, logdir: Path, name: str) -> dict:
    """``nnref train`` in one process, or under ``torchrun`` with ``ranks`` processes; the run's final numbers."""
    import subprocess
    import sys

    from .checkpoint import load_checkpoint

    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)] \
        if ranks > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    job = subprocess.run([*launcher, "-m", "nnref", *args, "--logdir", str(logdir), "--run-name", name, "--quiet"],
                         env=env, capture_output=True, text=True)
    if job.returncode != 0:
        raise RuntimeError(f"nnref {' '.join(args)} ({ranks} process(es)) failed: {job.stderr.strip()[-500:]}")
    return load_checkpoint(logdir / name / "checkpoint.pt")["final"]


def bench_distributed(root, repeats: int = 2, quick: bool = False) -> list[dict]:
    """One process (all cores) against ``torchrun --nproc-per-node 2`` (one core per rank): a training epoch of
    the MLP, and KNN's search with the records sharded — the sides alternating.  On a 2-core machine this
    shows the cost of communication more than a speed-up: both sides have the same two cores."""
    import tempfile

    cores = os.cpu_count() or 2
    data = ["--data-root", str(root), "--no-download"]
    mlp = ["train", "mlp", "--epochs", "1", "--batch-size", "128", "--val-size", "0", *data] + \
        (["--limit-train", "4000"] if quick else [])
    knn = ["train", "knn", "--k", "3", "--val-size", "0", *data] + (["--limit-train", "4000"] if quick else [])
    results: dict = {}
    jobs = (("knn", knn),) if quick else (("mlp", mlp), ("knn", knn))  # quick: the KNN job alone
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for ranks, threads in ((1, cores), (2, max(1, cores // 2))):
                for what, args in jobs:
                    final = _run_job(args, ranks, threads, Path(tmp), f"{what}-{ranks}-{r}")
                    results.setdefault((what, ranks), []).append(final)
    med = {key: {k: statistics.median(f[k] if not isinstance(f[k], list) else max(f[k]) for f in finals)
                 for k in finals[0] if isinstance(finals[0][k], (int, float, list))} for key, finals in results.items()}
    rows = [] if quick else [
        _row("MLP 784-800-10, one training epoch: torchrun 2 processes × 1 core vs 1 process × 2 cores",
             med[("mlp", 2)]["train_seconds"], med[("mlp", 1)]["train_seconds"], unit="s", scale=1.0,
             test_accuracy_2_ranks=med[("mlp", 2)]["test_acc"], test_accuracy_1_process=med[("mlp", 1)]["test_acc"])]
    return rows + [
        _row("KNN k=3, the test set against all training records: 2 ranks (records sharded) vs 1 process",
             med[("knn", 2)]["test_seconds"], med[("knn", 1)]["test_seconds"], unit="s", scale=1.0,
             records_mib_per_rank=med[("knn", 2)]["records_bytes_per_rank"] / 2**20,
             records_mib_one_process=med[("knn", 1)]["records_bytes_per_rank"] / 2**20,
             test_accuracy_2_ranks=med[("knn", 2)]["test_acc"], test_accuracy_1_process=med[("knn", 1)]["test_acc"]),
    ]


# --------------------------------------------------------------------------------------------------
# 5. The lecture's cost claim: KNN O(p n) per test point and n records in memory; parametric O(p)
# --------------------------------------------------------------------------------------------------
def bench_cost(data, device, sizes=(1000, 5000, 10000, 30000, 60000), n_query: int = 1000,
               repeats: int = 3) -> list[dict]:
    rows = []
    q = data.test_x[:n_query]
    for n in sizes:
        n = min(n, data.train_x.shape[0])
        knn = KNNClassifier(3).fit(data.train_x[:n], data.train_y[:n])
        model = SoftmaxRegression(784, 10).to(device)
        t_knn = statistics.median(_time(lambda: knn.predict(q), device, 1) for _ in range(repeats))
        with torch.no_grad():
            t_lin = statistics.median(_time(lambda: model(q).argmax(-1), device, 5) for _ in range(repeats))
        mem_lin = sum(p.numel() * p.element_size() for p in model.parameters())
        rows.append({"n": n, "knn_predict_ms": t_knn * 1e3, "softmax_predict_ms": t_lin * 1e3,
                     "knn_memory_mib": knn.memory_bytes() / 2**20, "softmax_memory_mib": mem_lin / 2**20})
    return rows


def cost_figure(rows):
    from .viz import plt

    n = [r["n"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    a1.plot(n, [r["knn_predict_ms"] for r in rows], "o-", label="KNN (k=3)")
    a1.plot(n, [r["softmax_predict_ms"] for r in rows], "s-", label="softmax regression")
    a1.set_xlabel("training-set size n")
    a1.set_ylabel("ms to predict 1000 test images")
    a1.set_title("prediction time: O(p n) vs O(p)")
    a2.plot(n, [r["knn_memory_mib"] for r in rows], "o-", label="KNN (stores every record)")
    a2.plot(n, [r["softmax_memory_mib"] for r in rows], "s-", label="softmax regression (W, b)")
    a2.set_xlabel("training-set size n")
    a2.set_ylabel("model memory (MiB)")
    a2.set_title("model memory")
    for a in (a1, a2):
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
def format_rows(rows: list[dict]) -> str:
    lines = ["| comparison | nnref | reference | ratio nnref/reference | notes |", "|---|---|---|---|---|"]
    for r in rows:
        notes = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
                          if k not in ("name", "nnref", "reference", "unit", "ratio"))
        lines.append(f"| {r['name']} | {r['nnref']:.4g} {r['unit']} | {r['reference']:.4g} {r['unit']} | "
                     f"{r['ratio']:.3f} | {notes} |")
    return "\n".join(lines)


def format_cost(rows: list[dict]) -> str:
    lines = ["| n | KNN predict 1000 (ms) | softmax predict 1000 (ms) | KNN memory (MiB) | softmax memory (MiB) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['knn_predict_ms']:.1f} | {r['softmax_predict_ms']:.3f} | "
                     f"{r['knn_memory_mib']:.1f} | {r['softmax_memory_mib']:.3f} |")
    return "\n".join(lines)


def run_bench(device="cpu", data_root=None, sections=SECTIONS, out_dir="runs/bench", quick: bool = False,
              repeats: int = 7, progress=None) -> dict:
    """Run the chosen sections; write the JSON report (and the cost plot) under ``out_dir`` and return it.
    ``progress(text)`` receives a heading and a markdown table per section as it finishes."""
    say = progress or (lambda text: None)
    device = torch.device(device)
    root = resolve_root(data_root)
    # no validation split: every comparison uses all 60,000 training images, like the anchors it cites
    data = load_splits(root, download=False, val_size=0, device=device)
    repeats = 3 if quick else repeats
    info = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or
            platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    say(f"nnref bench on {device} ({info['device']}, {info['threads']} threads, torch {info['torch']})")
    report = {"info": info, "rows": [], "cost": []}
    section_fns = {
        "floor": lambda: bench_floor(device, repeats=5 if quick else 15, number=50 if quick else 200),
        "functions": lambda: bench_functions(device, repeats=repeats),
        "compile": lambda: bench_compile(data, device, batch_sizes=(128,) if quick else (128, 512), repeats=repeats,
                                         hidden=64 if quick else 800),
        "distributed": lambda: bench_distributed(root, repeats=1 if quick else 2, quick=quick),
        "steps": lambda: bench_train_steps(data, device, repeats=repeats),
        "loader": lambda: bench_loader(data, root, device, repeats=2 if quick else 3),
        "knn": lambda: bench_knn(data, root, device, repeats=1 if quick else 2, n_test=1000 if quick else None,
                                 memory_of=("nnref",) if quick else ("nnref", "faiss", "sklearn")),
        "accuracy": lambda: bench_time_to_accuracy(data, device, max_epochs=2 if quick else 10,
                                                   repeats=1 if quick else 3),
    }
    for name in sections:
        if name == "cost":
            continue
        t = time.perf_counter()
        rows = section_fns[name]()
        report["rows"] += rows
        say(f"\n## {name} ({time.perf_counter() - t:.0f} s)\n{format_rows(rows)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if "cost" in sections:
        report["cost"] = bench_cost(data, device, sizes=(1000, 5000) if quick else (1000, 5000, 10000, 30000, 60000))
        say(f"\n## cost claim (1000 test images)\n{format_cost(report['cost'])}")
        _write_cost(report["cost"], out, f"{device.type}-{stamp}")
    path = out / f"bench-{device.type}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    say(f"\nwrote {path}")
    report["path"] = str(path)
    return report


def _write_cost(rows: list[dict], out: Path, name: str) -> None:
    """The cost-claim plot as PNG and in TensorBoard (with the numbers as scalars over n)."""
    from torch.utils.tensorboard import SummaryWriter

    fig = cost_figure(rows)
    fig.savefig(out / f"cost-{name}.png", dpi=100)
    with SummaryWriter(str(out / f"tb-{name}")) as w:
        w.add_figure("cost/prediction_time_and_memory", fig, 0)
        for r in rows:
            w.add_scalar("cost/knn_predict_ms", r["knn_predict_ms"], r["n"])
            w.add_scalar("cost/softmax_predict_ms", r["softmax_predict_ms"], r["n"])
            w.add_scalar("cost/knn_memory_mib", r["knn_memory_mib"], r["n"])
