"""Training on MNIST: the lecture's loop  forward → loss → backward → w ← w − α ∂L/∂w.

:func:`train` is the whole job, top to bottom: data, model, optimiser, the epoch loop with evaluation,
TensorBoard logging, and a checkpoint after every epoch (and every ``checkpoint_every`` steps), written
atomically so that a killed run can be resumed exactly with ``resume=PATH``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import viz
from .data import DataError, load_splits, make_loader, resolve_root
from .functional import value_checks
from .models import MLP, KNNClassifier, LogisticRegression, SoftmaxRegression
from .steps import make_step

__all__ = ["TrainConfig", "train", "evaluate", "build_model", "save_checkpoint", "load_checkpoint",
           "resolve_device", "train_knn", "TrainingError", "TrainingDiverged", "DataError", "MODELS", "DEFAULTS"]

MODELS = ("logreg", "softmax", "mlp", "knn")

#: Per-model defaults for the options a user leaves out (measured recipes: see README's results table).
DEFAULTS = {
    "logreg": dict(epochs=10, lr=0.5, batch_size=128, momentum=0.0),
    "softmax": dict(epochs=20, lr=0.1, batch_size=64, momentum=0.0),
    "mlp": dict(epochs=15, lr=0.05, batch_size=128, momentum=0.9),
    "knn": dict(epochs=1, lr=1.0, batch_size=1024, momentum=0.0),
}


class TrainingError(RuntimeError):
    """A failure explained for a person (the CLI prints it and exits 1)."""


class TrainingDiverged(TrainingError):
    """The loss or a gradient became NaN or infinite."""


@dataclass
class TrainConfig:
    model: str = "softmax"
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    momentum: float | None = None
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    hidden: tuple[int, ...] = (800,)
    activation: str = "relu"
    loss: str = "fused"
    k: tuple[int, ...] = (3,)
    metric: str = "euclidean"
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    download: bool = True
    val_size: int = 5000
    positive_class: int | None = None
    classes: tuple[int, int] | None = None
    logdir: str = "runs"
    run_name: str | None = None
    limit_train: int | None = None
    checkpoint_every: int = 0
    log_every: int = 50
    cuda_graphs: bool = True
    dry_run: bool = False
    quiet: bool = False
    resume: str | None = None
    command: str = field(default_factory=lambda: shlex.join([os.path.basename(sys.argv[0])] + sys.argv[1:]))

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.resume:  # the checkpoint's own config fills everything left unset (see train())
            return
        for key, value in DEFAULTS[self.model].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.model == "logreg" and self.positive_class is None and self.classes is None:
            self.positive_class = 0
        self.hidden = tuple(self.hidden)
        self.k = tuple(self.k)
        if self.classes is not None:
            self.classes = tuple(self.classes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --------------------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """"auto" takes CUDA when present; "cuda" without a GPU is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU on this machine; "
                         "use --device cpu or --device auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    return torch.device(name)


def build_model(cfg: TrainConfig, in_features: int = 784, num_classes: int = 10) -> torch.nn.Module:
    if cfg.model == "logreg":
        return LogisticRegression(in_features)
    if cfg.model == "softmax":
        return SoftmaxRegression(in_features, num_classes)
    if cfg.model == "mlp":
        return MLP(in_features, cfg.hidden, 1 if cfg.positive_class is not None or cfg.classes else num_classes,
                   cfg.activation)
    raise ValueError(f"{cfg.model!r} is not a parametric model")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over ``path``:
    a kill at any moment leaves either the old or the new checkpoint, never a torn one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a missing, unreadable or foreign file is a TrainingError."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} does not exist (or is not a file)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise TrainingError(f"checkpoint {path} could not be read as an nnref checkpoint: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(state, dict) or "config" not in state or "format" not in state:
        raise TrainingError(f"{path} is not an nnref checkpoint (no config/format entries)")
    return state


# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, fused: bool = True,
             batch_size: int = 4096) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and predictions (N,) of a parametric model on (x, y)."""
    model.eval()
    total, preds = 0.0, []
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i:i + batch_size])
        total += float(model.loss(logits, y[i:i + batch_size], fused=fused, reduction="sum"))
        preds.append(model.predictions(logits))
    model.train()
    pred = torch.cat(preds)
    return total / max(x.shape[0], 1), float((pred == y).float().mean()), pred


def _lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The step size α at a global step: constant, or cosine-annealed from lr to 0 over the run."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    return cfg.lr


def _class_names(cfg: TrainConfig, num_classes: int) -> list[str]:
    if cfg.positive_class is not None:
        return [f"not {cfg.positive_class}", str(cfg.positive_class)]
    if cfg.classes is not None:
        return [str(c) for c in cfg.classes]
    return [str(i) for i in range(num_classes)]


def _hparams(cfg: TrainConfig) -> dict:
    keep = ("model", "epochs", "lr", "batch_size", "momentum", "weight_decay", "lr_schedule", "hidden",
            "activation", "loss", "k", "metric", "seed", "val_size", "limit_train", "positive_class", "classes")
    out = {}
    for key in keep:
        v = getattr(cfg, key)
        out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def _write_hparams(writer, cfg: TrainConfig, metrics: dict) -> None:
    """HParams in the run's own event file (``add_hparams`` would create a stray sibling run)."""
    from torch.utils.tensorboard.summary import hparams

    exp, ssi, sei = hparams(_hparams(cfg), metrics)
    fw = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        fw.add_summary(summary)


def _config_markdown(cfg: TrainConfig) -> str:
    rows = "\n".join(f"| {k} | `{v}` |" for k, v in cfg.to_dict().items() if k != "command")
    return f"| option | value |\n|---|---|\n{rows}"


def _open_writer(run_dir: Path, purge_step: int | None):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir), purge_step=purge_step, flush_secs=10)


def _make_run_dir(cfg: TrainConfig) -> Path:
    name = cfg.run_name or f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.logdir) / name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TrainingError(f"cannot write the run to --logdir {cfg.logdir!r} ({run_dir}): "
                            f"{exc.strerror or exc}") from None
    return run_dir


def _say(cfg: TrainConfig, msg: str) -> None:
    if not cfg.quiet:
        print(msg, flush=True)


# --------------------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> dict:
    """Run one training job (or resume one) and return its final metrics and paths."""
    resumed = None
    if cfg.resume:
        resumed = load_checkpoint(cfg.resume)
        saved = TrainConfig.from_dict(resumed["config"])
        if saved.model != cfg.model:
            raise TrainingError(f"checkpoint {cfg.resume} was written by a {saved.model!r} run, "
                                f"it cannot resume a {cfg.model!r} run")
        # the checkpoint's recipe is authoritative; only where, how long and how loud may change
        for key in ("epochs", "device", "data_root", "download", "quiet", "resume", "command"):
            if getattr(cfg, key) is not None:
                setattr(saved, key, getattr(cfg, key))
        cfg = saved
    device = resolve_device(cfg.device)
    if cfg.model == "knn":
        return train_knn(cfg, device)

    seed_everything(cfg.seed)
    data = load_splits(resolve_root(cfg.data_root), download=cfg.download, val_size=cfg.val_size,
                       limit_train=cfg.limit_train, positive_class=cfg.positive_class, classes=cfg.classes,
                       device=device)
    model = build_model(cfg, data.train_x.shape[1], data.num_classes).to(device)
    fused = cfg.loss == "fused"
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    loader = make_loader(data.train_x, data.train_y, cfg.batch_size, shuffle=True, seed=cfg.seed)
    steps_per_epoch = loader.sampler.batches_per_epoch()
    total_steps = steps_per_epoch * cfg.epochs
    names = _class_names(cfg, data.num_classes)

    if cfg.dry_run:  # one step and one evaluation, nothing written
        xb, yb = next(iter(loader))
        loss = model.loss(model(xb), yb, fused=fused)
        loss.backward()
        optimizer.step()
        val_loss, val_acc, _ = evaluate(model, data.val_x[:1000], data.val_y[:1000], fused)
        _say(cfg, f"dry run: {model.__class__.__name__} on {device}, {data.train_x.shape[0]} training images, "
                  f"{steps_per_epoch} steps/epoch; one step: loss {float(loss.detach()):.4f}, val loss {val_loss:.4f}")
        return {"dry_run": True, "loss": float(loss.detach())}

    epoch, global_step, batches_done = 0, 0, 0
    epoch_stats = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count this epoch
    if resumed is not None:
        run_dir = Path(cfg.resume).resolve().parent
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        loader.sampler.load_state_dict(resumed["sampler"])
        _set_rng_state(resumed["rng"])
        epoch, global_step, batches_done = resumed["epoch"], resumed["global_step"], resumed["batches_done"]
        epoch_stats = resumed["epoch_stats"].to(device=device, dtype=torch.float64)
        _say(cfg, f"resuming {run_dir} at epoch {epoch + 1}, step {global_step}")
    else:
        run_dir = _make_run_dir(cfg)
    ckpt_path = run_dir / "checkpoint.pt"
    # events up to the checkpoint's step were flushed before it was written; anything later is stale
    writer = _open_writer(run_dir, purge_step=global_step + 1 if resumed is not None else None)
    if resumed is None:
        writer.add_text("config", _config_markdown(cfg), 0)
        writer.add_text("command", f"`{cfg.command}`", 0)
        _say(cfg, f"training {model.__class__.__name__} on {device}: {data.train_x.shape[0]} train / "
                  f"{data.val_x.shape[0]} val / {data.test_x.shape[0]} test images; TensorBoard run {run_dir}")

    def checkpoint(batches: int) -> None:
        writer.flush()  # every event up to this step is on disk before the checkpoint that resumes after it
        save_checkpoint(ckpt_path, {
            "format": 1, "config": cfg.to_dict(), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "sampler": loader.sampler.state_dict(batches),
            "rng": _rng_state(), "epoch": epoch + (batches >= steps_per_epoch),
            "global_step": global_step, "batches_done": batches % steps_per_epoch,
            "epoch_stats": torch.zeros(3, dtype=torch.float64) if batches >= steps_per_epoch else epoch_stats.cpu(),
        })

    from tqdm.auto import tqdm

    show_bar = not cfg.quiet and sys.stderr.isatty()
    params = [p for p in model.parameters()]
    example_x, example_y = data.train_x[:cfg.batch_size], data.train_y[:cfg.batch_size]
    step = make_step(model, fused, example_x, example_y, cuda_graphs=cfg.cuda_graphs)
    # Device-side bookkeeping, read back only at log points: no host sync per step on a GPU.
    window = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, count since the last log point
    check_every = 1 if device.type == "cpu" else max(1, min(cfg.log_every, 64))
    healthy = torch.ones(check_every, dtype=torch.bool, device=device)
    pending = 0  # steps whose health flag has not been read yet

    def verify(done: int) -> None:
        """Stop at the first step whose loss or gradient was NaN/Inf; ``done`` is the global step of the
        last recorded flag.  Read back every step on a CPU, every few steps on a GPU."""
        nonlocal pending
        if pending == 0:
            return
        flags = healthy[:pending].tolist()
        first = done - pending
        pending = 0
        if all(flags):
            return
        bad_step = first + flags.index(False) + 1
        writer.close()
        kept = f"the last good checkpoint {ckpt_path} is untouched" if ckpt_path.exists() else \
            "no checkpoint had been written yet"
        raise TrainingDiverged(
            f"training diverged: the loss or a gradient became NaN/Inf at epoch {epoch + 1}, "
            f"step {bad_step - epoch * steps_per_epoch} of the epoch (global step {bad_step}); "
            f"{kept}. Try a smaller --lr (now {cfg.lr}).")

    history = []
    t_start = time.perf_counter()
    with value_checks(device.type == "cpu"):  # labels were validated when the data was loaded
        while epoch < cfg.epochs:
            t_epoch = time.perf_counter()
            bar = tqdm(loader, total=len(loader.sampler), disable=not show_bar, leave=False,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}")
            for xb, yb in bar:
                for group in optimizer.param_groups:
                    group["lr"] = _lr_at(cfg, global_step, total_steps)
                loss, logits = step(xb, yb)  # forward, loss, backward: every p.grad is filled
                with torch.no_grad():
                    # NaN/Inf anywhere in the loss or a gradient makes this sum non-finite
                    health = loss + torch.stack([p.grad.sum() for p in params]).sum()
                    healthy[pending] = torch.isfinite(health)
                    pending += 1
                    if pending == check_every:
                        verify(global_step + 1)  # before the optimizer applies a bad gradient (CPU: every step)
                    n = yb.shape[0]
                    batch = torch.stack([loss.detach().double() * n,
                                         (model.predictions(logits) == yb).sum().double(),
                                         epoch_stats.new_full((), n)])  # a fill kernel, not a host copy
                    epoch_stats += batch
                    window += batch[::2]
                optimizer.step()
                global_step += 1
                batches_done += 1
                if global_step % cfg.log_every == 0:
                    verify(global_step)
                    loss_sum, count = window.tolist()
                    writer.add_scalar("loss/train_step", loss_sum / count, global_step)
                    window.zero_()
                    if show_bar:
                        bar.set_postfix(loss=f"{loss_sum / count:.4f}")
                if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0 and \
                        batches_done < steps_per_epoch:
                    verify(global_step)
                    checkpoint(batches_done)
            verify(global_step)

            # ---- end of epoch: evaluate, log, checkpoint ----
            loss_sum, correct, count = epoch_stats.tolist()
            train_loss, train_acc = loss_sum / count, correct / count
            val_loss, val_acc, _ = evaluate(model, data.val_x, data.val_y, fused) if data.val_x.shape[0] else \
                (float("nan"), float("nan"), None)
            writer.add_scalar("loss/train", train_loss, global_step)
            writer.add_scalar("accuracy/train", train_acc, global_step)
            if data.val_x.shape[0]:
                writer.add_scalar("loss/val", val_loss, global_step)
                writer.add_scalar("accuracy/val", val_acc, global_step)
            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], global_step)
            for name, p in model.named_parameters():
                writer.add_histogram(f"params/{name}", p.detach(), global_step)
                if p.grad is not None:
                    writer.add_histogram(f"grads/{name}", p.grad.detach(), global_step)
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                            "val_loss": val_loss, "val_acc": val_acc, "seconds": time.perf_counter() - t_epoch})
            _say(cfg, f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f} acc {train_acc:.2%} | "
                      f"val loss {val_loss:.4f} acc {val_acc:.2%} | {time.perf_counter() - t_epoch:.1f} s")
            checkpoint(steps_per_epoch)
            epoch += 1
            batches_done = 0
            epoch_stats.zero_()
            writer.flush()
    train_seconds = time.perf_counter() - t_start

    # ---- final: test accuracy, pictures, hyper-parameters ----
    test_loss, test_acc, test_pred = evaluate(model, data.test_x, data.test_y, fused)
    writer.add_scalar("accuracy/test", test_acc, global_step)
    writer.add_scalar("loss/test", test_loss, global_step)
    log_pictures(writer, model, data.test_images, data.test_y, test_pred, names, global_step)
    val_acc = history[-1]["val_acc"] if history else float("nan")
    _write_hparams(writer, cfg, {"accuracy/test": test_acc, "accuracy/val": val_acc, "loss/test": test_loss})
    writer.close()
    _say(cfg, f"test accuracy {test_acc:.2%} (loss {test_loss:.4f}); {train_seconds:.1f} s of training\n"
              f"checkpoint: {ckpt_path}\nTensorBoard: tensorboard --logdir {cfg.logdir}")
    return {"test_acc": test_acc, "test_loss": test_loss, "val_acc": val_acc, "history": history,
            "run_dir": str(run_dir), "checkpoint": str(ckpt_path), "train_seconds": train_seconds}


def log_pictures(writer, model, test_images, test_y, test_pred, names, step) -> None:
    """Weight templates / first-layer filters, misclassified test images and the confusion matrix."""
    num_classes = len(names)
    w = model.weight_images
    if w.shape[1] == 784:
        if isinstance(model, MLP):
            title = f"first-layer filters (first {min(64, w.shape[0])} of {w.shape[0]})"
            writer.add_figure("weights/first_layer_filters", viz.weight_templates(w, suptitle=title), step)
        else:
            titles = names if w.shape[0] == len(names) else [f"w ({names[1]} vs {names[0]})"]
            writer.add_figure("weights/templates", viz.weight_templates(w, titles, suptitle="learned templates"),
                              step)
    if test_images.shape[0] == test_y.shape[0]:
        writer.add_figure("test/misclassified", viz.misclassified_grid(test_images, test_y, test_pred,
                                                                       class_names=names), step)
    matrix = viz.confusion_matrix(test_y, test_pred, num_classes)
    writer.add_figure("test/confusion_matrix", viz.confusion_figure(matrix, names), step)


# --------------------------------------------------------------------------------------------------
def train_knn(cfg: TrainConfig, device: torch.device) -> dict:
    """KNN "training" stores the records; evaluate each k on validation and test, log the neighbours."""
    data = load_splits(resolve_root(cfg.data_root), download=cfg.download, val_size=cfg.val_size,
                       limit_train=cfg.limit_train, positive_class=cfg.positive_class, classes=cfg.classes,
                       device=device)
    n_train = data.train_x.shape[0]
    if max(cfg.k) > n_train:
        raise TrainingError(f"k = {max(cfg.k)} is larger than the training set ({n_train} images)")
    knn = KNNClassifier(k=max(cfg.k), metric=cfg.metric, chunk_size=cfg.batch_size).fit(data.train_x, data.train_y)
    if cfg.dry_run:
        pred = knn.predict(data.test_x[:10])
        _say(cfg, f"dry run: KNN (k={max(cfg.k)}, {cfg.metric}) on {device}, {n_train} records; "
                  f"first test predictions {pred.tolist()}")
        return {"dry_run": True}
    run_dir = _make_run_dir(cfg)
    writer = _open_writer(run_dir, None)
    writer.add_text("config", _config_markdown(cfg), 0)
    writer.add_text("command", f"`{cfg.command}`", 0)
    t0 = time.perf_counter()
    results = {}
    _, test_idx = knn.kneighbors(data.test_x)
    test_seconds = time.perf_counter() - t0
    val_idx = knn.kneighbors(data.val_x)[1] if data.val_x.shape[0] else None
    for k in sorted(cfg.k):
        test_pred = knn.vote(test_idx[:, :k])
        test_acc = float((test_pred == data.test_y).float().mean())
        writer.add_scalar("accuracy/test", test_acc, k)
        val_acc = float("nan")
        if val_idx is not None:
            val_acc = float((knn.vote(val_idx[:, :k]) == data.val_y).float().mean())
            writer.add_scalar("accuracy/val", val_acc, k)
        results[k] = {"test_acc": test_acc, "val_acc": val_acc}
        val_text = f"val acc {val_acc:.2%} | " if val_idx is not None else ""
        _say(cfg, f"k = {k}: {val_text}test acc {test_acc:.2%}")
    # model selection looks at validation accuracy only (ties: the smaller k); without a validation set
    # the first k asked for is the one shown
    best_k = max(results, key=lambda k: (results[k]["val_acc"], -k)) if val_idx is not None else cfg.k[0]
    names = _class_names(cfg, data.num_classes)
    best_pred = knn.vote(test_idx[:, :best_k])
    matrix = viz.confusion_matrix(data.test_y, best_pred, data.num_classes)
    writer.add_figure("test/confusion_matrix", viz.confusion_figure(matrix, names, f"k = {best_k}"), best_k)
    writer.add_figure("test/misclassified", viz.misclassified_grid(data.test_images, data.test_y, best_pred,
                                                                   class_names=names), best_k)
    # a grid of test images beside their nearest training images (some right, some wrong)
    wrong = (best_pred != data.test_y).nonzero().flatten()[:3].cpu()
    show = torch.cat([torch.arange(5), wrong])
    k_show = max(cfg.k)
    train_images = _train_images_for(data)
    nb = test_idx[show, :k_show].cpu()
    writer.add_figure("knn/neighbours", viz.neighbours_grid(
        data.test_images[show], data.test_y[show].cpu(), train_images[nb], data.train_y.cpu()[nb],
        knn.vote(test_idx[show, :k_show]).cpu()), k_show)
    metrics = {"accuracy/test": results[best_k]["test_acc"], "accuracy/val": results[best_k]["val_acc"]}
    _write_hparams(writer, cfg, metrics)
    writer.close()
    ckpt_path = run_dir / "checkpoint.pt"
    save_checkpoint(ckpt_path, {"format": 1, "config": cfg.to_dict(), "model": None,
                                "results": {int(k): v for k, v in results.items()}})
    chosen = "best k on validation" if val_idx is not None else "no validation set (--val-size 0); k"
    _say(cfg, f"{chosen}: {best_k}; test accuracy {results[best_k]['test_acc']:.2%}; "
              f"{test_seconds:.1f} s for {data.test_x.shape[0]} test images\nTensorBoard: tensorboard --logdir {cfg.logdir}")
    return {"results": results, "best_k": best_k, "test_acc": results[best_k]["test_acc"], "run_dir": str(run_dir),
            "checkpoint": str(ckpt_path), "test_seconds": test_seconds}


def _train_images_for(data) -> torch.Tensor:
    """The training images as pictures (N, 28, 28), undoing the normalisation."""
    from .data import MEAN, STD

    return ((data.train_x.cpu() * STD + MEAN).clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, 28, 28)

