"""The house (docs/architecture.md): ``nnref/`` lists the lecture and folders named for the rest; the lecture
imports nothing from above it, loads no pictures or TensorBoard on import, and the command line parses without
torch; every module path the docs name exists."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nnref

PACKAGE = Path(nnref.__file__).parent

#: The lecture: every module at the top of nnref/ is one of its concepts (docs/architecture.md).
LECTURE = (
    "functional",
    "_dispatch",
    "_checks",
    "formulas",
    "layers",
    "models",
    "training",
    "knn",
    "plane",
    "choices",
    "gradcheck",
    "backprop",
    "data",
    "digits",
    "viz",
)
#: Everything else, in folders named for what they hold, above the lecture.
FOLDERS = {"cli", "lab", "bench", "run", "exercises", "fast"}
#: Everything of nnref a lecture module may import: the lecture itself, the package's face, and the one fast path
#: that KNN takes on bytes (nnref.fast.knn_bytes imports nothing of nnref).
ALLOWED = {f"nnref.{m}" for m in LECTURE} | {"nnref", "nnref.fast", "nnref.fast.knn_bytes"}


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
def test_the_listing_of_nnref_is_the_lecture_and_named_folders():
    """``ls nnref/`` reads as the lecture's table of contents: a new module is placed on purpose, in the lecture
    (LECTURE) or in a folder named for what it holds (FOLDERS)."""
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top == set(LECTURE), f"place these (and in docs/architecture.md): {sorted(top ^ set(LECTURE))}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == FOLDERS


def test_the_knn_bytes_fast_path_imports_nothing_of_nnref():
    imported = _imports(PACKAGE / "fast" / "knn_bytes.py", "nnref.fast.knn_bytes")
    assert imported == set()


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
            "formulas",
            "training",
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


def test_the_bench_contents_are_its_registered_sections():
    from nnref import bench

    assert tuple(bench.SECTIONS) == bench.ORDER


#: Where the docs name nnref's modules: prose and docstrings.
DOC_FILES = [
    *sorted((PACKAGE.parent / "docs").glob("*.md")),
    PACKAGE.parent / "README.md",
    PACKAGE.parent / "CONTRIBUTING.md",
    *sorted((PACKAGE.parent / "scripts").glob("*.py")),
    *sorted((PACKAGE.parent / "notebooks").glob("*.ipynb")),
    *sorted(PACKAGE.rglob("*.py")),
    *sorted(PACKAGE.rglob("*.md")),
]
_DOTTED = re.compile(r"(?<![\w/.-])nnref(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_PATH = re.compile(r"(?<![\w/.-])nnref/[A-Za-z0-9_/]+(?:\.py|/)")


def _resolves(dotted: str) -> bool:
    """``nnref.a.b.c`` names a module, or a name inside one (an attribute of the longest module prefix)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def _named_paths():
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for match in _DOTTED.finditer(text):
            yield path, match.group(0).rstrip("."), "module"
        for match in _PATH.finditer(text):
            yield path, match.group(0), "file"


def test_every_module_path_the_docs_and_docstrings_name_exists():
    """No doc, README or docstring names a module, a name or a file of nnref that is not there (no compatibility
    layer hides a stale reference: an old path fails to import)."""
    root = PACKAGE.parent
    stale = sorted(
        {
            f"{path.relative_to(root)}: {name}"
            for path, name, kind in _named_paths()
            if (kind == "module" and not _resolves(name)) or (kind == "file" and not (root / name).exists())
        }
    )
    assert not stale, "stale references:\n" + "\n".join(stale)


def test_the_stale_reference_check_can_fail():
    assert not _resolves("nnref.settings") and not _resolves("nnref.models.KNNClassifier")
    assert _resolves("nnref.choices.ACTIVATIONS") and _resolves("nnref.run.train.train")
