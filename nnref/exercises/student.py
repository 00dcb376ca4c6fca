"""A student's Functions at work: in nnref's training and lab, in place of nnref's own."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import functional as F
from .checking import check_classes
from .loading import _shown, load_functions
from .reports import FunctionReport


@dataclass
class StudentFunctions:
    """The Functions of a student's file that nnref trains with (``nnref train --functions``, ``nnref lab
    --functions``): every one it defines and has written — a Function whose backward is not written yet (it
    raises ``NotImplementedError``) is left to nnref — each with its check's report.  A Function that fails its
    check is used all the same: what a wrong backward does to training is part of the lesson."""

    path: Path
    functions: dict[str, type]
    reports: list[FunctionReport]

    @classmethod
    def load(cls, path: str | os.PathLike) -> StudentFunctions:
        """Load and check the file's Functions.  Raises :class:`StudentFileError`."""
        path = Path(path)
        defined = load_functions(path)
        reports = check_classes(defined)
        used = {r.name: defined[r.name] for r in reports if r.status != "not implemented"}
        return cls(path, used, reports)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the student's Functions in use, in the lecture's order."""
        return tuple(self.functions)

    def describe(self, used: Iterable[str] | None = None) -> list[str]:
        """What a command says at its start: whose Functions it uses, and which of the student's fail their check
        or are not written yet.  ``used``: the names of the Functions the model uses (:func:`functions_used`);
        then only those are named, and the others said to be unused."""
        where = _shown(str(self.path))
        used = set(self.names if used is None else used)
        names = [name for name in self.names if name in used]
        if not names:
            what = "has no Function written yet" if not self.functions else "has none of the Functions this uses"
            lines = [f"{where} {what}: nnref's own are used"]
        else:
            lines = [f"using the student's {', '.join(names)} from {where} (nnref's for the rest)"]
        unused = [name for name in self.names if name not in used]
        if unused:
            lines.append(f"not used here: {', '.join(unused)}")
        for r in self.reports:
            if r.name not in used and r.status != "not implemented":
                continue
            if r.status == "fail":
                lines.append(f"warning: {r.name} fails its check, and is used all the same: {r.message}")
            elif r.status == "not implemented":
                lines.append(f"{r.name} is not written yet: nnref's own is used")
        return lines


@contextlib.contextmanager
def use_functions(functions: dict[str, type]):
    """Inside the ``with`` block, nnref's plain functions — and so every layer, model and loss of nnref, its
    training and its lab — apply these Functions in place of nnref's of the same name: a student's backward passes
    (``nnref train --functions``, ``nnref lab --functions``).  Each must take the same ``apply`` arguments as
    nnref's; nnref's own serve the names not given.  ``use_functions(FUNCTIONS)``: nnref's own, whatever is in use.

    The plain functions of :mod:`nnref.functional` apply the Function the module names when they are called; this
    names the student's there for the block, and nnref's again after it."""
    unknown = sorted(set(functions) - set(F.FUNCTIONS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not one of nnref's Functions ({', '.join(F.FUNCTIONS)})")
    previous = functions_in_use()
    for name, cls in functions.items():
        setattr(F, name, cls)
    try:
        yield
    finally:
        for name, cls in previous.items():
            setattr(F, name, cls)


class _Recorder:
    """In nnref.functional's place for a name: notes that it was applied, and applies nnref's own."""

    def __init__(self, name: str, cls: type, seen: set[str]) -> None:
        self.name, self.cls, self.seen = name, cls, seen

    def apply(self, *args):
        self.seen.add(self.name)
        return self.cls.apply(*args)


def functions_used(run: Callable[[], object]) -> tuple[str, ...]:
    """The names of the Functions ``run()`` applies through nnref's plain functions (a model's forward and loss:
    ``lambda: model.loss(model(x), y)``), in the lecture's order."""
    seen: set[str] = set()
    previous = functions_in_use()
    for name, cls in previous.items():
        setattr(F, name, _Recorder(name, cls, seen))
    try:
        run()
    finally:
        for name, cls in previous.items():
            setattr(F, name, cls)
    return tuple(name for name in F.FUNCTIONS if name in seen)


def functions_in_use() -> dict[str, type]:
    """The Function each name applies now (nnref's own, or what :func:`use_functions` put in its place)."""
    return {name: getattr(F, name) for name in F.FUNCTIONS}
