"""What a page sends over its WebSocket, read in the background: the one receive loop of every page of the lab —
and what every page's socket shares: the frames it may hold (``IN_FLIGHT``), the log, and how a page that has gone
is told from a failure (:class:`PageGone`, :func:`closed`, :func:`during`).

A page's messages are read as they come, into a queue, while its session works; the session takes every message
waiting at once (:meth:`Inbox.take`), so it acts on the latest state and never falls behind a page that sends
faster than it computes.  ``None`` in place of the list: the page has gone.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.websockets import WebSocketDisconnect

__all__ = ["Inbox", "IN_FLIGHT", "PageGone", "closed", "during", "log"]

log = logging.getLogger("nnref.lab")
#: Frames a page may hold without having drawn them.
IN_FLIGHT = 2


class Inbox:
    """``async with Inbox(websocket) as inbox:`` — then ``await inbox.take()`` for the messages (text or bytes)."""

    def __init__(self, websocket) -> None:
        self.websocket, self.queue, self.task = websocket, asyncio.Queue(), None

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
            await self.queue.put(None)

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
