"""The Functions one by one: the floor of what any custom Function costs, and each Function of the formulas
against its built-in twin."""

from __future__ import annotations

import types

import torch

from .._dispatch import Function
from ..formulas import FORMULAS, Formula
from .core import Context, interleaved, row, section, side_by_side

__all__ = ["bench_functions", "bench_floor", "textbook"]


def _fwd_bwd(call, inputs):
    """A timed call: the forward of ``call`` on fresh leaves of ``inputs`` and the backward of its sum."""

    def run():
        out = call(*inputs)
        out.backward(torch.ones_like(out))

    return run


def _leaves(entry: Formula, inputs):
    return [t.detach().clone().requires_grad_(g) for t, g in zip(inputs, entry.grads)]


def _shape(entry: Formula) -> str:
    n, c, p = entry.bench_size
    if entry.name == "linear":
        return f"{n}×{p} → {c}"
    return f"{n}×{c}" if c > 1 else f"{n}"


@section("floor")
def floor_section(ctx: Context) -> list[dict]:
    """Forward + backward of each Function on a tiny input, where fixed costs show, beside its built-in twin and
    beside the floor: the identity Function in nnref's form (which supports vmap, compile and autocast) and in
    the cheapest form PyTorch has."""
    return bench_floor(ctx.device, ctx.profile.floor_repeats, ctx.profile.floor_number)


@section("functions")
def functions_section(ctx: Context) -> list[dict]:
    """Forward + backward of each Function of the formulas against its built-in twin, at the sizes of an MNIST
    MLP step (float32)."""
    return bench_functions(ctx.device, ctx.profile.repeats)


def bench_functions(device, repeats: int = 7) -> list[dict]:
    """Forward + backward of each Function against its built-in twin (float32), at each entry's bench size."""
    rows = []
    for entry in FORMULAS:
        n, c, p = entry.bench_size
        inputs = _leaves(entry, entry.inputs(n, max(c, 1), max(p, 1), torch.float32, seed=0, device=device))
        t_ours, t_ref = side_by_side(
            _fwd_bwd(entry.plain, inputs), _fwd_bwd(entry.builtin, inputs), device, number=20, repeats=repeats
        )
        rows.append(row(f"fwd+bwd {entry.name} ({_shape(entry)})", t_ours, t_ref, unit="µs", scale=1e6))
    return rows


class _IdentityOld(torch.autograd.Function):
    """The cheapest custom Function: the old ``forward(ctx, …)`` form (no vmap, no torch.func)."""

    @staticmethod
    def forward(ctx, z):
        return z.view_as(z)

    @staticmethod
    def backward(ctx, g):
        return g


class _IdentityNnref(Function):
    """The identity in nnref's own form: setup_context, vmap rule, autocast policy, compile-traceable."""

    @staticmethod
    def forward(z):
        return z.view_as(z)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g


def textbook(function: type) -> type:
    """The same Function as PyTorch's "Extending PyTorch" writes one: ``forward`` + ``setup_context`` +
    ``backward`` (nnref's own code, copied) on a plain ``torch.autograd.Function`` with ``generate_vmap_rule`` —
    without nnref's base (its cheap ``apply``, its autocast cast) and called without the plain function's checks.
    What nnref's call costs beyond it is what its checks and dispatch cost."""

    def plain(f):
        return types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)

    parts = {name: staticmethod(plain(getattr(function, name))) for name in ("forward", "setup_context", "backward")}
    return type(f"Textbook{function.__name__}", (torch.autograd.Function,), {"generate_vmap_rule": True, **parts})


def _us_row(name: str, ours_us: float, reference_us: float, **notes) -> dict:
    """A row of two times measured in microseconds."""
    return row(name, ours_us / 1e6, reference_us / 1e6, unit="µs", scale=1e6, **notes)


def bench_floor(device, repeats: int = 15, number: int = 200) -> list[dict]:
    """Each Function on (1, 10) (a binary loss on 10 values) against its twin and the identity floors;
    ``above_floor_us`` is what a Function costs beyond the identity in nnref's form: its own kernels and checks."""
    z = torch.randn(1, 10, generator=torch.Generator().manual_seed(0)).to(device).requires_grad_()
    cases = {
        "autograd alone": _fwd_bwd(lambda z: z * 1, [z]),
        "identity, forward(ctx) form": _fwd_bwd(_IdentityOld.apply, [z]),
        "identity, nnref's form": _fwd_bwd(_IdentityNnref.apply, [z]),
    }
    for entry in FORMULAS:
        binary = entry.bench_size[1] == 1
        inputs = _leaves(entry, entry.inputs(10 if binary else 1, 10, 10, torch.float32, seed=0, device=device))
        cases[f"nnref {entry.name}"] = _fwd_bwd(entry.plain, inputs)
        cases[f"built-in {entry.name}"] = _fwd_bwd(entry.builtin, inputs)
        cases[f"textbook {entry.name}"] = _fwd_bwd(textbook(entry.function).apply, inputs + ["mean"] * entry.loss)
    us = {k: v * 1e6 for k, v in interleaved(cases, device, number=number, repeats=repeats).items()}
    floor = us["identity, nnref's form"]
    rows = [
        _us_row(
            "floor: identity Function, nnref's form vs forward(ctx) form (1×10, fwd+bwd)",
            floor,
            us["identity, forward(ctx) form"],
            autograd_alone_us=us["autograd alone"],
        )
    ]
    for entry in FORMULAS:
        ours, builtin = us[f"nnref {entry.name}"], us[f"built-in {entry.name}"]
        rows.append(
            _us_row(
                f"floor: fwd+bwd {entry.name} (1×10), nnref's call vs the textbook Function",
                ours,
                us[f"textbook {entry.name}"],
            )
        )
        rows.append(
            _us_row(
                f"floor: fwd+bwd {entry.name} (1×10) vs built-in",
                ours,
                builtin,
                above_floor_us=ours - floor,
                beyond_builtin_and_floor_us=ours - builtin - (floor - us["autograd alone"]),
            )
        )
    return rows
