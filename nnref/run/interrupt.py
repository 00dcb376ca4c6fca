"""Stopping a run when asked, losing nothing: SIGTERM (a scheduler pre-empting the job — SLURM, Kubernetes, a
spot instance — and ``torchrun`` forwarding it), SIGINT (Ctrl-C) and SIGUSR1 (SLURM's ``--signal``).

While a run trains, :class:`StopRequest` replaces the handlers of those signals: a signal only *asks* the run to
stop.  The training loop looks at the request between steps, agrees on it with the other ranks (one all-reduce,
so every rank stops after the same step), writes a checkpoint at that exact step and raises
:class:`RunInterrupted`, which the command line turns into exit code :data:`EXIT_INTERRUPTED` with the
``--resume`` command to use.  A second signal while the run is stopping is noted and ignored: the checkpoint
being written is never torn (SIGKILL, which cannot be caught, still leaves the previous one intact).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from .config import TrainingError
from .stopsignals import SIGNALS, take_early

__all__ = ["StopRequest", "RunInterrupted", "EXIT_INTERRUPTED", "SIGNALS"]

#: The exit code of a run stopped by a signal after writing a resumable checkpoint: sysexits.h's EX_TEMPFAIL
#: ("temporary failure; the user is invited to retry") — distinct from success (0), failure (1) and usage (2),
#: so a requeue script can tell "run it again with --resume" from "fix something first".
EXIT_INTERRUPTED = 75


class RunInterrupted(TrainingError):
    """A run stopped by a signal.  ``checkpoint`` holds its state at ``step`` (None: it stopped before its first
    step and wrote nothing); the message says how to resume."""

    def __init__(self, message: str, checkpoint: str | None, step: int) -> None:
        super().__init__(message)
        self.checkpoint, self.step = checkpoint, step


class StopRequest:
    """A ``with`` block during which SIGTERM, SIGINT and SIGUSR1 ask the run to stop instead of killing it.

    Outside the main thread (where Python cannot install signal handlers) it is inert: nothing asks to stop.
    ``console`` receives one line for each signal after the first."""

    def __init__(self, console: Callable[[str], None] | None = None) -> None:
        self.console = console
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal) for s in SIGNALS}
        early = take_early()
        if early is not None:  # asked to stop before the run began
            self.signum = early
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
        elif self.console is not None:
            self.console(
                f"{signal.Signals(signum).name} again: already stopping — finishing the current step "
                "and writing its checkpoint (SIGKILL would leave the previous checkpoint instead)"
            )

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "a stop request"

    def agreed(self, world) -> bool:
        """Whether any rank was asked to stop — the same answer on every rank."""
        return world.any(self.requested)
