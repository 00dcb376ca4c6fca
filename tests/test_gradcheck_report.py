"""nnref.run.gradcheck_report: what ``nnref gradcheck`` prints and writes — the table of every Function, the Δ
sweep's table and its TensorBoard run, the cost table — laid out from nnref.gradcheck's numbers."""

from __future__ import annotations

from nnref.gradcheck import CheckResult, CostRow, SweepPoint
from nnref.run.gradcheck_report import cost_table, format_table, sweep_table, write_sweep
from nnref.run.markdown import markdown_table
from nnref.run.records import read_status


def test_a_markdown_table_has_a_header_a_rule_and_a_row_each():
    assert markdown_table(("a", "b"), [(1, 2), ("x", None)]).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| 1 | 2 |",
        "| x | None |",
    ]


def test_the_function_table_marks_each_failure_and_the_error_beneath():
    rows = [
        CheckResult("SigmoidFunction", True, True, 3e-9, 1e-6),
        CheckResult("TanhFunction", True, False, 2e-3, 1e-6, error="RuntimeError: boom"),
    ]
    lines = format_table(rows).splitlines()
    assert lines[2] == "| SigmoidFunction | pass | pass | 3.00e-09 |"
    assert lines[3] == "| TanhFunction | pass | FAIL | 2.00e-03 FAIL |"
    assert lines[4].startswith("|   error: RuntimeError: boom |")


def test_the_sweep_table_keeps_the_bottom_of_each_v(tmp_path):
    points = [SweepPoint("forward", "float64", d, e) for d, e in [(1e-4, 1e-4), (1e-8, 1e-8), (1e-12, 1e-4)]]
    points += [SweepPoint("central", "float64", 1e-5, 1e-10)]
    lines = sweep_table(points).splitlines()
    assert lines[2:] == ["| forward | float64 | 1.0e-08 | 1.0e-08 |", "| central | float64 | 1.0e-05 | 1.0e-10 |"]
    write_sweep(points, tmp_path, png=tmp_path / "sweep.png")
    assert read_status(tmp_path)["kind"] == "gradcheck-sweep" and (tmp_path / "sweep.png").stat().st_size > 0
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_the_cost_table_says_what_was_extrapolated():
    rows = [CostRow("softmax", 7850, 0.001, 2.5, 7850), CostRow("mlp", 636010, 0.004, 900.0, 1000)]
    lines = cost_table(rows).splitlines()
    assert lines[2] == "| softmax | 7,850 | 1.00 ms | 2.50 s | 2,500× |"
    assert lines[3] == "| mlp | 636,010 | 4.00 ms | 900.00 s (timed on 1,000 parameters, extrapolated) | 225,000× |"
