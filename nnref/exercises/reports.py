"""What a check of a student's file reports: one :class:`FunctionReport` per Function, as JSON or as the
terminal's table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

STATUSES = ("pass", "fail", "not implemented", "missing")


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
