"""What a teacher uploads to Gradescope: ``setup.sh`` (installs this version of nnref), ``run_autograder`` (grades
``/autograder/submission``'s file into ``/autograder/results/results.json``), a README of three lines, and — when
nnref runs from its source tree — that source, so that the autograder installs exactly the nnref it was written by.

Gradescope unpacks the upload into ``/autograder/source``, runs ``setup.sh`` there once, then for each submission
copies ``run_autograder`` to ``/autograder/run_autograder`` and runs it with the student's files in
``/autograder/submission``.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from .reports import HINTS, VISIBILITIES

#: The files written, in order (``nnref-source/`` follows them when nnref runs from its source tree).
AUTOGRADER_FILES = ("setup.sh", "run_autograder", "README.md")

_SOURCE = "nnref-source"


def write_autograder(
    folder: str | os.PathLike,
    hints: str = "where",
    points: float | Mapping[str, float] | None = None,
    visibility: str = "visible",
    timeout: float = 10.0,
    memory: int = 2048,
    force: bool = False,
) -> list[Path]:
    """Write the autograder into ``folder``; return the paths of :data:`AUTOGRADER_FILES`.  The grading's choices
    (``hints``, ``points``, ``visibility``, ``timeout`` in seconds, ``memory`` in MiB) are written into
    ``run_autograder``.  Without ``force`` nothing is written when one of the files exists (FileExistsError)."""
    if hints not in HINTS:
        raise ValueError(f"hints {hints!r}: choose from {', '.join(HINTS)}")
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r}: choose from {', '.join(VISIBILITIES)}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    targets = [folder / name for name in AUTOGRADER_FILES]
    if not force:
        for target in [*targets, folder / _SOURCE]:
            if target.exists():
                raise FileExistsError(f"{target} already exists: nothing was written (--force overwrites it)")
    source = _source_tree()
    options = ["--hints", hints, "--visibility", visibility, "--timeout", f"{timeout:g}", "--memory", str(memory)]
    if points is not None:
        options += ["--points", _points_text(points)]
    texts = [_setup(source is not None), _run_autograder(options), _readme(hints, points)]
    folder.mkdir(parents=True, exist_ok=True)
    for target, text in zip(targets, texts):
        target.write_text(text, encoding="utf-8")
    for script in targets[:2]:
        script.chmod(0o755)
    if source is not None:
        _copy_source(source, folder / _SOURCE)
    return targets


def _points_text(points: float | Mapping[str, float]) -> str:
    if isinstance(points, Mapping):
        return ",".join(f"{name}={value:g}" for name, value in points.items())
    return f"{points:g}"


def _source_tree() -> Path | None:
    """The folder holding nnref's pyproject.toml when nnref runs from its source (a checkout), else None."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "nnref"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def _copy_source(root: Path, target: Path) -> None:
    """pyproject.toml, the README it names and the package, without caches: what ``pip install`` needs."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).is_file():
            shutil.copy2(root / name, target / name)
    shutil.copytree(root / "nnref", target / "nnref", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _version() -> str:
    try:
        return metadata.version("nnref")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def _setup(from_source: bool) -> str:
    install = (
        f'python3 -m pip install --no-cache-dir "$here/{_SOURCE}"'
        if from_source
        else f'python3 -m pip install --no-cache-dir "nnref=={_version()}"'
    )
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, in /autograder/source, to build the autograder's image: nnref {_version()} and a
# CPU build of PyTorch (no GPU is needed to grade).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PIP_BREAK_SYSTEM_PACKAGES=1  # the image's own Python (Ubuntu 24.04 marks it externally managed)
command -v pip3 >/dev/null || {{ apt-get update && apt-get install -y python3-pip; }}
python3 -m pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu
{install}
"""


def _run_autograder(options: list[str]) -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this for each submission: the student's file is in submission/, the grade goes to
# results/results.json (one test per Function). Every Function is checked in a process of its own, under a
# time and memory limit: no submission stops the grading, and results.json is always written.
set -uo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
file="$root/submission/my_functions.py"
if [ ! -f "$file" ]; then  # another name: the one Python file submitted
    shopt -s nullglob
    found=("$root"/submission/*.py)
    if [ "${{#found[@]}}" -eq 1 ]; then file="${{found[0]}}"; fi
fi
mkdir -p "$root/results"
cd "$root/submission" 2>/dev/null || cd "$root"
python3 -m nnref gradcheck --functions "$file" --format gradescope --json "$root/results/results.json" \\
    {shlex.join(options)}
code=$?
# 0: all pass, 1: some fail, 2: the file could not be read (results.json says so): all are grades
[ -f "$root/results/results.json" ] && exit 0
exit "$code"
"""


def _readme(hints: str, points) -> str:
    share = "100 points in equal shares" if points is None else f"points {_points_text(points)}"
    return (
        "Upload this folder's files as one zip (cd into it, then zip -r ../autograder.zip .) as a Gradescope "
        "programming assignment's autograder, on an Ubuntu base image.\n"
        f"Students submit my_functions.py (nnref exercises DIR writes it); each of the nine Functions is one test: "
        f"{share}, partial credit per gradient, hints '{hints}'.\n"
        "Try it first: make autograder/{source,submission,results}, copy these files into source/ and "
        "run_autograder into autograder/, put a file in submission/, run autograder/run_autograder.\n"
    )
