"""A class on one server: N pages of the lab's playground at once, as a class would open them.

Each page is a websocket client on loopback that does what the page does — sends its set-up and Play, reads every
frame, decodes it (its header: the weights the page draws from), acknowledges it, changes the
learning rate now and then (the time until a frame shows the change is its latency) and, in the churn of
:func:`play_class` with ``leave``, leaves at a random time.  Three real Chromium pages play among them in the
benchmark, to check that what is drawn keeps up.  Everything is bounded: a fixed time, a fixed count, loopback only.

``nnref bench --only classroom`` starts its own lab (a subprocess, so that its CPU and memory are its own);
``--url URL`` loads a lab that is already running instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ..lab.session import decode
from ..lab.state import PRESETS
from .core import Context, section

__all__ = [
    "PageStats",
    "random_setup",
    "play_class",
    "start_lab",
    "listening",
    "page_figures",
    "common_cells",
    "measure_classroom",
    "SAME",
    "LARGEST_PRESET",
]

#: The class follows one preset: the largest, "A deeper network on the spirals".
LARGEST_PRESET = "deeper-net-on-spirals"
SAME = dict(PRESETS[LARGEST_PRESET]["state"])
_INPUTS = ("x1", "x2", "x1^2", "x2^2", "x1x2", "sin x1", "sin x2")
_RATES = (0.003, 0.01, 0.03, 0.1)


def random_setup(rng: random.Random) -> dict:
    """A random valid set-up, as a student makes one: dataset, classes, inputs, 0-6 layers of 1-8 neurons, each
    activation, batch size 1-30, learning rate, regularisation, and the line, the MLP or side by side with KNN."""
    from ..choices import CLASSES

    dataset = rng.choice(["blobs", "xor", "circles", "spirals"])
    return {
        "dataset": dataset,
        "classes": rng.choice(CLASSES[dataset]),
        "model": rng.choice(["line", "mlp", "mlp", "mlp", "compare"]),  # (KNN alone trains nothing: in compare)
        "inputs": sorted(rng.sample(_INPUTS, rng.randint(1, 7)), key=_INPUTS.index),
        "hidden": [rng.randint(1, 8) for _ in range(rng.randint(0, 6))],
        "activation": rng.choice(["relu", "sigmoid", "tanh", "linear"]),
        "batch": rng.randint(1, 30),
        "lr": rng.choice(_RATES),
        "regularization": rng.choice(["none", "L1", "L2"]),
        "regRate": rng.choice([0.001, 0.01]),
        "seed": rng.randint(0, 9999),
    }


@dataclass
class PageStats:
    """What one page saw."""

    setup: dict
    frames: int = 0  # frames after the first, over :attr:`seconds`
    received: int = 0  # every frame of its own it received
    bytes: int = 0
    epochs: float = 0.0  # epochs trained while it played (first to last frame)
    seconds: float = 0.0  # from its first frame to its last
    latencies: list = field(default_factory=list)  # seconds from a change to the first frame that shows it
    foreign: int = 0  # frames that were not this page's (a version it never sent, another network)
    errors: list = field(default_factory=list)
    left_early: bool = False
    diverged: bool = False  # its training diverged (NaN): it stops, as the page says, and trains no more

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def epochs_per_second(self) -> float:
        return self.epochs / self.seconds if self.seconds else 0.0


def _own(header: dict, setup: dict, sent: dict) -> bool:
    """Whether a frame is this page's: a version it sent (or 0, the server's first, before its set-up arrived),
    and from its set-up on, its classes and its network's layers."""
    version = header["version"]
    if version == 0:
        return True
    if version not in sent:
        return False
    layers = len(setup.get("hidden", [])) + 1 if setup.get("model", "mlp") in ("mlp", "compare") else 1
    network = header.get("network")
    return header["classes"] == setup.get("classes", 2) and (network is None or len(network["layers"]) == layers)


async def _page(url: str, setup: dict, seconds: float, rng: random.Random, leave: bool, change_every: float):
    """One page: set-up, Play, then frames until its time is up (or it leaves), a learning-rate change every
    ``change_every`` seconds."""
    from websockets.asyncio.client import connect

    stats = PageStats(setup)
    parts = urlparse(url)
    ws_url = f"ws://{parts.netloc}/ws/playground" + (f"?{parts.query}" if parts.query else "")
    end = time.perf_counter() + (rng.uniform(0.3, 1.0) * seconds if leave else seconds)
    stats.left_early = leave
    sent: dict[int, float] = {}
    version, first, last = 1, None, None
    try:
        async with connect(ws_url, max_size=None, open_timeout=60) as ws:
            sent[version] = time.perf_counter()
            await ws.send(json.dumps({"type": "config", "version": version, "state": setup}))
            await ws.send(json.dumps({"type": "play"}))
            next_change = time.perf_counter() + change_every
            while (now := time.perf_counter()) < end:
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout=max(0.01, min(end, next_change) - now))
                except asyncio.TimeoutError:
                    message = None
                if isinstance(message, bytes):
                    header, _ = decode(message)  # (the header, the weights put back into the layers: as the page)
                    if header.get("type") != "frame":
                        continue
                    await ws.send('{"type":"ready"}')
                    if not _own(header, setup, sent):
                        stats.foreign += 1
                        continue
                    if header["version"] in sent and header["version"] == version and sent[version] > 0:
                        stats.latencies.append(time.perf_counter() - sent[version])
                        sent[version] = -1.0  # (seen)
                    stats.frames += 1
                    stats.diverged = stats.diverged or "diverged" in header
                    stats.received += 1
                    stats.bytes += len(message)
                    if first is None:
                        first = (time.perf_counter(), header["epoch"])
                    last = (time.perf_counter(), header["epoch"])
                elif isinstance(message, str):
                    kind = json.loads(message).get("type")
                    if kind in ("error", "full"):
                        stats.errors.append(json.loads(message).get("message"))
                if time.perf_counter() >= next_change:
                    version += 1
                    sent[version] = time.perf_counter()
                    change = {"type": "config", "version": version, "state": {"lr": rng.choice(_RATES)}}
                    await ws.send(json.dumps(change))
                    next_change = time.perf_counter() + change_every
    except Exception as exc:  # what went wrong is the page's result, not the run's end
        stats.errors.append(f"{type(exc).__name__}: {exc}")
    if first is not None and last is not None and last[0] > first[0]:
        stats.seconds = last[0] - first[0]
        stats.frames -= 1  # frames after the first, over the time after it
        stats.epochs = max(0.0, last[1] - first[1])
    return stats


async def _teacher(url: str, seconds: float, pages: int) -> dict:
    """The teacher's view (``/class``) open while the class plays: how often it updated once every page had its
    tile, and the fewest tiles an update carried then."""
    from websockets.asyncio.client import connect

    parts = urlparse(url)
    ws_url = f"ws://{parts.netloc}/ws/class" + (f"?{parts.query}" if parts.query else "")
    updates, tiles, first = 0, [], None
    async with connect(ws_url, max_size=None, open_timeout=60) as ws:
        end = time.perf_counter() + seconds
        while (now := time.perf_counter()) < end:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=end - now))
            except asyncio.TimeoutError:
                break
            if message["type"] == "class" and len(message["pages"]) >= pages:
                first = time.perf_counter() if first is None else first
                updates, tiles = updates + 1, [*tiles, len(message["pages"])]
    span = time.perf_counter() - first if first else 0.0
    return {"updates_per_s": (updates - 1) / span if span > 0 else 0.0, "tiles_min": min(tiles, default=0)}


def play_class(
    url: str,
    setups: list[dict],
    seconds: float,
    leave: bool = False,
    seed: int = 0,
    change_every: float = 1.0,
    teacher: dict | None = None,
) -> list[PageStats]:
    """Every set-up a page of the lab at ``url`` at once for ``seconds`` (each leaving at a random time with
    ``leave``): what each page saw.  With ``teacher`` (a dict), the teacher's view is open meanwhile and what it saw
    is written into it."""

    async def main():
        rng = random.Random(seed)
        pages = [_page(url, s, seconds, random.Random(rng.random()), leave, change_every) for s in setups]
        if teacher is None:
            return await asyncio.gather(*pages)
        *seen, watched = await asyncio.gather(*pages, _teacher(url, seconds, len(setups)))
        teacher.update(watched)
        return seen

    return asyncio.run(main())


def start_lab(max_pages: int = 200, together: bool = True, data_root=None) -> tuple[subprocess.Popen, str]:
    """``nnref lab`` on loopback, a port of the system's choice, in a new process: (process, address).
    ``together=False``: the pages train page by page (the lab before the class trained together).  ``data_root``:
    where its /mnist pages find MNIST (default ``$NNREF_DATA_ROOT``)."""
    code = (
        "import sys; from nnref.lab import server; "
        f"server.serve('127.0.0.1', 0, max_sessions={max_pages}, together={together})"
    )
    env = os.environ | ({"NNREF_DATA_ROOT": str(data_root)} if data_root is not None else {})
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    line = process.stdout.readline()
    if not line.startswith("nnref lab: "):
        process.kill()
        raise RuntimeError(f"the lab did not start: {line}{process.stderr.read()}")
    url = line.split(": ", 1)[1].strip()
    play_class(url, [SAME], 0.5)  # (its first page waits for the server's imports: not what a class measures)
    return process, url


class _Usage:
    """A process's CPU share (of one core) and its largest resident memory, sampled while a ``with`` block runs —
    with its children's (the lab's trainer process, :mod:`nnref.lab.trainer`): the server's whole cost."""

    def __init__(self, pid: int | None) -> None:
        import psutil

        self.process = psutil.Process(pid) if pid else None
        self.cpu = self.rss = None

    def _tree(self) -> list:
        import psutil

        tree = [self.process]
        with contextlib.suppress(psutil.Error):
            tree += self.process.children(recursive=True)
        return tree

    def _times(self) -> dict[int, float]:
        import psutil

        times = {}
        for p in self._tree():
            with contextlib.suppress(psutil.Error):
                times[p.pid] = sum(p.cpu_times()[:2])
        return times

    def _resident(self) -> int:
        import psutil

        total = 0
        for p in self._tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def __enter__(self):
        if self.process:
            self.t, self.c = time.perf_counter(), self._times()
            self.rss, self.stop = self._resident(), threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.25):
            self.rss = max(self.rss, self._resident())

    def __exit__(self, *exc):
        if self.process:
            self.stop.set()
            self.thread.join()
            used = sum(c - self.c.get(pid, 0.0) for pid, c in self._times().items())
            self.cpu = used / (time.perf_counter() - self.t)


def page_figures(pages: list, cpu: float | None, rss: int | None) -> dict:
    """What a class's pages saw (each a :class:`PageStats`, or a /mnist page's), with the server's CPU share and
    largest resident memory in bytes: the figures every row of the classroom section has.  A page whose training
    diverged stops and trains no more: it is counted, and left out of the frames/s and epochs/s (it gets no more
    frames: the page says it stopped)."""
    going = [p for p in pages if not getattr(p, "diverged", False)]
    fps = [p.fps for p in going or pages]
    eps = [p.epochs_per_second for p in going] or [0.0]
    latencies = [x for p in pages for x in p.latencies]
    return {
        "pages": len(pages),
        "received_min": min(p.received for p in pages),
        "fps_median": statistics.median(fps),
        "fps_min": min(fps),
        "epochs_per_s_median": statistics.median(eps),
        "epochs_per_s_min": min(eps),
        "diverged": sum(getattr(p, "diverged", False) for p in pages),
        "fair": min(eps) >= 0.5 * statistics.median(eps),
        "bytes_per_frame": sum(p.bytes for p in pages) / (sum(p.received for p in pages) or 1),
        "latency_ms_median": 1e3 * statistics.median(latencies) if latencies else None,
        "latency_ms_max": 1e3 * max(latencies) if latencies else None,
        "server_cpu": cpu,
        "server_rss_mib": rss / 2**20 if rss else None,
        "foreign_frames": sum(p.foreign for p in pages),
        "errors": [e for p in pages for e in p.errors][:5],
    }


def _summary(name: str, pages: list[PageStats], usage: _Usage, chromium: list[float] | None = None) -> dict:
    return {"name": name, **page_figures(pages, usage.cpu, usage.rss), "chromium_fps": chromium}


def _chromium_pages(url: str, count: int, seconds: float, out: list) -> None:
    """``count`` real pages in headless Chromium, playing the largest preset for ``seconds``: frames drawn/s."""
    from playwright.sync_api import sync_playwright

    from .chromium import open_browser

    with sync_playwright() as playwright:
        browser = open_browser(playwright)
        pages = []
        for _ in range(count):
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            page.goto(url + f"#preset={LARGEST_PRESET}")
            page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
            page.get_by_role("button", name="Play").click()
            pages.append(page)
        start, t = [p.evaluate("window.nnrefLab.frames") for p in pages], time.perf_counter()
        pages[0].wait_for_timeout(seconds * 1000)
        elapsed = time.perf_counter() - t
        out.extend((p.evaluate("window.nnrefLab.frames") - s) / elapsed for p, s in zip(pages, start))
        browser.close()


def _scenario(url, pid, name, setups, seconds, chromium: int = 0, teacher: bool = False) -> dict:
    drawn: list = []
    watched = {} if teacher else None
    thread = None
    if chromium:
        thread = threading.Thread(target=_chromium_pages, args=(url, chromium, seconds, drawn))
        thread.start()
        time.sleep(3)  # (the pages open first)
    with _Usage(pid) as usage:
        pages = play_class(url, setups, seconds, teacher=watched)
    if thread is not None:
        thread.join()
    return _summary(name, pages, usage, drawn or None) | ({"teacher": watched} if teacher else {})


def listening(url: str) -> int | None:
    """The process of this machine listening on the lab's port (its CPU and memory are measured), if any."""
    import psutil

    port = urlparse(url).port
    try:
        found = [c.pid for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
    except psutil.AccessDenied:
        return None
    return found[0] if found else None


def measure_classroom(url: str | None = None, pages: int = 100, seconds: float = 15.0, chromium: int = 3) -> list:
    """The class's scenarios (see the section): one dict of figures each."""
    rng = random.Random(35)
    own = [random_setup(rng) for _ in range(pages)]
    # (the same set-ups with batches of 10-30: a page of batch 1 needs 200 sequential steps an epoch, 10 needs 20)
    batches = random.Random(36)
    tens = [dict(setup, batch=batches.randint(10, 30)) for setup in own]
    own_rows = [
        (f"{pages} pages, every page its own set-up", own),
        (f"{pages} pages, every page its own set-up, batches of 10-30", tens),
    ]
    rows = []
    if url is None:
        for together in (False, True):
            # (room for a scenario's pages while the last one's are still closing)
            process, lab = start_lab(2 * (pages + chromium) + 5, together)
            try:
                name = "one page alone, " + ("trained with the class" if together else "trained page by page")
                rows.append(_scenario(lab, process.pid, name, [SAME], seconds))
                if together:
                    rows.append(
                        _scenario(
                            lab, process.pid, f"{pages} pages, the same set-up", [SAME] * pages, seconds, chromium
                        )
                    )
                    rows += [_scenario(lab, process.pid, name, setups, seconds) for name, setups in own_rows]
                    rows += _with_and_without_the_teacher(lab, process.pid, pages, seconds)
            finally:
                process.terminate()
                process.wait(timeout=30)
    else:
        pid = listening(url)
        rows.append(_scenario(url, pid, "one page alone", [SAME], seconds))
        rows.append(_scenario(url, pid, f"{pages} pages, the same set-up", [SAME] * pages, seconds, chromium))
        rows += [_scenario(url, pid, name, setups, seconds) for name, setups in own_rows]
    return rows


def _with_and_without_the_teacher(url: str, pid: int, pages: int, seconds: float) -> list[dict]:
    """The same set-up for ``pages`` pages, without and with the teacher's view open, taking turns (twice each):
    what /class adds to the server's CPU, and how often it updates every tile."""
    rows = []
    for turn in range(2):
        for teacher in (False, True):
            name = f"{pages} pages, the same set-up, " + ("/class open" if teacher else "no /class") + f" ({turn + 1})"
            rows.append(_scenario(url, pid, name, [SAME] * pages, seconds, teacher=teacher))
    return rows


def common_cells(row: dict) -> tuple[str, str, str]:
    """A row's server CPU, server memory and "change shows" cells, as both classes' tables print them."""
    cpu = f"{100 * row['server_cpu']:.0f}%" if row["server_cpu"] is not None else "–"
    rss = f"{row['server_rss_mib']:.0f} MiB" if row["server_rss_mib"] is not None else "–"
    lat = f"{row['latency_ms_median']:.0f} / {row['latency_ms_max']:.0f} ms" if row["latency_ms_median"] else "–"
    return cpu, rss, lat


def format_classroom(rows: list[dict]) -> str:
    lines = [
        "| scenario | pages | frames/s each (median / min) | epochs/s each (median / min) | fair | bytes/frame "
        "| change shows (median / max) | server CPU | server memory | Chromium frames/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu, rss, lat = common_cells(r)
        drawn = ", ".join(f"{v:.1f}" for v in r["chromium_fps"]) if r["chromium_fps"] else "–"
        if r.get("teacher"):
            drawn += f" (/class: {r['teacher']['updates_per_s']:.1f} updates/s of {r['teacher']['tiles_min']} tiles)"
        lines.append(
            f"| {r['name']}{_diverged(r)} | {r['pages']} | {r['fps_median']:.1f} / {r['fps_min']:.1f} | "
            f"{r['epochs_per_s_median']:.1f} / {r['epochs_per_s_min']:.1f} | {'yes' if r['fair'] else 'no'} | "
            f"{r['bytes_per_frame']:.0f} | {lat} | {cpu} | {rss} | {drawn} |"
        )
    return "\n".join(lines)


def _diverged(row: dict) -> str:
    n = row.get("diverged", 0)
    return f" ({n} diverged: frames/s, epochs/s and fair over the others)" if n else ""


def format_class(rows: list[dict]) -> str:
    """The playground's class, then the class on /mnist (its rows have ``to_90_s_median``)."""
    from .mnist_class import format_mnist_class

    mnist = [r for r in rows if "to_90_s_median" in r]
    playground = format_classroom([r for r in rows if "to_90_s_median" not in r])
    return playground + ("\n\n" + format_mnist_class(mnist) if mnist else "")


@section("classroom", key="classroom", fmt=format_class)
def classroom_section(ctx: Context) -> list[dict]:
    """A class on one server: one page alone (trained page by page, and with the class), then N pages
    at once — websocket clients on loopback that read, decode and acknowledge every frame and change the learning
    rate every second, three headless Chromium pages among them — all on the same set-up (the largest preset), and
    every page its own random set-up (batches of 1-30, then the same set-ups with batches of 10-30).  Per page:
    frames/s, epochs/s, bytes per frame, the time a change takes to show; the server's CPU and memory.  Then a
    class on /mnist (where MNIST is found): one page alone, then N at once — updates/s, seconds from Play to 90%
    validation accuracy, memory per page beyond the first."""
    from ..lab.mnist.dataset import SharedMNIST
    from .mnist_class import measure_mnist_class

    rows = measure_classroom(ctx.url, ctx.profile.classroom_pages, ctx.profile.classroom_seconds)
    if ctx.url is not None or SharedMNIST(ctx.root, download=False).available():
        pages, seconds = ctx.profile.mnist_class_pages, ctx.profile.mnist_class_seconds
        rows += measure_mnist_class(ctx.url, pages, seconds, data_root=ctx.root)
    return rows
