"""What a page sends over its WebSocket, read in the background: the one receive loop of every page of the lab —
and what every page's socket shares: the frames it may hold (``IN_FLIGHT``), the loop that answers messages and
sends frames (:class:`FrameSocket`), the log, and how a page that has gone is told from a failure
(:class:`PageGone`, :func:`closed`, :func:`during`).

A page's messages are read as they come, into a queue, while its session works; the session takes every message
waiting at once (:meth:`Inbox.take`), so it acts on the latest state and never falls behind a page that sends
faster than it computes.  ``None`` in place of the list: the page has gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from starlette.websockets import WebSocketDisconnect

__all__ = ["Inbox", "FrameSocket", "IN_FLIGHT", "PageGone", "closed", "during", "log"]

log = logging.getLogger("nnref.lab")
#: Frames a page may hold without having drawn them.
IN_FLIGHT = 2
#: What a page sends after drawing each frame, exactly as its ``JSON.stringify({type: "ready"})`` writes it.
READY = '{"type":"ready"}'


class Inbox:
    """``async with Inbox(websocket) as inbox:`` — then ``await inbox.take()`` for the messages (text or bytes)."""

    def __init__(self, websocket) -> None:
        self.websocket, self.queue, self.task = websocket, asyncio.Queue(), None
        self.gone = False  # the page has closed its socket (its last messages may still be in the queue)

    async def __aenter__(self) -> Inbox:
        self.task = asyncio.create_task(self._receive())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()

    async def _receive(self) -> None:
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                await self.queue.put(text if text is not None else message.get("bytes"))
        finally:
            self.gone = True
            await self.queue.put(None)

    def post(self, message: dict) -> None:
        """A message from the server itself for this page (the teacher's line and rules: :mod:`nnref.lab.classroom`),
        sent by the page's own loop between its frames."""
        self.queue.put_nowait(message)

    async def take(self, wait: bool = True) -> list | None:
        """Every message the page sent since the last call, oldest first — waiting for one when ``wait`` and there
        is none — or ``None`` once the page has gone."""
        messages = [await self.queue.get()] if wait else []
        while not self.queue.empty():
            messages.append(self.queue.get_nowait())
        return None if None in messages else messages


class PageGone(Exception):
    """The page closed its socket while the server was answering it."""

    def __init__(self, during: str) -> None:
        super().__init__(during)
        self.during = during


def closed(exc: Exception) -> bool:
    """Whether ``exc`` is a send on a socket the page has closed (Starlette and uvicorn say so in these ways)."""
    if isinstance(exc, WebSocketDisconnect) or type(exc).__name__ in ("ClientDisconnected", "ConnectionClosed"):
        return True
    return isinstance(exc, RuntimeError) and any(
        words in str(exc) for words in ("close message has been sent", "not connected", "after sending")
    )


def during(text) -> str:
    """What the server was doing for a page's message, for the log's one line."""
    try:
        return f"while its {json.loads(text)['type']} message was handled"
    except Exception:
        return "mid-message"


class FrameSocket:
    """A page's socket that streams its session's frames: the lab's playground and the MNIST page.

    Messages are answered as they come (:meth:`handle`, the page's own); then, while the session plays or something
    changed, the session trains for ``train_per_frame`` seconds in a worker thread and one frame goes out — at most
    :data:`IN_FLIGHT` unacknowledged (a ``ready`` from the page gives one back: :meth:`ready`).  Subclasses set
    ``self.session`` (with ``playing``, ``advance(seconds)``, ``frame()``) before :meth:`serve_frames`.
    """

    train_per_frame = 0.04

    def __init__(self, websocket, classroom=None) -> None:
        self.ws, self.session, self.classroom, self.seat = websocket, None, classroom, None
        self.credits, self.dirty = IN_FLIGHT, True

    @contextlib.contextmanager
    def seated(self, kind: str, inbox: Inbox):
        """The page's seat in the class (:class:`nnref.lab.classroom.Classroom`) while its session lives."""
        if self.classroom is None:
            yield
            return
        self.seat = self.classroom.join(kind, self.session, inbox.post)
        try:
            yield
        finally:
            self.classroom.leave(self.seat)

    def refusal(self, kind: str, state: dict | None = None) -> str | None:
        """Why the teacher's rules refuse this page's message (None where there is no class, or they allow it)."""
        return None if self.seat is None else self.classroom.refusal(self.seat, kind, state)

    async def serve_frames(self, inbox: Inbox) -> None:
        """Answer messages and send frames until the page goes."""
        while True:
            waiting = not (self.session.playing or self.dirty) or self.credits == 0
            messages = await inbox.take(wait=waiting)
            if messages is None:  # the page has gone: its session ends now
                return
            for message in messages:
                if message == READY:  # (the page drew a frame: the message of every frame, read at once)
                    self.ready()
                    continue
                if isinstance(message, dict):  # the server's own (the teacher's), not the page's: passed on
                    await self.send(message, "while the teacher's line was sent")
                    self.dirty = True
                    continue
                await self.handle(message)
                if inbox.gone:  # it closed while this message was handled (a send to it need not have failed)
                    raise PageGone(during(message))
            if self.credits and (self.session.playing or self.dirty):
                await self._send_frame()

    async def handle(self, message) -> None:
        raise NotImplementedError

    def ready(self) -> None:
        """The page drew a frame: it may be sent one more."""
        self.credits = min(self.credits + 1, IN_FLIGHT)

    async def send(self, message, during: str) -> None:
        """Send JSON (a dict) or bytes; a page that has gone raises :class:`PageGone` saying ``during`` what."""
        try:
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            else:
                await self.ws.send_json(message)
        except Exception as exc:
            if closed(exc):
                raise PageGone(during) from None
            raise

    async def _send_frame(self) -> None:
        frame = await self.advance() if self.session.playing else None
        if frame is None:
            frame = await self.draw()
        await self.send(frame, "while its frame was sent")
        self.credits -= 1
        self.dirty = False

    async def draw(self) -> bytes:
        """The session's frame, made in a worker thread (the MNIST page's in its turn: :mod:`nnref.lab.mnist.turns`)."""
        return await asyncio.to_thread(self.session.frame)

    async def advance(self) -> bytes | None:
        """Train the playing session before its next frame: ``train_per_frame`` seconds in a worker thread (the
        playground trains with the class instead, and gets its frame made: :class:`nnref.lab.crowd.Crowd`)."""
        await asyncio.to_thread(self.session.advance, self.train_per_frame)
        return None
