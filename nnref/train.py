"""Training on MNIST: the lecture's loop  forward → loss → backward → w ← w − α ∂L/∂w.

:func:`train` reads top to bottom: set up (configuration, process group, data, model, run log), then for
each epoch train, evaluate, log and checkpoint, then finish (test set, pictures, hyper-parameters).  The
pieces it calls:

* :class:`Trainer` — the model, optimiser, batches and step of one run, and the epoch loop over them;
* :class:`DivergenceGuard` — stops at the first NaN/Inf loss or gradient, before it reaches the weights;
* :func:`train_knn` — KNN's "training": store the records (a shard of them per rank), pick k on validation.

Checkpoints (:mod:`nnref.checkpoint`) are written atomically after every epoch and every
``checkpoint_every`` steps, so a killed run resumes exactly with ``resume=PATH`` (or ``resume="auto"``).
Under ``torchrun`` every rank trains on its part of each global batch (:mod:`nnref.distributed`); rank 0
alone writes the run log and the checkpoints, and every number it logs is summed over all ranks.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from . import viz
from .checkpoint import FORMAT, TrainState, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import DEFAULTS, MODELS, TrainConfig, TrainingDiverged, TrainingError, resolve_device
from .data import DataError, MNISTSplits, load_data, make_loader, to_images
from .distributed import World, init_world, world_size_from_env
from .evaluate import evaluate
from .functional import value_checks
from .models import KNNClassifier, build_model as _build, merge_neighbours
from .runlog import RunLog, SilentLog, make_run_dir
from .steps import make_step

__all__ = ["TrainConfig", "train", "evaluate", "build_model", "save_checkpoint", "load_checkpoint",
           "resolve_device", "train_knn", "TrainingError", "TrainingDiverged", "DataError", "MODELS", "DEFAULTS",
           "Trainer", "DivergenceGuard", "lr_at", "seed_everything", "resume_path"]

Console = Callable[[str], None]


def train(cfg: TrainConfig, console: Console | None = None) -> dict:
    """Run one training job (or resume one) and return its final metrics and paths.

    ``console`` receives the progress lines (the CLI passes ``print``); nothing is printed without it.
    Under ``torchrun`` this is one rank of the job: only rank 0 prints and writes.
    """
    # ---- set up: the configuration (resolved once), then the process group
    path = resume_path(cfg)
    resumed = load_checkpoint(path) if path else None
    cfg = dataclasses.replace(cfg, resume=path).resolve(resumed["config"] if resumed else None)
    _check_before_joining(cfg)
    world, device = init_world(resolve_device(cfg.device))
    try:
        console = console if world.is_main and not cfg.quiet else None
        if cfg.model == "knn":
            return train_knn(cfg, device, console, world)
        return _train(cfg, resumed, device, world, console)
    finally:
        world.close()


def _train(cfg: TrainConfig, resumed: dict | None, device: torch.device, world: World, console) -> dict:
    # ---- set up: the data, the model and its parts, the run log
    seed_everything(cfg.seed)
    trainer = Trainer(cfg, load_data(cfg, device), device, world)
    if cfg.dry_run:
        return trainer.dry_run(console)
    if resumed and resumed.get("finished") and resumed["epoch"] >= cfg.epochs:
        return trainer.already_finished(resumed, console)
    # rank 0 alone creates the run folder (a default name holds a time stamp)
    run_dir = Path(cfg.resume).resolve().parent if resumed else make_run_dir(cfg) if world.is_main else None
    trainer.open(run_dir, resumed, console)

    # ---- for each epoch: train, evaluate, log, checkpoint
    t_start = time.perf_counter()
    with value_checks(device.type == "cpu"):  # on a GPU the labels were validated once, at load time
        while trainer.state.epoch < cfg.epochs:
            trainer.train_epoch()
            trainer.end_epoch()

    # ---- finish: the test set, once; pictures; hyper-parameters with the final metrics
    return trainer.finish(time.perf_counter() - t_start)


def resume_path(cfg: TrainConfig) -> str | None:
    """The checkpoint a run resumes from: ``--resume PATH``; with ``--resume auto`` the run folder's
    checkpoint if there is one (else a fresh start), so a restarted job carries on where it stopped."""
    if cfg.resume != "auto":
        return cfg.resume
    if not cfg.run_name:
        raise TrainingError("--resume auto needs --run-name: it resumes <logdir>/<run-name>/checkpoint.pt "
                            "when that exists and starts that run otherwise")
    path = Path(cfg.logdir) / cfg.run_name / "checkpoint.pt"
    return str(path) if path.exists() else None


def _check_before_joining(cfg: TrainConfig) -> None:
    """What every rank can see alike is checked before the process group exists: all ranks stop together."""
    size = world_size_from_env()
    if size > 1 and cfg.model != "knn" and cfg.batch_size % size:
        raise TrainingError(f"--batch-size {cfg.batch_size} is the global batch and must be divisible by the "
                            f"{size} processes of this torchrun job (e.g. {cfg.batch_size // size * size or size})")
    if cfg.nesterov and not cfg.momentum:
        raise TrainingError("--nesterov needs a --momentum above 0")
    if cfg.amp == "fp16" and resolve_device(cfg.device).type != "cuda":
        raise TrainingError("--amp fp16 needs a CUDA GPU (it relies on loss scaling); use --amp bf16 on a CPU")


def build_model(cfg: TrainConfig, in_features: int = 784, num_classes: int = 10) -> torch.nn.Module:
    """The parametric model a configuration describes (``num_classes`` 2: a binary task)."""
    return _build(cfg.model, in_features, 2 if cfg.binary else num_classes, cfg.hidden, cfg.activation)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The step size α of the update after ``step`` updates: constant, or cosine-annealed
    α = ½·lr·(1 + cos(π·step/T)) from lr towards 0 over the run's T steps."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    return cfg.lr


# --------------------------------------------------------------------------------------------------
class DivergenceGuard:
    """Stops training at the first step whose loss or gradient is NaN or infinite.

    Each step's health is one flag written on the device (no host sync); the flags are read back every
    ``every`` steps — every step on a CPU, so a bad gradient is caught before the optimizer applies it.
    Gradients are the same on every rank after DDP's all-reduce, so every rank reaches the same verdict;
    when only losses are checked (fp16 loss scaling) the verdict is summed over the ranks.
    """

    def __init__(self, params: list[torch.Tensor], device: torch.device, every: int, world: World) -> None:
        self.params, self.every, self.world = params, every, world
        self.flags = torch.ones(every, dtype=torch.bool, device=device)
        self.pending = 0  # flags written but not read yet

    def record(self, loss: torch.Tensor) -> None:
        """Flag this step: NaN/Inf anywhere in the loss or a gradient makes the sum non-finite."""
        with torch.no_grad():
            health = loss.detach().float()
            if self.params:
                health = health + torch.stack([p.grad.sum() for p in self.params]).sum()
            self.flags[self.pending] = torch.isfinite(health)
        self.pending += 1

    def due(self) -> bool:
        return self.pending == self.every

    def check(self, step_after: int) -> int | None:
        """Read the pending flags; ``step_after`` is the global step of the last flagged one.  Returns the
        global step of the first bad one, or None."""
        if self.pending == 0:
            return None
        flags = self.flags[:self.pending]
        if not self.params and self.world.group:
            flags = self.world.sum((~flags).int()) == 0
        flags, first = flags.tolist(), step_after - self.pending
        self.pending = 0
        return None if all(flags) else first + flags.index(False) + 1


# --------------------------------------------------------------------------------------------------
class Trainer:
    """The parts of one parametric run — model, optimiser, batches, step, state — and its epoch loop."""

    def __init__(self, cfg: TrainConfig, data: MNISTSplits, device: torch.device, world: World = World()) -> None:
        self.cfg, self.data, self.device, self.world = cfg, data, device, world
        self.model = build_model(cfg, data.train_x.shape[1], data.num_classes).to(device)
        self.net = self.model
        if world.group:  # gradients averaged over the ranks during backward
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.fused = cfg.loss == "fused"
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
        self.loader = make_loader(data.train_x, data.train_y, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                  rank=world.rank, world=world.size)
        self.steps_per_epoch = self.loader.sampler.batches_per_epoch()
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.state = TrainState().to(device)
        self.log: RunLog | SilentLog | None = None
        self.last_metrics: dict = {}

    # -- set up -------------------------------------------------------------------------------------
    def dry_run(self, console: Console | None) -> dict:
        """One step and one evaluation; nothing written."""
        xb, yb = next(iter(self.loader))
        loss = self.model.loss(self.net(xb), yb, fused=self.fused)
        loss.backward()
        self.optimizer.step()
        val_loss, _, _ = evaluate(self.model, self.data.val_x[:1000], self.data.val_y[:1000], self.fused)
        if console:
            console(f"dry run: {type(self.model).__name__} on {self.device}, {self.data.train_x.shape[0]} training "
                    f"images, {self.steps_per_epoch} steps/epoch; one step: loss {float(loss.detach()):.4f}, "
                    f"val loss {val_loss:.4f}")
        return {"dry_run": True, "loss": float(loss.detach())}

    def already_finished(self, resumed: dict, console: Console | None) -> dict:
        """A resumed run that had completed (e.g. ``--resume auto`` run again): nothing to do."""
        path = Path(self.cfg.resume)
        if console:
            console(f"{path.parent} has finished already (epoch {resumed['epoch']} of {self.cfg.epochs}); "
                    f"test accuracy {resumed['final']['test_acc']:.2%}. Raise --epochs to train on.")
        return {**resumed["final"], "run_dir": str(path.parent), "checkpoint": str(path), "train_seconds": 0.0}

    def open(self, run_dir: Path | None, resumed: dict | None, console: Console | None) -> None:
        """Restore a checkpoint's state (if resuming), open the run log, build the step and the guard."""
        self.ckpt_path = run_dir / "checkpoint.pt" if run_dir is not None else None
        if resumed is not None:
            self.model.load_state_dict(resumed["model"])
            self.optimizer.load_state_dict(resumed["optimizer"])
            self.loader.sampler.load_state_dict(resumed["sampler"])
            set_rng_state(resumed["rng"])
            # the checkpoint's sums are the job's: rank 0 carries them on, the other ranks start from zero
            self.state = TrainState.from_dict(resumed, sums=self.world.is_main).to(self.device)
        # a fresh run purges whatever an earlier attempt left in its folder; a resumed run, whatever came after
        # its checkpoint (events up to the checkpoint's step were flushed before it was written)
        purge = self.state.global_step + 1 if resumed else 0
        self.log = RunLog(run_dir, self.cfg, console, purge_step=purge) if self.world.is_main else SilentLog(run_dir)
        self._announce(run_dir, resumed is not None)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        data, bs = self.data, self.cfg.batch_size // self.world.size
        self.step = make_step(self.model, self.fused, data.train_x[:bs], data.train_y[:bs],
                              cuda_graphs=self.cfg.cuda_graphs, compile=self.cfg.compile, amp=self.cfg.amp,
                              net=self.net if self.world.group else None)
        every = 1 if self.device.type == "cpu" else max(1, min(self.cfg.log_every, 64))
        # with fp16 loss scaling, an overflowing gradient is the GradScaler's to skip: check the loss only
        self.guard = DivergenceGuard(self.params if self.step.checks_gradients else [], self.device, every,
                                     self.world)
        self.epoch_started = time.perf_counter()

    def _announce(self, run_dir: Path, resumed: bool) -> None:
        self.log.status("running", self.state.global_step)
        if resumed:
            self.log.say(f"resuming {run_dir} at epoch {self.state.epoch + 1}, step {self.state.global_step}")
            return
        self.log.describe()
        if self.world.is_main:
            self._embeddings(0, pixels=True)
        d, ranks = self.data, f" × {self.world.size} processes" if self.world.size > 1 else ""
        self.log.say(f"training {type(self.model).__name__} on {self.device}{ranks}: {d.train_x.shape[0]} train / "
                     f"{d.val_x.shape[0]} val / {d.test_x.shape[0]} test images; TensorBoard run {run_dir}")

    # -- one epoch ----------------------------------------------------------------------------------
    def train_epoch(self) -> None:
        """The remaining batches of the current epoch: forward, loss, backward, check, update."""
        cfg, state, sampler = self.cfg, self.state, self.loader.sampler
        self.epoch_started = time.perf_counter()
        for xb, yb in self._batches():
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(cfg, state.global_step, self.total_steps)
            # this rank's share of the global batch's mean loss (1 unless the ranks hold it unevenly)
            weight = yb.shape[0] * self.world.size / sampler.global_batch_size(state.batches_done)
            loss, logits = self.step(xb, yb, weight)  # forward, loss, backward: every p.grad is filled
            self.guard.record(loss)
            if self.guard.due():
                self._verify(state.global_step + 1)  # before the optimizer applies a bad gradient (CPU)
            with torch.no_grad():
                state.add_batch(loss.detach(), (self.model.predictions(logits) == yb).sum(), yb.shape[0])
            self.step.update(self.optimizer)
            state.global_step += 1
            state.batches_done += 1
            if state.global_step % cfg.log_every == 0:
                self._log_step()
            if cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0 and \
                    state.batches_done < self.steps_per_epoch:
                self.save()
        self._verify(state.global_step)

    def _batches(self):
        from tqdm.auto import tqdm

        show = self.log.console is not None and sys.stderr.isatty()
        return tqdm(self.loader, total=len(self.loader.sampler), disable=not show, leave=False,
                    desc=f"epoch {self.state.epoch + 1}/{self.cfg.epochs}")

    def _verify(self, step_after: int) -> None:
        bad = self.guard.check(step_after)
        if bad is None:
            return
        epoch = (bad - 1) // self.steps_per_epoch + 1
        kept = f"the last good checkpoint {self.ckpt_path} is untouched" if self.ckpt_path and \
            self.ckpt_path.exists() else "no checkpoint had been written yet"
        message = (f"training diverged: the loss or a gradient became NaN/Inf at epoch {epoch}, step "
                   f"{bad - (epoch - 1) * self.steps_per_epoch} of the epoch (global step {bad}); {kept}. "
                   f"Try a smaller --lr (now {self.cfg.lr}).")
        self.log.status("diverged", bad, message)
        self.log.close()
        raise TrainingDiverged(message)

    def _log_step(self) -> None:
        """``loss/train_step``: the mean training loss since the last point, over every rank."""
        self._verify(self.state.global_step)
        loss_sum, count = self.world.sum(self.state.window.clone()).tolist()
        self.log.scalars({"loss/train_step": loss_sum / count}, self.state.global_step)
        self.state.window.zero_()

    # -- end of an epoch ----------------------------------------------------------------------------
    def end_epoch(self) -> dict:
        """Evaluate on validation, log the epoch, checkpoint; returns the epoch's metrics."""
        loss_sum, correct, count = self.world.sum(self.state.epoch_stats.clone()).tolist()
        metrics = {"train_loss": loss_sum / count, "train_accuracy": correct / count}
        if self.data.val_x.shape[0]:
            val_loss, val_acc, _ = self.evaluate(self.data.val_x, self.data.val_y)
            metrics |= {"val_loss": val_loss, "val_accuracy": val_acc}
        step, epoch = self.state.global_step, self.state.epoch + 1
        self.log.epoch(epoch, self.cfg.epochs, metrics, time.perf_counter() - self.epoch_started, step)
        self.log.scalars({"lr": self.optimizer.param_groups[0]["lr"]}, step)  # the α of the epoch's last step
        self.log.histograms(self.model, step)
        self.state.end_epoch()
        self.last_metrics = metrics
        self.save()
        return metrics

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, torch.Tensor]:
        """Mean loss, accuracy and predictions on (x, y), every row counted once: each rank evaluates its
        shard of the rows and the sums are added up."""
        part = self.world.shard(x.shape[0])
        loss, _, pred = evaluate(self.model, x[part], y[part], self.fused)
        n = pred.shape[0]
        sums = torch.tensor([loss * n if n else 0.0, float((pred == y[part]).sum()), n], dtype=torch.float64,
                            device=self.device)
        loss_sum, correct, count = self.world.sum(sums).tolist()
        return loss_sum / count, correct / count, self.world.cat(pred)

    def save(self, **extra) -> None:
        """Flush the events up to this step, then (rank 0) write the checkpoint atomically, with the sums of
        every rank."""
        sums = {"epoch_stats": self.world.sum(self.state.epoch_stats.clone()),
                "window": self.world.sum(self.state.window.clone())}
        if not self.world.is_main:
            return
        self.log.flush()
        save_checkpoint(self.ckpt_path, {
            "format": FORMAT, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "sampler": self.loader.sampler.state_dict(
                self.state.batches_done), "rng": rng_state(), **self.state.to_dict(),
            **{k: v.cpu() for k, v in sums.items()}, "world_size": self.world.size, "last_metrics": self.last_metrics,
            **extra})

    #: How many test images the embedding projector shows.
    EMBEDDED = 2000

    def _embeddings(self, step: int, pixels: bool = False) -> None:
        """The projector's views of the first test images: the raw pixels (once) and, for an MLP, its last
        hidden layer — before training and after it, so the classes can be seen to separate."""
        d, n = self.data, min(self.EMBEDDED, self.data.test_x.shape[0])
        x, labels, images = d.test_x[:n], d.test_y[:n], d.test_images[:n]
        if pixels:
            self.log.embedding("test_images/pixels", x, labels, images, d.class_names, step)
        if hasattr(self.model, "hidden_outputs"):
            with torch.no_grad():
                hidden = self.model.hidden_outputs(x)[-1]
            self.log.embedding("test_images/last_hidden_layer", hidden, labels, images, d.class_names, step)

    # -- finish -------------------------------------------------------------------------------------
    def finish(self, train_seconds: float) -> dict:
        """The test set (looked at once), pictures, hyper-parameters; returns the run's results."""
        data, log, step = self.data, self.log, self.state.global_step
        test_loss, test_acc, test_pred = self.evaluate(data.test_x, data.test_y)
        log.scalars({"accuracy/test": test_acc, "loss/test": test_loss}, step)
        log.model_pictures(self.model, data.class_names, step)
        log.test_pictures(data.test_images, data.test_y, test_pred, data.class_names, step)
        if self.world.is_main:
            with torch.no_grad():
                log.pr_curves(data.test_y, self.model.eval().predict_proba(data.test_x), data.class_names, step)
            self.model.train()
            self._embeddings(step)
        if "val_accuracy" not in self.last_metrics and data.val_x.shape[0]:  # a resumed, already complete run
            self.last_metrics["val_accuracy"] = self.evaluate(data.val_x, data.val_y)[1]
        val_acc = self.last_metrics.get("val_accuracy", float("nan"))
        log.hparams({"accuracy/test": test_acc, "accuracy/val": val_acc, "loss/test": test_loss})
        final = {"test_acc": test_acc, "test_loss": test_loss, "val_acc": val_acc, "train_seconds": train_seconds}
        self.save(finished=True, final=final)
        log.status("finished", step)
        log.close()
        log.say(f"test accuracy {test_acc:.2%} (loss {test_loss:.4f}); {train_seconds:.1f} s of training\n"
                f"checkpoint: {self.ckpt_path}\nTensorBoard: tensorboard --logdir {self.cfg.logdir}")
        return {**final, "run_dir": str(self.ckpt_path.parent) if self.ckpt_path else None,
                "checkpoint": str(self.ckpt_path) if self.ckpt_path else None}


# --------------------------------------------------------------------------------------------------
def train_knn(cfg: TrainConfig, device: torch.device, console: Console | None = None, world: World = World()) -> dict:
    """KNN "training" stores the records — under torchrun each rank stores only its shard — then each k is
    evaluated on validation and test; the best on validation is chosen (ties: the smaller k; without
    validation, the first k asked for)."""
    data = load_data(cfg, device)
    n_train = data.train_x.shape[0]
    if max(cfg.k) > n_train:
        raise TrainingError(f"k = {max(cfg.k)} is larger than the training set ({n_train} images)")
    part = world.shard(n_train)
    knn = KNNClassifier(k=min(max(cfg.k), part.stop - part.start), metric=cfg.metric, chunk_size=cfg.batch_size)
    if world.group:  # keep only this rank's shard of the records
        knn.fit(data.train_x[part].clone(), data.train_y[part].clone(), offset=part.start)
        data.train_x = data.train_y = None
    else:
        knn.fit(data.train_x, data.train_y)
    search = _KNNSearch(knn, world, max(cfg.k))
    if cfg.dry_run:
        pred = search.vote(search.neighbours(data.test_x[:10])[2], max(cfg.k))
        if console:
            console(f"dry run: KNN (k={max(cfg.k)}, {cfg.metric}) on {device}, {n_train} records; "
                    f"first test predictions {pred.tolist()}")
        return {"dry_run": True}
    log = RunLog(make_run_dir(cfg), cfg, console, purge_step=0) if world.is_main else SilentLog(None)
    log.describe()
    t0 = time.perf_counter()
    test = search.neighbours(data.test_x)
    test_seconds = time.perf_counter() - t0
    val = search.neighbours(data.val_x) if data.val_x.shape[0] else None
    results = _knn_results(search, data, test, val, cfg.k, log)
    best_k = max(results, key=lambda k: (results[k]["val_acc"], -k)) if val is not None else cfg.k[0]
    _knn_pictures(log, search, data, test, best_k, max(cfg.k))
    predictions = search.vote(test[2], best_k)
    return _finish_knn(cfg, log, results, best_k, test_seconds, predictions, knn.memory_bytes(), world)


class _KNNSearch:
    """Nearest neighbours over the records of every rank: each rank searches its shard, the candidates are
    gathered and merged with the one-process tie rule (distance, then training index)."""

    def __init__(self, knn: KNNClassifier, world: World, k: int) -> None:
        self.knn, self.world, self.k = knn, world, k

    def neighbours(self, X: torch.Tensor):
        """(distances, global indices, labels), each (m, k), nearest first."""
        d, i, y = self.knn.candidates(X)
        if self.world.group:
            d, i, y = (self.world.cat(t.t().contiguous()).t() for t in (d, i, y))  # every rank's, side by side
            d, i, y = merge_neighbours(d, i, y, self.k)
        return d, i, y

    def vote(self, labels: torch.Tensor, k: int) -> torch.Tensor:
        return self.knn.vote_labels(labels[:, :k])


def _knn_results(search: _KNNSearch, data, test, val, ks, log) -> dict:
    """Validation and test accuracy of every k from one neighbour search (x axis of the scalars: k)."""
    results = {}
    for k in sorted(ks):
        test_acc = float((search.vote(test[2], k) == data.test_y).float().mean())
        val_acc = float((search.vote(val[2], k) == data.val_y).float().mean()) if val is not None else float("nan")
        log.scalars({"accuracy_by_k/test": test_acc} | ({"accuracy_by_k/val": val_acc} if val is not None else {}), k)
        results[k] = {"test_acc": test_acc, "val_acc": val_acc}
        val_text = f"val acc {val_acc:.2%} | " if val is not None else ""
        log.say(f"k = {k}: {val_text}test acc {test_acc:.2%}")
    return results


def _knn_pictures(log, search: _KNNSearch, data, test, best_k: int, k_show: int) -> None:
    """Confusion matrix and mistakes of the chosen k; test images beside their nearest training images."""
    best_pred = search.vote(test[2], best_k)
    log.test_pictures(data.test_images, data.test_y, best_pred, data.class_names, best_k, f"k = {best_k}")
    wrong = (best_pred != data.test_y).nonzero().flatten()[:3].cpu()
    show = torch.cat([torch.arange(min(5, data.test_x.shape[0])), wrong])
    idx, labels = test[1][show, :k_show], test[2][show, :k_show]
    neighbours = to_images(search.world.sum(search.knn.records(idx.flatten()))).reshape(*idx.shape, 28, 28)
    log.figure("knn/neighbours", viz.neighbours_grid(data.test_images[show], data.test_y[show].cpu(), neighbours,
                                                     labels.cpu(), search.vote(labels, k_show).cpu()), k_show)


def _finish_knn(cfg, log, results, best_k, test_seconds, predictions, memory, world) -> dict:
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
