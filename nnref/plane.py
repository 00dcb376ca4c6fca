"""The lecture's 2-D plane: points x ∈ R² of two (or three, or four) classes — "find a function y = f(x)".

One implementation behind ``nnref playground`` (pictures in TensorBoard) and ``nnref lab`` (live in the
browser), so the same seed and settings give the same boundary in both:

* data — :func:`make_points` (blobs, XOR, circles, spirals; 2–4 classes), :func:`split`;
* inputs — :func:`features`: X₁, X₂, X₁², X₂², X₁X₂, sin X₁, sin X₂ (TensorFlow Playground's), any subset;
* models — the line (logistic regression, or softmax regression for more classes), the MLP and KNN, each a
  :class:`~nnref.models.Classifier` of plane points (:class:`PlaneModel`, :class:`~nnref.knn.KNNClassifier`);
* training — :class:`Descent`: gradient descent of one parametric model, one step at a time, through nnref's
  training step (:mod:`nnref.training`);
* the picture — :func:`grid` and :func:`field`: the class probabilities over the plane, the heat map.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch

from .choices import CLASSES, COLOURS, DATASETS, DOMAIN, FEATURES, NOISE, PlaygroundConfig, check_classes
from .functional import value_checks
from .knn import KNNClassifier
from .layers import Linear
from .models import MLP, LogisticRegression, SoftmaxRegression, build_model
from .training import EagerStep, forward_loss_of

__all__ = [
    "DATASETS",
    "CLASSES",
    "FEATURES",
    "DOMAIN",
    "NOISE",
    "COLOURS",
    "make_points",
    "split",
    "features",
    "PlaygroundConfig",
    "Descent",
    "PlaneModel",
    "fit",
    "fit_knn",
    "grid",
    "field",
    "view_bounds",
    "line_distance",
    "line_segment",
]


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def _counts(n: int, classes: int) -> torch.Tensor:
    """Class labels (n,) in blocks: n // c points per class, the remainder to the last classes."""
    base = [n // classes + (i >= classes - n % classes) for i in range(classes)]
    return torch.repeat_interleave(torch.arange(classes), torch.tensor(base))


def make_points(
    name: str, n: int = 400, noise: float | None = None, seed: int = 0, classes: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points X (n, 2) float32 and class labels y (n,) int64 in [0, classes).

    blobs: Gaussian clouds, linearly separable (two of them: a boundary that misses the origin); xor: the
    quadrants (two classes: y = [x₁x₂ > 0]; four: one per quadrant); circles: a disc inside rings; spirals:
    interleaved arms.  ``noise`` is the standard deviation of a Gaussian jitter (default per dataset).
    Two classes reproduce nnref's original playground data exactly (class 0 is its −1, class 1 its +1).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    check_classes(name, classes)
    if n < 2 * classes:
        raise ValueError(f"samples must be at least {2 * classes} for {classes} classes, got {n}")
    g = torch.Generator().manual_seed(seed)
    noise = NOISE[name] if noise is None else noise
    y = _counts(n, classes)
    X = {"blobs": _blobs, "xor": _xor, "circles": _circles, "spirals": _spirals}[name](y, classes, noise, g)
    if name == "xor":
        X, y = X
    return X.float(), y.long()


def _blobs(y, classes, noise, g):
    if classes == 2:
        centres = torch.tensor([[-0.5, -1.0], [3.0, 2.0]])
    else:
        angle = 2 * math.pi * torch.arange(classes) / classes + math.pi / 4
        centres = 3.0 * torch.stack([angle.cos(), angle.sin()], 1)
    return centres[y] + noise * torch.randn(y.shape[0], 2, generator=g)


def _xor(y, classes, noise, g):
    X = torch.rand(y.shape[0], 2, generator=g) * 10 - 5
    X = X + torch.sign(X) * 0.3  # keep points off the axes, as TensorFlow Playground does
    if classes == 2:
        y = (X[:, 0] * X[:, 1] > 0).long()
    else:
        y = (X[:, 0] < 0).long() + 2 * (X[:, 1] < 0).long()  # the quadrant
    return X + noise * torch.randn(y.shape[0], 2, generator=g), y


def _circles(y, classes, noise, g):
    n = y.shape[0]
    if classes == 2:  # a disc of radius 2 (class 1) inside a ring from 3.5 to 5 (class 0)
        r = torch.where(y > 0, torch.rand(n, generator=g) * 2.0, 3.5 + torch.rand(n, generator=g) * 1.5)
    else:  # class c in the band from 5c/C to 5(c + 1)/C, a margin of 0.3 on each side
        width = 5.0 / classes
        r = y * width + 0.3 + torch.rand(n, generator=g) * (width - 0.6)
    angle = torch.rand(n, generator=g) * 2 * math.pi
    return torch.stack([r * angle.cos(), r * angle.sin()], 1) + noise * torch.randn(n, 2, generator=g)


def _spirals(y, classes, noise, g):
    counts = torch.bincount(y, minlength=classes).float()
    i = torch.cat([torch.arange(int(c)) for c in counts]).float()
    count = counts[y]
    r = i / count * 5
    turn = math.pi * y if classes == 2 else 2 * math.pi * y / classes
    t = 1.75 * i / count * 2 * math.pi + turn
    return torch.stack([r * t.sin(), r * t.cos()], 1) + noise * torch.randn(y.shape[0], 2, generator=g)


def split(X: torch.Tensor, y: torch.Tensor, test_fraction: float = 0.3, seed: int = 0):
    """A shuffled train/test split: (X_train, y_train, X_test, y_test)."""
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed + 1))
    n_test = max(1, int(round(X.shape[0] * test_fraction)))
    te, tr = perm[:n_test], perm[n_test:]
    return X[tr], y[tr], X[te], y[te]


def features(X: torch.Tensor, names=("x1", "x2")) -> torch.Tensor:
    """The network's inputs for plane points X (n, 2): the columns ``names`` (in :data:`FEATURES` order) of
    X₁, X₂, X₁², X₂², X₁X₂, sin X₁, sin X₂.  Shape (n, len(names))."""
    unknown = set(names) - set(FEATURES)
    if unknown or not names:
        raise ValueError(f"inputs must be one or more of {FEATURES}, got {tuple(names)}")
    x1, x2 = X[:, 0], X[:, 1]
    column = {
        "x1": lambda: x1,
        "x2": lambda: x2,
        "x1^2": lambda: x1 * x1,
        "x2^2": lambda: x2 * x2,
        "x1x2": lambda: x1 * x2,
        "sin x1": lambda: torch.sin(x1),
        "sin x2": lambda: torch.sin(x2),
    }
    return torch.stack([column[f]() for f in FEATURES if f in names], 1)


# --------------------------------------------------------------------------------------------------
# Models and their training
# --------------------------------------------------------------------------------------------------
def _glorot(model) -> None:
    """Glorot-uniform weights U(±√(6/(fan_in + fan_out))) and zero biases: the scale tanh units want."""
    for layer in model.modules():
        if isinstance(layer, Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)


def _weights(model) -> list[torch.Tensor]:
    return [layer.weight for layer in model.modules() if isinstance(layer, Linear)]


class Descent:
    """Gradient descent of one parametric model (``kind`` "logreg" or "mlp") on one training set of plane
    points, one step at a time — what the playground runs to the end and the lab shows live.

    The model is trained on standardised inputs; :meth:`model` returns it with the standardisation folded into
    its first layer, so it takes the raw inputs and its line w·x + b = 0 lies in the data's own plane.  ``seed``
    decides the initial weights and the order of the mini-batches: the same seed, the same descent.
    """

    def __init__(
        self,
        kind: str,
        X: torch.Tensor,
        y: torch.Tensor,
        classes: int,
        cfg: PlaygroundConfig,
        seed: int,
        record_every: int = 0,
    ) -> None:
        self.kind, self.cfg, self.classes, self.names = kind, cfg, classes, tuple(cfg.features)
        self.record_every, self.losses, self.snapshots = record_every, [], []  # what the playground draws
        inputs = features(X, self.names)
        spread = inputs.std(0) if inputs.shape[0] > 1 else torch.ones(inputs.shape[1])  # (one point: no spread)
        self.mean, self.std = inputs.mean(0), spread.nan_to_num(1.0).clamp_min(1e-12)
        self.X = (inputs - self.mean) / self.std
        self.t = y.float() if classes == 2 else y.long()
        torch.manual_seed(seed)
        if kind not in ("logreg", "mlp"):
            raise ValueError(f"a parametric plane model is 'logreg' or 'mlp', got {kind!r}")
        line = "logreg" if classes == 2 else "softmax"  # the line of two classes, or one per class
        self.net = build_model(line if kind == "logreg" else kind, len(self.names), classes, cfg.hidden, cfg.activation)
        _glorot(self.net)
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.step_fn = EagerStep(forward_loss_of(self.net, loss_fn=self._loss), self.net.parameters())
        self.generator = torch.Generator().manual_seed(seed)
        self.steps, self._order = 0, None
        self._epochs_before, self._start = 0.0, 0  # epochs done before the batch size last changed, and when
        self.net.loss(self.net(self.X), self.t)  # the targets are checked here, once; steps skip the value checks

    def set_recipe(self, **changes) -> None:
        """Change the learning rate, momentum, weight decay, L1 rate or batch size in place: the weights and the
        momentum so far stay (what the lab does when a slider moves)."""
        if changes.get("batch_size", self.cfg.batch_size) != self.cfg.batch_size:
            # the epochs so far are counted in batches of the old size; the next epoch starts afresh in the new one
            self._epochs_before, self._start, self._order = self.epoch, self.steps, None
        self.cfg = replace(self.cfg, **changes)
        for group in self.optimizer.param_groups:
            group.update(lr=self.cfg.lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)

    def _loss(self, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        loss = self.net.loss(logits, t)
        if self.cfg.l1:
            loss = loss + self.cfg.l1 * sum(w.abs().sum() for w in _weights(self.net))
        return loss

    @property
    def steps_per_epoch(self) -> int:
        b, n = self.cfg.batch_size, self.X.shape[0]
        return 1 if not b or b >= n else -(-n // b)

    @property
    def epoch(self) -> float:
        """Passes over the training set so far."""
        return self._epochs_before + (self.steps - self._start) / self.steps_per_epoch

    def _batch(self):
        idx = self.batch_indices()
        return (self.X, self.t) if idx is None else (self.X[idx], self.t[idx])

    def batch_indices(self, whole: bool = False) -> torch.Tensor | None:
        """The rows of the next step's batch (a new random order at each epoch's start); None (or, ``whole``, every
        row) when the batch is the whole training set.  Called once per step, before :attr:`steps` counts it."""
        b, n = self.cfg.batch_size, self.X.shape[0]
        if not b or b >= n:
            return torch.arange(n) if whole else None
        i = (self.steps - self._start) % self.steps_per_epoch
        if i == 0:
            self._order = torch.randperm(n, generator=self.generator)
        return self._order[i * b : (i + 1) * b]

    def step(self) -> torch.Tensor:
        """One step w ← w − α ∂L/∂w on the next batch; returns its loss (a tensor: reading it costs a sync)."""
        with value_checks(False):
            loss, _ = self.step_fn(*self._batch())
        self.step_fn.update(self.optimizer)
        self.steps += 1
        if self.record_every:
            self.losses.append(loss.detach())
            if self.steps % self.record_every == 0 or self.steps == 1:
                self.snapshots.append((self.steps, self.model()))
        return loss.detach()

    def loss(self, X: torch.Tensor | None = None, y: torch.Tensor | None = None) -> float:
        """The mean loss (no penalty) on the training set, or on plane points X with labels y."""
        with torch.no_grad():
            if X is None:
                return float(self.net.loss(self.net(self.X), self.t))
            t = y.float() if self.classes == 2 else y.long()
            return float(self.net.loss(self.net((features(X, self.names) - self.mean) / self.std), t))

    def model(self, into: PlaneModel | None = None) -> PlaneModel:
        """The model as it stands, taking plane points (the standardisation folded into its first layer): a new
        copy, or — ``into``, an earlier copy of this descent's — that copy brought up to date in place (what the lab
        does every frame: no new network)."""
        if into is None:
            into = PlaneModel(copy.deepcopy(self.net), self.names)
        folded = into.net
        with torch.no_grad():
            for mine, theirs in zip(folded.parameters(), self.net.parameters()):
                mine.copy_(theirs)
            layer = _first_linear(folded)
            layer.weight /= self.std
            layer.bias -= layer.weight @ self.mean
        return into

    def set_parameters(self, folded: torch.nn.Module) -> None:
        """Take the parameters of a network of plane points (the standardisation folded in, as :meth:`model` gives
        it) as this descent's own — the inverse of the folding: W = W_plane · std, b = b_plane + W_plane · mean.
        What the lab does when a weight is typed by hand, or one step of per-instance SGD is applied."""
        with torch.no_grad():
            for mine, theirs in zip(self.net.parameters(), folded.parameters()):
                mine.copy_(theirs)
            layer, plane_layer = _first_linear(self.net), _first_linear(folded)
            layer.weight.copy_(plane_layer.weight * self.std)
            layer.bias.copy_(plane_layer.bias + plane_layer.weight @ self.mean)


def _first_linear(net: torch.nn.Module) -> Linear:
    """The layer that takes the inputs: where the standardisation is folded in."""
    return net.linear if isinstance(net, (LogisticRegression, SoftmaxRegression)) else net.layers[0]


class PlaneModel:
    """A parametric model of plane points: the inputs ``names`` of each point, then the network.  A
    :class:`~nnref.models.Classifier`: ``predict`` and ``predict_proba`` take points X (n, 2)."""

    def __init__(self, net: torch.nn.Module, names=("x1", "x2")) -> None:
        self.net, self.names = net, tuple(names)
        self.num_classes = net.num_classes

    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        return self.net.predict_proba(features(X, self.names))

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return self.net.predict(features(X, self.names))

    def inputs(self, X: torch.Tensor) -> torch.Tensor:
        """Each input's value at the points X: (n, len(names))."""
        return features(X, self.names)

    @torch.no_grad()
    def hidden_outputs(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden neuron's output at the points X: one (n, h) tensor per hidden layer ([] for the line)."""
        hidden = getattr(self.net, "hidden_outputs", None)
        return hidden(features(X, self.names)) if hidden is not None else []

    @torch.no_grad()
    def trace(self, X: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One forward pass over the points X: every hidden layer's output (n, h) and the class probabilities
        (n, c) — what the lab draws of a frame."""
        z, hidden = features(X, self.names), []
        for layer in self.net.layers if isinstance(self.net, MLP) else [self.net.linear]:
            z = layer(z)
            if not isinstance(layer, Linear):
                hidden.append(z)
        a = self.net.activation(z.squeeze(-1) if self.net.binary else z)
        return hidden, torch.stack([1 - a, a], -1) if self.net.binary else a

    @torch.no_grad()
    def loss_and_accuracy(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """The mean loss and the accuracy on plane points X with class labels y (one forward pass)."""
        logits = self.net(features(X, self.names))
        t = y.float() if self.net.binary else y.long()
        return float(self.net.loss(logits, t)), float((self.net.predictions(logits) == y).float().mean())

    def linears(self) -> list:
        """The network's Linear layers, input side first (their weights are the links the lab draws)."""
        return [m for m in self.net.modules() if isinstance(m, Linear)]

    def line(self) -> tuple[torch.Tensor, float] | None:
        """(w, b) of the lecture's line w·x + b = 0 in the plane: the model is the line of two classes on the
        inputs X₁, X₂.  None otherwise."""
        if not isinstance(self.net, LogisticRegression) or self.names != ("x1", "x2"):
            return None
        return self.net.linear.weight.detach()[0].clone(), float(self.net.linear.bias.detach()[0])


def fit(
    kind: str, X, y, classes: int, cfg: PlaygroundConfig, restarts: int = 1, record_every: int = 0, on_progress=None
) -> tuple[PlaneModel, Descent]:
    """``cfg.steps`` steps of :class:`Descent` from ``restarts`` starts (seeds cfg.seed, cfg.seed + 1000, …); the
    lowest final training loss wins (the training set decides, never the test set).  With ``record_every`` the
    descents keep their losses and their models every so many steps (and at the first and last step);
    ``on_progress(steps)`` is told every 100 steps."""
    best = None
    for r in range(max(1, restarts)):
        descent = Descent(kind, X, y, classes, cfg, cfg.seed + 1000 * r, record_every)
        for step in range(1, cfg.steps + 1):
            descent.step()
            if on_progress is not None and step % 100 == 0:
                on_progress(100)
        if record_every and (not descent.snapshots or descent.snapshots[-1][0] != cfg.steps):
            descent.snapshots.append((cfg.steps, descent.model()))
        final = descent.loss()
        if best is None or final < best[0]:
            best = (final, descent)
    return best[1].model(), best[1]


def fit_knn(X: torch.Tensor, y: torch.Tensor, k: int, metric: str = "euclidean", classes: int = 2) -> KNNClassifier:
    """KNN on the raw points (the lecture's non-parametric model: it keeps them)."""
    return KNNClassifier(k=k, metric=metric).fit(X, y, num_classes=classes)


# --------------------------------------------------------------------------------------------------
# The picture: probabilities over the plane
# --------------------------------------------------------------------------------------------------
def view_bounds(X: torch.Tensor | None = None, margin: float = 0.6) -> tuple[float, float, float, float]:
    """(x₁ min, x₁ max, x₂ min, x₂ max): the :data:`DOMAIN` square, widened to hold every point of X."""
    lo, hi = DOMAIN
    if X is None or X.shape[0] == 0:
        return lo, hi, lo, hi
    low, high = X.min(0).values - margin, X.max(0).values + margin
    return min(lo, float(low[0])), max(hi, float(high[0])), min(lo, float(low[1])), max(hi, float(high[1]))


def grid(bounds=None, resolution: int = 100) -> torch.Tensor:
    """The centres of a resolution × resolution grid over ``bounds`` (default :data:`DOMAIN`), row by row from
    the bottom (x₂ min) up: points (resolution², 2)."""
    x0, x1, y0, y1 = bounds or view_bounds()
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, resolution), torch.linspace(y0, y1, resolution), indexing="xy")
    return torch.stack([gx.flatten(), gy.flatten()], 1)


def field(model, bounds=None, resolution: int = 100) -> torch.Tensor:
    """The class probabilities of any plane classifier over the grid: (resolution, resolution, classes), row 0
    at the bottom."""
    with torch.no_grad():
        probs = model.predict_proba(grid(bounds, resolution))
    return probs.reshape(resolution, resolution, -1)


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
        points += [(x, -(w1 * x + b) / w2) for x in (x0, x1)]
    if abs(w1) > 1e-12:
        points += [(-(w2 * yv + b) / w1, yv) for yv in (y0, y1)]
    inside = [(x, yv) for x, yv in points if x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= yv <= y1 + 1e-9]
    unique = []
    for p in inside:
        if all(abs(p[0] - q[0]) > 1e-9 or abs(p[1] - q[1]) > 1e-9 for q in unique):
            unique.append(p)
    return (unique[0], unique[1]) if len(unique) >= 2 else None
