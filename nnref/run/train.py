"""Training on MNIST: the lecture's loop  forward → loss → backward → w ← w − α ∂L/∂w.

:func:`train` reads top to bottom: set up (configuration, process group, data, run folder), then for each epoch
train, evaluate, log and checkpoint, then finish (test set, pictures, hyper-parameters, the final checkpoint).
The pieces it calls:

* :class:`Trainer` — the model, optimiser, batches, step and run log of one run, whole when built, and the
  epoch loop over them;
* :class:`DivergenceGuard` — stops at the first NaN/Inf loss or gradient, before it reaches the weights;
* :class:`nnref.run.interrupt.StopRequest` — SIGTERM, SIGINT or SIGUSR1 stop the run after the step it is in, with
  a checkpoint at that step.

Checkpoints (:mod:`nnref.run.checkpoint`) are written atomically after every epoch and every ``checkpoint_every``
steps, so a killed run resumes exactly with ``resume=PATH`` (or ``resume="auto"``).  The last epoch writes no
checkpoint of its own: the test metrics and pictures are logged first and the one final checkpoint, marked
finished, comes after them — so a run killed anywhere before it resumes from the previous checkpoint and logs
every point once.  Under ``torchrun`` every rank trains on its part of each global batch
(:mod:`nnref.run.distributed`); rank 0 alone writes the run log and the checkpoints, and every number it logs is
summed over all ranks.  KNN stores records instead of training: :func:`nnref.run.knn.run`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..data import MNISTSplits, load_data, make_loader
from ..exercises import StudentFunctions, functions_used, use_functions
from ..fast.steps import make_step
from ..functional import value_checks
from ..training import finite
from .checkpoint import FORMAT, RunLock, TrainState, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig, TrainingDiverged, TrainingError, resolve_device
from .distributed import World, init_world, world_size_from_env
from .evaluate import evaluate
from .failpoints import failpoint
from .interrupt import RunInterrupted, StopRequest
from .runlog import RunLog, SilentLog, make_run_dir, read_status, write_status

__all__ = ["train", "Trainer", "DivergenceGuard", "lr_at", "seed_everything", "resume_path"]

Console = Callable[[str], None]


def train(cfg: TrainConfig, console: Console | None = None) -> dict:
    """Run one training job (or resume one) and return its final metrics and paths.

    ``console`` receives the progress lines (the CLI passes ``print``); nothing is printed without it.
    Under ``torchrun`` this is one rank of the job: only rank 0 prints and writes.  Raises
    :class:`~nnref.run.interrupt.RunInterrupted` when a signal stopped the run (its checkpoint written).
    """
    # ---- set up: the configuration (resolved once), then the process group
    path = resume_path(cfg)
    resumed = load_checkpoint(path) if path else None
    cfg = dataclasses.replace(cfg, resume=path).resolve(resumed["config"] if resumed else None)
    _check_before_joining(cfg)
    world, device = init_world(resolve_device(cfg.device))
    try:
        console = console if world.is_main and not cfg.quiet else None
        cfg, student = _student_functions(cfg, console)
        with StopRequest(console) as stop, use_functions(student):
            result = _train(cfg, resumed, device, world, console, stop)
    except BaseException:
        world.close()
        raise
    world.close(finished=True)
    return result


def _train(cfg: TrainConfig, resumed: dict | None, device, world: World, console, stop: StopRequest) -> dict:
    # ---- set up: the data, the model and its parts, the run folder (locked) and its log
    seed_everything(cfg.seed)
    data = load_data(cfg, device)
    if cfg.dry_run:
        return Trainer(cfg, data, device, world).dry_run(console)
    if resumed and resumed.get("finished") and resumed["epoch"] >= cfg.epochs:
        return already_finished(cfg, resumed, console)
    failpoint("startup")
    folder = RunFolder.open(cfg, resumed, world)
    try:
        trainer = Trainer(cfg, data, device, world, folder.path, resumed, console)

        # ---- for each epoch: train, evaluate, log, checkpoint — until the last, or until a signal stops it
        t_start = time.perf_counter()
        with value_checks(device.type == "cpu"):  # on a GPU the labels were validated once, at load time
            while trainer.state.epoch < cfg.epochs:
                if not trainer.train_epoch(stop):
                    raise trainer.interrupted(stop, folder)
                trainer.end_epoch()
                if trainer.state.epoch < cfg.epochs and stop.agreed(world):
                    raise trainer.interrupted(stop, folder)

        # ---- finish: the test set, once; pictures; hyper-parameters; the final checkpoint
        return trainer.finish(time.perf_counter() - t_start)
    finally:
        folder.release()


def _student_functions(cfg: TrainConfig, console: Console | None) -> tuple[TrainConfig, dict]:
    """A student's Functions (``--functions FILE``), checked and said at the start: the configuration that records
    which the run uses, and the Functions to use in place of nnref's ({} without a file)."""
    if not cfg.functions:
        return cfg, {}
    student = StudentFunctions.load(cfg.functions)
    for line in student.describe(_functions_of(cfg)) if console else ():
        console(line)
    return dataclasses.replace(cfg, student_functions=student.names), student.functions


def _functions_of(cfg: TrainConfig) -> tuple[str, ...]:
    """The Functions the configuration's model applies in its forward and loss (one tiny batch, nnref's own)."""
    model = cfg.build_model()
    x = torch.zeros(2, 784)  # the default model: 784 inputs, MNIST's
    y = torch.zeros(2) if model.binary else torch.zeros(2, dtype=torch.long)
    return functions_used(lambda: model.loss(model(x), y))


def resume_path(cfg: TrainConfig) -> str | None:
    """The checkpoint a run resumes from: ``--resume PATH``; with ``--resume auto`` the run folder's
    checkpoint if there is one (else a fresh start), so a restarted job carries on where it stopped."""
    if cfg.resume != "auto":
        return cfg.resume
    if not cfg.run_name:
        raise TrainingError(
            "--resume auto needs --run-name: it resumes <logdir>/<run-name>/checkpoint.pt "
            "when that exists and starts that run otherwise"
        )
    path = Path(cfg.logdir) / cfg.run_name / "checkpoint.pt"
    return str(path) if path.exists() else None


def _check_before_joining(cfg: TrainConfig) -> None:
    """What every rank can see alike is checked before the process group exists: all ranks stop together."""
    size = world_size_from_env()
    if size > 1 and cfg.batch_size % size:
        raise TrainingError(
            f"--batch-size {cfg.batch_size} is the global batch and must be divisible by the "
            f"{size} processes of this torchrun job (e.g. {cfg.batch_size // size * size or size})"
        )
    if cfg.nesterov and not cfg.momentum:
        raise TrainingError("--nesterov needs a --momentum above 0")
    if cfg.amp == "fp16" and resolve_device(cfg.device).type != "cuda":
        raise TrainingError("--amp fp16 needs a CUDA GPU (it relies on loss scaling); use --amp bf16 on a CPU")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The step size α of the update after ``step`` updates: constant, or cosine-annealed
    α = ½·lr·(1 + cos(π·step/T)) from lr towards 0 over the run's T steps."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    return cfg.lr


def already_finished(cfg: TrainConfig, resumed: dict, console: Console | None) -> dict:
    """A resumed run that had completed (e.g. ``--resume auto`` run again): nothing to do — but to mark it
    finished, if it was killed between its final checkpoint and that mark."""
    path = Path(cfg.resume)
    if os.environ.get("RANK", "0") == "0" and read_status(path.parent).get("status") != "finished":
        write_status(path.parent, "mnist", "finished", resumed["global_step"], config=cfg.to_dict())
    if console:
        console(
            f"{path.parent} has finished already (epoch {resumed['epoch']} of {cfg.epochs}); "
            f"test accuracy {resumed['final']['test_acc']:.2%}. Raise --epochs to train on."
        )
    return {**resumed["final"], "run_dir": str(path.parent), "checkpoint": str(path), "train_seconds": 0.0}


# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunFolder:
    """Where a run writes: ``<logdir>/<run-name>`` (rank 0 creates it; a default name holds a time stamp),
    locked by rank 0 for as long as the run trains, so a second job on the same run is refused."""

    path: Path | None
    lock: RunLock | None
    created: bool

    @classmethod
    def open(cls, cfg: TrainConfig, resumed: dict | None, world: World) -> RunFolder:
        if resumed:
            path = Path(cfg.resume).resolve().parent
        else:
            path = Path(cfg.logdir) / cfg.run_name if cfg.run_name else None
        existed = path is not None and path.exists()
        lock, error = None, None
        if world.is_main:
            try:
                path = path if resumed else make_run_dir(cfg)
                lock = RunLock(path, cfg.command)
            except TrainingError as exc:
                error = exc
        if world.any(error is not None):  # every rank stops when rank 0 cannot have the folder
            raise error or TrainingError("rank 0 could not open the run folder (its message says why)")
        return cls(path, lock, created=world.is_main and not existed)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def remove_if_empty_run(self) -> bool:
        """A run stopped before its first step leaves nothing behind: its folder goes if this run made it."""
        if self.created and self.path is not None and not (self.path / "checkpoint.pt").exists():
            self.release()
            shutil.rmtree(self.path, ignore_errors=True)
            return True
        return False


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
        self.flags[self.pending] = finite(loss, [p.grad for p in self.params])
        self.pending += 1

    def due(self) -> bool:
        return self.pending == self.every

    def check(self, step_after: int) -> int | None:
        """Read the pending flags; ``step_after`` is the global step of the last flagged one.  Returns the
        global step of the first bad one, or None."""
        if self.pending == 0:
            return None
        flags = self.flags[: self.pending]
        if not self.params and self.world.group:
            flags = self.world.sum((~flags).int()) == 0
        flags, first = flags.tolist(), step_after - self.pending
        self.pending = 0
        return None if all(flags) else first + flags.index(False) + 1


# --------------------------------------------------------------------------------------------------
class Trainer:
    """The parts of one parametric run — model, optimiser, batches, step, guard, run log, state — and its epoch
    loop.  Whole when built: with ``run_dir`` it restores ``resumed`` (a checkpoint's state) and opens the run
    log; without one (a dry run) it writes nothing."""

    #: How many test images the embedding projector shows.
    EMBEDDED = 2000

    def __init__(
        self,
        cfg: TrainConfig,
        data: MNISTSplits,
        device: torch.device,
        world: World | None = None,
        run_dir: Path | None = None,
        resumed: dict | None = None,
        console: Console | None = None,
    ) -> None:
        world = world or World()
        self.cfg, self.data, self.device, self.world = cfg, data, device, world
        self.model = cfg.build_model(data.train_x.shape[1], data.num_classes).to(device)
        self.net = self.model
        if world.group:  # gradients averaged over the ranks during backward
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.fused = cfg.loss == "fused"
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
        self.loader = make_loader(
            data.train_x, data.train_y, cfg.batch_size, shuffle=True, seed=cfg.seed, rank=world.rank, world=world.size
        )
        self.steps_per_epoch = self.loader.sampler.batches_per_epoch()
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.state = TrainState().to(device)
        self.last_metrics: dict = {}
        if resumed is not None:
            self._restore(resumed)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        bs = cfg.batch_size // world.size
        self.step = make_step(
            self.model,
            self.fused,
            data.train_x[:bs],
            data.train_y[:bs],
            cuda_graphs=cfg.cuda_graphs,
            compile=cfg.compile,
            amp=cfg.amp,
            net=self.net if world.group else None,
        )
        every = 1 if device.type == "cpu" else max(1, min(cfg.log_every, 64))
        # with fp16 loss scaling, an overflowing gradient is the GradScaler's to skip: check the loss only
        self.guard = DivergenceGuard(self.params if self.step.checks_gradients else [], device, every, world)
        self.ckpt_path = run_dir / "checkpoint.pt" if run_dir is not None else None
        self.log = self._open_log(run_dir, resumed, console)
        if run_dir is not None and resumed is None and self.world.is_main:
            self._announce(run_dir)
        self.epoch_started = time.perf_counter()

    def _restore(self, resumed: dict) -> None:
        self.model.load_state_dict(resumed["model"])
        self.optimizer.load_state_dict(resumed["optimizer"])
        self.loader.sampler.load_state_dict(resumed["sampler"])
        set_rng_state(resumed["rng"])
        # the checkpoint's sums are the job's: rank 0 carries them on, the other ranks start from zero
        self.state = TrainState.from_dict(resumed, sums=self.world.is_main).to(self.device)
        self.last_metrics = dict(resumed.get("last_metrics") or {})

    def _open_log(self, run_dir: Path | None, resumed: dict | None, console) -> RunLog | SilentLog:
        """Rank 0's run log.  A fresh run purges whatever an earlier attempt left in its folder; a resumed run,
        whatever came after its checkpoint (events up to the checkpoint's step were flushed before it)."""
        if run_dir is None or not self.world.is_main:
            return SilentLog(run_dir)
        log = RunLog(run_dir, self.cfg, console, purge_step=self.state.global_step + 1 if resumed else 0)
        log.status("running", self.state.global_step)
        if resumed is not None:
            log.say(f"resuming {run_dir} at epoch {self.state.epoch + 1}, step {self.state.global_step}")
        else:
            log.in_background(log.describe)  # (TensorBoard's import need not delay the first step)
        return log

    def _announce(self, run_dir: Path) -> None:
        """A fresh run's first record: the projector's view of the test images before training — taken now, written
        while the first steps run — and one line."""
        views = self._views(pixels=True)
        self.log.in_background(lambda: self._write_views(views, 0))
        d, ranks = self.data, f" × {self.world.size} processes" if self.world.size > 1 else ""
        self.log.say(
            f"training {type(self.model).__name__} on {self.device}{ranks}: {d.train_x.shape[0]} train / "
            f"{d.val_x.shape[0]} val / {d.test_x.shape[0]} test images; TensorBoard run {run_dir}"
        )

    def dry_run(self, console: Console | None) -> dict:
        """One step and one evaluation; nothing written."""
        xb, yb = next(iter(self.loader))
        loss, _ = self.step(xb, yb)
        self.step.update(self.optimizer)
        val_loss, _, _ = evaluate(self.model, self.data.val_x[:1000], self.data.val_y[:1000], self.fused)
        if console:
            console(
                f"dry run: {type(self.model).__name__} on {self.device}, {self.data.train_x.shape[0]} training "
                f"images, {self.steps_per_epoch} steps/epoch; one step: loss {float(loss.detach()):.4f}, "
                f"val loss {val_loss:.4f}"
            )
        return {"dry_run": True, "loss": float(loss.detach())}

    # -- one epoch ----------------------------------------------------------------------------------
    def train_epoch(self, stop: StopRequest | None = None) -> bool:
        """The remaining batches of the current epoch: forward, loss, backward, check, update.  Returns False
        when ``stop`` was asked for before the epoch's last batch (every rank stops after the same step)."""
        cfg, state, sampler = self.cfg, self.state, self.loader.sampler
        self.epoch_started = time.perf_counter()
        for xb, yb in self._batches():
            if stop is not None and stop.agreed(self.world):
                return False
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
            self._after_step()
        self._verify(state.global_step)
        return True

    def _after_step(self) -> None:
        cfg, state = self.cfg, self.state
        if state.global_step % cfg.log_every == 0:
            self._log_step()
        if (
            cfg.checkpoint_every
            and state.global_step % cfg.checkpoint_every == 0
            and state.batches_done < self.steps_per_epoch
        ):
            self.save()
        failpoint("step", state.global_step)

    def _batches(self):
        from tqdm.auto import tqdm

        show = self.log.console is not None and sys.stderr.isatty()
        return tqdm(
            self.loader,
            total=len(self.loader.sampler),
            disable=not show,
            leave=False,
            desc=f"epoch {self.state.epoch + 1}/{self.cfg.epochs}",
        )

    def _verify(self, step_after: int) -> None:
        bad = self.guard.check(step_after)
        if bad is None:
            return
        epoch = (bad - 1) // self.steps_per_epoch + 1
        kept = (
            f"the last good checkpoint {self.ckpt_path} is untouched"
            if self.ckpt_path and self.ckpt_path.exists()
            else "no checkpoint had been written yet"
        )
        message = (
            f"training diverged: the loss or a gradient became NaN/Inf at epoch {epoch}, step "
            f"{bad - (epoch - 1) * self.steps_per_epoch} of the epoch (global step {bad}); {kept}. "
            f"Try a smaller --lr (now {self.cfg.lr})."
        )
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
        """Evaluate on validation, log the epoch, checkpoint (not after the last epoch: :meth:`finish` writes the
        final checkpoint after the test metrics); returns the epoch's metrics."""
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
        failpoint("epoch-end")
        if self.state.epoch < self.cfg.epochs:
            self.save()
        return metrics

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, torch.Tensor]:
        """Mean loss, accuracy and predictions on (x, y), every row counted once: each rank evaluates its
        shard of the rows and the sums are added up."""
        part = self.world.shard(x.shape[0])
        loss, _, pred = evaluate(self.model, x[part], y[part], self.fused)
        n = pred.shape[0]
        sums = torch.tensor(
            [loss * n if n else 0.0, float((pred == y[part]).sum()), n], dtype=torch.float64, device=self.device
        )
        loss_sum, correct, count = self.world.sum(sums).tolist()
        return loss_sum / count, correct / count, self.world.cat(pred)

    def save(self, **extra) -> None:
        """Flush the events up to this step, then (rank 0) write the checkpoint atomically, with the sums of
        every rank."""
        sums = {
            "epoch_stats": self.world.sum(self.state.epoch_stats.clone()),
            "window": self.world.sum(self.state.window.clone()),
        }
        if not self.world.is_main:
            return
        self.log.flush()
        save_checkpoint(
            self.ckpt_path,
            {
                "format": FORMAT,
                "config": self.cfg.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "sampler": self.loader.sampler.state_dict(self.state.batches_done),
                "rng": rng_state(),
                **self.state.to_dict(),
                **{k: v.cpu() for k, v in sums.items()},
                "world_size": self.world.size,
                "last_metrics": self.last_metrics,
                **extra,
            },
        )

    def interrupted(self, stop: StopRequest, folder: RunFolder) -> RunInterrupted:
        """Stop where the loop stands: a checkpoint at this exact step (unless the last one already holds it, or
        the run has not taken a step), the run marked interrupted, and the error that says how to resume."""
        step, state = self.state.global_step, self.state
        if step == 0:
            self.log.close()
            folder.remove_if_empty_run()
            return RunInterrupted(f"stopped by {stop.name} before the first step; nothing was written", None, 0)
        if state.batches_done:  # mid-epoch (at an epoch's end the checkpoint was written by end_epoch)
            self.save()
        where = (
            f"epoch {state.epoch + 1}, batch {state.batches_done} of {self.steps_per_epoch}"
            if state.batches_done
            else f"the end of epoch {state.epoch}"
        )
        resume = f"nnref train {self.cfg.model} --resume {self.ckpt_path}"
        message = (
            f"stopped by {stop.name} after step {step} ({where}); checkpoint {self.ckpt_path} holds that "
            f"step. Resume with: {resume}"
        )
        self.log.status("interrupted", step, message)
        self.log.close()
        return RunInterrupted(message, str(self.ckpt_path), step)

    def _embeddings(self, step: int, pixels: bool = False) -> None:
        """The projector's views of the first test images: the raw pixels (once) and, for an MLP, its last
        hidden layer — before training and after it, so the classes can be seen to separate."""
        self._write_views(self._views(pixels), step)

    def _views(self, pixels: bool) -> list[tuple[str, torch.Tensor]]:
        """(tag, rows) of the projector's views of the first test images, as the model stands now."""
        x = self.data.test_x[: min(self.EMBEDDED, self.data.test_x.shape[0])]
        views = [("test_images/pixels", x)] if pixels else []
        if getattr(self.model, "hidden", ()):
            with torch.no_grad():
                views.append(("test_images/last_hidden_layer", self.model.hidden_outputs(x)[-1].clone()))
        return views

    def _write_views(self, views: list[tuple[str, torch.Tensor]], step: int) -> None:
        d = self.data
        for tag, rows in views:
            n = rows.shape[0]
            self.log.embedding(tag, rows, d.test_y[:n], d.test_images[:n], d.class_names, step)

    # -- finish -------------------------------------------------------------------------------------
    def finish(self, train_seconds: float) -> dict:
        """The test set (looked at once), pictures, hyper-parameters, then the checkpoint that marks the run
        finished; returns the run's results."""
        data, log, step = self.data, self.log, self.state.global_step
        test_loss, test_acc, test_pred = self.evaluate(data.test_x, data.test_y)
        log.scalars({"accuracy/test": test_acc, "loss/test": test_loss}, step)
        failpoint("finish-metrics")
        self._final_pictures(test_pred, step)
        failpoint("finish-pictures")
        if "val_accuracy" not in self.last_metrics and data.val_x.shape[0]:  # a resumed, already complete run
            self.last_metrics["val_accuracy"] = self.evaluate(data.val_x, data.val_y)[1]
        val_acc = self.last_metrics.get("val_accuracy", float("nan"))
        log.hparams({"accuracy/test": test_acc, "accuracy/val": val_acc, "loss/test": test_loss})
        final = {"test_acc": test_acc, "test_loss": test_loss, "val_acc": val_acc, "train_seconds": train_seconds}
        self.save(finished=True, final=final)
        failpoint("finish-save")
        log.status("finished", step)
        log.close()
        log.say(
            f"test accuracy {test_acc:.2%} (loss {test_loss:.4f}); {train_seconds:.1f} s of training\n"
            f"checkpoint: {self.ckpt_path}\nTensorBoard: tensorboard --logdir {self.cfg.logdir}"
        )
        return {
            **final,
            "run_dir": str(self.ckpt_path.parent) if self.ckpt_path else None,
            "checkpoint": str(self.ckpt_path) if self.ckpt_path else None,
        }

    def _final_pictures(self, test_pred: torch.Tensor, step: int) -> None:
        data, log = self.data, self.log
        log.model_pictures(self.model, data.class_names, step)
        log.test_pictures(data.test_images, data.test_y, test_pred, data.class_names, step)
        if self.world.is_main:
            probs = self.model.predict_proba(data.test_x)
            log.pr_curves(data.test_y, probs, data.class_names, step)
            self._embeddings(step)
