"""Checkouts side by side: a lab of each checkout's own code, and the log of a run that takes turns between them
(``scripts/mnist_class.py``, ``scripts/page_cost.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["start_checkout_lab", "SideLog"]


def start_checkout_lab(code: Path, max_sessions: int) -> tuple[subprocess.Popen, str]:
    """``nnref lab`` of the checkout ``code`` on loopback, in a new process: (process, address).  The process runs
    in the checkout's directory: ``python -c`` puts the working directory first on the path, so run from another
    checkout's root it would import that one's ``nnref``."""
    run = f"from nnref.lab import server; server.serve('127.0.0.1', 0, max_sessions={max_sessions})"
    process = subprocess.Popen(
        [sys.executable, "-c", run], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=code.resolve()
    )
    line = process.stdout.readline()
    if not line.startswith("nnref lab: "):
        process.kill()
        raise RuntimeError(f"the lab of {code} did not start: {line}")
    return process, line.split(": ", 1)[1].strip()


class SideLog:
    """The lines of a side-by-side run: the command and the machine's load first, then what :meth:`say` prints."""

    def __init__(self) -> None:
        self.lines = [
            f"# {Path(sys.executable).name} {' '.join(sys.argv)}",
            f"# {time.strftime('%Y-%m-%d %H:%M:%S')} UTC, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        ]

    def say(self, *new: str) -> None:
        self.lines.extend(new)
        print("\n".join(new), flush=True)

    def write(self, path: Path | None) -> None:
        if path is not None:
            path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
