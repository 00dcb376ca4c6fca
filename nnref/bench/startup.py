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
    times = _time_commands(ctx.root, runs)
    rows = [
        _row(f"start-up: {what} (median of {runs})", times[name], [TARGETS[name]] * runs, times[name])
        for name, what in (
            ("help", "nnref --help"),
            ("first step", "nnref train softmax to its first step"),
            ("gradcheck", "nnref gradcheck"),
            ("grading", GRADING),
        )
        if times[name]
    ]
    rows.append(_row(f"start-up: {FIRST_VS_FLOOR} (median of {runs})", times["first step"], times["floor"]))
    if times["grading"]:
        rows.append(_row(f"start-up: {GRADING_VS_TORCH} (median of {runs})", times["grading"], times["bare"]))
    return rows


def _time_commands(root, runs: int) -> dict[str, list[float]]:
    """Each command's start-up, ``runs`` times, each in a new process; the two pairs timed alternately, so that a
    busy moment falls on both sides alike."""
    times: dict[str, list[float]] = {k: [] for k in ("first step", "floor", "help", "gradcheck", "grading", "bare")}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"NNREF_CACHE_DIR": str(Path(tmp) / "cache")}
        val_size = min(5000, _training_count(root) // 10)  # the default, or a tenth of a tiny test set
        train = ["train", "softmax", "--data-root", str(root), "--no-download", "--logdir", tmp, "--quiet"]
        train += ["--val-size", str(val_size)]
        time_to_first_step([*train, "--run-name", "warm"], env)  # decodes MNIST once, into the cache
        for i in range(runs):
            times["first step"].append(time_to_first_step([*train, "--run-name", f"run{i}"], env))
            times["floor"].append(time_command([], env, python=["-c", FLOOR]))
        times["help"] = [time_command(["--help"], env) for _ in range(runs)]
        times["gradcheck"] = [time_command(["gradcheck"], env) for _ in range(runs)]
        for _ in range(runs if SOLUTION.is_file() else 0):
            times["grading"].append(time_command(["gradcheck", "--functions", str(SOLUTION), "--json", "-"], env))
            times["bare"].append(time_command([], env, python=["-c", "import torch"]))
    return times


def _row(name: str, times: list[float], reference: list[float], each: list[float] | None = None) -> dict:
    """A row: the median of ``times`` beside the median of ``reference`` (a target, or a floor timed alongside),
    and each time of ``each`` (the reference's, where it was timed)."""
    ours, theirs = statistics.median(times), statistics.median(reference)
    each = reference if each is None else each
    return {
        "name": name,
        "nnref": ours,
        "reference": theirs,
        "unit": "s",
        "ratio": ours / theirs,
        "each": [round(t, 2) for t in each],
    }
