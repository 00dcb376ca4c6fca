"""Pictures for TensorBoard (and PNG files): weight templates, filters, mistakes, confusion matrices.

Every function returns a ``matplotlib.figure.Figure`` built with matplotlib's object API (:func:`subplots`), not
with ``pyplot``: no backend is chosen or changed, no window can open, the figures are safe to draw in any thread,
and a program that imports nnref keeps whatever backend it had.  ``SummaryWriter.add_figure`` and
:func:`save_figure` render them with Agg.
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

__all__ = ["subplots", "weight_templates", "misclassified_grid", "confusion_matrix", "confusion_figure",
           "neighbours_grid", "delta_sweep_figure", "save_figure"]


def subplots(rows: int = 1, cols: int = 1, figsize=(6.4, 4.8), squeeze: bool = True):
    """``pyplot.subplots`` without pyplot: a free-standing ``Figure`` and its axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def _grid_shape(count: int, max_cols: int = 10) -> tuple[int, int]:
    cols = min(count, max_cols)
    return math.ceil(count / cols), cols


def weight_templates(weight: torch.Tensor, titles: list[str] | None = None, max_images: int = 64,
                     suptitle: str = "") -> Figure:
    """Each row of W (c, 784) drawn as a 28×28 template: red where a pixel votes for the class, blue against."""
    w = weight.detach().float().cpu()[:max_images]
    rows, cols = _grid_shape(w.shape[0])
    fig, axes = subplots(rows, cols, figsize=(1.3 * cols, 1.45 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= w.shape[0]:
            continue
        img = w[i].reshape(28, 28)
        lim = float(img.abs().max()) or 1.0
        ax.imshow(img.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        if titles:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def misclassified_grid(images: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor,
                       max_images: int = 40, class_names: list[str] | None = None) -> Figure:
    """Up to ``max_images`` test images the model got wrong, titled 'true → predicted'."""
    wrong = (labels.cpu() != preds.cpu()).nonzero().flatten()[:max_images]
    names = class_names or [str(i) for i in range(int(max(labels.max(), preds.max())) + 1)]
    count = max(len(wrong), 1)
    rows, cols = _grid_shape(count)
    fig, axes = subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong.tolist()):
        ax.imshow(images[i].cpu().numpy(), cmap="gray")
        ax.set_title(f"{names[int(labels[i])]} → {names[int(preds[i])]}", fontsize=9, color="crimson")
    fig.suptitle(f"misclassified test images (true → predicted), first {len(wrong)}", fontsize=10)
    fig.tight_layout()
    return fig


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
            ax.text(p, t, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > top / 2 else "black")
    ax.set_title(title or f"confusion matrix (accuracy {matrix.diag().sum() / max(matrix.sum(), 1):.2%})",
                 fontsize=10)
    fig.tight_layout()
    return fig


def neighbours_grid(queries: torch.Tensor, query_labels: torch.Tensor, neighbours: torch.Tensor,
                    neighbour_labels: torch.Tensor, preds: torch.Tensor) -> Figure:
    """One row per test image: the image, then its k nearest training images with their labels.

    queries (m, 28, 28), neighbours (m, k, 28, 28), labels (m,) and (m, k), preds (m,).
    """
    m, k = neighbours.shape[:2]
    fig, axes = subplots(m, k + 1, figsize=(1.3 * (k + 1), 1.45 * m + 0.4), squeeze=False)
    for r in range(m):
        ok = int(preds[r]) == int(query_labels[r])
        axes[r, 0].imshow(queries[r].cpu().numpy(), cmap="gray")
        axes[r, 0].set_title(f"test {int(query_labels[r])} → {int(preds[r])}", fontsize=8,
                             color="black" if ok else "crimson")
        for j in range(k):
            axes[r, j + 1].imshow(neighbours[r, j].cpu().numpy(), cmap="gray")
            axes[r, j + 1].set_title(f"#{j + 1}: {int(neighbour_labels[r, j])}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("test images and their k nearest training images", fontsize=10)
    fig.tight_layout()
    return fig


def delta_sweep_figure(points) -> Figure:
    """The numerical gradient's error against Δ (log-log), one V per (method, dtype), the bottom marked."""
    fig, ax = subplots(figsize=(7.5, 4.6))
    styles = {("forward", "float32"): ("#d62728", "--"), ("central", "float32"): ("#1f77b4", "--"),
              ("forward", "float64"): ("#d62728", "-"), ("central", "float64"): ("#1f77b4", "-")}
    for (method, dtype), (color, line) in styles.items():
        curve = [p for p in points if p.method == method and p.dtype == dtype]
        if not curve:
            continue
        ax.loglog([p.delta for p in curve], [p.error for p in curve], line, color=color, label=f"{method}, {dtype}")
        best = min(curve, key=lambda p: p.error)
        ax.plot([best.delta], [best.error], "o", color=color)
        ax.annotate(f"Δ={best.delta:.0e}", (best.delta, best.error), textcoords="offset points", xytext=(4, -12),
                    fontsize=7, color=color)
    ax.set_xlabel("Δ")
    ax.set_ylabel("max relative error vs the hand-written gradient")
    ax.set_title("numerical gradient: truncation error (right) vs rounding error (left)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path, dpi: int = 100) -> None:
    fig.savefig(path, dpi=dpi)
