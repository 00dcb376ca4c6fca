"""The ``/mnist`` pages of one server take turns: at most :data:`TRAINERS` of them train (and make their frame) at a
time, first come first served, and the more pages play, the shorter each turn and the less often each page's live
validation figure is re-measured — so that a class of 30 keeps every page updating several times a second.

Why: each page used to train for 0.04 s in a worker thread of its own whenever it liked: with 30 pages playing, six
worker threads (asyncio's default pool on two cores) took turns on the GIL by chance, and on a quiet machine (one
run, load 0.8) each page got 2.8 updates a second while the server used 129% of a core; the paused pages' test
evaluations ran up to six at a time, each thread's heap keeping its activations.  Turns make the work sequential
and fair: while ``n`` pages play, a turn trains for ``TRAIN_PER_FRAME · TRAINERS / n`` seconds (a lone page's
0.04 s, at least :data:`MIN_TRAIN`), then draws its frame; a page's live validation figure is re-measured every
``max(VAL_EVERY, n / VAL_PASSES)`` seconds.  Measured side by side (``scripts/mnist_class.py``,
docs/results/mnist-class.log and mnist-class-mlp1024.log): under other work on the machine the class's frames and
epochs per second of the server's CPU are the same both ways — the GIL is the limit — and so is the memory a page
costs (docs/playground.md, *A class on /mnist*).
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor

from .session import VAL_EVERY

__all__ = ["Turns", "turns", "TRAIN_PER_FRAME", "TRAINERS", "MIN_TRAIN", "VAL_PASSES"]

#: Seconds of training between two frames of a page that plays alone.
TRAIN_PER_FRAME = 0.04
#: Pages that train at the same time (one: Python's GIL makes two threads of small steps slower than one).
TRAINERS = 1
#: The shortest turn's training, in seconds: about three steps of softmax regression at batch 64 (a turn's frame
#: and its sending cost about as much again).
MIN_TRAIN = 0.002
#: Live validation measures a second, over all the playing pages of a server (each costs 1 to 7 ms of a core).
VAL_PASSES = 40


class Turns:
    """The turns of one server's ``/mnist`` pages (one event loop): ``await turns.take(work, ...)`` runs a page's
    training and frame on the server's trainer threads, in the order the pages asked; ``join``/``leave`` a page's
    session (its ``playing`` counts)."""

    def __init__(self, trainers: int = TRAINERS) -> None:
        self.trainers, self.sessions = trainers, set()
        self._pool: ThreadPoolExecutor | None = None

    def join(self, session) -> None:
        self.sessions.add(session)

    def leave(self, session) -> None:
        self.sessions.discard(session)
        if not self.sessions and self._pool is not None:  # (the last page has gone: its threads go too)
            self._pool.shutdown(wait=False)
            self._pool = None

    async def take(self, work, *args):
        """``work(*args)`` on a trainer thread when the page's turn comes (first asked, first served: the threads
        take turns back to back, without waiting for the event loop between two pages)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.trainers, thread_name_prefix="nnref-mnist")
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    @property
    def playing(self) -> int:
        return sum(1 for s in self.sessions if s.playing)

    def train_seconds(self) -> float:
        """How long the next turn trains: the lone page's :data:`TRAIN_PER_FRAME`, shared among the playing pages."""
        share = TRAIN_PER_FRAME * self.trainers / max(1, self.playing)
        return min(TRAIN_PER_FRAME, max(MIN_TRAIN, share))

    def val_every(self) -> float:
        """Seconds between two live validation measures of one page: :data:`VAL_PASSES` a second in all."""
        return max(VAL_EVERY, self.playing / VAL_PASSES)


_BY_LOOP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def turns() -> Turns:
    """The turns of the server whose event loop is running (one per loop: a lab in a test's thread has its own)."""
    loop = asyncio.get_running_loop()
    if loop not in _BY_LOOP:
        _BY_LOOP[loop] = Turns()
    return _BY_LOOP[loop]
