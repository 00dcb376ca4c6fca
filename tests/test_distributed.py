"""nnref.distributed through ``torchrun`` (gloo, 2 ranks on the CPU, tiny data): a job equals one process,
survives kills, spans "nodes", and shards KNN's records."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_mnist, synthetic_digits, write_idx_images, write_idx_labels
from helpers import events, rank_logs, rendezvous_port, scalar, torchrun, train_args

from nnref.cli import main
from nnref.run.checkpoint import load_checkpoint
from nnref.run.distributed import World, shard_range

pytestmark = pytest.mark.distributed


def _weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def _assert_close_weights(a: dict, b: dict, rtol: float) -> None:
    for k in a:
        scale = float(a[k].abs().max())
        assert float((a[k] - b[k]).abs().max()) <= rtol * scale, k


def test_shard_ranges_cover_every_row_once():
    for n, world in ((10, 3), (7, 2), (1, 2), (60000, 4)):
        ranges = [shard_range(n, r, world) for r in range(world)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert max(e - s for s, e in ranges) - min(e - s for s, e in ranges) <= 1
    assert World().shard(5) == slice(0, 5) and not World().group


def _assert_one_process_trains_what_two_ranks_train(one: Path, two: Path) -> None:
    _assert_close_weights(_weights(one / "checkpoint.pt"), _weights(two / "checkpoint.pt"), rtol=1e-5)
    for sub, tag in (("", "loss/train_step"), ("train", "loss"), ("val", "accuracy"), ("", "accuracy/test")):
        a, b = scalar(events(one / sub), tag), scalar(events(two / sub), tag)
        assert [s for s, _ in a] == [s for s, _ in b], (sub, tag)  # the same steps, every metric global
        assert [v for _, v in a] == pytest.approx([v for _, v in b], rel=1e-4, abs=1e-6), (sub, tag)


def test_two_ranks_train_what_one_process_trains(tiny_mnist, tmp_path):
    # 499 images, global batch 8: 62 full batches and a last one of 3, split 2 + 1 between the ranks
    common = ["--epochs", "3", "--batch-size", "8", "--limit-train", "499", "--lr", "0.05", "--log-every", "20"]
    assert main(train_args(tiny_mnist, tmp_path / "one", "softmax", *common)) == 0
    job = torchrun(*train_args(tiny_mnist, tmp_path / "two", "softmax", *common))
    assert job.returncode == 0, job.stderr[-3000:]
    _assert_one_process_trains_what_two_ranks_train(tmp_path / "one" / "run", tmp_path / "two" / "run")
    assert not (tmp_path / "two" / "run" / "run").exists() and len(list((tmp_path / "two").iterdir())) == 1


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test():
    """A torchrun job a test started (in its own process group) is killed with its ranks when the test ends."""
    yield
    while STARTED:
        job = STARTED.pop()
        if job.poll() is None:
            for pid in _ranks_of(job):  # torchrun starts its ranks in their own process groups
                os.kill(pid, signal.SIGKILL)
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=30)


def _start(args: list[str], launcher: list[str], env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    job = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "nnref", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    STARTED.append(job)
    return job


def _wait_until_frozen(agent: subprocess.Popen, ranks: int = 2, timeout: float = 300) -> list[int]:
    """Until each of the agent's ``ranks`` rank processes has frozen itself at its ``stop`` fail point (state T):
    the job stands at a known step, whatever the machine's speed.  Returns their process ids."""
    deadline = time.monotonic() + timeout
    while True:
        assert agent.poll() is None, agent.communicate()[1][-3000:]
        pids = _ranks_of(agent)
        if len(pids) == ranks and all(_state(pid) == "T" for pid in pids):
            return pids
        assert time.monotonic() < deadline, "the job never reached its fail point"
        time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _ranks_of(agent: subprocess.Popen) -> list[int]:
    """The agent's rank processes (not whatever helper process it may also have started)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(agent.pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if " -m nnref " in line]


KILL_RECIPE = [
    "--epochs",
    "6",
    "--batch-size",
    "8",
    "--hidden",
    "32",
    "--momentum",
    "0.9",
    "--lr",
    "0.02",
    "--limit-train",
    "499",
    "--checkpoint-every",
    "15",
    "--log-every",
    "10",
]
KILL_STEPS = 378  # 499 rows in global batches of 8 (62 full, the last of 3 split 2 + 1 between the ranks), 6 times


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """An uninterrupted 2-rank run of KILL_RECIPE: the reference for the kill tests."""
    tmp = tmp_path_factory.mktemp("reference")
    root = make_tiny_mnist(tmp / "data")
    job = torchrun(*train_args(root, tmp, "mlp", *KILL_RECIPE))
    assert job.returncode == 0, job.stderr[-3000:]
    assert load_checkpoint(tmp / "run" / "checkpoint.pt")["global_step"] == KILL_STEPS
    return root, tmp / "run"


def test_two_ranks_train_what_one_process_trains_with_hidden_layers_and_momentum(uninterrupted, tmp_path):
    """The kill tests' reference job (an MLP with momentum, the last batch split unevenly) against one process."""
    root, two = uninterrupted
    assert main(train_args(root, tmp_path, "mlp", *KILL_RECIPE)) == 0
    _assert_one_process_trains_what_two_ranks_train(tmp_path / "run", two)


def _assert_same_run(run: Path, reference: Path) -> None:
    """Bit-identical final weights, and each logged step once with the uninterrupted job's values."""
    ours, ref = load_checkpoint(run / "checkpoint.pt"), load_checkpoint(reference / "checkpoint.pt")
    assert ours["finished"] and ours["global_step"] == ref["global_step"]
    for k in ref["model"]:
        assert torch.equal(ours["model"][k], ref["model"][k]), k
    for sub, tag in (("", "loss/train_step"), ("train", "loss"), ("val", "accuracy"), ("", "accuracy/test")):
        got, want = scalar(events(run / sub), tag), scalar(events(reference / sub), tag)
        assert got == want, (sub, tag)  # each step once, with the same values


# One run through everything a cluster does to a job, each attempt resuming the last: a SIGTERM to one rank
# (job 1), then SIGKILL to the agent and both ranks at once (job 2), then the rest on two "nodes" (job 3) — and
# the end must be the uninterrupted job's, bit for bit, every logged step once.  Each fixture copies the run
# before going on, so each test sees the state its attempt left.
def _resume_args(root: Path, run: Path) -> list[str]:
    return [
        "train",
        "mlp",
        "--resume",
        str(run / "checkpoint.pt"),
        "--quiet",
        "--data-root",
        str(root),
        "--no-download",
    ]


@pytest.fixture(scope="module")
def stopped_by_sigterm(uninterrupted, tmp_path_factory):
    """Job 1: a scheduler's SIGTERM reaches rank 1 first, after step 100.  Returns (its folder, the job)."""
    root, _ = uninterrupted
    tmp = tmp_path_factory.mktemp("sigterm")
    job = torchrun(
        *train_args(root, tmp, "mlp", *KILL_RECIPE), log_dir=tmp / "logs", env={"NNREF_FAILPOINT": "step@100=term#1"}
    )
    return tmp, job


@pytest.fixture(scope="module")
def killed_on_resume(uninterrupted, stopped_by_sigterm, tmp_path_factory):
    """Job 2: job 1's run resumed, frozen after step 200 (its checkpoint holds step 195), then the agent and both
    ranks killed at once.  Returns the run folder."""
    root, _ = uninterrupted
    run = tmp_path_factory.mktemp("killed") / "run"
    shutil.copytree(stopped_by_sigterm[0] / "run", run)
    job = _start(
        _resume_args(root, run), ["--standalone", "--nproc-per-node", "2"], env={"NNREF_FAILPOINT": "step@200=stop"}
    )
    ranks = _wait_until_frozen(job)  # (should it fail, the test's clean-up kills the job and its ranks)
    for pid in ranks:  # (the ranks are not in the agent's process group)
        os.kill(pid, signal.SIGKILL)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=30)
    while any(_state(pid) not in ("gone", "Z") for pid in ranks):  # dead, their run lock gone with them
        time.sleep(0.02)  # (SIGKILL is certain: this only waits for the kernel to finish it)
    return run


def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(stopped_by_sigterm):
    """The ranks agree (one all-reduce) and all stop after the same step; rank 0 writes that step's checkpoint;
    each rank exits 75 with one message and no traceback."""
    tmp, job = stopped_by_sigterm
    assert job.returncode != 0 and "exitcode" in job.stderr and ": 75" in job.stderr, job.stderr[-3000:]
    assert load_checkpoint(tmp / "run" / "checkpoint.pt")["global_step"] == 100
    logs = rank_logs(tmp / "logs")
    assert len(logs) == 2 and all("after step 100" in log and "Traceback" not in log for log in logs), logs


def test_a_killed_job_keeps_its_last_checkpoint(killed_on_resume):
    checkpoint = load_checkpoint(killed_on_resume / "checkpoint.pt")
    assert checkpoint["global_step"] == 195 and not checkpoint.get("finished")


def test_the_killed_job_resumed_on_two_nodes_is_the_uninterrupted_job(uninterrupted, killed_on_resume, tmp_path):
    """Job 3 on two agents (``--nnodes 2`` with a c10d rendezvous: what two machines look like to the code)."""
    root, reference = uninterrupted
    run = tmp_path / "run"
    shutil.copytree(killed_on_resume, run)
    port = rendezvous_port()
    launcher = [
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "nnref-test",
    ]
    agents = [_start(_resume_args(root, run), launcher) for _ in range(2)]
    for agent in agents:
        out, err = agent.communicate(timeout=300)
        assert agent.returncode == 0, err[-3000:]
    _assert_same_run(run, reference)


def test_a_killed_rank_is_restarted_and_the_run_finishes_bit_identical(uninterrupted, tmp_path):
    root, reference = uninterrupted
    args = train_args(root, tmp_path, "mlp", *KILL_RECIPE, "--resume", "auto", run_name="R")
    # a short collective timeout, as a fault-tolerant job should have: a rank left waiting on a dead peer (or on
    # a connection the restarted group cannot make) fails within 30 s and torchrun restarts the group again.
    # Rank 1 dies by SIGKILL after step 100 of the first attempt; torchrun restarts the group, which resumes.
    job = _start(
        args,
        ["--standalone", "--nproc-per-node", "2", "--max-restarts", "3"],
        env={"NNREF_DIST_TIMEOUT": "30", "NNREF_FAILPOINT": "step@100=kill#1"},
    )
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-3000:]
    assert "(exitcode: -9) local_rank: 1" in err  # it did die (and the group came back: exit 0)
    _assert_same_run(tmp_path / "R", reference)


def _mnist_with_ties(root: Path) -> Path:
    """Tiny MNIST whose training set repeats images across the shard boundary with other labels: equal
    distances, which one process breaks by training index (the earlier record wins)."""
    make_tiny_mnist(root)
    raw = root / "MNIST" / "raw"
    images, labels = synthetic_digits(600, 1)
    images[300:340] = images[0:40]  # rank 0's records reappear in rank 1's shard …
    labels[300:340] = (labels[0:40] + 1) % 10  # … with another label
    write_idx_images(raw / "train-images-idx3-ubyte", images)
    write_idx_labels(raw / "train-labels-idx1-ubyte", labels)
    return root


def test_sharded_knn_predicts_what_one_process_predicts(tmp_path):
    root = _mnist_with_ties(tmp_path / "data")
    common = ["--k", "1,3,4", "--val-size", "0"]  # 600 records, 300 per rank
    assert main(train_args(root, tmp_path / "one", "knn", *common)) == 0
    job = torchrun(*train_args(root, tmp_path / "two", "knn", *common))
    assert job.returncode == 0, job.stderr[-3000:]
    one, two = (load_checkpoint(tmp_path / d / "run" / "checkpoint.pt") for d in ("one", "two"))
    assert torch.equal(one["test_predictions"], two["test_predictions"])
    assert {k: v["test_acc"] for k, v in one["results"].items()} == {
        k: v["test_acc"] for k, v in two["results"].items()
    } and two["world_size"] == 2
    from sklearn.neighbors import KNeighborsClassifier

    from nnref.data import load_splits

    data = load_splits(root, download=False, val_size=0)
    sk = KNeighborsClassifier(1, algorithm="brute").fit(data.train_x.numpy(), data.train_y.numpy())
    assert two["test_predictions"].tolist() == sk.predict(data.test_x.numpy()).tolist()
    one_bytes, per_rank = one["final"]["records_bytes_per_rank"], two["final"]["records_bytes_per_rank"]
    assert len(per_rank) == 2 and all(abs(b - one_bytes[0] / 2) <= 0.01 * one_bytes[0] for b in per_rank)


@pytest.mark.parametrize("case", ["batch not divisible", "another model's checkpoint", "cuda without GPUs"])
def test_bad_input_stops_every_rank_with_one_message(tiny_mnist, tmp_path, case):
    if case == "cuda without GPUs" and torch.cuda.device_count() >= 2:
        pytest.skip("this machine has GPUs for two ranks")
    args = train_args(tiny_mnist, tmp_path, "softmax", "--batch-size", "7" if case == "batch not divisible" else "8")
    expected = {
        "batch not divisible": "--batch-size 7 is the global batch and must be divisible by the 2",
        "another model's checkpoint": "written by a 'softmax' run, it cannot resume a 'mlp' run",
        "cuda without GPUs": "cuda",
    }[case]
    if case == "another model's checkpoint":
        assert main(train_args(tiny_mnist, tmp_path / "sm", "softmax", "--epochs", "1")) == 0
        args = train_args(tiny_mnist, tmp_path, "mlp", "--resume", str(tmp_path / "sm" / "run" / "checkpoint.pt"))
    if case == "cuda without GPUs":
        args = [*args, "--device", "cuda"]
    job = torchrun(*args, log_dir=tmp_path / "logs", timeout=120)  # a hung rank would raise TimeoutExpired
    assert job.returncode != 0
    logs = rank_logs(tmp_path / "logs")
    assert len(logs) == 2
    for log in logs:  # every rank says what is wrong, and no rank prints a traceback
        assert expected in log and "Traceback" not in log, log[-2000:]


@pytest.mark.mnist
def test_two_ranks_on_real_mnist_reach_the_accuracy_of_one_process(tmp_path, real_mnist):
    root = real_mnist
    common = [
        "train",
        "softmax",
        "--epochs",
        "1",
        "--limit-train",
        "12000",
        "--data-root",
        str(root),
        "--no-download",
        "--quiet",
        "--logdir",
        str(tmp_path),
    ]  # 12,000 real digits, the 10,000 test ones
    assert main([*common, "--run-name", "one"]) == 0
    job = torchrun(*common, "--run-name", "two")
    assert job.returncode == 0, job.stderr[-3000:]
    one, two = (scalar(events(tmp_path / name), "accuracy/test")[-1][1] for name in ("one", "two"))
    assert abs(one - two) <= 0.001, (one, two)
