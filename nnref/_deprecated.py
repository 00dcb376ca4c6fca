"""Old names that still work, with a ``DeprecationWarning`` that gives the new one (CHANGELOG.md, "Deprecated").

nnref 0.2 moved the machinery that runs the lecture into :mod:`nnref.run`; the modules that once sat beside the
lecture (``nnref.train``, ``nnref.config`` …) and a few names inside the lecture's modules still import from their
old places.  Nothing in nnref uses them; they are here for code written against 0.1.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["MOVED_MODULES", "MOVED_NAMES", "install", "getattr_for"]

#: Old module → new module.
MOVED_MODULES = {
    f"nnref.{name}": f"nnref.run.{name}"
    for name in (
        "checkpoint",
        "config",
        "distributed",
        "evaluate",
        "export",
        "faults",
        "interrupt",
        "runlog",
        "runs",
        "stopsignals",
        "tbview",
        "train",
    )
}

#: (old module, name) → new module that holds the name.
MOVED_NAMES = {
    ("nnref.models", "KNNClassifier"): "nnref.knn",
    ("nnref.models", "METRICS"): "nnref.knn",
    ("nnref.models", "merge_neighbours"): "nnref.knn",
    ("nnref.knn", "NeighbourSearch"): "nnref.run.knn",
    ("nnref.knn", "run"): "nnref.run.knn",
    ("nnref.knn", "from_checkpoint"): "nnref.run.knn",
    ("nnref.knn", "chosen_k"): "nnref.run.knn",
    ("nnref.steps", "GraphedStep"): "nnref.run.fast_steps",
    ("nnref.steps", "build_step"): "nnref.run.fast_steps",
    ("nnref.steps", "make_step"): "nnref.run.fast_steps",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated: use {new}", DeprecationWarning, stacklevel=3)


def getattr_for(module: str):
    """A module ``__getattr__`` that hands out the names :data:`MOVED_NAMES` lists for ``module``, with a warning."""

    def __getattr__(name: str):
        new = MOVED_NAMES.get((module, name))
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        _warn(f"{module}.{name}", f"{new}.{name}")
        return getattr(importlib.import_module(new), name)

    return __getattr__


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import nnref.train`` gives :mod:`nnref.run.train` itself (the same module object), with a warning."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        new = MOVED_MODULES[module.__name__]
        _warn(module.__name__, new)
        sys.modules[module.__name__] = importlib.import_module(new)  # the import system returns this one


def install() -> None:
    """Make the old module names importable (once per process)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
