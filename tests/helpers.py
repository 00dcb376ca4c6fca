"""Helpers the test files share: reading TensorBoard event files, running the CLI in a process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
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
    return ["train", model, "--data-root", str(root), "--no-download", "--val-size", "100", "--logdir", str(logdir),
            "--run-name", run_name, "--quiet", *extra]


def cli_process(*args, env: dict | None = None, **kw) -> subprocess.Popen:
    """``python -m nnref ARGS`` in a fresh process, one thread (tests share 2 cores), text pipes."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "nnref", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())
