"""``nnref train knn``: KNN's "training" on MNIST — store the records (a shard of them per rank under ``torchrun``),
search the neighbours of the validation and test images once, score every k, keep the best, draw the pictures and
write the run's checkpoint (the chosen k, no weights) — and the classifier a KNN checkpoint describes.

The lecture's model itself — :class:`~nnref.knn.KNNClassifier`, the vote, merging shards, choosing k — is
:mod:`nnref.knn`; this module runs it on MNIST.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable

import torch

from .. import viz
from ..data import MNISTSplits, load_data, to_images
from ..knn import KNNClassifier, choose_k, merge_neighbours, vote
from .checkpoint import FORMAT, save_checkpoint
from .config import KNNConfig, TrainingError, resolve_device
from .distributed import World, init_world
from .runlog import RunLog, SilentLog, make_run_dir

__all__ = ["NeighbourSearch", "run", "from_checkpoint", "chosen_k"]


# --------------------------------------------------------------------------------------------------
# KNN on MNIST: nnref train knn
# --------------------------------------------------------------------------------------------------
class NeighbourSearch:
    """Nearest neighbours over the records of every rank: each rank searches its shard, the candidates are
    gathered and merged with the one-process tie rule (distance, then training index)."""

    def __init__(self, knn: KNNClassifier, world: World, k: int) -> None:
        self.knn, self.world, self.k = knn, world, k  # k: the largest k asked for, over every rank

    @classmethod
    def store(cls, data: MNISTSplits, cfg: KNNConfig, world: World) -> NeighbourSearch:
        """KNN's "training": each rank keeps its shard of the training records (one process: all of them)."""
        n_train, k = data.train_x.shape[0], max(cfg.k)
        if k > n_train:
            raise TrainingError(f"k = {k} is larger than the training set ({n_train} images)")
        part = world.shard(n_train)
        knn = KNNClassifier(k=min(k, part.stop - part.start), metric=cfg.metric, chunk_size=cfg.chunk_size)
        if world.group:  # keep only this rank's shard of the records
            knn.fit(
                data.train_x[part].clone(), data.train_y[part].clone(), offset=part.start, num_classes=data.num_classes
            )
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
        rows = self.knn.records(idx.flatten())
        if self.knn.stores_bytes:  # (summed across ranks in int32: one rank's row plus zeros)
            rows = self.world.sum(rows.to(torch.int32)).to(torch.uint8)
        else:
            rows = self.world.sum(rows)
        return to_images(rows).reshape(*idx.shape, 28, 28)


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
            console(
                f"dry run: KNN (k={search.k}, {cfg.metric}) on {device}, {search.knn.shape[0]} records "
                f"({'bytes' if search.knn.stores_bytes else 'floats'}); "
                f"first test predictions {pred.tolist()}"
            )
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
        val_acc = (
            float((vote(val[2][:, :k], data.num_classes) == data.val_y).float().mean())
            if val is not None
            else float("nan")
        )
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
    log.figure(
        "knn/neighbours",
        viz.neighbours_grid(
            data.test_images[show],
            data.test_y[show].cpu(),
            search.images(idx),
            labels.cpu(),
            vote(labels, data.num_classes).cpu(),
        ),
        search.k,
    )


def _finish(cfg: KNNConfig, log, results, best_k, test_seconds, predictions, memory, world) -> dict:
    memory_per_rank = world.cat(torch.tensor([memory], dtype=torch.float64)).tolist()
    final = {
        "test_acc": results[best_k]["test_acc"],
        "val_acc": results[best_k]["val_acc"],
        "test_seconds": test_seconds,
        "records_bytes_per_rank": memory_per_rank,
    }
    # the chosen k's accuracies, where a parametric run keeps its final ones (x axis: k)
    log.scalars({"accuracy/test": final["test_acc"]}, best_k)
    if not math.isnan(final["val_acc"]):
        log.epoch_scalars("val", {"accuracy": final["val_acc"]}, best_k)
    log.hparams({"accuracy/test": final["test_acc"], "accuracy/val": final["val_acc"]})
    ckpt_path = log.run_dir / "checkpoint.pt" if log.run_dir else None
    if world.is_main:
        save_checkpoint(
            ckpt_path,
            {
                "format": FORMAT,
                "config": cfg.to_dict(),
                "model": None,
                "best_k": best_k,
                "results": {int(k): v for k, v in results.items()},
                "finished": True,
                "final": final,
                "global_step": 0,
                "world_size": world.size,
                "test_predictions": predictions.cpu(),
            },
        )
    log.status("finished", 0)
    log.close()
    chosen = "best k on validation" if not math.isnan(final["val_acc"]) else "no validation set (--val-size 0); k"
    ranks = f" ({world.size} ranks, {max(memory_per_rank) / 2**20:.1f} MiB of records each)" if world.size > 1 else ""
    log.say(
        f"{chosen}: {best_k}; test accuracy {final['test_acc']:.2%}; {test_seconds:.1f} s for "
        f"{predictions.shape[0]} test images{ranks}\nTensorBoard: tensorboard --logdir {cfg.logdir}"
    )
    return {
        "results": results,
        "best_k": best_k,
        "test_acc": final["test_acc"],
        "run_dir": str(log.run_dir),
        "checkpoint": str(ckpt_path),
        "test_seconds": test_seconds,
        "memory_per_rank": memory_per_rank,
    }


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
        data.train_x, data.train_y, num_classes=data.num_classes
    )
