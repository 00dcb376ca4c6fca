"""``nnref lab``: a Starlette app served by uvicorn — the playground page at ``/``, the draw-a-digit page at
``/digits``, MNIST trained live at ``/mnist`` (:mod:`nnref.lab.mnist`), their static files, and one WebSocket per
open page.

Safety, as Jupyter has it: the server listens on 127.0.0.1 unless told otherwise, and beyond loopback every
page and socket needs the token printed with the URL; a WebSocket whose ``Origin`` is another site's is refused
(a page the user happens to visit cannot drive the lab); at most ``max_sessions`` pages at once; every message
is checked (:mod:`nnref.lab.state`) and a bad one is answered with a message, never a dropped session; only the
app's own files are served.

The protocol of ``/ws/playground``: the page sends JSON (``config`` with a partial state, ``play``, ``pause``,
``step``, ``reset``, ``reinit``, ``apply`` (one step of per-instance SGD), ``gradcheck``, ``export``, and ``ready``
after drawing each frame); the server
sends ``data`` (the points) and ``error``/``gradcheck`` as JSON, frames and files as binary
(:func:`nnref.lab.session.encode`).  At most two frames are in flight: a slow page slows its own frames, never
the server's memory — the latest frame wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import secrets
import socket
import threading
import traceback
from pathlib import Path
from urllib.parse import urlparse

import torch
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..choices import default_max_pages
from ..exercises import use_functions
from .classroom import Classroom
from .crowd import Crowd
from .inbox import FrameSocket, Inbox, PageGone, closed, during, log
from .mnist.state import definition as mnist_definition
from .session import PlaygroundSession, encode
from .state import BadMessage, definition, parse_message
from .teacher import serve_teacher
from .trainer import Trainer

__all__ = ["create_app", "LabServer", "serve", "is_loopback", "machine_addresses", "STATIC"]

STATIC = Path(__file__).resolve().parent / "static"
#: The teacher's pages (``/class``) open at once.
TEACHER_PAGES = 4
#: Seconds of training between two frames while a page plays.
TRAIN_PER_FRAME = 0.008
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers.update(_HEADERS)
        return response


class _Sessions:
    """How many pages are open, against the limit (everything runs on the server's one event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1


def create_app(
    token: str | None = None,
    max_sessions: int | None = None,
    digits=None,
    functions=None,
    mnist=None,
    together: bool = True,
    teacher_token: str | None = None,
    trainer: bool = True,
) -> Starlette:
    """The lab as an ASGI app.  ``token``: required on every page and socket when set.  ``digits``: the backend of
    the draw-a-digit page (:class:`nnref.lab.digits.DigitsBackend`), or None when no checkpoint was given.
    ``functions``: a student's Functions (:class:`nnref.exercises.StudentFunctions`) the playground trains with —
    each page says so (the caller puts them in use: :func:`serve`, :class:`LabServer`).  ``mnist``: the MNIST of the
    ``/mnist`` page (:class:`nnref.lab.mnist.dataset.SharedMNIST`; default ``$NNREF_DATA_ROOT``, else ``./data``,
    never downloaded).  ``max_sessions``: pages open at once (default :func:`nnref.choices.default_max_pages`).
    ``together``: the playing pages train together (:class:`nnref.lab.crowd.Crowd`); False: each page by itself,
    as before the class did (what the classroom benchmark compares).  ``teacher_token``: the teacher's, for
    ``/class`` and its socket (made when ``token`` is set and this is not: the students' token never opens the
    teacher's view).  ``trainer``: the class trains in a process of its own, on the second core
    (:mod:`nnref.lab.trainer`; False: in the server's process)."""
    from .mnist.dataset import SharedMNIST

    notes = tuple(functions.describe()) if functions is not None else ()
    mnist = mnist if mnist is not None else SharedMNIST(download=False)
    limit = default_max_pages() if max_sessions is None else max_sessions
    if token is not None and teacher_token is None:
        teacher_token = secrets.token_urlsafe(18)
    gate, classroom = _Gate(token, _Sessions(limit), teacher_token), Classroom()
    crowd = Crowd(TRAIN_PER_FRAME, trainer=Trainer() if trainer else None) if together else None
    routes = [
        Route("/", gate.page("lab/index.html")),
        Route("/digits", gate.page("digits/index.html")),
        Route("/mnist", gate.page("mnist/index.html")),
        Route("/class", gate.page("class/index.html", teacher=True)),
        Route("/lab/definition.json", lambda request: JSONResponse(definition())),
        Route("/mnist/definition.json", lambda request: JSONResponse(mnist_definition())),
        Route("/favicon.ico", lambda request: FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")),
        WebSocketRoute("/ws/playground", gate.socket(lambda ws: _PlaygroundSocket(ws, notes, crowd, classroom).run())),
        WebSocketRoute("/ws/digits", gate.socket(lambda websocket: _digits_loop(websocket, digits))),
        WebSocketRoute("/ws/mnist", gate.socket(lambda websocket: _mnist_loop(websocket, mnist, notes, classroom))),
        WebSocketRoute("/ws/class", gate.teacher_socket(lambda websocket: serve_teacher(websocket, classroom))),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders)])
    app.state.sessions, app.state.mnist, app.state.crowd = gate.sessions, mnist, crowd
    app.state.classroom, app.state.teacher_token = classroom, teacher_token
    return app


class _Gate:
    """Who may open a page or a socket — the students' token or the teacher's, the Origin, the session limit —
    checked before any work.  The teacher's token opens everything; the students' opens the students' pages only;
    where a token is None, its pages are open (loopback: the teacher alone at a laptop)."""

    def __init__(self, token: str | None, sessions: _Sessions, teacher_token: str | None = None) -> None:
        self.token, self.sessions, self.teacher_token = token, sessions, teacher_token
        self.teachers = 0  # the teacher's sockets open (not counted against the pages' limit)

    @staticmethod
    def _holds(params, token: str | None) -> bool:
        return token is None or hmac.compare_digest(params.get("token", ""), token)

    def authorised(self, params, teacher: bool = False) -> bool:
        return self._holds(params, self.teacher_token) or (not teacher and self._holds(params, self.token))

    def page(self, name: str, teacher: bool = False):
        """An endpoint serving the static page ``name`` to those with the token (the teacher's, for ``teacher``)."""

        async def endpoint(request):
            if not self.authorised(request.query_params, teacher):
                return HTMLResponse(_TEACHER_REFUSED if teacher else _REFUSED, status_code=403)
            return FileResponse(STATIC / name, media_type="text/html")

        return endpoint

    async def handshake(self, websocket: WebSocket, teacher: bool = False) -> bool:
        """The token and the Origin: the socket accepted, or refused before any work (HTTP 403)."""
        origin, host = websocket.headers.get("origin"), websocket.headers.get("host", "")
        allowed = self.authorised(websocket.query_params, teacher)
        if not allowed or (origin is not None and urlparse(origin).netloc != host):
            await websocket.close(code=1008)  # policy violation: the handshake is refused (HTTP 403)
            return False
        await websocket.accept()
        return True

    def teacher_socket(self, serve):
        """The teacher's socket: the teacher's token, at most :data:`TEACHER_PAGES` at once."""

        async def endpoint(websocket: WebSocket) -> None:
            if not await self.handshake(websocket, teacher=True):
                return
            if self.teachers >= TEACHER_PAGES:
                await websocket.send_json({"type": "full", "message": f"{TEACHER_PAGES} teacher's pages are open."})
                await websocket.close(code=1013)
                return
            self.teachers += 1
            try:
                await serve(websocket)
            finally:
                self.teachers -= 1

        return endpoint

    async def admit(self, websocket: WebSocket) -> bool:
        """The token, the Origin and the session limit — before any work is done for a socket."""
        if not await self.handshake(websocket):
            return False
        if not self.sessions.take():
            pages = "1 page is" if self.sessions.limit == 1 else f"{self.sessions.limit} pages are"
            message = (
                f"The lab is full: {pages} open, the most this lab was started for. Whoever runs nnref lab can "
                f"raise the limit (nnref lab --max-pages; this machine serves {default_max_pages()} at full speed)."
            )
            await websocket.send_json({"type": "full", "message": message})
            log.warning("nnref lab: a page was turned away: the lab is full (--max-pages %d)", self.sessions.limit)
            await websocket.close(code=1013)  # try again later
            return False
        return True

    def socket(self, serve):
        """A page's socket: admitted, served by ``serve(websocket)``, its session given back however it ends."""

        async def endpoint(websocket: WebSocket) -> None:
            if await self.admit(websocket):
                try:
                    await serve(websocket)
                finally:
                    self.sessions.give_back()

        return endpoint


_TEACHER_REFUSED = (
    "<!doctype html><html lang='en'><title>nnref lab: the teacher's token needed</title><main><h1>This is the "
    "teacher's view</h1><p>Open the teacher's address that <code>nnref lab</code> printed, with its "
    "<code>?token=…</code>. Students: open the students' address.</p></main></html>"
)
_REFUSED = (
    "<!doctype html><html lang='en'><title>nnref lab: token needed</title><main><h1>This lab needs its "
    "token</h1><p>Open the address that <code>nnref lab</code> printed, with its <code>?token=…</code>.</p>"
    "</main></html>"
)


class _PlaygroundSocket(FrameSocket):
    """One page's playground over its WebSocket: messages in, frames out, the session in a worker thread."""

    train_per_frame = TRAIN_PER_FRAME

    def __init__(
        self,
        websocket: WebSocket,
        notes: tuple[str, ...] = (),
        crowd: Crowd | None = None,
        classroom: Classroom | None = None,
    ) -> None:
        super().__init__(websocket, classroom)
        self.notes, self.crowd = notes, crowd

    async def advance(self) -> bytes | None:
        """The page trains with the class: its networks step together with every playing page's of their shape."""
        if self.crowd is None:
            return await super().advance()
        return await self.crowd.train(self.session)

    async def run(self) -> None:
        try:
            async with Inbox(self.ws) as inbox:
                self.session = await asyncio.to_thread(PlaygroundSession, notes=self.notes)
                await self.ws.send_json(await asyncio.to_thread(self.session.data_message))
                with self.seated("playground", inbox):
                    try:
                        await self.serve_frames(inbox)
                    finally:
                        if self.crowd is not None:
                            self.crowd.leave(self.session)
        except (WebSocketDisconnect, PageGone) as exc:  # closed while its message was handled: one line, no stack
            log.warning("nnref lab: a page closed %s; its session ended", getattr(exc, "during", "mid-message"))

    async def handle(self, text) -> None:
        try:
            if not isinstance(text, str):
                raise BadMessage("messages are JSON text, not binary")
            message = parse_message(text)
            kind, s = message["type"], self.session
            if kind == "ready":
                self.ready()
                return
            refusal = self.refusal(kind, {**s.state, **message["state"]} if kind == "config" else None)
            if refusal is not None:  # the teacher's rules: said, not silently ignored
                await self.ws.send_json({"type": "notice" if kind != "config" else "error", "message": refusal})
            elif kind == "name" and self.seat is not None:
                self.classroom.rename(self.seat, message["name"])
            elif kind == "config":
                if await asyncio.to_thread(s.configure, message["state"], message.get("version")):
                    await self.ws.send_json(await asyncio.to_thread(s.data_message))
            elif kind in ("play", "step") and s.nothing_to_train():  # said, not silently ignored
                s.playing = False
                await self.ws.send_json({"type": "notice", "message": s.nothing_to_train()})
            elif kind in ("play", "pause"):
                s.playing = kind == "play"
            elif kind == "step":
                s.playing = False
                await asyncio.to_thread(s.advance, 0.0)
            elif kind in ("reset", "reinit"):
                await asyncio.to_thread(s.reset, kind == "reinit")
            elif kind == "apply":  # one step of per-instance SGD on the backward view's instance
                await asyncio.to_thread(s.apply_step)
            elif kind == "gradcheck":
                await self.ws.send_json(await asyncio.to_thread(s.gradient_check))
            elif kind == "export":
                content = await asyncio.to_thread(s.export_model)
                await self.ws.send_bytes(encode({"type": "file", "name": "nnref-lab-model.pt"}, [content]))
            self.dirty = True
        except BadMessage as exc:
            await self.send({"type": "error", "message": str(exc)}, during(text))
        except WebSocketDisconnect:
            raise PageGone(during(text)) from None
        except PageGone:
            raise
        except Exception as exc:
            if closed(exc):  # the page went while its message was handled (a gradient check, a change)
                raise PageGone(during(text)) from None
            traceback.print_exc()  # a bug must not end the page's session: say so, and log it for its fix
            await self.send({"type": "error", "message": f"unexpected {type(exc).__name__}: {exc}"}, during(text))


async def _digits_loop(websocket: WebSocket, digits) -> None:
    from .digits import serve_digits

    await serve_digits(websocket, digits)


async def _mnist_loop(websocket: WebSocket, mnist, notes: tuple[str, ...], classroom: Classroom) -> None:
    from .mnist.socket import serve_mnist

    await serve_mnist(websocket, mnist, notes, classroom)


# --------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------
def quiet_server(app):
    """uvicorn's server for the lab, woken once a second instead of ten times, and at once when told to exit.

    uvicorn's main loop wakes every 0.1 s to see whether it should exit and, every tenth time, to refresh the
    Date header.  On a shared 2-core VM those ten wake-ups cost 1–1.5% of a core while every page is paused
    (measured with py-spy: the loop was otherwise idle).  Here the loop waits on an event that setting
    ``should_exit`` (Ctrl-C, :class:`LabServer`'s exit) sets, with a one-second timeout for the Date header.
    """
    import uvicorn

    class QuietServer(uvicorn.Server):
        def __init__(self, config) -> None:
            self._loop = self._exit = None
            self._should_exit = False
            super().__init__(config)

        @property
        def should_exit(self) -> bool:
            return self._should_exit

        @should_exit.setter
        def should_exit(self, value: bool) -> None:
            self._should_exit = value
            if value and self._loop is not None:
                self._loop.call_soon_threadsafe(self._exit.set)

        async def main_loop(self) -> None:
            self._exit = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            counter = 0
            while not await self.on_tick(counter):  # (on_tick refreshes the Date header when counter % 10 == 0)
                counter = (counter + 10) % 864000
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._exit.wait(), 1.0)

    # (no per-message deflate: a frame is 2 KB of weights; compressing it cost the server 5% of its core with 100
    # pages, and each page as much again, to save about a kilobyte a frame)
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws=_websockets_protocol(),
        ws_max_size=16 * 2**20,
        ws_per_message_deflate=False,
        lifespan="off",
    )
    return QuietServer(config)


#: Messages a page's socket holds unread before the server stops reading from it (uvicorn's own: one).
READ_AHEAD = 16


def _websockets_protocol():
    """uvicorn's websocket protocol (its sans-I/O one, where this uvicorn has it), reading ahead
    :data:`READ_AHEAD` messages: uvicorn's own pauses reading from a socket after each message it receives, and
    resumes when the app takes it — two system calls a message, a fifth of the server's event loop with 100 pages
    acknowledging 30 frames a second each (py-spy).  Else uvicorn's choice ("auto")."""
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:  # pragma: no cover - (an older uvicorn: its own protocol, as it is)
        return "auto"

    class ReadingAhead(WebSocketsSansIOProtocol):
        def send_receive_event_to_app(self) -> None:
            paused, self.read_paused = self.read_paused, True  # (uvicorn's own then leaves the reading as it is)
            super().send_receive_event_to_app()
            self.read_paused = paused
            if not paused and self.queue.qsize() >= READ_AHEAD:
                self.read_paused = True
                self.transport.pause_reading()

        async def receive(self):
            message = await self.queue.get()
            if self.read_paused and self.queue.qsize() < READ_AHEAD // 2:
                self.read_paused = False
                self.transport.resume_reading()
            return message

    return ReadingAhead


class LabServer:
    """The lab on a socket this process has already bound (port 0: the operating system's choice, held from the
    start — no free port is looked up and released first), in a thread, for a ``with`` block: what the tests,
    the screenshots and the bench use."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **app_options) -> None:
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.port = self.socket.getsockname()[1]
        self.token = app_options.get("token")
        self.functions = app_options.get("functions")
        self.app = create_app(**app_options)
        self.teacher_token = self.app.state.teacher_token
        self.server = quiet_server(self.app)
        self.base = f"http://{host}:{self.port}"
        self.url = self.base + (f"/?token={self.token}" if self.token else "/")
        self.class_url = self.base + (f"/class?token={self.teacher_token}" if self.teacher_token else "/class")

    def __enter__(self) -> LabServer:
        self.student = use_functions(self.functions.functions if self.functions is not None else {})
        self.student.__enter__()
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the lab's server did not start")
            self.thread.join(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.app.state.crowd is not None:
            self.app.state.crowd.close()
        with contextlib.suppress(OSError):
            self.socket.close()
        self.student.__exit__(*exc)


def machine_addresses(host: str = "0.0.0.0") -> list[str]:
    """The addresses other machines reach this one at, for a server listening on every interface (``0.0.0.0``: IPv4,
    ``::``: IPv6 too): the address of the route out (no packet is sent), then the host name's; loopback last, for
    this machine itself."""
    found: list[str] = []
    families = [socket.AF_INET] + ([socket.AF_INET6] if host == "::" else [])
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        if family in families:
            with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))  # (UDP: nothing is sent; the kernel picks the route's source address)
                found.append(udp.getsockname()[0])
    with contextlib.suppress(OSError):
        for family, *_, address in socket.getaddrinfo(socket.gethostname(), None):
            if family in families:
                found.append(address[0])
    usable = [
        a
        for a in dict.fromkeys(found)
        if not ipaddress.ip_address(a.split("%")[0]).is_loopback
        and not ipaddress.ip_address(a.split("%")[0]).is_link_local
    ]
    return usable + ["127.0.0.1"]


def _addresses(urls: list[str], class_url: str, teacher_token: str | None) -> list[str]:
    """The lines that say where the lab is: one address (the teacher alone, on loopback), or two plainly labelled —
    the students' and the teacher's, which opens ``/class`` and must not be projected."""
    if teacher_token is None:
        others = [f"       or: {u}" for u in urls[1:]]
        return [f"nnref lab: {urls[0]}", *others, f"  the class, as you see it: {class_url}"]
    return [
        "nnref lab, for a class:",
        f"  students' address: {urls[0]}",
        *(f"                 or: {u}" for u in urls[1:]),
        f"  teacher's address: {class_url}?token={teacher_token}   (yours alone: do not project or share it)",
    ]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    open_browser: bool = False,
    digits=None,
    say=print,
    max_sessions: int | None = None,
    functions=None,
    mnist=None,
    together: bool = True,
    teacher_token: str | None = None,
) -> None:
    """Run the lab until interrupted.  Beyond loopback two tokens are required, the students' and the teacher's (each
    made when not given), and two addresses are printed, plainly labelled.  The
    socket is bound before the address is printed (port 0: the operating system's choice, printed as bound).
    ``functions``: a student's Functions (:class:`nnref.exercises.StudentFunctions`) to train with; ``mnist``: the
    ``/mnist`` page's data (:class:`nnref.lab.mnist.dataset.SharedMNIST`)."""
    if not is_loopback(host) and token is None:
        token = secrets.token_urlsafe(18)
    if token is not None and teacher_token is None:
        teacher_token = secrets.token_urlsafe(18)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise OSError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another lab running? try --port 0)"
        ) from None
    sock.listen(128)  # connections wait in the backlog from now on, even before the server takes them
    port = sock.getsockname()[1]
    query = f"?token={token}" if token else ""
    hosts = machine_addresses(host) if host in ("0.0.0.0", "::") else [host]
    urls = [f"http://{_bracketed(h)}:{port}/{query}" for h in hosts]
    url = urls[0]
    lines = _addresses(urls, f"http://{_bracketed(hosts[0])}:{port}/class", teacher_token)
    if digits is not None:
        lines.append(f"  draw a digit: {url.replace(f':{port}/', f':{port}/digits', 1)}")
    if mnist is not None:
        where = "" if mnist.available() or mnist.download else f" (no MNIST under {mnist.root}: the page says how)"
        lines.append(f"  MNIST, live: {url.replace(f':{port}/', f':{port}/mnist', 1)}{where}")
    say("\n".join([*lines, "  (Ctrl-C to stop)"]))
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    app = create_app(token, max_sessions, digits, functions, mnist, together, teacher_token)
    torch.set_num_threads(1)  # many small products, from many threads: a second intra-op thread only waits for a core
    try:
        with use_functions(functions.functions if functions is not None else {}):
            quiet_server(app).run(sockets=[sock])
    finally:
        if app.state.crowd is not None:
            app.state.crowd.close()
