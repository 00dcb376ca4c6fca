"""Is a student's Function the student's own work?  Not when it is nnref's (imported, subclassed, or its forward or
backward taken from nnref's by reference), and not when its backward gets the gradient from autograd
(``torch.autograd.grad``, ``.backward()``, ``torch.func``, ``torch.autograd.functional``) or from nnref's own
backward.  A student's file may import nnref for anything else (its data, its layers, its plain functions)."""

from __future__ import annotations

import contextlib
import inspect
import os
import sys

import torch

from .. import functional as F
from ..formulas import FORMULAS

_METHODS = ("forward", "setup_context", "backward", "jvp", "vjp")


def not_own(name: str, cls: type) -> str | None:
    """Why ``cls`` is nnref's rather than the student's, or None."""
    ours = {formula.function for formula in FORMULAS}
    if cls in ours:
        return f"{name} is nnref's own {cls.__module__}.{cls.__qualname__}, not yours: write your own class"
    for base in cls.__mro__[1:]:
        if base in ours:
            return f"{name} subclasses nnref's {base.__qualname__}: write your own, from torch.autograd.Function"
    for method in _METHODS:
        code = _code(inspect.getattr_static(cls, method, None))
        if code is not None and os.path.realpath(code.co_filename) == _FUNCTIONAL:
            return f"{name}.{method} is nnref's own ({code.co_name} of {F.__name__}): write your own"
    return None


_FUNCTIONAL = os.path.realpath(F.__file__)


def _code(attribute):
    function = getattr(attribute, "__func__", attribute)  # a staticmethod or classmethod's function
    return getattr(function, "__code__", None)


def _forbidden() -> tuple[dict, tuple[str, ...]]:
    """The code objects a backward must not run (name for the message), and the folders of torch.func."""
    codes = {
        torch.autograd.grad.__code__: "torch.autograd.grad",
        torch.autograd.backward.__code__: "torch.autograd.backward",
        torch.Tensor.backward.__code__: ".backward()",
    }
    for formula in FORMULAS:
        backward = _code(inspect.getattr_static(formula.function, "backward"))
        codes[backward] = f"nnref's {formula.function.__name__}.backward"
    root = os.path.dirname(torch.__file__)
    folders = tuple(os.path.join(root, folder) + os.sep for folder in ("_functorch", "func"))
    return codes, folders


@contextlib.contextmanager
def watching_autograd():
    """Inside the block, every call of autograd or of nnref's own backward is noted: yields the list of what was
    called (empty when the block computed its gradients itself)."""
    codes, folders = _forbidden()
    found: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            what = codes.get(code)
            if what is None and code.co_filename.startswith(folders):
                what = "torch.func"
            if what is not None and what not in found:
                found.append(what)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield found
    finally:
        if sys.getprofile() is not profile:  # the block took the watch away
            found.append("sys.setprofile")
        sys.setprofile(previous)
