#!/usr/bin/env python
"""Re-measure every figure the README reports; the outputs land in docs/results/ (and its pictures in docs/).

    python scripts/reproduce.py                      # everything (about an hour on 2 CPU cores)
    python scripts/reproduce.py --only results,playground

Each part runs the committed command the README names and writes what it printed, or the JSON it wrote, with
the machine, the torch version and the date.  MNIST comes from --data-root, else $NNREF_DATA_ROOT.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"

#: The README's results table and the lecture's unfused path: (name, nnref train arguments).
TRAINING = [
    ("softmax", ["softmax"]),
    ("logreg-0", ["logreg", "--positive-class", "0"]),
    ("mlp-800", ["mlp", "--hidden", "800"]),
    ("knn", ["knn", "--k", "1,3,5", "--val-size", "0"]),
    ("softmax-unfused", ["softmax", "--loss", "unfused"]),
    ("logreg-0-unfused", ["logreg", "--positive-class", "0", "--loss", "unfused"]),
    ("mlp-800-unfused", ["mlp", "--loss", "unfused"]),
    ("mlp-800-amp-bf16", ["mlp", "--amp", "bf16"]),
    ("mlp-800-fast-recipe", ["mlp", "--batch-size", "512", "--lr", "0.15", "--nesterov", "--epochs", "15"]),
]


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> dict:
    import torch

    from nnref.fast.knn_bytes import cpu_flags

    return {
        "machine": cpu_model(),
        "cpu_flags": " ".join(flag for flag, on in cpu_flags().items() if on),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def run(cmd: list[str], log: Path | None = None, env: dict | None = None, check: bool = True) -> tuple[str, float]:
    """Run a command; keep its output (with the command, the machine and the wall time) in ``log``."""
    start = time.perf_counter()
    job = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if log is not None:
        head = json.dumps(
            {"command": shlex.join(cmd), "wall_seconds": round(wall, 1), "exit": job.returncode, **machine()}
        )
        log.write_text(f"# {head}\n{job.stdout}{job.stderr}")
    if check and job.returncode != 0:
        sys.exit(f"failed ({job.returncode}): {shlex.join(cmd)}\n{job.stderr[-3000:]}")
    return job.stdout, wall


def nnref(*args: str) -> list[str]:
    return [sys.executable, "-m", "nnref", *args]


def part_results(data_root: str, tmp: Path) -> None:
    """The MNIST results table: accuracy, training and wall time of each README command."""
    import torch

    rows = []
    for name, args in TRAINING:
        cmd = nnref(
            "train",
            *args,
            "--data-root",
            data_root,
            "--no-download",
            "--logdir",
            str(tmp),
            "--run-name",
            name,
            "--quiet",
            "--device",
            "cpu",
        )
        _, wall = run(cmd)
        state = torch.load(tmp / name / "checkpoint.pt", weights_only=True)
        rows.append(
            {
                "name": name,
                "command": "nnref train " + shlex.join(args),
                "wall_seconds": wall,
                **{k: v for k, v in state["final"].items()},
                "results_by_k": state.get("results"),
                "best_k": state.get("best_k"),
                "config": state["config"],
            }
        )
        print(f"  {name}: test accuracy {state['final']['test_acc']:.2%}", flush=True)
    (RESULTS / "mnist-results.json").write_text(json.dumps({**machine(), "runs": rows}, indent=1))


def part_gradcheck(data_root: str, tmp: Path) -> None:
    run(nnref("gradcheck"), RESULTS / "gradcheck.log")
    run(
        nnref(
            "gradcheck",
            "--sweep",
            "--png",
            "docs/gradcheck-sweep.png",
            "--logdir",
            str(tmp),
            "--json",
            str(RESULTS / "gradcheck-sweep.json"),
        ),
        RESULTS / "gradcheck-sweep.log",
    )
    run(nnref("gradcheck", "--cost", "--json", str(RESULTS / "gradcheck-cost.json")), RESULTS / "gradcheck-cost.log")


def part_playground(data_root: str, tmp: Path) -> None:
    run(
        nnref("playground", "--seeds", "10", "--json", str(RESULTS / "playground-seeds.json")),
        RESULTS / "playground-seeds.log",
    )
    for dataset in ("xor", "circles"):  # the README's claim: one hidden layer of four tanh units is enough
        run(
            nnref(
                "playground",
                "--dataset",
                dataset,
                "--model",
                "mlp",
                "--hidden",
                "4",
                "--seeds",
                "10",
                "--json",
                str(RESULTS / f"playground-{dataset}-hidden4-seeds.json"),
            ),
            RESULTS / f"playground-{dataset}-hidden4-seeds.log",
        )
    run(nnref("playground", "--dataset", "spirals", "--logdir", str(tmp), "--save-png", str(tmp / "png"), "--quiet"))
    shutil.copy(tmp / "png" / "spirals-summary.png", ROOT / "docs" / "playground-spirals-summary.png")


def part_bench(data_root: str, tmp: Path) -> None:
    run(nnref("bench", "--data-root", data_root, "--out", str(tmp)), RESULTS / "bench-cpu.log")
    (report,) = tmp.glob("bench-cpu-*.json")
    shutil.copy(report, RESULTS / "bench-cpu.json")
    (cost,) = tmp.glob("cost-cpu-*.png")
    shutil.copy(cost, ROOT / "docs" / "cost-cpu.png")


def part_screenshots(data_root: str, tmp: Path) -> None:
    run(
        [sys.executable, "scripts/tensorboard_screenshots.py", "--data-root", data_root, "--out", "docs"],
        RESULTS / "tensorboard-screenshots.log",
    )


def part_runs(data_root: str, tmp: Path) -> None:
    """`nnref runs` on a folder with a finished, an interrupted (killed after its first checkpoint) and a
    diverged run."""
    common = [
        "--data-root",
        data_root,
        "--no-download",
        "--logdir",
        str(tmp),
        "--limit-train",
        "10000",
        "--quiet",
        "--device",
        "cpu",
    ]
    run(nnref("train", "softmax", "--epochs", "2", "--run-name", "softmax-finished", *common))
    run(nnref("train", "mlp", "--lr", "1e6", "--run-name", "mlp-diverged", *common), check=False)  # exits 1
    # SIGKILL at step 158, placed by a fail point (what a crash or a pre-empted job looks like)
    run(
        nnref("train", "mlp", "--epochs", "10", "--run-name", "mlp-interrupted", "--checkpoint-every", "79", *common),
        env={"NNREF_FAILPOINT": "step@158=kill"},
        check=False,
    )
    run(nnref("runs", "--logdir", str(tmp)), RESULTS / "runs.log")


def part_suite(data_root: str, tmp: Path) -> None:
    """The README's test command, timed (real MNIST and the browser included), with every test's duration."""
    run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0.5"],
        RESULTS / "test-suite.log",
        env={
            "NNREF_DATA_ROOT": data_root,
            "MPLBACKEND": "Agg",
            "NNREF_REQUIRE_BROWSER": "1",
            "NNREF_REQUIRE_MNIST": "1",
        },
    )


def part_lab(data_root: str, tmp: Path) -> None:
    """The lab's frame rates and latencies, the digit page and the accuracy on rendered digits (nnref bench's
    sections lab and digits), and the lab's pictures in docs/."""
    run(nnref("bench", "--only", "lab,digits", "--data-root", data_root, "--out", str(tmp)), RESULTS / "bench-lab.log")
    (report,) = tmp.glob("bench-cpu-*.json")
    shutil.copy(report, RESULTS / "bench-lab.json")
    run(
        [sys.executable, "scripts/lab_screenshots.py", "--data-root", data_root, "--out", "docs"],
        RESULTS / "lab-screenshots.log",
    )


def part_mnist(data_root: str, tmp: Path) -> None:
    """The lab's /mnist page: time to 90% / 96% from Play, frames per second, two pages (nnref bench's mnist)."""
    run(nnref("bench", "--only", "mnist", "--data-root", data_root, "--out", str(tmp)), RESULTS / "bench-mnist.log")
    (report,) = tmp.glob("bench-cpu-*.json")
    shutil.copy(report, RESULTS / "bench-mnist.json")


def part_house(data_root: str, tmp: Path) -> None:
    """What the listing's restructure must keep: each Function's call beside its textbook Function, the training
    step beside torch.nn's, and the commands' start-up with the grading of a student's file (nnref bench's floor,
    steps and startup)."""
    sections = ("floor,steps,startup", "--data-root", data_root, "--out", str(tmp))
    run(nnref("bench", "--only", *sections), RESULTS / "bench-house.log")
    (report,) = tmp.glob("bench-cpu-*.json")
    shutil.copy(report, RESULTS / "bench-house.json")


def part_classroom(data_root: str, tmp: Path) -> None:
    """A class on one server: 100 pages, the teacher's view open beside closed, and 30 /mnist pages (nnref bench's
    classroom)."""
    sections = ("classroom", "--data-root", data_root, "--out", str(tmp))
    run(nnref("bench", "--only", *sections), RESULTS / "bench-classroom.log")
    (report,) = tmp.glob("bench-cpu-*.json")
    shutil.copy(report, RESULTS / "bench-classroom.json")


def part_stress(data_root: str, tmp: Path) -> None:
    """scripts/stress.py: the soak of interruptions, the killed-rank torchrun test 20 times, the lab's memory."""
    stress = [sys.executable, "scripts/stress.py"]
    run([*stress, "soak", "--interruptions", "200", "--data-root", data_root], RESULTS / "stress-soak.log")
    run([*stress, "killed-rank", "--times", "20"], RESULTS / "stress-killed-rank.log", check=False)
    run([*stress, "lab", "--minutes", "10"], RESULTS / "stress-lab.log")


def part_mutation(data_root: str, tmp: Path) -> None:
    """scripts/mutation.py: the mutation score of the Functions and KNN's vote, and of the lab's rules (exit 1 while
    a mutant survives)."""
    run([sys.executable, "scripts/mutation.py", "--only", "lecture"], RESULTS / "mutation.log", check=False)
    run([sys.executable, "scripts/mutation.py", "--only", "lab"], RESULTS / "mutation-lab.log", check=False)


PARTS = {
    "results": part_results,
    "gradcheck": part_gradcheck,
    "playground": part_playground,
    "bench": part_bench,
    "screenshots": part_screenshots,
    "runs": part_runs,
    "suite": part_suite,
    "lab": part_lab,
    "mnist": part_mnist,
    "house": part_house,
    "classroom": part_classroom,
    "stress": part_stress,
    "mutation": part_mutation,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("NNREF_DATA_ROOT", "data"))
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    data_root = str(Path(args.data_root).resolve())
    for name in parts:
        start = time.perf_counter()
        print(f"{name} …", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            PARTS[name](data_root, Path(tmp))
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
