"""The starting kit: ``my_functions.py`` (the nine Functions, forward written out, every ``backward`` raising
``NotImplementedError`` under a docstring that says what to derive) and ``README.md``, written into a folder
from the package's ``template/``."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

#: The files of the starting kit (package data under ``nnref/exercises/template/``).
KIT_FILES = ("my_functions.py", "README.md")


def kit_text(name: str) -> str:
    """The text of one kit file (``"my_functions.py"`` or ``"README.md"``)."""
    if name not in KIT_FILES:
        raise ValueError(f"the kit has no file {name!r}; it has {', '.join(KIT_FILES)}")
    return importlib.resources.files("nnref").joinpath("exercises", "template", name).read_text(encoding="utf-8")


def write_kit(folder: str | os.PathLike, force: bool = False) -> list[Path]:
    """Write ``my_functions.py`` and ``README.md`` into ``folder`` (created if needed); return their paths.

    Without ``force`` nothing is written when one of them exists: :class:`FileExistsError` names it, and its
    message is one line for the command line.  ``force`` overwrites them.
    """
    folder = Path(folder)
    targets = [folder / name for name in KIT_FILES]
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    if not force:
        for target in targets:
            if target.exists():
                raise FileExistsError(f"{target} already exists: nothing was written (--force overwrites it)")
    texts = [kit_text(name) for name in KIT_FILES]  # read both before writing either
    folder.mkdir(parents=True, exist_ok=True)
    for target, text in zip(targets, texts):
        target.write_text(text, encoding="utf-8")
    return targets
