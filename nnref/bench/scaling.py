"""Scaling out: one process against a ``torchrun`` job of two."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ..run.checkpoint import load_checkpoint
from .core import Context, row, section

__all__ = ["bench_distributed"]


def _run_job(args: list[str], ranks: int, threads: int, logdir: Path, name: str) -> dict:
    """``nnref train`` in one process, or under ``torchrun`` with ``ranks`` processes; the run's final numbers."""
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
        if ranks > 1
        else [sys.executable]
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    job = subprocess.run(
        [*launcher, "-m", "nnref", *args, "--logdir", str(logdir), "--run-name", name, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
    )
    if job.returncode != 0:
        raise RuntimeError(f"nnref {' '.join(args)} ({ranks} process(es)) failed: {job.stderr.strip()[-500:]}")
    return load_checkpoint(logdir / name / "checkpoint.pt")["final"]


@section("distributed")
def distributed_section(ctx: Context) -> list[dict]:
    """One process (all cores) against torchrun --nproc-per-node 2 (one core per rank): a training epoch of the
    MLP, and KNN's search with the records sharded — the sides alternating.  On a 2-core machine this shows the
    cost of communication more than a speed-up: both sides have the same two cores."""
    p = ctx.profile
    return bench_distributed(ctx.root, p.distributed_repeats, p.distributed_limit, p.distributed_jobs)


def bench_distributed(root, repeats: int = 2, limit: int | None = None, jobs=("mlp", "knn")) -> list[dict]:
    cores = os.cpu_count() or 2
    common = ["--data-root", str(root), "--no-download", "--val-size", "0"] + (
        ["--limit-train", str(limit)] if limit else []
    )
    commands = {
        "mlp": ["train", "mlp", "--epochs", "1", "--batch-size", "128", *common],
        "knn": ["train", "knn", "--k", "3", *common],
    }
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for ranks, threads in ((1, cores), (2, max(1, cores // 2))):
                for what in jobs:
                    final = _run_job(commands[what], ranks, threads, Path(tmp), f"{what}-{ranks}-{r}")
                    results.setdefault((what, ranks), []).append(final)
    med = {
        key: {
            k: statistics.median(f[k] if not isinstance(f[k], list) else max(f[k]) for f in finals)
            for k in finals[0]
            if isinstance(finals[0][k], (int, float, list))
        }
        for key, finals in results.items()
    }
    rows = []
    if "mlp" in jobs:
        rows.append(
            row(
                "MLP 784-800-10, one training epoch: torchrun 2 processes × 1 core vs 1 process × 2 cores",
                med[("mlp", 2)]["train_seconds"],
                med[("mlp", 1)]["train_seconds"],
                unit="s",
                scale=1.0,
                test_accuracy_2_ranks=med[("mlp", 2)]["test_acc"],
                test_accuracy_1_process=med[("mlp", 1)]["test_acc"],
            )
        )
    if "knn" in jobs:
        rows.append(
            row(
                "KNN k=3, the test set against all training records: 2 ranks (records sharded) vs 1 process",
                med[("knn", 2)]["test_seconds"],
                med[("knn", 1)]["test_seconds"],
                unit="s",
                scale=1.0,
                records_mib_per_rank=med[("knn", 2)]["records_bytes_per_rank"] / 2**20,
                records_mib_one_process=med[("knn", 1)]["records_bytes_per_rank"] / 2**20,
                test_accuracy_2_ranks=med[("knn", 2)]["test_acc"],
                test_accuracy_1_process=med[("knn", 1)]["test_acc"],
            )
        )
    return rows
