"""``nnref runs``: the runs in a log folder at a glance — for a person on a server without a browser.

Each run folder is read from what the run itself keeps: its checkpoint (configuration, step, final metrics,
whether it finished) and its ``status.json`` (running, finished, or diverged at a step).  A damaged or
missing checkpoint is reported as such, never as a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import load_checkpoint
from .config import TrainingError
from .runlog import SPLITS, STATUS_FILE

__all__ = ["RunInfo", "list_runs"]


@dataclass
class RunInfo:
    name: str
    model: str = "?"
    recipe: str = ""
    steps: int | None = None
    val_acc: float | None = None
    test_acc: float | None = None
    status: str = ""


def _is_run_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "checkpoint.pt").exists() or (path / STATUS_FILE).exists() or
                              any(path.glob("events.out.tfevents.*")))


def _recipe(cfg: dict) -> str:
    """The main hyper-parameters of a run, in the words of the command line."""
    if cfg.get("model") == "knn":
        return f"k {','.join(map(str, cfg.get('k', ())))} {cfg.get('metric', '')}"
    parts = [f"lr {cfg.get('lr')}", f"batch {cfg.get('batch_size')}", f"epochs {cfg.get('epochs')}"]
    if cfg.get("momentum"):
        parts.append(f"momentum {cfg['momentum']}")
    if cfg.get("model") == "mlp":
        parts.append(f"hidden {','.join(map(str, cfg.get('hidden', ())))} {cfg.get('activation', '')}")
    if cfg.get("amp", "off") != "off":
        parts.append(f"amp {cfg['amp']}")
    return ", ".join(parts)


def _read_status(path: Path) -> dict:
    try:
        return json.loads((path / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def describe_run(path: Path) -> RunInfo:
    """What a run folder says about itself."""
    info, status = RunInfo(path.name), _read_status(path)
    ckpt = path / "checkpoint.pt"
    state = None
    if ckpt.exists():
        try:
            state = load_checkpoint(ckpt)
        except TrainingError as exc:
            info.status = f"damaged checkpoint ({str(exc).split(': ', 1)[-1][:60]})"
            return info
    if state is not None:
        cfg = state["config"]
        info.model, info.recipe, info.steps = cfg.get("model", "?"), _recipe(cfg), state.get("global_step")
        final, last = state.get("final") or {}, state.get("last_metrics") or {}
        info.val_acc = final.get("val_acc", last.get("val_accuracy"))
        info.test_acc = final.get("test_acc")
    elif isinstance(status.get("config"), dict):  # no checkpoint yet: the run's status file has its recipe
        info.model, info.recipe = status["config"].get("model", "?"), _recipe(status["config"])
    if status.get("status") == "diverged":
        info.status = f"diverged at step {status.get('step')} (last good checkpoint: step {info.steps})" \
            if state is not None else f"diverged at step {status.get('step')}, before any checkpoint"
    elif state is not None and state.get("finished"):
        info.status = "finished"
    elif state is not None:
        info.status = f"interrupted at step {info.steps}, resumable (--resume {ckpt})"
    else:
        info.status = "no checkpoint: stopped before its first one (not resumable)"
    return info


def list_runs(logdir) -> list[RunInfo]:
    """Every run folder directly under ``logdir`` (the ``train``/``val`` sub-runs belong to their run)."""
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise TrainingError(f"--logdir {logdir} is not a folder (nothing has been trained into it yet?)")
    folders = [p for p in sorted(logdir.iterdir()) if _is_run_folder(p) and p.name not in SPLITS]
    return [describe_run(p) for p in folders]
