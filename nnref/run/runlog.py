"""The record of a run: its TensorBoard event file, its console lines, its pictures and hyper-parameters.

:class:`RunLog` is built once per run from the run folder and the configuration; the training loop hands it
numbers and models, never the configuration again.  Console lines go to the ``console`` callable the caller
passes (the CLI passes ``print``; a library caller may pass nothing and read the returned metrics).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .. import viz
from .config import KNNConfig, TrainConfig, TrainingError
from .markdown import markdown_table
from .records import STATUS_FILE, open_writer, read_status, write_status

__all__ = ["RunLog", "SilentLog", "make_run_dir", "open_writer", "write_status", "read_status", "STATUS_FILE", "KINDS"]

#: Every setting a model's run can record in the HParams tab (each run records only its own model's).
HPARAM_NAMES = tuple(
    sorted(set(TrainConfig(model="mlp", positive_class=1).hparams()) | set(KNNConfig(positive_class=1).hparams()))
)

#: The kinds of run a log folder can hold; each run says its kind in its status file.
KINDS = ("mnist", "playground", "gradcheck-sweep", "bench")


def make_run_dir(cfg: TrainConfig | KNNConfig) -> Path:
    """``<logdir>/<run-name>``, default ``<model>-<timestamp>``; created and checked for writing."""
    name = cfg.run_name or f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.logdir) / name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TrainingError(
            f"cannot write the run to --logdir {cfg.logdir!r} ({run_dir}): {exc.strerror or exc}"
        ) from None
    return run_dir


#: Sub-runs that hold the per-epoch curves: TensorBoard draws ``<run>/train`` and ``<run>/val`` on one chart
#: per tag (``loss``, ``accuracy``), so over-fitting shows as two lines parting.
SPLITS = ("train", "val")


class RunLog:
    """One run's TensorBoard writers and console.

    The run folder holds everything but the per-epoch curves, which go to its sub-runs ``train/`` and
    ``val/`` under the same tags.  ``purge_step``: events at or after this step (an earlier attempt's, or
    those written after the checkpoint a run resumes from) are discarded by TensorBoard, so every step
    appears once.
    """

    def __init__(
        self,
        run_dir: Path,
        cfg: TrainConfig | KNNConfig,
        console: Callable[[str], None] | None = None,
        purge_step: int | None = None,
    ) -> None:
        self.run_dir, self.cfg, self.console, self.purge_step = Path(run_dir), cfg, console, purge_step
        self._writers: dict | None = None
        self._opening = threading.Lock()
        self._background: list[threading.Thread] = []

    # -- the writers, opened on first use (importing TensorBoard need not delay the first step) --------------
    @property
    def writer(self):
        return self._open()["run"]

    @property
    def splits(self) -> dict:
        return {name: w for name, w in self._open().items() if name != "run"}

    def _open(self) -> dict:
        with self._opening:
            if self._writers is None:
                self._writers = {"run": open_writer(self.run_dir, self.purge_step)}
                self._writers |= {name: open_writer(self.run_dir / name, self.purge_step) for name in SPLITS}
            return self._writers

    def in_background(self, work: Callable[[], None]) -> None:
        """Write ``work``'s records while training goes on (the start's description and projector views: TensorBoard's
        import and a projector's 2,000 rows formatted in Python would delay the first step by seconds); they are
        complete before the next flush, a checkpoint, or the end."""
        thread = threading.Thread(target=work, name="nnref-runlog", daemon=True)
        thread.start()
        self._background.append(thread)

    def _settle(self) -> None:
        for thread in self._background:
            thread.join()
        self._background.clear()

    # -- console ----------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        if self.console is not None:
            self.console(message)

    # -- the run's description --------------------------------------------------------------------
    def describe(self) -> None:
        """The full configuration and the command line, as text at step 0."""
        rows = [(k, f"`{v}`") for k, v in self.cfg.to_dict().items() if k != "command"]
        self.writer.add_text("config", markdown_table(["option", "value"], rows), 0)
        self.writer.add_text("command", f"`{self.cfg.command}`", 0)

    def hparams(self, metrics: dict) -> None:
        """The hyper-parameters and the final metrics in TensorBoard's HParams tab, in the run's own event file
        (``add_hparams`` would create a stray sibling run).  ``metrics`` maps a metric's name to its final
        value; the tab reads each from the run's scalars: "accuracy/val" is the last ``accuracy`` of the
        ``val`` sub-run, the others are tags of the run itself."""
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
        from torch.utils.tensorboard.summary import hparams

        values = {key: v if isinstance(v, (int, float, str, bool)) else str(v) for key, v in self.cfg.hparams().items()}
        experiment, start, end = hparams(values, {})
        # torch names each metric by a tag of the run itself; add the sub-run ("group") where one lives
        data = experiment.value[0].metadata.plugin_data
        content = plugin_data_pb2.HParamsPluginData.FromString(data.content)
        # TensorBoard takes its columns from one run's experiment: declare every setting any model has, so runs
        # of different models share one table (each run's own values hold only its model's settings)
        content.experiment.hparam_infos.extend(
            api_pb2.HParamInfo(name=name) for name in HPARAM_NAMES if name not in values
        )
        content.experiment.metric_infos.extend(
            api_pb2.MetricInfo(name=api_pb2.MetricName(group=group, tag=tag), display_name=name)
            for name, (group, tag) in ((n, _metric_source(n)) for n in metrics)
        )
        data.content = content.SerializeToString()
        file_writer = self.writer._get_file_writer()
        for summary in (experiment, start, end):
            file_writer.add_summary(summary)

    # -- numbers ------------------------------------------------------------------------------------
    def scalars(self, values: dict, step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def epoch_scalars(self, split: str, values: dict, step: int) -> None:
        """Scalars of the ``train`` or ``val`` sub-run."""
        for tag, value in values.items():
            self.splits[split].add_scalar(tag, value, step)

    def histograms(self, model: torch.nn.Module, step: int) -> None:
        """Every parameter and its gradient."""
        for name, p in model.named_parameters():
            self.writer.add_histogram(f"params/{name}", p.detach(), step)
            if p.grad is not None:
                self.writer.add_histogram(f"grads/{name}", p.grad.detach(), step)

    def epoch(self, epoch: int, epochs: int, metrics: dict, seconds: float, step: int) -> None:
        """The per-epoch curves (``loss`` and ``accuracy`` of the ``train`` and ``val`` sub-runs) and the
        console line; ``metrics`` holds train_/val_ loss and accuracy."""
        for split in SPLITS:
            self.epoch_scalars(
                split,
                {
                    kind: metrics[f"{split}_{kind}"]
                    for kind in ("loss", "accuracy")
                    if metrics.get(f"{split}_{kind}") is not None
                },
                step,
            )
        val = metrics.get("val_loss")
        val_text = f" | val loss {val:.4f} acc {metrics['val_accuracy']:.2%}" if val is not None else ""
        self.say(
            f"epoch {epoch}/{epochs}: train loss {metrics['train_loss']:.4f} acc "
            f"{metrics['train_accuracy']:.2%}{val_text} | {seconds:.1f} s"
        )

    # -- pictures -----------------------------------------------------------------------------------
    def model_pictures(self, model, names: list[str], step: int) -> None:
        """The learned 28×28 templates (regression models) or first-layer filters (MLP)."""
        w = model.weight_images
        if w.shape[1] != 784:
            return
        if getattr(model, "hidden", ()):  # a network with hidden layers: its first layer's filters
            title = f"first-layer filters (first {min(64, w.shape[0])} of {w.shape[0]})"
            self.writer.add_figure("weights/first_layer_filters", viz.weight_templates(w, suptitle=title), step)
        else:
            titles = names if w.shape[0] == len(names) else [f"w ({names[1]} vs {names[0]})"]
            self.writer.add_figure(
                "weights/templates", viz.weight_templates(w, titles, suptitle="learned templates"), step
            )

    def test_pictures(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        preds: torch.Tensor,
        names: list[str],
        step: int,
        title: str = "",
    ) -> None:
        """The misclassified test images and the confusion matrix."""
        if images.shape[0] == labels.shape[0]:
            self.writer.add_figure(
                "test/misclassified", viz.misclassified_grid(images, labels, preds, class_names=names), step
            )
        matrix = viz.confusion_matrix(labels, preds, len(names))
        self.writer.add_figure("test/confusion_matrix", viz.confusion_figure(matrix, names, title), step)

    def figure(self, tag: str, figure, step: int) -> None:
        self.writer.add_figure(tag, figure, step)

    def pr_curves(self, labels: torch.Tensor, probs: torch.Tensor, names: list[str], step: int) -> None:
        """A precision-recall curve per class (``pr/<class>``): one class against the rest, scored by the
        model's probability of it (``probs`` (n, c); a binary model's (n,) is Pr(class 1))."""
        labels, probs = labels.cpu(), probs.detach().float().cpu()
        if probs.dim() == 1:
            self.writer.add_pr_curve(f"pr/{names[1]}", labels == 1, probs, step)
            return
        for c, name in enumerate(names):
            self.writer.add_pr_curve(f"pr/{name}", labels == c, probs[:, c], step)

    def embedding(
        self, tag: str, features: torch.Tensor, labels: torch.Tensor, images: torch.Tensor, names: list[str], step: int
    ) -> None:
        """Rows ``features`` (n, d) for TensorBoard's projector, each labelled with its class and shown as its
        image (``images`` (n, 28, 28) uint8, as the sprite)."""
        self.writer.add_embedding(
            features.detach().float().cpu(),
            metadata=[names[int(y)] for y in labels],
            label_img=images.unsqueeze(1).float().div(255),
            global_step=step,
            tag=tag,
        )

    # -- lifetime -----------------------------------------------------------------------------------
    def status(self, status: str, step: int, message: str = "") -> None:
        """Record where the run stands (``nnref runs`` reads it), with the configuration; written atomically."""
        write_status(self.run_dir, "mnist", status, step, message, config=self.cfg.to_dict())

    def flush(self) -> None:
        self._settle()
        for writer in (self._writers or {}).values():
            writer.flush()

    def close(self) -> None:
        self._settle()
        for writer in (self._writers or {}).values():
            writer.close()


def _metric_source(name: str) -> tuple[str, str]:
    """Where the HParams tab finds a final metric: (sub-run, tag).  "accuracy/val" → ("val", "accuracy")."""
    kind, _, split = name.partition("/")
    return (split, kind) if split in SPLITS else ("", name)


class SilentLog:
    """The run log of a process that writes nothing: every rank but rank 0 of a ``torchrun`` job, and a dry run.
    It has exactly :class:`RunLog`'s methods, each doing nothing — a misspelt call fails here as it would
    there."""

    console = None

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir


def _does_nothing(*args, **kwargs) -> None:
    return None


for _name, _member in vars(RunLog).items():
    if callable(_member) and not _name.startswith("_"):
        setattr(SilentLog, _name, _does_nothing)
