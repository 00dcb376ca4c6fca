"""What a check of a student's file reports: one :class:`FunctionReport` per Function — its status, its message
in the hint level a teacher chose, and one :class:`GradientReport` per gradient — as JSON, as Gradescope's
``results.json``, or as the terminal's table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

#: What a Function's row can say: "not loaded" when the student's file could not be imported at all.
STATUSES = ("pass", "fail", "not implemented", "missing", "not loaded")

#: How much a failure says (``--hints``): the formula it should follow (self-study), where it is wrong (which
#: gradient, which case, by what factor) but no formula, or pass / fail per gradient only.
HINTS = ("formula", "where", "none")

#: Who sees a Gradescope test (``--visibility``), as Gradescope names it.
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


@dataclass
class GradientReport:
    """One gradient of a Function (``name`` "dL/dx"): ``status`` "pass" or "fail"; for a failure ``error`` (what
    is wrong, in the chosen hint level: empty for hints "none"), ``factor`` (yours = factor × the right one, when
    it is a multiple: 0.25 for a lost 1/n, −1 for a flipped sign; else None), ``case`` (the first case it was
    wrong in) and ``failed`` (in how many of the ``checked`` cases)."""

    name: str
    status: str
    error: str = ""
    factor: float | None = None
    case: str = ""
    failed: int = 0
    checked: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class FunctionReport:
    """One row of the check: a Function's name, its status (one of :data:`STATUSES`), a message (every failure,
    in the chosen hint level; for "not implemented" the line that raises), and its gradients.

    ``score`` is the share of the Function's points it earns: 1 when it passes, the share of its gradients that
    are right when only some are wrong (partial credit), 0 when anything else fails (forward, what backward
    returns or raises, a Function that is not the student's own, a crash or a time-out)."""

    name: str
    status: str
    message: str = ""
    cases: int = field(default=0, compare=False)  # how many cases the Function was checked on
    gradients: list[GradientReport] = field(default_factory=list)
    score: float = 0.0
    seconds: float = field(default=0.0, compare=False)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "score": self.score,
            "gradients": [
                {k: v for k, v in asdict(g).items() if k in ("name", "status", "error", "factor", "case", "failed")}
                for g in self.gradients
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FunctionReport:
        grads = [GradientReport(**g) for g in data.get("gradients", ())]
        return cls(data["name"], data["status"], data["message"], data.get("cases", 0), grads, data.get("score", 0.0))


def report_json(reports: Sequence[FunctionReport]) -> dict:
    """What an autograder reads: ``{"functions": [{"name", "status", "message", "score", "gradients": [{"name",
    "status", "error", "factor", "case", "failed"}, …]}, …], "passed": N, "total": T}`` (T = 9 unless the check was
    restricted with ``only``)."""
    return {
        "functions": [r.to_dict() for r in reports],
        "passed": sum(r.passed for r in reports),
        "total": len(reports),
    }


def points_for(names: Sequence[str], points: float | Mapping[str, float] | None = None) -> dict[str, float]:
    """Each Function's points: equal shares of ``points`` (a number; default 100), or ``points`` itself (a
    mapping of every name to its points)."""
    if points is None or isinstance(points, (int, float)):
        total = 100.0 if points is None else float(points)
        return {name: total / len(names) for name in names} if names else {}
    missing = [n for n in names if n not in points]
    if missing:
        raise ValueError(f"--points gives no points for {', '.join(missing)}")
    return {name: float(points[name]) for name in names}


def gradescope_results(
    reports: Sequence[FunctionReport],
    points: float | Mapping[str, float] | None = None,
    visibility: str = "visible",
    execution_time: float | None = None,
) -> dict:
    """Gradescope's ``results.json``: one test per Function (``name``, ``score``, ``max_score``, ``status``,
    ``output`` — the row's message — and ``visibility``), the total ``score`` and ``execution_time`` (seconds)."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r}: choose from {', '.join(VISIBILITIES)}")
    shares = points_for([r.name for r in reports], points)
    tests = []
    for number, r in enumerate(reports, 1):
        max_score = shares[r.name]
        tests.append(
            {
                "name": r.name,
                "number": str(number),
                "score": max_score * r.score,
                "max_score": max_score,
                "status": "passed" if r.passed else "failed",
                "output": f"{r.status}: {r.message}" if r.message else r.status,
                "visibility": visibility,
            }
        )
    results = {"score": sum(t["score"] for t in tests), "visibility": visibility, "tests": tests}
    if execution_time is not None:
        results["execution_time"] = max(0, round(execution_time))
    passed = sum(r.passed for r in reports)
    results["output"] = f"{passed} of {len(reports)} {_functions(len(reports))} pass"
    return results


def _functions(count: int) -> str:
    return "Function" if count == 1 else "Functions"


def format_reports(reports: Sequence[FunctionReport]) -> str:
    """The terminal's table: ``| Function | status | message |`` (markdown, like nnref's other tables), then a
    line "N of T Functions pass" ("1 of 1 Function passes")."""

    def cell(text: str) -> str:  # one line per wrong gradient, joined by " / "
        lines = (" ".join(line.split()) for line in text.splitlines())
        return " / ".join(line for line in lines if line).replace("|", "\\|")

    lines = ["| Function | status | message |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {cell(r.message)} |" for r in reports]
    passed, total = sum(r.passed for r in reports), len(reports)
    verb = "passes" if total == 1 else "pass"
    lines += ["", f"{passed} of {total} {_functions(total)} {verb}"]
    return "\n".join(lines)
