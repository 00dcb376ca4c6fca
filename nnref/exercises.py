"""Write the backward yourself: the starting kit of exercises, and the checker of a student's Functions.

:func:`write_kit` writes ``my_functions.py`` (the nine Functions, forward written out, every ``backward`` raising
``NotImplementedError`` under a docstring that says what to derive) and ``README.md`` into a folder.
:func:`check_file` imports a student's file and checks each of the nine Functions it defines on its own
against nnref's: one :class:`FunctionReport` per Function, in the lecture's order, whose message names the
first check that failed — which gradient, the largest error and where, the shapes, and the formula it should
follow.  Nothing here prints or exits: the command line (``nnref exercises``, ``nnref gradcheck --functions``)
formats what these functions return.

What a Function must pass, in this order (the first failure is the row's message):

1. its forward equals nnref's, on every case below;
2. its backward returns one gradient per input of forward, and for every input that needs one a tensor of the
   input's shape and dtype, equal to nnref's hand-written gradient — on random non-square shapes including a
   batch of one (n = 1), for every reduction of the losses, at extreme inputs (logits of ±50, probabilities near
   0 and 1), and in float32 as well as float64;
3. ``torch.autograd.gradcheck`` (the numerical gradient, float64) on the random shapes.

The student's backward is called directly on the node of its own forward (``output.grad_fn``), so that what it
returns is seen as it returned it (a missing gradient, a transposed one, too many) and what it raises is traced
to its line.  Notation: n instances, p features, c classes / units, N the elements of a tensor, g the gradient
backward receives.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import itertools
import math
import os
import re
import sys
import traceback
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import functional as F
from .catalogue import by_name

__all__ = [
    "KIT_FILES",
    "NAMES",
    "STATUSES",
    "FunctionReport",
    "StudentFileError",
    "StudentFunctions",
    "check_file",
    "check_function",
    "format_reports",
    "kit_text",
    "load_functions",
    "report_json",
    "write_kit",
]

#: The nine Functions a student writes, in the lecture's order: nnref's own (:data:`nnref.functional.FUNCTIONS`).
NAMES = tuple(F.FUNCTIONS)
#: The files of the starting kit (package data under ``nnref/exercise_kit/``).
KIT_FILES = ("my_functions.py", "README.md")
STATUSES = ("pass", "fail", "not implemented", "missing")


# --------------------------------------------------------------------------------------------------
# The kit
# --------------------------------------------------------------------------------------------------
def kit_text(name: str) -> str:
    """The text of one kit file (``"my_functions.py"`` or ``"README.md"``)."""
    if name not in KIT_FILES:
        raise ValueError(f"the kit has no file {name!r}; it has {', '.join(KIT_FILES)}")
    return importlib.resources.files("nnref").joinpath("exercise_kit", name).read_text(encoding="utf-8")


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


# --------------------------------------------------------------------------------------------------
# Loading the student's file
# --------------------------------------------------------------------------------------------------
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
    return {name: getattr(module, name) for name in NAMES if hasattr(module, name)}


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


# --------------------------------------------------------------------------------------------------
# What each Function computes, in the lecture's symbols
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """One Function: its apply arguments (the lecture's symbols), its forward, and the gradient each argument
    should receive (formula and shape), which the messages quote."""

    name: str
    args: tuple[str, ...]
    forward: str
    grads: dict[str, str]
    extremes: Callable[[torch.dtype], list[tuple[tuple, str]]] | None = None

    @property
    def loss(self) -> bool:
        return self.args[-1] == "reduction"

    @property
    def reference(self) -> type:
        return getattr(F, self.name)


def _t(rows, dtype) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


def _extreme_logits(dtype):
    return [((_t([[50.0, -50.0, 0.5, -3.0], [-50.0, 50.0, 50.0, 2.0]], dtype),), "logits of ±50")]


def _extreme_softmax_ce(dtype):
    z = _t([[50.0, -50.0, 0.0], [-50.0, 50.0, -50.0], [50.0, 50.0, -50.0]], dtype)
    return [((z, torch.tensor([1, 1, 2]), r), "logits of ±50") for r in F.REDUCTIONS]


def _extreme_sigmoid_bce(dtype):
    z, y = _t([50.0, -50.0, 50.0, -50.0, 0.3], dtype), _t([0.0, 1.0, 1.0, 0.0, 0.5], dtype)
    return [((z, y, r), "logits of ±50") for r in F.REDUCTIONS]


def _extreme_ce(dtype):
    eps = 1e-6
    a = _t([[eps, 0.5, 0.5 - eps], [1 - eps, eps / 2, eps / 2], [0.2, 0.3, 0.5]], dtype)
    return [((a, torch.tensor([0, 0, 2]), r), "probabilities near 0 and 1") for r in F.REDUCTIONS]


def _extreme_bce(dtype):
    eps = 1e-6
    a, y = _t([eps, 1 - eps, eps, 1 - eps, 0.5], dtype), _t([0.0, 1.0, 1.0, 0.0, 0.5], dtype)
    return [((a, y, r), "probabilities near 0 and 1") for r in F.REDUCTIONS]


_MEAN_N = "times g, ÷ n for 'mean'"
_MEAN_ALL = "times g, ÷ N (all elements) for 'mean'"
_SPECS = {
    spec.name: spec
    for spec in (
        _Spec(
            "LinearFunction",
            ("x", "W", "b"),
            "z = x Wᵀ + b (n, c)",
            {"x": "g W (n, p)", "W": "gᵀx (c, p)", "b": "Σ_rows g, the sum of g over the n instances (c,)"},
        ),
        _Spec(
            "SigmoidFunction",
            ("z",),
            "a = σ(z) = 1/(1 + e^(−z))",
            {"z": "g · a(1 − a), element by element, shaped like z"},
            _extreme_logits,
        ),
        _Spec(
            "SoftmaxFunction",
            ("z",),
            "a_i = e^(z_i) / Σ_j e^(z_j), row by row",
            {"z": "dL/da × ∂a/∂z row by row, with ∂a_i/∂z_j = a_i(δ_ij − a_j): a ⊙ (g − Σ_j g_j a_j) (n, c)"},
            _extreme_logits,
        ),
        _Spec("ReLUFunction", ("z",), "a = max(z, 0)", {"z": "g · 1[z > 0], element by element, shaped like z"}),
        _Spec(
            "TanhFunction",
            ("z",),
            "a = tanh(z)",
            {"z": "g · (1 − a²), element by element, shaped like z"},
            _extreme_logits,
        ),
        _Spec(
            "CrossEntropyFunction",
            ("a", "y", "reduction"),
            "L = −log a_y (log clamped at −100), reduced",
            {"a": f"(0, …, −1/a_y, …, 0) in each row, {_MEAN_N} (n, c)"},
            _extreme_ce,
        ),
        _Spec(
            "BinaryCrossEntropyFunction",
            ("a", "y", "reduction"),
            "L = −y log a − (1 − y) log(1 − a) (logs clamped at −100), reduced",
            {
                "a": f"(a − y)/(a(1 − a)) = −y/a + (1 − y)/(1 − a), {_MEAN_ALL}, shaped like a",
                "y": f"log(1 − a) − log a, {_MEAN_ALL}, shaped like y",
            },
            _extreme_bce,
        ),
        _Spec(
            "SoftmaxCrossEntropyFunction",
            ("z", "y", "reduction"),
            "L = log Σ_j e^(z_j) − z_y, reduced",
            {"z": f"softmax(z) − onehot(y), {_MEAN_N} (n, c)"},
            _extreme_softmax_ce,
        ),
        _Spec(
            "SigmoidBinaryCrossEntropyFunction",
            ("z", "y", "reduction"),
            "L = max(z, 0) − z y + log(1 + e^(−|z|)), reduced",
            {"z": f"σ(z) − y, {_MEAN_ALL}, shaped like z", "y": f"−z, {_MEAN_ALL}, shaped like y"},
            _extreme_sigmoid_bce,
        ),
    )
}
_ELEMENTWISE_LOSSES = ("BinaryCrossEntropyFunction", "SigmoidBinaryCrossEntropyFunction")


def _output(spec: _Spec) -> str:
    """The symbol of what forward returns: z (the linear layer), a (an activation) or L (a loss)."""
    return "L" if spec.loss else "z" if spec.name == "LinearFunction" else "a"


def _expected_returns(spec: _Spec) -> str:
    """What backward returns, e.g. "(dL/da, None, None)"."""
    grads = by_name(spec.name).grads
    names = [f"dL/d{arg}" if i < len(grads) and grads[i] else "None" for i, arg in enumerate(spec.args)]
    return names[0] if len(names) == 1 else f"({', '.join(names)})"


# --------------------------------------------------------------------------------------------------
# The cases a Function is checked on
# --------------------------------------------------------------------------------------------------
#: (n, c, p) of the random cases: no two sizes alike (a transposed gradient has the wrong shape), a batch of one.
SHAPES = ((4, 5, 3), (1, 2, 3), (7, 3, 2))


@dataclass(frozen=True)
class _Case:
    """One call: the apply arguments, which of them need a gradient, a description for the messages (shapes,
    reduction, what is special), whether gradcheck runs on it, and the tolerance of the comparison with nnref."""

    inputs: tuple
    needs_grad: tuple[bool, ...]
    label: str
    seed: int = 0
    gradcheck: bool = False
    rtol: float = 1e-7
    atol: float = 1e-10

    def fresh(self) -> tuple:
        """New copies of the inputs (a student's in-place change cannot leak into the next call)."""
        return tuple(
            t.detach().clone().requires_grad_(need) if isinstance(t, torch.Tensor) else t
            for t, need in zip(self.inputs, self.needs_grad)
        )


def _label(spec: _Spec, args: tuple, note: str = "") -> str:
    """ "z (4, 5), y (4,), reduction 'mean'" (+ what is special about the case)."""
    parts = []
    for name, value in zip(spec.args, args):
        parts.append(f"{name} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"{name} {value!r}")
    return ", ".join(parts) + (f", {note}" if note else "")


def _random_inputs(spec: _Spec, n: int, c: int, p: int, dtype: torch.dtype, seed: int, matrix: bool) -> tuple:
    """The catalogue's example inputs; an element-wise loss's as an (n, c) matrix when ``matrix``."""
    entry = by_name(spec.name)
    if matrix and spec.name in _ELEMENTWISE_LOSSES:
        return tuple(t.reshape(n, c) for t in entry.inputs(n=n * c, c=c, p=p, dtype=dtype, seed=seed))
    return entry.inputs(n=n, c=c, p=p, dtype=dtype, seed=seed)


def _cases(spec: _Spec) -> list[_Case]:
    """Random non-square shapes (a batch of one among them) × every reduction, in float64 with gradcheck; the
    extreme inputs; one float32 case (a gradient must keep its input's dtype)."""
    needs = by_name(spec.name).grads + ((False,) if spec.loss else ())
    reductions = F.REDUCTIONS if spec.loss else (None,)
    cases = []
    for seed, (n, c, p) in enumerate(SHAPES):
        inputs = _random_inputs(spec, n, c, p, torch.float64, seed, matrix=seed == len(SHAPES) - 1)
        for reduction in reductions:
            args = inputs + ((reduction,) if spec.loss else ())
            cases.append(_Case(args, needs, _label(spec, args), seed, gradcheck=True))
    for args, note in spec.extremes(torch.float64) if spec.extremes else ():
        cases.append(_Case(args, needs, _label(spec, args, note), len(cases), rtol=1e-6, atol=1e-9))
    args = _random_inputs(spec, *SHAPES[0], torch.float32, 0, matrix=False) + (("mean",) if spec.loss else ())
    cases.append(_Case(args, needs, _label(spec, args, "float32"), len(cases), rtol=1e-4, atol=1e-5))
    return cases


# --------------------------------------------------------------------------------------------------
# Running the student's code
# --------------------------------------------------------------------------------------------------
class _Verdict(Exception):
    """The first check a Function failed: its row's status and message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _student_files(cls: type) -> set[str]:
    """The files the student's Function is written in: its module's and its own base classes' (not torch's)."""
    files = set()
    for klass in cls.__mro__:
        if klass in torch.autograd.Function.__mro__:
            continue
        filename = getattr(sys.modules.get(klass.__module__), "__file__", None)
        if filename:
            files.add(_real(filename))
    return files


def _run(what: str, case: _Case, files: set[str], fn: Callable, *args):
    """``fn(*args)``, which runs the student's code: what it raises becomes the row's verdict, with the line of
    the student's file it came from — NotImplementedError "not implemented", anything else "fail"."""
    try:
        return fn(*args)
    except NotImplementedError as exc:
        text = f": {' '.join(str(exc).split())}" if str(exc) else " (not written yet)"
        raise _Verdict("not implemented", f"{_at(exc, files)}{what} raises NotImplementedError{text}") from None
    except Exception as exc:  # noqa: BLE001  (whatever the student's code raises is the row's message)
        message = f"{_at(exc, files)}{what} raised {_describe_exception(exc)}, with {case.label}"
        raise _Verdict("fail", message) from None


def _at(exc: BaseException, files: set[str]) -> str:
    found = _frame_in(exc, files)
    return f"{_shown(found[0])}:{found[1]}: " if found else ""


# --------------------------------------------------------------------------------------------------
# Comparing with nnref
# --------------------------------------------------------------------------------------------------
def _difference(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> str | None:
    """None when ``got`` equals ``want`` within |got − want| ≤ atol + rtol |want| everywhere (NaN never does);
    otherwise the largest error, where, both values, and how ``got`` relates to ``want`` if it is a multiple."""
    got64, want64 = got.detach().double(), want.detach().double()
    err = (got64 - want64).abs().nan_to_num(nan=float("inf"))
    if bool((err <= atol + rtol * want64.abs()).all()):
        return None
    flat = int(err.reshape(-1).argmax())
    yours, right = got64.reshape(-1)[flat].item() + 0.0, want64.reshape(-1)[flat].item() + 0.0  # no "-0"
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), got.shape))
    where = f" at index {index}" if got.dim() else ""
    if not math.isfinite(yours):
        return f"yours is {yours}{where} where the right value is {right:.6g}"
    largest = err.reshape(-1)[flat].item()
    return f"largest error {largest:.3g}{where} (yours {yours:.6g}, right {right:.6g}){_multiple(got64, want64)}"


def _multiple(got: torch.Tensor, want: torch.Tensor) -> str:
    """ " — yours is 4 × the right one" when ``got`` is a multiple k·want (k ≠ 1): a lost 1/n, a flipped sign."""
    norm = float((want * want).sum())
    if norm == 0.0 or not bool(torch.isfinite(got).all()):
        return " — the right one is all zeros" if norm == 0.0 else ""
    k = float((got * want).sum()) / norm
    if abs(k - 1) < 1e-6 or not torch.allclose(got, k * want, rtol=1e-6, atol=1e-12):
        return ""
    if abs(k) < 1e-12:
        return " — yours is all zeros"
    if abs(k + 1) < 1e-6:
        return " — yours is the right one with its sign flipped"
    inverse = round(1 / k)
    factor = f"1/{inverse}" if abs(k) < 1 and abs(1 / k - inverse) < 1e-6 else f"{k:.4g}"
    return f" — yours is {factor} × the right one"


def _fail(message: str) -> None:
    raise _Verdict("fail", message)


def _check_forward(spec: _Spec, cls: type, case: _Case, files: set[str]) -> None:
    """The student's forward output equals nnref's: type, shape, dtype, values."""
    got = _run("forward", case, files, cls.apply, *case.fresh())
    want = spec.reference.apply(*case.fresh())
    out = _output(spec)
    if not isinstance(got, torch.Tensor):
        _fail(f"forward returned a {type(got).__name__}, not a tensor, with {case.label}; it should return {out}")
    if got.shape != want.shape:
        _fail(
            f"forward: {out} has shape {tuple(got.shape)}, nnref's has {tuple(want.shape)}, with {case.label}; "
            f"{spec.forward}"
        )
    if got.dtype != want.dtype:
        _fail(f"forward: {out} has dtype {got.dtype}, nnref's has {want.dtype}, with {case.label}")
    difference = _difference(got, want, case.rtol, case.atol)
    if difference:
        _fail(f"forward: {out} is wrong: {difference}, with {case.label}; it should be {spec.forward}")


def _reference_grads(spec: _Spec, case: _Case, g: torch.Tensor) -> dict[int, torch.Tensor]:
    """nnref's hand-written gradients for the inputs that need one, by position."""
    inputs = case.fresh()
    which = [i for i, need in enumerate(case.needs_grad) if need]
    grads = torch.autograd.grad(spec.reference.apply(*inputs), [inputs[i] for i in which], g)
    return dict(zip(which, grads))


def _upstream(out: torch.Tensor, seed: int) -> torch.Tensor:
    """g = dL/d(output): random (a backward that forgets to multiply by it fails), shaped like the output."""
    gen = torch.Generator().manual_seed(1000 + seed)
    return torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)


def _as_tuple(raw) -> tuple:
    """What backward returned as PyTorch reads it: a tuple, or one tensor (or None) for a one-input Function."""
    if isinstance(raw, tuple):
        return raw
    if raw is None or isinstance(raw, torch.Tensor):
        return (raw,)
    _fail(f"backward returned a {type(raw).__name__}: return a tuple, one gradient per input of forward")


def _check_count(spec: _Spec, grads: tuple) -> None:
    """One gradient per input of forward (PyTorch allows extra trailing Nones, and so does the check)."""
    count = len(spec.args)
    if len(grads) < count or any(x is not None for x in grads[count:]):
        noun = "gradient" if len(grads) == 1 else "gradients"
        _fail(
            f"backward returned {len(grads)} {noun}, but forward takes {count} input{'s' * (count > 1)} "
            f"({', '.join(spec.args)}): return {_expected_returns(spec)}, one per input in that order"
        )


def _check_gradient(
    spec: _Spec, case: _Case, i: int, x: torch.Tensor, got, want: torch.Tensor, g: torch.Tensor
) -> None:
    """The gradient of input i: present, a tensor of x's shape and dtype, equal to nnref's."""
    arg = spec.args[i]
    name, should = f"dL/d{arg}", f"dL/d{arg} should be {spec.grads[arg]}"
    if got is None:
        _fail(f"backward returned None for {name}, but {arg} needs a gradient, with {case.label}; {should}")
    if not isinstance(got, torch.Tensor):
        _fail(f"{name} is a {type(got).__name__}, not a tensor; {should}")
    if got.shape != x.shape:
        transposed = " (transposed)" if got.dim() == 2 and tuple(got.shape) == tuple(x.shape)[::-1] else ""
        _fail(
            f"{name} has shape {tuple(got.shape)}{transposed} but {arg} has shape {tuple(x.shape)}, "
            f"with {case.label}; {should}"
        )
    if got.dtype != x.dtype:
        _fail(f"{name} has dtype {got.dtype} but {arg} has dtype {x.dtype}, with {case.label}; {should}")
    difference = _difference(got, want, case.rtol, case.atol)
    if difference:
        _fail(f"{name} is wrong: {difference}, with {case.label}, g {tuple(g.shape)}; {should}")


def _check_backward(spec: _Spec, cls: type, case: _Case, files: set[str]) -> None:
    """Call the student's backward on the node of its own forward, with a random g, and compare what it returns
    with nnref's gradients."""
    inputs = case.fresh()
    out = _run("forward", case, files, cls.apply, *inputs)
    node = out.grad_fn
    if node is None or getattr(node, "_forward_cls", None) is not cls:
        _fail(f"forward's output is not connected to {spec.name}'s backward (a detached tensor?), with {case.label}")
    g = _upstream(out, case.seed)
    want = _reference_grads(spec, case, g)
    with torch.no_grad():  # as autograd runs a backward
        grads = _as_tuple(_run("backward", case, files, node.apply, g.clone()))
    _check_count(spec, grads)
    for i, x in enumerate(inputs):
        if case.needs_grad[i]:
            _check_gradient(spec, case, i, x, grads[i], want[i], g)
        elif not isinstance(x, torch.Tensor) and grads[i] is not None:
            _fail(
                f"backward returned a {type(grads[i]).__name__} for {spec.args[i]}, which is not a tensor: "
                f"return {_expected_returns(spec)}"
            )


def _check_gradcheck(spec: _Spec, cls: type, case: _Case, files: set[str]) -> None:
    """``torch.autograd.gradcheck``: the student's backward against the numerical gradient, float64."""
    from torch.autograd.gradcheck import GradcheckError

    inputs = case.fresh()
    which = [i for i, need in enumerate(case.needs_grad) if need]

    def f(*xs):
        args = list(inputs)
        for i, x in zip(which, xs):
            args[i] = x
        return cls.apply(*args)

    def gradcheck() -> str | None:
        try:
            torch.autograd.gradcheck(f, tuple(inputs[i] for i in which), eps=1e-6, atol=1e-6, rtol=1e-4)
        except GradcheckError as exc:
            return str(exc)
        return None

    error = _run("backward, under torch.autograd.gradcheck,", case, files, gradcheck)
    if error:
        match = re.search(r"with respect to input (\d+)", error)
        if match:
            arg = spec.args[which[int(match.group(1))]]
            _fail(
                f"torch.autograd.gradcheck: the numerical gradient disagrees with your dL/d{arg}, with "
                f"{case.label}; dL/d{arg} should be {spec.grads[arg]}"
            )
        _fail(f"torch.autograd.gradcheck: {error.strip().splitlines()[0]}, with {case.label}")


# --------------------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------------------
@dataclass
class FunctionReport:
    """One row of the check: a Function's name, its status (one of :data:`STATUSES`) and a message — for a
    failure the first check that failed, for "not implemented" the line that raises."""

    name: str
    status: str
    message: str = ""
    cases: int = field(default=0, compare=False)  # how many cases the Function was checked on

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "message": self.message}


@contextlib.contextmanager
def _one_thread():
    """Torch's intra-op threads off while the checks run: on tensors of a few elements, waking a pool of threads
    costs far more than the arithmetic (ten times the whole check on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise ValueError(f"no exercise named {name!r}: choose from {', '.join(NAMES)}")
    return _SPECS[name]


def check_function(name: str, cls) -> FunctionReport:
    """Check the student's Function ``cls`` written as nnref's ``name`` (e.g. "LinearFunction") on its own,
    against nnref's: forward on every case, then backward on every case, then gradcheck (see the module's
    docstring).  Stops at the first failure, which is the report's message."""
    spec = _spec(name)
    if not (isinstance(cls, type) and issubclass(cls, torch.autograd.Function)):
        kind = f"the class {cls.__name__}" if isinstance(cls, type) else f"an object of type {type(cls).__name__}"
        return FunctionReport(name, "fail", f"{name} is {kind}, not a subclass of torch.autograd.Function")
    files, cases = _student_files(cls), _cases(spec)
    try:
        with _one_thread():
            for check in (_check_forward, _check_backward):
                for case in cases:
                    check(spec, cls, case, files)
            for case in cases:
                if case.gradcheck:
                    _check_gradcheck(spec, cls, case, files)
    except _Verdict as verdict:
        return FunctionReport(name, verdict.status, verdict.message, len(cases))
    checked = sum(case.gradcheck for case in cases)
    return FunctionReport(
        name,
        "pass",
        f"forward and backward equal nnref's in {len(cases)} cases; gradcheck passes in {checked}",
        len(cases),
    )


def _selected(only: Iterable[str] | str | None) -> tuple[str, ...]:
    """The names of ``only`` ("SigmoidFunction" or the catalogue's "sigmoid"; a comma-separated string too), in
    the lecture's order; all nine for None."""
    if only is None:
        return NAMES
    if isinstance(only, str):
        only = [name for name in only.split(",") if name.strip()]
    chosen = set()
    for name in only:
        try:
            chosen.add(by_name(name.strip()).function.__name__)
        except KeyError:
            raise ValueError(f"no exercise named {name.strip()!r}: choose from {', '.join(NAMES)}") from None
    return tuple(name for name in NAMES if name in chosen)


def check_file(path: str | os.PathLike, only: Iterable[str] | str | None = None) -> list[FunctionReport]:
    """Load the student's file and check each Function it defines: one report per name, in the lecture's order
    ("missing" for a name the file does not define); ``only`` restricts the names.  Raises
    :class:`StudentFileError` when the file cannot be loaded and ValueError for an unknown name in ``only``."""
    names = _selected(only)
    functions = load_functions(path)
    return [
        check_function(name, functions[name])
        if name in functions
        else FunctionReport(name, "missing", f"{_shown(str(path))} does not define {name}")
        for name in names
    ]


def report_json(reports: Sequence[FunctionReport]) -> dict:
    """What an autograder reads: ``{"functions": [{"name", "status", "message"}, …], "passed": N, "total": T}``
    (T = 9 unless the check was restricted with ``only``)."""
    return {
        "functions": [r.to_dict() for r in reports],
        "passed": sum(r.passed for r in reports),
        "total": len(reports),
    }


def format_reports(reports: Sequence[FunctionReport]) -> str:
    """The terminal's table: ``| Function | status | message |`` (markdown, like nnref's other tables), then a
    line "N of T Functions pass"."""

    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| Function | status | message |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {cell(r.message)} |" for r in reports]
    passed = sum(r.passed for r in reports)
    lines += ["", f"{passed} of {len(reports)} Functions pass"]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# A student's Functions in nnref's training and lab
# --------------------------------------------------------------------------------------------------
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
        reports = [check_function(name, defined[name]) for name in NAMES if name in defined]
        used = {r.name: defined[r.name] for r in reports if r.status != "not implemented"}
        return cls(path, used, reports)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the student's Functions in use, in the lecture's order."""
        return tuple(self.functions)

    def describe(self) -> list[str]:
        """What a command says at its start: whose Functions it uses, and which of the student's fail their check
        or are not written yet."""
        where = _shown(str(self.path))
        if not self.functions:
            lines = [f"{where} has no Function written yet: nnref's own are used"]
        else:
            lines = [f"using the student's {', '.join(self.names)} from {where} (nnref's for the rest)"]
        for r in self.reports:
            if r.status == "fail":
                lines.append(f"warning: {r.name} fails its check, and is used all the same: {r.message}")
            elif r.status == "not implemented":
                lines.append(f"{r.name} is not written yet: nnref's own is used")
        return lines
