"""``nnref playground``: the lecture's 2-D plane, trained to the end and drawn in TensorBoard.

The data, the models and their training are :mod:`nnref.plane`'s — the same that ``nnref lab`` shows live.
This module draws them: the decision boundary at regular steps (the step slider plays training like an
animation), the learned line with w, b and its distance |b|/‖w‖ from the origin, every hidden neuron's output
over the plane, KNN's regions for each k, and one side-by-side summary per dataset.  ``over_seeds`` measures
test accuracy over several seeds without pictures (the README's table).

TensorBoard tags mean what they mean in an MNIST run: ``loss/train_step`` is the training loss over steps,
the ``train`` and ``test`` sub-runs hold the ``accuracy`` curve, and ``accuracy/test`` is the final test
accuracy, logged once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import plane
from ..choices import CLASSIFIERS, COLOURS, DATASETS
from ..plane import Descent, PlaneModel, PlaygroundConfig, line_distance, line_segment, make_points, split, view_bounds
from ..viz import save_figure, subplots
from .records import open_writer, write_status

__all__ = [
    "CLASSIFIERS",
    "COLOURS",
    "field_image",
    "boundary_figure",
    "hidden_neurons_figure",
    "run",
    "over_seeds",
    "total_steps",
]


def _accuracy(model, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model.predict(X) == y).float().mean())


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------
def _rgb(hex_colour: str) -> torch.Tensor:
    return torch.tensor([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=torch.float32) / 255


def field_image(probs: torch.Tensor, discretize: bool = False) -> torch.Tensor:
    """Class probabilities (…, c) as colours (…, 3) in [0, 1]: white where the classes are equally likely,
    the colour of the likeliest class as it becomes certain (the lab's heat map)."""
    c = probs.shape[-1]
    top, cls = probs.max(-1)
    strength = torch.ones_like(top) if discretize else ((top - 1 / c) / (1 - 1 / c)).clamp(0, 1)
    colours = torch.stack([_rgb(h) for h in COLOURS[:c]])[cls]
    white = torch.tensor([0.97, 0.97, 0.97])
    return white + (colours - white) * strength.unsqueeze(-1)


def _as_plane(model):
    return PlaneModel(model) if isinstance(model, torch.nn.Module) else model


def boundary_figure(model, X, y, title: str = "", bounds=None, ax=None, resolution: int = 150):
    """The class probabilities over the plane with the data on top (blue class 1 / +1, orange class 0 / −1)
    and the decision boundary.  For the line (logistic regression on X₁, X₂) the learned line is drawn (label
    "decision line"), with w, b and its distance |b|/‖w‖ from the origin written on it and the perpendicular
    from the origin."""
    model, classes = _as_plane(model), y.long()
    bounds = bounds or view_bounds(X)
    probs = plane.field(model, bounds, resolution)
    fig, ax = subplots(figsize=(4.2, 4.2)) if ax is None else (ax.figure, ax)
    x0, x1, y0, y1 = bounds
    ax.imshow(field_image(probs).numpy(), origin="lower", extent=(x0, x1, y0, y1), alpha=0.8, aspect="auto")
    ax.scatter(X[:, 0], X[:, 1], c=[COLOURS[int(v)] for v in classes], s=10, edgecolors="#333333", linewidths=0.4)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xticks=[], yticks=[])
    ax.set_title(title, fontsize=9)
    line = getattr(model, "line", lambda: None)()
    if line is not None:
        _draw_line(ax, *line, bounds)
    else:
        pts = plane.grid(bounds, resolution).reshape(resolution, resolution, 2)
        level = probs[..., 1] if probs.shape[-1] == 2 else probs.argmax(-1).float()
        levels = [0.5] if probs.shape[-1] == 2 else [c + 0.5 for c in range(probs.shape[-1] - 1)]
        ax.contour(pts[..., 0].numpy(), pts[..., 1].numpy(), level.numpy(), levels=levels, colors="black", linewidths=1)
    if ax is fig.axes[0] and len(fig.axes) == 1:
        fig.tight_layout()
    return fig


def _draw_line(ax, w: torch.Tensor, b: float, bounds) -> None:
    seg = line_segment(w, b, bounds)
    if seg is not None:
        (ax_, ay_), (bx_, by_) = seg
        ax.plot([ax_, bx_], [ay_, by_], color="black", lw=2, label="decision line")
    foot = -b * w / float(w @ w)
    ax.plot([0, float(foot[0])], [0, float(foot[1])], color="black", lw=1, ls="--")
    ax.plot([0], [0], marker="+", color="black", ms=10)
    ax.text(
        0.02,
        0.02,
        f"w = ({float(w[0]):.2f}, {float(w[1]):.2f}), b = {b:.2f}\n"
        f"distance from origin |b|/‖w‖ = {line_distance(w, b):.3f}",
        transform=ax.transAxes,
        fontsize=8,
        bbox=dict(facecolor="white", alpha=0.85, edgecolor="none"),
    )


def hidden_neurons_figure(model, X, y, bounds=None, resolution: int = 60):
    """Every hidden neuron's output over the plane, one row per hidden layer (as TensorFlow Playground shows)."""
    model = _as_plane(model)
    bounds = bounds or view_bounds(X)
    outs = model.hidden_outputs(plane.grid(bounds, resolution))
    rows, cols = len(outs), max(o.shape[1] for o in outs)
    fig, axes = subplots(rows, cols, figsize=(1.25 * cols, 1.35 * rows + 0.3), squeeze=False)
    for r, out in enumerate(outs):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= out.shape[1]:
                continue
            v = out[:, c].reshape(resolution, resolution)
            lo, hi = float(v.min()), float(v.max())
            scaled = (v - lo) / max(hi - lo, 1e-12)
            ax.imshow(field_image(torch.stack([1 - scaled, scaled], -1)).numpy(), origin="lower", aspect="auto")
            ax.set_title(f"layer {r + 1}, unit {c + 1}", fontsize=7)
    fig.suptitle(f"hidden neurons' outputs ({model.net.activation_name})", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# A whole playground run
# --------------------------------------------------------------------------------------------------
@dataclass
class _Task:
    """One dataset of a run: its split, the plotting box, and where its pictures go."""

    name: str
    Xtr: torch.Tensor
    ytr: torch.Tensor
    Xte: torch.Tensor
    yte: torch.Tensor
    bounds: tuple
    png_dir: Path | None
    tb_dir: Path | None

    def writer(self, *parts: str):
        return open_writer(self.tb_dir.joinpath(*parts)) if self.tb_dir else None

    def png(self, fig, suffix: str) -> None:
        if self.png_dir:
            save_figure(fig, self.png_dir / f"{self.name}-{suffix}.png")


def run(
    datasets=DATASETS,
    models=CLASSIFIERS,
    samples: int = 400,
    noise: float | None = None,
    test_fraction=0.3,
    cfg: PlaygroundConfig | None = None,
    logdir="runs",
    run_name: str | None = None,
    save_png=None,
    tensorboard: bool = True,
    on_dataset=None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Train the chosen models on the chosen datasets.

    Returns ``{dataset: {model: test accuracy}, "run_dir": path}``; ``on_dataset(name, accuracies)`` is
    called after each dataset (the CLI prints a line), ``on_progress(steps)`` as gradient descent advances.
    """
    cfg = cfg or PlaygroundConfig()
    root = Path(logdir) / (run_name or f"playground-{time.strftime('%Y%m%d-%H%M%S')}")
    png_dir = Path(save_png) if save_png else None
    for folder in (png_dir, root if tensorboard else None):
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
    results: dict = {"run_dir": str(root)}
    for ds in datasets:
        X, y = make_points(ds, samples, noise, cfg.seed)
        task = _Task(
            ds,
            *split(X, y, test_fraction, cfg.seed),
            bounds=view_bounds(X),
            png_dir=png_dir,
            tb_dir=root / ds if tensorboard else None,
        )
        results[ds], finals = {}, {}
        for name in models:
            finals[name] = _RUNNERS[name](task, name, cfg, results[ds], on_progress)
        _summary(task, finals)
        if on_dataset is not None:
            on_dataset(ds, results[ds])
    if tensorboard:
        write_status(
            root,
            "playground",
            "finished",
            message="; ".join(f"{ds}: " + ", ".join(f"{m} {a:.1%}" for m, a in results[ds].items()) for ds in datasets),
            config=dataclasses.asdict(cfg) | {"datasets": list(datasets), "models": list(models), "samples": samples},
        )
    return results


def _run_knn(task: _Task, name: str, cfg: PlaygroundConfig, results: dict, on_progress=None):
    """KNN for every k: accuracy, decision regions per k (the x axis in TensorBoard is k)."""
    for k in cfg.k:
        if k > task.Xtr.shape[0]:
            raise ValueError(f"k = {k} is larger than the training set ({task.Xtr.shape[0]} points)")
    knns = {k: plane.fit_knn(task.Xtr, task.ytr, k) for k in cfg.k}
    writer = task.writer("knn")
    for k, knn in knns.items():
        results[f"knn k={k}"] = acc = _accuracy(knn, task.Xte, task.yte)
        if writer:
            writer.add_scalar("accuracy_by_k/test", acc, k)
            writer.add_scalar("accuracy_by_k/train", _accuracy(knn, task.Xtr, task.ytr), k)
            writer.add_figure(
                "boundary/knn", boundary_figure(knn, task.Xtr, task.ytr, f"KNN k = {k}: test {acc:.0%}", task.bounds), k
            )
    if writer:
        writer.close()
    if task.png_dir:
        fig, axes = subplots(1, len(cfg.k), figsize=(3.6 * len(cfg.k), 3.8), squeeze=False)
        for ax, k in zip(axes[0], cfg.k):
            boundary_figure(
                knns[k], task.Xtr, task.ytr, f"k = {k}: test {results[f'knn k={k}']:.0%}", task.bounds, ax=ax
            )
        fig.suptitle(f"{task.name}: KNN decision regions", fontsize=10)
        fig.tight_layout()
        task.png(fig, "knn")
    k0 = cfg.k[0]
    return knns[k0], f"KNN k = {k0}: test {results[f'knn k={k0}']:.0%}"


def _run_parametric(task: _Task, name: str, cfg: PlaygroundConfig, results: dict, on_progress=None):
    """The line (logistic regression) or the MLP: fit with snapshots, then the final pictures."""
    pretty = "logistic regression" if name == "logreg" else f"MLP {','.join(map(str, cfg.hidden))} {cfg.activation}"
    writer = task.writer(name)
    every = max(1, cfg.steps // max(cfg.snapshots, 1)) if writer else 0
    model, descent = plane.fit(name, task.Xtr, task.ytr, 2, cfg, _starts(name, cfg), every, on_progress)
    results[name] = acc = _accuracy(model, task.Xte, task.yte)
    if writer:
        _write_descent(task, writer, pretty, descent, acc, cfg.steps)
    if task.png_dir:
        task.png(
            boundary_figure(model, task.Xtr, task.ytr, f"{task.name}: {pretty}, test {acc:.0%}", task.bounds), name
        )
        if model.hidden_outputs(task.Xtr[:1]):
            task.png(hidden_neurons_figure(model, task.Xtr, task.ytr, task.bounds), "mlp-neurons")
    return model, f"{pretty}: test {acc:.0%}"


def _write_descent(task: _Task, writer, pretty: str, descent: Descent, test_acc: float, steps: int) -> None:
    """The TensorBoard record of a fit: ``loss/train_step`` every 10 steps, the ``accuracy`` of the ``train`` and
    ``test`` sub-runs and the boundary at the snapshots, the final ``accuracy/test`` once."""
    for step, loss in enumerate(torch.stack(descent.losses).tolist(), 1):
        if step % 10 == 0 or step == 1:
            writer.add_scalar("loss/train_step", loss, step)
    splits = {
        "train": task.writer(Path(writer.log_dir).name, "train"),
        "test": task.writer(Path(writer.log_dir).name, "test"),
    }
    for step, model in descent.snapshots:
        acc_te = _accuracy(model, task.Xte, task.yte)
        splits["train"].add_scalar("accuracy", _accuracy(model, task.Xtr, task.ytr), step)
        splits["test"].add_scalar("accuracy", acc_te, step)
        writer.add_figure(
            "boundary",
            boundary_figure(model, task.Xtr, task.ytr, f"{pretty}, step {step}: test {acc_te:.0%}", task.bounds),
            step,
        )
        if model.hidden_outputs(task.Xtr[:1]):
            writer.add_figure("hidden_neurons", hidden_neurons_figure(model, task.Xtr, task.ytr, task.bounds), step)
    writer.add_scalar("accuracy/test", test_acc, steps)
    for w in (writer, *splits.values()):
        w.close()


def _summary(task: _Task, finals: dict) -> None:
    """The final boundaries side by side: parametric (line, MLP) vs non-parametric (KNN)."""
    if not finals or not (task.tb_dir or task.png_dir):
        return
    fig, axes = subplots(1, len(finals), figsize=(3.8 * len(finals), 4.0), squeeze=False)
    for ax, (model, title) in zip(axes[0], finals.values()):
        boundary_figure(model, task.Xtr, task.ytr, title, task.bounds, ax=ax)
    fig.suptitle(f"{task.name}: parametric (line, MLP) vs non-parametric (KNN)", fontsize=10)
    fig.tight_layout()
    if task.tb_dir:
        writer = task.writer("summary")
        writer.add_figure("summary", fig, 0, close=False)
        writer.close()
    task.png(fig, "summary")


#: How each classifier is run and drawn: gradient descent with snapshots, or KNN for every k.
_RUNNERS = {"logreg": _run_parametric, "mlp": _run_parametric, "knn": _run_knn}


def _starts(name: str, cfg: PlaygroundConfig) -> int:
    """Gradient descents a classifier needs: the line is convex (one), the MLP restarts, KNN descends not at all."""
    return {"logreg": 1, "mlp": max(1, cfg.restarts), "knn": 0}[name]


def total_steps(datasets, models, cfg: PlaygroundConfig) -> int:
    """The gradient-descent steps a run takes (for a progress bar)."""
    return len(datasets) * sum(_starts(m, cfg) for m in models) * cfg.steps


def over_seeds(
    seeds,
    datasets=DATASETS,
    models=CLASSIFIERS,
    samples: int = 400,
    noise: float | None = None,
    test_fraction=0.3,
    cfg: PlaygroundConfig | None = None,
    on_seed=None,
    on_progress=None,
) -> dict:
    """Test accuracy of every (dataset, model) for each seed (data, split and initial weights all follow the
    seed), without pictures: ``{dataset: {model: [accuracy per seed]}}``; ``on_seed(seed, results)`` after each."""
    table: dict = {}
    for seed in seeds:
        one = run(
            datasets,
            models,
            samples,
            noise,
            test_fraction,
            dataclasses.replace(cfg or PlaygroundConfig(), seed=seed),
            tensorboard=False,
            on_progress=on_progress,
        )
        for ds in datasets:
            for model, acc in one[ds].items():
                table.setdefault(ds, {}).setdefault(model, []).append(acc)
        if on_seed is not None:
            on_seed(seed, one)
    return table
