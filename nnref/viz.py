"""Pictures for TensorBoard (and PNG files): weight templates, filters, mistakes, confusion matrices.

Every function returns a ``matplotlib.figure.Figure`` built with matplotlib's object API (:func:`subplots`), not
with ``pyplot``: no backend is chosen or changed, no window can open, the figures are safe to draw in any thread,
and a program that imports nnref keeps whatever backend it had.  ``SummaryWriter.add_figure`` and
:func:`save_figure` render them with Agg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # matplotlib is imported when a picture is drawn, not with nnref
    from matplotlib.figure import Figure

__all__ = [
    "subplots",
    "Tile",
    "tile_grid",
    "weight_templates",
    "misclassified_grid",
    "confusion_matrix",
    "confusion_figure",
    "neighbours_grid",
    "delta_sweep_figure",
    "save_figure",
]


def subplots(rows: int = 1, cols: int = 1, figsize=(6.4, 4.8), squeeze: bool = True):
    """``pyplot.subplots`` without pyplot: a free-standing ``Figure`` and its axes."""
    fig = _figure(figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def _figure(figsize) -> Figure:
    """A free-standing figure: the one place matplotlib is imported."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _grid_shape(count: int, max_cols: int = 10) -> tuple[int, int]:
    cols = min(count, max_cols)
    return math.ceil(count / cols), cols


@dataclass(frozen=True)
class Tile:
    """One picture of a grid: a 2-D array drawn with ``cmap`` between ``vmin`` and ``vmax``, titled above."""

    image: object
    title: str = ""
    cmap: str = "gray"
    vmin: float | None = None
    vmax: float | None = None
    color: str = "black"


def tile_grid(
    tiles: list[Tile], cols: int, rows: int | None = None, cell=(1.3, 1.45), suptitle: str = "", fontsize: int = 9
) -> Figure:
    """Pictures in a grid of ``cell``-inch cells (``rows`` × ``cols``), each under its title, in one Axes that
    spans the figure: every picture is an image placed by its extent.  (An Axes per picture — 64 of them for a
    layer's filters — made each such figure take half a second to build; this takes a few milliseconds.)"""
    rows = rows or max(1, math.ceil(len(tiles) / cols))
    cell_w, cell_h = cell
    top = 0.4 if suptitle else 0.05
    width, height = cols * cell_w, rows * cell_h + top
    fig = _figure((width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_autoscale_on(False)
    side = min(cell_w - 0.2, cell_h - 0.35)  # the picture; the title sits in the band above it
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        x0, y0 = c * cell_w + (cell_w - side) / 2, top + (r + 1) * cell_h - side - 0.05
        ax.imshow(tile.image, cmap=tile.cmap, vmin=tile.vmin, vmax=tile.vmax, extent=(x0, x0 + side, y0 + side, y0))
        if tile.title:
            ax.text(x0 + side / 2, y0 - 0.05, tile.title, ha="center", va="bottom", fontsize=fontsize, color=tile.color)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10, y=1 - 0.08 / height)
    return fig


def weight_templates(
    weight: torch.Tensor, titles: list[str] | None = None, max_images: int = 64, suptitle: str = ""
) -> Figure:
    """Each row of W (c, 784) drawn as a 28×28 template: red where a pixel votes for the class, blue against."""
    w = weight.detach().float().cpu()[:max_images]
    rows, cols = _grid_shape(w.shape[0])
    tiles = []
    for i in range(w.shape[0]):
        lim = float(w[i].abs().max()) or 1.0
        tiles.append(Tile(w[i].reshape(28, 28).numpy(), titles[i] if titles else "", "RdBu_r", -lim, lim))
    return tile_grid(tiles, cols, rows, suptitle=suptitle)


def misclassified_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    preds: torch.Tensor,
    max_images: int = 40,
    class_names: list[str] | None = None,
) -> Figure:
    """Up to ``max_images`` test images the model got wrong, titled 'true → predicted'."""
    wrong = (labels.cpu() != preds.cpu()).nonzero().flatten()[:max_images]
    names = class_names or [str(i) for i in range(int(max(labels.max(), preds.max())) + 1)]
    rows, cols = _grid_shape(max(len(wrong), 1))
    tiles = [
        Tile(images[i].cpu().numpy(), f"{names[int(labels[i])]} → {names[int(preds[i])]}", color="crimson")
        for i in wrong.tolist()
    ]
    return tile_grid(
        tiles, cols, rows, cell=(1.3, 1.5), suptitle=f"misclassified test images (true → predicted), first {len(wrong)}"
    )


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """counts[t, p] = number of examples of true class t predicted as p; (c, c) int64."""
    idx = labels.cpu().long() * num_classes + preds.cpu().long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_figure(matrix: torch.Tensor, class_names: list[str] | None = None, title: str = "") -> Figure:
    c = matrix.shape[0]
    names = class_names or [str(i) for i in range(c)]
    fig, ax = subplots(figsize=(0.55 * c + 2.5, 0.55 * c + 2))
    ax.imshow(matrix.numpy(), cmap="Blues")
    ax.set_xticks(range(c), names)
    ax.set_yticks(range(c), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = int(matrix.max()) or 1
    for t in range(c):
        for p in range(c):
            v = int(matrix[t, p])
            ax.text(p, t, str(v), ha="center", va="center", fontsize=7, color="white" if v > top / 2 else "black")
    ax.set_title(title or f"confusion matrix (accuracy {matrix.diag().sum() / max(matrix.sum(), 1):.2%})", fontsize=10)
    fig.tight_layout()
    return fig


def neighbours_grid(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    neighbours: torch.Tensor,
    neighbour_labels: torch.Tensor,
    preds: torch.Tensor,
) -> Figure:
    """One row per test image: the image, then its k nearest training images with their labels.

    queries (m, 28, 28), neighbours (m, k, 28, 28), labels (m,) and (m, k), preds (m,).
    """
    m, k = neighbours.shape[:2]
    tiles = []
    for r in range(m):
        ok = int(preds[r]) == int(query_labels[r])
        tiles.append(
            Tile(
                queries[r].cpu().numpy(),
                f"test {int(query_labels[r])} → {int(preds[r])}",
                color="black" if ok else "crimson",
            )
        )
        tiles += [Tile(neighbours[r, j].cpu().numpy(), f"#{j + 1}: {int(neighbour_labels[r, j])}") for j in range(k)]
    return tile_grid(tiles, k + 1, m, fontsize=8, suptitle="test images and their k nearest training images")


def delta_sweep_figure(points) -> Figure:
    """The numerical gradient's error against Δ (log-log), one V per (method, dtype), the bottom marked."""
    fig, ax = subplots(figsize=(7.5, 4.6))
    styles = {
        ("forward", "float32"): ("#d62728", "--"),
        ("central", "float32"): ("#1f77b4", "--"),
        ("forward", "float64"): ("#d62728", "-"),
        ("central", "float64"): ("#1f77b4", "-"),
    }
    for (method, dtype), (color, line) in styles.items():
        curve = [p for p in points if p.method == method and p.dtype == dtype]
        if not curve:
            continue
        ax.loglog([p.delta for p in curve], [p.error for p in curve], line, color=color, label=f"{method}, {dtype}")
        best = min(curve, key=lambda p: p.error)
        ax.plot([best.delta], [best.error], "o", color=color)
        ax.annotate(
            f"Δ={best.delta:.0e}",
            (best.delta, best.error),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=7,
            color=color,
        )
    ax.set_xlabel("Δ")
    ax.set_ylabel("max relative error vs the hand-written gradient")
    ax.set_title("numerical gradient: truncation error (right) vs rounding error (left)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path, dpi: int = 100) -> None:
    fig.savefig(path, dpi=dpi)
