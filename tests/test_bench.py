"""nnref.bench on tiny data: every section runs and reports side-by-side figures (no timing asserts)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as TF

import nnref.functional as F
from nnref.bench import ORDER, SECTIONS, builtin_twin
from nnref.cli import main
from nnref.models import MLP, SoftmaxRegression


def test_bench_quick_writes_every_section(tiny_mnist, tmp_path, capsys):
    assert main(["bench", "--data-root", str(tiny_mnist), "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    headings = [line.split(" (")[0][3:] for line in out.splitlines() if line.startswith("## ")]
    assert headings == list(ORDER) == list(SECTIONS)  # every section, printed in the order they are listed
    assert all(SECTIONS[name].doc for name in ORDER)  # each says what it compares and why
    (path,) = tmp_path.glob("bench-cpu-*.json")
    report = json.loads(path.read_text())
    names = [r["name"] for r in report["rows"]]
    assert sum(n.startswith("fwd+bwd") for n in names) == 9
    assert sum(n.startswith("floor: ") for n in names) == 10
    assert sum(n.startswith("train step") for n in names) == 6 + 4 + 2  # eager steps, as plain loops too; compiled
    assert sum(n.endswith(": a plain loop") for n in names) == 4  # batch 128 and 512, both models
    assert sum(n.startswith("time to accuracy") for n in names) == 3
    scaling = ("MLP 784-800-10, one training epoch: torchrun", "KNN k=3, the test set")
    assert sum(n.startswith(scaling) for n in names) == 1  # --quick runs the KNN job alone
    for r in report["rows"]:
        if r["name"].startswith(("fwd+bwd", "train step", "loader")):
            assert r["nnref"] > 0 and r["reference"] > 0 and math.isfinite(r["ratio"])
    knn = [r for r in report["rows"] if r["name"].startswith("KNN k=3, 200 test × 600 train: nnref on bytes vs")]
    refs = {r["name"].split(" vs ")[1] for r in knn}  # FAISS as installed, tuned where its kernels were not, sklearn
    assert {"FAISS IndexFlatL2 (as installed)", "scikit-learn brute force"} <= refs and len(refs) == len(knn)
    assert all(r["identical_predictions"] == 1.0 and r["identical_to_sklearn"] == 1.0 for r in knn)
    assert all(r["byte_product"] in ("int_mm", "float") and r["cpu_flags"] for r in knn)
    assert all(0.4 < r["records_mib"] < 0.5 and r["fit_peak_mib"] >= 0 for r in knn)  # 600 × 784 bytes and keys
    floats = [r for r in report["rows"] if r["name"].startswith("KNN k=3, 200 test × 600 train: nnref on floats vs")]
    assert len(floats) == len(knn) and all(r["identical_to_sklearn"] == 1.0 for r in floats)
    assert [c["n"] for c in report["cost"]] == [600, 600]  # sizes are capped at the tiny training set
    assert all(c["knn_bytes_memory_mib"] < c["knn_memory_mib"] / 3 for c in report["cost"])  # a byte per pixel
    assert report["profile"] == "quick" and set(report["sections"]) == set(ORDER)
    assert list(tmp_path.glob("cost-cpu-*.png")) and list(tmp_path.glob("tb-cpu-*"))
    lab = [r for r in report["rows"] if r["name"].startswith("lab: ")]
    assert len(lab) == 5 and all(math.isfinite(r["nnref"]) for r in lab)
    (view,) = [r for r in lab if "backward pass view open" in r["name"]]  # the view's frame rate beside closed
    assert view["nnref"] > 0 and view["reference"] > 0
    assert all(r["nnref"] > 0 for r in lab if r["unit"] in ("fps", "ms"))  # a paused page's CPU may measure 0
    renderings = [r for r in report["rows"] if r["name"].startswith("accuracy on 60 test digits rendered as")]
    assert len(renderings) == 3 and all(0 <= r["nnref"] <= 100 and 0 <= r["reference"] <= 100 for r in renderings)
    page = [r for r in report["rows"] if r["name"].startswith("digit page: ")]
    assert [r["strokes"] for r in page] == [3, 3] and all(0 < r["nnref"] <= r["slowest_ms"] for r in page)
    startup = {r["name"].split("(")[0].strip(): r for r in report["rows"] if r["name"].startswith("start-up: ")}
    assert set(startup) == {
        "start-up: nnref --help",
        "start-up: nnref train softmax to its first step",
        "start-up: nnref gradcheck",
        "start-up: nnref train softmax to its first step vs import torch + one SGD step",
    }
    floor = startup.pop("start-up: nnref train softmax to its first step vs import torch + one SGD step")
    assert all(0 < r["nnref"] < 120 and r["reference"] in (0.5, 2.0, 3.0) for r in startup.values())
    assert floor["nnref"] == startup["start-up: nnref train softmax to its first step"]["nnref"]
    assert floor["reference"] > 0
    mnist = [r for r in report["rows"] if r["name"].startswith("mnist page: ")]
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
