"""The two wings (docs/architecture.md): the lecture imports nothing from the run wing, loads no pictures or
TensorBoard on import, and the command line parses without torch; one definition of every name."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import nnref

PACKAGE = Path(nnref.__file__).parent

#: The lecture wing: what a student reads (docs/architecture.md).
LECTURE = (
    "functional",
    "_dispatch",
    "_checks",
    "layers",
    "models",
    "knn",
    "knn_bytes",
    "plane",
    "playground",
    "gradcheck",
    "catalogue",
    "digits",
    "data",
    "viz",
    "steps",
    "settings",
    "records",
    "table",
    "exercises",
    "backprop",
)
#: Everything of nnref a lecture module may import: the lecture wing itself (and the package's face).
ALLOWED = {f"nnref.{m}" for m in LECTURE} | {"nnref", "nnref._deprecated"}


def _imports(path: Path, module: str) -> set[str]:
    """Every nnref module a file imports, wherever the import stands (top level or inside a function)."""
    found = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nnref")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.startswith("nnref"):
                found |= {base} if node.module else {f"{base}.{a.name}" for a in node.names}
    return found


@pytest.mark.lecture
@pytest.mark.parametrize("module", LECTURE)
def test_the_lecture_wing_imports_nothing_from_the_run_wing(module):
    imported = _imports(PACKAGE / f"{module}.py", f"nnref.{module}")
    assert imported <= ALLOWED, f"nnref.{module} imports {sorted(imported - ALLOWED)}"


@pytest.mark.lecture
def test_every_module_belongs_to_a_wing_or_the_apps_on_top():
    """A new module is placed on purpose: the lecture (LECTURE), the run wing (nnref/run/), or the apps."""
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "_deprecated", "cli"}
    assert top == set(LECTURE), f"place these in a wing (and in docs/architecture.md): {sorted(top ^ set(LECTURE))}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {"run", "lab", "bench", "exercise_kit"}  # (the kit: the student's files, package data)


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter and return what it prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.lecture
def test_importing_the_lecture_loads_no_pictures_tensorboard_or_torchvision():
    modules = ", ".join(
        f"nnref.{m}"
        for m in (
            "plane",
            "knn",
            "functional",
            "models",
            "gradcheck",
            "data",
            "digits",
            "viz",
            "playground",
            "catalogue",
        )
    )
    loaded = json.loads(
        _fresh(
            f"import sys, json\nimport {modules}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
        )
    )
    assert not {"matplotlib", "tensorboard", "torchvision", "nnref.run"} & set(loaded)
    assert "torch" in loaded  # (the check itself works: torch is loaded)


@pytest.mark.lecture
def test_the_command_line_parses_without_torch():
    """``nnref --help``, every command's ``--help`` and a usage error build the parser without importing torch."""
    code = """
import contextlib, io, sys
from nnref.cli import build_parser, main
parser = build_parser()
commands = next(a for a in parser._actions if a.dest == "command").choices
for argv in [["--help"], *([c, "--help"] for c in commands), ["train", "mlp", "--epoch", "3"], ["lab", "--port", "x"]]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exit:
            assert exit.code in (0, 2), (argv, exit.code)
print("torch" in sys.modules, len(commands))
"""
    loaded, count = _fresh(code).split()
    assert loaded == "False" and int(count) >= 9


@pytest.mark.lecture
def test_every_name_in_settings_has_its_implementation():
    from nnref import layers, plane, settings
    from nnref.knn import KNNClassifier

    assert tuple(layers.ACTIVATIONS) == settings.ACTIVATIONS
    for metric in settings.METRICS:
        KNNClassifier(metric=metric)
    for name in settings.DATASETS:
        for classes in settings.CLASSES[name]:
            assert plane.make_points(name, 40, classes=classes)[1].unique().numel() == classes
    assert plane.features(plane.make_points("xor", 8)[0], settings.FEATURES).shape == (8, len(settings.FEATURES))


def test_the_bench_contents_are_its_registered_sections():
    from nnref import bench

    assert tuple(bench.SECTIONS) == bench.ORDER


@pytest.mark.lecture
@pytest.mark.parametrize(
    "old,new",
    [
        ("nnref.train", "nnref.run.train"),
        ("nnref.config", "nnref.run.config"),
        ("nnref.checkpoint", "nnref.run.checkpoint"),
        ("nnref.runlog", "nnref.run.runlog"),
    ],
)
def test_an_old_module_path_gives_the_new_module_with_a_warning(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: use {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


@pytest.mark.lecture
@pytest.mark.parametrize(
    "old,name,new",
    [
        ("nnref.models", "KNNClassifier", "nnref.knn"),
        ("nnref.knn", "run", "nnref.run.knn"),
        ("nnref.steps", "make_step", "nnref.run.fast_steps"),
    ],
)
def test_an_old_name_gives_the_new_object_with_a_warning(old, name, new):
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} is deprecated: use {new}.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)
    with warnings.catch_warnings(), pytest.raises(AttributeError):
        warnings.simplefilter("error")
        getattr(importlib.import_module(old), "no_" + "such_name")  # (an unknown name: no warning, an error)
