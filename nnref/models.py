"""The lecture's models, built only from nnref's Functions and layers.

Parametric models return *logits* from ``forward`` (the input of the output activation) and know their
own loss: the fused, stable one by default (``fused=True``), or the lecture's unfused path — output
activation, then the loss on probabilities — with ``fused=False``.  ``predict_proba`` applies the
output activation.

The non-parametric :class:`KNNClassifier` stores the training records and votes among the k nearest.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import functional as F
from .layers import ACTIVATIONS, Linear, Sigmoid, Softmax

__all__ = ["LogisticRegression", "SoftmaxRegression", "MLP", "KNNClassifier", "METRICS", "build_model",
           "merge_neighbours"]


class _Classifier(nn.Module):
    """What the three parametric models share: from logits to probabilities, predictions and the loss.

    A binary model (``self.binary``) has one logit z per row, Pr(class 1) = σ(z), and binary cross-entropy;
    a multi-class model has c logits, softmax and cross-entropy.  ``self.activation`` is the output
    activation (Sigmoid or Softmax).
    """

    binary: bool
    num_classes: int

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Pr(class 1) (n,) for a binary model, class probabilities (n, c) otherwise."""
        return self.activation(self(x))

    def loss(self, logits: torch.Tensor, y: torch.Tensor, fused: bool = True, reduction: str = "mean"):
        """The negative log-likelihood: fused and stable from logits, or (``fused=False``) the lecture's
        output activation followed by cross-entropy on probabilities."""
        if self.binary:
            if fused:
                return F.sigmoid_binary_cross_entropy(logits, y, reduction)
            return F.binary_cross_entropy(self.activation(logits), y, reduction)
        if fused:
            return F.softmax_cross_entropy(logits, y, reduction)
        return F.cross_entropy(self.activation(logits), y, reduction)

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        """Class 1 where z ≥ 0 (a ≥ 0.5, the lecture's threshold neuron), else the largest logit."""
        return (logits >= 0).long() if self.binary else logits.argmax(dim=-1)


class LogisticRegression(_Classifier):
    """The sigmoid neuron: a = σ(x wᵀ + b) = Pr(label = 1 | x).

    Linear(p, 1) → Sigmoid, trained with binary cross-entropy.
    Shapes: x (n, p) → logits z (n,); ``predict_proba`` → a (n,); labels y (n,) in {0, 1}.
    """

    binary = True
    num_classes = 2

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = Linear(in_features, 1)
        self.activation = Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)

    @property
    def weight_images(self) -> torch.Tensor:
        """The learned weight vector w, one template (1, p)."""
        return self.linear.weight


class SoftmaxRegression(_Classifier):
    """a = softmax(x Wᵀ + b): Linear(p, c) → Softmax, trained with multi-class cross-entropy.

    Shapes: x (n, p) → logits z (n, c); ``predict_proba`` → a (n, c); labels y (n,) in [0, c).
    """

    binary = False

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.linear = Linear(in_features, num_classes)
        self.activation = Softmax()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    @property
    def weight_images(self) -> torch.Tensor:
        """One learned template per class: W (c, p)."""
        return self.linear.weight


class MLP(_Classifier):
    """A fully connected network: (Linear → activation) for each hidden size, then Linear → Softmax.

    ``hidden`` is an int or a sequence, e.g. 800 or (300, 100); ``activation`` is "relu", "sigmoid" or
    "tanh".  Shapes: x (n, p) → logits (n, c).  With ``num_classes=1`` the output is one logit per row
    (shape (n,)) followed by a sigmoid, for binary tasks.
    """

    def __init__(self, in_features: int, hidden: int | Sequence[int], num_classes: int,
                 activation: str = "relu") -> None:
        super().__init__()
        sizes = [hidden] if isinstance(hidden, int) else list(hidden)
        if not sizes or any(not isinstance(h, int) or h < 1 for h in sizes):
            raise ValueError(f"hidden must be one or more positive layer sizes, got {hidden!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.hidden = tuple(sizes)
        self.activation_name = activation
        self.binary = num_classes == 1
        self.num_classes = 2 if self.binary else num_classes
        layers: list[nn.Module] = []
        width = in_features
        for h in sizes:
            layers += [Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.activation = Sigmoid() if self.binary else Softmax()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.layers(x)
        return z.squeeze(-1) if self.binary else z

    def hidden_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activation of every hidden layer: a list of (n, h) tensors (Playground's neuron pictures)."""
        outs = []
        for layer in self.layers:
            x = layer(x)
            if not isinstance(layer, Linear):
                outs.append(x)
        return outs

    @property
    def weight_images(self) -> torch.Tensor:
        """The first layer's filters: W1 (h1, p)."""
        return self.layers[0].weight


def build_model(name: str, in_features: int = 784, num_classes: int = 10, hidden: Sequence[int] = (800,),
                activation: str = "relu") -> nn.Module:
    """A parametric model by its command-line name ("logreg", "softmax", "mlp") for ``num_classes`` classes
    (2: one output logit)."""
    if name == "logreg":
        return LogisticRegression(in_features)
    if name == "softmax":
        return SoftmaxRegression(in_features, num_classes)
    if name == "mlp":
        return MLP(in_features, tuple(hidden), 1 if num_classes == 2 else num_classes, activation)
    raise ValueError(f"{name!r} is not a parametric model")


# --------------------------------------------------------------------------------------------------
# k-nearest neighbours
# --------------------------------------------------------------------------------------------------
METRICS = ("euclidean", "manhattan", "cosine")


class KNNClassifier:
    """k-nearest neighbours: store the records, a distance metric, k, majority vote.

    ``fit(X, y)`` stores X (n, p) and integer labels y (n,).  ``predict(X)`` compares each chunk of
    ``chunk_size`` queries with each block of ``block_size`` records (memory stays O(chunk_size ·
    block_size), whatever n), keeps the k nearest and votes.  Cost per query: O(p n) — the lecture's point
    about non-parametric models.

    Exactness: euclidean and cosine distances are first computed with one matrix product per tile
    (‖x‖² − 2 x·r + ‖r‖²), then the ``k + rerank`` best candidates are re-ranked with distances computed
    directly in float64, so rounding in the fast pass cannot change which neighbours win.

    Ties: neighbours at exactly equal distance are ordered by their index in the training set (the
    earlier record first); a tie in the vote goes to the smallest class label — the rule scikit-learn
    uses, so predictions agree with ``KNeighborsClassifier(algorithm="brute")``.
    Works on CPU and CUDA tensors (the device of the stored records).
    """

    #: Queries re-ranked at once: their candidates are gathered as (rows, k + rerank, p) copies.
    RERANK_ROWS = 256

    def __init__(self, k: int = 3, metric: str = "euclidean", chunk_size: int = 4096, rerank: int = 8,
                 block_size: int = 2048) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        for name, value in (("chunk_size", chunk_size), ("block_size", block_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.k = k
        self.metric = metric
        self.chunk_size = chunk_size
        self.block_size = block_size
        self.rerank = rerank
        self.offset = 0
        self.X: torch.Tensor | None = None
        self.y: torch.Tensor | None = None

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, X: torch.Tensor, y: torch.Tensor, offset: int = 0) -> "KNNClassifier":
        """Store the training records X (n, p) and labels y (n,).  Nothing is learned: O(1) training.

        ``offset``: X holds rows offset … offset + n − 1 of a larger training set (one shard of it, in a
        multi-process job); neighbour indices are reported in that larger set's numbering."""
        if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError("X and y must be torch.Tensors")
        if X.dim() != 2:
            raise ValueError(f"X must have shape (n, p), got shape {tuple(X.shape)}")
        if X.shape[0] == 0:
            raise ValueError("the training set is empty: X has 0 rows, KNN needs at least one record")
        if y.dim() != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape (n,) = ({X.shape[0]},), got shape {tuple(y.shape)}")
        if y.is_floating_point() or y.dtype == torch.bool:
            raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
        if y.min() < 0:
            raise ValueError(f"y must hold non-negative class labels, found {int(y.min())}")
        self.X = X if X.is_floating_point() else X.float()
        self.y = y.to(device=X.device, dtype=torch.long)
        self.offset = offset
        self.num_classes = int(self.y.max()) + 1
        self._sq_norms = self._prepare(self.X)
        return self

    def _prepare(self, X: torch.Tensor) -> torch.Tensor | None:
        if self.metric == "euclidean":
            return torch.linalg.vector_norm(X, dim=1).square()  # one fused pass: no (n, p) temporary
        return None

    def _check_query(self, X: torch.Tensor) -> torch.Tensor:
        if self.X is None:
            raise RuntimeError("KNNClassifier.predict called before fit(X, y): there are no stored records")
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
        if X.dim() != 2 or X.shape[1] != self.X.shape[1]:
            raise ValueError(
                f"X must have shape (m, {self.X.shape[1]}) (the feature count seen in fit), got shape {tuple(X.shape)}"
            )
        if self.k > self.X.shape[0]:
            raise ValueError(f"k = {self.k} is larger than the training set ({self.X.shape[0]} records)")
        return X.to(device=self.X.device, dtype=self.X.dtype)

    # -- distances ----------------------------------------------------------------------------------
    def _fast_scores(self, q: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """A score per (query, record start … stop − 1) that orders records like the distance does (smaller =
        nearer): one matrix product for euclidean and cosine."""
        R = self.X[start:stop]
        if self.metric == "euclidean":
            # ‖q − r‖² = ‖q‖² − 2 q·r + ‖r‖²;  ‖q‖² is the same for every r, so it is left out.
            return torch.addmm(self._sq_norms[start:stop].unsqueeze(0), q, R.t(), alpha=-2)
        if self.metric == "cosine":
            qn = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
            rn = R / R.norm(dim=1, keepdim=True).clamp_min(1e-12)
            return 1 - qn.matmul(rn.t())
        return torch.cdist(q, R, p=1)

    def _candidate_indices(self, q: torch.Tensor, m: int) -> torch.Tensor:
        """The m best-scoring records of each query (m_q, m), found block by block over the records: each
        block of ``block_size`` records contributes its m best, which are merged with the best so far — so
        memory stays O(chunk · block) however many records there are."""
        best_scores = best_idx = None
        for start in range(0, self.X.shape[0], self.block_size):
            scores = self._fast_scores(q, start, start + self.block_size)
            top = scores.topk(min(m, scores.shape[1]), dim=1, largest=False, sorted=False)
            idx = top.indices + start
            if best_scores is not None:
                both, both_idx = torch.cat([best_scores, top.values], 1), torch.cat([best_idx, idx], 1)
                top = both.topk(min(m, both.shape[1]), dim=1, largest=False, sorted=False)
                idx = both_idx.gather(1, top.indices)
            best_scores, best_idx = top.values, idx
        return best_idx

    def _exact_distances(self, q: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Distances from each query (m, p) to its candidate records idx (m, r), summed in float64
        directly from the coordinate differences (no ‖q‖² − 2 q·r + ‖r‖² cancellation)."""
        m, r = idx.shape
        cand = self.X.index_select(0, idx.flatten()).view(m, r, -1)
        if self.metric in ("euclidean", "manhattan"):
            order = 2 if self.metric == "euclidean" else 1
            dist = torch.linalg.vector_norm(cand - q.unsqueeze(1), ord=order, dim=-1, dtype=torch.float64)
            return dist * dist if order == 2 else dist
        q64, r64 = q.double().unsqueeze(1), cand.double()
        qn = q64 / q64.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        rn = r64 / r64.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return 1 - (qn * rn).sum(-1)

    def kneighbors(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The k nearest stored records of each query: (distances (m, k), indices (m, k)), nearest first."""
        X = self._check_query(X)
        n = self.X.shape[0]
        m_cand = min(n, self.k + self.rerank)
        dists, idxs = [], []
        for start in range(0, X.shape[0], self.chunk_size):
            q = X[start:start + self.chunk_size]
            cand, _ = self._candidate_indices(q, m_cand).sort(dim=1)  # by index: the stable sort below breaks ties
            for part in range(0, q.shape[0], self.RERANK_ROWS):  # the float64 pass, a few queries at a time
                rows = slice(part, part + self.RERANK_ROWS)
                exact = self._exact_distances(q[rows], cand[rows])
                order = exact.argsort(dim=1, stable=True)[:, : self.k]
                dists.append(exact.gather(1, order))
                idxs.append(cand[rows].gather(1, order))
        return torch.cat(dists), torch.cat(idxs) + self.offset

    def candidates(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(distances, indices, labels), each (m, k): :meth:`kneighbors` with the neighbours' labels."""
        dist, idx = self.kneighbors(X)
        return dist, idx, self.y[idx - self.offset]

    def records(self, idx: torch.Tensor) -> torch.Tensor:
        """The stored rows (len(idx), p) of the records ``idx`` (training-set numbering); zeros for the
        indices another shard holds (so summing over the shards gives every row)."""
        local = idx - self.offset
        mine = (local >= 0) & (local < self.X.shape[0])
        rows = torch.zeros(idx.shape[0], self.X.shape[1], dtype=self.X.dtype, device=self.X.device)
        rows[mine] = self.X[local[mine]]
        return rows

    # -- voting -------------------------------------------------------------------------------------
    def _votes(self, idx: torch.Tensor) -> torch.Tensor:
        """Vote counts (m, c) of the neighbours idx (m, k)."""
        return self._count(self.y[idx - self.offset])

    def _count(self, labels: torch.Tensor) -> torch.Tensor:
        classes = max(self.num_classes, int(labels.max()) + 1 if labels.numel() else 0)
        counts = torch.zeros(labels.shape[0], classes, device=labels.device, dtype=torch.float32)
        return counts.scatter_add_(1, labels, torch.ones_like(labels, dtype=torch.float32))

    def vote_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Majority vote (m,) among the neighbours' labels (m, k'); a tie goes to the smallest label."""
        return self._count(labels).argmax(dim=1)

    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        """Vote shares (m, c): the fraction of the k neighbours in each class."""
        _, idx = self.kneighbors(X)
        return self._votes(idx) / self.k

    def vote(self, idx: torch.Tensor) -> torch.Tensor:
        """Majority vote (m,) among neighbours idx (m, k') from :meth:`kneighbors` (any k' ≤ k, so one
        neighbour search serves every k); a tie goes to the smallest label."""
        return self._votes(idx).argmax(dim=1)  # argmax returns the first maximum: the smallest label

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """Majority vote of the k nearest neighbours (m,); a tie goes to the smallest label."""
        return self.vote(self.kneighbors(X)[1])

    def memory_bytes(self) -> int:
        """What the model holds: the whole training set (the lecture's 'large memory cost')."""
        total = 0
        for t in (self.X, self.y, self._sq_norms if self.X is not None else None):
            if t is not None:
                total += t.numel() * t.element_size()
        return total


def merge_neighbours(dist: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, k: int):
    """The k nearest of several candidate lists side by side (m, r): ordered by distance, equal distances by
    training index — the one-process tie rule.  Returns (distances, indices, labels), each (m, k)."""
    by_index = idx.argsort(dim=1, stable=True)
    dist, idx, labels = (t.gather(1, by_index) for t in (dist, idx, labels))
    order = dist.argsort(dim=1, stable=True)[:, :k]
    return tuple(t.gather(1, order) for t in (dist, idx, labels))
