"""nnref.bench on tiny data: every section runs and reports side-by-side figures (no timing asserts)."""

from __future__ import annotations

import json
import math

from nnref.cli import main


def test_bench_quick_writes_every_section(tiny_mnist, tmp_path, capsys):
    assert main(["bench", "--data-root", str(tiny_mnist), "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for section in ("## functions", "## steps", "## loader", "## knn", "## accuracy", "## cost claim"):
        assert section in out
    (path,) = tmp_path.glob("bench-cpu-*.json")
    report = json.loads(path.read_text())
    names = [r["name"] for r in report["rows"]]
    assert sum(n.startswith("fwd+bwd") for n in names) == 9
    assert sum(n.startswith("train step") for n in names) == 6
    for r in report["rows"]:
        if r["name"].startswith(("fwd+bwd", "train step", "loader")):
            assert r["nnref"] > 0 and r["reference"] > 0 and math.isfinite(r["ratio"])
    (knn,) = [r for r in report["rows"] if r["name"].startswith("KNN")]
    assert knn["identical_predictions"] == 1.0 and knn["peak_memory_nnref_mib"] >= 0
    assert [c["n"] for c in report["cost"]] == [600, 600]  # sizes are capped at the tiny training set
    assert list(tmp_path.glob("cost-cpu-*.png")) and list(tmp_path.glob("tb-cpu-*"))


def test_bench_rejects_unknown_sections(capsys):
    assert main(["bench", "--only", "functions,gpu-magic"]) == 1
    assert "unknown bench sections" in capsys.readouterr().err
