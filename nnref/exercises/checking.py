"""Checking a student's Function against nnref's, case by case.

What a Function must pass, in this order (the first failure is the row's message):

1. its forward equals nnref's, on every case below;
2. its backward returns one gradient per input of forward, and for every input that needs one a tensor of the
   input's shape and dtype, equal to nnref's hand-written gradient — on random non-square shapes including a
   batch of one (n = 1), for every reduction of the losses, at extreme inputs (logits of ±50, probabilities near
   0 and 1), and in float32 as well as float64;
3. ``torch.autograd.gradcheck`` (the numerical gradient, float64) on the random shapes.

The student's backward is called directly on the node of its own forward (``output.grad_fn``), so that what it
returns is seen as it returned it (a missing gradient, a transposed one, too many) and what it raises is traced
to its line.  What each Function computes and the gradients it owes come from :mod:`nnref.formulas`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .. import functional as F
from ..formulas import Formula, by_name
from .loading import _describe_exception, _frame_in, _real, _shown, load_functions
from .reports import FunctionReport

#: The nine Functions a student writes, in the lecture's order: nnref's own (:data:`nnref.functional.FUNCTIONS`).
NAMES = tuple(F.FUNCTIONS)


_ELEMENTWISE_LOSSES = ("BinaryCrossEntropyFunction", "SigmoidBinaryCrossEntropyFunction")


def _expected_returns(spec: Formula) -> str:
    """What backward returns, e.g. "(dL/da, None, None)"."""
    grads = spec.grads
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


def _label(spec: Formula, args: tuple, note: str = "") -> str:
    """ "z (4, 5), y (4,), reduction 'mean'" (+ what is special about the case)."""
    parts = []
    for name, value in zip(spec.args, args):
        parts.append(f"{name} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"{name} {value!r}")
    return ", ".join(parts) + (f", {note}" if note else "")


def _random_inputs(spec: Formula, n: int, c: int, p: int, dtype: torch.dtype, seed: int, matrix: bool) -> tuple:
    """The catalogue's example inputs; an element-wise loss's as an (n, c) matrix when ``matrix``."""
    entry = spec
    if matrix and _name(spec) in _ELEMENTWISE_LOSSES:
        return tuple(t.reshape(n, c) for t in entry.inputs(n=n * c, c=c, p=p, dtype=dtype, seed=seed))
    return entry.inputs(n=n, c=c, p=p, dtype=dtype, seed=seed)


def _cases(spec: Formula) -> list[_Case]:
    """Random non-square shapes (a batch of one among them) × every reduction, in float64 with gradcheck; the
    extreme inputs; one float32 case (a gradient must keep its input's dtype)."""
    needs = spec.grads + ((False,) if spec.loss else ())
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


def _check_forward(spec: Formula, cls: type, case: _Case, files: set[str]) -> None:
    """The student's forward output equals nnref's: type, shape, dtype, values."""
    got = _run("forward", case, files, cls.apply, *case.fresh())
    want = spec.function.apply(*case.fresh())
    out = spec.result
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


def _reference_grads(spec: Formula, case: _Case, g: torch.Tensor) -> dict[int, torch.Tensor]:
    """nnref's hand-written gradients for the inputs that need one, by position."""
    inputs = case.fresh()
    which = [i for i, need in enumerate(case.needs_grad) if need]
    grads = torch.autograd.grad(spec.function.apply(*inputs), [inputs[i] for i in which], g)
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


def _check_count(spec: Formula, grads: tuple) -> None:
    """One gradient per input of forward (PyTorch allows extra trailing Nones, and so does the check)."""
    count = len(spec.args)
    if len(grads) < count or any(x is not None for x in grads[count:]):
        noun = "gradient" if len(grads) == 1 else "gradients"
        _fail(
            f"backward returned {len(grads)} {noun}, but forward takes {count} input{'s' * (count > 1)} "
            f"({', '.join(spec.args)}): return {_expected_returns(spec)}, one per input in that order"
        )


def _check_gradient(
    spec: Formula, case: _Case, i: int, x: torch.Tensor, got, want: torch.Tensor, g: torch.Tensor
) -> None:
    """The gradient of input i: present, a tensor of x's shape and dtype, equal to nnref's."""
    arg = spec.args[i]
    name, should = f"dL/d{arg}", f"dL/d{arg} should be {spec.gradient(arg)}"
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


def _check_backward(spec: Formula, cls: type, case: _Case, files: set[str]) -> None:
    """Call the student's backward on the node of its own forward, with a random g, and compare what it returns
    with nnref's gradients."""
    inputs = case.fresh()
    out = _run("forward", case, files, cls.apply, *inputs)
    node = out.grad_fn
    if node is None or getattr(node, "_forward_cls", None) is not cls:
        _fail(f"forward's output is not connected to {_name(spec)}'s backward (a detached tensor?), with {case.label}")
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


def _check_gradcheck(spec: Formula, cls: type, case: _Case, files: set[str]) -> None:
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
                f"{case.label}; dL/d{arg} should be {spec.gradient(arg)}"
            )
        _fail(f"torch.autograd.gradcheck: {error.strip().splitlines()[0]}, with {case.label}")


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


def _name(spec: Formula) -> str:
    return spec.function.__name__


def _spec(name: str) -> Formula:
    if name not in NAMES:
        raise ValueError(f"no exercise named {name!r}: choose from {', '.join(NAMES)}")
    return by_name(name)


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
