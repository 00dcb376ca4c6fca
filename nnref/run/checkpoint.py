"""Checkpoints: the format, atomic save and checked load, the RNG states, and the loop's position.

A checkpoint is a plain dict that loads with ``torch.load(path, weights_only=True)``::

    format        2
    config        TrainConfig.to_dict() of the run
    model         model.state_dict()            (None for KNN, which stores no weights)
    optimizer     optimizer.state_dict()
    sampler       the shuffling generator and the position in the epoch (data.EpochBatches.state_dict)
    rng           Python's and PyTorch's RNG states
    epoch, global_step, batches_done, epoch_stats, window      TrainState: where the loop stands
    finished      True once the run has completed (with its final metrics in ``final``)

:class:`TrainState` holds the loop's position and running sums, so that a resumed run logs exactly what an
uninterrupted one does.
"""

from __future__ import annotations

import errno
import io
import os
import random
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import TrainingError
from .failpoints import failpoint

__all__ = [
    "FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "TrainState",
    "RunLock",
    "lock_holder",
]

FORMAT = 2


def save_checkpoint(path, state: dict) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over ``path``:
    a kill at any moment leaves either the old or the new checkpoint, never a torn one.

    A write that fails — a full disk (ENOSPC), an I/O error, the folder removed — leaves the previous
    checkpoint as it was and no temporary file behind, and raises a :class:`TrainingError` naming the file
    and the cause."""
    path = Path(path)
    tmp = None
    try:
        buffer = io.BytesIO()  # serialised in memory first: a failing disk then fails in f.write, with its OSError
        torch.save(state, buffer)  # (torch.save's own writer turns a short write into "unexpected pos …")
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            failpoint("checkpoint-write")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        kept = "the previous checkpoint is intact" if path.exists() else "there is no earlier checkpoint"
        cause = exc.strerror or str(exc)
        if exc.errno is not None:
            cause = f"{cause} ({errno.errorcode.get(exc.errno, exc.errno)})"
        raise TrainingError(
            f"could not write the checkpoint {path}: {cause}; {kept}, and nothing half-written was left behind"
        ) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a missing, unreadable, torn or foreign file is a
    TrainingError.  Every stored entry's CRC-32 is checked first, so a file that a non-atomic filesystem cut
    short or garbled is named as damaged instead of being half-read."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} does not exist (or is not a file)")
    damaged = _damage(path)
    if damaged:
        raise TrainingError(
            f"checkpoint {path} is damaged ({damaged}): it was cut short or changed after it was "
            "written; resume from an earlier copy or start the run again"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise TrainingError(
            f"checkpoint {path} could not be read as an nnref checkpoint: {type(exc).__name__}: {first}"
        ) from None
    if not isinstance(state, dict) or "config" not in state or "format" not in state:
        raise TrainingError(f"{path} is not an nnref checkpoint (no config/format entries)")
    return state


def _damage(path: Path) -> str:
    """Why a file in ``torch.save``'s zip format is torn ("" if it is whole, or not a zip file at all)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as exc:
        with open(path, "rb") as f:
            starts_like_a_zip = f.read(4) == b"PK\x03\x04"
        return f"not a whole zip archive: {exc}" if starts_like_a_zip else ""
    except (OSError, EOFError, zlib.error) as exc:
        return f"unreadable: {exc}"
    return f"entry {bad} fails its CRC-32 check" if bad else ""


class RunLock:
    """One writer per run folder: an exclusive ``flock`` on ``<run>/.lock``, which the operating system releases
    when the process ends however it ends (a killed process leaves no stuck lock).  The holder writes its
    process id and command into the file, so a second ``nnref train`` on the same run is refused with a
    message naming them."""

    def __init__(self, run_dir: Path, command: str) -> None:
        import fcntl

        self.path = Path(run_dir) / ".lock"
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise TrainingError(
                f"run folder {run_dir} is in use by {holder}: two jobs must not write one run. "
                "Wait for it to end (or stop it), or give this run another --run-name"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"process {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})")
        self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            self.file.close()  # closing the descriptor releases the flock


def lock_holder(run_dir) -> str | None:
    """Who holds the run folder's lock ("process N (command, since …)"), or None when no live process does."""
    import fcntl

    path = Path(run_dir) / ".lock"
    if not path.exists():
        return None
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f.read().strip() or "another process"
    return None


# --------------------------------------------------------------------------------------------------
def rng_state() -> dict:
    """Python's and PyTorch's (CPU and every CUDA device's) random number generator states."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))  # weights_only loading turns the tuples into lists
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


# --------------------------------------------------------------------------------------------------
def _zeros(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.float64)


@dataclass
class TrainState:
    """Where the training loop stands, and the sums it has not logged yet.

    ``epoch`` epochs are complete; ``batches_done`` batches of the current one are done; ``global_step``
    optimizer steps in all.  ``epoch_stats`` = (loss sum, correct, count) of the current epoch;
    ``window`` = (loss sum, count) since the last ``loss/train_step`` point.  Both live on the training
    device (read back only at log points) and are stored on the CPU.
    """

    epoch: int = 0
    global_step: int = 0
    batches_done: int = 0
    epoch_stats: torch.Tensor = field(default_factory=lambda: _zeros(3))
    window: torch.Tensor = field(default_factory=lambda: _zeros(2))

    def to(self, device) -> TrainState:
        self.epoch_stats = self.epoch_stats.to(device=device, dtype=torch.float64)
        self.window = self.window.to(device=device, dtype=torch.float64)
        return self

    def add_batch(self, loss: torch.Tensor, correct: torch.Tensor, n: int) -> None:
        """Add one batch's mean loss, number of correct predictions and size (device-side, no host sync)."""
        batch = torch.stack([loss.double() * n, correct.double(), self.epoch_stats.new_full((), n)])
        self.epoch_stats += batch
        self.window += batch[::2]

    def end_epoch(self) -> None:
        self.epoch += 1
        self.batches_done = 0
        self.epoch_stats.zero_()

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "batches_done": self.batches_done,
            "epoch_stats": self.epoch_stats.cpu().clone(),
            "window": self.window.cpu().clone(),
        }

    @classmethod
    def from_dict(cls, d: dict, sums: bool = True) -> TrainState:
        """The state a checkpoint holds; ``sums=False`` starts the running sums from zero (every rank but one
        of a multi-process job, so the job's sums are counted once).  Also reads format-1 checkpoints, which
        kept no ``window`` (their first resumed point then averages only the steps since the resume)."""
        state = cls(int(d["epoch"]), int(d["global_step"]), int(d["batches_done"]))
        if sums:
            state.epoch_stats = d["epoch_stats"].to(torch.float64)
            state.window = d.get("window", _zeros(2)).to(torch.float64)
        return state
