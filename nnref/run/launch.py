"""``nnref train`` from the options a person gave to the run it starts: the model picks the program — gradient
descent (:func:`nnref.run.train.train`) or KNN (:func:`nnref.run.knn.run`) — and the options its configuration
takes.

Torch-free until the run begins, so that a stop signal while the command starts is a test's fail point
(``launch``) before the heavy imports, and so that the command line can ask which options a model takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .config import PARAMETRIC, KNNConfig, TrainConfig
from .failpoints import failpoint

__all__ = ["config_class", "foreign_options", "train"]


def config_class(model: str) -> type[TrainConfig] | type[KNNConfig]:
    """The configuration of a model's run: KNN stores records, the others descend a gradient."""
    return TrainConfig if model in PARAMETRIC else KNNConfig


def foreign_options(model: str, options: dict) -> list[str]:
    """The options (configuration field names) that ``model``'s run does not take, sorted."""
    fields = {f.name for f in dataclasses.fields(config_class(model))}
    return sorted(set(options) - fields)


def train(model: str, options: dict, console: Callable[[str], None] | None = None) -> dict:
    """Run ``nnref train MODEL`` with ``options`` (configuration fields; every option left out takes the model's
    default) and return its results.  Raises ``ValueError`` for options the model does not take."""
    failpoint("launch")  # (a test's SIGTERM while the command starts, before the heavy imports)
    foreign = foreign_options(model, options)
    if foreign:
        raise ValueError(f"{', '.join(foreign)} do not apply to {model}")
    if model in PARAMETRIC:
        from .train import train as program
    else:
        from .knn import run as program
    return program(config_class(model)(model=model, **options), console=console)
