"""``nnref runs``: the runs in a log folder at a glance — for a person on a server without a browser.

Each run folder is read from what the run itself keeps: its ``status.json`` (the kind of run — an MNIST run, a
playground run, a gradient-check sweep, a bench —, and running, interrupted, finished, or diverged at a step)
and, for an MNIST run, its checkpoint (configuration, step, final metrics, whether it finished).  A damaged or
missing checkpoint is reported as such, never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .checkpoint import load_checkpoint, lock_holder
from .config import TrainingError, config_from_dict
from .runlog import SPLITS, STATUS_FILE, read_status

__all__ = ["RunInfo", "list_runs", "describe_run"]


@dataclass
class RunInfo:
    name: str
    kind: str = "mnist"
    model: str = "?"
    recipe: str = ""
    steps: int | None = None
    val_acc: float | None = None
    test_acc: float | None = None
    status: str = ""


def _is_run_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / "checkpoint.pt").exists() or (path / STATUS_FILE).exists() or any(path.glob("events.out.tfevents.*"))
    )


def _recipe(config: dict) -> str:
    try:
        return config_from_dict(config).recipe()
    except (TrainingError, TypeError, ValueError):
        return ""


def describe_run(path: Path) -> RunInfo:
    """What a run folder says about itself."""
    status = read_status(path)
    kind = status.get("kind", "mnist")
    if kind != "mnist":  # a playground run, a gradient-check sweep, a bench: its status file says everything
        return RunInfo(path.name, kind, kind, status.get("message", ""), status=status.get("status", "?"))
    info, ckpt = RunInfo(path.name), path / "checkpoint.pt"
    state = None
    if ckpt.exists():
        try:
            state = load_checkpoint(ckpt)
        except TrainingError as exc:
            info.status = f"damaged checkpoint ({str(exc).split(': ', 1)[-1].split(' (')[0][:40]}…)"
            return info
    if state is not None:
        cfg = state["config"]
        info.model, info.recipe, info.steps = cfg.get("model", "?"), _recipe(cfg), state.get("global_step")
        final, last = state.get("final") or {}, state.get("last_metrics") or {}
        info.val_acc = final.get("val_acc", last.get("val_accuracy"))
        info.test_acc = final.get("test_acc")
    elif isinstance(status.get("config"), dict):  # no checkpoint yet: the run's status file has its recipe
        info.model, info.recipe = status["config"].get("model", "?"), _recipe(status["config"])
    info.status = _status(status, state, info.steps, ckpt)
    return info


def _status(status: dict, state: dict | None, steps: int | None, ckpt: Path) -> str:
    holder = lock_holder(ckpt.parent)
    if holder is not None:
        return f"running: {holder}"
    if status.get("status") == "diverged":
        return (
            f"diverged at step {status.get('step')} (last good checkpoint: step {steps})"
            if state is not None
            else f"diverged at step {status.get('step')}, before any checkpoint"
        )
    if state is not None and state.get("finished"):
        return "finished"
    if state is not None:
        return f"interrupted at step {steps}, resumable (--resume {ckpt})"
    return "no checkpoint: stopped before its first one (not resumable)"


def list_runs(logdir) -> list[RunInfo]:
    """Every run folder directly under ``logdir`` (the ``train``/``val`` sub-runs belong to their run)."""
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise TrainingError(f"--logdir {logdir} is not a folder (nothing has been trained into it yet?)")
    folders = [p for p in sorted(logdir.iterdir()) if _is_run_folder(p) and p.name not in SPLITS]
    return [describe_run(p) for p in folders]
