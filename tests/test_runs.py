"""nnref.runs: ``nnref runs`` lists every run of a folder — every kind, and every status: finished, running,
interrupted and resumable, stopped before its first checkpoint, diverged, damaged — and never a traceback."""

from __future__ import annotations

import pytest
from helpers import cli_process, train_args

from nnref.cli import main
from nnref.run.checkpoint import RunLock
from nnref.run.failpoints import armed


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    from conftest import make_tiny_mnist

    tmp = tmp_path_factory.mktemp("runs")
    root, logdir = make_tiny_mnist(tmp / "data"), tmp / "runs"
    killed = cli_process(
        *train_args(root, logdir, "mlp", "--epochs", "2", "--hidden", "8", run_name="killed"),
        env={"NNREF_FAILPOINT": "step@2=kill"},
    )  # SIGKILL before the first checkpoint (step 4)
    assert main(train_args(root, logdir, "softmax", "--epochs", "1", run_name="finished")) == 0
    assert main(train_args(root, logdir, "knn", "--k", "1,3", run_name="knn")) == 0
    assert (
        main(
            train_args(
                root,
                logdir,
                "mlp",
                "--epochs",
                "3",
                "--lr",
                "1e6",
                "--hidden",
                "64",
                "--lr-schedule",
                "constant",
                "--checkpoint-every",
                "1",
                run_name="diverged",
            )
        )
        == 1
    )
    with armed("step@6=term"):  # SIGTERM in the second epoch: the run stops after step 6 and checkpoints it
        assert main(train_args(root, logdir, "mlp", "--epochs", "3", "--hidden", "8", run_name="interrupted")) == 75
    assert main(train_args(root, logdir, "softmax", "--epochs", "1", run_name="damaged")) == 0
    ckpt = logdir / "damaged" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:-100])  # torn by a filesystem that is not atomic
    assert (
        main(
            [
                "playground",
                "--dataset",
                "xor",
                "--model",
                "logreg",
                "--steps",
                "50",
                "--logdir",
                str(logdir),
                "--run-name",
                "pg",
                "--quiet",
            ]
        )
        == 0
    )
    (logdir / "not-a-run").mkdir()
    assert killed.wait(timeout=120) == -9
    return root, logdir


def _table(capsys, logdir) -> dict:
    assert main(["runs", "--logdir", str(logdir)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and err == ""
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()[2:]}


def test_runs_lists_every_kind_and_status(logdir, capsys):
    _, logdir = logdir
    rows = _table(capsys, logdir)
    assert set(rows) == {"finished", "knn", "diverged", "interrupted", "killed", "damaged", "pg"}
    name, kind, model, recipe, steps, val, test, status = rows["finished"]
    assert (kind, model, status) == ("mnist", "softmax", "finished") and "lr 0.1" in recipe and "batch 64" in recipe
    assert int(steps) == 8 and val.endswith("%") and test.endswith("%")  # 500 images / 64 per batch
    assert rows["knn"][2] == "knn" and rows["knn"][3] == "k 1,3 euclidean" and rows["knn"][7] == "finished"
    assert rows["diverged"][7].startswith("diverged at step ") and "last good checkpoint" in rows["diverged"][7]
    assert rows["interrupted"][7].startswith("interrupted at step 6, resumable (--resume ")
    assert rows["interrupted"][5].endswith("%") and rows["interrupted"][6] == "—"  # val of epoch 1, no test yet
    assert rows["killed"][7] == "no checkpoint: stopped before its first one (not resumable)"
    assert rows["killed"][2] == "mlp" and "hidden 8" in rows["killed"][3]  # from its status file
    assert rows["damaged"][7].startswith("damaged checkpoint")
    assert rows["pg"][1:3] == ["playground", "playground"] and rows["pg"][7] == "finished"


def test_a_run_being_written_is_listed_as_running_with_its_process(logdir, capsys):
    _, logdir = logdir
    lock = RunLock(logdir / "finished", "nnref train softmax (a test)")
    try:
        assert _table(capsys, logdir)["finished"][7].startswith("running: process ")
    finally:
        lock.release()
    assert _table(capsys, logdir)["finished"][7] == "finished"


def test_an_interrupted_run_listed_as_resumable_does_resume(logdir, capsys):
    root, logdir = logdir
    line = _table(capsys, logdir)["interrupted"][7]
    ckpt = line.split("--resume ")[1].split(")")[0]
    assert main(["train", "mlp", "--resume", ckpt, "--quiet", "--data-root", str(root), "--no-download"]) == 0
    from nnref.run.runs import describe_run

    assert describe_run(logdir / "interrupted").status == "finished"


def test_runs_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["runs", "--logdir", str(tmp_path / "nothing")]) == 1
    assert "is not a folder" in capsys.readouterr().err
