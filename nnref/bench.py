"""``nnref bench``: nnref against PyTorch's built-ins (and scikit-learn), side by side in one process.

Every comparison alternates the two sides over several repetitions and reports medians and the ratio
nnref / reference (below 1 means nnref is faster).  Output: a markdown table on stdout, JSON (and the
cost-claim plot as PNG and in TensorBoard) under ``runs/bench/``.
"""

from __future__ import annotations

import copy
import json
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
from .steps import EagerStep, GraphedStep

__all__ = ["SECTIONS", "run_bench", "bench_functions", "bench_train_steps", "bench_loader", "bench_knn",
           "bench_time_to_accuracy", "bench_cost", "builtin_twin", "side_by_side"]

#: The sections of ``nnref bench``, in the order they run.
SECTIONS = ("functions", "steps", "loader", "knn", "accuracy", "cost")


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
    for _ in range(warmup):
        a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_time(a, device, number))
        tb.append(_time(b, device, number))
    return statistics.median(ta), statistics.median(tb)


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


def _forward_loss(model, loss_fn):
    def forward_loss(x, y):
        z = model(x)
        return loss_fn(z, y), z
    return forward_loss


class _Stepper:
    """One SGD step on the next batch of a fixed list: forward, loss, backward (eager or CUDA graph), update."""

    def __init__(self, model, loss_fn, batches, lr=0.05, momentum=0.9, graphed: bool = False):
        self.batches, self.i = batches, 0
        params = list(model.parameters())
        self.opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
        fl = _forward_loss(model, loss_fn)
        self.step = GraphedStep(fl, params, *batches[0]) if graphed else EagerStep(fl, params)

    def __call__(self):
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        loss, _ = self.step(x, y)
        self.step.update(self.opt)
        return loss


def _nnref_ce(z, y):
    return F.softmax_cross_entropy(z, y)


def bench_train_steps(data, device, batch_sizes=(1, 128, 512), repeats: int = 7) -> list[dict]:
    """A whole SGD step (momentum 0.9) of nnref models against the same networks of torch.nn layers, with
    the same initial weights and batches.  On CUDA also with the forward+backward replayed from a CUDA
    graph — nnref's graphed step against the built-in eager step (what a user of each gets from nnref's
    trainer and from a plain loop) and against the built-in graphed the same way."""
    rows = []
    for kind in ("softmax", "mlp"):
        for bs in batch_sizes:
            torch.manual_seed(0)
            model = (SoftmaxRegression(784, 10) if kind == "softmax" else MLP(784, 800, 10)).to(device)
            twin = builtin_twin(model).to(device)
            g = torch.Generator().manual_seed(0)
            idx = [torch.randint(0, data.train_x.shape[0], (bs,), generator=g).to(device) for _ in range(32)]
            batches = [(data.train_x[i], data.train_y[i]) for i in idx]
            name = "softmax regression" if kind == "softmax" else "MLP 784-800-10"
            number = 50 if bs == 1 else 10 if device.type == "cpu" else 50
            with F.value_checks(device.type == "cpu"):
                ours = _Stepper(model, _nnref_ce, batches)
                ref = _Stepper(twin, TF.cross_entropy, batches)
                t_ours, t_ref = side_by_side(ours, ref, device, number=number, repeats=repeats)
                rows.append(_row(f"train step {name}, batch {bs}", t_ours, t_ref))
                if device.type == "cuda":
                    # own copies: an eager step resets .grad, which a graph's static gradients must keep
                    ours_g = _Stepper(copy.deepcopy(model), _nnref_ce, batches, graphed=True)
                    ref_g = _Stepper(copy.deepcopy(twin), TF.cross_entropy, batches, graphed=True)
                    t_og, t_rg = side_by_side(ours_g, ref, device, number=number, repeats=repeats)
                    rows.append(_row(f"train step {name}, batch {bs}: nnref CUDA graph vs built-in eager", t_og, t_rg))
                    t_og, t_rg = side_by_side(ours_g, ref_g, device, number=number, repeats=repeats)
                    rows.append(_row(f"train step {name}, batch {bs}: both CUDA graph", t_og, t_rg))
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
    step = EagerStep(_forward_loss(model, _nnref_ce), list(model.parameters()))

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


def knn_memory_child(side: str, root: str, k: int, n_test: int | None) -> None:
    """Run in a fresh process: peak resident memory added by one KNN fit + prediction (printed as JSON).

    A thread samples the resident set every millisecond while the prediction runs (``ru_maxrss`` would
    also count the data loading that precedes it)."""
    import threading

    from sklearn.neighbors import KNeighborsClassifier

    data = load_splits(root, download=False, val_size=0)
    Xtr, ytr = data.train_x, data.train_y
    Xte = data.test_x[:n_test] if n_test else data.test_x
    arrays = (Xtr.numpy(), ytr.numpy(), Xte.numpy())
    before = _rss_bytes()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if side == "nnref":
        KNNClassifier(k).fit(Xtr, ytr).predict(Xte)
    else:
        KNeighborsClassifier(k, algorithm="brute").fit(arrays[0], arrays[1]).predict(arrays[2])
    done.set()
    sampler.join()
    print(json.dumps({"peak_extra_bytes": max(peak[0], _rss_bytes()) - before}))


def _peak_memory(side: str, root, k: int, n_test: int | None) -> float:
    import subprocess
    import sys

    code = f"from nnref.bench import knn_memory_child; knn_memory_child({side!r}, {str(root)!r}, {k}, {n_test!r})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_extra_bytes"]


def bench_knn(data, root, device, k: int = 3, repeats: int = 2, n_test: int | None = None) -> list[dict]:
    """nnref's KNN vs scikit-learn's brute force: median time (alternating), identical predictions, and the
    peak memory each adds (measured in a fresh process per side; on CUDA, nnref's peak GPU allocation)."""
    from sklearn.neighbors import KNeighborsClassifier

    Xtr, ytr = data.train_x, data.train_y
    Xte = data.test_x[:n_test] if n_test else data.test_x
    yte = data.test_y[:Xte.shape[0]]
    Xtr_np, ytr_np, Xte_np = Xtr.cpu().numpy(), ytr.cpu().numpy(), Xte.cpu().numpy()
    preds = {}

    chunk = 1024 if device.type == "cpu" else 10000  # a GPU has the memory for the whole test set at once

    def ours():
        preds["nnref"] = KNNClassifier(k, chunk_size=chunk).fit(Xtr, ytr).predict(Xte)

    def ref():
        preds["sklearn"] = KNeighborsClassifier(k, algorithm="brute").fit(Xtr_np, ytr_np).predict(Xte_np)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_ours, t_ref = side_by_side(ours, ref, device, number=1, repeats=repeats, warmup=1)
    if device.type == "cuda":
        mem_ours, where = torch.cuda.max_memory_allocated(device), "peak GPU memory allocated"
    else:
        mem_ours, where = _peak_memory("nnref", root, k, n_test), "peak extra RSS, fresh process"
    mem_ref = _peak_memory("sklearn", root, k, n_test)
    pred_ours, pred_ref = preds["nnref"].cpu(), torch.from_numpy(preds["sklearn"])
    same = float((pred_ours == pred_ref).float().mean())
    acc = float((pred_ours == yte.cpu()).float().mean())
    return [
        _row(f"KNN k={k}, {Xte.shape[0]} test × {Xtr.shape[0]} train: nnref vs scikit-learn brute",
             t_ours, t_ref, unit="s", scale=1.0, identical_predictions=same, accuracy_nnref=acc,
             peak_memory_nnref_mib=mem_ours / 2**20, peak_memory_sklearn_mib=mem_ref / 2**20, memory_kind=where),
    ]


# --------------------------------------------------------------------------------------------------
# 4. Time to accuracy
# --------------------------------------------------------------------------------------------------
def _time_to(model, loss_fn, data, target: float, lr: float, momentum: float, batch_size: int, max_epochs: int,
             device, eval_every: int, graphed: bool = False) -> tuple[float, float, int]:
    """Training seconds (evaluation excluded) until test accuracy ≥ target: (seconds, accuracy, steps)."""
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    loader = make_loader(data.train_x, data.train_y, batch_size, seed=0)
    fl = _forward_loss(model, loss_fn)
    _sync(device)
    t = time.perf_counter()
    step = GraphedStep(fl, params, data.train_x[:batch_size], data.train_y[:batch_size]) if graphed else \
        EagerStep(fl, params)  # capturing the graph counts as training time
    spent, steps, acc = 0.0, 0, 0.0
    for _ in range(max_epochs):
        for xb, yb in loader:
            step(xb, yb)
            opt.step()
            steps += 1
            if steps % eval_every == 0:
                _sync(device)
                spent += time.perf_counter() - t
                with torch.no_grad():
                    acc = float((model(data.test_x).argmax(-1) == data.test_y).float().mean())
                if acc >= target:
                    return spent, acc, steps
                _sync(device)
                t = time.perf_counter()
    return float("inf"), acc, steps


def bench_time_to_accuracy(data, device, max_epochs: int = 10, repeats: int = 3) -> list[dict]:
    """Wall time of training (evaluation every 100 steps excluded) until a test-accuracy target, nnref beside
    the same recipe with built-in layers, alternating the two sides ``repeats`` times (medians reported); on
    CUDA nnref replays a CUDA graph of each step."""
    rows = []
    recipes = [("MLP 784-800-10 to 98.0%", lambda: MLP(784, 800, 10), 0.98, 0.05, 0.9, 128, 100),
               ("softmax regression to 92.0%", lambda: SoftmaxRegression(784, 10), 0.92, 0.05, 0.0, 64, 100)]
    graphed = device.type == "cuda"
    for name, make, target, lr, mom, bs, every in recipes:
        runs = {"nnref": [], "reference": []}
        for _ in range(repeats):
            torch.manual_seed(0)
            model = make().to(device)
            twin = builtin_twin(model).to(device)
            with F.value_checks(device.type == "cpu"):
                runs["nnref"].append(_time_to(model, _nnref_ce, data, target, lr, mom, bs, max_epochs, device, every,
                                              graphed))
                runs["reference"].append(_time_to(twin, TF.cross_entropy, data, target, lr, mom, bs, max_epochs,
                                                  device, every))
        (t_ours, acc_ours, s_ours), (t_ref, acc_ref, s_ref) = (_median_run(runs[k]) for k in ("nnref", "reference"))
        how = " (nnref: CUDA graph; built-in: eager)" if graphed else ""
        rows.append(_row(f"time to accuracy: {name} (SGD lr {lr}, momentum {mom}, batch {bs}){how}", t_ours, t_ref,
                         unit="s", scale=1.0, steps_nnref=s_ours, steps_reference=s_ref, accuracy_nnref=acc_ours,
                         accuracy_reference=acc_ref, repeats=repeats, seconds_nnref=[r[0] for r in runs["nnref"]],
                         seconds_reference=[r[0] for r in runs["reference"]]))
    return rows


def _median_run(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    """The run with the median time (seconds, accuracy, steps)."""
    return sorted(runs)[len(runs) // 2]


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
        "functions": lambda: bench_functions(device, repeats=repeats),
        "steps": lambda: bench_train_steps(data, device, repeats=repeats),
        "loader": lambda: bench_loader(data, root, device, repeats=2 if quick else 3),
        "knn": lambda: bench_knn(data, root, device, repeats=1 if quick else 2, n_test=1000 if quick else None),
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
