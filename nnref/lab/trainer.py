"""The class's training on the second core: a process of its own that steps the class's groups.

The server's process is one Python interpreter: its event loop, the pages' frames and the training of
:mod:`nnref.lab.crowd` take turns on one core while the second waits.  :class:`Trainer` moves the steps into a child
process, so a class trains on one core while the frames are made and sent on the other.

How the two share the work, round by round (:meth:`nnref.lab.crowd.Crowd`):

1. :meth:`Trainer.end` stops the round in flight and takes its results: how many steps each page took, its loss,
   and, for a page that began an epoch, its new batch order and its generator's state.  They are written into the
   page's own :class:`~nnref.plane.Descent`, so it stands exactly where it would after as many steps in the server.
2. The server makes the groups again where the pages changed (:func:`nnref.lab.crowd.assemble`).
3. :meth:`Trainer.begin` sends the groups the trainer lacks and every group's recipe (learning rate, momentum,
   weight decay, L1), and the trainer steps them — each to the group furthest behind in epochs, as in the server —
   until the next :meth:`Trainer.end`.
4. Meanwhile the server measures what the frames show from a copy of the weights taken before the round began
   (:meth:`nnref.lab.crowd.Group.look`), and sends the frames.

A group's weights and momentum are one tensor each in shared memory (a file of ``/dev/shm`` both processes map),
so the steps the trainer takes are the server's weights at once (each page's parameters are views of its row, as in
:class:`~nnref.lab.crowd.Group`); the rest of a group (its points, its pages' batching) is copied into the trainer
once, when the group is made.  The trainer is a fresh ``python`` running :func:`main`, talking to the server over a
socket pair: it starts from nothing of the server's (no fork of a threaded server, no import of the server's own script)
and ends when the server does.  It computes with nnref's Functions; with a student's (``nnref lab --functions``) the
server trains the class itself.  Should the trainer die, the server trains the class itself from then on, and its
log says so once.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection

import torch

from ..plane import Descent
from .crowd import Group, _rounds

__all__ = ["Trainer", "serve", "main"]

log = logging.getLogger("nnref.lab")
#: While no group is there to step, the trainer looks at its socket this often.
_IDLE = 0.002
#: A round the server forgot ends by itself after this long (the trainer then waits for the server).
_LONGEST = 2.0
#: The trainer's niceness: on a machine busy with more than the server (a teacher's laptop with browsers open, the
#: class's pages on the server's own cores) the frames come first and the training takes the rest; on an idle
#: second core the trainer still has all of it.
NICENESS = 3
#: Where the groups' weights are shared: memory, where the system has it as files.
_SHARED = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
_files = itertools.count()


class Trainer:
    """The server's side of the trainer process: :meth:`begin` a round of the groups, :meth:`end` it.

    The process starts with :meth:`start` (a fresh interpreter: about two seconds of imports), and is ready when
    :meth:`ready` says so; it ends with the server (or :meth:`close`)."""

    def __init__(self) -> None:
        self.process = self.conn = None
        self.failed = self.running = self._ready = False
        self.sent: dict[int, object] = {}  # the groups the trainer holds, by number (kept alive here: ids stay unique)
        self.numbers: dict[int, int] = {}  # id(group) → its number
        self.next = 0
        self.files: list[str] = []  # the shared files made for the trainer (each unlinked once it maps it)

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # (this nnref's, first)
        code = f"import sys; sys.path.insert(0, {root!r}); from nnref.lab.trainer import main; main()"
        try:
            with theirs:
                fd = theirs.fileno()
                self.process = subprocess.Popen([sys.executable, "-c", code, str(fd)], pass_fds=[fd])
        except (OSError, ValueError) as exc:  # (no such process here, e.g. no descriptors to pass on Windows)
            ours.close()
            self._fail(exc)
            return
        self.conn = Connection(ours.detach())

    def ready(self) -> bool:
        """Whether the process is up and has said so (without waiting for it)."""
        if self._ready or self.failed or self.conn is None:
            return self._ready
        try:
            if self.conn.poll():
                self._ready = self.conn.recv() == "ready"
        except (EOFError, OSError) as exc:
            self._fail(exc)
        return self._ready

    def begin(self, groups: list) -> None:
        """A round of these groups (each a :class:`~nnref.lab.crowd.Group`) begins in the trainer: it steps them
        until :meth:`end`.  The groups it held that are not among them are dropped."""
        numbers = {id(g): self.numbers.get(id(g)) for g in groups}
        new = {}
        for g in groups:
            if numbers[id(g)] is None:
                numbers[id(g)] = self.next
                self.sent[self.next], self.numbers[id(g)] = g, self.next
                new[self.next] = _parcel(g)
                self.files += [new[self.next][0][0], new[self.next][1][0]]
                self.next += 1
        kept = set(numbers.values())
        dropped = [n for n in self.sent if n not in kept]
        for n in dropped:
            del self.numbers[id(self.sent.pop(n))]
        recipes = {numbers[id(g)]: g.recipes() for g in groups}
        self._send(("round", new, dropped, recipes))
        self.running = not self.failed

    def end(self) -> dict[int, float]:
        """Stop the round in flight and write what it did into the groups and their pages' descents: each page's
        steps, loss, batch order and generator.  Returns the last loss of each descent that stepped (by ``id``)."""
        if not self.running:
            return {}
        self.running = False
        self._send(("end",))
        try:
            results = self.conn.recv()
        except (EOFError, OSError) as exc:
            self._fail(exc)
            return {}
        losses = {}
        for number, done in results.items():
            group = self.sent.get(number)
            if group is not None:
                losses |= _settle(group, done)
        return losses

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.conn.close()
        for path in self.files:  # (any the trainer never mapped)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.files = []
        self.failed, self.running = True, False

    def _send(self, message) -> None:
        if self.failed:
            return
        try:
            self.conn.send(message)
        except (EOFError, OSError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if not self.failed:
            log.warning("nnref lab: the trainer process stopped (%s): the server trains the class itself", exc)
        self.failed, self.running, self._ready = True, False, False


def _parcel(group) -> tuple:
    """What the trainer needs of a group: its weights and momentum, moved here into shared memory (sent as the
    files' names), and the rest pickled as values — each page's descent reduced to what its batches need (its
    settings, steps, order and generator: no network, no optimizer)."""
    group.flat, flat = _shared(group.flat.detach())
    group.buffer, buffer = _shared(group.buffer)
    group.flat.requires_grad_()
    Group._lend(group)  # (each page's parameters and momentum: views of the shared rows)
    rest = copy.copy(group)
    rest.descents = [_batching_of(d) for d in group.descents]
    for name in ("flat", "buffer", "tests", "_all", "_mean", "_std", "cfgs"):
        rest.__dict__.pop(name, None)
    return flat, buffer, pickle.dumps(rest)


def _shared(tensor: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    """A copy of a float32 tensor in a file of shared memory, and how the trainer maps it (name, shape)."""
    path = os.path.join(_SHARED, f"nnref-lab-{os.getpid()}-{next(_files)}")
    shared = torch.from_file(path, shared=True, size=tensor.numel(), dtype=tensor.dtype).view(tensor.shape)
    shared.copy_(tensor)
    return shared, (path, tuple(tensor.shape))


def _mapped(where: tuple) -> torch.Tensor:
    path, shape = where
    tensor = torch.from_file(path, shared=True, size=math.prod(shape), dtype=torch.float32).view(shape)
    os.unlink(path)  # (the mapping stays: the file is gone when both processes are)
    return tensor


def _batching_of(d: Descent) -> Descent:
    """A descent without its network: what a group's steps read and write of it (the points only as a count)."""
    shell = object.__new__(Descent)
    shell.cfg, shell.steps, shell._start, shell._order = d.cfg, d.steps, d._start, d._order
    shell.generator, shell.X = d.generator, torch.empty(d.X.shape[0], 0)
    return shell


def _settle(group, done: dict) -> dict[int, float]:
    """Write a round's results into the server's group and its pages' descents; the loss of each that stepped."""
    losses = {}
    for j, (d, steps, loss) in enumerate(zip(group.descents, done["steps"], done["losses"])):
        if steps:
            d.steps += steps
            group.seen[j] += steps
            losses[id(d)] = loss
    for j, (order, state) in done["orders"].items():
        d = group.descents[j]
        d._order = torch.frombuffer(bytearray(order), dtype=torch.int64)
        d.generator.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
    group.losses = torch.tensor(done["losses"])
    return losses


# --------------------------------------------------------------------------------------------------
# The trainer process
# --------------------------------------------------------------------------------------------------
def serve(conn) -> None:
    """The trainer's loop: hold the groups it is sent, step them through each round, report at its end."""
    torch.set_num_threads(1)  # (small products: one core)
    groups: dict[int, object] = {}
    clock: dict = {}
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # (the server has gone)
            return
        if message[0] != "round":
            continue
        _, new, dropped, recipes = message
        for number in dropped:
            groups.pop(number, None)
        for number, (flat, buffer, rest) in new.items():
            groups[number] = _unparcel(flat, buffer, rest)
        for number, columns in recipes.items():
            groups[number].set_recipes(columns)
        shapes = {g.shape for g in groups.values()}
        for key in [key for key in clock if key not in shapes]:
            del clock[key]
        before = {n: ([d.steps for d in g.descents], [d._order for d in g.descents]) for n, g in groups.items()}
        end = time.perf_counter() + _LONGEST
        stepping = list(groups.values())
        while not conn.poll():  # (a look at the socket after every step: the round ends within a step)
            if stepping and time.perf_counter() < end:
                _rounds(stepping, 0.0, None, clock)
            else:
                conn.poll(_IDLE)
        try:
            conn.recv()  # ("end",)
            conn.send({n: _done(g, *before[n]) for n, g in groups.items()})
        except (EOFError, OSError):
            return


def _unparcel(flat: tuple, buffer: tuple, rest: bytes):
    group = pickle.loads(rest)
    group.flat, group.buffer = _mapped(flat).requires_grad_(), _mapped(buffer)
    return group


def _done(group, steps: list, orders: list) -> dict:
    """What a round did to a group's pages: steps, last losses, and each new batch order with its generator."""
    changed = {
        j: (d._order.numpy().tobytes(), d.generator.get_state().numpy().tobytes())
        for j, (d, order) in enumerate(zip(group.descents, orders))
        if d._order is not order and d._order is not None
    }
    return {
        "steps": [d.steps - s for d, s in zip(group.descents, steps)],
        "losses": group.last_losses(),
        "orders": changed,
    }


def main() -> None:
    """The trainer process's entry (:meth:`Trainer.start`): its end of the socket pair is the last argument."""
    with contextlib.suppress(AttributeError, OSError):  # (no niceness on Windows)
        os.nice(NICENESS)
    serve(Connection(int(sys.argv[-1])))
