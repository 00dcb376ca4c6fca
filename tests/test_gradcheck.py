"""nnref.gradcheck: the lecture's numerical gradient, and the `nnref gradcheck` table."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

import nnref.gradcheck as G
from nnref.cli import main
from nnref.gradcheck import check_functions, numerical_gradient, relative_error
from nnref.run.gradcheck_report import format_table

D = torch.float64


def test_forward_difference_is_the_slides_formula():
    # L(w) = w², dL/dw = 2w; the forward difference (L(w+Δ) − L(w))/Δ = 2w + Δ exactly
    w = torch.tensor([3.0], dtype=D)
    (g,) = numerical_gradient(lambda w: (w**2).sum(), (w,), delta=1e-3, method="forward")
    assert g.item() == pytest.approx(6.0 + 1e-3, abs=1e-9)
    (g,) = numerical_gradient(lambda w: (w**2).sum(), (w,), delta=1e-3, method="central")
    assert g.item() == pytest.approx(6.0, abs=1e-9)
    assert w.item() == 3.0  # inputs untouched


def test_numerical_gradient_per_input_and_none_for_labels():
    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(3, 4, generator=g, dtype=D), torch.randn(2, 4, generator=g, dtype=D)
    y = torch.tensor([0, 1, 1])
    from nnref.functional import linear, softmax_cross_entropy

    def loss(x, W, y):
        return softmax_cross_entropy(linear(x, W), y)

    xs, Ws = x.clone().requires_grad_(), W.clone().requires_grad_()
    loss(xs, Ws, y).backward()
    gx, gW, gy = numerical_gradient(loss, (x, W, y), method="central")
    assert gy is None
    assert relative_error(xs.grad, gx) < 1e-7 and relative_error(Ws.grad, gW) < 1e-7
    gx_f, gW_f, _ = numerical_gradient(loss, (x, W, y), method="forward")
    assert relative_error(Ws.grad, gW_f) < 1e-4  # O(Δ) error


def test_numerical_gradient_rejects_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        numerical_gradient(lambda w: w.sum(), torch.ones(1), method="backward")
    with pytest.raises(ValueError, match="scalar"):
        numerical_gradient(lambda w: w * 2, torch.ones(2))
    with pytest.raises(ValueError, match="delta"):
        numerical_gradient(lambda w: w.sum(), torch.ones(1), delta=0)


def test_every_function_passes_all_three_checks():
    results = check_functions()
    assert {r.name for r in results} == set(G.CASES)
    assert len(results) == 9
    for r in results:
        assert r.passed, (r.name, r.error, r.max_rel_error)
        assert r.max_rel_error < 1e-6


def test_a_wrong_backward_is_caught(monkeypatch):
    """The table is not a rubber stamp: a sigmoid whose backward forgets (1 − a) fails every check."""
    from nnref import functional as F

    class BrokenSigmoid(F.SigmoidFunction):
        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * a  # wrong: da/dz = a(1 − a)

    monkeypatch.setitem(
        G.CASES, "SigmoidFunction", dataclasses.replace(G.CASES["SigmoidFunction"], plain=BrokenSigmoid.apply)
    )
    row = next(r for r in check_functions() if r.name == "SigmoidFunction")
    assert not row.gradcheck and not row.passed and row.max_rel_error > 1e-2
    assert "FAIL" in format_table([row])
    assert main(["gradcheck"]) == 1


def test_cli_prints_the_table_and_exits_zero(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "| Function | gradcheck | gradgradcheck | max relative error vs numerical gradient |" in out
    for name in G.CASES:
        assert f"| {name} | pass | pass |" in out
    assert "9 passed, 0 failed" in out


def test_script_runs_the_same_table():
    proc = subprocess.run([sys.executable, "scripts/gradcheck.py"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "SoftmaxCrossEntropyFunction | pass | pass" in proc.stdout


# --------------------------------------------------------------------------------------------------
# The lecture's "inaccurate" and "slow", measured
# --------------------------------------------------------------------------------------------------
def test_delta_sweep_shows_the_v_shapes():
    points = G.delta_sweep(deltas=[1e-12, 1e-9, 1e-8, 1e-7, 1e-6, 1e-4, 1e-2, 1e-1])
    err = {(p.method, p.dtype, p.delta): p.error for p in points}
    # truncation: the forward difference errs ∝ Δ, the central one ∝ Δ² (much less at the same large Δ)
    assert err["forward", "float64", 1e-1] > 10 * err["central", "float64", 1e-1]
    assert err["forward", "float64", 1e-1] > 100 * err["forward", "float64", 1e-6]
    # rounding: a Δ far below float32's resolution is lost entirely; in float64 it only costs accuracy
    assert err["forward", "float32", 1e-12] == 1.0
    assert err["central", "float64", 1e-12] > 100 * err["central", "float64", 1e-6]
    best = {(p.method, p.dtype): p for p in G.best_deltas(points)}
    assert best["central", "float64"].error < 1e-7 and best["forward", "float64"].error < 1e-5
    assert best["central", "float32"].delta > best["central", "float64"].delta  # float32 wants a larger Δ


def test_gradcheck_sweep_cli_writes_picture_tensorboard_and_table(tmp_path, capsys):
    png = tmp_path / "sweep.png"
    assert (
        main(
            [
                "gradcheck",
                "--sweep",
                "--png",
                str(png),
                "--logdir",
                str(tmp_path),
                "--json",
                str(tmp_path / "sweep.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| central | float64 |" in out and "| forward | float32 |" in out
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] > 600
    assert list((tmp_path / "gradcheck-sweep").glob("events.out.tfevents.*"))


def test_numerical_gradient_costs_one_forward_per_parameter(capsys):
    rows = G.numerical_cost(batch=8, mlp_sample=50)
    assert [r.parameters for r in rows] == [785, 7850, 636010]
    assert [r.measured_parameters for r in rows] == [785, 7850, 50]
    assert all(r.ratio > 10 for r in rows)  # hundreds of forward passes against one backward pass
    assert rows[2].numerical_seconds > rows[0].numerical_seconds
