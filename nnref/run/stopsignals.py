"""The signals that ask a training run to stop — SIGTERM (a scheduler), SIGINT (Ctrl-C), SIGUSR1 (SLURM's
``--signal``) — and one that came before the run could act on it.

Torch-free, so that the command line installs :func:`note_early` at its first moment (:func:`catch_early`), before
the imports and the data: the handler only notes the signal, and the run's :class:`nnref.run.interrupt.StopRequest`
starts out asked to stop, so the run stops before its first step (exit 75).  Raising from a signal handler instead
would interrupt whatever runs then — an import half-way included, leaving a library half-initialised.
"""

from __future__ import annotations

import signal
import threading

from .failpoints import failpoint

__all__ = ["SIGNALS", "note_early", "take_early", "forget_early", "catch_early", "release"]

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


def catch_early() -> dict:
    """From a command's first moment (main thread only), SIGTERM, SIGINT and SIGUSR1 are only noted
    (:func:`note_early`): ``nnref train`` then stops before its first step, with exit 75, and a signal that lands
    while it imports or loads never interrupts a library half-way.  Returns the handlers before, for
    :func:`release`."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, note_early) for s in SIGNALS}


def release(previous: dict, ignore: bool = False) -> None:
    """The handlers as they were before the command — or, when ``nnref train`` ends its process (``ignore``),
    ignored: the run is whole by now (finished, or stopped with its checkpoint), and a scheduler's SIGTERM during
    the interpreter's exit (torch's teardown takes a few hundred milliseconds) must not turn its exit code into a
    kill."""
    for s, handler in previous.items():
        signal.signal(s, signal.SIG_IGN if ignore else handler)
    forget_early()
    if ignore:
        failpoint("exit")  # (a test's signal here)
