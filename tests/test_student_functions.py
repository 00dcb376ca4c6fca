"""A student's Functions in every nnref command: the kit (`nnref exercises`), the check (`nnref gradcheck
--functions`, its exit codes and JSON), training MNIST with them (`nnref train --functions`) and the lab
(`nnref lab --functions`) — and proof that it is the student's code, not nnref's, that ran."""

from __future__ import annotations

import json
import os
import shutil
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


def test_a_right_file_passes_nine_of_nine_exit_0_and_nnrefs_own_fail(tmp_path, capsys):
    assert main(["gradcheck", "--functions", str(SOLUTION), "--json", str(tmp_path / "grade.json")]) == 0
    assert "9 of 9 Functions pass" in capsys.readouterr().out
    assert json.loads((tmp_path / "grade.json").read_text())["passed"] == 9
    own = tmp_path / "own.py"
    own.write_text(f"from nnref.functional import {', '.join(NAMES)}  # noqa: F401\n")
    assert main(["gradcheck", "--functions", str(own)]) == 1
    assert "0 of 9 Functions pass" in capsys.readouterr().out


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
        [sys.executable, "-m", "nnref", "gradcheck", "--functions", str(path), "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)  # the report is written all the same: every Function, none earned
    assert [f["status"] for f in report["functions"]] == ["not loaded"] * 9 and report["passed"] == 0
    assert said in report["functions"][0]["message"]


def test_only_and_usage_errors(tmp_path, capsys):
    assert main(["gradcheck", "--functions", str(SOLUTION), "--only", "sigmoid,LinearFunction"]) == 0
    out = capsys.readouterr().out
    assert "| LinearFunction | pass |" in out and "| SigmoidFunction | pass |" in out and "2 of 2" in out
    assert main(["gradcheck", "--functions", str(SOLUTION), "--only", "tanh"]) == 0
    assert capsys.readouterr().out.endswith("\n1 of 1 Function passes\n")
    for argv, said in (
        (["--only", "relu"], "--only goes with --functions"),
        (["--hints", "none"], "--hints goes with --functions"),
        (["--functions", "x.py", "--sweep"], "not with"),
        (["--functions", str(SOLUTION), "--format", "gradescope"], "--format says what --json writes"),
        (["--functions", str(SOLUTION), "--hints", "all"], "invalid choice"),
        (["--functions", str(SOLUTION), "--json", "-", "--format", "gradescope", "--points", "tahn=3"], "--points"),
    ):
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


# --------------------------------------------------------------------------------------------------
# Grading: --json -, exit codes, Gradescope's results.json, the autograder run as Gradescope runs it
# --------------------------------------------------------------------------------------------------
#: Gradescope's results.json, as its autograder specification documents it
#: (https://gradescope-autograders.readthedocs.io/en/latest/specs/, "Output format").
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
GRADESCOPE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "leaderboard": {"type": "array"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "name_format": {"type": "string"},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
    "anyOf": [{"required": ["score"]}, {"properties": {"tests": {"items": {"required": ["score"]}}}}],
}


def _half_right(tmp_path: Path) -> tuple[Path, float]:
    """A file whose grade is known: Linear 2/3 right, Sigmoid to Tanh not written, the losses right."""
    text = SOLUTION.read_text().replace("grad_W = g.T @ x", "grad_W = x.T @ g")
    for name in ("SigmoidFunction", "SoftmaxFunction", "ReLUFunction", "TanhFunction"):
        start = text.index("def backward", text.index(f"class {name}("))
        body = text.index("\n", text.index('"""', text.index('"""', start) + 3)) + 1
        text = text[:body] + "        raise NotImplementedError\n" + text[body:]
    path = tmp_path / "half.py"
    path.write_text(text)
    return path, 100 / 9 * (2 / 3 + 4)


def test_gradescope_results_json_follows_the_documented_schema(tmp_path, capsys, monkeypatch):
    import jsonschema

    path, score = _half_right(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = ["gradcheck", "--functions", str(path), "--format", "gradescope", "--json", "-", "--hints", "where"]
    assert main([*argv, "--visibility", "after_due_date"]) == 1
    results = json.loads(capsys.readouterr().out)  # standard output is the JSON, nothing else
    assert not (tmp_path / "-").exists()  # and no file named "-"
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["score"] == pytest.approx(score) and isinstance(results["execution_time"], (int, float))
    tests = results["tests"]
    assert [t["name"] for t in tests] == list(NAMES) and {t["visibility"] for t in tests} == {"after_due_date"}
    assert [t["max_score"] for t in tests] == pytest.approx([100 / 9] * 9)
    assert tests[0]["score"] == pytest.approx(100 / 9 * 2 / 3) and tests[0]["status"] == "failed"
    assert "dL/dW has shape (3, 5) (transposed)" in tests[0]["output"] and "gᵀ x" not in tests[0]["output"]
    points = "linear=30,sigmoid=10,softmax=10,relu=10,tanh=10,cross_entropy=10,binary_cross_entropy=5,"
    points += "softmax_cross_entropy=10,sigmoid_binary_cross_entropy=5"
    assert main([*argv, "--points", points]) == 1
    results = json.loads(capsys.readouterr().out)
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["score"] == pytest.approx(20 + 10 + 5 + 10 + 5)
    with pytest.raises(jsonschema.ValidationError):  # the schema can fail: a test without its score's number
        jsonschema.validate({**results, "tests": [{**tests[0], "score": "full"}]}, GRADESCOPE_SCHEMA)


def test_an_unwritable_report_is_exit_2_and_the_table_is_printed(tmp_path, capsys):
    code = main(["gradcheck", "--functions", str(SOLUTION), "--json", str(tmp_path / "no" / "such" / "r.json")])
    captured = capsys.readouterr()
    assert code == 2 and "cannot write the report to" in captured.err and "9 of 9 Functions pass" in captured.out


def test_gradcheck_without_functions_in_a_kit_folder_says_whose_it_checked(tmp_path, capsys, monkeypatch):
    assert main(["exercises", str(tmp_path / "hw")]) == 0
    monkeypatch.chdir(tmp_path / "hw")
    capsys.readouterr()
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "These are nnref's own Functions, not the ones in my_functions.py" in out
    assert "nnref gradcheck --functions my_functions.py" in out


def _autograder(tmp_path: Path, *options: str) -> Path:
    """/autograder as Gradescope lays it out: source/ (the upload), run_autograder, submission/, results/."""
    root = tmp_path / "autograder"
    assert main(["exercises", "--autograder", str(root / "source"), *options]) == 0
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def _run_autograder(root: Path, submission: str, tmp_path: Path) -> dict:
    for old in (root / "submission").iterdir():
        old.unlink()
    (root / "submission" / "my_functions.py").write_text(submission)
    (root / "results" / "results.json").unlink(missing_ok=True)
    bin_dir = tmp_path / "bin"  # python3 as Gradescope's image has it after setup.sh: this interpreter, this nnref
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def test_run_autograder_as_gradescope_runs_it_grades_right_half_right_and_crashing(tmp_path):
    import jsonschema

    root = _autograder(tmp_path, "--timeout", "5")
    written = sorted(p.name for p in (root / "source").iterdir())
    assert written == ["README.md", "nnref-source", "run_autograder", "setup.sh"]
    assert len((root / "source" / "README.md").read_text().splitlines()) == 3
    setup = (root / "source" / "setup.sh").read_text()
    assert "pip install" in setup and "nnref-source" in setup
    assert (root / "source" / "nnref-source" / "pyproject.toml").is_file()
    assert os.access(root / "source" / "setup.sh", os.X_OK) and os.access(root / "run_autograder", os.X_OK)
    half, half_score = _half_right(tmp_path)
    crash = "import os\nos._exit(9)\n"  # the whole file ends its process on import
    for submission, score in ((SOLUTION.read_text(), 100.0), (half.read_text(), half_score), (crash, 0.0)):
        results = _run_autograder(root, submission, tmp_path)
        jsonschema.validate(results, GRADESCOPE_SCHEMA)
        assert results["score"] == pytest.approx(score), results
        assert len(results["tests"]) == 9
    assert "importing it ended its process (exit code 9" in results["tests"][0]["output"]


def test_the_autograder_says_what_is_wrong_with_its_options(tmp_path, capsys):
    for argv, said in (
        (["exercises"], "give DIR"),
        (["exercises", str(tmp_path), "--autograder", str(tmp_path)], "give DIR"),
        (["exercises", str(tmp_path), "--hints", "none"], "--hints is the autograder's"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and said in capsys.readouterr().err
    assert main(["exercises", "--autograder", str(tmp_path / "ag"), "--hints", "none", "--points", "50"]) == 0
    assert "--hints none" in (tmp_path / "ag" / "run_autograder").read_text()
    assert "--points 50" in (tmp_path / "ag" / "run_autograder").read_text()
    assert main(["exercises", "--autograder", str(tmp_path / "ag")]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err


def test_the_banner_names_only_the_functions_the_model_uses(tmp_path):
    from nnref.exercises import functions_used
    from nnref.run.config import TrainConfig
    from nnref.run.train import _functions_of

    assert _functions_of(TrainConfig(model="softmax")) == ("LinearFunction", "SoftmaxCrossEntropyFunction")
    assert _functions_of(TrainConfig(model="mlp", activation="tanh")) == (
        "LinearFunction",
        "TanhFunction",
        "SoftmaxCrossEntropyFunction",
    )
    assert functions_used(lambda: None) == ()
    student = StudentFunctions.load(_student(tmp_path))
    lines = student.describe(("LinearFunction", "SoftmaxCrossEntropyFunction"))
    assert lines[0].startswith("using the student's LinearFunction, SoftmaxCrossEntropyFunction from ")
    assert lines[1].startswith("not used here: SigmoidFunction, SoftmaxFunction")
