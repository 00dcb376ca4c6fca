"""What every section of ``nnref bench`` stands on: side-by-side timing, the profile of sizes, the section
registry and the report.

Every comparison alternates its sides over several repetitions (a machine whose speed drifts treats every
side alike) and reports medians and the ratio nnref / reference: below 1 means nnref is faster.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..run.markdown import markdown_table

__all__ = [
    "Profile",
    "PROFILES",
    "Context",
    "Section",
    "SECTIONS",
    "section",
    "side_by_side",
    "interleaved",
    "row",
    "format_rows",
    "run_bench",
    "sync",
    "seconds_per_call",
    "machine_info",
]


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn, device, number: int) -> float:
    """Seconds per call of fn, averaged over ``number`` back-to-back calls."""
    sync(device)
    t = time.perf_counter()
    for _ in range(number):
        fn()
    sync(device)
    return (time.perf_counter() - t) / number


def interleaved(cases: dict, device, number: int = 20, repeats: int = 7, warmup: int = 3) -> dict:
    """Median seconds per call of each case, the cases taking turns (a, b, c, a, b, c …) for ``repeats``
    rounds, so that a machine whose speed drifts treats every side alike."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times: dict = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(seconds_per_call(fn, device, number))
    return {name: statistics.median(t) for name, t in times.items()}


def side_by_side(a, b, device, number: int = 20, repeats: int = 7, warmup: int = 3) -> tuple[float, float]:
    """Median seconds per call of a and of b, alternating a, b, a, b … for ``repeats`` rounds."""
    times = interleaved({"a": a, "b": b}, device, number, repeats, warmup)
    return times["a"], times["b"]


def row(name: str, t_nnref: float, t_ref: float, unit: str = "ms", scale: float = 1e3, **extra) -> dict:
    """One line of the report: nnref's and the reference's figures (seconds × ``scale`` in ``unit``)."""
    return {
        "name": name,
        "nnref": t_nnref * scale,
        "reference": t_ref * scale,
        "unit": unit,
        "ratio": t_nnref / t_ref if t_ref else float("nan"),
        **extra,
    }


def format_rows(rows: list[dict]) -> str:
    cells = []
    for r in rows:
        notes = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in r.items()
            if k not in ("name", "nnref", "reference", "unit", "ratio")
        )
        cells.append(
            (
                r["name"],
                f"{r['nnref']:.4g} {r['unit']}",
                f"{r['reference']:.4g} {r['unit']}",
                f"{r['ratio']:.3f}",
                notes,
            )
        )
    return markdown_table(("comparison", "nnref", "reference", "ratio nnref/reference", "notes"), cells)


# --------------------------------------------------------------------------------------------------
# Sizes: one profile object
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """How big and how often: ``full`` for the README's figures, ``quick`` for a smoke run (``--quick``)."""

    name: str
    repeats: int = 7  # rounds of the side-by-side comparisons of Functions and steps (``--repeats``)
    floor_repeats: int = 15
    floor_number: int = 200
    step_batches: tuple[int, ...] = (1, 128, 512)
    compile_batches: tuple[int, ...] = (128, 512)
    compile_hidden: int = 800
    loader_repeats: int = 3
    knn_repeats: int = 2
    knn_test: int | None = None  # test images KNN classifies (None: all 10,000)
    knn_memory_of: tuple[str, ...] = ("nnref", "nnref floats", "faiss", "sklearn")
    accuracy_epochs: int = 10
    accuracy_repeats: int = 3
    cost_sizes: tuple[int, ...] = (1000, 5000, 10000, 30000, 60000)
    distributed_repeats: int = 2
    distributed_limit: int | None = None  # training images of the torchrun jobs (None: all)
    distributed_jobs: tuple[str, ...] = ("mlp", "knn")
    lab_seconds: float = 10.0  # how long each frame-rate measurement of the lab lasts
    lab_pages: int = 4
    digits_strokes: int = 20
    digits_images: int = 2000  # test digits rendered in each style
    startup_runs: int = 5  # new processes timed for each command of the startup section (median)
    classroom_pages: int = 100  # pages of the classroom section's class
    classroom_seconds: float = 15.0  # how long each of its scenarios plays
    mnist_class_pages: int = 30  # /mnist pages of the classroom section's class on /mnist
    mnist_class_seconds: float = 20.0


PROFILES = {
    "full": Profile("full"),
    "quick": Profile(
        "quick",
        repeats=3,
        floor_repeats=5,
        floor_number=50,
        compile_batches=(128,),
        compile_hidden=64,
        loader_repeats=2,
        knn_repeats=1,
        knn_test=1000,
        knn_memory_of=("nnref",),
        accuracy_epochs=2,
        accuracy_repeats=1,
        cost_sizes=(1000, 5000),
        distributed_repeats=1,
        distributed_limit=4000,
        distributed_jobs=("knn",),
        lab_seconds=1.0,
        lab_pages=2,
        digits_strokes=3,
        digits_images=60,
        startup_runs=1,
        classroom_pages=10,
        classroom_seconds=3.0,
        mnist_class_pages=3,
        mnist_class_seconds=4.0,
    ),
}


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """What a section gets: the device, the profile, the MNIST folder and (loaded once, on first use) its
    splits with every training image and no validation set, and the output folder."""

    device: torch.device
    profile: Profile
    root: Path
    out: Path
    say: Callable[[str], None] = print
    url: str | None = None  # a running lab the classroom section loads (None: it starts its own)
    _data: object = None

    @property
    def data(self):
        if self._data is None:
            from ..data import load_splits

            self._data = load_splits(self.root, download=False, val_size=0, device=self.device)
        return self._data


@dataclass(frozen=True)
class Section:
    """A registered part of the bench: its name, what it compares and why (its function's docstring), the
    function ``run(context) → rows``, the report key its rows go to, and how its table is printed."""

    name: str
    run: Callable[[Context], list[dict]]
    doc: str
    key: str = "rows"
    format: Callable[[list[dict]], str] = format_rows


#: Every section, in the order ``nnref bench`` runs and prints them.
SECTIONS: dict[str, Section] = {}


def section(name: str, key: str = "rows", fmt: Callable = format_rows):
    """Register ``run(context) → rows`` as the bench section ``name`` (its docstring says what it measures)."""

    def register(fn):
        SECTIONS[name] = Section(name, fn, " ".join((fn.__doc__ or "").split()), key, fmt)
        return fn

    return register


def run_bench(
    device="cpu",
    data_root=None,
    sections=None,
    out_dir="runs/bench",
    quick: bool = False,
    repeats: int | None = None,
    progress=None,
    url: str | None = None,
) -> dict:
    """Run the chosen sections (default: all, in :data:`SECTIONS` order); write the JSON report under
    ``out_dir`` and return it.  ``progress(text)`` receives a heading and a markdown table per section."""
    from ..data import resolve_root
    from ..run.records import write_status

    say = progress or (lambda text: None)
    profile = PROFILES["quick" if quick else "full"]
    profile = replace(profile, repeats=repeats) if repeats else profile
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(torch.device(device), profile, resolve_root(data_root), out, say, url)
    report = {
        "info": machine_info(ctx.device),
        "profile": profile.name,
        "rows": [],
        "cost": [],
        "classroom": [],
        "sections": {},
    }
    say(
        f"nnref bench on {ctx.device} ({report['info']['device']}, {report['info']['threads']} threads, torch "
        f"{report['info']['torch']}, {profile.name} profile)"
    )
    chosen = [s for s in SECTIONS.values() if sections is None or s.name in sections]
    for number, sec in enumerate(chosen, 1):
        say(f"\n[{number}/{len(chosen)}] {sec.name}: {sec.doc.split('.')[0]} …")
        t = time.perf_counter()
        rows = sec.run(ctx)
        report[sec.key] += rows
        report["sections"][sec.name] = {"seconds": time.perf_counter() - t, "doc": sec.doc}
        say(f"\n## {sec.name} ({time.perf_counter() - t:.0f} s)\n{sec.format(rows)}")
    path = out / f"bench-{ctx.device.type}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    write_status(out, "bench", "finished", message=", ".join(s.name for s in chosen))
    say(f"\nwrote {path}")
    report["path"] = str(path)
    return report


def machine_info(device: torch.device) -> dict:
    """The machine a report was measured on, with the CPU's vector extensions (bf16 speed depends on them)."""
    flags = []
    try:
        text = Path("/proc/cpuinfo").read_text()
        line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
        model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "")
        flags = sorted(f for f in line.split() if f.startswith(("avx", "amx")) or f in ("fma", "f16c"))
    except (OSError, StopIteration):
        model = ""
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else model or platform.processor() or platform.machine()
    )
    return {
        "device": name,
        "cpu_flags": flags,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }
