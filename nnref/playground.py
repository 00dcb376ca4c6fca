"""The lecture's 2-D playground: x ∈ R², y ∈ {−1, 1}, "find a function y = f(x)".

Four datasets (blobs, xor, circles, spirals), three models from :mod:`nnref.models` — logistic
regression (the lecture's line), an MLP (Playground's hidden layers) and KNN (non-parametric) — and
TensorBoard pictures: the decision boundary at regular steps (the step slider plays training like an
animation), the learned line with w, b and its distance |b|/‖w‖ from the origin, every hidden neuron's
output over the plane, KNN's regions for each k, and one side-by-side summary per dataset.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .functional import value_checks
from .layers import Linear
from .models import MLP, KNNClassifier, LogisticRegression
from .viz import plt, save_figure

__all__ = ["DATASETS", "make_dataset", "split", "PlaygroundConfig", "fit_logreg", "fit_mlp", "fit_knn",
           "line_segment", "line_distance", "boundary_figure", "hidden_neurons_figure", "run", "over_seeds"]

DATASETS = ("blobs", "xor", "circles", "spirals")
MODELS = ("logreg", "mlp", "knn")
_NEG, _POS = "#f59322", "#0877bd"  # Playground's orange (−1) and blue (+1)


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def make_dataset(name: str, n: int = 400, noise: float | None = None,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points X (n, 2) float32 and labels y (n,) int64 in {−1, 1}.

    blobs: two Gaussian clouds, linearly separable (their boundary does not pass through the origin);
    xor: the four quadrants, y = sign(x1 · x2); circles: a disc (+1) inside a ring (−1);
    spirals: two interleaved spirals.  ``noise`` is the standard deviation of a Gaussian jitter added to
    the points (default per dataset).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if n < 4:
        raise ValueError(f"samples must be at least 4, got {n}")
    g = torch.Generator().manual_seed(seed)
    half = n // 2
    sign = torch.cat([-torch.ones(half), torch.ones(n - half)])
    if name == "blobs":
        noise = 0.8 if noise is None else noise
        centres = torch.where(sign[:, None] > 0, torch.tensor([3.0, 2.0]), torch.tensor([-0.5, -1.0]))
        X = centres + noise * torch.randn(n, 2, generator=g)
        y = sign
    elif name == "xor":
        noise = 0.2 if noise is None else noise
        X = torch.rand(n, 2, generator=g) * 10 - 5
        X = X + torch.sign(X) * 0.3  # keep points off the axes, as Playground does
        y = torch.sign(X[:, 0] * X[:, 1])
        X = X + noise * torch.randn(n, 2, generator=g)
    elif name == "circles":
        noise = 0.2 if noise is None else noise
        r = torch.where(sign > 0, torch.rand(n, generator=g) * 2.0, 3.5 + torch.rand(n, generator=g) * 1.5)
        angle = torch.rand(n, generator=g) * 2 * math.pi
        X = torch.stack([r * angle.cos(), r * angle.sin()], 1) + noise * torch.randn(n, 2, generator=g)
        y = sign
    else:  # spirals
        noise = 0.15 if noise is None else noise
        i = torch.cat([torch.arange(half), torch.arange(n - half)]).float()
        count = torch.where(sign < 0, float(half), float(n - half))
        r = i / count * 5
        t = 1.75 * i / count * 2 * math.pi + torch.where(sign > 0, math.pi, 0.0)
        X = torch.stack([r * t.sin(), r * t.cos()], 1) + noise * torch.randn(n, 2, generator=g)
        y = sign
    return X.float(), y.long()


def split(X: torch.Tensor, y: torch.Tensor, test_fraction: float = 0.3, seed: int = 0):
    """A shuffled train/test split: (X_train, y_train, X_test, y_test)."""
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed + 1))
    n_test = max(1, int(round(X.shape[0] * test_fraction)))
    te, tr = perm[:n_test], perm[n_test:]
    return X[tr], y[tr], X[te], y[te]


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
@dataclass
class PlaygroundConfig:
    """The recipe for the small networks (measured over seeds: see README's playground table).

    Full-batch gradient descent with momentum and a little weight decay, on inputs standardised with the
    training set's mean and standard deviation, from Glorot-uniform weights; the MLP is trained from
    ``restarts`` random starts and the one with the lowest final training loss is kept (a small non-convex
    network can end in a poor local minimum: XOR with four tanh units does from several starts in ten).
    """

    steps: int = 5000
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 3e-4
    restarts: int = 6
    batch_size: int = 0  # 0: the whole training set in every step (gradient descent)
    hidden: tuple[int, ...] = (8, 8)
    activation: str = "tanh"
    k: tuple[int, ...] = (1, 5, 15)
    snapshots: int = 10
    seed: int = 0


def _to01(y: torch.Tensor) -> torch.Tensor:
    return (y > 0).long()


def _accuracy(pred01: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred01 == _to01(y)).float().mean())


def _first_linear(model):
    return model.linear if isinstance(model, LogisticRegression) else model.layers[0]


def _glorot(model) -> None:
    """Glorot-uniform weights U(±√(6/(fan_in + fan_out))) and zero biases: the scale tanh units want."""
    for layer in model.modules():
        if isinstance(layer, Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)


def _folded(model, mean: torch.Tensor, std: torch.Tensor):
    """A copy of ``model`` that takes raw points: the standardisation (x − μ)/σ folded into the first layer,
    W' = W/σ and b' = b − W'μ — the same function, so pictures and the line's w, b are in the data's plane."""
    model = copy.deepcopy(model)
    layer = _first_linear(model)
    with torch.no_grad():
        layer.weight /= std
        layer.bias -= layer.weight @ mean
    return model


@dataclass
class _Fit:
    """One run of gradient descent: the model (on standardised inputs), its final training loss, and what
    the pictures need (the loss every step, the weights at the snapshot steps)."""

    model: torch.nn.Module
    loss: float
    losses: list
    snapshots: list


def _descend(model, X, t, cfg: PlaygroundConfig, seed: int, record: bool) -> _Fit:
    """SGD (w ← w − α ∂L/∂w, with momentum and weight decay) on binary cross-entropy from logits."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(seed)
    snap_every = max(1, cfg.steps // max(cfg.snapshots, 1))
    losses, snapshots = [], []
    model.loss(model(X), t)  # the targets are checked here, once; the loop then skips the value checks
    for step in range(1, cfg.steps + 1):
        xb, tb = X, t
        if cfg.batch_size and cfg.batch_size < X.shape[0]:
            idx = torch.randint(0, X.shape[0], (cfg.batch_size,), generator=g)
            xb, tb = X[idx], t[idx]
        with value_checks(False):
            loss = model.loss(model(xb), tb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if record:
            losses.append(loss.detach())
            if step % snap_every == 0 or step == cfg.steps or step == 1:
                snapshots.append((step, copy.deepcopy(model.state_dict())))
    with torch.no_grad():
        final = float(model.loss(model(X), t))
    return _Fit(model, final, [float(v) for v in losses], snapshots)


def _fit(make_model, X, y, cfg: PlaygroundConfig, restarts: int, on_snapshot=None, on_step=None):
    """The lecture's gradient descent from ``restarts`` random starts; the lowest training loss wins.  Labels
    −1/1 become 0/1; the hooks replay the winning run (``on_step(step, loss)``, ``on_snapshot(step, model)``)."""
    mean, std = X.mean(0), X.std(0).clamp_min(1e-12)
    Xs, t = (X - mean) / std, _to01(y).float()
    record = on_snapshot is not None or on_step is not None
    fits = []
    for r in range(restarts):
        seed = cfg.seed + 1000 * r
        torch.manual_seed(seed)
        model = make_model()
        _glorot(model)
        fits.append(_descend(model, Xs, t, cfg, seed, record))
    best = min(fits, key=lambda f: f.loss)
    if on_step is not None:
        for step, loss in enumerate(best.losses, 1):
            on_step(step, loss)
    if on_snapshot is not None:
        for step, state in best.snapshots:
            snapshot = make_model()
            snapshot.load_state_dict(state)
            on_snapshot(step, _folded(snapshot, mean, std))
    return _folded(best.model, mean, std)


def fit_logreg(X, y, cfg: PlaygroundConfig, **hooks) -> LogisticRegression:
    """The line: logistic regression is convex, so one start reaches its optimum (no restarts)."""
    return _fit(lambda: LogisticRegression(2), X, y, cfg, 1, **hooks)


def fit_mlp(X, y, cfg: PlaygroundConfig, **hooks) -> MLP:
    return _fit(lambda: MLP(2, cfg.hidden, 1, cfg.activation), X, y, cfg, max(1, cfg.restarts), **hooks)


def fit_knn(X, y, k: int) -> KNNClassifier:
    return KNNClassifier(k=k).fit(X, _to01(y))


def predict01(model, X: torch.Tensor) -> torch.Tensor:
    if isinstance(model, KNNClassifier):
        return model.predict(X)
    with torch.no_grad():
        return model.predictions(model(X))


def prob_pos(model, X: torch.Tensor) -> torch.Tensor:
    """Pr(y = +1 | x) over points X (m, 2): the sigmoid output, or KNN's vote share."""
    with torch.no_grad():
        if isinstance(model, KNNClassifier):
            return model.predict_proba(X)[:, 1] if model.num_classes > 1 else torch.zeros(X.shape[0])
        return model.predict_proba(X)


# --------------------------------------------------------------------------------------------------
# Geometry of the lecture's line  w1 x1 + w2 x2 + b = 0
# --------------------------------------------------------------------------------------------------
def line_distance(w: torch.Tensor, b: float) -> float:
    """Distance of the line w·x + b = 0 from the origin: |b| / ‖w‖."""
    return abs(float(b)) / float(torch.linalg.vector_norm(w))


def line_segment(w: torch.Tensor, b: float, bounds: tuple[float, float, float, float]):
    """The part of the line w·x + b = 0 inside the box (x0, x1, y0, y1): two end points, or None."""
    x0, x1, y0, y1 = bounds
    w1, w2 = float(w[0]), float(w[1])
    points = []
    if abs(w2) > 1e-12:
        for x in (x0, x1):
            yv = -(w1 * x + b) / w2
            if y0 - 1e-9 <= yv <= y1 + 1e-9:
                points.append((x, yv))
    if abs(w1) > 1e-12:
        for yv in (y0, y1):
            x = -(w2 * yv + b) / w1
            if x0 - 1e-9 <= x <= x1 + 1e-9:
                points.append((x, yv))
    unique = []
    for p in points:
        if all(abs(p[0] - q[0]) > 1e-9 or abs(p[1] - q[1]) > 1e-9 for q in unique):
            unique.append(p)
    return (unique[0], unique[1]) if len(unique) >= 2 else None


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------
def _bounds(X: torch.Tensor, margin: float = 0.6) -> tuple[float, float, float, float]:
    lo, hi = X.min(0).values - margin, X.max(0).values + margin
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _grid(bounds, resolution: int = 150):
    x0, x1, y0, y1 = bounds
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, resolution), torch.linspace(y0, y1, resolution), indexing="xy")
    return gx, gy, torch.stack([gx.flatten(), gy.flatten()], 1)


def _playground_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("playground", [_NEG, "#f7f7f7", _POS])


def _draw_field(ax, values, bounds, X, y, title):
    x0, x1, y0, y1 = bounds
    ax.imshow(values.numpy(), origin="lower", extent=(x0, x1, y0, y1), cmap=_playground_cmap(), vmin=0, vmax=1,
              alpha=0.55, aspect="auto")
    ax.scatter(X[:, 0], X[:, 1], c=[_POS if v > 0 else _NEG for v in y.tolist()], s=10, edgecolors="#333333",
               linewidths=0.4)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def boundary_figure(model, X, y, title: str = "", bounds=None, ax=None, resolution: int = 150):
    """Pr(y = +1 | x) over the plane with the data on top (blue +1, orange −1) and the 0.5 contour.

    For logistic regression the learned line is drawn (label "decision line"), with w, b and its
    distance |b|/‖w‖ from the origin written on it and the perpendicular from the origin.
    """
    bounds = bounds or _bounds(X)
    gx, gy, pts = _grid(bounds, resolution)
    field = prob_pos(model, pts).reshape(gx.shape)
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
    else:
        fig = ax.figure
    _draw_field(ax, field, bounds, X, y, title)
    if isinstance(model, LogisticRegression):
        w = model.linear.weight.detach()[0]
        b = float(model.linear.bias.detach()[0])
        seg = line_segment(w, b, bounds)
        if seg is not None:
            (ax_, ay_), (bx_, by_) = seg
            ax.plot([ax_, bx_], [ay_, by_], color="black", lw=2, label="decision line")
        foot = -b * w / float(w @ w)
        ax.plot([0, float(foot[0])], [0, float(foot[1])], color="black", lw=1, ls="--")
        ax.plot([0], [0], marker="+", color="black", ms=10)
        ax.text(0.02, 0.02, f"w = ({float(w[0]):.2f}, {float(w[1]):.2f}), b = {b:.2f}\n"
                f"distance from origin |b|/‖w‖ = {line_distance(w, b):.3f}", transform=ax.transAxes, fontsize=8,
                bbox=dict(facecolor="white", alpha=0.85, edgecolor="none"))
    elif not isinstance(model, KNNClassifier):
        ax.contour(gx.numpy(), gy.numpy(), field.numpy(), levels=[0.5], colors="black", linewidths=1)
    if own:
        fig.tight_layout()
    return fig


def hidden_neurons_figure(model: MLP, X, y, bounds=None, resolution: int = 60):
    """Every hidden neuron's output over the plane, one row per hidden layer (as Playground shows)."""
    bounds = bounds or _bounds(X)
    gx, _, pts = _grid(bounds, resolution)
    with torch.no_grad():
        outs = model.hidden_outputs(pts)
    rows, cols = len(outs), max(o.shape[1] for o in outs)
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, 1.35 * rows + 0.3), squeeze=False)
    for r, out in enumerate(outs):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= out.shape[1]:
                continue
            v = out[:, c].reshape(gx.shape)
            lo, hi = float(v.min()), float(v.max())
            ax.imshow(((v - lo) / max(hi - lo, 1e-12)).numpy(), origin="lower", cmap=_playground_cmap(),
                      aspect="auto")
            ax.set_title(f"layer {r + 1}, unit {c + 1}", fontsize=7)
    fig.suptitle(f"hidden neurons' outputs ({model.activation_name})", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# A whole playground run
# --------------------------------------------------------------------------------------------------
def run(datasets=DATASETS, models=MODELS, samples: int = 400, noise: float | None = None, test_fraction=0.3,
        cfg: PlaygroundConfig | None = None, logdir="runs", run_name: str | None = None, save_png=None,
        tensorboard: bool = True, on_dataset=None) -> dict:
    """Train the chosen models on the chosen datasets.

    Returns ``{dataset: {model: test accuracy}, "run_dir": path}``; ``on_dataset(name, accuracies)`` is
    called after each dataset (the CLI prints a line).
    """
    cfg = cfg or PlaygroundConfig()
    root = Path(logdir) / (run_name or f"playground-{time.strftime('%Y%m%d-%H%M%S')}")
    png_dir = Path(save_png) if save_png else None
    if png_dir:
        png_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"run_dir": str(root)}
    for ds in datasets:
        X, y = make_dataset(ds, samples, noise, cfg.seed)
        task = _Task(ds, *split(X, y, test_fraction, cfg.seed), bounds=_bounds(X), png_dir=png_dir,
                     tb_dir=root / ds if tensorboard else None)
        results[ds], finals = {}, {}
        for name in models:
            if name == "knn":
                finals["knn"] = _run_knn(task, cfg, results[ds])
            else:
                finals[name] = _run_parametric(task, name, cfg, results[ds])
        _summary(task, finals)
        if on_dataset is not None:
            on_dataset(ds, results[ds])
    return results


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

    def writer(self, model_name: str):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.tb_dir / model_name)) if self.tb_dir else None

    def png(self, fig, suffix: str) -> None:
        if self.png_dir:
            save_figure(fig, self.png_dir / f"{self.name}-{suffix}.png")
        else:
            plt.close(fig)


def _run_knn(task: _Task, cfg: PlaygroundConfig, results: dict):
    """KNN for every k: accuracy, decision regions per k (the x axis in TensorBoard is k)."""
    for k in cfg.k:
        if k > task.Xtr.shape[0]:
            raise ValueError(f"k = {k} is larger than the training set ({task.Xtr.shape[0]} points)")
    knns = {k: fit_knn(task.Xtr, task.ytr, k) for k in cfg.k}
    writer = task.writer("knn")
    for k, knn in knns.items():
        results[f"knn k={k}"] = acc = _accuracy(predict01(knn, task.Xte), task.yte)
        if writer:
            writer.add_scalar("accuracy/test", acc, k)
            writer.add_scalar("accuracy/train", _accuracy(predict01(knn, task.Xtr), task.ytr), k)
            writer.add_figure("boundary/knn", boundary_figure(knn, task.Xtr, task.ytr, f"KNN k = {k}: test {acc:.0%}",
                                                              task.bounds), k)
    if writer:
        writer.close()
    if task.png_dir:
        fig, axes = plt.subplots(1, len(cfg.k), figsize=(3.6 * len(cfg.k), 3.8), squeeze=False)
        for ax, k in zip(axes[0], cfg.k):
            boundary_figure(knns[k], task.Xtr, task.ytr, f"k = {k}: test {results[f'knn k={k}']:.0%}", task.bounds,
                            ax=ax)
        fig.suptitle(f"{task.name}: KNN decision regions", fontsize=10)
        fig.tight_layout()
        task.png(fig, "knn")
    k0 = cfg.k[0]
    return knns[k0], f"KNN k = {k0}: test {results[f'knn k={k0}']:.0%}"


class _Snapshots:
    """The TensorBoard record of a parametric fit: loss every 10 steps, boundary and accuracies at snapshots."""

    def __init__(self, task: _Task, writer, pretty: str) -> None:
        self.task, self.writer, self.pretty = task, writer, pretty

    def on_step(self, step: int, loss: float) -> None:
        if step % 10 == 0 or step == 1:
            self.writer.add_scalar("loss/train", loss, step)

    def on_snapshot(self, step: int, model) -> None:
        t, w = self.task, self.writer
        acc_tr, acc_te = _accuracy(predict01(model, t.Xtr), t.ytr), _accuracy(predict01(model, t.Xte), t.yte)
        w.add_scalar("accuracy/train", acc_tr, step)
        w.add_scalar("accuracy/test", acc_te, step)
        w.add_figure("boundary", boundary_figure(model, t.Xtr, t.ytr, f"{self.pretty}, step {step}: test {acc_te:.0%}",
                                                 t.bounds), step)
        if isinstance(model, MLP):
            w.add_figure("hidden_neurons", hidden_neurons_figure(model, t.Xtr, t.ytr, t.bounds), step)


def _run_parametric(task: _Task, name: str, cfg: PlaygroundConfig, results: dict):
    """The line (logistic regression) or the MLP: fit with snapshots, then the final pictures."""
    pretty = "logistic regression" if name == "logreg" else f"MLP {','.join(map(str, cfg.hidden))} {cfg.activation}"
    writer = task.writer(name)
    hooks = {}
    if writer:
        snaps = _Snapshots(task, writer, pretty)
        hooks = {"on_snapshot": snaps.on_snapshot, "on_step": snaps.on_step}
    model = (fit_logreg if name == "logreg" else fit_mlp)(task.Xtr, task.ytr, cfg, **hooks)
    if writer:
        writer.close()
    results[name] = acc = _accuracy(predict01(model, task.Xte), task.yte)
    if task.png_dir:
        task.png(boundary_figure(model, task.Xtr, task.ytr, f"{task.name}: {pretty}, test {acc:.0%}", task.bounds),
                 name)
        if isinstance(model, MLP):
            task.png(hidden_neurons_figure(model, task.Xtr, task.ytr, task.bounds), "mlp-neurons")
    return model, f"{pretty}: test {acc:.0%}"


def _summary(task: _Task, finals: dict) -> None:
    """The final boundaries side by side: parametric (line, MLP) vs non-parametric (KNN)."""
    if not finals or not (task.tb_dir or task.png_dir):
        return
    fig, axes = plt.subplots(1, len(finals), figsize=(3.8 * len(finals), 4.0), squeeze=False)
    for ax, (model, title) in zip(axes[0], finals.values()):
        boundary_figure(model, task.Xtr, task.ytr, title, task.bounds, ax=ax)
    fig.suptitle(f"{task.name}: parametric (line, MLP) vs non-parametric (KNN)", fontsize=10)
    fig.tight_layout()
    if task.tb_dir:
        writer = task.writer("summary")
        writer.add_figure("summary", fig, 0, close=False)
        writer.close()
    task.png(fig, "summary")


def over_seeds(seeds, datasets=DATASETS, models=MODELS, samples: int = 400, noise: float | None = None,
               test_fraction=0.3, cfg: PlaygroundConfig | None = None, on_seed=None) -> dict:
    """Test accuracy of every (dataset, model) for each seed (data, split and initial weights all follow the
    seed), without pictures: ``{dataset: {model: [accuracy per seed]}}``; ``on_seed(seed, results)`` after each."""
    import dataclasses

    table: dict = {}
    for seed in seeds:
        one = run(datasets, models, samples, noise, test_fraction, dataclasses.replace(cfg or PlaygroundConfig(),
                                                                                      seed=seed), tensorboard=False)
        for ds in datasets:
            for model, acc in one[ds].items():
                table.setdefault(ds, {}).setdefault(model, []).append(acc)
        if on_seed is not None:
            on_seed(seed, one)
    return table
