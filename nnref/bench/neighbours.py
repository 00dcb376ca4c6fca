"""KNN: nnref's neighbour search against FAISS and scikit-learn, and the lecture's cost claim — KNN is O(p n) per
test point and keeps the training set, a parametric model is O(p)."""

from __future__ import annotations

import multiprocessing
import os
import statistics
import threading
import time
from pathlib import Path

import torch

from ..knn import KNNClassifier, vote
from ..models import SoftmaxRegression
from ..records import open_writer
from ..table import markdown_table
from .core import Context, interleaved, row, seconds_per_call, section

__all__ = ["bench_knn", "bench_cost", "cost_figure", "format_cost", "knn_memory_child"]


def _knn_sides(k: int, chunk: int | None = None) -> dict:
    """``side → (fit_predict(X_train, y_train, X_test) → predictions)`` for nnref, FAISS and scikit-learn."""

    def nnref(X, y, Q):
        return KNNClassifier(k, **({"chunk_size": chunk} if chunk else {})).fit(X, y).predict(Q).cpu()

    def faiss_flat(X, y, Q):
        import faiss

        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X.cpu().numpy())
        _, idx = index.search(Q.cpu().numpy(), k)  # exact L2, nearest first
        return vote(y.cpu()[torch.from_numpy(idx)])  # nnref's vote and tie rule

    def sklearn(X, y, Q):
        from sklearn.neighbors import KNeighborsClassifier

        return torch.from_numpy(
            KNeighborsClassifier(k, algorithm="brute").fit(X.cpu().numpy(), y.cpu().numpy()).predict(Q.cpu().numpy())
        )

    sides = {"nnref": nnref, "sklearn": sklearn}
    try:
        import faiss  # noqa: F401

        sides["faiss"] = faiss_flat
    except ImportError:
        pass
    return sides


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def knn_memory_child(side: str, root: str, k: int, n_test: int | None, answer) -> None:
    """In a fresh process: the peak resident memory added by one KNN fit + prediction, put on ``answer``.

    A thread samples the resident set every millisecond while the prediction runs (``ru_maxrss`` would
    also count the data loading that precedes it)."""
    from ..data import load_splits

    data = load_splits(root, download=False, val_size=0)
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
    fit_predict(data.train_x, data.train_y, Xte)
    done.set()
    sampler.join()
    answer.put(max(peak[0], _rss_bytes()) - before)


def _peak_memory(side: str, root, k: int, n_test: int | None) -> float:
    """:func:`knn_memory_child` in a freshly spawned process (nothing of this one's memory in the figure)."""
    spawn = multiprocessing.get_context("spawn")
    answer = spawn.Queue()
    child = spawn.Process(target=knn_memory_child, args=(side, str(root), k, n_test, answer))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the memory measurement of {side} failed (exit code {child.exitcode})")
    return answer.get(timeout=5)


@section("knn")
def knn_section(ctx: Context) -> list[dict]:
    """nnref's KNN (k = 3) against FAISS's exact IndexFlatL2 and scikit-learn's brute force on the test set:
    median times (the sides alternating), identical predictions, and the peak memory each adds (measured in
    a fresh process per side; on CUDA, nnref's peak GPU allocation)."""
    p = ctx.profile
    return bench_knn(
        ctx.data, ctx.root, ctx.device, repeats=p.knn_repeats, n_test=p.knn_test, memory_of=p.knn_memory_of
    )


def bench_knn(
    data, root, device, k: int = 3, repeats: int = 2, n_test: int | None = None, memory_of=("nnref", "faiss", "sklearn")
) -> list[dict]:
    Xtr, ytr = data.train_x, data.train_y
    Xte = data.test_x[:n_test] if n_test else data.test_x
    yte = data.test_y[: Xte.shape[0]]
    sides = _knn_sides(k, chunk=None if device.type == "cpu" else 10000)  # a GPU holds the whole test set
    preds: dict = {}
    cases = {name: (lambda name=name, fn=fn: preds.__setitem__(name, fn(Xtr, ytr, Xte))) for name, fn in sides.items()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = interleaved(cases, device, number=1, repeats=repeats, warmup=1)
    memory = {
        name: _peak_memory(name, root, k, n_test) / 2**20 if name in memory_of else float("nan")
        for name in sides
        if device.type == "cpu" or name != "nnref"
    }
    if device.type == "cuda":
        memory["nnref"] = torch.cuda.max_memory_allocated(device) / 2**20
    rows, ours = [], preds["nnref"]
    for name in [s for s in ("faiss", "sklearn") if s in sides]:
        rows.append(
            row(
                f"KNN k={k}, {Xte.shape[0]} test × {Xtr.shape[0]} train: nnref vs "
                f"{'FAISS IndexFlatL2' if name == 'faiss' else 'scikit-learn brute force'}",
                times["nnref"],
                times[name],
                unit="s",
                scale=1.0,
                identical_predictions=float((ours == preds[name]).float().mean()),
                accuracy_nnref=float((ours == yte.cpu()).float().mean()),
                accuracy_reference=float((preds[name] == yte.cpu()).float().mean()),
                peak_memory_nnref_mib=memory["nnref"],
                peak_memory_reference_mib=memory[name],
                memory_kind="peak GPU memory allocated" if device.type == "cuda" else "peak extra RSS, fresh process",
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
def format_cost(rows: list[dict]) -> str:
    return markdown_table(
        ("n", "KNN predict 1000 (ms)", "softmax predict 1000 (ms)", "KNN memory (MiB)", "softmax memory (MiB)"),
        [
            (
                r["n"],
                f"{r['knn_predict_ms']:.1f}",
                f"{r['softmax_predict_ms']:.3f}",
                f"{r['knn_memory_mib']:.1f}",
                f"{r['softmax_memory_mib']:.3f}",
            )
            for r in rows
        ],
    )


@section("cost", key="cost", fmt=format_cost)
def cost_section(ctx: Context) -> list[dict]:
    """The lecture's cost claim: the time to classify 1,000 test images and the model's memory as the training
    set grows — KNN O(p n) and every record kept, softmax regression O(p) and one W, b.  Writes the plot as PNG
    and to TensorBoard."""
    rows = bench_cost(ctx.data, ctx.device, sizes=ctx.profile.cost_sizes)
    _write_cost(rows, ctx.out, f"{ctx.device.type}-{time.strftime('%Y%m%d-%H%M%S')}")
    return rows


def bench_cost(
    data, device, sizes=(1000, 5000, 10000, 30000, 60000), n_query: int = 1000, repeats: int = 3
) -> list[dict]:
    rows = []
    q = data.test_x[:n_query]
    for n in sizes:
        n = min(n, data.train_x.shape[0])
        knn = KNNClassifier(3).fit(data.train_x[:n], data.train_y[:n])
        model = SoftmaxRegression(784, 10).to(device)
        t_knn = statistics.median(seconds_per_call(lambda knn=knn: knn.predict(q), device, 1) for _ in range(repeats))
        with torch.no_grad():
            t_lin = statistics.median(
                seconds_per_call(lambda model=model: model(q).argmax(-1), device, 5) for _ in range(repeats)
            )
        mem_lin = sum(p.numel() * p.element_size() for p in model.parameters())
        rows.append(
            {
                "n": n,
                "knn_predict_ms": t_knn * 1e3,
                "softmax_predict_ms": t_lin * 1e3,
                "knn_memory_mib": knn.memory_bytes() / 2**20,
                "softmax_memory_mib": mem_lin / 2**20,
            }
        )
    return rows


def cost_figure(rows):
    from ..viz import subplots

    n = [r["n"] for r in rows]
    fig, (a1, a2) = subplots(1, 2, figsize=(9, 3.6))
    a1.plot(n, [r["knn_predict_ms"] for r in rows], "o-", label="KNN (k=3)")
    a1.plot(n, [r["softmax_predict_ms"] for r in rows], "s-", label="softmax regression")
    a1.set(
        xlabel="training-set size n", ylabel="ms to predict 1000 test images", title="prediction time: O(p n) vs O(p)"
    )
    a2.plot(n, [r["knn_memory_mib"] for r in rows], "o-", label="KNN (stores every record)")
    a2.plot(n, [r["softmax_memory_mib"] for r in rows], "s-", label="softmax regression (W, b)")
    a2.set(xlabel="training-set size n", ylabel="model memory (MiB)", title="model memory")
    for a in (a1, a2):
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _write_cost(rows: list[dict], out: Path, name: str) -> None:
    """The cost-claim plot as PNG and in TensorBoard (with the numbers as scalars over n)."""
    fig = cost_figure(rows)
    fig.savefig(out / f"cost-{name}.png", dpi=100)
    with open_writer(out / f"tb-{name}") as w:
        w.add_figure("cost/prediction_time_and_memory", fig, 0)
        for r in rows:
            w.add_scalar("cost/knn_predict_ms", r["knn_predict_ms"], r["n"])
            w.add_scalar("cost/softmax_predict_ms", r["softmax_predict_ms"], r["n"])
            w.add_scalar("cost/knn_memory_mib", r["knn_memory_mib"], r["n"])
