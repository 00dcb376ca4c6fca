"""notebooks/lecture.ipynb: committed without outputs, and run top to bottom here (as CI does) with nbclient, once for
the module; each exercise's check says "right" for correct answers and "not yet" for wrong ones — the checks can
fail — and a clean run shows what its text says: §1's cost grows as the text claims, no warning, no stray value, no
title over another."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import real_mnist_root

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "lecture.ipynb"

#: For each exercise: correct answers, wrong ones, and the check that judges them.
EXERCISES = {
    "the vote": (
        (
            """
def answer(labels):
    counts = {}
    for c in labels:
        counts[c] = counts.get(c, 0) + 1
    best = max(counts.values())
    return min(c for c, n in counts.items() if n == best)
""",
        ),
        ("answer = lambda labels: labels[0]",),
        "check_vote(answer)",
    ),
    "twenty heads": (
        ("answer = (-20 * math.log(0.5), -20 * math.log(0.8))",),
        ("answer = (20 * 0.5, 20 * 0.8)",),
        "check_twenty_heads(*answer)",
    ),
    "the neuron's gradient": (
        (
            """
def answer(X, y, w, b):
    a = torch.sigmoid(X @ w + b)
    return X.T @ (a - y) / len(y), (a - y).mean()
""",
        ),
        (
            """
def answer(X, y, w, b):
    a = torch.sigmoid(X @ w + b)
    return X.T @ (y - a) / len(y), (y - a).mean()
""",
        ),
        "check_neuron_gradient(answer)",
    ),
    "the central difference": (
        (
            # on copies of w
            """
def answer(f, w, delta=1e-6):
    out = torch.zeros_like(w)
    for i in range(len(w)):
        up, down = w.clone(), w.clone()
        up[i] += delta
        down[i] -= delta
        out[i] = (f(up) - f(down)) / (2 * delta)
    return out
""",
            # the textbook's, in place: up by Δ, down by 2Δ, back up by Δ (w[1] ends 2.2e-16 off: rounding)
            """
def answer(f, w, delta=1e-6):
    out = torch.zeros_like(w)
    for i in range(len(w)):
        w[i] += delta
        up = f(w)
        w[i] -= 2 * delta
        down = f(w)
        w[i] += delta
        out[i] = (up - down) / (2 * delta)
    return out
""",
        ),
        (
            # the forward difference, and w left nudged
            """
def answer(f, w, delta=1e-6):
    out = torch.zeros_like(w)
    for i in range(len(w)):
        base = f(w)
        w[i] += delta
        out[i] = (f(w) - base) / delta
    return out
""",
            # the right numbers, but w is left Δ below where it was in its last element
            """
def answer(f, w, delta=1e-6):
    base = w.clone()
    out = torch.zeros_like(w)
    for i in range(len(w)):
        w.copy_(base)
        w[i] += delta
        up = f(w)
        w.copy_(base)
        w[i] -= delta
        out[i] = (up - f(w)) / (2 * delta)
    return out
""",
        ),
        "check_central_difference(answer)",
    ),
    "your sigmoid's backward": (
        (
            """
class answer(torch.autograd.Function):
    forward = MySigmoid.forward

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * a * (1 - a)
""",
        ),
        (
            # the derivative of tanh's, the classic slip: the checker names dL/dz and its formula
            """
class answer(torch.autograd.Function):
    forward = MySigmoid.forward

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * (1 - a * a)
""",
        ),
        "check_my_sigmoid(answer)",
    ),
}

#: §7's training on a student's backward, run again after the notebook with a right and a sign-flipped one.
TRAIN_WITH = {
    "right": "return g * a * (1 - a)",
    "sign flipped": "return -g * a * (1 - a)",
}
STUDENT_SIGMOID = """
class MySigmoid(torch.autograd.Function):
    forward = staticmethod(MySigmoid.forward)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        {body}
"""

#: A row of §1's cost cell: n, the milliseconds of 100 predictions, the model's memory.
ROW = r"n = +([\d,]+): +([\d.]+) ms, memory +([\d.]+) MiB"

#: Run after §8's figure: every text of it (titles, labels) drawn, and the pairs whose boxes overlap printed.
OVERLAP_PROBE = """
from itertools import combinations
import matplotlib.text
fig.canvas.draw()
texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
print("texts drawn:", len(boxes))
print("overlapping texts:", [(a, b) for (a, box_a), (b, box_b) in combinations(boxes, 2) if box_a.overlaps(box_b)])
"""


def _notebook() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def test_the_notebook_is_committed_without_outputs_and_follows_the_lecture():
    nb = _notebook()
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    headings = [
        line
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("## ")
    ]
    order = [
        "neighbours",
        "neuron",
        "cross-entropy",
        "gradient descent",
        "chain rule",
        "gradient checking",
        "backward yourself",
        "softmax regression",
        "fully connected",
        "next",
    ]
    assert len(headings) == len(order) and all(w in h.lower() for w, h in zip(order, headings)), headings
    exercises = [c for c in code if "exercise" in c.get("metadata", {}).get("tags", [])]
    assert len(exercises) == len(EXERCISES)


def test_section_7_asks_for_the_backward_without_printing_it_and_tells_the_honest_lesson():
    """The σ backward is not shown above the exercise that asks for it, and §7 says that a wrong gradient can
    still train — only the check finds it."""
    cells = _notebook()["cells"]
    start = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## 7."))
    exercise = next(i for i in range(start, len(cells)) if "exercise" in cells[i].get("metadata", {}).get("tags", []))
    above = "".join("".join(c["source"]) for c in cells[start : exercise + 1])
    for answer in ("a(1 − a)", "a * (1 - a)", "a(1-a)", "(1 − a)a", "σ(z)(1 − σ(z))"):
        assert answer not in above, answer
    section = "".join("".join(c["source"]) for c in cells[start : start + 6])
    assert "A wrong\ngradient can still train; only the check finds it." in section
    assert "A wrong backward trains a wrong line" not in section


def _printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def _source_index(cells, snippet: str) -> int:
    return next(i for i, c in enumerate(cells) if snippet in c.source)


@pytest.fixture(scope="module")
def run():
    """The notebook executed top to bottom once, with each exercise's answers appended (``run.answers[(name,
    verdict)]``: the cells that judge them) and :data:`OVERLAP_PROBE` right after §8's figure."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(_source_index(nb.cells, "hidden_outputs") + 1, nbformat.v4.new_code_cell(OVERLAP_PROBE.strip()))
    answers = {}
    for name, (rights, wrongs, judge) in EXERCISES.items():
        for verdict, given in (("right", rights), ("wrong", wrongs)):
            for answer in given:
                answers.setdefault((name, verdict), []).append(len(nb.cells))
                nb.cells.append(nbformat.v4.new_code_cell(f"{answer.strip()}\n{judge}"))
    training = nb.cells[_source_index(nb.cells, "with use_functions(")].source
    for name, body in TRAIN_WITH.items():
        answers[("train", name)] = len(nb.cells)
        nb.cells.append(nbformat.v4.new_code_cell(STUDENT_SIGMOID.format(body=body).strip() + "\n\n" + training))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNREF_DATA_ROOT", str(real_mnist_root()))
        NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
            allow_errors=False,
        ).execute()
    return SimpleNamespace(cells=nb.cells, answers=answers, text="\n".join(_printed(c) for c in nb.cells))


@pytest.mark.mnist
def test_the_notebook_runs_top_to_bottom_and_its_checks_judge_answers(run):
    for name in EXERCISES:  # as committed, each exercise waits for its answer …
        assert f"✗ not yet: {name}" in run.text
        for i in run.answers[(name, "right")]:  # … right ones pass …
            assert f"✓ right: {name}" in _printed(run.cells[i]), (name, run.cells[i].source, _printed(run.cells[i]))
        for i in run.answers[(name, "wrong")]:  # … wrong ones do not
            assert f"✗ not yet: {name}" in _printed(run.cells[i]), (name, run.cells[i].source, _printed(run.cells[i]))
    softmax = float(re.search(r"one epoch in [\d.]+ s: test accuracy ([\d.]+)%", run.text).group(1))
    mlp = float(re.search(r"test accuracy after one epoch: ([\d.]+)%", run.text).group(1))
    assert softmax >= 90 and mlp >= 94, (softmax, mlp)  # one epoch each (softmax: 91.0-91.4% over seeds 0-5)
    images = sum(
        o.output_type in ("display_data", "execute_result") and "image/png" in o.data
        for c in run.cells
        for o in c.get("outputs", [])
    )
    assert images >= 8  # the plots, inline


@pytest.mark.mnist
def test_the_cost_cell_shows_the_growth_its_text_claims(run):
    """§1: the text says what 1,000 points more cost in memory; that their time agrees from one size to the next
    within a tolerance it states (a straight line in n: O(p·n)); and that multiplying n by some factor multiplies the
    memory by as much, the time by less.  The numbers the cell prints must bear all of it out."""
    heading = next(i for i, c in enumerate(run.cells) if c.cell_type == "markdown" and "KNN's cost" in c.source)
    claim = " ".join(run.cells[heading].source.split())
    memory = re.search(r"every 1,000 points more cost the same: ([\d.]+) MiB", claim)
    tolerance = re.search(r"within (\d+)%", claim)
    factor = re.search(r"multiply n by (\d+) and the memory grows \1×, the time less than \1×", claim)
    assert memory and tolerance and factor, f"the text states no cost per point, tolerance or growth: {claim!r}"
    printed = next((_printed(c) for c in run.cells[heading:] if "points more cost" in _printed(c)), "")
    rows = [(int(n.replace(",", "")), float(ms), float(mib)) for n, ms, mib in re.findall(ROW, printed)]
    steps = [tuple(map(float, m)) for m in re.findall(r"1,000 points more cost ([\d.]+) ms and ([\d.]+) MiB", printed)]
    assert len(rows) >= 3 and len(steps) == len(rows) - 1, printed
    for (n0, ms0, mib0), (n1, ms1, mib1) in zip(rows, rows[1:]):
        assert n1 == int(factor.group(1)) * n0, printed
        assert mib1 / mib0 == pytest.approx(n1 / n0, rel=0.01) and ms1 / ms0 < n1 / n0, printed
    for ms, mib in steps:
        assert mib == pytest.approx(float(memory.group(1)), rel=0.01), printed
        assert ms == pytest.approx(steps[0][0], rel=int(tolerance.group(1)) / 100), printed


@pytest.mark.mnist
def test_a_clean_run_shows_no_warning_and_no_stray_value(run):
    """What a student sees: no warning (nothing on stderr), no True/False left by a check, and every figure shown
    as a picture (``display_data``), never returned as a cell's value (``<Figure …>`` text beside it)."""
    outputs = [(i, o) for i, c in enumerate(run.cells) for o in c.get("outputs", [])]
    stderr = [(i, o.text[:200]) for i, o in outputs if o.output_type == "stream" and o.name == "stderr"]
    values = [(i, o.data.get("text/plain", "")) for i, o in outputs if o.output_type == "execute_result"]
    stray = [(i, v) for i, v in values if v in ("True", "False") or v.startswith("<Figure")]
    assert stderr + stray == []


@pytest.mark.mnist
def test_the_hidden_layer_figure_titles_do_not_overlap(run):
    """§8: every text of the figure (titles, labels) clear of every other."""
    printed = _printed(run.cells[_source_index(run.cells, "overlapping texts")])
    assert int(re.search(r"texts drawn: (\d+)", printed).group(1)) >= 8, printed
    assert "overlapping texts: []" in printed, printed


@pytest.mark.mnist
def test_the_neuron_trains_on_the_students_backward(run):
    """§7: as committed (no backward written) the neuron trains on nnref's sigmoid and says so; on a right backward
    it learns the blobs, on a sign-flipped one it climbs the loss instead — proof that the student's code ran."""
    accuracy = r"the neuron trained on (.*?) sigmoid's backward: training accuracy ([\d.]+)%"
    committed = re.search(accuracy, run.text)
    assert committed and committed.group(1).startswith("nnref's"), run.text[-2000:]
    right = re.search(accuracy, _printed(run.cells[run.answers[("train", "right")]]))
    flipped = re.search(accuracy, _printed(run.cells[run.answers[("train", "sign flipped")]]))
    assert right.group(1) == flipped.group(1) == "your"
    assert float(right.group(2)) >= 95 and float(flipped.group(2)) <= 20, (right.group(0), flipped.group(0))
    wrong = re.search(r"σ′ taken as 1 − a: training accuracy ([\d.]+)% all the same; the check says: (\w+)", run.text)
    assert wrong and float(wrong.group(1)) >= 95 and wrong.group(2) == "fail", run.text[-2000:]
