"""nnref.cli: the bad-input table through the command line, exit codes, ``python -m nnref`` and the scripts.

Usage errors exit with 2 (argparse), every other failure with 1 and one message on stderr — never a
traceback.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bad_inputs import CLI_CASES, FUNCTION_CASES
from helpers import train_args

from nnref.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def softmax_checkpoint(tiny_mnist, tmp_path):
    assert main(train_args(tiny_mnist, tmp_path / "ckpt", "softmax", "--epochs", "1", run_name="sm")) == 0
    return tmp_path / "ckpt" / "sm" / "checkpoint.pt"


def _run(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name,argv,code,pattern,setup", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_command_line_bad_input(name, argv, code, pattern, setup, tiny_mnist, tmp_path, capsys, request):
    ckpt = None
    if setup == "garbage" or setup == "garbage+checkpoint":
        (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint, nor an image")
    if setup in ("checkpoint", "garbage+checkpoint"):
        ckpt = request.getfixturevalue("softmax_checkpoint")
        capsys.readouterr()
    if setup == "file":
        (tmp_path / "file.txt").write_text("a file where a folder should be")
    if callable(setup):
        setup(tiny_mnist)
    got, err = _run(argv(tiny_mnist, tmp_path, ckpt), capsys)
    assert got == code, err
    assert re.search(pattern, err, re.S), err
    assert "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_gpu(tiny_mnist, tmp_path, capsys):
    code, err = _run(train_args(tiny_mnist, tmp_path, "softmax", "--device", "cuda"), capsys)
    assert code == 2 and "PyTorch sees no CUDA GPU" in err


def test_no_traceback_in_a_real_process(tmp_path):
    """The command prints one message and exits 1 — no traceback — on a data error; 2 on a usage error."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnref",
            "train",
            "softmax",
            "--data-root",
            str(tmp_path),
            "--no-download",
            "--logdir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "MNIST is not available" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "nnref", "train", "softmax", "--lr", "-1"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--lr" in proc.stderr


def test_python_dash_m_nnref_answers_help():
    proc = subprocess.run([sys.executable, "-m", "nnref", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: nnref" in proc.stdout, proc.stderr


@pytest.mark.parametrize(
    "entry",
    ["nnref.cli", "scripts/train_mnist.py", "scripts/gradcheck.py", "scripts/playground.py", "scripts/bench.py"],
)
def test_every_entry_point_answers_help(entry, monkeypatch, capsys):
    """In this process (runpy), not five more interpreters: the same code path as ``python ENTRY --help``."""
    import runpy

    monkeypatch.setattr(sys, "argv", [entry, "--help"])
    with pytest.raises(SystemExit) as exit_:
        if entry.endswith(".py"):
            runpy.run_path(str(ROOT / entry), run_name="__main__")
        else:
            runpy.run_module(entry, run_name="__main__", alter_sys=True)
    assert exit_.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


def test_every_command_has_a_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {
        "train",
        "eval",
        "predict",
        "export",
        "gradcheck",
        "exercises",
        "runs",
        "playground",
        "bench",
        "lab",
    }


def test_every_option_of_every_command_says_what_it_does():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    silent = [
        f"nnref {name} {'/'.join(a.option_strings) or a.dest}"
        for name, parser in sub.choices.items()
        for a in parser._actions
        if a.help is not argparse.SUPPRESS and not (a.help or "").strip()
    ]
    assert silent == []


def test_train_help_shows_the_defaults_of_each_model(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for line in (
        "softmax  20 epochs, --lr 0.1,  --batch-size 64",
        "mlp      15 epochs, --lr 0.05, --batch-size 128",
        "knn      --k 3",
    ):
        assert line in out, out[-1500:]


@pytest.mark.parametrize(
    "typo,meant", [("--hiden", "--hidden"), ("--epoch", "--epochs"), ("--lr-sched", "--lr-schedule")]
)
def test_a_mistyped_option_is_refused_with_the_commands_usage_and_a_suggestion(typo, meant, capsys):
    """Never an abbreviation silently taken for an option (``--epoch 1`` is not ``--epochs 1``)."""
    code, err = _run(["train", "mlp", typo, "1", "--dry-run"], capsys)
    assert code == 2 and "usage: nnref train" in err and f"({typo}: did you mean {meant}?)" in err, err


def test_gradcheck_png_or_json_without_sweep_or_cost_is_an_error(tmp_path, capsys):
    for flag in ("--png", "--json"):
        code, err = _run(["gradcheck", flag, str(tmp_path / "out")], capsys)
        assert code == 2 and f"{flag} " in err and "--sweep" in err, err
    assert not any(tmp_path.iterdir())


def test_playground_rejects_bad_values(capsys):
    assert _run(["playground", "--dataset", "moons"], capsys)[0] == 2
    code, err = _run(["playground", "--test-fraction", "1.5", "--quiet"], capsys)
    assert code == 2 and "--test-fraction: must be between 0 and 1" in err


def test_bench_rejects_unknown_sections(capsys):
    code, err = _run(["bench", "--only", "functions,gpu-magic"], capsys)
    assert code == 1 and "unknown bench sections" in err


def test_the_tables_are_complete():
    """The README's bad-input table is these rows: keep them all."""
    assert len(FUNCTION_CASES) >= 20
    kinds = {row[0] for row in FUNCTION_CASES}
    for needed in (
        "linear inner dims",
        "linear bias length",
        "ce batch mismatch",
        "ce float labels",
        "ce label too large",
        "bce targets outside",
        "probs outside [0,1]",
        "linear x rank",
    ):
        assert needed in kinds
    assert len(CLI_CASES) >= 25
