"""k-nearest neighbours, the lecture's non-parametric model: store the records, a distance metric, k, a vote.

Everything KNN is lives here, on one path that ``nnref train knn``, ``nnref eval``, ``nnref predict``, the
playground, the lab and the bench all use:

* :class:`KNNClassifier` — the stored records and the exact neighbour search;
* :func:`vote` — the majority vote among neighbours' labels (a tie goes to the smallest label);
* :func:`merge_neighbours` — several candidate lists (one per rank) merged with the one-process tie rule;
* :func:`choose_k` — the k with the best validation accuracy (ties: the smaller k);
* :func:`run` — KNN's "training" on MNIST: store the records (a shard of them per rank under ``torchrun``),
  search the neighbours of the validation and test images once, score every k, keep the best, draw the
  pictures and write the run's checkpoint (the chosen k, no weights);
* :func:`from_checkpoint` — the classifier a KNN checkpoint describes (its records re-read from MNIST).

"fast training, large memory cost, slow inference: O(p n) for each test point" — the lecture's three points are
what ``nnref bench --only cost`` measures.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Callable

import torch

from . import viz
from .checkpoint import FORMAT, save_checkpoint
from .config import KNNConfig, TrainingError, resolve_device
from .data import MNISTSplits, load_data, to_images
from .distributed import World, init_world
from .runlog import RunLog, SilentLog, make_run_dir

__all__ = ["METRICS", "KNNClassifier", "vote", "vote_shares", "merge_neighbours", "choose_k", "NeighbourSearch",
           "run", "from_checkpoint", "chosen_k"]

METRICS = ("euclidean", "manhattan", "cosine")


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
        self.num_classes = 0
        self.X: torch.Tensor | None = None
        self.y: torch.Tensor | None = None

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, X: torch.Tensor, y: torch.Tensor, offset: int = 0, num_classes: int | None = None
            ) -> "KNNClassifier":
        """Store the training records X (n, p) and labels y (n,).  Nothing is learned: O(1) training.

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
        self.X = X if X.is_floating_point() else X.float()
        self.y = y.to(device=X.device, dtype=torch.long)
        self.offset = offset
        self.num_classes = max(int(self.y.max()) + 1, num_classes or 0)
        self._sq_norms = torch.linalg.vector_norm(self.X, dim=1).square() if self.metric == "euclidean" else None
        return self

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

    def kneighbors(self, X: torch.Tensor, progress: Callable[[int], None] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The k nearest stored records of each query: (distances (m, k), indices (m, k)), nearest first.
        (Squared distances for euclidean.)  ``progress(queries_done)`` is called after each chunk."""
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
            if progress is not None:
                progress(q.shape[0])
        return torch.cat(dists), torch.cat(idxs) + self.offset

    def candidates(self, X: torch.Tensor, progress=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(distances, indices, labels), each (m, k): :meth:`kneighbors` with the neighbours' labels."""
        dist, idx = self.kneighbors(X, progress)
        return dist, idx, self.y[idx - self.offset]

    def records(self, idx: torch.Tensor) -> torch.Tensor:
        """The stored rows (len(idx), p) of the records ``idx`` (training-set numbering); zeros for the
        indices another shard holds (so summing over the shards gives every row)."""
        local = idx - self.offset
        mine = (local >= 0) & (local < self.X.shape[0])
        rows = torch.zeros(idx.shape[0], self.X.shape[1], dtype=self.X.dtype, device=self.X.device)
        rows[mine] = self.X[local[mine]]
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
        held = (self.X, self.y, self._sq_norms) if self.X is not None else ()
        return sum(t.numel() * t.element_size() for t in held if t is not None)


# --------------------------------------------------------------------------------------------------
# KNN on MNIST: nnref train knn
# --------------------------------------------------------------------------------------------------
class NeighbourSearch:
    """Nearest neighbours over the records of every rank: each rank searches its shard, the candidates are
    gathered and merged with the one-process tie rule (distance, then training index)."""

    def __init__(self, knn: KNNClassifier, world: World, k: int) -> None:
        self.knn, self.world, self.k = knn, world, k  # k: the largest k asked for, over every rank

    @classmethod
    def store(cls, data: MNISTSplits, cfg: KNNConfig, world: World) -> "NeighbourSearch":
        """KNN's "training": each rank keeps its shard of the training records (one process: all of them)."""
        n_train, k = data.train_x.shape[0], max(cfg.k)
        if k > n_train:
            raise TrainingError(f"k = {k} is larger than the training set ({n_train} images)")
        part = world.shard(n_train)
        knn = KNNClassifier(k=min(k, part.stop - part.start), metric=cfg.metric, chunk_size=cfg.chunk_size)
        if world.group:  # keep only this rank's shard of the records
            knn.fit(data.train_x[part].clone(), data.train_y[part].clone(), offset=part.start,
                    num_classes=data.num_classes)
            data.train_x = data.train_y = None
        else:
            knn.fit(data.train_x, data.train_y, num_classes=data.num_classes)
        return cls(knn, world, k)

    def neighbours(self, X: torch.Tensor, progress=None):
        """(distances, global indices, labels), each (m, k), nearest first."""
        d, i, y = self.knn.candidates(X, progress)
        if self.world.group:
            d, i, y = (self.world.cat(t.t().contiguous()).t() for t in (d, i, y))  # every rank's, side by side
            d, i, y = merge_neighbours(d, i, y, self.k)
        return d, i, y

    def images(self, idx: torch.Tensor) -> torch.Tensor:
        """The training images (m, k, 28, 28) of the neighbours idx (m, k), whichever rank holds them."""
        return to_images(self.world.sum(self.knn.records(idx.flatten()))).reshape(*idx.shape, 28, 28)


def run(cfg: KNNConfig, console: Callable[[str], None] | None = None) -> dict:
    """``nnref train knn``: store the records, score every k of ``cfg.k`` on validation and test from one
    neighbour search, keep the best on validation (ties: the smaller k; without validation, the first k),
    write the pictures and the checkpoint.  Under ``torchrun`` each rank stores only its shard."""
    cfg = cfg.resolve()
    world, device = init_world(resolve_device(cfg.device))
    try:
        result = _run(cfg, device, world, console if world.is_main and not cfg.quiet else None)
    except BaseException:
        world.close()
        raise
    world.close(finished=True)
    return result


def _run(cfg: KNNConfig, device: torch.device, world: World, console) -> dict:
    data = load_data(cfg, device)
    search = NeighbourSearch.store(data, cfg, world)
    if cfg.dry_run:
        pred = vote(search.neighbours(data.test_x[:10])[2], data.num_classes)
        if console:
            console(f"dry run: KNN (k={search.k}, {cfg.metric}) on {device}, {search.knn.X.shape[0]} records; "
                    f"first test predictions {pred.tolist()}")
        return {"dry_run": True}
    log = RunLog(make_run_dir(cfg), cfg, console, purge_step=0) if world.is_main else SilentLog(None)
    log.describe()
    log.status("running", 0)
    t0 = time.perf_counter()
    with _progress(log, data.test_x.shape[0], "neighbours of the test images") as progress:
        test = search.neighbours(data.test_x, progress)
    test_seconds = time.perf_counter() - t0
    val = search.neighbours(data.val_x) if data.val_x.shape[0] else None
    results = _score_every_k(data, test, val, cfg.k, log)
    best_k = choose_k(results, cfg.k)
    predictions = vote(test[2][:, :best_k], data.num_classes)
    _pictures(log, search, data, test, predictions, best_k)
    return _finish(cfg, log, results, best_k, test_seconds, predictions, search.knn.memory_bytes(), world)


@contextlib.contextmanager
def _progress(log, total: int, what: str):
    """A progress bar over the neighbour search when a person watches (a console and a terminal): yields
    the callback that advances it, or None."""
    from tqdm.auto import tqdm

    if log.console is None or not sys.stderr.isatty():
        yield None
        return
    with tqdm(total=total, unit=" images", desc=what, leave=False) as bar:
        yield bar.update


def _score_every_k(data: MNISTSplits, test, val, ks, log) -> dict:
    """Validation and test accuracy of every k from one neighbour search (x axis of the scalars: k)."""
    results = {}
    for k in sorted(ks):
        test_acc = float((vote(test[2][:, :k], data.num_classes) == data.test_y).float().mean())
        val_acc = float((vote(val[2][:, :k], data.num_classes) == data.val_y).float().mean()) if val is not None \
            else float("nan")
        log.scalars({"accuracy_by_k/test": test_acc} | ({"accuracy_by_k/val": val_acc} if val is not None else {}), k)
        results[k] = {"test_acc": test_acc, "val_acc": val_acc}
        val_text = f"val acc {val_acc:.2%} | " if val is not None else ""
        log.say(f"k = {k}: {val_text}test acc {test_acc:.2%}")
    return results


def _pictures(log, search: NeighbourSearch, data: MNISTSplits, test, predictions, best_k: int) -> None:
    """Confusion matrix and mistakes of the chosen k; test images beside their nearest training images."""
    log.test_pictures(data.test_images, data.test_y, predictions, data.class_names, best_k, f"k = {best_k}")
    wrong = (predictions != data.test_y).nonzero().flatten()[:3].cpu()
    show = torch.cat([torch.arange(min(5, data.test_x.shape[0])), wrong])
    idx, labels = test[1][show], test[2][show]
    log.figure("knn/neighbours", viz.neighbours_grid(data.test_images[show], data.test_y[show].cpu(),
                                                     search.images(idx), labels.cpu(),
                                                     vote(labels, data.num_classes).cpu()), search.k)


def _finish(cfg: KNNConfig, log, results, best_k, test_seconds, predictions, memory, world) -> dict:
    memory_per_rank = world.cat(torch.tensor([memory], dtype=torch.float64)).tolist()
    final = {"test_acc": results[best_k]["test_acc"], "val_acc": results[best_k]["val_acc"],
             "test_seconds": test_seconds, "records_bytes_per_rank": memory_per_rank}
    # the chosen k's accuracies, where a parametric run keeps its final ones (x axis: k)
    log.scalars({"accuracy/test": final["test_acc"]}, best_k)
    if not math.isnan(final["val_acc"]):
        log.epoch_scalars("val", {"accuracy": final["val_acc"]}, best_k)
    log.hparams({"accuracy/test": final["test_acc"], "accuracy/val": final["val_acc"]})
    ckpt_path = log.run_dir / "checkpoint.pt" if log.run_dir else None
    if world.is_main:
        save_checkpoint(ckpt_path, {"format": FORMAT, "config": cfg.to_dict(), "model": None, "best_k": best_k,
                                    "results": {int(k): v for k, v in results.items()}, "finished": True,
                                    "final": final, "global_step": 0, "world_size": world.size,
                                    "test_predictions": predictions.cpu()})
    log.status("finished", 0)
    log.close()
    chosen = "best k on validation" if not math.isnan(final["val_acc"]) else "no validation set (--val-size 0); k"
    ranks = f" ({world.size} ranks, {max(memory_per_rank) / 2**20:.1f} MiB of records each)" if world.size > 1 else ""
    log.say(f"{chosen}: {best_k}; test accuracy {final['test_acc']:.2%}; {test_seconds:.1f} s for "
            f"{predictions.shape[0]} test images{ranks}\nTensorBoard: tensorboard --logdir {cfg.logdir}")
    return {"results": results, "best_k": best_k, "test_acc": final["test_acc"], "run_dir": str(log.run_dir),
            "checkpoint": str(ckpt_path), "test_seconds": test_seconds, "memory_per_rank": memory_per_rank}


# --------------------------------------------------------------------------------------------------
# A KNN checkpoint, used again
# --------------------------------------------------------------------------------------------------
def chosen_k(state: dict) -> int:
    """The k a KNN run chose on validation (the one its ``accuracy/test`` was reported for)."""
    if state.get("best_k") is not None:
        return int(state["best_k"])
    return choose_k(state.get("results") or {}, state["config"]["k"])


def from_checkpoint(state: dict, cfg: KNNConfig, device, data_root=None, download: bool = False) -> KNNClassifier:
    """The classifier of a KNN checkpoint: it holds no records, so they are re-read from MNIST; it votes with
    the k the run chose on validation."""
    data = load_data(cfg, device, data_root, download)
    return KNNClassifier(chosen_k(state), cfg.metric, chunk_size=cfg.chunk_size).fit(
        data.train_x, data.train_y, num_classes=data.num_classes)
