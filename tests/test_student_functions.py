"""A student's Functions in every nnref command: the kit (`nnref exercises`), the check (`nnref gradcheck
--functions`, its exit codes and JSON), training MNIST with them (`nnref train --functions`) and the lab
(`nnref lab --functions`) — and proof that it is the student's code, not nnref's, that ran."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import train_args

from nnref import functional as F
from nnref.cli import main
from nnref.exercises import NAMES, StudentFunctions, functions_in_use
from nnref.run.records import read_status

SOLUTION = Path(__file__).with_name("exercise_solutions.py")


def _student(tmp_path: Path, old: str = "", new: str = "") -> Path:
    text = SOLUTION.read_text()
    if old:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / "my_functions.py"
    path.write_text(text)
    return path


#: The fused softmax loss's backward, made to return zeros: a student's loss through which nothing can learn.
ZERO_LOSS = ("        return grad_z * scale, None, None", "        return torch.zeros_like(grad_z), None, None")


def test_the_kit_then_the_check_nine_not_implemented_exit_1(tmp_path, capsys):
    assert main(["exercises", str(tmp_path / "hw")]) == 0
    assert "next: nnref gradcheck --functions" in capsys.readouterr().out
    kit = tmp_path / "hw" / "my_functions.py"
    assert main(["gradcheck", "--functions", str(kit), "--json", str(tmp_path / "grade.json")]) == 1
    out = capsys.readouterr().out
    assert out.count("| not implemented |") == 9 and "0 of 9 Functions pass" in out
    grade = json.loads((tmp_path / "grade.json").read_text())
    assert grade["passed"] == 0 and grade["total"] == 9 and [f["name"] for f in grade["functions"]] == list(NAMES)
    assert {f["status"] for f in grade["functions"]} == {"not implemented"}


def test_the_kit_never_overwrites_and_says_so_with_exit_2(tmp_path, capsys):
    assert main(["exercises", str(tmp_path)]) == 0
    (tmp_path / "my_functions.py").write_text("# my work\n")
    assert main(["exercises", str(tmp_path)]) == 2
    assert "already exists: nothing was written" in capsys.readouterr().err
    assert (tmp_path / "my_functions.py").read_text() == "# my work\n"
    assert main(["exercises", str(tmp_path), "--force"]) == 0
    assert "NotImplementedError" in (tmp_path / "my_functions.py").read_text()


def test_nnrefs_own_functions_as_the_students_pass_nine_of_nine_exit_0(tmp_path, capsys):
    own = tmp_path / "own.py"
    own.write_text(f"from nnref.functional import {', '.join(NAMES)}  # noqa: F401\n")
    assert main(["gradcheck", "--functions", str(own), "--json", str(tmp_path / "grade.json")]) == 0
    assert "9 of 9 Functions pass" in capsys.readouterr().out
    assert json.loads((tmp_path / "grade.json").read_text())["passed"] == 9


@pytest.mark.parametrize(
    "text,said",
    [
        ("class LinearFunction(:\n    pass\n", "my_functions.py:1: SyntaxError"),
        ("import torch\nraise RuntimeError('half-way')\n", "my_functions.py:2: RuntimeError: half-way while importing"),
    ],
    ids=["syntax error", "raises at import"],
)
def test_a_file_that_does_not_load_is_exit_2_with_its_line_and_no_traceback(tmp_path, text, said):
    path = tmp_path / "my_functions.py"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "nnref", "gradcheck", "--functions", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_only_and_usage_errors(tmp_path, capsys):
    assert main(["gradcheck", "--functions", str(SOLUTION), "--only", "sigmoid,LinearFunction"]) == 0
    out = capsys.readouterr().out
    assert "| LinearFunction | pass |" in out and "| SigmoidFunction | pass |" in out and "2 of 2" in out
    for argv, said in ((["--only", "relu"], "--only chooses among"), (["--functions", "x.py", "--sweep"], "not with")):
        with pytest.raises(SystemExit) as exit_:
            main(["gradcheck", *argv])
        assert exit_.value.code == 2 and said in capsys.readouterr().err


def _accuracy(run: Path) -> float:
    return torch.load(run / "checkpoint.pt", weights_only=False)["final"]["test_acc"]


def test_training_with_a_correct_students_functions_reaches_nnrefs_accuracy(tiny_mnist, tmp_path, capsys):
    recipe = ("--epochs", "2", "--lr", "0.05", "--seed", "3", "--limit-train", "500")
    assert main(train_args(tiny_mnist, tmp_path, "softmax", *recipe, run_name="nnref")) == 0
    student = _student(tmp_path)
    assert (
        main(
            [
                *train_args(tiny_mnist, tmp_path, "softmax", *recipe, run_name="student"),
                "--functions",
                str(student),
                "--quiet",
            ]
        )
        == 0
    )
    ours, theirs = _accuracy(tmp_path / "nnref"), _accuracy(tmp_path / "student")
    assert ours > 0.8 and abs(ours - theirs) <= 0.01, (ours, theirs)
    config = read_status(tmp_path / "student")["config"]  # the run says whose code it ran
    assert config["functions"] == str(student) and "SoftmaxCrossEntropyFunction" in config["student_functions"]
    assert main(["runs", "--logdir", str(tmp_path)]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| student")]
    assert "the student's Linear" in row


def test_training_with_a_loss_whose_backward_returns_zeros_learns_nothing(tiny_mnist, tmp_path, capsys):
    """Proof that the student's code ran, not nnref's: the run starts by saying so, warns, and stays at chance."""
    student = _student(tmp_path, *ZERO_LOSS)
    recipe = ("--epochs", "2", "--lr", "0.05", "--seed", "3", "--limit-train", "500")
    args = [a for a in train_args(tiny_mnist, tmp_path, "softmax", *recipe, run_name="zero") if a != "--quiet"]
    assert main([*args, "--functions", str(student)]) == 0
    out = capsys.readouterr().out
    assert "using the student's LinearFunction" in out
    assert "warning: SoftmaxCrossEntropyFunction fails its check, and is used all the same" in out
    assert _accuracy(tmp_path / "zero") < 0.3  # ten classes: chance is 0.1; nnref's own reach > 0.8 above


def test_knn_takes_no_functions(tiny_mnist, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*train_args(tiny_mnist, tmp_path, "knn"), "--functions", str(SOLUTION)])
    assert exit_.value.code == 2 and "--functions does not apply to knn" in capsys.readouterr().err


def test_the_lab_trains_the_playground_with_the_students_functions(tmp_path):
    """The lab's line on two classes uses the fused sigmoid loss: a student's that counts its backward calls."""
    import websockets.sync.client as client

    from nnref.lab.server import LabServer
    from nnref.lab.session import decode

    counting = _student(
        tmp_path,
        "class SigmoidBinaryCrossEntropyFunction(torch.autograd.Function):",
        "class SigmoidBinaryCrossEntropyFunction(torch.autograd.Function):\n    calls = 0\n",
    )
    text = counting.read_text()
    backward = text.index("def backward", text.index("class SigmoidBinaryCrossEntropyFunction"))
    body = text.index("\n", text.index('"""', text.index('"""', backward) + 3)) + 1
    counting.write_text(text[:body] + "        SigmoidBinaryCrossEntropyFunction.calls += 1\n" + text[body:])
    student = StudentFunctions.load(counting)
    with LabServer(functions=student) as lab:
        assert (
            functions_in_use()["SigmoidBinaryCrossEntropyFunction"]
            is student.functions["SigmoidBinaryCrossEntropyFunction"]
        )
        with client.connect(lab.base.replace("http", "ws") + "/ws/playground", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "config", "version": 1, "state": {"model": "line", "dataset": "blobs"}}))
            ws.send(json.dumps({"type": "step"}))
            deadline, header = time.time() + 30, {}
            while header.get("epoch", 0) == 0 and time.time() < deadline:
                message = ws.recv(timeout=20)
                if isinstance(message, bytes):
                    header = decode(message)[0]
                    ws.send(json.dumps({"type": "ready"}))
        assert student.functions["SigmoidBinaryCrossEntropyFunction"].calls >= 1
        assert any("using the student's" in n and "my_functions.py" in n for n in header["notices"])
    assert functions_in_use() == F.FUNCTIONS  # nnref's own again once the lab stopped
