#!/usr/bin/env python
"""Mutation testing of what the lecture is about: plant one small bug at a time in the Functions' forward and
backward (``nnref/functional.py``), in KNN's vote (``nnref/knn.py``) and in the lab's rules — its schema and caps
(``nnref/lab/state.py``: every check and ``LIMITS``), what a change of each group does and the recipe
(``nnref/lab/session.py``), the worked example (``nnref/backprop.py``) — run the tests that cover them, and count
the bugs the suite catches ("killed") and the ones it lets through ("survived").

    python scripts/mutation.py [--jobs 2] [--only functional|knn|lab] [--list]

Each mutant changes one operation in a function of :data:`SCOPE`: an arithmetic operator (+ −, * /, ** → *), a
comparison (< ≤, > ≥, == ≠), a unary minus dropped, a number (0 ↔ 1, n → n + 1, x → 2x), a boolean flipped, an
``and``/``or`` swapped, a ``max``/``min`` swapped.  It is written into a copy of the repository and the tests of
:data:`TESTS` run there (``pytest -x``: the first failure kills it).  Survivors are printed with their line and
change; :data:`EQUIVALENT` lists those that cannot change any result, each with the reason, and they are not
counted against the score.  No mutation library is needed (mutmut and cosmic-ray rewrite the whole package and
run the whole suite: hours on 2 cores).
"""

from __future__ import annotations

import argparse
import ast
import copy
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The functions mutated, per file: the math helpers and every Function's forward, setup_context and backward;
#: KNN's vote.
SCOPE = {
    "nnref/functional.py": (
        "_sigmoid",
        "_log_softmax",
        "_softmax",
        "_clamped_log",
        "_clamped_log1m",
        "_reduce",
        "_expand_grad",
        "forward",
        "setup_context",
        "backward",
    ),
    "nnref/knn.py": ("vote_shares", "vote", "merge_neighbours"),
    # the lab's rules: the schema's checks and its caps (LIMITS, a module-level table: its numbers are mutated too)
    "nnref/lab/state.py": (
        "LIMITS",
        "_number",
        "_choice",
        "_flag",
        "_list",
        "_inputs",
        "_hidden",
        "_points",
        "_instance",
        "_typed_weights",
        "check_state",
        "read_message",
    ),
    # what a change of each group keeps and rebuilds, and the recipe applied from the next step
    "nnref/lab/session.py": ("configure", "_set_recipe", "_penalty", "_recipe_changes", "apply_step", "steps"),
    # the lecture's worked example: the backward pass on one instance, and its SGD step
    "nnref/backprop.py": ("worked_pass", "_local_gradients", "sgd_step"),
}

#: The tests run against each mutant of a file.
TESTS = {
    "nnref/functional.py": [
        "tests/test_functional.py",
        "tests/test_gradcheck.py",
        "tests/test_lecture.py",
        "tests/test_layers.py",
        "tests/test_properties.py",
        "tests/test_models.py",
    ],
    "nnref/knn.py": ["tests/test_knn.py"],
    "nnref/lab/state.py": [  # (the session's tests, and test_lab.py's of the schema: not those of the served pages)
        "tests/test_lab_session.py",
        *(
            f"tests/test_lab.py::{name}"
            for name in (
                "test_parse_message_refuses_with_a_reason",
                "test_every_cap_takes_its_limit_and_refuses_one_past_it",
                "test_the_schema_has_no_cap_this_test_does_not_check",
                "test_a_message_of_256_kib_is_read_and_one_byte_more_refused",
                "test_every_number_field_refuses_a_value_past_either_end",
                "test_divergence_is_a_message_not_a_blank_picture",
                "test_reset_returns_to_the_same_initial_weights_and_new_weights_to_others",
                "test_the_lower_ends_of_the_schemas_lists_and_sizes",
                "test_a_point_of_your_own_is_refused_off_the_plane_or_of_no_class",
                "test_a_point_of_your_own_is_a_training_point_unless_its_split_is_1",
                "test_a_config_version_is_a_whole_number_from_0_to_2_31_minus_1",
                "test_a_typed_weights_indices_are_whole_numbers_from_minus_1_to_64",
                "test_a_refusal_says_what_was_wrong_with_the_text",
                "test_the_instance_is_three_numbers_or_none",
            )
        ),
    ],
    "nnref/lab/session.py": ["tests/test_lab_session.py"],
    "nnref/backprop.py": ["tests/test_backprop.py", "tests/test_lecture.py"],
}

#: Mutants that cannot change a result, by (file, function, change, which of that change in the function: 1, 2 …):
#: why.  (Keyed by the function's qualified name, not by line, so that an edit elsewhere in the file keeps them.)
_LAST = (
    "the last dimension written −1 or 1 is the same one: the loss takes (n, c) matrices and (n,) labels only "
    "(checked before the Function runs)"
)
FUNCTIONAL = "nnref/functional.py"
_MINUS = "unary − dropped"
_SOFTMAX_PATH = (
    "which of its two ways computes the softmax — the fused kernel, or max-subtract, exp and normalise written out "
    "for a few classes on a CPU — is a matter of speed: both are the max-subtracted softmax, equal to rounding, and "
    "both are tested against torch.softmax (test_softmax_is_taken_along_the_last_dimension_of_any_rank)"
)
EQUIVALENT: dict[tuple[str, str, str, int], str] = {
    (FUNCTIONAL, "_softmax", "or → and", 1): _SOFTMAX_PATH,
    (FUNCTIONAL, "_softmax", "> → >=", 1): _SOFTMAX_PATH,
    (FUNCTIONAL, "_softmax", "!= → ==", 1): _SOFTMAX_PATH,
    (FUNCTIONAL, "_softmax", "1 → 0", 1): _SOFTMAX_PATH + " (shape[-0] is the batch size: the way is chosen by it)",
    (FUNCTIONAL, "_log_softmax", _MINUS, 1): (
        "log-softmax over dim 1 instead of −1: its one caller, SoftmaxCrossEntropyFunction, takes (n, c) logits only"
    ),
    (FUNCTIONAL, "_expand_grad", "== → !=", 2): (
        "'sum' then returns the 0-D g unexpanded and 'none' expands g to its own shape: every caller multiplies the "
        "result with a tensor of the loss's shape, and broadcasting gives the same values"
    ),
    **{(FUNCTIONAL, "CrossEntropyFunction.forward", _MINUS, n): "CrossEntropyFunction: " + _LAST for n in (1, 2, 3)},
    **{
        (FUNCTIONAL, "CrossEntropyFunction.backward", _MINUS, n): "CrossEntropyFunction: " + _LAST
        for n in (1, 2, 3, 4, 5)
    },
    **{
        (FUNCTIONAL, "SoftmaxCrossEntropyFunction.forward", _MINUS, n): "SoftmaxCrossEntropyFunction: " + _LAST
        for n in (1, 2, 3)
    },
    **{  # (#2 is the minus of −g_rows: a real bug, and killed)
        (FUNCTIONAL, "SoftmaxCrossEntropyFunction.backward", _MINUS, n): "SoftmaxCrossEntropyFunction: " + _LAST
        for n in (1, 3, 4)
    },
    **{
        ("nnref/lab/state.py", fn, change, n): (
            "the default of a Field made inside a check to bound a number: a check never reads a field's default"
        )
        for fn, change, n in (
            ("_hidden", "1 → 0", 1),
            ("_points", "0 → 1", 1),
            ("_points", "0 → 1", 3),
            ("_points", "0 → 1", 4),
            ("_typed_weights", "0 → 1", 1),
            ("_typed_weights", "0 → 1", 2),
            ("read_message", "0 → 1", 2),
        )
    },
    ("nnref/lab/session.py", "PlaygroundSession.apply_step", "2 → 3", 1): (
        "instance[:3] instead of instance[:2] hands plane.features the class as a third column, and the features "
        "read columns 0 and 1 only"
    ),
    ("nnref/lab/state.py", "_typed_weights", "3 → 4", 2): (
        "entry[:4] zipped with the three names (layer, neuron, input) gives the same three pairs as entry[:3]"
    ),
    ("nnref/lab/state.py", "_list", "or → and", 1): (
        "the server checks a list only through _inputs, which has refused anything but a non-empty list before "
        "(the one other list field, hide, is the page's alone: check_state never sees it)"
    ),
    ("nnref/knn.py", "merge_neighbours", "True → False", 1): (
        "the first sort orders a row's candidates by training index, and those are distinct (each record lives in "
        "one shard): a stable and an unstable sort give the same order (the second sort's stability is tested)"
    ),
}

_LAB = ("nnref/lab/state.py", "nnref/lab/session.py", "nnref/backprop.py")  # the lab's rules (--only lab)

_BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult}
_CMPOPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
_SYMBOL = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}


@dataclass(frozen=True)
class Mutant:
    file: str
    function: str  # qualified: "CrossEntropyFunction.backward", "_reduce"
    line: int
    col: int
    change: str
    nth: int  # this change's count in the function, in walk order: 1, 2 … (what EQUIVALENT keys on)
    index: int  # which mutable site of the file, in walk order

    @property
    def key(self) -> tuple[str, str, str, int]:
        return self.file, self.function, self.change, self.nth


def _functions(tree: ast.Module, names: tuple[str, ...]):
    """(qualified name, function) for every function in scope: top-level ones and the methods of classes — and a
    module-level table in scope (``LIMITS = {...}``), as a function whose body is its assignment."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            yield node.name, node
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) in names for t in node.targets):
            yield node.targets[0].id, ast.FunctionDef(name=node.targets[0].id, body=[node])
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name in names:
                    yield f"{node.name}.{item.name}", item


def _sites(tree: ast.Module, names: tuple[str, ...]):
    """(qualified function name, node, description, apply(node) → mutated node) for every mutable site in scope."""
    for name, fn in _functions(tree, names):
        body = fn.body[1:] if ast.get_docstring(fn) else fn.body
        for stmt in body:
            for node in ast.walk(stmt):
                yield from ((name, node, d, f) for d, f in _mutations(node))


def _mutations(node):
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        new = _BINOPS[type(node.op)]
        yield f"{_SYMBOL[type(node.op)]} → {_SYMBOL[new]}", lambda n: setattr(n, "op", new())
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
        new = _CMPOPS[type(node.ops[0])]
        yield f"{_SYMBOL[type(node.ops[0])]} → {_SYMBOL[new]}", lambda n: setattr(n, "ops", [new()])
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "unary − dropped", "drop-minus"
    elif isinstance(node, ast.BoolOp):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield f"{type(node.op).__name__.lower()} → {new.__name__.lower()}", lambda n: setattr(n, "op", new())
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield f"{node.value} → {not node.value}", lambda n: setattr(n, "value", not n.value)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        v = node.value
        new = {0: 1, 1: 0}.get(v, v + 1 if isinstance(v, int) else v * 2)
        yield f"{v!r} → {new!r}", lambda n, new=new: setattr(n, "value", new)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("max", "min"):
        new = "min" if node.func.id == "max" else "max"
        yield f"{node.func.id}() → {new}()", lambda n, new=new: setattr(n.func, "id", new)
    elif isinstance(node, ast.Attribute) and node.attr in (
        "clamp_min",
        "clamp_max",
        "amax",
        "amin",
        "argmax",
        "argmin",
    ):
        swap = {
            "clamp_min": "clamp_max",
            "clamp_max": "clamp_min",
            "amax": "amin",
            "amin": "amax",
            "argmax": "argmin",
            "argmin": "argmax",
        }[node.attr]
        yield f".{node.attr} → .{swap}", lambda n, swap=swap: setattr(n, "attr", swap)


def mutants(file: str) -> list[Mutant]:
    tree = ast.parse((ROOT / file).read_text())
    found, seen = [], {}
    for i, (fn, node, d, _) in enumerate(_sites(tree, SCOPE[file])):
        seen[fn, d] = seen.get((fn, d), 0) + 1
        found.append(Mutant(file, fn, node.lineno, node.col_offset, d, seen[fn, d], i))
    return found


def mutated_source(m: Mutant) -> str:
    tree = ast.parse((ROOT / m.file).read_text())
    for i, (_, node, _, apply) in enumerate(_sites(tree, SCOPE[m.file])):
        if i == m.index:
            if apply == "drop-minus":
                _replace(tree, node, copy.deepcopy(node.operand))
            else:
                apply(node)
            break
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree, old, new) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
            elif isinstance(value, list):
                for j, item in enumerate(value):
                    if item is old:
                        value[j] = new


def run(m: Mutant | None, file: str, workdir: Path, timeout: float) -> str:
    """'killed', 'survived' or 'timeout' (a mutant that hangs the tests counts as caught) for mutant ``m`` of
    ``file`` (None: the file as it is, which must survive).  A pytest that could not run the tests at all (exit 3,
    4 or 5: internal error, bad usage, no tests) stops the script instead of counting as a kill."""
    copy_dir = workdir / (f"m{m.index}-{Path(file).stem}" if m else f"baseline-{Path(file).stem}")
    shutil.copytree(ROOT / "nnref", copy_dir / "nnref", ignore=shutil.ignore_patterns("__pycache__", "static"))
    for folder in ("tests", "scripts"):  # (a test runs scripts/gradcheck.py)
        shutil.copytree(ROOT / folder, copy_dir / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy_dir / "pyproject.toml")
    if m is not None:
        (copy_dir / file).write_text(mutated_source(m))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *TESTS[file]]
    env = {"PYTHONPATH": str(copy_dir), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HYPOTHESIS_PROFILE": "ci"}
    try:
        done = subprocess.run(cmd, cwd=copy_dir, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode not in (0, 1, 2):  # 1: a test failed; 2: collection failed (the mutant broke an import)
            sys.exit(f"pytest could not run {TESTS[file]} (exit {done.returncode}):\n{done.stdout[-2000:]}")
        verdict = "survived" if done.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        verdict = "timeout"
    shutil.rmtree(copy_dir, ignore_errors=True)
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument(
        "--only", choices=("functional", "knn", "lecture", "lab"), help="lecture: the Functions and KNN; lab: its rules"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant before it counts as caught")
    args = parser.parse_args()
    parts = {"lab": _LAB, "lecture": tuple(f for f in SCOPE if f not in _LAB)}
    files = [f for f in SCOPE if args.only is None or f in parts.get(args.only, ()) or args.only in f]
    todo = [m for f in files for m in mutants(f)]
    if args.list:
        for m in todo:
            print(f"{m.file}:{m.line}:{m.col} {m.function}: {m.change} (#{m.nth})")
        print(f"{len(todo)} mutants")
        return 0
    start, results = time.perf_counter(), {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        for f in files:  # the tests must pass on the code as it is, or every mutant would look killed
            if run(None, f, Path(tmp), args.timeout) != "survived":
                sys.exit(f"the tests of {f} fail without any mutant: fix them first")
        for m, verdict in zip(todo, pool.map(lambda m: run(m, m.file, Path(tmp), args.timeout), todo)):
            results[m] = verdict
            if verdict == "survived":
                note = EQUIVALENT.get(m.key)
                print(
                    f"survived: {m.file}:{m.line}:{m.col} in {m.function}: {m.change} (#{m.nth})"
                    + (f" — equivalent: {note}" if note else ""),
                    flush=True,
                )
    minutes = (time.perf_counter() - start) / 60
    print(f"\nmutation score ({minutes:.0f} min, {args.jobs} at a time):")
    failed = 0
    for f in files:
        mine = {m: v for m, v in results.items() if m.file == f}
        survived = [m for m, v in mine.items() if v == "survived"]
        equivalent = [m for m in survived if m.key in EQUIVALENT]
        real = len(survived) - len(equivalent)
        failed += real
        counted = len(mine) - len(equivalent)
        print(
            f"  {f}: {len(mine)} mutants, {counted - real} of {counted} non-equivalent ones killed "
            f"({100 * (counted - real) / max(counted, 1):.1f}%); {len(equivalent)} equivalent; {real} survived"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
