"""Loading a student's file: its Functions by name, or a :class:`StudentFileError` that says where it broke."""

from __future__ import annotations

import itertools
import os
import sys
import traceback
import types
from pathlib import Path

from .. import functional as F


class StudentFileError(Exception):
    """The student's file cannot be loaded: missing, a syntax error, or an exception while importing it.

    ``path`` the file (the one the error is in: a helper module it imports for a syntax error there), ``line``
    its line number or None, ``message`` one line; ``str()`` is ``path:line: message``, with no traceback.
    """

    def __init__(self, path, line: int | None, message: str) -> None:
        self.path, self.line, self.message = str(path), line, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


_loads = itertools.count()


def load_functions(path: str | os.PathLike) -> dict[str, type]:
    """Import the student's file and return what it defines under the nine names (a name it does not define is
    absent).  The file runs as a module of a new, unique name, with its folder on ``sys.path`` while it is
    imported, so that its own helper modules import.  Raises :class:`StudentFileError`."""
    path = Path(path)
    if not path.exists():
        raise StudentFileError(path, None, "no such file")
    if not path.is_file():
        raise StudentFileError(path, None, "not a file")
    module = _import_file(path)
    return {name: getattr(module, name) for name in F.FUNCTIONS if hasattr(module, name)}


def _import_file(path: Path) -> types.ModuleType:
    name = f"nnref_student_{next(_loads)}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    folder = str(path.resolve().parent)
    sys.modules[name] = module  # classes, dataclasses and inspect look their module up here
    sys.path.insert(0, folder)
    try:
        # compiled from the source every time, never from a __pycache__ that an edit within the same second
        # might not invalidate
        code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102  (the student's own file, run as they run it)
    except SyntaxError as exc:
        del sys.modules[name]
        raise StudentFileError(exc.filename or path, exc.lineno, f"{type(exc).__name__}: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001  (whatever the file raises is reported, not raised)
        del sys.modules[name]
        found = _frame_in(exc, {_real(path)})
        line = found[1] if found else None
        raise StudentFileError(path, line, f"{_describe_exception(exc)} while importing it") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _real(filename: str | os.PathLike) -> str:
    return os.path.realpath(filename)


def _frame_in(exc: BaseException, files: set[str]) -> tuple[str, int] | None:
    """(filename, line) of the innermost frame of ``exc``'s traceback that lies in one of ``files``."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if _real(frame.filename) in files:
            found = (frame.filename, frame.lineno)
    return found


def _describe_exception(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # one line
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _shown(filename: str) -> str:
    """A file name as the student knows it: relative to the working folder when it lies inside it."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return filename
