"""The signals that ask a training run to stop — SIGTERM (a scheduler), SIGINT (Ctrl-C), SIGUSR1 (SLURM's
``--signal``) — and one that came before the run could act on it.

Torch-free, so that the command line installs :func:`note_early` at its first moment, before the imports and the
data: the handler only notes the signal, and the run's :class:`nnref.interrupt.StopRequest` starts out asked to
stop, so the run stops before its first step (exit 75).  Raising from a signal handler instead would interrupt
whatever runs then — an import half-way included, leaving a library half-initialised.
"""

from __future__ import annotations

import signal

__all__ = ["SIGNALS", "note_early", "take_early", "forget_early"]

#: The signals that ask a run to stop.
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)

_early: list[int] = []


def note_early(signum: int, frame=None) -> None:
    """A stop signal's handler until a run's StopRequest takes over: note the first one."""
    if not _early:
        _early.append(signum)


def take_early() -> int | None:
    """The noted signal, if any, now handed over (noted no more)."""
    return _early.pop() if _early else None


def forget_early() -> None:
    """Drop a noted signal (the command ended without a run for it to stop)."""
    _early.clear()
