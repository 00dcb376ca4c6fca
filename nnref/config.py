"""What a training run is asked to do: :class:`TrainConfig`, the models, their default recipes, the errors.

A configuration is *resolved* exactly once, by :meth:`TrainConfig.resolve`: a fresh run fills the options
left unset (``None``) from the model's default recipe; a resumed run takes the recipe from its checkpoint and
only the options declared ``on_resume`` on their field (how long, where, how loud) from the new command line.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from dataclasses import dataclass, field

import torch

__all__ = ["TrainConfig", "MODELS", "DEFAULTS", "TrainingError", "TrainingDiverged", "resolve_device",
           "RESUMABLE"]

MODELS = ("logreg", "softmax", "mlp", "knn")

#: Per-model defaults for the options a user leaves out (measured recipes: see README's results table).
DEFAULTS = {
    "logreg": dict(epochs=10, lr=0.5, batch_size=128, momentum=0.0),
    "softmax": dict(epochs=20, lr=0.1, batch_size=64, momentum=0.0),
    "mlp": dict(epochs=15, lr=0.05, batch_size=128, momentum=0.9),
    "knn": dict(epochs=1, lr=1.0, batch_size=4096, momentum=0.0),
}


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
class TrainConfig:
    """Every option of ``nnref train``; ``None`` means "the model's default" (see :data:`DEFAULTS`)."""

    model: str = "softmax"
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
    k: tuple[int, ...] = (3,)
    metric: str = "euclidean"
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
    checkpoint_every: int = 0
    log_every: int = 50
    cuda_graphs: bool = _resumable(True)
    compile: bool = _resumable(False)  # torch.compile of forward + loss (the same arithmetic)
    amp: str = "off"  # autocast dtype of the forward: off, bf16, fp16 (CUDA, with loss scaling)
    dry_run: bool = False
    quiet: bool = _resumable(False)
    resume: str | None = _resumable()
    command: str = field(default_factory=_command_line, metadata={"on_resume": True})

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"amp must be off, bf16 or fp16, got {self.amp!r}")
        self.hidden = tuple(self.hidden)
        self.k = tuple(self.k)
        if self.classes is not None:
            self.classes = tuple(self.classes)

    # -- resolution -----------------------------------------------------------------------------------
    def resolve(self, checkpoint_config: dict | None = None) -> "TrainConfig":
        """The complete configuration of the run: this one with the model's defaults filled in, or — when
        resuming — the checkpoint's recipe with this one's ``on_resume`` options laid over it."""
        if checkpoint_config is not None:
            saved = TrainConfig.from_dict(checkpoint_config)
            if saved.model != self.model:
                raise TrainingError(f"checkpoint {self.resume} was written by a {saved.model!r} run, "
                                    f"it cannot resume a {self.model!r} run")
            changes = {name: getattr(self, name) for name in RESUMABLE if getattr(self, name) is not None}
            return dataclasses.replace(saved, **changes)
        filled = {key: value for key, value in DEFAULTS[self.model].items() if getattr(self, key) is None}
        if self.model == "logreg" and self.positive_class is None and self.classes is None:
            filled["positive_class"] = 0
        if self.device is None:
            filled["device"] = "auto"
        return dataclasses.replace(self, **filled)

    @property
    def binary(self) -> bool:
        """True for the two-class tasks of ``--positive-class`` and ``--classes``."""
        return self.positive_class is not None or self.classes is not None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


#: The options a resumed run may change; everything else is the checkpoint's recipe.
RESUMABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("on_resume"))


def resolve_device(name: str | None) -> torch.device:
    """"auto" (or None) takes CUDA when present; "cuda" without a GPU is an error, not a silent fallback."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{name!r} was asked for, but PyTorch sees no CUDA GPU on this machine "
                         "(use cpu or auto)")
    return torch.device(name)
