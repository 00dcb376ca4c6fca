"""Running a student's code where it can cost only itself: each task in a process of its own (a fork of this one,
so that torch is imported once), under a time limit and a memory limit.  A task that loops forever is stopped, one
that calls ``os._exit`` or ``sys.exit`` or crashes in native code (a segfault) ends only its own process, one that
allocates past the limit gets a ``MemoryError`` (or is killed) — and every other task runs as before.

Where ``os.fork`` does not exist (Windows) the tasks run here, one after another, without the limits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: The default memory a check may allocate beyond what the process holds when it starts (bytes).
MEMORY = 2 * 2**30

#: The default time limit of one task (seconds).
TIMEOUT = 10.0


@dataclass
class Outcome:
    """What a task gave: its ``value`` (what it returned, through JSON), or ``failure`` (why it gave none: a
    time-out, a crash, an exit), and how long it ran."""

    value: object = None
    failure: str = ""
    seconds: float = 0.0


def can_isolate() -> bool:
    return hasattr(os, "fork")


def run_isolated(
    tasks: Sequence[Callable[[], object]],
    timeout: float = TIMEOUT,
    memory: int | None = MEMORY,
    jobs: int | None = None,
) -> list[Outcome]:
    """Run each task (a callable returning something JSON can write) in a process of its own, ``jobs`` at a time
    (default: one per core), each stopped after ``timeout`` seconds and limited to ``memory`` bytes more than this
    process holds; one :class:`Outcome` per task, in order."""
    if not can_isolate():
        return [_run_here(task) for task in tasks]
    jobs = max(1, jobs or _cores())
    outcomes: list[Outcome | None] = [None] * len(tasks)
    pending = list(range(len(tasks)))
    running: dict[int, _Child] = {}
    while pending or running:
        while pending and len(running) < jobs:
            index = pending.pop(0)
            child = _Child.start(index, tasks[index], memory)
            running[child.fd] = child
        now = time.monotonic()
        wait = max(0.0, min(child.started + timeout for child in running.values()) - now)
        ready, _, _ = select.select(list(running), [], [], wait)
        for fd in ready:
            if running[fd].read():
                child = running.pop(fd)
                outcomes[child.index] = child.finish(timeout, timed_out=False)
        now = time.monotonic()
        for fd, child in list(running.items()):
            if now - child.started >= timeout:
                del running[fd]
                outcomes[child.index] = child.finish(timeout, timed_out=True)
    return outcomes  # type: ignore[return-value]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _run_here(task: Callable[[], object]) -> Outcome:
    start = time.perf_counter()
    value = json.loads(json.dumps(task()))
    return Outcome(value, "", time.perf_counter() - start)


@dataclass
class _Child:
    index: int
    pid: int
    fd: int
    started: float
    chunks: list

    @classmethod
    def start(cls, index: int, task: Callable[[], object], memory: int | None) -> _Child:
        sys.stdout.flush()  # what this process has buffered is written once, by this process
        sys.stderr.flush()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(task, write, memory)
        os.close(write)
        return cls(index, pid, read, time.monotonic(), [])

    def read(self) -> bool:
        """Read what the child wrote; True at its end."""
        data = os.read(self.fd, 1 << 16)
        self.chunks.append(data)
        return not data

    def finish(self, timeout: float, timed_out: bool) -> Outcome:
        seconds = time.monotonic() - self.started
        if timed_out:
            os.kill(self.pid, signal.SIGKILL)
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        if timed_out:
            return Outcome(None, f"took longer than {timeout:g} s (a loop that never ends?) and was stopped", seconds)
        data = b"".join(self.chunks)
        if data:
            message = json.loads(data.decode())
            if "error" in message:
                return Outcome(None, f"the check itself failed: {message['error']}", seconds)
            return Outcome(message["value"], "", seconds)
        if os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            why = f"crashed: its process was killed by {name} (a crash in native code, or out of memory)"
            return Outcome(None, why, seconds)
        code = os.waitstatus_to_exitcode(status)
        return Outcome(None, f"ended its process (exit code {code}: os._exit?) before the check finished", seconds)


def _child(task: Callable[[], object], fd: int, memory: int | None) -> None:
    """In the forked process: limits, then the task; what it returns is written to ``fd`` as JSON."""
    code = 0
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # input() gets nothing rather than waiting
        os.dup2(2, 1)  # what the student's code prints goes to stderr, never into a report on stdout
        sys.stdout = sys.stderr
        _limit_memory(memory)
        _one_thread()
        message = {"value": task()}
    except BaseException as exc:  # noqa: BLE001  (the parent says what happened; nothing may escape a fork)
        message = {"error": "".join(traceback.format_exception_only(type(exc), exc)).strip()}
        code = 70
    try:
        data = json.dumps(message).encode()
        while data:
            data = data[os.write(fd, data) :]
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _one_thread() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _limit_memory(memory: int | None) -> None:
    """Address space capped at what the process maps now plus ``memory`` bytes."""
    if memory is None:
        return
    try:
        import resource

        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + memory
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
