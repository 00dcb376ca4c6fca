"""What a page sends over its WebSocket, read in the background: the one receive loop of every page of the lab.

A page's messages are read as they come, into a queue, while its session works; the session takes every message
waiting at once (:meth:`Inbox.take`), so it acts on the latest state and never falls behind a page that sends
faster than it computes.  ``None`` in place of the list: the page has gone.
"""

from __future__ import annotations

import asyncio

__all__ = ["Inbox"]


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
