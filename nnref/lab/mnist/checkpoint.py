"""The ``/mnist`` page's model as an nnref checkpoint — the format of :mod:`nnref.run.checkpoint`, so that
``nnref eval``, ``nnref predict`` and ``nnref lab --checkpoint`` read it as they read a run of ``nnref train``.

What it holds: ``format``; ``config``, the :class:`~nnref.run.config.TrainConfig` of the model and the recipe it
was trained with (constant learning rate; MNIST's folder and held-out validation images as the page had them);
``model``, the state dict; ``optimizer``; ``epoch`` and ``global_step``; ``finished`` with ``final`` (the test and
validation accuracy, measured when the file was made); and ``lab``, what only the page knows (images seen, the
page's state).  It has no shuffling or RNG state: ``nnref train --resume`` cannot continue it.
"""

from __future__ import annotations

import io
import math

import torch

from ...run.checkpoint import FORMAT
from ...run.config import TrainConfig

__all__ = ["checkpoint_bytes", "config_of"]


def config_of(state: dict, root: str, val_size: int, epochs: float) -> TrainConfig:
    """The run configuration of a page's state (``nnref.lab.mnist.state``): its model, recipe and data."""
    mlp = state["model"] == "mlp"
    return TrainConfig(
        model=state["model"],
        seed=state["seed"],
        data_root=root,
        val_size=val_size,
        epochs=max(1, math.ceil(epochs)),
        lr=state["lr"],
        batch_size=state["batch"],
        momentum=state["momentum"],
        weight_decay=state["decay"],
        lr_schedule="constant",
        hidden=tuple(state["hidden"]) if mlp else TrainConfig.hidden,
        activation=state["activation"] if mlp else TrainConfig.activation,
        device="cpu",
        command="nnref lab: the /mnist page",
    )


def checkpoint_bytes(model, optimizer, cfg: TrainConfig, progress: dict, final: dict, page_state: dict) -> bytes:
    """The checkpoint file's bytes (``torch.save``; it loads with ``weights_only=True``).  ``progress``: ``step``,
    ``epoch`` and ``images`` seen; ``final``: ``test_acc``, ``test_loss``, ``val_acc``, ``train_seconds``."""
    buffer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "config": cfg.to_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": int(progress["epoch"]),
            "global_step": int(progress["step"]),
            "finished": True,
            "final": final,
            "lab": {"page": "/mnist", "images_seen": int(progress["images"]), "state": dict(page_state)},
        },
        buffer,
    )
    return buffer.getvalue()
