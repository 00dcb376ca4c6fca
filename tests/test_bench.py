"""nnref.bench on tiny data: one quick run of every section, then a test per section of what it reports
(side-by-side figures; no timing asserts)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os

import pytest
import torch
import torch.nn.functional as TF
from conftest import make_tiny_mnist

import nnref.functional as F
from nnref.bench import ORDER, SECTIONS, builtin_twin
from nnref.cli import main
from nnref.models import MLP, SoftmaxRegression


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One ``nnref bench --quick`` on tiny data (every section), its printed output and its JSON report; each test
    below reads one section of it."""
    out_dir, data = tmp_path_factory.mktemp("bench"), make_tiny_mnist(tmp_path_factory.mktemp("tiny") / "data")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(printed):
        env.delenv("NNREF_DATA_ROOT", raising=False)
        env.setenv("NNREF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nnref-cache"))
        code = main(["bench", "--data-root", str(data), "--quick", "--out", str(out_dir)])
    assert code == 0, printed.getvalue()[-2000:]
    (path,) = out_dir.glob("bench-cpu-*.json")
    return {"out": printed.getvalue(), "report": json.loads(path.read_text()), "dir": out_dir}


def _rows(quick, prefix: str) -> list[dict]:
    return [r for r in quick["report"]["rows"] if r["name"].startswith(prefix)]


def test_every_section_runs_and_prints_in_the_listed_order(quick):
    headings = [line.split(" (")[0][3:] for line in quick["out"].splitlines() if line.startswith("## ")]
    assert headings == list(ORDER) == list(SECTIONS)
    assert all(SECTIONS[name].doc for name in ORDER)  # each says what it compares and why
    assert quick["report"]["profile"] == "quick" and set(quick["report"]["sections"]) == set(ORDER)


def test_functions_section_times_each_function_beside_its_twin(quick):
    rows = _rows(quick, "fwd+bwd")
    assert len(rows) == 9 and len(_rows(quick, "floor: ")) == 1 + 9 + 9  # the identity; each vs textbook, built-in
    assert len(_rows(quick, "floor: fwd+bwd linear (1×10), nnref's call vs the textbook Function")) == 1
    assert all(r["nnref"] > 0 and r["reference"] > 0 and math.isfinite(r["ratio"]) for r in rows)


def test_training_section_times_steps_loops_and_accuracy(quick):
    steps = _rows(quick, "train step")
    assert len(steps) == 6 + 4 + 2  # eager steps, as plain loops too; compiled
    assert sum(r["name"].endswith(": a plain loop") for r in steps) == 4  # batch 128 and 512, both models
    assert len(_rows(quick, "time to accuracy")) == 3
    assert all(
        r["nnref"] > 0 and r["reference"] > 0 and math.isfinite(r["ratio"]) for r in steps + _rows(quick, "loader")
    )


def test_neighbours_section_agrees_with_faiss_and_sklearn(quick):
    knn = _rows(quick, "KNN k=3, 200 test × 600 train: nnref on bytes vs")
    refs = {r["name"].split(" vs ")[1] for r in knn}  # FAISS as installed, tuned where its kernels were not, sklearn
    assert {"FAISS IndexFlatL2 (as installed)", "scikit-learn brute force"} <= refs and len(refs) == len(knn)
    assert all(r["identical_predictions"] == 1.0 and r["identical_to_sklearn"] == 1.0 for r in knn)
    assert all(r["byte_product"] in ("int_mm", "float") and r["cpu_flags"] for r in knn)
    # 600 × 784 bytes and their keys; fitting them costs at most a few float copies of the records
    assert all(0.4 < r["records_mib"] < 0.5 and r["fit_peak_mib"] < 10 for r in knn)
    floats = _rows(quick, "KNN k=3, 200 test × 600 train: nnref on floats vs")
    assert len(floats) == len(knn) and all(r["identical_to_sklearn"] == 1.0 for r in floats)
    cost = quick["report"]["cost"]
    assert [c["n"] for c in cost] == [600, 600]  # sizes are capped at the tiny training set
    assert all(c["knn_bytes_memory_mib"] < c["knn_memory_mib"] / 3 for c in cost)  # a byte per pixel
    assert list(quick["dir"].glob("cost-cpu-*.png")) and list(quick["dir"].glob("tb-cpu-*"))


def test_scaling_section_runs_the_knn_job_under_torchrun(quick):
    scaling = ("MLP 784-800-10, one training epoch: torchrun", "KNN k=3, the test set")
    assert sum(r["name"].startswith(scaling) for r in quick["report"]["rows"]) == 1  # --quick: the KNN job alone


def test_classroom_section_plays_a_class_of_pages(quick):
    rows = quick["report"]["classroom"]  # one page alone (page by page, with the class), the three scenarios,
    # then the same set-up without and with the teacher's view open, twice each; then a class on /mnist
    classroom = [r for r in rows if "to_90_s_median" not in r]
    mnist = [r for r in rows if "to_90_s_median" in r]
    assert [r["pages"] for r in classroom] == [1, 1, 10, 10, 10, 10, 10, 10, 10]
    assert "batches of 10-30" in classroom[4]["name"]
    if os.environ.get("NNREF_REQUIRE_MNIST"):
        assert [r["pages"] for r in mnist] == [1, 3] and mnist[1]["mib_per_extra_page"] is not None
        assert all(r["received_min"] > 0 and r["foreign_frames"] == 0 and not r["errors"] for r in mnist)
    assert all(r["received_min"] > 0 for r in classroom)
    assert all(r["foreign_frames"] == 0 and not r["errors"] and r["server_cpu"] > 0 for r in classroom)
    watched = [r["teacher"] for r in classroom if "teacher" in r]
    assert len(watched) == 2 and all(w["tiles_min"] == 10 and w["updates_per_s"] > 0 for w in watched)


def test_lab_section_measures_the_page_in_chromium(quick):
    lab = _rows(quick, "lab: ")
    assert len(lab) == 5 and all(math.isfinite(r["nnref"]) for r in lab)
    (view,) = [r for r in lab if "backward pass view open" in r["name"]]  # the view's frame rate beside closed
    assert view["nnref"] > 0 and view["reference"] > 0
    assert all(r["nnref"] > 0 for r in lab if r["unit"] in ("fps", "ms"))  # a paused page's CPU may measure 0
    (one,) = [r for r in lab if "one page playing" in r["name"]]  # with what a frame costs the page itself
    assert one["page_draw_ms"] > 0 and one["pictures_ms"] > 0 and one["deeper_spirals_pictures_ms"] > 0


def test_digits_section_reads_digits_as_people_make_them(quick):
    renderings = _rows(quick, "accuracy on 60 test digits rendered as")
    assert len(renderings) == 3 and all(0 <= r["nnref"] <= 100 and 0 <= r["reference"] <= 100 for r in renderings)
    page = _rows(quick, "digit page: ")
    assert [r["strokes"] for r in page] == [3, 3] and all(0 < r["nnref"] <= r["slowest_ms"] for r in page)


def test_startup_section_sets_each_command_beside_its_target(quick):
    from nnref.bench.startup import TARGETS

    startup = {r["name"].split("(")[0].strip(): r for r in _rows(quick, "start-up: ")}
    assert set(startup) == {
        "start-up: nnref --help",
        "start-up: nnref train softmax to its first step",
        "start-up: nnref gradcheck",
        "start-up: nnref train softmax to its first step vs import torch + one SGD step",
        "start-up: nnref gradcheck --functions, a right file graded whole",
        "start-up: the same grading vs python -c 'import torch'",
    }
    bare = startup.pop("start-up: the same grading vs python -c 'import torch'")
    grading = startup["start-up: nnref gradcheck --functions, a right file graded whole"]
    # (the grading beside torch's import alone, timed in the same run: which is longer is the bench's figure, not a
    # rule — one run each in the quick profile, on two busy cores, put the import 3% above the grading)
    assert bare["nnref"] == grading["nnref"] and bare["reference"] > 0
    floor = startup.pop("start-up: nnref train softmax to its first step vs import torch + one SGD step")
    assert all(0 < r["nnref"] < 120 for r in startup.values())
    targets = {"start-up: nnref --help": "help", "start-up: nnref gradcheck": "gradcheck"}
    targets["start-up: nnref train softmax to its first step"] = "first step"
    targets["start-up: nnref gradcheck --functions, a right file graded whole"] = "grading"
    assert {name: r["reference"] for name, r in startup.items()} == {n: TARGETS[t] for n, t in targets.items()}
    assert floor["nnref"] == startup["start-up: nnref train softmax to its first step"]["nnref"]
    assert floor["reference"] > 0  # import torch + one SGD step, timed in the same run


def test_mnist_section_trains_pages_to_their_targets(quick):
    mnist = _rows(quick, "mnist page: ")
    assert len(mnist) == 6 and all(math.isfinite(r["nnref"]) for r in mnist)  # (the tiny digits reach each target)
    assert all(steps > 0 for steps in mnist[4]["steps_each"])  # two pages, each training


@pytest.mark.parametrize(
    "make",
    [
        lambda: SoftmaxRegression(784, 10),
        lambda: MLP(784, 800, 10),
        lambda: MLP(784, (30, 20), 10, "tanh"),
        lambda: MLP(784, 16, 10, "sigmoid"),
    ],
)
def test_the_builtin_twin_computes_the_same_as_the_nnref_model(make):
    """The bench's reference is fair: same outputs, loss and gradients on the same batch."""
    torch.manual_seed(0)
    model = make()
    twin = builtin_twin(model)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 784, generator=g), torch.randint(0, 10, (32,), generator=g)
    ours, ref = model(x), twin(x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    loss_ours, loss_ref = F.softmax_cross_entropy(ours, y), TF.cross_entropy(ref, y)
    torch.testing.assert_close(loss_ours, loss_ref)
    loss_ours.backward()
    loss_ref.backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert p.shape == q.shape
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)


def test_a_diverged_page_is_counted_apart_from_the_class_s_figures():
    """A page whose training diverged stops (as the page says) and gets no more frames: the class's frames/s,
    epochs/s and fairness are the other pages', and the row says how many diverged."""
    from nnref.bench.classroom import PageStats, format_classroom, page_figures

    going = [PageStats({}, frames=200, received=201, epochs=100.0, seconds=10.0) for _ in range(3)]
    stopped = PageStats({}, frames=5, received=6, epochs=1.0, seconds=10.0, diverged=True)
    row = page_figures([*going, stopped], cpu=1.0, rss=2**30)
    assert (row["fps_min"], row["epochs_per_s_min"], row["fair"], row["diverged"]) == (20.0, 10.0, True, 1)
    table = format_classroom([{"name": "x", **row, "chromium_fps": None}])
    assert "1 diverged: frames/s, epochs/s and fair over the others" in table
