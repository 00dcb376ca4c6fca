"""Fail points: named places in a run where a test can make a real failure happen exactly there.

A run that must survive ``kill -9``, SIGTERM or a full disk is tested by making each of those happen at a named
moment, not after a wall-clock sleep that lands elsewhere on a faster machine.  The places are named in the code
(``failpoint("step", global_step)``); the environment variable ``NNREF_FAILPOINT`` arms some of them::

    NNREF_FAILPOINT="step@37=term"              SIGTERM to this process right after global step 37
    NNREF_FAILPOINT="finish-pictures=kill"      SIGKILL while the final pictures are drawn
    NNREF_FAILPOINT="checkpoint-write@2=enospc" the second checkpoint write fails as on a full disk

Actions: ``kill`` (SIGKILL: the process dies on the spot), ``term``, ``int``, ``usr1`` (that signal to this
process: its handler runs as if a scheduler or a person had sent it), ``stop`` (SIGSTOP: the process freezes
there, as a hung job does, until SIGCONT — a test waits for that state, then acts), ``enospc``
(``OSError(ENOSPC)`` raised there).  ``@N`` matches the N-th time the place is reached, or — for places that
pass a number, such as the global step — that number.  ``rank`` restricts a point to one rank of a ``torchrun``
job: ``step@37=term#1``.
In a ``torchrun`` job a point fires in the first attempt only: the group torchrun restarts carries on.
Unset (as in every normal run), :func:`failpoint` is one dictionary lookup.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal

__all__ = ["failpoint", "armed", "PLACES"]

#: Every place a run names, in the order a run reaches them.
PLACES = (
    "launch",
    "startup",
    "step",
    "epoch-end",
    "checkpoint-write",
    "finish-metrics",
    "finish-pictures",
    "finish-save",
    "exit",
)

_ACTIONS = {
    "kill": signal.SIGKILL,
    "term": signal.SIGTERM,
    "int": signal.SIGINT,
    "usr1": signal.SIGUSR1,
    "stop": signal.SIGSTOP,
}


def _parse(text: str) -> dict:
    points: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        where, _, action = item.partition("=")
        action, _, rank = action.partition("#")
        place, _, count = where.partition("@")
        numbers_ok = all(n == "" or n.isdigit() for n in (count, rank))
        if place not in PLACES or action not in (*_ACTIONS, "enospc") or not numbers_ok:
            raise ValueError(
                f"NNREF_FAILPOINT: {item!r} is not PLACE[@N]=ACTION[#RANK] with PLACE one of {PLACES} "
                f"and ACTION one of {(*_ACTIONS, 'enospc')}"
            )
        points[place] = (int(count) if count else None, action, int(rank) if rank else None)
    return points


_POINTS = _parse(os.environ.get("NNREF_FAILPOINT", ""))
_SEEN: dict = {}


def failpoint(place: str, number: int | None = None) -> None:
    """Do what ``NNREF_FAILPOINT`` asks for at ``place`` (nothing, unless a test armed it)."""
    if place not in _POINTS:
        return
    count, action, rank = _POINTS[place]
    if rank is not None and rank != int(os.environ.get("RANK", "0")):
        return
    if os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        return
    _SEEN[place] = _SEEN.get(place, 0) + 1
    if count is not None and count != (number if number is not None else _SEEN[place]):
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.kill(os.getpid(), _ACTIONS[action])


@contextlib.contextmanager
def armed(spec: str):
    """Arm fail points for a ``with`` block in this process (what ``NNREF_FAILPOINT`` does for a new one)."""
    global _POINTS
    previous, _POINTS = _POINTS, _parse(spec)
    _SEEN.clear()
    try:
        yield
    finally:
        _POINTS = previous
        _SEEN.clear()
