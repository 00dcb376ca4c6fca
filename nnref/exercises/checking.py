"""Checking a student's Function against nnref's, case by case, each Function in a process of its own.

What a Function must pass:

1. it is the student's own (not nnref's Function imported, subclassed or copied by reference: :mod:`.own_work`);
2. its forward equals nnref's, on every case below;
3. its backward computes its gradients itself (no autograd inside it), leaves the upstream gradient g as it
   found it, returns one gradient per input of forward — None for an input that was None or can have no gradient
   (integer labels, the reduction) — and for every input that needs one a tensor of the input's shape and dtype,
   equal to nnref's hand-written gradient: on random non-square shapes including a batch of one (n = 1), for
   every reduction of the losses, at extreme inputs (logits of ±50, probabilities near 0 and 1), without the
   optional bias, and in float32 as well as float64;
4. every gradient agrees with the lecture's numerical gradient (central differences, float64) on the random
   shapes.

A failure of 1-3 other than a wrong gradient stops the Function's check (it earns nothing); a wrong gradient is
recorded and the other gradients are checked on: every wrong gradient is reported, with the first case it was
wrong in and in how many.  The student's backward is called directly on the node of its own forward
(``output.grad_fn``), so that what it returns is seen as it returned it (a missing gradient, a transposed one, too
many) and what it raises is traced to its line.  What each Function computes and the gradients it owes come from
:mod:`nnref.formulas`; how much a message says is the teacher's choice (:data:`.reports.HINTS`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from .. import functional as F
from ..formulas import Formula, by_name
from ..gradcheck import numerical_gradient  # imported once, before the checks' processes fork
from . import isolation
from .loading import StudentFileError, _describe_exception, _frame_in, _real, _shown, load_functions
from .own_work import not_own, watching_autograd
from .reports import HINTS, FunctionReport, GradientReport

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
    reduction, what is special), whether the numerical gradient is compared on it, and the tolerance of the
    comparison with nnref."""

    inputs: tuple
    needs_grad: tuple[bool, ...]
    label: str
    seed: int = 0
    numerical: bool = False
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
    if matrix and _name(spec) in _ELEMENTWISE_LOSSES:
        return tuple(t.reshape(n, c) for t in spec.inputs(n=n * c, c=c, p=p, dtype=dtype, seed=seed))
    return spec.inputs(n=n, c=c, p=p, dtype=dtype, seed=seed)


def _cases(spec: Formula) -> list[_Case]:
    """Random non-square shapes (a batch of one among them) × every reduction, in float64 with the numerical
    gradient; without each optional argument (the bias); the extreme inputs; one float32 case (a gradient must keep
    its input's dtype)."""
    needs = spec.grads + ((False,) if spec.loss else ())
    reductions = F.REDUCTIONS if spec.loss else (None,)
    cases = []
    for seed, (n, c, p) in enumerate(SHAPES):
        inputs = _random_inputs(spec, n, c, p, torch.float64, seed, matrix=seed == len(SHAPES) - 1)
        for reduction in reductions:
            args = inputs + ((reduction,) if spec.loss else ())
            cases.append(_Case(args, needs, _label(spec, args), seed, numerical=True))
    for arg in spec.optional:
        i = spec.args.index(arg)
        args = list(_random_inputs(spec, *SHAPES[0], torch.float64, 0, matrix=False))
        args[i] = None
        without = tuple(need and j != i for j, need in enumerate(needs))
        cases.append(_Case(tuple(args), without, _label(spec, tuple(args)), len(cases)))
    for args, note in spec.extremes(torch.float64) if spec.extremes else ():
        cases.append(_Case(args, needs, _label(spec, args, note), len(cases), rtol=1e-6, atol=1e-9))
    args = _random_inputs(spec, *SHAPES[0], torch.float32, 0, matrix=False) + (("mean",) if spec.loss else ())
    cases.append(_Case(args, needs, _label(spec, args, "float32"), len(cases), rtol=1e-4, atol=1e-5))
    return cases


# --------------------------------------------------------------------------------------------------
# What a check finds, and how much it says
# --------------------------------------------------------------------------------------------------
class _Verdict(Exception):
    """A failure that ends the Function's check: its status and message (already in the hint level)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class _Check:
    """One Function's check under way: the formula, the hint level, the student's files (for line numbers), and
    each gradient's findings so far."""

    spec: Formula
    hints: str
    files: set[str]
    gradients: dict[str, GradientReport] = field(default_factory=dict)
    formulas: dict[str, str] = field(default_factory=dict)

    def say(self, where: str, formula: str, short: str) -> str:
        """A finding in the hint level: where it is wrong (+ the formula it should follow), or only pass / fail."""
        if self.hints == "none":
            return short
        return f"{where}; {formula}" if self.hints == "formula" and formula else where

    def fail(self, where: str, formula: str = "", short: str = "") -> None:
        """End the check: a hinted failure (``short`` given) or a reason said at every hint level."""
        raise _Verdict("fail", self.say(where, formula, short) if short else where)

    def wrong(self, arg: str, where: str, case: _Case, factor: float | None = None) -> None:
        """Gradient dL/d``arg`` is wrong in ``case``: noted (the first case is described), and the check goes on."""
        report = self.gradients[f"dL/d{arg}"]
        report.failed += 1
        if report.status == "pass":
            report.status, report.factor, report.case = "fail", factor, case.label
            report.error = self.say(where, f"dL/d{arg} should be {self.spec.gradient(arg)}", "")

    def checked(self, arg: str) -> None:
        self.gradients[f"dL/d{arg}"].checked += 1


def _gradient_line(g: GradientReport, hints: str) -> str:
    if hints == "none":
        return f"{g.name}: {g.status}"
    more = g.failed - 1
    also = f" (wrong in {more} more of the {g.checked} cases)" if more > 0 else ""
    where, _, formula = g.error.partition("; ")
    return f"{where}{also}" + (f"; {formula}" if formula else "")


# --------------------------------------------------------------------------------------------------
# Running the student's code
# --------------------------------------------------------------------------------------------------
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
    except SystemExit as exc:
        raise _Verdict("fail", f"{_at(exc, files)}{what} called sys.exit({exc.code!r}), with {case.label}") from None
    except Exception as exc:  # noqa: BLE001  (whatever the student's code raises is the row's message)
        message = f"{_at(exc, files)}{what} raised {_describe_exception(exc)}, with {case.label}"
        raise _Verdict("fail", message) from None


def _at(exc: BaseException, files: set[str]) -> str:
    found = _frame_in(exc, files)
    return f"{_shown(found[0])}:{found[1]}: " if found else ""


# --------------------------------------------------------------------------------------------------
# Comparing with nnref
# --------------------------------------------------------------------------------------------------
def _difference(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> tuple[str, float | None] | None:
    """None when ``got`` equals ``want`` within |got − want| ≤ atol + rtol |want| everywhere (NaN never does);
    otherwise (the largest error, where, both values, how ``got`` relates to ``want``; the factor k when got =
    k·want)."""
    got64, want64 = got.detach().double(), want.detach().double()
    err = (got64 - want64).abs().nan_to_num(nan=float("inf"))
    if bool((err <= atol + rtol * want64.abs()).all()):
        return None
    flat = int(err.reshape(-1).argmax())
    yours, right = got64.reshape(-1)[flat].item() + 0.0, want64.reshape(-1)[flat].item() + 0.0  # no "-0"
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), got.shape))
    where = f" at index {index}" if got.dim() else ""
    if not math.isfinite(yours):
        return f"yours is {yours}{where} where the right value is {right:.6g}", None
    largest = err.reshape(-1)[flat].item()
    words, factor = _multiple(got64, want64)
    return f"largest error {largest:.3g}{where} (yours {yours:.6g}, right {right:.6g}){words}", factor


def _multiple(got: torch.Tensor, want: torch.Tensor) -> tuple[str, float | None]:
    """(" — yours is 4 × the right one", 4.0) when ``got`` is a multiple k·want (k ≠ 1): a lost 1/n, a flipped
    sign."""
    norm = float((want * want).sum())
    if norm == 0.0 or not bool(torch.isfinite(got).all()):
        return (" — the right one is all zeros" if norm == 0.0 else ""), None
    k = float((got * want).sum()) / norm
    if abs(k - 1) < 1e-6 or not torch.allclose(got, k * want, rtol=1e-6, atol=1e-12):
        return "", None
    if abs(k) < 1e-12:
        return " — yours is all zeros", 0.0
    if abs(k + 1) < 1e-6:
        return " — yours is the right one with its sign flipped", -1.0
    inverse = round(1 / k)
    factor = f"1/{inverse}" if abs(k) < 1 and abs(1 / k - inverse) < 1e-6 else f"{k:.4g}"
    return f" — yours is {factor} × the right one", round(k, 6)


def _check_forward(check: _Check, cls: type, case: _Case) -> None:
    """The student's forward output equals nnref's: type, shape, dtype, values."""
    spec = check.spec
    got = _run("forward", case, check.files, cls.apply, *case.fresh())
    want = spec.function.apply(*case.fresh())
    out, formula = spec.result, f"it should be {spec.forward}"
    if not isinstance(got, torch.Tensor):
        check.fail(f"forward returned a {type(got).__name__}, not a tensor, with {case.label}; it should return {out}")
    if got.shape != want.shape:
        where = f"forward: {out} has shape {tuple(got.shape)}, nnref's has {tuple(want.shape)}, with {case.label}"
        check.fail(where, formula, "forward: fail")
    if got.dtype != want.dtype:
        check.fail(f"forward: {out} has dtype {got.dtype}, nnref's has {want.dtype}, with {case.label}")
    difference = _difference(got, want, case.rtol, case.atol)
    if difference:
        check.fail(f"forward: {out} is wrong: {difference[0]}, with {case.label}", formula, "forward: fail")


def _reference_grads(spec: Formula, case: _Case, g: torch.Tensor) -> tuple:
    """nnref's hand-written gradients, by position (its backward called as the student's is)."""
    out = spec.function.apply(*case.fresh())
    with torch.no_grad():
        grads = out.grad_fn.apply(g.clone())
    return grads if isinstance(grads, tuple) else (grads,)


def _upstream(out: torch.Tensor, seed: int) -> torch.Tensor:
    """g = dL/d(output): random (a backward that forgets to multiply by it fails), shaped like the output."""
    gen = torch.Generator().manual_seed(1000 + seed)
    return torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)


def _as_tuple(check: _Check, raw) -> tuple:
    """What backward returned as PyTorch reads it: a tuple, or one tensor (or None) for a one-input Function."""
    if isinstance(raw, tuple):
        return raw
    if raw is None or isinstance(raw, torch.Tensor):
        return (raw,)
    check.fail(f"backward returned a {type(raw).__name__}: return a tuple, one gradient per input of forward")


def _check_count(check: _Check, grads: tuple) -> None:
    """One gradient per input of forward (PyTorch allows extra trailing Nones, and so does the check)."""
    spec, count = check.spec, len(check.spec.args)
    if len(grads) < count or any(x is not None for x in grads[count:]):
        noun = "gradient" if len(grads) == 1 else "gradients"
        check.fail(
            f"backward returned {len(grads)} {noun}, but forward takes {count} input{'s' * (count > 1)} "
            f"({', '.join(spec.args)}): return {_expected_returns(spec)}, one per input in that order"
        )


def _check_no_gradient(check: _Check, i: int, x, got, case: _Case) -> None:
    """An input that was None, is not a tensor, or holds integers (labels) gets None: PyTorch raises otherwise."""
    arg = check.spec.args[i]
    if got is None:
        return
    if x is None:
        check.fail(
            f"backward returned a gradient for {arg}, which was None, with {case.label}: return None for dL/d{arg} "
            f"when {arg} is None (ctx.needs_input_grad[{i}] is False); PyTorch raises an error otherwise"
        )
    if not isinstance(x, torch.Tensor) or not (x.is_floating_point() or x.is_complex()):
        what = "not a tensor" if not isinstance(x, torch.Tensor) else f"a tensor of {x.dtype} (it has no gradient)"
        check.fail(
            f"backward returned a {type(got).__name__} for {arg}, which is {what}: "
            f"return {_expected_returns(check.spec)}"
        )


def _check_gradient(check: _Check, case: _Case, i: int, x: torch.Tensor, got, want: torch.Tensor, g) -> None:
    """The gradient of input i: present, a tensor of x's shape and dtype, equal to nnref's."""
    arg = check.spec.args[i]
    name, with_case = f"dL/d{arg}", f"with {case.label}"
    check.checked(arg)
    if got is None:
        return check.wrong(arg, f"backward returned None for {name}, but {arg} needs a gradient, {with_case}", case)
    if not isinstance(got, torch.Tensor):
        return check.wrong(arg, f"{name} is a {type(got).__name__}, not a tensor, {with_case}", case)
    if got.shape != x.shape:
        transposed = " (transposed)" if got.dim() == 2 and tuple(got.shape) == tuple(x.shape)[::-1] else ""
        where = f"{name} has shape {tuple(got.shape)}{transposed} but {arg} has shape {tuple(x.shape)}, {with_case}"
        return check.wrong(arg, where, case)
    if got.dtype != x.dtype:
        return check.wrong(arg, f"{name} has dtype {got.dtype} but {arg} has dtype {x.dtype}, {with_case}", case)
    difference = _difference(got, want, case.rtol, case.atol)
    if difference:
        words, factor = difference
        check.wrong(arg, f"{name} is wrong: {words}, {with_case}, g {tuple(g.shape)}", case, factor)


def _call_backward(check: _Check, cls: type, case: _Case, inputs: tuple) -> tuple[torch.Tensor, tuple]:
    """Forward, then the student's backward on its node with a random g, watched: what it returns, and g."""
    out = _run("forward", case, check.files, cls.apply, *inputs)
    node = out.grad_fn
    if node is None or getattr(node, "_forward_cls", None) is not cls:
        name = _name(check.spec)
        check.fail(f"forward's output is not connected to {name}'s backward (a detached tensor?), with {case.label}")
    g = _upstream(out, case.seed)
    given = g.clone()
    with torch.no_grad(), watching_autograd() as called:  # as autograd runs a backward
        raw = _run("backward", case, check.files, node.apply, given)
    if called:
        check.fail(
            f"backward calls {', '.join(called)} to get its gradient: compute each gradient yourself, from what "
            "forward saved and g"
        )
    if not torch.equal(given, g):
        check.fail(
            f"backward changed g in place (g.mul_(…), g[…] = …), with {case.label}: g belongs to autograd, which "
            "hands the same g to every use of the output; compute new tensors from it (g * …) instead"
        )
    return g, _as_tuple(check, raw)


def _check_backward(check: _Check, cls: type, case: _Case) -> None:
    """Call the student's backward on the node of its own forward, with a random g, and compare what it returns
    with nnref's gradients."""
    inputs = case.fresh()
    g, grads = _call_backward(check, cls, case, inputs)
    _check_count(check, grads)
    want = _reference_grads(check.spec, case, g)
    for i, x in enumerate(inputs):
        if case.needs_grad[i]:
            _check_gradient(check, case, i, x, grads[i], want[i], g)
        else:
            _check_no_gradient(check, i, x, grads[i], case)


def _check_numerical(check: _Check, cls: type, case: _Case) -> None:
    """Each gradient still right against the lecture's numerical gradient of L = Σ g ⊙ output (central
    differences, float64): a backward that agrees with nnref's only when called once, or that depends on more
    than forward saved, disagrees here."""
    spec = check.spec
    inputs = case.fresh()
    g, grads = _call_backward(check, cls, case, inputs)
    for i, x in enumerate(inputs):
        arg = spec.args[i]
        if not case.needs_grad[i] or check.gradients[f"dL/d{arg}"].status != "pass":
            continue

        def loss(xi, i=i):
            args = [t.detach() if isinstance(t, torch.Tensor) else t for t in inputs]
            args[i] = xi
            with torch.no_grad():
                return (cls.apply(*args) * g).sum()

        (numeric,) = _run("forward", case, check.files, numerical_gradient, loss, (x.detach(),), 1e-6, "central")
        difference = _difference(grads[i], numeric, 1e-4, 1e-6)
        if difference:
            where = f"the numerical gradient disagrees with your dL/d{arg}: {difference[0]}, with {case.label}"
            check.wrong(arg, where, case, difference[1])


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


def _hints(hints: str) -> str:
    if hints not in HINTS:
        raise ValueError(f"hints {hints!r}: choose from {', '.join(HINTS)}")
    return hints


# --------------------------------------------------------------------------------------------------
# One Function, here; one Function or a file, isolated
# --------------------------------------------------------------------------------------------------
def check_here(name: str, cls, hints: str = "formula") -> FunctionReport:
    """Check ``cls`` as nnref's ``name`` in this process (no time or memory limit): :func:`check_function` is
    this, isolated."""
    spec, hints = _spec(name), _hints(hints)
    if not (isinstance(cls, type) and issubclass(cls, torch.autograd.Function)):
        kind = f"the class {cls.__name__}" if isinstance(cls, type) else f"an object of type {type(cls).__name__}"
        return FunctionReport(name, "fail", f"{name} is {kind}, not a subclass of torch.autograd.Function")
    reason = not_own(name, cls)
    if reason:
        return FunctionReport(name, "fail", reason)
    cases = _cases(spec)
    check = _Check(spec, hints, _student_files(cls))
    check.gradients = {f"dL/d{arg}": GradientReport(f"dL/d{arg}", "pass") for arg in spec.gradients}
    try:
        with _one_thread():
            for case in cases:
                _check_forward(check, cls, case)
            for case in cases:
                _check_backward(check, cls, case)
            for case in cases:
                if case.numerical:
                    _check_numerical(check, cls, case)
    except _Verdict as verdict:
        return FunctionReport(name, verdict.status, verdict.message, len(cases), list(check.gradients.values()))
    return _report(check, name, len(cases))


def _report(check: _Check, name: str, count: int) -> FunctionReport:
    grads = list(check.gradients.values())
    wrong = [g for g in grads if not g.passed]
    if not wrong:
        numerical = sum(c.numerical for c in _cases(check.spec))
        message = f"forward and backward equal nnref's in {count} cases; the numerical gradient agrees in {numerical}"
        return FunctionReport(name, "pass", message, count, grads, 1.0)
    if check.hints == "none":
        message = ", ".join(_gradient_line(g, "none") for g in grads)
    else:
        message = "\n".join(_gradient_line(g, check.hints) for g in wrong)
    return FunctionReport(name, "fail", message, count, grads, round(1 - len(wrong) / len(grads), 6))


def check_function(
    name: str,
    cls,
    hints: str = "formula",
    timeout: float = isolation.TIMEOUT,
    memory: int | None = isolation.MEMORY,
) -> FunctionReport:
    """Check the student's Function ``cls`` written as nnref's ``name`` (e.g. "LinearFunction") on its own,
    against nnref's (see the module's docstring), in a process of its own: a backward that loops forever, exits
    or crashes fails this check only, after ``timeout`` seconds at most, with at most ``memory`` bytes.  The
    report's message says as much as ``hints`` (:data:`.reports.HINTS`) allows."""
    _spec(name), _hints(hints)
    (outcome,) = isolation.run_isolated([lambda: _checked(name, cls, hints)], timeout, memory)
    return _from_outcome(name, outcome)


def _checked(name: str, cls, hints: str) -> dict:
    report = check_here(name, cls, hints)
    return {**report.to_dict(), "cases": report.cases}


def _from_outcome(name: str, outcome: isolation.Outcome) -> FunctionReport:
    if outcome.failure:
        return FunctionReport(name, "fail", f"{name}'s check {outcome.failure}", seconds=outcome.seconds)
    report = FunctionReport.from_dict(outcome.value)
    report.seconds = outcome.seconds
    return report


def check_classes(
    classes: dict[str, type],
    hints: str = "formula",
    timeout: float = isolation.TIMEOUT,
    memory: int | None = isolation.MEMORY,
    jobs: int | None = None,
) -> list[FunctionReport]:
    """:func:`check_function` for each ``{name: class}``, ``jobs`` at a time, in the lecture's order."""
    names = [name for name in NAMES if name in classes]
    for name in classes:
        _spec(name)
    tasks = [lambda name=name: _checked(name, classes[name], _hints(hints)) for name in names]
    return [_from_outcome(n, o) for n, o in zip(names, isolation.run_isolated(tasks, timeout, memory, jobs))]


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


def _defined(path) -> dict:
    """What loading the file gives, as JSON: the names it defines, or the error that stopped it."""
    try:
        return {"names": list(load_functions(path))}
    except StudentFileError as exc:
        return {"error": [exc.path, exc.line, exc.message]}


def check_file(
    path: str | os.PathLike,
    only: Iterable[str] | str | None = None,
    hints: str = "formula",
    timeout: float = isolation.TIMEOUT,
    memory: int | None = isolation.MEMORY,
    jobs: int | None = None,
) -> list[FunctionReport]:
    """Load the student's file and check each Function it defines: one report per name, in the lecture's order
    ("missing" for a name the file does not define); ``only`` restricts the names.  The file is imported, and each
    Function checked, in processes of their own (``jobs`` at a time, default one per core) under ``timeout`` and
    ``memory``: no file stops the grading.  A file that cannot be loaded gives every Function the status "not
    loaded" with the reason (``FILE:LINE: what``).  Raises ValueError for an unknown name in ``only`` or hint
    level."""
    names, hints = _selected(only), _hints(hints)
    (loaded,) = isolation.run_isolated([lambda: _defined(path)], timeout, memory)
    if loaded.failure or "error" in loaded.value:
        reason = f"{_shown(str(path))}: importing it {loaded.failure}" if loaded.failure else None
        reason = reason or str(StudentFileError(*loaded.value["error"]))
        return [FunctionReport(name, "not loaded", reason) for name in names]
    defined = [name for name in names if name in loaded.value["names"]]

    def task(name: str):
        return lambda: _checked(name, load_functions(path)[name], hints)

    outcomes = dict(zip(defined, isolation.run_isolated([task(n) for n in defined], timeout, memory, jobs)))
    reports = [
        _from_outcome(name, outcomes[name])
        if name in outcomes
        else FunctionReport(name, "missing", f"{_shown(str(path))} does not define {name}")
        for name in names
    ]
    return reports
