"""The teacher's socket (``/ws/class``): the class's tiles a few times a second, and the teacher's actions.

The server sends ``class`` (:meth:`nnref.lab.classroom.Classroom.tiles`: every page's tile and the rules) every
:data:`TILES_EVERY` seconds, and at once after an action; the teacher's page sends the actions of
:data:`nnref.lab.classroom.ACTIONS` as JSON, each checked (a bad one is answered with ``error``, never a dropped
socket) and answered with ``done`` and the line the students' pages show.  ``names`` (shown or hidden) is this
socket's own: with names hidden, no tile it receives carries a student's name.  A teacher's page that closes leaves
the class as it is: the rules hold, and every student's page goes on.
"""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocketDisconnect

from .classroom import Classroom, parse_action
from .inbox import Inbox, PageGone, closed, log
from .state import BadMessage

__all__ = ["serve_teacher", "TILES_EVERY"]

#: Seconds between two updates of the teacher's tiles (at least two a second).
TILES_EVERY = 0.4


async def serve_teacher(websocket, classroom: Classroom) -> None:
    """The teacher's page over its (accepted) socket, until it goes."""
    names = True
    try:
        async with Inbox(websocket) as inbox:
            while True:
                await websocket.send_json(classroom.tiles(names))
                messages = await _next(inbox, TILES_EVERY)
                if messages is None:
                    return
                for text in messages:
                    names = await _act(websocket, classroom, text, names)
    except (WebSocketDisconnect, PageGone):
        log.warning("nnref lab: the teacher's page closed; the class goes on")
    except Exception as exc:
        if not closed(exc):
            raise
        log.warning("nnref lab: the teacher's page closed; the class goes on")


async def _next(inbox: Inbox, seconds: float) -> list | None:
    """The teacher's messages as soon as there are some, or [] after ``seconds`` (None: the page has gone)."""
    try:
        return await asyncio.wait_for(inbox.take(), seconds)
    except asyncio.TimeoutError:
        return []


async def _act(websocket, classroom: Classroom, text, names: bool) -> bool:
    """One teacher's message: checked, carried out on every page, answered.  Returns whether names are shown."""
    try:
        if not isinstance(text, str):
            raise BadMessage("messages are JSON text, not binary")
        action = parse_action(text)
    except BadMessage as exc:
        await websocket.send_json({"type": "error", "message": str(exc)})
        return names
    line = classroom.act(action)
    await websocket.send_json({"type": "done", "action": action["type"], "line": line})
    return action["shown"] if action["type"] == "names" else names
