"""The draw-a-digit page's backend: a digit drawn on the page (or a picture dropped on it) goes through MNIST's own
preparation (:func:`nnref.digits.prepare_digit`) into a model loaded from a checkpoint — the forward pass (the
28 × 28 input, each hidden layer's activations, the class probabilities), the backward pass (dL/dx for a class
chosen on the page: the gradient of that class's loss with respect to the 784 input pixels, by nnref's hand-written
backward), and the lecture's non-parametric model beside it: the k nearest of the 60,000 training images.

Messages from the page: binary — a 4-byte length, a JSON header ``{"type": "draw", "width", "height", "target"}``
or ``{"type": "file", "name", "target"}``, then the canvas's gray pixels (light ink on black) or the picture file's
bytes — and JSON ``{"type": "target", "class": c}`` (``null``: the predicted class, again).  To each picture the
server answers twice: a ``digit`` frame (header; the 28 × 28 input, the gradient picture and the hidden activations
as bytes) as soon as the model has seen it, then a ``neighbours`` frame (their labels and distances; their 28 × 28
images).  A picture the model cannot be shown is answered with JSON ``{"type": "error", "kind", "message"}`` — kind
``no-digit`` (a blank picture or canvas) or ``not-a-picture`` (a file nnref cannot read, or one too large) — and
the last picture is forgotten, so a new class does not bring back its results; any other bad message is an
``error`` without a kind.  A lab without a model sends an ``error`` of kind ``no-model`` (how to start one) and
closes the socket.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import time
import traceback
from dataclasses import dataclass

import torch

from ..data import STD, DataError, resolve_root
from ..digits import MAX_BYTES, BadPicture, NoDigitFound, load_picture, prepare_digit, to_byte_row, to_row
from ..run.config import TrainingError
from .inbox import Inbox
from .session import decode, encode

__all__ = ["DigitsBackend", "serve_digits", "Analysis"]

#: The largest drawing the page may send (pixels per side).
MAX_SIDE = 1024
#: The most of a file's name a message repeats.
MAX_NAME = 80


@dataclass
class Analysis:
    """One picture through the model: the frame for the page, and the prepared input (for the next target)."""

    frame: bytes
    image: torch.Tensor


class DigitsBackend:
    """A parametric model, its class names, and KNN over the training images (with those images, to show)."""

    def __init__(self, model, class_names: list[str], knn, images: torch.Tensor, source: str) -> None:
        self.model, self.class_names, self.knn, self.images, self.source = model, class_names, knn, images, source
        self.k = knn.k

    @classmethod
    def load(cls, checkpoint, knn_checkpoint=None, data_root=None, download: bool = False, say=None) -> DigitsBackend:
        """The model of a parametric checkpoint; KNN from ``knn_checkpoint`` (its k and metric) or, by default, k = 3
        over every training image (60,000 of them) of ``data_root``."""
        from ..data import class_names as names_of
        from ..data import load_mnist, normalize
        from ..knn import KNNClassifier
        from ..run.checkpoint import load_checkpoint
        from ..run.config import config_from_dict
        from ..run.evaluate import load_model
        from ..run.knn import chosen_k

        model, cfg = load_model(checkpoint, "cpu", data_root, download)
        if not isinstance(model, torch.nn.Module):
            raise TrainingError(
                f"--checkpoint {checkpoint} is a KNN run: the digit page needs a parametric model "
                "(logreg, softmax, mlp); give a KNN run with --knn-checkpoint"
            )
        k, metric = 3, "euclidean"
        if knn_checkpoint:
            state = load_checkpoint(knn_checkpoint)
            knn_cfg = config_from_dict(state["config"])
            if knn_cfg.model != "knn":
                raise TrainingError(f"--knn-checkpoint {knn_checkpoint} is a {knn_cfg.model!r} run, not a KNN run")
            k, metric = chosen_k(state), knn_cfg.metric
        images, labels = load_mnist(resolve_root(data_root or cfg.data_root), train=True, download=download)
        records = images.flatten(1) if metric == "euclidean" else normalize(images)  # euclidean: MNIST's bytes
        knn = KNNClassifier(k, metric, chunk_size=64).fit(records, labels, num_classes=10)
        if say:
            say(
                f"digit page: {type(model).__name__} from {checkpoint}; KNN k = {k} ({metric}) over "
                f"{images.shape[0]:,} training images"
            )
        return cls(model.eval(), names_of(cfg.positive_class, cfg.classes), knn, images, str(checkpoint))

    # -- the forward and the backward pass ------------------------------------------------------------
    def analyse(self, picture, target: int | None = None, ink: str = "auto", name: str | None = None) -> Analysis:
        """The model's view of a picture (anything :func:`prepare_digit` takes, or a prepared 28 × 28 image).
        ``name``: the file's, for the message when a file's bytes are not a picture."""
        start = time.perf_counter()
        if isinstance(picture, (bytes, bytearray, memoryview)):
            picture = load_picture(picture, name)
            image = prepare_digit(picture, ink=ink)
        elif isinstance(picture, torch.Tensor) and picture.shape == (28, 28):
            image = picture
        else:
            image = prepare_digit(picture, ink=ink)
        prepared = time.perf_counter()
        x = to_row(image).requires_grad_()
        hidden, logits = self._forward(x)
        probs = self.model.activation(logits.detach())
        probs = torch.stack([1 - probs, probs], -1) if probs.dim() == 1 else probs
        probs = probs[0]
        best = int(probs.argmax())
        target = best if target is None or not 0 <= target < len(probs) else target
        label = torch.tensor([float(target)]) if self.model.binary else torch.tensor([target])
        loss = self.model.loss(logits, label)
        (grad,) = torch.autograd.grad(loss, x)  # nnref's hand-written backward, through every layer
        toward = -grad[0].reshape(28, 28)  # the pixels that, made brighter, lower the loss of the target class
        header = {
            "type": "digit",
            "classes": self.class_names,
            "probabilities": [round(float(p), 6) for p in probs],
            "prediction": self.class_names[best],
            "best": best,
            "target": target,
            "loss": round(float(loss.detach()), 6),
            "hidden": [h.shape[-1] for h in hidden],
            "ms": {
                "prepare": round((prepared - start) * 1e3, 2),
                "model": round((time.perf_counter() - prepared) * 1e3, 2),
            },
        }
        blobs = [_gray(image), _signed(toward)] + [_gray(h[0] / h[0].abs().max().clamp_min(1e-12)) for h in hidden]
        return Analysis(encode(header, blobs), image)

    def _forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        hidden, z = [], x
        layers = self.model.layers if hasattr(self.model, "layers") else [self.model.linear]
        for layer in layers:
            z = layer(z)
            if not hasattr(layer, "weight"):
                hidden.append(z.detach())
        return hidden, (z.squeeze(-1) if self.model.binary else z)

    def neighbours(self, image: torch.Tensor) -> bytes:
        """The k nearest training images of the prepared input, nearest first."""
        start = time.perf_counter()
        with torch.no_grad():
            query = to_byte_row(image) if self.knn.stores_bytes else to_row(image)  # (0 … 255, as MNIST's digits)
            dist, idx, labels = self.knn.candidates(query)
        if self.knn.metric == "euclidean":  # in the units of normalised pixels, whichever the records
            dist = dist[0].double().sqrt() / (255 * STD if self.knn.stores_bytes else 1)
        else:
            dist = dist[0]
        header = {
            "type": "neighbours",
            "k": self.k,
            "labels": [int(v) for v in labels[0]],
            "distances": [round(float(d), 3) for d in dist],
            "indices": [int(i) for i in idx[0]],
            "vote": int(torch.bincount(labels[0], minlength=10).argmax()),
            "ms": round((time.perf_counter() - start) * 1e3, 2),
        }
        return encode(header, [self.images[int(i)].numpy().tobytes() for i in idx[0]])


def _gray(t: torch.Tensor) -> bytes:
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy().tobytes()


def _signed(t: torch.Tensor) -> bytes:
    scale = t.abs().max().clamp_min(1e-12)
    return (128 + 127 * t / scale).round().clamp(0, 255).to(torch.uint8).numpy().tobytes()


# --------------------------------------------------------------------------------------------------
# The page's socket
# --------------------------------------------------------------------------------------------------
def _name(name) -> str:
    """A file's name as a message may repeat it: its last part, printable, at most :data:`MAX_NAME` characters."""
    if not isinstance(name, str):
        return "the picture"
    name = "".join(c for c in name.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable()).strip()
    if len(name) > MAX_NAME:
        name = name[: MAX_NAME - 1] + "…"
    return name or "the picture"


def _picture(message: bytes) -> tuple[dict, object]:
    """The header of a page's binary message and the picture it carries (gray tensor, or file bytes)."""
    try:
        header, payload = decode(message)
    except (ValueError, UnicodeDecodeError, IndexError, TypeError, struct.error) as exc:
        raise DataError(f"a picture message is a header and its bytes ({type(exc).__name__})") from None
    if not isinstance(header, dict) or header.get("type") not in ("draw", "file"):
        raise DataError("a picture message's type is draw or file")
    target = header.get("target")
    if target is not None and (not isinstance(target, int) or isinstance(target, bool) or not 0 <= target <= 9):
        raise DataError(f"target must be a class 0-9, got {target!r}")
    if header["type"] == "file":
        header["name"] = _name(header.get("name"))
        if len(payload) > MAX_BYTES:
            raise BadPicture(
                f"{header['name']} is {len(payload) / 2**20:.0f} MiB: more than the {MAX_BYTES / 2**20:.0f} MiB "
                "nnref reads"
            )
        return header, bytes(payload)
    w, h = header.get("width"), header.get("height")
    if not all(isinstance(v, int) and 8 <= v <= MAX_SIDE for v in (w, h)) or len(payload) != w * h:
        raise DataError(f"a drawing is width × height gray bytes (8 to {MAX_SIDE} pixels a side)")
    return header, torch.frombuffer(bytearray(payload), dtype=torch.uint8).reshape(h, w).float() / 255


async def serve_digits(websocket, backend: DigitsBackend | None) -> None:
    """The draw-a-digit socket: the latest picture wins (older ones still waiting are dropped)."""
    from starlette.websockets import WebSocketDisconnect

    if backend is None:
        await websocket.send_json(
            {
                "type": "error",
                "kind": "no-model",
                "message": "This lab has no model for digits: start it with "
                "nnref lab --checkpoint runs/<run>/checkpoint.pt",
            }
        )
        await websocket.close()
        return
    await websocket.send_json(
        {"type": "ready", "classes": backend.class_names, "k": backend.k, "model": type(backend.model).__name__}
    )
    image, target = None, None
    try:
        async with Inbox(websocket) as inbox:
            while True:
                messages = await inbox.take()  # what the page sent meanwhile: only the latest picture is analysed
                if messages is None:  # the page has gone
                    return
                picture, asked = None, target
                for m in messages:
                    try:
                        if isinstance(m, bytes):
                            picture = _picture(m)
                            target = picture[0].get("target", target)
                        else:
                            target = _target(m, target)
                    except BadPicture as exc:  # a file too large: the page asked about it, not the last one
                        picture, image = None, None
                        await _refuse(websocket, exc)
                    except DataError as exc:
                        await websocket.send_json({"type": "error", "message": str(exc)})
                if picture is not None or target != asked:  # a bad message alone changes nothing on the page
                    image = await _answer(websocket, backend, picture, image, target)
    except WebSocketDisconnect:
        return


def _target(text, current):
    try:
        message = json.loads(text, parse_constant=lambda c: math.nan)
    except (TypeError, ValueError):
        raise DataError("messages are JSON text or a picture") from None
    if not isinstance(message, dict) or message.get("type") != "target":
        raise DataError('a text message is {"type": "target", "class": c}')
    c = message.get("class")
    if c is not None and (not isinstance(c, int) or isinstance(c, bool) or not 0 <= c <= 9):
        raise DataError(f"class must be 0-9 (or null: the predicted one), got {c!r}")
    return c


async def _refuse(websocket, exc: DataError, picture=None) -> None:
    """A picture the model cannot be shown, said with its kind: the page clears what it showed of the last one."""
    message = str(exc)
    if isinstance(exc, NoDigitFound):
        where = picture[0]["name"] if picture and picture[0]["type"] == "file" else "your drawing"
        message = f"No digit found in {where}: {message.removeprefix('no digit found: ')}"
    kind = "no-digit" if isinstance(exc, NoDigitFound) else "not-a-picture"
    await websocket.send_json({"type": "error", "kind": kind, "message": message})


async def _answer(websocket, backend: DigitsBackend, picture, image, target):
    """Analyse the new picture (or the last one again, for a new target) and send both frames."""
    if picture is None and image is None:
        return None
    source, ink = (picture[1], "light" if picture[0]["type"] == "draw" else "auto") if picture else (image, "auto")
    name = picture[0].get("name") if picture else None
    try:
        analysis = await asyncio.to_thread(backend.analyse, source, target, ink, name)
    except (NoDigitFound, BadPicture) as exc:  # the new picture has nothing to show: the last one is forgotten
        await _refuse(websocket, exc, picture)
        return None
    except DataError as exc:
        await websocket.send_json({"type": "error", "message": str(exc)})
        return image if picture is None else None
    except Exception as exc:  # a bug must not end the page's session: say so, and log it for its fix
        traceback.print_exc()
        await websocket.send_json({"type": "error", "message": f"unexpected {type(exc).__name__}: {exc}"})
        return image if picture is None else None
    await websocket.send_bytes(analysis.frame)
    if picture is not None:
        await websocket.send_bytes(await asyncio.to_thread(backend.neighbours, analysis.image))
    return analysis.image
