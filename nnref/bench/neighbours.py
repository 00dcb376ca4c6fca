"""KNN: nnref's neighbour search against FAISS and scikit-learn, and the lecture's cost claim — KNN is O(p n) per
test point and keeps the training set, a parametric model is O(p)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..data import to_bytes
from ..fast import knn_bytes
from ..knn import KNNClassifier, vote
from ..models import SoftmaxRegression
from ..run.markdown import markdown_table
from ..run.records import open_writer
from .core import Context, row, seconds_per_call, section

__all__ = ["bench_knn", "bench_cost", "cost_figure", "format_cost", "knn_memory_child", "faiss_worker", "FaissWorker"]


#: The in-process sides of the KNN comparison (FAISS runs in worker processes, see :class:`FaissWorker`).
SIDES = ("nnref", "nnref floats", "sklearn")


def _knn_sides(k: int, chunk: int | None = None) -> dict:
    """``side → fit_predict(bytes, floats, y, query bytes, query floats) → predictions`` for nnref on MNIST's
    bytes, nnref on normalised floats and scikit-learn (brute force, on the floats)."""
    options = {"chunk_size": chunk} if chunk else {}

    def nnref(Xb, Xf, y, Qb, Qf):
        return KNNClassifier(k, **options).fit(Xb, y).predict(Qb).cpu()

    def nnref_floats(Xb, Xf, y, Qb, Qf):
        return KNNClassifier(k, **options).fit(Xf, y).predict(Qf).cpu()

    def sklearn(Xb, Xf, y, Qb, Qf):
        from sklearn.neighbors import KNeighborsClassifier

        knn = KNeighborsClassifier(k, algorithm="brute").fit(Xf.cpu().numpy(), y.cpu().numpy())
        return torch.from_numpy(knn.predict(Qf.cpu().numpy()))

    return {"nnref": nnref, "nnref floats": nnref_floats, "sklearn": sklearn}


def _faiss_fit_predict(Xf, y, Qf, k: int) -> torch.Tensor:
    """FAISS's exact search as users run it (``IndexFlatL2`` on float32), voted with nnref's vote and tie rule."""
    import faiss

    index = faiss.IndexFlatL2(Xf.shape[1])
    index.add(Xf)
    _, idx = index.search(Qf, k)  # exact L2, nearest first
    return vote(y[torch.from_numpy(idx)])


def _openblas_kernels() -> str | None:
    """The kernel family of the OpenBLAS inside the faiss wheel (threadpoolctl), or None where it cannot be told."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    found = [
        d.get("architecture")
        for d in threadpool_info()
        if d.get("internal_api") == "openblas" and "faiss" in d.get("filepath", "")
    ]
    return found[0] if found else None


def faiss_worker(conn, root: str, k: int, n_test: int | None, threads: int) -> None:
    """A FAISS process: its own copy of the normalised splits; on each ``"run"`` it times fit + predict and sends
    (seconds, predictions).  First it sends what it runs: FAISS's version and OpenBLAS's kernels."""
    from ..data import load_splits

    torch.set_num_threads(threads)
    import faiss

    faiss.omp_set_num_threads(threads)
    data = load_splits(root, download=False, val_size=0)
    Xf, Qf = data.train_x.numpy(), (data.test_x[:n_test] if n_test else data.test_x).numpy()
    conn.send({"version": faiss.__version__, "openblas": _openblas_kernels()})
    while conn.recv() == "run":
        start = time.perf_counter()
        predictions = _faiss_fit_predict(Xf, data.train_y, Qf, k)
        conn.send((time.perf_counter() - start, predictions))
    conn.close()


class FaissWorker:
    """FAISS in a process of its own: the OpenBLAS inside the faiss-cpu wheel picks its kernels when it loads, from
    the CPU it knows or ``OPENBLAS_CORETYPE`` — a CPU newer than that OpenBLAS gets its generic (Prescott) kernels.
    Two workers measure FAISS as installed and as tuned (``OPENBLAS_CORETYPE`` naming this CPU's family)."""

    def __init__(self, root, k: int, n_test: int | None, threads: int, coretype: str | None = None) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.conn, child = spawn.Pipe()
        env = {"OPENBLAS_CORETYPE": coretype} if coretype else {}
        with _environment(env):  # a spawned child takes the environment at its start
            self.process = spawn.Process(target=faiss_worker, args=(child, str(root), k, n_test, threads), daemon=True)
            self.process.start()
        self.info = self.conn.recv()

    def run(self) -> tuple[float, torch.Tensor]:
        self.conn.send("run")
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send("stop")
        self.process.join(10)


@contextlib.contextmanager
def _environment(values: dict):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def openblas_coretype(flags: dict) -> str | None:
    """The ``OPENBLAS_CORETYPE`` of this CPU's family, from its flags (None: leave OpenBLAS's choice)."""
    return "SkylakeX" if flags.get("avx512f") else "Haswell" if flags.get("avx2") else None


def _faiss_workers(root, k: int, n_test: int | None, threads: int) -> dict:
    """``name → FaissWorker``: FAISS as installed and, where its OpenBLAS does not pick this CPU's kernels, tuned."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return {}
    workers = {"faiss": FaissWorker(root, k, n_test, threads)}
    tuned = openblas_coretype(knn_bytes.cpu_flags())
    if tuned and workers["faiss"].info["openblas"] not in (None, tuned):
        workers["faiss tuned"] = FaissWorker(root, k, n_test, threads, coretype=tuned)
    return workers


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_during(work: Callable[[], object]) -> tuple[int, object]:
    """(the peak resident memory ``work`` adds, in bytes, its result): a thread samples the resident set every
    millisecond while it runs (``ru_maxrss`` would also count what came before)."""
    before = _rss_bytes()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], _rss_bytes()) - before, result


def knn_memory_child(side: str, root: str, k: int, n_test: int | None, answer) -> None:
    """In a fresh process, the memory one KNN fit + prediction adds, in bytes, put on ``answer``: for FAISS and
    scikit-learn the peak of the two; for nnref the records it keeps, the fit's peak and the search's peak beyond
    the records.  Every input is resident before (MNIST's cache is memory-mapped: its pages are read in first)."""
    from ..data import load_splits

    splits = [load_splits(root, download=False, val_size=0, pixels=p) for p in ("bytes", "normalized")]
    b, f = ((s.train_x.clone(), s.test_x[:n_test].clone()) for s in splits)  # (clone: resident, not mapped)
    y = splits[1].train_y
    if side in ("faiss", "sklearn"):
        fit_predict = {"faiss": lambda x, q: _faiss_fit_predict(x.numpy(), y[: x.shape[0]], q.numpy(), k)}
        fit_predict["sklearn"] = lambda x, q: _knn_sides(k)["sklearn"](None, x, y[: x.shape[0]], None, q)
        fit_predict[side](f[0][:100], f[1][:10])  # its libraries loaded and thread pools started first
        answer.put({"peak": _peak_during(lambda: fit_predict[side](*f))[0]})
        return
    x, q = b if side == "nnref" else f
    KNNClassifier(k).fit(x[:100], y[:100]).predict(q[:10])
    fit_peak, knn = _peak_during(lambda: KNNClassifier(k).fit(x, y))
    search_peak, _ = _peak_during(lambda: knn.predict(q))
    answer.put({"records": knn.memory_bytes(), "fit_peak": fit_peak, "search_peak": search_peak})


def _peak_memory(side: str, root, k: int, n_test: int | None) -> dict:
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
    """nnref's KNN (k = 3) — on MNIST's bytes (int8 products, :mod:`nnref.fast.knn_bytes`) and on normalised floats —
    against FAISS's exact IndexFlatL2 (float32, as installed and with its OpenBLAS tuned to this CPU, each in a
    process of its own) and scikit-learn's brute force on the test set: median times of fit + predict (the sides
    taking turns), identical predictions, the records' memory and the peak extra memory (a fresh process per
    side; on CUDA, nnref's peak GPU allocation), the product the byte search ran and the CPU's flags."""
    p = ctx.profile
    return bench_knn(
        ctx.data, ctx.root, ctx.device, repeats=p.knn_repeats, n_test=p.knn_test, memory_of=p.knn_memory_of
    )


def bench_knn(
    data, root, device, k: int = 3, repeats: int = 2, n_test: int | None = None, memory_of=("nnref", "faiss")
) -> list[dict]:
    Xf, y = data.train_x, data.train_y
    Qf = data.test_x[:n_test] if n_test else data.test_x
    Xb, Qb = to_bytes(Xf), to_bytes(Qf)  # MNIST's own bytes (the exact inverse of the normalisation)
    sides = _knn_sides(k, chunk=None if device.type == "cpu" else 10000)  # a GPU holds the whole test set
    preds: dict = {}
    cases = {
        name: (lambda name=name, fn=fn: preds.__setitem__(name, fn(Xb, Xf, y, Qb, Qf))) for name, fn in sides.items()
    }
    workers = _faiss_workers(root, k, n_test, torch.get_num_threads()) if device.type == "cpu" else {}
    try:
        times = _rounds(cases, workers, preds, device, repeats)
        info = {name: w.info for name, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        sides["nnref"](Xb, Xf, y, Qb, Qf)
    memory = {name: _peak_memory(name, root, k, n_test) for name in memory_of if device.type == "cpu"}
    path = knn_bytes.path_info(Xb.device)
    common = {
        "byte_product": path["path"],
        "why": path["why"],
        "cpu_flags": " ".join(f for f, on in path["cpu_flags"].items() if on) or "none known",
    }
    title = f"KNN k={k}, {Qf.shape[0]} test × {Xf.shape[0]} train"
    rows = []
    for ours in ("nnref", "nnref floats"):
        for ref in ("faiss", "faiss tuned", "sklearn"):
            if ref not in times:
                continue
            rows.append(
                row(
                    f"{title}: {_label(ours)} vs {_label(ref)}",
                    times[ours],
                    times[ref],
                    unit="s",
                    scale=1.0,
                    identical_predictions=float((preds[ours] == preds[ref]).float().mean()),
                    identical_to_sklearn=float((preds[ours] == preds["sklearn"]).float().mean()),
                    accuracy=float((preds[ours] == data.test_y[: Qf.shape[0]].cpu()).float().mean()),
                    **_memory_notes(memory, ours, ref, device),
                    **({f"faiss_{key}": value for key, value in info[ref].items()} if ref in info else {}),
                    **common,
                )
            )
    return rows


def _rounds(cases: dict, workers: dict, preds: dict, device, repeats: int) -> dict:
    """Median seconds of each side, the in-process sides and the FAISS workers taking turns, after one untimed
    call each."""
    for name, w in workers.items():
        preds[name] = w.run()[1]
    times = {name: [] for name in [*cases, *workers]}
    for _ in range(repeats + 1):
        for name, fn in cases.items():
            times[name].append(seconds_per_call(fn, device, 1))
        for name, w in workers.items():
            seconds, preds[name] = w.run()
            times[name].append(seconds)
    return {name: statistics.median(t[1:]) for name, t in times.items()}  # the first round: warm-up


def _label(side: str) -> str:
    return {
        "nnref": "nnref on bytes",
        "nnref floats": "nnref on floats",
        "faiss": "FAISS IndexFlatL2 (as installed)",
        "faiss tuned": "FAISS IndexFlatL2 (OpenBLAS tuned)",
        "sklearn": "scikit-learn brute force",
    }[side]


def _memory_notes(memory: dict, ours: str, ref: str, device) -> dict:
    """The MiB each side keeps and adds: nnref's records, its fit's peak, its search's peak beyond the records;
    the reference's peak (fit and search: FAISS's includes its own copy of the records)."""
    if device.type == "cuda":
        return {"peak_memory_nnref_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    mib = {name: {key: value / 2**20 for key, value in m.items()} for name, m in memory.items()}
    notes = {}
    if ours in mib:
        notes |= {f"{key}_mib": value for key, value in mib[ours].items()}
    if ref.split()[0] in mib:
        notes["peak_memory_reference_mib"] = mib[ref.split()[0]]["peak"]
    return notes


# --------------------------------------------------------------------------------------------------
def format_cost(rows: list[dict]) -> str:
    return markdown_table(
        (
            "n",
            "KNN predict 1000 (ms)",
            "KNN on bytes predict 1000 (ms)",
            "softmax predict 1000 (ms)",
            "KNN memory (MiB)",
            "KNN bytes memory (MiB)",
            "softmax memory (MiB)",
        ),
        [
            (
                r["n"],
                f"{r['knn_predict_ms']:.1f}",
                f"{r['knn_bytes_predict_ms']:.1f}",
                f"{r['softmax_predict_ms']:.3f}",
                f"{r['knn_memory_mib']:.1f}",
                f"{r['knn_bytes_memory_mib']:.1f}",
                f"{r['softmax_memory_mib']:.3f}",
            )
            for r in rows
        ],
    )


@section("cost", key="cost", fmt=format_cost)
def cost_section(ctx: Context) -> list[dict]:
    """The lecture's cost claim: the time to classify 1,000 test images and the model's memory as the training
    set grows — KNN O(p n) and every record kept (as float32 and as MNIST's bytes), softmax regression O(p) and one
    W, b.  Writes the plot as PNG
    and to TensorBoard."""
    rows = bench_cost(ctx.data, ctx.device, sizes=ctx.profile.cost_sizes)
    _write_cost(rows, ctx.out, f"{ctx.device.type}-{time.strftime('%Y%m%d-%H%M%S')}")
    return rows


def bench_cost(
    data, device, sizes=(1000, 5000, 10000, 30000, 60000), n_query: int = 1000, repeats: int = 3
) -> list[dict]:
    rows = []
    q = data.test_x[:n_query]
    q_bytes = to_bytes(q)
    for n in sizes:
        n = min(n, data.train_x.shape[0])
        knn = KNNClassifier(3).fit(data.train_x[:n], data.train_y[:n])
        knn_bytes_ = KNNClassifier(3).fit(to_bytes(data.train_x[:n]), data.train_y[:n])
        model = SoftmaxRegression(784, 10).to(device)
        t_knn = statistics.median(seconds_per_call(lambda knn=knn: knn.predict(q), device, 1) for _ in range(repeats))
        t_bytes = statistics.median(
            seconds_per_call(lambda knn=knn_bytes_: knn.predict(q_bytes), device, 1) for _ in range(repeats)
        )
        with torch.no_grad():
            t_lin = statistics.median(
                seconds_per_call(lambda model=model: model(q).argmax(-1), device, 5) for _ in range(repeats)
            )
        mem_lin = sum(p.numel() * p.element_size() for p in model.parameters())
        rows.append(
            {
                "n": n,
                "knn_predict_ms": t_knn * 1e3,
                "knn_bytes_predict_ms": t_bytes * 1e3,
                "softmax_predict_ms": t_lin * 1e3,
                "knn_memory_mib": knn.memory_bytes() / 2**20,
                "knn_bytes_memory_mib": knn_bytes_.memory_bytes() / 2**20,
                "softmax_memory_mib": mem_lin / 2**20,
            }
        )
    return rows


def cost_figure(rows):
    from ..viz import subplots

    n = [r["n"] for r in rows]
    fig, (a1, a2) = subplots(1, 2, figsize=(9, 3.6))
    a1.plot(n, [r["knn_predict_ms"] for r in rows], "o-", label="KNN (k=3)")
    a1.plot(n, [r["knn_bytes_predict_ms"] for r in rows], "^-", label="KNN on bytes (k=3)")
    a1.plot(n, [r["softmax_predict_ms"] for r in rows], "s-", label="softmax regression")
    a1.set(
        xlabel="training-set size n", ylabel="ms to predict 1000 test images", title="prediction time: O(p n) vs O(p)"
    )
    a2.plot(n, [r["knn_memory_mib"] for r in rows], "o-", label="KNN (stores every record)")
    a2.plot(n, [r["knn_bytes_memory_mib"] for r in rows], "^-", label="KNN on bytes (a byte per pixel)")
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
            w.add_scalar("cost/knn_bytes_memory_mib", r["knn_bytes_memory_mib"], r["n"])
            w.add_scalar("cost/knn_bytes_predict_ms", r["knn_bytes_predict_ms"], r["n"])
