"""What a run leaves for people to read: TensorBoard event files and ``status.json``.

:func:`open_writer` is the one way nnref opens a TensorBoard writer (``nnref train``, ``nnref playground``,
``nnref gradcheck --sweep`` and the bench); :func:`write_status` records where a run stands, which ``nnref runs``
reads back (:func:`read_status`).  TensorBoard is imported when a writer is opened, not before.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["STATUS_FILE", "open_writer", "write_status", "read_status"]

#: The run's status for ``nnref runs``: {"kind": …, "status": running | interrupted | finished | diverged,
#: "step": N, "message": …, "time": …, "config": …}.
STATUS_FILE = "status.json"


def open_writer(log_dir, purge_step: int | None = None) -> SummaryWriter:  # noqa: F821
    """The one way nnref opens a TensorBoard writer: events flushed every 10 s (and at every checkpoint).

    TensorBoard reads a folder's event files in the order of their names, which begin with the second each was
    made; a resumed attempt's file must come after the earlier attempt's, or the earlier one's ``purge_step``
    would be read last and hide the resumed steps.  So a writer opened within the same second as the newest
    file already there waits for the next second (a restart that fast is rare: torchrun's can be)."""
    from torch.utils.tensorboard import SummaryWriter

    seconds = [
        int(p.name.split(".")[3]) for p in Path(log_dir).glob("events.out.tfevents.*") if p.name.split(".")[3].isdigit()
    ]
    while seconds and int(time.time()) <= max(seconds):
        time.sleep(max(0.01, max(seconds) + 1 - time.time()))
    return SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=10)


def write_status(run_dir, kind: str, status: str, step: int = 0, message: str = "", **extra) -> None:
    """Record where a run stands in ``<run_dir>/status.json`` (``nnref runs`` reads it), atomically."""
    run_dir = Path(run_dir)
    tmp = run_dir / f".{STATUS_FILE}.tmp"
    tmp.write_text(
        json.dumps(
            {
                "kind": kind,
                "status": status,
                "step": step,
                "message": message,
                "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                **extra,
            },
            default=str,
        )
    )
    os.replace(tmp, run_dir / STATUS_FILE)


def read_status(run_dir) -> dict:
    """A run folder's status file ({} where there is none or it cannot be read)."""
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
