"""The ``/mnist`` page's WebSocket (``/ws/mnist``): the playground's protocol, for MNIST.

The server sends JSON ``loading`` (MNIST is being decoded, once per server), ``unavailable`` (no MNIST: the message
says where it was looked for and how to get it; the socket then closes), ``error``, ``notice``; and binary messages
(:func:`nnref.lab.session.encode`): one ``gallery`` (the test digits' labels and 28 × 28 images, the sizes of the
splits), then ``frame`` after ``frame`` (:class:`~nnref.lab.mnist.session.MnistSession`), and a ``file`` for Export.

The page sends JSON — ``config`` (a partial state and its version), ``play``, ``pause``, ``step``, ``reset``,
``reinit``, ``inspect`` (``index``: a gallery digit, or null), ``export``, and ``ready`` after drawing each frame
— and a drawn digit as a binary message (:func:`~nnref.lab.mnist.digit.drawn_digit`).  At most ``IN_FLIGHT`` frames
are unacknowledged: a slow page slows its own frames, never the server's memory; the latest frame wins.  A page's
frame — and, while it plays, the training before it — is made on the server's trainer thread when its turn comes
(:mod:`.turns`: the server's pages take turns; a lone page trains :data:`TRAIN_PER_FRAME` seconds per frame).
"""

from __future__ import annotations

import asyncio
import traceback

from starlette.websockets import WebSocketDisconnect

from ...data import DataError
from ..inbox import FrameSocket, Inbox, PageGone, closed, during, log
from ..session import encode
from ..state import BadMessage
from .dataset import SharedMNIST
from .digit import drawn_digit
from .session import MnistSession
from .state import parse_message
from .turns import TRAIN_PER_FRAME, turns

__all__ = ["serve_mnist", "TRAIN_PER_FRAME"]


async def serve_mnist(websocket, shared: SharedMNIST, notes: tuple[str, ...] = (), classroom=None) -> None:
    """One page's ``/mnist`` session over its (accepted) WebSocket, until the page goes; a seat in ``classroom``
    (:class:`nnref.lab.classroom.Classroom`) meanwhile."""
    try:
        await _MnistSocket(websocket, shared, notes, classroom).run()
    except (WebSocketDisconnect, PageGone) as exc:  # closed while its message was handled: one line, no stack
        log.warning("nnref lab: an /mnist page closed %s; its session ended", getattr(exc, "during", "mid-message"))


class _MnistSocket(FrameSocket):
    train_per_frame = TRAIN_PER_FRAME

    def __init__(self, websocket, shared: SharedMNIST, notes: tuple[str, ...], classroom=None) -> None:
        super().__init__(websocket, classroom)
        self.shared, self.notes = shared, notes

    async def run(self) -> None:
        async with Inbox(self.ws) as inbox:
            views = await self._views()
            if views is None:
                return
            self.session = await asyncio.to_thread(MnistSession, views, notes=self.notes)
            await self.ws.send_bytes(_gallery_message(views, self.shared))
            self.turns = turns()
            self.turns.join(self.session)
            try:
                with self.seated("mnist", inbox):
                    await self.serve_frames(inbox)
            finally:
                self.turns.leave(self.session)

    async def advance(self) -> bytes:
        """The playing page's turn (:mod:`.turns`): training for the turn's seconds, then its frame, on a trainer
        thread."""
        turns = self.turns  # (read here, on the event loop, which alone changes the pages that play)
        return await turns.take(self._train_and_draw, turns.train_seconds(), turns.val_every())

    async def draw(self) -> bytes:
        """The paused page's frame, in its turn too (on Pause it measures the test set: one at a time, not a heap
        of activations per worker thread)."""
        return await self.turns.take(self.session.frame)

    def _train_and_draw(self, seconds: float, val_every: float) -> bytes:
        self.session.val_every = val_every
        self.session.advance(seconds)
        return self.session.frame()

    async def _views(self):
        """MNIST's shared views — decoded now if no page has yet (the page is told) — or None, when it is not there
        (the page is told why, and how to get it)."""
        if not self.shared.loaded:
            await self.ws.send_json({"type": "loading", "message": "Decoding MNIST (once for this server) …"})
        try:
            return await asyncio.to_thread(self.shared.get)
        except DataError as exc:
            await self.ws.send_json(
                {
                    "type": "unavailable",
                    "message": str(exc),
                    "root": str(self.shared.root),
                    "download": self.shared.download,
                }
            )
            await self.ws.close()
            return None

    async def handle(self, message) -> None:
        try:
            if isinstance(message, bytes):
                self.session.draw(await asyncio.to_thread(drawn_digit, message))
                self.dirty = True
            else:
                await self._act(parse_message(message))
        except (BadMessage, DataError) as exc:
            await self.send({"type": "error", "message": str(exc)}, during(message))
        except WebSocketDisconnect:
            raise PageGone(during(message)) from None
        except PageGone:
            raise
        except Exception as exc:
            if closed(exc):
                raise PageGone(during(message)) from None
            traceback.print_exc()  # a bug must not end the page's session: say so, and log it for its fix
            await self.send({"type": "error", "message": f"unexpected {type(exc).__name__}: {exc}"}, "mid-message")

    async def _act(self, message: dict) -> None:
        kind, s = message["type"], self.session
        if kind == "ready":
            self.ready()
            return
        refusal = self.refusal(kind)
        if refusal is not None:  # the teacher's rules: said, not silently ignored
            await self.send({"type": "notice", "message": refusal}, f"while its {kind} message was handled")
        elif kind == "name" and self.seat is not None:
            self.classroom.rename(self.seat, message["name"])
        elif kind == "config":
            await asyncio.to_thread(s.configure, message["state"], message.get("version"))
        elif kind in ("play", "step") and s.diverged:  # said, not silently ignored
            await self.send({"type": "notice", "message": s.diverged}, "while its play message was handled")
        elif kind in ("play", "pause"):
            s.playing = kind == "play"
        elif kind == "step":
            s.playing = False
            await asyncio.to_thread(s.advance, None)
        elif kind in ("reset", "reinit"):
            await asyncio.to_thread(s.reset, kind == "reinit")
        elif kind == "inspect":
            s.inspect(message.get("index"))
        elif kind == "export":
            name, content = await asyncio.to_thread(s.export)
            await self.send(encode({"type": "file", "name": name}, [content]), "while its export was sent")
        self.dirty = True


def _gallery_message(views, shared: SharedMNIST) -> bytes:
    """The test digits of the gallery (labels; 28 × 28 images, row by row from the top) and the splits' sizes."""
    header = {
        "type": "gallery",
        "labels": views.gallery_y.tolist(),
        "train": views.train_x.shape[0],
        "validation": views.val_x.shape[0],
        "held_out": views.val_size,
        "test": views.test_x.shape[0],
        "root": views.root,
        "decode_seconds": round(shared.seconds or 0.0, 2),
    }
    return encode(header, [views.gallery.contiguous().numpy().tobytes()])
