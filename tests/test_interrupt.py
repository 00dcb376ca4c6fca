"""Runs that survive what clusters and people do to them (nnref.interrupt, nnref.faults, nnref.checkpoint): a
signal stops a run after its step with a checkpoint at that step (exit 75); SIGKILL in every phase of a run;
a second signal while saving; a signal before the first step; a full disk; two jobs on one run.

Every interruption is placed by progress — a fail point at a named place and step (``NNREF_FAILPOINT``) — never
by a wall-clock sleep, so each test lands where it says on a slow machine and on a fast one.  After each, the run
is resumed as a requeued job would be (``--resume auto``), and its final weights, optimizer state and every logged
point must equal those of the uninterrupted run: nothing lost, nothing logged twice.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import cli_process, forked_cli, train_args

from nnref.cli import main
from nnref.run.checkpoint import load_checkpoint
from nnref.run.failpoints import armed
from nnref.run.runlog import read_status

RECIPE = [
    "--epochs",
    "2",
    "--batch-size",
    "8",
    "--hidden",
    "16",
    "--momentum",
    "0.9",
    "--lr",
    "0.01",
    "--checkpoint-every",
    "20",
    "--log-every",
    "10",
]
STEPS = 126  # 500 training rows (600 less 100 for validation) in batches of 8, twice
SUBRUNS = ("", "train", "val")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every interrupted one is compared with."""
    from conftest import make_tiny_mnist

    tmp = tmp_path_factory.mktemp("reference")
    root = make_tiny_mnist(tmp / "data")
    assert main(train_args(root, tmp, "mlp", *RECIPE)) == 0
    assert load_checkpoint(tmp / "run" / "checkpoint.pt")["global_step"] == STEPS
    return root, tmp / "run"


def _args(root, logdir, *extra) -> list[str]:
    return train_args(root, logdir, "mlp", *RECIPE, "--resume", "auto", *extra)


def _logged(run: Path) -> dict:
    """Every point of a run and its sub-runs as TensorBoard's own server reads them (its plugin accumulator, which
    purges an earlier attempt's points of every kind): a scalar's steps and values, a picture's or a curve's
    steps."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    logged = {}
    for sub in SUBRUNS:
        ea = EventAccumulator(str(run / sub), size_guidance={"tensors": 0})
        ea.Reload()
        for tag in ea.Tags()["tensors"]:
            points = ea.Tensors(tag)
            scalar = all(p.tensor_proto.dtype == 1 and not p.tensor_proto.tensor_shape.dim for p in points)
            logged[(sub, tag)] = [(p.step, p.tensor_proto.float_val[0] if scalar else None) for p in points]
    return logged


def assert_same_run(run: Path, reference: Path) -> None:
    """The same final weights and momentum, and every logged point once, with the uninterrupted run's values."""
    ours, ref = load_checkpoint(run / "checkpoint.pt"), load_checkpoint(reference / "checkpoint.pt")
    assert ours["finished"] and ours["global_step"] == ref["global_step"] == STEPS
    for k in ref["model"]:
        assert torch.equal(ours["model"][k], ref["model"][k]), k
    for a, b in zip(ref["optimizer"]["state"].values(), ours["optimizer"]["state"].values(), strict=True):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    got, want = _logged(run), _logged(reference)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], key  # a point logged twice, or lost, or with another value, fails here
    assert read_status(run)["status"] == "finished"


# --------------------------------------------------------------------------------------------------
# SIGTERM, SIGINT, SIGUSR1: the step finishes, its checkpoint is written, exit 75, resume loses nothing
# --------------------------------------------------------------------------------------------------
MOMENTS = list(zip(("term", "int", "usr1", "term", "term"), sorted(random.Random(19).sample(range(1, STEPS), 5))))


@pytest.mark.parametrize("action,step", MOMENTS, ids=[f"{a}@{s}" for a, s in MOMENTS])
def test_a_signal_stops_the_run_after_its_step_and_the_resumed_run_is_the_uninterrupted_one(
    reference, tmp_path, capsys, action, step
):
    root, ref = reference
    with armed(f"step@{step}={action}"):
        assert main(_args(root, tmp_path)) == 75
    name = {"term": "SIGTERM", "int": "SIGINT", "usr1": "SIGUSR1"}[action]
    err = capsys.readouterr().err
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert f"stopped by {name} after step {step} " in err and f"--resume {ckpt}" in err
    assert load_checkpoint(ckpt)["global_step"] == step  # that exact step: nothing since the last checkpoint lost
    assert read_status(tmp_path / "run")["status"] == "interrupted"
    assert main(_args(root, tmp_path)) == 0
    assert_same_run(tmp_path / "run", ref)


def test_a_second_signal_while_the_checkpoint_is_written_does_not_tear_it(reference, tmp_path, capsys):
    root, ref = reference
    # SIGTERM after step 45; SIGINT again while that step's checkpoint is being written (the third write)
    with armed("step@45=term,checkpoint-write@3=int"):
        assert main(_args(root, tmp_path)) == 75
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["global_step"] == 45  # whole, CRC-checked
    assert main(_args(root, tmp_path)) == 0
    assert_same_run(tmp_path / "run", ref)


def test_a_second_signal_is_reported_on_the_console(reference, tmp_path, capsys):
    root, _ = reference
    with armed("step@45=term,checkpoint-write@3=int"):
        assert main([a for a in _args(root, tmp_path) if a != "--quiet"]) == 75
    out = capsys.readouterr().out
    assert "SIGINT again: already stopping" in out


def test_a_signal_before_the_first_step_leaves_no_half_run(reference, tmp_path, capsys):
    root, _ = reference
    with armed("startup=term"):
        assert main(_args(root, tmp_path)) == 75
    assert "before the first step; nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------------
# SIGKILL (nothing runs after it) in every phase of a run: resume from the last checkpoint, each point once
# --------------------------------------------------------------------------------------------------
KILLS = [
    "startup",
    f"step@{random.Random(0).randrange(21, STEPS)}",
    f"step@{random.Random(1).randrange(21, STEPS)}",
    "epoch-end@1",
    "checkpoint-write@3",
    "finish-metrics",
    "finish-pictures",
    "finish-save",
]


@pytest.mark.parametrize("place", KILLS)
def test_sigkill_in_every_phase_then_resume_is_the_uninterrupted_run(reference, tmp_path, place):
    root, ref = reference
    victim = forked_cli(*_args(root, tmp_path), failpoint=f"{place}=kill", log=tmp_path / "victim.log")
    victim.join(timeout=300)
    assert victim.exitcode == -signal.SIGKILL, _tail(tmp_path / "victim.log")  # it died there, not before or after
    ckpt = tmp_path / "run" / "checkpoint.pt"
    if place == "finish-save":
        assert load_checkpoint(ckpt)["finished"]
    elif place != "startup":  # the previous checkpoint, whole (the last epoch's is the finished run's)
        assert load_checkpoint(ckpt)["global_step"] < STEPS
    assert main(_args(root, tmp_path)) == 0
    assert_same_run(tmp_path / "run", ref)


# --------------------------------------------------------------------------------------------------
# A full disk: the previous checkpoint stays, one clear message, nothing half-written left behind
# --------------------------------------------------------------------------------------------------
def _leftovers(run: Path) -> list[str]:
    return [p.name for p in run.iterdir() if "checkpoint" in p.name and p.name != "checkpoint.pt"]


def test_a_failed_checkpoint_write_keeps_the_previous_one_and_says_which_file_and_why(reference, tmp_path, capsys):
    root, _ = reference
    with armed("checkpoint-write@2=enospc"):
        assert main(_args(root, tmp_path)) == 1
    err = capsys.readouterr().err
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert f"{ckpt}" in err and "No space left on device" in err and err.count("\n") == 1
    assert load_checkpoint(ckpt)["global_step"] == 20  # the first checkpoint, whole
    assert _leftovers(tmp_path / "run") == []


def _small_filesystem(path: Path) -> str | None:
    """A 16 MiB tmpfs at ``path`` (root on Linux), or None where this machine refuses."""
    path.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        return None
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)], capture_output=True)
    return "tmpfs" if done.returncode == 0 else None


def test_a_really_full_disk_keeps_the_previous_checkpoint(reference, tmp_path):
    """A real full filesystem (a small tmpfs) where the machine allows it; elsewhere a real write error from the
    kernel all the same: a file-size limit (RLIMIT_FSIZE, EFBIG) below the checkpoint's size."""
    root, _ = reference
    disk = tmp_path / "disk"
    kind = _small_filesystem(disk)
    try:
        assert main(train_args(root, disk, "mlp", *RECIPE[:1], "1", *RECIPE[2:], "--hidden", "128")) == 0
        run = disk / "run"
        first = load_checkpoint(run / "checkpoint.pt")
        size = (run / "checkpoint.pt").stat().st_size
        if kind == "tmpfs":  # leave less room than a second checkpoint needs
            free = shutil.disk_usage(disk).free
            (disk / "filler").write_bytes(b"\0" * max(0, free - size // 2))
            limit = None
        else:
            limit = size // 2
        args = train_args(root, disk, "mlp", *RECIPE, "--hidden", "128", "--resume", str(run / "checkpoint.pt"))
        job = forked_cli(*args, log=tmp_path / "job.log", file_size_limit=limit)
        job.join(timeout=300)
        err = _tail(tmp_path / "job.log")
        assert job.exitcode == 1, err
        assert str(run / "checkpoint.pt") in err and "Traceback" not in err
        assert ("No space left on device" if kind == "tmpfs" else "File too large") in err
        again = load_checkpoint(run / "checkpoint.pt")  # still the first one, whole
        assert again["global_step"] == first["global_step"]
        assert _leftovers(run) == []
    finally:
        if kind == "tmpfs":
            subprocess.run(["umount", "-l", str(disk)], check=False)


def _tail(log: Path) -> str:
    return log.read_text()[-3000:] if log.exists() else ""


# --------------------------------------------------------------------------------------------------
# Two jobs on one run: the second is refused, naming the first; a killed first leaves no stuck lock
# --------------------------------------------------------------------------------------------------
def _wait_until_stopped(process, log: Path, timeout: float = 120) -> None:
    """Until ``process`` has frozen itself at its fail point (state T), or has exited (a failure)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.exitcode is None, _tail(log)
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        assert time.monotonic() < deadline, "the first job never reached its fail point"
        time.sleep(0.01)


def test_a_second_job_on_a_running_run_is_refused_and_a_killed_job_leaves_no_stuck_lock(reference, tmp_path, capsys):
    root, ref = reference
    first = forked_cli(*_args(root, tmp_path), failpoint="step@30=stop", log=tmp_path / "first.log")  # frozen
    try:
        _wait_until_stopped(first, tmp_path / "first.log")
        assert main(_args(root, tmp_path)) == 1  # a requeued job while the first still runs, holding the lock
        err = capsys.readouterr().err
        assert f"process {first.pid}" in err and "nnref train mlp" in err
    finally:
        first.kill()
        first.join(timeout=30)
    assert main(_args(root, tmp_path)) == 0  # the killed job's lock went with it
    assert_same_run(tmp_path / "run", ref)


@pytest.mark.parametrize("action", ["term", "int"])
def test_a_signal_while_the_command_starts_ends_it_with_the_documented_code_and_no_traceback(
    reference, tmp_path, action
):
    """A scheduler's SIGTERM (or Ctrl-C) while ``nnref train`` is still importing and loading: the signal is noted,
    never raised into the import or the loading under way; the run stops before its first step — exit 75 ("run it
    again"), one message, no traceback, no run folder."""
    root, _ = reference
    job = cli_process(*_args(root, tmp_path), env={"NNREF_FAILPOINT": f"launch={action}"})
    out, err = job.communicate(timeout=300)
    assert job.returncode == 75, err[-3000:]
    assert "before the first step" in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("action", ["term", "int"])
def test_a_signal_while_the_process_exits_after_a_finished_run_does_not_turn_it_into_a_kill(
    reference, tmp_path, action
):
    """A SIGTERM (or Ctrl-C) after ``nnref train`` returned, while the interpreter shuts down: the run is finished
    and whole, so the process still exits 0 — not -15 (the soak met this: a scheduler cannot tell it from a kill)."""
    root, ref = reference
    job = cli_process(*_args(root, tmp_path), env={"NNREF_FAILPOINT": f"exit={action}"})
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err
    assert_same_run(tmp_path / "run", ref)


# --------------------------------------------------------------------------------------------------
# nnref.run.interrupt itself: the stop request a run polls, and what it raises
# --------------------------------------------------------------------------------------------------
def test_a_stop_request_records_the_first_signal_and_says_so_for_the_next():
    import signal

    from nnref.run.interrupt import StopRequest

    before = signal.getsignal(signal.SIGUSR1)
    lines = []
    with StopRequest(console=lines.append) as stop:
        assert not stop.requested and stop.name == "a stop request"
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)  # (the handler runs between two bytecodes of this thread)
        assert stop.requested and stop.name == "SIGUSR1" and not lines
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop.name == "SIGUSR1"  # the first signal is the one the run reports
        assert len(lines) == 1 and lines[0].startswith("SIGTERM again: already stopping")
    assert signal.getsignal(signal.SIGUSR1) == before  # the previous handlers are back


def test_a_run_stopped_before_its_first_step_raises_with_no_checkpoint(tiny_mnist, tmp_path, monkeypatch):
    """A stop asked for while the command started (noted early) stops the run before its first step."""
    from nnref.run.config import TrainConfig
    from nnref.run.interrupt import RunInterrupted
    from nnref.run.train import train

    monkeypatch.setattr("nnref.run.interrupt.take_early", lambda: signal.SIGTERM)
    cfg = TrainConfig(model="softmax", epochs=1, data_root=str(tiny_mnist), download=False, val_size=100)
    cfg = dataclasses.replace(cfg, logdir=str(tmp_path), run_name="run", quiet=True)
    with pytest.raises(RunInterrupted) as info:
        train(cfg)
    assert info.value.checkpoint is None and info.value.step == 0
