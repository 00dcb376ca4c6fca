"""nnref.runs: ``nnref runs`` lists every run of a folder with its status — finished, interrupted, diverged,
damaged — and never a traceback."""

from __future__ import annotations

import pytest

from helpers import train_args
from nnref.cli import main
from nnref.train import Trainer


def _interrupt(monkeypatch, method: str):
    original = getattr(Trainer, method)
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if method == "train_epoch" or len(calls) > 1:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, method, interrupted)


@pytest.fixture
def logdir(tiny_mnist, tmp_path, monkeypatch, capsys):
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "1", run_name="finished")) == 0
    assert main(train_args(tiny_mnist, tmp_path, "knn", "--k", "1,3", run_name="knn")) == 0
    assert main(train_args(tiny_mnist, tmp_path, "mlp", "--epochs", "3", "--lr", "1e6", "--hidden", "64",
                           "--lr-schedule", "constant", "--checkpoint-every", "1", run_name="diverged")) == 1
    with monkeypatch.context() as m:
        _interrupt(m, "end_epoch")  # Ctrl-C during the second epoch's end: the first epoch's checkpoint stays
        assert main(train_args(tiny_mnist, tmp_path, "mlp", "--epochs", "3", "--hidden", "8",
                               run_name="interrupted")) == 130
    with monkeypatch.context() as m:
        _interrupt(m, "train_epoch")  # before any checkpoint
        assert main(train_args(tiny_mnist, tmp_path, "logreg", "--epochs", "2", run_name="early")) == 130
    assert main(train_args(tiny_mnist, tmp_path, "softmax", "--epochs", "1", run_name="damaged")) == 0
    (tmp_path / "damaged" / "checkpoint.pt").write_bytes(b"half a checkpoint")
    (tmp_path / "not-a-run").mkdir()
    capsys.readouterr()
    return tmp_path


def test_runs_lists_every_status(logdir, capsys):
    assert main(["runs", "--logdir", str(logdir)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and err == ""
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in out.splitlines()[2:]}
    assert set(rows) == {"finished", "knn", "diverged", "interrupted", "early", "damaged"}
    name, model, recipe, steps, val, test, status = rows["finished"]
    assert model == "softmax" and "lr 0.1" in recipe and "batch 64" in recipe and status == "finished"
    assert int(steps) == 8 and val.endswith("%") and test.endswith("%")  # 500 images / 64 per batch
    assert rows["knn"][1] == "knn" and rows["knn"][2].startswith("k 1,3") and rows["knn"][6] == "finished"
    assert rows["diverged"][6].startswith("diverged at step ") and "last good checkpoint" in rows["diverged"][6]
    assert rows["interrupted"][6].startswith("interrupted at step 4, resumable (--resume ")
    assert rows["interrupted"][4].endswith("%") and rows["interrupted"][5] == "—"  # val of epoch 1, no test yet
    assert rows["early"][6].startswith("no checkpoint") and rows["early"][1] == "logreg"  # from status.json
    assert "epochs 2" in rows["early"][2]
    assert rows["damaged"][6].startswith("damaged checkpoint")


def test_an_interrupted_run_listed_as_resumable_does_resume(logdir, tiny_mnist, capsys):
    assert main(["runs", "--logdir", str(logdir)]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("| interrupted "))
    ckpt = line.split("--resume ")[1].split(")")[0]
    assert main(["train", "mlp", "--resume", ckpt, "--quiet", "--data-root", str(tiny_mnist), "--no-download"]) == 0
    from nnref.runs import describe_run

    assert describe_run(logdir / "interrupted").status == "finished"


def test_runs_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["runs", "--logdir", str(tmp_path / "nothing")]) == 1
    assert "is not a folder" in capsys.readouterr().err
