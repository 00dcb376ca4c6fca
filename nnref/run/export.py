"""``nnref export``: a trained parametric model as an ONNX file or a ``torch.export`` program.

The exported function is the model's forward — rows x (n, 784), normalised as in training (see
:func:`nnref.data.normalize`), to logits: (n, c), or (n,) for a binary model — with a dynamic batch size.
``torch.export`` traces through nnref's Functions (their forward is ordinary torch operations), so the
exported graph holds the same arithmetic; the ONNX file is written by the dynamo-based ``torch.onnx.export``
(it needs the ``onnx`` and ``onnxscript`` packages: ``pip install 'nnref[export]'``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_checkpoint
from .config import PARAMETRIC, TrainConfig, TrainingError, config_from_dict
from .evaluate import from_state

__all__ = ["FORMATS", "export_checkpoint", "export_model", "load_exported"]

FORMATS = ("onnx", "pt2")


def _example_and_shapes(model):
    x = torch.zeros(2, model_in_features(model))
    return (x,), ({0: torch.export.Dim("batch")},)


def model_in_features(model) -> int:
    return next(model.parameters()).shape[1]


def export_model(model: torch.nn.Module, out, fmt: str = "onnx") -> Path:
    """Write ``model``'s forward (dynamic batch) to ``out`` as ONNX or as a ``torch.export`` program (.pt2)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    args, shapes = _example_and_shapes(model)
    if fmt == "pt2":
        torch.export.save(torch.export.export(model, args, dynamic_shapes=shapes), str(out))
        return out
    try:
        import onnxscript  # noqa: F401  (the dynamo-based exporter needs it)
    except ImportError:
        raise TrainingError("ONNX export needs the onnx and onnxscript packages: pip install 'nnref[export]'") from None
    torch.onnx.export(model, args, str(out), dynamo=True, dynamic_shapes=shapes, external_data=False, verbose=False)
    return out


def export_checkpoint(checkpoint, out, fmt: str = "onnx") -> Path:
    """Export the model of a checkpoint; a KNN checkpoint is refused (it holds records, not a function)."""
    state = load_checkpoint(checkpoint)
    cfg = config_from_dict(state["config"])
    if not isinstance(cfg, TrainConfig):
        raise TrainingError(
            f"{checkpoint} is a {cfg.model.upper()} checkpoint: export covers the parametric models "
            f"({', '.join(PARAMETRIC)}), which are functions of their input; a {cfg.model.upper()} "
            "checkpoint keeps its training set instead"
        )
    model, _ = from_state(state, checkpoint, "cpu")
    return export_model(model, out, fmt)


def load_exported(path):
    """A callable ``x → logits`` from an exported file: an onnxruntime session (.onnx) or the program (.pt2)."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: torch.from_numpy(session.run(None, {name: x.detach().cpu().numpy()})[0])
    return torch.export.load(str(path)).module()
