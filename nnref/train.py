"""Training on MNIST: the lecture's loop  forward → loss → backward → w ← w − α ∂L/∂w.

:func:`train` reads top to bottom: set up (configuration, data, model, run log), then for each epoch
train, evaluate, log and checkpoint, then finish (test set, pictures, hyper-parameters).  The pieces it calls:

* :class:`Trainer` — the model, optimiser, batches and step of one run, and the epoch loop over them;
* :class:`DivergenceGuard` — stops at the first NaN/Inf loss or gradient, before it reaches the weights;
* :func:`train_knn` — KNN's "training": store the records, pick k on validation.

Checkpoints (:mod:`nnref.checkpoint`) are written atomically after every epoch and every
``checkpoint_every`` steps, so a killed run resumes exactly with ``resume=PATH``.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from .checkpoint import FORMAT, TrainState, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import DEFAULTS, MODELS, TrainConfig, TrainingDiverged, TrainingError, resolve_device
from .data import DataError, MNISTSplits, load_data, make_loader, to_images
from .evaluate import evaluate
from .functional import value_checks
from .models import KNNClassifier, build_model as _build
from .runlog import RunLog, make_run_dir
from .steps import make_step
from . import viz

__all__ = ["TrainConfig", "train", "evaluate", "build_model", "save_checkpoint", "load_checkpoint",
           "resolve_device", "train_knn", "TrainingError", "TrainingDiverged", "DataError", "MODELS", "DEFAULTS",
           "Trainer", "DivergenceGuard", "lr_at", "seed_everything"]

Console = Callable[[str], None]


def train(cfg: TrainConfig, console: Console | None = None) -> dict:
    """Run one training job (or resume one) and return its final metrics and paths.

    ``console`` receives the progress lines (the CLI passes ``print``); nothing is printed without it.
    """
    # ---- set up: the configuration (resolved once), the data, the model and its run log
    resumed = load_checkpoint(cfg.resume) if cfg.resume else None
    cfg = cfg.resolve(resumed["config"] if resumed else None)
    console = None if cfg.quiet else console
    device = resolve_device(cfg.device)
    if cfg.model == "knn":
        return train_knn(cfg, device, console)
    seed_everything(cfg.seed)
    data = load_data(cfg, device)
    trainer = Trainer(cfg, data, device)
    if cfg.dry_run:
        return trainer.dry_run(console)
    run_dir = Path(cfg.resume).resolve().parent if resumed else make_run_dir(cfg)
    trainer.open(run_dir, resumed, console)

    # ---- for each epoch: train, evaluate, log, checkpoint
    t_start = time.perf_counter()
    with value_checks(device.type == "cpu"):  # on a GPU the labels were validated once, at load time
        while trainer.state.epoch < cfg.epochs:
            trainer.train_epoch()
            trainer.end_epoch()

    # ---- finish: the test set, once; pictures; hyper-parameters with the final metrics
    return trainer.finish(time.perf_counter() - t_start)


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
    """

    def __init__(self, params: list[torch.Tensor], device: torch.device, every: int) -> None:
        self.params, self.every = params, every
        self.flags = torch.ones(every, dtype=torch.bool, device=device)
        self.pending = 0  # flags written but not read yet

    def record(self, loss: torch.Tensor) -> None:
        """Flag this step: NaN/Inf anywhere in the loss or a gradient makes the sum non-finite."""
        with torch.no_grad():
            health = loss.detach() + torch.stack([p.grad.sum() for p in self.params]).sum()
            self.flags[self.pending] = torch.isfinite(health)
        self.pending += 1

    def due(self) -> bool:
        return self.pending == self.every

    def check(self, step_after: int) -> int | None:
        """Read the pending flags; ``step_after`` is the global step of the last flagged one.  Returns the
        global step of the first bad one, or None."""
        if self.pending == 0:
            return None
        flags, first = self.flags[:self.pending].tolist(), step_after - self.pending
        self.pending = 0
        return None if all(flags) else first + flags.index(False) + 1


# --------------------------------------------------------------------------------------------------
class Trainer:
    """The parts of one parametric run — model, optimiser, batches, step, state — and its epoch loop."""

    def __init__(self, cfg: TrainConfig, data: MNISTSplits, device: torch.device) -> None:
        self.cfg, self.data, self.device = cfg, data, device
        self.model = build_model(cfg, data.train_x.shape[1], data.num_classes).to(device)
        self.fused = cfg.loss == "fused"
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.loader = make_loader(data.train_x, data.train_y, cfg.batch_size, shuffle=True, seed=cfg.seed)
        self.steps_per_epoch = self.loader.sampler.batches_per_epoch()
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.state = TrainState().to(device)
        self.log: RunLog | None = None
        self.last_metrics: dict = {}

    # -- set up -------------------------------------------------------------------------------------
    def dry_run(self, console: Console | None) -> dict:
        """One step and one evaluation; nothing written."""
        xb, yb = next(iter(self.loader))
        loss = self.model.loss(self.model(xb), yb, fused=self.fused)
        loss.backward()
        self.optimizer.step()
        val_loss, _, _ = evaluate(self.model, self.data.val_x[:1000], self.data.val_y[:1000], self.fused)
        if console:
            console(f"dry run: {type(self.model).__name__} on {self.device}, {self.data.train_x.shape[0]} training "
                    f"images, {self.steps_per_epoch} steps/epoch; one step: loss {float(loss.detach()):.4f}, "
                    f"val loss {val_loss:.4f}")
        return {"dry_run": True, "loss": float(loss.detach())}

    def open(self, run_dir: Path, resumed: dict | None, console: Console | None) -> RunLog:
        """Restore a checkpoint's state (if resuming), open the run log, build the step and the guard."""
        self.ckpt_path = run_dir / "checkpoint.pt"
        if resumed is not None:
            self.model.load_state_dict(resumed["model"])
            self.optimizer.load_state_dict(resumed["optimizer"])
            self.loader.sampler.load_state_dict(resumed["sampler"])
            set_rng_state(resumed["rng"])
            self.state = TrainState.from_dict(resumed).to(self.device)
        # events up to the checkpoint's step were flushed before it was written; anything later is stale
        self.log = RunLog(run_dir, self.cfg, console, purge_step=self.state.global_step + 1 if resumed else None)
        data = self.data
        if resumed:
            self.log.say(f"resuming {run_dir} at epoch {self.state.epoch + 1}, step {self.state.global_step}")
        else:
            self.log.describe()
            self.log.say(f"training {type(self.model).__name__} on {self.device}: {data.train_x.shape[0]} train / "
                         f"{data.val_x.shape[0]} val / {data.test_x.shape[0]} test images; TensorBoard run {run_dir}")
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        example = (data.train_x[:self.cfg.batch_size], data.train_y[:self.cfg.batch_size])
        self.step = make_step(self.model, self.fused, *example, cuda_graphs=self.cfg.cuda_graphs)
        every = 1 if self.device.type == "cpu" else max(1, min(self.cfg.log_every, 64))
        self.guard = DivergenceGuard(self.params, self.device, every)
        self.epoch_started = time.perf_counter()
        return self.log

    # -- one epoch ----------------------------------------------------------------------------------
    def train_epoch(self) -> None:
        """The remaining batches of the current epoch: forward, loss, backward, check, update."""
        cfg, state = self.cfg, self.state
        self.epoch_started = time.perf_counter()
        for xb, yb in self._batches():
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(cfg, state.global_step, self.total_steps)
            loss, logits = self.step(xb, yb)  # forward, loss, backward: every p.grad is filled
            self.guard.record(loss)
            if self.guard.due():
                self._verify(state.global_step + 1)  # before the optimizer applies a bad gradient (CPU)
            with torch.no_grad():
                correct = (self.model.predictions(logits) == yb).sum()
                state.add_batch(loss.detach(), correct, yb.shape[0])
            self.optimizer.step()
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
        self.log.close()
        epoch = (bad - 1) // self.steps_per_epoch + 1
        kept = f"the last good checkpoint {self.ckpt_path} is untouched" if self.ckpt_path.exists() else \
            "no checkpoint had been written yet"
        raise TrainingDiverged(
            f"training diverged: the loss or a gradient became NaN/Inf at epoch {epoch}, step "
            f"{bad - (epoch - 1) * self.steps_per_epoch} of the epoch (global step {bad}); {kept}. "
            f"Try a smaller --lr (now {self.cfg.lr}).")

    def _log_step(self) -> None:
        """``loss/train_step``: the mean training loss since the last point (kept in checkpoints)."""
        self._verify(self.state.global_step)
        loss_sum, count = self.state.window.tolist()
        self.log.scalars({"loss/train_step": loss_sum / count}, self.state.global_step)
        self.state.window.zero_()

    # -- end of an epoch ----------------------------------------------------------------------------
    def end_epoch(self) -> dict:
        """Evaluate on validation, log the epoch, checkpoint; returns the epoch's metrics."""
        loss_sum, correct, count = self.state.epoch_stats.tolist()
        metrics = {"train_loss": loss_sum / count, "train_accuracy": correct / count}
        if self.data.val_x.shape[0]:
            val_loss, val_acc, _ = evaluate(self.model, self.data.val_x, self.data.val_y, self.fused)
            metrics |= {"val_loss": val_loss, "val_accuracy": val_acc}
        step, epoch = self.state.global_step, self.state.epoch + 1
        self.log.epoch(epoch, self.cfg.epochs, metrics, time.perf_counter() - self.epoch_started, step)
        self.log.scalars({"lr": self.optimizer.param_groups[0]["lr"]}, step)  # the α of the epoch's last step
        self.log.histograms(self.model, step)
        self.state.end_epoch()
        self.save()
        self.last_metrics = metrics
        return metrics

    def save(self, **extra) -> None:
        """Flush the events up to this step, then write the checkpoint atomically."""
        self.log.flush()
        save_checkpoint(self.ckpt_path, {
            "format": FORMAT, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "sampler": self.loader.sampler.state_dict(
                self.state.batches_done), "rng": rng_state(), **self.state.to_dict(), **extra})

    # -- finish -------------------------------------------------------------------------------------
    def finish(self, train_seconds: float) -> dict:
        """The test set (looked at once), pictures, hyper-parameters; returns the run's results."""
        data, log, step = self.data, self.log, self.state.global_step
        test_loss, test_acc, test_pred = evaluate(self.model, data.test_x, data.test_y, self.fused)
        log.scalars({"accuracy/test": test_acc, "loss/test": test_loss}, step)
        log.model_pictures(self.model, data.class_names, step)
        log.test_pictures(data.test_images, data.test_y, test_pred, data.class_names, step)
        if "val_accuracy" not in self.last_metrics and data.val_x.shape[0]:  # a resumed, already complete run
            self.last_metrics["val_accuracy"] = evaluate(self.model, data.val_x, data.val_y, self.fused)[1]
        val_acc = self.last_metrics.get("val_accuracy", float("nan"))
        log.hparams({"accuracy/test": test_acc, "accuracy/val": val_acc, "loss/test": test_loss})
        final = {"test_acc": test_acc, "test_loss": test_loss, "val_acc": val_acc}
        self.save(finished=True, final=final)
        log.close()
        log.say(f"test accuracy {test_acc:.2%} (loss {test_loss:.4f}); {train_seconds:.1f} s of training\n"
                f"checkpoint: {self.ckpt_path}\nTensorBoard: tensorboard --logdir {self.cfg.logdir}")
        return {**final, "run_dir": str(log.run_dir), "checkpoint": str(self.ckpt_path),
                "train_seconds": train_seconds}


# --------------------------------------------------------------------------------------------------
def train_knn(cfg: TrainConfig, device: torch.device, console: Console | None = None) -> dict:
    """KNN "training" stores the records; each k is evaluated on validation and test, the best on
    validation is chosen (ties: the smaller k; without validation, the first k asked for)."""
    data = load_data(cfg, device)
    n_train = data.train_x.shape[0]
    if max(cfg.k) > n_train:
        raise TrainingError(f"k = {max(cfg.k)} is larger than the training set ({n_train} images)")
    knn = KNNClassifier(k=max(cfg.k), metric=cfg.metric, chunk_size=cfg.batch_size).fit(data.train_x, data.train_y)
    if cfg.dry_run:
        pred = knn.predict(data.test_x[:10])
        if console:
            console(f"dry run: KNN (k={max(cfg.k)}, {cfg.metric}) on {device}, {n_train} records; "
                    f"first test predictions {pred.tolist()}")
        return {"dry_run": True}
    log = RunLog(make_run_dir(cfg), cfg, console)
    log.describe()
    t0 = time.perf_counter()
    test_idx = knn.kneighbors(data.test_x)[1]
    test_seconds = time.perf_counter() - t0
    val_idx = knn.kneighbors(data.val_x)[1] if data.val_x.shape[0] else None
    results = _knn_results(knn, data, test_idx, val_idx, cfg.k, log)
    best_k = max(results, key=lambda k: (results[k]["val_acc"], -k)) if val_idx is not None else cfg.k[0]
    _knn_pictures(log, knn, data, test_idx, best_k, max(cfg.k))
    log.hparams({"accuracy/test": results[best_k]["test_acc"], "accuracy/val": results[best_k]["val_acc"]})
    log.close()
    ckpt_path = log.run_dir / "checkpoint.pt"
    final = {"test_acc": results[best_k]["test_acc"], "val_acc": results[best_k]["val_acc"]}
    save_checkpoint(ckpt_path, {"format": FORMAT, "config": cfg.to_dict(), "model": None, "best_k": best_k,
                                "results": {int(k): v for k, v in results.items()}, "finished": True,
                                "final": final, "global_step": 0})
    chosen = "best k on validation" if val_idx is not None else "no validation set (--val-size 0); k"
    log.say(f"{chosen}: {best_k}; test accuracy {results[best_k]['test_acc']:.2%}; {test_seconds:.1f} s for "
            f"{data.test_x.shape[0]} test images\nTensorBoard: tensorboard --logdir {cfg.logdir}")
    return {"results": results, "best_k": best_k, "test_acc": results[best_k]["test_acc"],
            "run_dir": str(log.run_dir), "checkpoint": str(ckpt_path), "test_seconds": test_seconds}


def _knn_results(knn, data, test_idx, val_idx, ks, log: RunLog) -> dict:
    """Validation and test accuracy of every k from one neighbour search (x axis of the scalars: k)."""
    results = {}
    for k in sorted(ks):
        test_acc = float((knn.vote(test_idx[:, :k]) == data.test_y).float().mean())
        val_acc = float((knn.vote(val_idx[:, :k]) == data.val_y).float().mean()) if val_idx is not None else \
            float("nan")
        log.scalars({"accuracy/test": test_acc} | ({"accuracy/val": val_acc} if val_idx is not None else {}), k)
        results[k] = {"test_acc": test_acc, "val_acc": val_acc}
        val_text = f"val acc {val_acc:.2%} | " if val_idx is not None else ""
        log.say(f"k = {k}: {val_text}test acc {test_acc:.2%}")
    return results


def _knn_pictures(log: RunLog, knn, data, test_idx, best_k: int, k_show: int) -> None:
    """Confusion matrix and mistakes of the chosen k; test images beside their nearest training images."""
    best_pred = knn.vote(test_idx[:, :best_k])
    log.test_pictures(data.test_images, data.test_y, best_pred, data.class_names, best_k, f"k = {best_k}")
    wrong = (best_pred != data.test_y).nonzero().flatten()[:3].cpu()
    show = torch.cat([torch.arange(min(5, data.test_x.shape[0])), wrong])
    nb = test_idx[show, :k_show]
    neighbours = to_images(data.train_x[nb.flatten()]).reshape(*nb.shape, 28, 28)
    log.figure("knn/neighbours", viz.neighbours_grid(
        data.test_images[show], data.test_y[show].cpu(), neighbours, data.train_y[nb].cpu(),
        knn.vote(test_idx[show, :k_show]).cpu()), k_show)
