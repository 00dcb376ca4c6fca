"""k-nearest neighbours, the lecture's non-parametric model: store the records, a distance metric, k, a vote.

* :class:`KNNClassifier` — the stored records and the exact neighbour search;
* :func:`vote` — the majority vote among neighbours' labels (a tie goes to the smallest label);
* :func:`merge_neighbours` — several candidate lists (one per rank) merged with the one-process tie rule;
* :func:`choose_k` — the k with the best validation accuracy (ties: the smaller k).

``nnref train knn``, ``nnref eval``, ``nnref predict``, the playground, the lab and the bench all search with this
classifier; KNN's run on MNIST (sharded under ``torchrun``, its pictures and checkpoint) is :mod:`nnref.run.knn`.

"fast training, large memory cost, slow inference: O(p n) for each test point" — the lecture's three points are
what ``nnref bench --only cost`` measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .choices import METRICS
from .fast import knn_bytes

__all__ = ["METRICS", "KNNClassifier", "vote", "vote_shares", "merge_neighbours", "choose_k"]


# --------------------------------------------------------------------------------------------------
# The vote
# --------------------------------------------------------------------------------------------------
def vote_shares(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The fraction of each row's neighbours in each class: labels (m, k) → shares (m, c)."""
    classes = max(num_classes, int(labels.max()) + 1 if labels.numel() else 0)
    counts = torch.zeros(labels.shape[0], classes, device=labels.device, dtype=torch.float32)
    counts.scatter_add_(1, labels, torch.ones_like(labels, dtype=torch.float32))
    return counts / max(labels.shape[1], 1)


def vote(labels: torch.Tensor, num_classes: int = 0) -> torch.Tensor:
    """Majority vote (m,) among the neighbours' labels (m, k), nearest first; a tie goes to the smallest label
    (``argmax`` returns the first maximum) — scikit-learn's rule."""
    return vote_shares(labels, num_classes).argmax(dim=1)


def merge_neighbours(dist: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, k: int):
    """The k nearest of several candidate lists side by side (m, r): ordered by distance, equal distances by
    training index — the one-process tie rule.  Returns (distances, indices, labels), each (m, k)."""
    by_index = idx.argsort(dim=1, stable=True)
    dist, idx, labels = (t.gather(1, by_index) for t in (dist, idx, labels))
    order = dist.argsort(dim=1, stable=True)[:, :k]
    return tuple(t.gather(1, order) for t in (dist, idx, labels))


def choose_k(results: dict, ks) -> int:
    """The k with the best validation accuracy (``results[k]["val_acc"]``); ties go to the smaller k.  Without a
    validation set (NaN accuracies) the first k asked for."""
    if results and all(not math.isnan(v["val_acc"]) for v in results.values()):
        return max(results, key=lambda k: (results[k]["val_acc"], -k))
    return tuple(ks)[0]


# --------------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------------
class KNNClassifier:
    """k-nearest neighbours: store the records, a distance metric, k, majority vote.

    ``fit(X, y)`` stores X (n, p) and integer labels y (n,).  ``predict(X)`` compares each chunk of
    ``chunk_size`` queries with each block of ``block_size`` records (memory stays O(chunk_size ·
    block_size), whatever n), keeps the k nearest and votes.  Cost per query: O(p n) — the lecture's point
    about non-parametric models.

    Bytes: euclidean records given as uint8 (MNIST's own pixels, ``torchvision``'s ``MNIST.data`` flattened)
    are kept as bytes — a quarter of float32's memory — and searched by :mod:`nnref.fast.knn_bytes`: int8 matrix
    products, int32 sums, the exact integer squared distances (int64), no rounding anywhere.  They are queried
    with uint8 rows too.  The ranking is the same as on normalised floats (normalisation is one affine map on
    every pixel), so are the neighbours and the predictions.

    Floats: euclidean and cosine distances are first computed with one matrix product per tile
    (‖x‖² − 2 x·r + ‖r‖²), then the ``k + rerank`` best candidates are re-ranked with distances computed
    directly in float64, so rounding in the fast pass cannot change which neighbours win.

    Ties: neighbours at exactly equal distance are ordered by their index in the training set (the
    earlier record first); a tie in the vote goes to the smallest class label — the rule scikit-learn
    uses, so predictions agree with ``KNeighborsClassifier(algorithm="brute")``.
    Works on CPU and CUDA tensors (the device of the stored records).
    """

    #: Queries re-ranked at once: their candidates are gathered as (rows, k + rerank, p) copies.
    RERANK_ROWS = 256

    def __init__(
        self, k: int = 3, metric: str = "euclidean", chunk_size: int = 4096, rerank: int = 8, block_size: int = 2048
    ) -> None:
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
        self.num_classes = 0
        self.X: torch.Tensor | None = None  # float records (None for byte records: see self.byte_records)
        self.y: torch.Tensor | None = None
        self.byte_records: knn_bytes.ByteRecords | None = None

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, X: torch.Tensor, y: torch.Tensor, offset: int = 0, num_classes: int | None = None) -> KNNClassifier:
        """Store the training records X (n, p) and labels y (n,).  Nothing is learned: O(1) training.
        uint8 X with the euclidean metric is kept as bytes (:mod:`nnref.fast.knn_bytes`), any other X as floats; for
        bytes the integer product the search will use is chosen here (a timing, once per process and device type),
        so that the first query — a student's first stroke on the digit page — does not wait for it.

        ``offset``: X holds rows offset … offset + n − 1 of a larger training set (one shard of it, in a
        multi-process job); neighbour indices are reported in that larger set's numbering.  ``num_classes``:
        how many classes ``predict_proba`` reports (default: the largest label + 1)."""
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
        self.y = y.to(device=X.device, dtype=torch.long)
        self.offset = offset
        self.num_classes = max(int(self.y.max()) + 1, num_classes or 0)
        self._sq_norms = None
        if X.dtype == torch.uint8 and self.metric == "euclidean":
            self.X, self.byte_records = None, knn_bytes.prepare(X)
            knn_bytes.select_path(X.device)  # the product is chosen (timed, once per device type) now, not on a query
            return self
        self.X, self.byte_records = (X if X.is_floating_point() else X.float()), None
        if self.metric == "euclidean":
            self._sq_norms = torch.linalg.vector_norm(self.X, dim=1).square()
        return self

    @property
    def stores_bytes(self) -> bool:
        """Whether the records are kept (and must be queried) as uint8 bytes."""
        return self.byte_records is not None

    @property
    def shape(self) -> tuple[int, int]:
        """(records, features) stored."""
        if self.byte_records is not None:
            return self.byte_records.n, self.byte_records.p
        if self.X is None:
            raise RuntimeError("KNNClassifier has no records before fit(X, y)")
        return tuple(self.X.shape)

    @property
    def device(self) -> torch.device:
        return self.y.device if self.y is not None else torch.device("cpu")

    def _check_query(self, X: torch.Tensor) -> torch.Tensor:
        if self.y is None:
            raise RuntimeError("KNNClassifier.predict called before fit(X, y): there are no stored records")
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
        n, p = self.shape
        if X.dim() != 2 or X.shape[1] != p:
            raise ValueError(f"X must have shape (m, {p}) (the feature count seen in fit), got shape {tuple(X.shape)}")
        if self.k > n:
            raise ValueError(f"k = {self.k} is larger than the training set ({n} records)")
        if self.stores_bytes:
            if X.dtype != torch.uint8:
                raise TypeError(
                    f"this KNNClassifier keeps its records as bytes (uint8): query it with uint8 rows too, got "
                    f"{X.dtype} (nnref.data.to_bytes turns normalised MNIST rows back into their bytes)"
                )
            return X.to(self.device)
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

    def kneighbors(
        self, X: torch.Tensor, progress: Callable[[int], None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The k nearest stored records of each query: (distances (m, k), indices (m, k)), nearest first.
        (Squared distances for euclidean: exact int64 in byte units for byte records, float64 for floats.)
        ``progress(queries_done)`` is called after each chunk."""
        X = self._check_query(X)
        if self.stores_bytes:
            return self._byte_neighbours(X, progress)
        n = self.X.shape[0]
        m_cand = min(n, self.k + self.rerank)
        dists, idxs = [], []
        for start in range(0, X.shape[0], self.chunk_size):
            q = X[start : start + self.chunk_size]
            cand, _ = self._candidate_indices(q, m_cand).sort(dim=1)  # by index: the stable sort below breaks ties
            for part in range(0, q.shape[0], self.RERANK_ROWS):  # the float64 pass, a few queries at a time
                rows = slice(part, part + self.RERANK_ROWS)
                exact = self._exact_distances(q[rows], cand[rows])
                order = exact.argsort(dim=1, stable=True)[:, : self.k]
                dists.append(exact.gather(1, order))
                idxs.append(cand[rows].gather(1, order))
            if progress is not None:
                progress(q.shape[0])
        return torch.cat(dists), torch.cat(idxs) + self.offset

    def _byte_neighbours(self, X: torch.Tensor, progress) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`kneighbors` of uint8 queries against byte records, ``chunk_size`` queries at a time."""
        dists, idxs = [], []
        for start in range(0, X.shape[0], self.chunk_size):
            d, i = knn_bytes.kneighbors(self.byte_records, X[start : start + self.chunk_size], self.k)
            dists.append(d)
            idxs.append(i)
            if progress is not None:
                progress(d.shape[0])
        if not dists:  # no queries
            empty = torch.empty(0, self.k, dtype=torch.int64, device=self.device)
            return empty, empty.clone()
        return torch.cat(dists), torch.cat(idxs) + self.offset

    def candidates(self, X: torch.Tensor, progress=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(distances, indices, labels), each (m, k): :meth:`kneighbors` with the neighbours' labels."""
        dist, idx = self.kneighbors(X, progress)
        return dist, idx, self.y[idx - self.offset]

    def records(self, idx: torch.Tensor) -> torch.Tensor:
        """The stored rows (len(idx), p) of the records ``idx`` (training-set numbering), uint8 for byte records;
        zeros for the indices another shard holds (so summing over the shards gives every row)."""
        n, p = self.shape
        local = idx.to(self.device) - self.offset
        mine = (local >= 0) & (local < n)
        dtype = torch.uint8 if self.stores_bytes else self.X.dtype
        rows = torch.zeros(idx.shape[0], p, dtype=dtype, device=self.device)
        rows[mine] = self.byte_records.records(local[mine]) if self.stores_bytes else self.X[local[mine]]
        return rows

    # -- the shared classifier interface ------------------------------------------------------------
    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        """Vote shares (m, c): the fraction of the k neighbours in each class."""
        return vote_shares(self.candidates(X)[2], self.num_classes)

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """Majority vote of the k nearest neighbours (m,); a tie goes to the smallest label."""
        return vote(self.candidates(X)[2], self.num_classes)

    def memory_bytes(self) -> int:
        """What the model holds: the whole training set (the lecture's 'large memory cost')."""
        held = (self.X, self.y, self._sq_norms)
        records = self.byte_records.nbytes() if self.stores_bytes else 0
        return records + sum(t.numel() * t.element_size() for t in held if t is not None)
