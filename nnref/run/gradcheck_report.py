"""What ``nnref gradcheck`` reports: the table of every Function, the Δ sweep's table and its TensorBoard run,
and the cost of a numerical gradient as a table.  The numbers come from :mod:`nnref.gradcheck`, the lecture's
gradient checking; this module only lays them out and writes them where people read them."""

from __future__ import annotations

from collections.abc import Sequence

from ..gradcheck import CheckResult, CostRow, SweepPoint, best_deltas
from .markdown import markdown_table

__all__ = ["format_table", "sweep_table", "write_sweep", "cost_table"]


def format_table(results: Sequence[CheckResult]) -> str:
    """A markdown table: Function | gradcheck | gradgradcheck | max relative error vs numerical gradient."""
    mark = {True: "pass", False: "FAIL"}
    rows = []
    for r in results:
        err = f"{r.max_rel_error:.2e}" + ("" if r.max_rel_error <= r.tolerance else " FAIL")
        rows.append((r.name, mark[r.gradcheck], mark[r.gradgradcheck], err))
        if r.error:
            rows.append((f"  error: {r.error}", "", "", ""))
    return markdown_table(("Function", "gradcheck", "gradgradcheck", "max relative error vs numerical gradient"), rows)


def sweep_table(points: Sequence[SweepPoint]) -> str:
    """The bottom of each V as a markdown table: the best Δ per difference and dtype, and its error."""
    return markdown_table(
        ("difference", "dtype", "best Δ", "max relative error there"),
        [(p.method, p.dtype, f"{p.delta:.1e}", f"{p.error:.1e}") for p in best_deltas(points)],
    )


def write_sweep(points: Sequence[SweepPoint], run_dir, png=None) -> None:
    """The sweep as a run ``nnref runs`` lists and TensorBoard shows: the Δ curves (Images) and the best-Δ table
    (Text) under ``run_dir``; with ``png``, the picture as a PNG file too."""
    from .. import viz
    from .records import open_writer, write_status

    fig = viz.delta_sweep_figure(points)
    with open_writer(run_dir) as writer:
        writer.add_figure("gradcheck/delta_sweep", fig, 0, close=False)
        writer.add_text("gradcheck/best_delta", sweep_table(points), 0)
    write_status(run_dir, "gradcheck-sweep", "finished", message="best Δ per difference and dtype")
    if png:
        viz.save_figure(fig, png, dpi=110)


def cost_table(rows: Sequence[CostRow]) -> str:
    """One numerical gradient against one backward pass, per model, as a markdown table."""
    cells = []
    for r in rows:
        how = (
            ""
            if r.measured_parameters == r.parameters
            else f" (timed on {r.measured_parameters:,} parameters, extrapolated)"
        )
        cells.append(
            (
                r.model,
                f"{r.parameters:,}",
                f"{r.backward_seconds * 1e3:.2f} ms",
                f"{r.numerical_seconds:,.2f} s{how}",
                f"{r.ratio:,.0f}×",
            )
        )
    return markdown_table(
        ("model", "parameters", "one backward pass", "one numerical gradient (forward differences)", "ratio"), cells
    )
