"""nnref.exercises: the starting kit, loading a student's file, and the checker that says which backward is wrong.

A correct student file is tests/exercise_solutions.py (the kit with every backward written in plain torch); each
typical mistake is planted, on its own, into a copy of it.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest
import torch

import nnref.exercises as E
from nnref.exercises import NAMES, StudentFileError, check_file, check_function, load_functions, write_kit

SOLUTION = Path(__file__).with_name("exercise_solutions.py")
KIT = Path(E.__file__).with_name("template") / "my_functions.py"


def _solution_with(tmp_path: Path, old: str = "", new: str = "", name: str = "my_functions.py") -> Path:
    """A copy of the correct solution in tmp_path, with ``old`` (found exactly once) replaced by ``new``."""
    text = SOLUTION.read_text()
    if old:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the solution"
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(reports) -> dict:
    return {r.name: r for r in reports}


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in ast.parse(path.read_text()).body if isinstance(node, ast.ClassDef)}


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    return next(node for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == name)


# --------------------------------------------------------------------------------------------------
# The kit
# --------------------------------------------------------------------------------------------------
def test_the_kit_as_written_is_nine_not_implemented(tmp_path):
    written = write_kit(tmp_path / "hw")
    assert [p.name for p in written] == ["my_functions.py", "README.md"]
    assert written[0].read_text() == KIT.read_text()
    reports = check_file(written[0])
    assert [r.name for r in reports] == list(NAMES)
    assert [r.status for r in reports] == ["not implemented"] * 9, [r.message for r in reports]
    lines = written[0].read_text().splitlines()
    for r in reports:  # each row points at the `raise NotImplementedError` of its own backward
        where, _, rest = r.message.partition(": ")
        line = int(where.rsplit(":", 1)[1])
        assert lines[line - 1].strip() == "raise NotImplementedError"
        assert "NotImplementedError" in rest
    assert E.report_json(reports) == {"functions": [r.to_dict() for r in reports], "passed": 0, "total": 9}


def test_the_kit_has_the_nine_functions_with_a_docstring_and_no_answer():
    classes = _classes(KIT)
    assert list(classes) == list(NAMES)  # the lecture's order
    for name, cls in classes.items():
        assert [ast.unparse(b) for b in cls.bases] == ["torch.autograd.Function"], name
        backward = _method(cls, "backward")
        doc, body = ast.get_docstring(backward), backward.body[1:]
        assert [ast.unparse(b) for b in body] == ["raise NotImplementedError"], name
        assert "Shapes:" in doc and "derive" in doc.lower() and "dL/d" in doc, name
        assert _method(cls, "forward").args.args[0].arg == "ctx"  # the classic style
    imports = [n for n in ast.walk(ast.parse(KIT.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] == ["import torch"]
    readme = E.kit_text("README.md")
    commands = ["nnref exercises", "nnref gradcheck --functions", "nnref train softmax --functions"]
    assert all(c in readme for c in commands)
    assert [readme.index(c) for c in commands] == sorted(readme.index(c) for c in commands)


def test_write_kit_refuses_to_overwrite_and_writes_nothing(tmp_path):
    (tmp_path / "README.md").write_text("my notes")
    with pytest.raises(FileExistsError, match="README.md"):
        write_kit(tmp_path)
    assert not (tmp_path / "my_functions.py").exists()  # nothing written, not even the file that was free
    assert (tmp_path / "README.md").read_text() == "my notes"
    write_kit(tmp_path, force=True)
    assert (tmp_path / "README.md").read_text() == E.kit_text("README.md")
    (tmp_path / "my_functions.py").write_text("# my work")
    with pytest.raises(FileExistsError, match="my_functions.py"):
        write_kit(tmp_path)
    assert (tmp_path / "my_functions.py").read_text() == "# my work"
    write_kit(tmp_path, force=True)
    assert (tmp_path / "my_functions.py").read_text() == KIT.read_text()


# --------------------------------------------------------------------------------------------------
# Correct files pass
# --------------------------------------------------------------------------------------------------
def test_a_file_that_imports_nnref_for_its_data_and_layers_passes(tmp_path):
    uses = "import torch\nimport nnref.functional as NF\nfrom nnref.data import MEAN, STD\n"
    uses += "from nnref.layers import Linear\n"
    path = _solution_with(tmp_path, "import torch\n", uses)
    text = path.read_text().replace("sigma = 1 / (1 + torch.exp(-z))", "sigma = NF.sigmoid(z)  # nnref's plain sigmoid")
    path.write_text(text + "\n\nSCALE = (MEAN, STD, Linear)\n")
    reports = check_file(path)
    assert [r.status for r in reports] == ["pass"] * 9, [r.message for r in reports]


def test_the_solution_passes_nine_of_nine_with_the_kits_forwards(tmp_path):
    start = time.perf_counter()
    reports = check_file(SOLUTION)
    seconds = time.perf_counter() - start
    assert [r.status for r in reports] == ["pass"] * 9, [r.message for r in reports]
    assert seconds < 60, f"the checker took {seconds:.1f} s on nine Functions"
    assert [r.score for r in reports] == [1.0] * 9
    kit, solution = _classes(KIT), _classes(SOLUTION)
    for name in NAMES:  # the solution keeps the kit's forward passes: the kit's forward is checked too
        assert ast.dump(_method(solution[name], "forward")) == ast.dump(_method(kit[name], "forward")), name
    imports = [n for n in ast.walk(ast.parse(SOLUTION.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] == ["import torch"]  # plain torch, nothing of nnref's


def test_both_ways_of_writing_a_function_are_accepted(tmp_path):
    path = tmp_path / "styles.py"
    path.write_text("""import torch


class LinearFunction(torch.autograd.Function):  # forward without ctx, and setup_context
    @staticmethod
    def forward(x, W, b):
        return x @ W.T if b is None else x @ W.T + b

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, W, b = inputs
        ctx.save_for_backward(x, W)

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W, g.T @ x, g.sum(0) if ctx.needs_input_grad[2] else None


class SigmoidFunction(torch.autograd.Function):  # the classic forward(ctx, ...)
    @staticmethod
    def forward(ctx, z):
        a = torch.sigmoid(z)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * a * (1 - a)
""")
    rows = _rows(check_file(path))
    assert rows["LinearFunction"].status == rows["SigmoidFunction"].status == "pass"
    assert {r.status for name, r in rows.items() if name not in ("LinearFunction", "SigmoidFunction")} == {"missing"}
    assert "does not define SoftmaxFunction" in rows["SoftmaxFunction"].message


# --------------------------------------------------------------------------------------------------
# A student's typical mistakes, each on its own: exactly its row fails, naming the wrong gradient
# --------------------------------------------------------------------------------------------------
MISTAKES = {
    "dL/dW transposed": ("LinearFunction", "grad_W = g.T @ x", "grad_W = x.T @ g", ["dL/dW", "shape", "gᵀ x"]),
    "bias gradient averaged": ("LinearFunction", "g.sum(dim=0) if", "g.mean(dim=0) if", ["dL/db", "1/4 ×"]),
    "softmax Jacobian's diagonal only": (
        "SoftmaxFunction",
        "return a * (g - (g * a).sum(dim=-1, keepdim=True))",
        "return g * a * (1 - a)",
        ["dL/dz", "a ⊙ (g − Σ_i g_i a_i)"],
    ),
    "ReLU passes negative inputs' gradient": ("ReLUFunction", "return g * (z > 0)", "return g", ["dL/dz", "1[z > 0]"]),
    "tanh's derivative as 1 − a": ("TanhFunction", "g * (1 - a**2)", "g * (1 - a)", ["dL/dz", "1 − a²"]),
    "sign flip in the binary cross-entropy": (
        "BinaryCrossEntropyFunction",
        "grad_a = g * (a - y)",
        "grad_a = g * (y - a)",
        ["dL/da", "sign flipped", "(a − y)"],
    ),
    "the 1/n of mean forgotten": (
        "SoftmaxCrossEntropyFunction",
        'scale = g / len(y) if ctx.reduction == "mean" else g',
        "scale = g",
        ["dL/dz", "'mean'", "4 × the right one"],
    ),
    "the one-hot not subtracted": (
        "SoftmaxCrossEntropyFunction",
        "        grad_z[torch.arange(len(y), device=z.device), y] -= 1\n",
        "",
        ["dL/dz", "onehot(y)"],
    ),
    "the logits used for σ(z)": (
        "SigmoidBinaryCrossEntropyFunction",
        "g * (sigma - y)",
        "g * (z - y)",
        ["dL/dz", "σ(z) − y"],
    ),
    "the 1/n of mean forgotten, unfused": (
        "CrossEntropyFunction",
        "g = g / len(y)",
        "pass",
        ["dL/da", "'mean'", "−1/a_y"],
    ),
    "dL/dy of the binary cross-entropy left out": (
        "BinaryCrossEntropyFunction",
        "return grad_a, grad_y, None",
        "return grad_a, None, None",
        ["None for dL/dy", "log(1 − a)"],
    ),
    "a gradient always in float64": (
        "TanhFunction",
        "g * (1 - a**2)",
        "g * (torch.ones_like(a, dtype=torch.float64) - a**2)",
        ["dL/dz has dtype torch.float64 but z has dtype torch.float32", "float32"],
    ),
    "a fudge that breaks near 0 and 1": (
        "BinaryCrossEntropyFunction",
        "/ (a * (1 - a))",
        "/ (a * (1 - a)).clamp(min=1e-4)",
        ["dL/da", "near 0 and 1"],
    ),
    "logits clamped 'for stability'": (
        "SigmoidBinaryCrossEntropyFunction",
        "sigma = 1 / (1 + torch.exp(-z))",
        "sigma = 1 / (1 + torch.exp(-z.clamp(-10, 10)))",
        ["dL/dz", "±50"],
    ),
    "a forward changed": (
        "SoftmaxFunction",
        "a = e / e.sum(dim=-1, keepdim=True)",
        "a = e / e.sum()",
        ["forward", "a is wrong"],
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_typical_mistake_fails_its_own_row_only(tmp_path, mistake):
    name, old, new, words = MISTAKES[mistake]
    rows = _rows(check_file(_solution_with(tmp_path, old, new)))
    assert rows[name].status == "fail"
    for word in words:
        assert word in rows[name].message, (word, rows[name].message)
    others = {other: r.status for other, r in rows.items() if other != name}
    assert set(others.values()) == {"pass"}, others


def test_the_messages_say_where_and_by_how_much(tmp_path):
    rows = _rows(check_file(_solution_with(tmp_path, "g.sum(dim=0) if", "g.mean(dim=0) if")))
    message = rows["LinearFunction"].message
    assert message.startswith("dL/db is wrong: largest error ")
    assert " at index (" in message and "(yours " in message and ", right " in message
    assert "x (4, 3), W (5, 3), b (5,)" in message  # the shapes
    assert message.endswith("dL/db should be Σ_rows g (c,)")
    assert "(wrong in 2 more of the 4 cases)" in message  # all but the batch of one (and b None: no dL/db)
    rows = _rows(check_file(_solution_with(tmp_path, "grad_W = g.T @ x", "grad_W = x.T @ g")))
    assert rows["LinearFunction"].message.startswith("dL/dW has shape (3, 5) (transposed) but W has shape (5, 3)")
    assert rows["LinearFunction"].message.endswith("dL/dW should be gᵀ x (c, p)")


def test_the_wrong_number_of_gradients_is_named(tmp_path):
    rows = _rows(check_file(_solution_with(tmp_path, "return g * a * (1 - a)", "return g * a * (1 - a), None")))
    assert rows["SigmoidFunction"].status == "pass"  # a trailing None is what PyTorch accepts too
    path = _solution_with(tmp_path, "return grad_x, grad_W, grad_b", "return grad_x, grad_W")
    rows = _rows(check_file(path))
    assert rows["LinearFunction"].status == "fail"
    assert rows["LinearFunction"].message == (
        "backward returned 2 gradients, but forward takes 3 inputs (x, W, b): "
        "return (dL/dx, dL/dW, dL/db), one per input in that order"
    )
    rows = _rows(
        check_file(
            _solution_with(tmp_path, "return g * (sigma - y), g * -z, None", "return g * (sigma - y), g * -z, None, g")
        )
    )
    assert "returned 4 gradients" in rows["SigmoidBinaryCrossEntropyFunction"].message
    assert "(dL/dz, dL/dy, None)" in rows["SigmoidBinaryCrossEntropyFunction"].message
    assert sum(r.status == "pass" for r in rows.values()) == 8


def test_what_a_backward_raises_is_reported_with_its_line_and_the_others_are_checked(tmp_path):
    path = _solution_with(
        tmp_path, "        return g * (1 - a**2)\n", "        scale = 1 / 0\n        return g * (1 - a**2)\n"
    )
    line = path.read_text().splitlines().index("        scale = 1 / 0") + 1
    rows = _rows(check_file(path))
    assert rows["TanhFunction"].status == "fail"
    assert rows["TanhFunction"].message.startswith(
        f"{path}:{line}: backward raised ZeroDivisionError: division by zero"
    )
    assert "Traceback" not in rows["TanhFunction"].message
    assert [r.status for name, r in rows.items() if name != "TanhFunction"] == ["pass"] * 8


def test_an_error_in_a_helper_module_points_at_the_students_line(tmp_path):
    (tmp_path / "student_helpers_for_the_test.py").write_text("def local_gradient(a):\n    return a.nope\n")
    path = _solution_with(
        tmp_path, "import torch\n", "import torch\nfrom student_helpers_for_the_test import local_gradient\n"
    )
    path.write_text(path.read_text().replace("return g * a * (1 - a)", "return g * local_gradient(a)"))
    rows = _rows(check_file(path))
    line = path.read_text().splitlines().index("        return g * local_gradient(a)") + 1
    assert rows["SigmoidFunction"].message.startswith(f"{path}:{line}: backward raised AttributeError")


def test_something_else_than_a_function(tmp_path):
    path = _solution_with(tmp_path)
    path.write_text(path.read_text() + "\n\nReLUFunction = 3\n\n\ndef TanhFunction(z):\n    return z.tanh()\n")
    rows = _rows(check_file(path))
    assert rows["ReLUFunction"].status == rows["TanhFunction"].status == "fail"
    assert rows["ReLUFunction"].message == (
        "ReLUFunction is an object of type int, not a subclass of torch.autograd.Function"
    )
    assert rows["TanhFunction"].message == (
        "TanhFunction is an object of type function, not a subclass of torch.autograd.Function"
    )


def test_the_numerical_gradient_names_the_gradient_that_disagrees():
    # a backward that matches nnref's on the first call only: the direct comparison passes, the numerical one not
    from nnref.exercises import checking as C
    from nnref.formulas import by_name

    spec = by_name("SigmoidFunction")
    calls = []

    class SigmoidFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(torch.sigmoid(z))
            return torch.sigmoid(z)

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            (a,) = ctx.saved_tensors
            return g * a * (1 - a) * (1 if len(calls) == 1 else 2)

    check = C._Check(spec, "formula", set(), {"dL/dz": E.GradientReport("dL/dz", "pass")})
    case = next(c for c in C._cases(spec) if c.numerical)
    C._check_backward(check, SigmoidFunction, case)
    assert check.gradients["dL/dz"].passed
    C._check_numerical(check, SigmoidFunction, case)
    report = check.gradients["dL/dz"]
    assert report.status == "fail" and report.factor == 2.0
    assert report.error.startswith("the numerical gradient disagrees with your dL/dz")
    assert report.error.endswith("dL/dz should be g · a(1 − a), shaped like z")


# --------------------------------------------------------------------------------------------------
# Files that cannot be loaded: one line, file and line, no traceback
# --------------------------------------------------------------------------------------------------
def test_a_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import torch\n\n\nclass LinearFunction(torch.autograd.Function:\n    pass\n")
    with pytest.raises(StudentFileError) as info:
        load_functions(path)
    assert (info.value.path, info.value.line) == (str(path), 4)
    assert str(info.value).startswith(f"{path}:4: SyntaxError: ")
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_exception_while_importing_names_the_students_line(tmp_path):
    path = tmp_path / "raises.py"
    path.write_text("import torch\n\nSCALE = {'a': 1}\nHALF = SCALE['b']\n")
    with pytest.raises(StudentFileError) as info:
        load_functions(path)
    assert info.value.line == 4
    assert str(info.value) == f"{path}:4: KeyError: 'b' while importing it"
    reports = check_file(path)  # the grading's full report: every Function, none earned, the reason
    assert [r.name for r in reports] == list(NAMES)
    assert {(r.status, r.message, r.score) for r in reports} == {("not loaded", str(info.value), 0.0)}
    path.write_text("import torch\nimport no_such_module_for_the_test\n")
    with pytest.raises(StudentFileError, match=r":2: ModuleNotFoundError: No module named"):
        load_functions(path)
    with pytest.raises(StudentFileError, match="no such file") as info:
        load_functions(tmp_path / "nowhere.py")
    assert info.value.line is None


def test_helpers_next_to_the_file_import_and_sys_path_is_restored(tmp_path):
    import sys

    (tmp_path / "student_helpers_ok_for_the_test.py").write_text("def slope(a):\n    return a * (1 - a)\n")
    path = tmp_path / "uses_helpers.py"
    helper = "import torch\nfrom student_helpers_ok_for_the_test import slope\n"
    text = SOLUTION.read_text().replace("import torch\n", helper)
    path.write_text(text.replace("return g * a * (1 - a)", "return g * slope(a)"))
    before = list(sys.path)
    rows = _rows(check_file(path))
    assert sys.path == before
    assert [r.status for r in rows.values()] == ["pass"] * 9


# --------------------------------------------------------------------------------------------------
# only, JSON, the table
# --------------------------------------------------------------------------------------------------
def test_only_restricts_the_rows_in_the_lectures_order(tmp_path):
    reports = check_file(SOLUTION, only=["TanhFunction", "linear"])
    assert [r.name for r in reports] == ["LinearFunction", "TanhFunction"]
    assert [r.name for r in check_file(SOLUTION, only="sigmoid,SoftmaxFunction")] == [
        "SigmoidFunction",
        "SoftmaxFunction",
    ]
    with pytest.raises(ValueError, match="no exercise named 'Tahn'"):
        check_file(SOLUTION, only=["Tahn"])
    assert E.report_json(reports)["total"] == 2


def test_json_and_table(tmp_path):
    rows = check_file(_solution_with(tmp_path, "g * (1 - a**2)", "g * (1 - a)"))
    data = json.loads(json.dumps(E.report_json(rows)))
    assert list(data) == ["functions", "passed", "total"]
    assert (data["passed"], data["total"]) == (8, 9)
    assert [set(f) for f in data["functions"]] == [{"name", "status", "message", "score", "gradients"}] * 9
    assert data["functions"][4]["status"] == "fail" and data["functions"][4]["name"] == "TanhFunction"
    table = E.format_reports(rows).splitlines()
    assert table[0] == "| Function | status | message |"
    assert table[6].startswith("| TanhFunction | fail | dL/dz is wrong: ")
    assert table[-1] == "8 of 9 Functions pass"
    assert E.format_reports(rows[:1]).splitlines()[-1] == "1 of 1 Function passes"
    tanh = data["functions"][4]["gradients"]
    assert tanh == [
        {
            "name": "dL/dz",
            "status": "fail",
            "error": tanh[0]["error"],
            "factor": None,
            "case": "z (4, 5)",
            "failed": 5,
        }
    ]
    assert tanh[0]["error"].startswith("dL/dz is wrong: largest error ") and "1 − a²" in tanh[0]["error"]
    odd = E.FunctionReport("SigmoidFunction", "fail", "x | y\nz")  # a student's exception text, in one cell
    assert E.format_reports([odd]).splitlines()[2] == "| SigmoidFunction | fail | x \\| y / z |"


def test_check_function_checks_one_class():
    classes = load_functions(SOLUTION)
    report = check_function("SoftmaxCrossEntropyFunction", classes["SoftmaxCrossEntropyFunction"])
    assert report.passed and report.to_dict()["status"] == "pass" and report.score == 1.0
    with pytest.raises(ValueError, match="no exercise named"):
        check_function("Softmax", classes["SoftmaxCrossEntropyFunction"])
    with pytest.raises(ValueError, match="hints 'some'"):
        check_function("SoftmaxCrossEntropyFunction", classes["SoftmaxCrossEntropyFunction"], hints="some")


# --------------------------------------------------------------------------------------------------
# Hint levels: "where" and "none" hand out no formula
# --------------------------------------------------------------------------------------------------
def _answers() -> set[str]:
    """The key strings of the nine Functions' gradient formulas (nnref.formulas): each formula, each side of its
    "=", and each without its leading "g · " — those of three characters or more that no forward formula holds
    (a forward is the kit's, not an answer)."""
    from nnref.formulas import FORMULAS

    forwards = " ".join(f.forward for f in FORMULAS)
    keys = set()
    for formula in FORMULAS:
        for text, _ in formula.gradients.values():
            for side in (text, *text.split(" = ")):
                keys |= {side.strip(), side.strip().removeprefix("g · ")}
    return {key for key in keys if len(key) >= 3 and key not in forwards}


#: One wrong gradient in every Function (and both gradients of the binary cross-entropy).
EVERY_FUNCTION_WRONG = [
    ("grad_W = g.T @ x", "grad_W = 2 * g.T @ x"),
    ("return g * a * (1 - a)", "return g * a"),
    ("return a * (g - (g * a).sum(dim=-1, keepdim=True))", "return a * g"),
    ("return g * (z > 0)", "return g * (z >= 0) * 2"),
    ("g * (1 - a**2)", "g * (1 - a)"),
    ("g = g / len(y)", "pass"),
    ("grad_a = g * (a - y)", "grad_a = g * (y - a)"),
    ('scale = g / len(y) if ctx.reduction == "mean" else g', "scale = g"),
    ("g * (sigma - y)", "g * (z - y)"),
]


def test_each_hint_level_and_no_formula_in_where_or_none(tmp_path):
    path = _solution_with(tmp_path)
    text = path.read_text()
    for old, new in EVERY_FUNCTION_WRONG:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    old = "torch.log1p(-a).clamp(min=-100) - torch.log(a)"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "torch.log1p(-a).clamp(min=-100) + torch.log(a)"))
    answers = _answers()
    assert {"a(1 − a)", "softmax(z) − onehot(y)", "σ(z) − y", "gᵀ x", "1[z > 0]"} <= answers
    said = {}
    for hints in E.HINTS:
        reports = check_file(path, hints=hints)
        assert [r.status for r in reports] == ["fail"] * 9, [r.message for r in reports]
        said[hints] = json.dumps(E.report_json(reports), ensure_ascii=False) + E.format_reports(reports)
        said[hints] += json.dumps(E.gradescope_results(reports), ensure_ascii=False)
    assert [key for key in answers if key in said["formula"]], "formula: the formulas are shown"
    for hints in ("where", "none"):
        assert [key for key in answers if key in said[hints]] == [], hints
    where = {r.name: r for r in check_file(path, hints="where")}
    assert where["LinearFunction"].message.startswith("dL/dW is wrong: largest error")
    assert "yours is 2 × the right one" in where["LinearFunction"].message
    assert where["BinaryCrossEntropyFunction"].message.count("\n") == 1  # both of its wrong gradients
    assert "with a (4,), y (4,), reduction 'mean'" in where["BinaryCrossEntropyFunction"].message
    none = {r.name: r for r in check_file(path, hints="none")}
    assert none["LinearFunction"].message == "dL/dx: pass, dL/dW: fail, dL/db: pass"
    assert none["BinaryCrossEntropyFunction"].message == "dL/da: fail, dL/dy: fail"
    assert none["SigmoidFunction"].gradients[0].error == "" and none["SigmoidFunction"].gradients[0].status == "fail"


# --------------------------------------------------------------------------------------------------
# A student's file is the student's work
# --------------------------------------------------------------------------------------------------
CHEATS = {
    "imported": ("from nnref.functional import SigmoidFunction  # noqa: F401\n", "nnref's own"),
    "subclassed": (
        "import nnref.functional as NF\n\n\nclass SigmoidFunction(NF.SigmoidFunction):\n    pass\n",
        "subclasses nnref's SigmoidFunction",
    ),
    "copied by reference": (
        "import torch\nimport nnref.functional as NF\n\n\nclass SigmoidFunction(torch.autograd.Function):\n"
        "    forward = NF.SigmoidFunction.forward\n    setup_context = NF.SigmoidFunction.setup_context\n"
        "    backward = NF.SigmoidFunction.backward\n",
        "SigmoidFunction.forward is nnref's own",
    ),
    "nnref's backward called": (
        "import torch\nimport nnref.functional as NF\n\n\nclass SigmoidFunction(torch.autograd.Function):\n"
        "    @staticmethod\n    def forward(z):\n        return NF.SigmoidFunction.forward(z)\n\n"
        "    @staticmethod\n    def setup_context(ctx, inputs, output):\n        ctx.save_for_backward(output)\n\n"
        "    @staticmethod\n    def backward(ctx, g):\n        return NF.SigmoidFunction.backward(ctx, g)\n",
        "backward calls nnref's SigmoidFunction.backward",
    ),
    "torch.autograd.grad": (
        "    @staticmethod\n    def backward(ctx, g):\n        (z,) = ctx.saved_tensors\n"
        "        with torch.enable_grad():\n            z = z.detach().requires_grad_()\n"
        "            return torch.autograd.grad(torch.sigmoid(z), z, g)[0]\n",
        "backward calls torch.autograd.grad",
    ),
    ".backward()": (
        "    @staticmethod\n    def backward(ctx, g):\n        (z,) = ctx.saved_tensors\n"
        "        with torch.enable_grad():\n            z = z.detach().requires_grad_()\n"
        "            torch.sigmoid(z).backward(g)\n        return z.grad\n",
        "backward calls .backward()",
    ),
    "the watch taken away": (
        "    @staticmethod\n    def backward(ctx, g):\n        import sys\n\n        sys.setprofile(None)\n"
        "        (z,) = ctx.saved_tensors\n        with torch.enable_grad():\n"
        "            z = z.detach().requires_grad_()\n"
        "            return torch.autograd.grad(torch.sigmoid(z), z, g)[0]\n",
        "backward calls sys.setprofile",
    ),
    "torch.func": (
        "    @staticmethod\n    def backward(ctx, g):\n        (z,) = ctx.saved_tensors\n"
        "        _, vjp = torch.func.vjp(torch.sigmoid, z)\n        return vjp(g)[0]\n",
        "backward calls torch.func",
    ),
}

_AUTOGRAD_SIGMOID = (
    "import torch\n\n\nclass SigmoidFunction(torch.autograd.Function):\n    @staticmethod\n"
    "    def forward(ctx, z):\n        ctx.save_for_backward(z)\n        return torch.sigmoid(z)\n\n"
)


@pytest.mark.parametrize("cheat", CHEATS)
def test_nnrefs_functions_or_autograd_inside_backward_fail(tmp_path, cheat):
    text, said = CHEATS[cheat]
    if text.startswith("    @staticmethod"):
        text = _AUTOGRAD_SIGMOID + text
    path = tmp_path / "cheat.py"
    path.write_text(text)
    (report,) = check_file(path, only="sigmoid")
    assert report.status == "fail" and report.score == 0.0, report.message
    assert said in report.message, report.message
    for hints in ("where", "none"):  # why it fails is no hint: said at every level
        (report,) = check_file(path, only="sigmoid", hints=hints)
        assert said in report.message


def test_every_function_imported_from_nnref_fails_nine_times(tmp_path):
    path = tmp_path / "theirs.py"
    path.write_text(f"from nnref.functional import {', '.join(NAMES)}  # noqa: F401\n")
    reports = check_file(path)
    assert [r.status for r in reports] == ["fail"] * 9
    assert all("is nnref's own nnref.functional." in r.message for r in reports)


# --------------------------------------------------------------------------------------------------
# Every wrong backward fails, with all its wrong gradients
# --------------------------------------------------------------------------------------------------
WRONG_BACKWARDS = {
    "the upstream gradient changed in place": (
        "ReLUFunction",
        "return g * (z > 0)",
        "return g.mul_(z > 0)",
        "backward changed g in place",
    ),
    "a bias gradient when the bias is None": (
        "LinearFunction",
        "grad_b = g.sum(dim=0) if ctx.needs_input_grad[2] else None",
        "grad_b = g.sum(dim=0)",
        "backward returned a gradient for b, which was None",
    ),
    "a gradient for the integer labels": (
        "SoftmaxCrossEntropyFunction",
        "return grad_z * scale, None, None",
        "return grad_z * scale, y.float(), None",
        "for y, which is a tensor of torch.int64",
    ),
    "right for a batch of one only": (
        "LinearFunction",
        "grad_b = g.sum(dim=0) if ctx.needs_input_grad[2] else None",
        "grad_b = g[0] if ctx.needs_input_grad[2] else None",
        "dL/db is wrong",
    ),
    "right for one row only": (
        "SoftmaxFunction",
        "return a * (g - (g * a).sum(dim=-1, keepdim=True))",
        "return a * (g - (g * a).sum())",
        "dL/dz is wrong",
    ),
    "right for one reduction only": (
        "CrossEntropyFunction",
        '        if ctx.reduction == "mean":\n            g = g / len(y)\n',
        "        g = g / len(y)\n",
        "dL/da is wrong",
    ),
}


@pytest.mark.parametrize("wrong", WRONG_BACKWARDS)
def test_each_wrong_backward_fails_its_own_function(tmp_path, wrong):
    name, old, new, said = WRONG_BACKWARDS[wrong]
    rows = _rows(check_file(_solution_with(tmp_path, old, new)))
    assert rows[name].status == "fail" and said in rows[name].message, rows[name].message
    assert {other: r.status for other, r in rows.items() if other != name} == dict.fromkeys(set(NAMES) - {name}, "pass")


def test_every_wrong_gradient_is_reported_with_its_fields_and_partial_credit(tmp_path):
    path = _solution_with(tmp_path, "grad_W = g.T @ x", "grad_W = -(g.T @ x)")
    path.write_text(path.read_text().replace("g.sum(dim=0) if", "g.mean(dim=0) if"))
    (report,) = check_file(path, only="linear")
    assert report.status == "fail" and report.score == pytest.approx(1 / 3)
    lines = report.message.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["dL/dW", "dL/db"]
    grads = {g.name: g for g in report.gradients}
    assert grads["dL/dx"].passed and grads["dL/dx"].factor is None
    assert (grads["dL/dW"].status, grads["dL/dW"].factor, grads["dL/dW"].failed) == ("fail", -1.0, 5)
    assert (grads["dL/db"].status, grads["dL/db"].factor) == ("fail", 0.25)
    assert grads["dL/db"].case == "x (4, 3), W (5, 3), b (5,)"


# --------------------------------------------------------------------------------------------------
# Any file is graded: a hang, an exit, a crash, a memory hog cost their own Function only
# --------------------------------------------------------------------------------------------------
RUNAWAYS = {
    "loops forever": ("        while True:\n            pass\n", "took longer than 2 s"),
    "calls os._exit": ("        import os\n        os._exit(3)\n", "exit code 3"),
    "calls sys.exit": ("        import sys\n        sys.exit(4)\n", "backward called sys.exit(4)"),
    "crashes (segfault)": ("        import ctypes\n        ctypes.string_at(0)\n", "killed by SIGSEGV"),
    "allocates past the limit": ("        hog = torch.empty(2**31, dtype=torch.uint8)\n", "backward raised"),
}


@pytest.mark.parametrize("runaway", RUNAWAYS)
def test_a_runaway_backward_costs_only_its_own_function(tmp_path, runaway):
    code, said = RUNAWAYS[runaway]
    path = _solution_with(tmp_path, "        return g * (1 - a**2)\n", code + "        return g * (1 - a**2)\n")
    start = time.perf_counter()
    rows = _rows(check_file(path, timeout=2, memory=256 * 2**20))
    seconds = time.perf_counter() - start
    assert list(rows) == list(NAMES)  # the report is whole
    assert rows["TanhFunction"].status == "fail" and said in rows["TanhFunction"].message, rows["TanhFunction"].message
    assert [r.status for name, r in rows.items() if name != "TanhFunction"] == ["pass"] * 8
    assert seconds < 2 + 30, seconds  # within the time limit (and the others' checks)


def test_a_file_whose_import_hangs_still_gives_a_full_report(tmp_path):
    path = tmp_path / "hangs.py"
    path.write_text("import torch\nwhile True:\n    pass\n")
    reports = check_file(path, timeout=1)
    assert [r.name for r in reports] == list(NAMES)
    assert {r.status for r in reports} == {"not loaded"}
    assert "importing it took longer than 1 s" in reports[0].message


# --------------------------------------------------------------------------------------------------
# The kit hands out no answer; the documented Python API works in Otter-Grader's and nbgrader's cells
# --------------------------------------------------------------------------------------------------
def test_the_kit_contains_no_gradient_formula():
    answers = _answers()
    for name in E.KIT_FILES:
        text = E.kit_text(name)
        assert [key for key in answers if key in text] == [], name
    assert "a(1 − a)" in answers  # (what is searched for: the test can fail)


def _doc_cell(after: str) -> str:
    docs = (Path(__file__).parents[1] / "docs" / "exercises.md").read_text()
    start = docs.index("```python\n", docs.index(after)) + len("```python\n")
    return docs[start : docs.index("```", start)]


SIGMOID = """
class MySigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        a = torch.sigmoid(z)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return {body}
"""


@pytest.mark.parametrize("grader", ["*Otter-Grader*", "*nbgrader*"])
def test_the_documented_grader_cells_pass_a_right_answer_and_fail_a_wrong_one(grader, capsys):
    cell = _doc_cell(grader)
    for body, right in (("g * a * (1 - a)", True), ("g * (1 - a)", False)):
        namespace = {"torch": torch}
        exec(SIGMOID.format(body=body), namespace)  # noqa: S102  (the student's cell)
        capsys.readouterr()
        try:
            exec(cell, namespace)  # noqa: S102  (the teacher's test cell, as the docs give it)
            failed = None
        except AssertionError as exc:
            failed = str(exc)
        printed = capsys.readouterr().out.strip()
        if grader == "*Otter-Grader*":
            assert failed is None and (printed == "pass") == right, printed
            said = printed
        else:
            assert (failed is None) == right and printed == ""
            said = failed or ""
        if not right:
            assert said.startswith("dL/dz is wrong: largest error") and "a(1 − a)" not in said, said
