"""What a run on MNIST is asked to do: :class:`TrainConfig` (the parametric models), :class:`KNNConfig`
(k-nearest neighbours), their default recipes and the errors a run explains to a person.

A configuration is *resolved* exactly once, by its ``resolve``: a fresh run fills the options left unset
(``None``) from the model's default recipe; a resumed parametric run takes the recipe from its checkpoint and
only the options declared ``on_resume`` on their field (how long, where, how loud) from the new command line.
KNN stores records and votes: its configuration holds k, the metric and how many queries it compares at once,
and nothing of gradient descent.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a device is resolved: the command line's parser reads this module
    import torch

__all__ = [
    "TrainConfig",
    "KNNConfig",
    "RunOptions",
    "MODELS",
    "PARAMETRIC",
    "DEFAULTS",
    "TrainingError",
    "TrainingDiverged",
    "resolve_device",
    "check_device_name",
    "RESUMABLE",
    "config_from_dict",
]

#: The parametric models (trained by gradient descent) and their default recipes (measured: see README).
DEFAULTS = {
    "logreg": dict(epochs=10, lr=0.5, batch_size=128, momentum=0.0),
    "softmax": dict(epochs=20, lr=0.1, batch_size=64, momentum=0.0),
    "mlp": dict(epochs=15, lr=0.05, batch_size=128, momentum=0.9),
}
PARAMETRIC = tuple(DEFAULTS)
#: Every model ``nnref train`` knows.
MODELS = (*PARAMETRIC, "knn")


class TrainingError(RuntimeError):
    """A failure explained for a person (the CLI prints it and exits 1)."""


class TrainingDiverged(TrainingError):
    """The loss or a gradient became NaN or infinite."""


def _resumable(default=None):
    """A field that a resumed run takes from the new command line (``None``: keep the checkpoint's)."""
    return field(default=default, metadata={"on_resume": True})


def _command_line() -> str:
    return shlex.join([os.path.basename(sys.argv[0])] + sys.argv[1:])


@dataclass
class RunOptions:
    """What every MNIST run has: the model's name, the data, where it writes, how loud it is."""

    model: str = "softmax"
    seed: int = 0
    device: str | None = _resumable()
    data_root: str | None = _resumable()
    download: bool = _resumable(True)
    val_size: int = 5000
    positive_class: int | None = None
    classes: tuple[int, int] | None = None
    logdir: str = "runs"
    run_name: str | None = None
    limit_train: int | None = None
    dry_run: bool = False
    quiet: bool = _resumable(False)
    command: str = field(default_factory=_command_line, metadata={"on_resume": True})

    def __post_init__(self) -> None:
        if self.classes is not None:
            self.classes = tuple(self.classes)

    @property
    def binary(self) -> bool:
        """True for the two-class tasks of ``--positive-class`` and ``--classes``."""
        return self.positive_class is not None or self.classes is not None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def _task_hparams(self) -> dict:
        task = {"seed": self.seed, "val_size": self.val_size, "limit_train": self.limit_train}
        if self.binary:
            task |= {"positive_class": self.positive_class, "classes": self.classes}
        return task


@dataclass
class TrainConfig(RunOptions):
    """Every option of ``nnref train logreg|softmax|mlp``; ``None`` means "the model's default"
    (see :data:`DEFAULTS`)."""

    epochs: int | None = _resumable()  # may be raised on resume: the cosine schedule then spans the new total
    lr: float | None = None
    batch_size: int | None = None
    momentum: float | None = None
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    hidden: tuple[int, ...] = (800,)
    activation: str = "relu"
    loss: str = "fused"
    checkpoint_every: int = 0
    log_every: int = 50
    cuda_graphs: bool = _resumable(True)
    compile: bool = _resumable(False)  # torch.compile of forward + loss (the same arithmetic)
    amp: str = "off"  # autocast dtype of the forward: off, bf16, fp16 (CUDA, with loss scaling)
    resume: str | None = _resumable()
    functions: str | None = None  # a student's file of Functions, used in place of nnref's (nnref.exercises)
    student_functions: tuple[str, ...] = ()  # which of them the run used (filled in when the run loads the file)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model not in PARAMETRIC:
            raise ValueError(
                f"model must be one of {PARAMETRIC}, got {self.model!r} (k-nearest neighbours has "
                "a configuration of its own: KNNConfig)"
            )
        if self.amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"amp must be off, bf16 or fp16, got {self.amp!r}")
        self.hidden = tuple(self.hidden)
        self.student_functions = tuple(self.student_functions)

    # -- resolution -----------------------------------------------------------------------------------
    def resolve(self, checkpoint_config: dict | None = None) -> TrainConfig:
        """The complete configuration of the run: this one with the model's defaults filled in, or — when
        resuming — the checkpoint's recipe with this one's ``on_resume`` options laid over it."""
        if checkpoint_config is not None:
            if checkpoint_config.get("model") != self.model:
                raise TrainingError(
                    f"checkpoint {self.resume} was written by a {checkpoint_config.get('model')!r} "
                    f"run, it cannot resume a {self.model!r} run"
                )
            saved = TrainConfig.from_dict(checkpoint_config)
            changes = {name: getattr(self, name) for name in RESUMABLE if getattr(self, name) is not None}
            return dataclasses.replace(saved, **changes)
        filled = {key: value for key, value in DEFAULTS[self.model].items() if getattr(self, key) is None}
        if self.model == "logreg" and self.positive_class is None and self.classes is None:
            filled["positive_class"] = 0
        if self.device is None:
            filled["device"] = "auto"
        return dataclasses.replace(self, **filled)

    # -- what a person reads about the run ------------------------------------------------------------
    def recipe(self) -> str:
        """The main hyper-parameters, in the words of the command line."""
        parts = [f"lr {self.lr}", f"batch {self.batch_size}", f"epochs {self.epochs}"]
        if self.momentum:
            parts.append(f"momentum {self.momentum}" + (" nesterov" if self.nesterov else ""))
        if self.model == "mlp":
            parts.append(f"hidden {','.join(map(str, self.hidden))} {self.activation}")
        if self.amp != "off":
            parts.append(f"amp {self.amp}")
        if self.student_functions:
            parts.append(f"the student's {', '.join(n.removesuffix('Function') for n in self.student_functions)}")
        return ", ".join(parts)

    def hparams(self) -> dict:
        """The settings this model has, for TensorBoard's HParams tab (a softmax run has no hidden layer)."""
        values = {
            "model": self.model,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "lr_schedule": self.lr_schedule,
            "loss": self.loss,
            "amp": self.amp,
            "compile": self.compile,
            **self._task_hparams(),
        }
        if self.model == "mlp":
            values |= {"hidden": self.hidden, "activation": self.activation}
        if self.functions:
            values["functions"] = f"{self.functions}: {', '.join(self.student_functions) or 'none written yet'}"
        return values

    def build_model(self, in_features: int = 784, num_classes: int = 10):
        """The parametric model this configuration describes (:func:`nnref.models.build_model`): a binary task
        (``--positive-class``, ``--classes``) has two classes whatever ``num_classes`` says."""
        from ..models import build_model

        return build_model(self.model, in_features, 2 if self.binary else num_classes, self.hidden, self.activation)


@dataclass
class KNNConfig(RunOptions):
    """Every option of ``nnref train knn``: the k values to try (the best on validation is kept), the metric,
    and how many test images are compared with the records at once (memory O(chunk_size · 2048))."""

    model: str = "knn"
    k: tuple[int, ...] = (3,)
    metric: str = "euclidean"
    chunk_size: int = 4096

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != "knn":
            raise ValueError(f"KNNConfig configures model 'knn', got {self.model!r}")
        self.k = tuple(self.k)

    def resolve(self, checkpoint_config: dict | None = None) -> KNNConfig:
        return dataclasses.replace(self, device=self.device or "auto")

    @property
    def pixels(self) -> str:
        """What the records are kept as: MNIST's bytes for the euclidean search (:mod:`nnref.fast.knn_bytes`; the same
        neighbours as normalised floats, a quarter of the memory), normalised floats for the other metrics (cosine
        is not blind to normalisation's shift)."""
        return "bytes" if self.metric == "euclidean" else "normalized"

    def recipe(self) -> str:
        return f"k {','.join(map(str, self.k))} {self.metric}"

    def hparams(self) -> dict:
        return {"model": self.model, "k": self.k, "metric": self.metric, **self._task_hparams()}


#: The options a resumed run may change; everything else is the checkpoint's recipe.
RESUMABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("on_resume"))

#: The configuration class of each model: what a checkpoint's ``config`` dict is read back as.
CONFIGS = {**{name: TrainConfig for name in PARAMETRIC}, "knn": KNNConfig}


def config_from_dict(d: dict) -> TrainConfig | KNNConfig:
    """A checkpoint's (or status file's) configuration, as the class of its model."""
    model = d.get("model")
    if model not in CONFIGS:
        raise TrainingError(f"a configuration of an unknown model {model!r} (nnref knows {MODELS})")
    return CONFIGS[model].from_dict(d)


def check_device_name(name: str | None) -> None:
    """Refuse a device name other than auto, cpu, cuda or cuda:N (torch-free: the command line's parser calls it)."""
    if name not in (None, "auto", "cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")


def resolve_device(name: str | None) -> torch.device:
    """ "auto" (or None) takes CUDA when present; "cuda" without a GPU is an error, not a silent fallback."""
    import torch

    check_device_name(name)
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{name!r} was asked for, but PyTorch sees no CUDA GPU on this machine (use cpu or auto)")
    return torch.device(name)
