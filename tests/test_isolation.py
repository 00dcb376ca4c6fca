"""nnref.exercises.isolation: each task in a process of its own, under a time and a memory limit — what a task
returns comes back in order, and a task that hangs, exits, crashes or allocates too much costs only itself."""

from __future__ import annotations

import os
import sys
import time

from nnref.exercises.isolation import run_isolated


def _hang():
    while True:
        pass


def _exit():
    os._exit(5)


def _sys_exit():
    sys.exit(6)


def _segfault():
    import ctypes

    ctypes.string_at(0)


def _hog():
    try:
        bytearray(1 << 30)
    except MemoryError:
        return "MemoryError"
    return "allocated"


def _print_and_return():
    print("a student's print")
    return {"pid": os.getpid()}


def test_each_task_costs_only_itself_and_the_others_return_in_order(capfd):
    tasks = [lambda: 1, _hang, _exit, _sys_exit, _segfault, _hog, _print_and_return, lambda: [2, "three"]]
    start = time.perf_counter()
    outcomes = run_isolated(tasks, timeout=2, memory=128 * 2**20, jobs=2)
    seconds = time.perf_counter() - start
    assert [o.value for o in outcomes[:1]] == [1] and outcomes[-1].value == [2, "three"]
    assert "took longer than 2 s" in outcomes[1].failure and outcomes[1].value is None
    assert "exit code 5" in outcomes[2].failure
    assert "the check itself failed: SystemExit: 6" in outcomes[3].failure
    assert "killed by SIGSEGV" in outcomes[4].failure
    assert outcomes[5].value == "MemoryError"  # the limit holds: 1 GiB past 128 MiB is refused
    assert outcomes[6].value["pid"] != os.getpid()  # it ran elsewhere …
    captured = capfd.readouterr()
    assert "a student's print" in captured.err and "a student's print" not in captured.out  # … printing to stderr
    assert seconds < 2 + 20, seconds


def test_without_a_memory_limit_the_allocation_succeeds():
    (outcome,) = run_isolated([_hog], timeout=20, memory=None)
    assert outcome.value == "allocated"
