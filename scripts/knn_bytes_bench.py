"""KNN on MNIST in bytes (nnref.fast.knn_bytes) against FAISS IndexFlatL2, nnref's float path and scikit-learn.

k = 3, the test images against all 60,000 training images, 2 threads.  Every side is timed fit + predict (the
records stored, the neighbours searched, the vote), the sides taking turns for several rounds (medians).
FAISS runs in worker processes — one as installed, one with OPENBLAS_CORETYPE naming this CPU's kernel family
(the OpenBLAS 0.3.15 inside the faiss-cpu wheel may not know a newer CPU and fall back to its generic
Prescott kernels) — so that both are measured; the workers time their own calls, with nothing else running.
Peak extra memory: a fresh process per side, the resident set sampled every millisecond.

    python scripts/knn_bytes_bench.py --data-root /work/shared/data [--rounds 3] [--n-test 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from nnref.data import load_mnist, normalize
from nnref.fast import knn_bytes as kb
from nnref.knn import KNNClassifier, vote


def load(root, n_test):
    Xtr, ytr = load_mnist(root, train=True, download=False)
    Xte, yte = load_mnist(root, train=False, download=False)
    Xte, yte = (Xte[:n_test], yte[:n_test]) if n_test else (Xte, yte)
    return Xtr.reshape(-1, 784), ytr, Xte.reshape(-1, 784), yte


# --------------------------------------------------------------------------------------------------
# The sides (each: records uint8, labels, queries uint8 → predictions)
# --------------------------------------------------------------------------------------------------
def bytes_side(path):
    def run(R, y, Q, k):
        _, idx = kb.kneighbors(kb.prepare(R), Q, k, path=path)
        return vote(y[idx], 10)

    return run


def nnref_float(R, y, Q, k):
    return KNNClassifier(k).fit(normalize(R), y).predict(normalize(Q))


def faiss_search(Rf, y, Qf, k):
    import faiss

    index = faiss.IndexFlatL2(Rf.shape[1])
    index.add(Rf)
    _, idx = index.search(Qf, k)
    return vote(y[torch.from_numpy(idx)], 10)


def sklearn_side(R, y, Q, k):
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(k, algorithm="brute").fit(normalize(R).double().numpy(), y.numpy())
    return torch.from_numpy(clf.predict(normalize(Q).double().numpy()))


def _faiss_worker(conn, root, n_test, threads, k):
    """A FAISS process: loads MNIST, then on each "run" times add + search + vote and sends (seconds, preds)."""
    torch.set_num_threads(threads)
    import faiss

    faiss.omp_set_num_threads(threads)
    R, y, Q, _ = load(root, n_test)
    Rf, Qf = normalize(R).numpy(), normalize(Q).numpy()  # float32, normalised: what the nnref bench gives FAISS
    try:
        from threadpoolctl import threadpool_info

        arch = [
            d.get("architecture")
            for d in threadpool_info()
            if d.get("internal_api") == "openblas" and "faiss" in d.get("filepath", "")
        ]
    except ImportError:
        arch = []
    conn.send({"openblas_architecture": arch[0] if arch else None, "faiss": faiss.__version__})
    while conn.recv() == "run":
        t = time.perf_counter()
        pred = faiss_search(Rf, y, Qf, k)
        conn.send((time.perf_counter() - t, pred))
    conn.close()


class FaissProcess:
    def __init__(self, root, n_test, threads, k, coretype=None):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        saved = os.environ.get("OPENBLAS_CORETYPE")
        if coretype:
            os.environ["OPENBLAS_CORETYPE"] = coretype  # a spawned child copies the environment at start
        try:
            self.proc = ctx.Process(target=_faiss_worker, args=(child, str(root), n_test, threads, k), daemon=True)
            self.proc.start()
        finally:
            if saved is None:
                os.environ.pop("OPENBLAS_CORETYPE", None)
            else:
                os.environ["OPENBLAS_CORETYPE"] = saved
        self.info = self.conn.recv()

    def run(self):
        self.conn.send("run")
        return self.conn.recv()

    def close(self):
        self.conn.send("stop")
        self.proc.join(10)


def _coretype(flags):
    return "SkylakeX" if flags.get("avx512f") else "Haswell" if flags.get("avx2") else None


# --------------------------------------------------------------------------------------------------
# Memory: a fresh process per side
# --------------------------------------------------------------------------------------------------
def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_during(fn):
    before, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    s = threading.Thread(target=sample, daemon=True)
    s.start()
    out = fn()
    done.set()
    s.join()
    return max(peak[0], _rss()) - before, out


def _memory_child(side, root, n_test, threads, k, answer):
    torch.set_num_threads(threads)
    R, y, Q, _ = load(root, n_test)
    if side in ("bytes", "bytes-float"):
        path = "int_mm" if side == "bytes" else "float"
        kb.kneighbors(kb.prepare(R[:100]), Q[:10], k, path=path)  # libraries loaded, thread pools started
        held, index = _peak_during(lambda: kb.prepare(R))
        search, _ = _peak_during(lambda: kb.kneighbors(index, Q, k, path=path))
        answer.put(
            {
                "records_mib": index.nbytes() / 2**20,
                "records_resident_mib": held / 2**20,
                "search_peak_extra_mib": search / 2**20,
            }
        )
    elif side == "nnref-float":
        Rn, Qn = normalize(R), normalize(Q)
        KNNClassifier(k).fit(Rn[:100], y[:100]).predict(Qn[:10])
        knn = KNNClassifier(k).fit(Rn, y)
        search, _ = _peak_during(lambda: knn.predict(Qn))
        answer.put({"records_mib": knn.memory_bytes() / 2**20, "search_peak_extra_mib": search / 2**20})
    else:  # faiss: its own copy of the records is part of what it adds
        import faiss

        faiss.omp_set_num_threads(threads)
        Rf, Qf = normalize(R).numpy(), normalize(Q).numpy()
        faiss_search(Rf[:100], y[:100], Qf[:10], k)
        peak, _ = _peak_during(lambda: faiss_search(Rf, y, Qf, k))
        answer.put({"records_mib": Rf.nbytes / 2**20, "fit_and_search_peak_extra_mib": peak / 2**20})


def memory_of(side, root, n_test, threads, k):
    ctx = multiprocessing.get_context("spawn")
    answer = ctx.Queue()
    p = ctx.Process(target=_memory_child, args=(side, str(root), n_test, threads, k, answer))
    p.start()
    p.join()
    return answer.get(timeout=5) if p.exitcode == 0 else {"error": f"exit code {p.exitcode}"}


def _memory_report(a, R, skip) -> dict:
    memory = {}
    print("\n## memory (fresh process per side, MiB)\n")
    for side in [s for s in ("bytes", "bytes-float", "nnref-float", "faiss") if s not in skip]:
        memory[side] = memory_of(side, a.data_root, a.n_test, a.threads, a.k)
        print(
            f"- {side}: "
            + ", ".join(f"{key} {v:.1f}" if isinstance(v, float) else f"{key} {v}" for key, v in memory[side].items()),
            flush=True,
        )
    print(
        f"- records as uint8 ({R.shape[0]:,} × {R.shape[1]}): {R.numel() / 2**20:.1f} MiB "
        f"({R.numel() / 1e6:.1f} MB); as float32: {R.numel() * 4 / 2**20:.1f} MiB ({R.numel() * 4 / 1e6:.1f} MB)"
    )
    return memory


# --------------------------------------------------------------------------------------------------
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("NNREF_DATA_ROOT", "data"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-test", type=int, default=0, help="test images (0: all 10,000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the memory figures")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--skip", default="", help="comma-separated sides to leave out")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    k, skip = a.k, set(filter(None, a.skip.split(",")))
    R, y, Q, yq = load(a.data_root, a.n_test)
    flags = kb.cpu_flags()
    info = {
        "cpu": cpu_model(),
        "cpu_flags": flags,
        "threads": a.threads,
        "torch": torch.__version__,
        "byte_path": kb.path_info(),
        "test_images": Q.shape[0],
        "train_images": R.shape[0],
        "k": k,
    }
    print(f"# {info['cpu']}, {a.threads} threads, torch {torch.__version__}")
    print(
        "# flags: "
        + " ".join(f for f, on in flags.items() if on)
        + "; absent: "
        + (" ".join(f for f, on in flags.items() if not on) or "none")
    )
    print(f"# byte path: {info['byte_path']['path']} ({info['byte_path']['why']})")

    if a.memory_only:
        return _memory_report(a, R, skip)
    sides = {
        name: (lambda fn=fn: fn(R, y, Q, k))
        for name, fn in (
            ("bytes", bytes_side("int_mm")),
            ("bytes-float", bytes_side("float")),
            ("nnref-float", nnref_float),
        )
        if name not in skip
    }
    workers = {}
    if "faiss" not in skip:
        workers["faiss"] = FaissProcess(a.data_root, a.n_test, a.threads, k)
        print(
            f"# faiss {workers['faiss'].info['faiss']}, OpenBLAS kernels as installed: "
            f"{workers['faiss'].info['openblas_architecture']}"
        )
    ct = _coretype(flags)
    if (
        "faiss-tuned" not in skip
        and ct
        and workers.get("faiss")
        and workers["faiss"].info["openblas_architecture"] != ct
    ):
        workers["faiss-tuned"] = FaissProcess(a.data_root, a.n_test, a.threads, k, coretype=ct)
        print(f"# faiss-tuned: OPENBLAS_CORETYPE={ct} → {workers['faiss-tuned'].info['openblas_architecture']}")

    preds, times = {}, {name: [] for name in [*sides, *workers]}
    for name, w in workers.items():  # one untimed call each (warm-up)
        preds[name] = w.run()[1]
    for name, fn in sides.items():
        preds[name] = fn()
    for r in range(a.rounds):
        for name, fn in sides.items():
            t = time.perf_counter()
            preds[name] = fn()
            times[name].append(time.perf_counter() - t)
        for name, w in workers.items():
            dt, preds[name] = w.run()
            times[name].append(dt)
        print(f"# round {r + 1}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in times.items()), flush=True)
    for w in workers.values():
        w.close()
    # the byte search alone, without prepare() (the "fit"), for the record
    index = kb.prepare(R)
    search_only = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        kb.kneighbors(index, Q, k, path="int_mm")
        search_only.append(time.perf_counter() - t)
    t = time.perf_counter()
    kb.prepare(R)
    prepare_s = time.perf_counter() - t

    if not a.no_sklearn:
        t = time.perf_counter()
        preds["sklearn"] = sklearn_side(R, y, Q, k)
        times["sklearn"] = [time.perf_counter() - t]
    ref = preds.get("sklearn")
    med = {n: statistics.median(v) for n, v in times.items()}
    rows = []
    print(
        f"\n## KNN k={k}, {Q.shape[0]} test × {R.shape[0]} train, {a.threads} threads "
        f"(medians of {a.rounds} alternating rounds; fit + predict)\n"
    )
    print("| side | seconds | / faiss | / faiss-tuned | identical to scikit-learn | accuracy |")
    print("|---|---|---|---|---|---|")
    for n, s in med.items():
        row = {
            "side": n,
            "seconds": s,
            "all_seconds": times[n],
            "vs_faiss": s / med["faiss"] if "faiss" in med else None,
            "vs_faiss_tuned": s / med["faiss-tuned"] if "faiss-tuned" in med else None,
            "identical_to_sklearn": float((preds[n] == ref).float().mean()) if ref is not None else None,
            "accuracy": float((preds[n] == yq).float().mean()),
        }
        rows.append(row)

        def fmt(v):
            return f"{v:.3f}" if v is not None else "–"

        ident = f"{row['identical_to_sklearn']:.2%}" if ref is not None else "–"
        print(
            f"| {n} | {s:.3f} | {fmt(row['vs_faiss'])} | {fmt(row['vs_faiss_tuned'])} | {ident} | "
            f"{row['accuracy']:.2%} |"
        )
    print(
        f"\nbyte search alone (records prepared once): median {statistics.median(search_only):.3f} s; "
        f"prepare() {prepare_s:.3f} s"
    )
    memory = {} if a.no_memory else _memory_report(a, R, skip)
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "info": info,
                    "rows": rows,
                    "search_only_seconds": search_only,
                    "prepare_seconds": prepare_s,
                    "memory": memory,
                    "faiss": {n: w.info for n, w in workers.items()},
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
