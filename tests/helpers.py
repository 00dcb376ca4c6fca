"""Helpers the test files share: reading TensorBoard event files, running the CLI in a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

TB_SIZE = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def events(run_dir: Path):
    """An EventAccumulator over one run folder's event files (sub-folders are other runs)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance=TB_SIZE)
    ea.Reload()
    return ea


def scalar(ea, tag) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def train_args(root, logdir, model, *extra, run_name: str = "run") -> list[str]:
    """``nnref train MODEL`` on the data under ``root``, quiet, into ``logdir/run_name``."""
    return [
        "train",
        model,
        "--data-root",
        str(root),
        "--no-download",
        "--val-size",
        "100",
        "--logdir",
        str(logdir),
        "--run-name",
        run_name,
        "--quiet",
        *extra,
    ]


def cli_process(*args, env: dict | None = None, **kw) -> subprocess.Popen:
    """``python -m nnref ARGS`` in a fresh process, one thread (tests share 2 cores), text pipes."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "nnref", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def line_with(process: subprocess.Popen, text: str, timeout: float = 60) -> str:
    """The first line of ``process``'s stdout that contains ``text``, read by a thread so that a process that
    never prints it (or prints something else first) fails the test after ``timeout`` seconds instead of hanging
    it; the lines before it are kept in the failure message."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in iter(process.stdout.readline, ""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line with {text!r} within {timeout:.0f} s; printed: {seen!r}") from None
        if line is None:
            raise AssertionError(
                f"the process ended (exit {process.wait()}) without a line with {text!r}; printed: {seen!r}"
            )
        if text in line:
            return line
        seen.append(line)


def rendezvous_port() -> int:
    """A port for torchrun's c10d rendezvous, which both agents must be told before either starts: the one port
    a test still looks up and releases (TensorBoard and the lab bind port 0 or a pre-bound socket instead)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    *args, nproc: int = 2, launcher: tuple = (), log_dir=None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node N [launcher…] -m nnref ARGS``, one thread per rank; with
    ``log_dir`` every rank's stdout/stderr is kept in its own file there."""
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    cmd += list(launcher) if launcher else ["--standalone", "--nproc-per-node", str(nproc)]
    if log_dir is not None:
        cmd += ["--log-dir", str(log_dir), "--redirects", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([*cmd, "-m", "nnref", *args], env=env, capture_output=True, text=True, timeout=timeout)


def rank_logs(log_dir: Path, stream: str = "stderr") -> list[str]:
    """Every rank's ``stream`` of the torchrun jobs logged under ``log_dir``."""
    return [p.read_text() for p in sorted(Path(log_dir).rglob(f"{stream}.log"))]


# --------------------------------------------------------------------------------------------------
# A real process without the interpreter's start: forked from a server that has imported nnref's training stack
# --------------------------------------------------------------------------------------------------
PRELOADED = [
    "helpers",
    "torchvision",
    "torch.utils.tensorboard",
    "torch.utils.tensorboard._utils",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "PIL.Image",
    "nnref.cli",
    "nnref.run.train",
    "nnref.data",
    "nnref.run.runlog",
    "nnref.viz",
    "nnref.run.evaluate",
    "nnref.knn",
    "nnref.run.knn",
    "nnref.bench",
    "nnref.run.playground",
    "tqdm.auto",
    "tensorboard.plugins.hparams.api",
]


def forked_cli(*args, failpoint: str = "", log, file_size_limit: int | None = None):
    """``nnref ARGS`` in a new process (started, returned; ``.join()`` it, read ``.exitcode``), its fail points
    armed with ``failpoint`` and its stdout and stderr written to the file ``log``.

    The process is forked from multiprocessing's fork server, which imported torch, torchvision and nnref once
    for the whole session: a test gets a process of its own — its own pid, files, locks and signals, killed for
    real by a fail point's SIGKILL — in milliseconds instead of the three seconds an interpreter takes to import
    torch.  What it does not exercise is the interpreter's own start and exit (``python -m nnref``); the tests of
    those (signals while the command starts or exits, no traceback in a real process) use :func:`cli_process`."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    process = context.Process(target=_cli_child, args=(list(args), failpoint, str(log), file_size_limit))
    process.start()
    return process


def _cli_child(args: list[str], failpoint: str, log: str, file_size_limit: int | None) -> None:
    import resource
    import signal

    import torch

    from nnref.cli import main
    from nnref.run.failpoints import armed

    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    torch.set_num_threads(1)  # tests share 2 cores
    if file_size_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    with armed(failpoint):
        code = main(args)
    sys.exit(code)
