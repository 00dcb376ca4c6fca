"""How soon the commands a student runs dozens of times answer: each a new process, timed from its start."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .core import Context, section

__all__ = ["time_command", "time_to_first_step"]

#: What each command must answer within (seconds, on 2 cores).
TARGETS = {"help": 0.5, "first step": 2.0, "gradcheck": 3.0, "grading": 3.0}

#: A right student's file to grade (the tests' complete solution of the kit: the bench runs from a checkout).
SOLUTION = Path(__file__).resolve().parents[2] / "tests" / "exercise_solutions.py"


#: The floor under any first step taken with ``torch.optim``: ``import torch`` and one ``SGD.step()``, which imports
#: ``torch._dynamo`` (``torch/optim/optimizer.py``: ``_use_grad_for_differentiable``; ``Optimizer.__init__`` too).
FLOOR = (
    "import torch; w = torch.zeros(1, requires_grad=True); o = torch.optim.SGD([w], lr=0.1); "
    "(w * 2).sum().backward(); o.step()"
)


def time_command(args: list[str], env: dict | None = None, python: list[str] | None = None) -> float:
    """Seconds from starting ``python -m nnref ARGS`` (or ``python PYTHON…``) to its exit (which must be 0)."""
    command = [sys.executable, *(python or ["-m", "nnref", *args])]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return elapsed


def time_to_first_step(args: list[str], env: dict | None = None) -> float:
    """Seconds from starting ``python -m nnref train …`` to the end of its first training step: the run stops itself
    there (fail point ``step@1=stop``, a SIGSTOP), the stop is seen with ``waitpid``, and the process is killed."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "nnref", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {}), "NNREF_FAILPOINT": "step@1=stop"},
    )
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    elapsed = time.perf_counter() - start
    if not os.WIFSTOPPED(status):  # it ended (and waitpid reaped it): say why
        process.returncode = os.waitstatus_to_exitcode(status)
        raise RuntimeError(f"nnref {' '.join(args)} ended before its first step: {process.stderr.read()[-500:]}")
    process.kill()
    process.wait()
    process.stderr.close()
    return elapsed


def _training_count(root: Path) -> int:
    from ..data import IMAGE_FILES, check_idx_file

    return check_idx_file(Path(root) / "MNIST" / "raw" / IMAGE_FILES[True][1], "labels")


GRADING = "nnref gradcheck --functions, a right file graded whole (nine Functions, each in its own process)"
GRADING_VS_TORCH = "the same grading vs python -c 'import torch'"
FIRST_VS_FLOOR = "nnref train softmax to its first step vs import torch + one SGD step"


@section("startup")
def startup_section(ctx: Context) -> list[dict]:
    """The commands a student runs dozens of times, each in a new process, the median of several starts:
    ``nnref --help``; ``nnref train softmax`` on MNIST already on disk (and decoded once before: the cache of
    nnref.data) to the end of its first step; ``nnref gradcheck`` — the nine Functions in float64 — to its table.
    The reference column is the target; one more row sets the first step beside its floor, ``import torch`` and
    one ``torch.optim.SGD`` step in a bare ``python -c`` (timed alternately with it).  Grading a right student's
    file (``nnref gradcheck --functions``, the import of torch counted) is timed against its target, then beside a
    bare ``python -c 'import torch'``."""
    runs = ctx.profile.startup_runs
    with tempfile.TemporaryDirectory() as tmp:
        env = {"NNREF_CACHE_DIR": str(Path(tmp) / "cache")}
        val_size = min(5000, _training_count(ctx.root) // 10)  # the default, or a tenth of a tiny test set
        train = ["train", "softmax", "--data-root", str(ctx.root), "--no-download", "--logdir", tmp, "--quiet"]
        train += ["--val-size", str(val_size)]
        time_to_first_step([*train, "--run-name", "warm"], env)  # decodes MNIST once, into the cache
        first, floor = [], []
        for i in range(runs):  # alternating, so that a busy moment falls on both sides alike
            first.append(time_to_first_step([*train, "--run-name", f"run{i}"], env))
            floor.append(time_command([], env, python=["-c", FLOOR]))
        helps = [time_command(["--help"], env) for _ in range(runs)]
        checks = [time_command(["gradcheck"], env) for _ in range(runs)]
        grading, bare = [], []
        for _ in range(runs if SOLUTION.is_file() else 0):  # alternating, as above
            grading.append(time_command(["gradcheck", "--functions", str(SOLUTION), "--json", "-"], env))
            bare.append(time_command([], env, python=["-c", "import torch"]))
    rows = []
    for name, what, times in (
        ("help", "nnref --help", helps),
        ("first step", "nnref train softmax to its first step", first),
        ("gradcheck", "nnref gradcheck", checks),
        ("grading", GRADING, grading),
    ):
        if not times:
            continue
        rows.append(
            {
                "name": f"start-up: {what} (median of {runs})",
                "nnref": statistics.median(times),
                "reference": TARGETS[name],
                "unit": "s",
                "ratio": statistics.median(times) / TARGETS[name],
                "each": [round(t, 2) for t in times],
            }
        )
    rows.append(
        {
            "name": f"start-up: {FIRST_VS_FLOOR} (median of {runs})",
            "nnref": statistics.median(first),
            "reference": statistics.median(floor),
            "unit": "s",
            "ratio": statistics.median(first) / statistics.median(floor),
            "each": [round(t, 2) for t in floor],
        }
    )
    if grading:
        rows.append(
            {
                "name": f"start-up: {GRADING_VS_TORCH} (median of {runs})",
                "nnref": statistics.median(grading),
                "reference": statistics.median(bare),
                "unit": "s",
                "ratio": statistics.median(grading) / statistics.median(bare),
                "each": [round(t, 2) for t in bare],
            }
        )
    return rows
