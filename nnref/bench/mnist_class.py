"""A class on ``/mnist``: N pages of the lab's MNIST page at once, as a class would open them.

Each page is a websocket client on loopback (``/ws/mnist``) that does what ``nnref/lab/static/mnist/mnist.js``
does: it reads every message, decodes each binary one's header (the gallery, then frame after frame), answers
every frame with ``ready``, sends its set-up (the page's defaults, its own seed) and, once every page of the class
has its first frame, Play — the class presses Play together — and at the end Pause (the server then measures the
test set: the frame that shows it ends the page's run).  From Play to Pause it counts the frames (updates) per second,
the epochs trained, the seconds until a frame's validation accuracy reaches 90%, and the time a change takes to
show (every second it sends its state again with a new version: the first frame of that version is the change
shown).  Meanwhile the server's CPU and resident memory are sampled.  Everything is bounded: a fixed time, a fixed
count, loopback only.

:func:`measure_mnist_class` runs one page alone, then the class; its rows carry the keys of the playground's
classroom rows (:mod:`nnref.bench.classroom`) where they apply, and ``to_90_s_median``/``to_90_s_max`` and
``mib_per_extra_page`` (the class's largest resident memory above that of one page, per page beyond the first).
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import struct
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from .classroom import PageStats, common_cells, listening, page_figures, start_lab

__all__ = ["MnistPageStats", "play_mnist_class", "measure_mnist_class", "format_mnist_class", "TARGET"]

#: The validation accuracy a page must reach (the issue's target: within 20 s of Play).
TARGET = 0.90
#: Seconds the lone page plays (it reaches the target within a second; its memory is the baseline).
ALONE_SECONDS = 8.0


@dataclass
class MnistPageStats(PageStats):
    """What one /mnist page saw, from its Play on: a playground page's figures (its frames and epochs counted from
    the first frame after Play), and how soon it reached :data:`TARGET` and showed the test accuracy."""

    to_target: float | None = None  # seconds from Play to the first frame at TARGET validation accuracy
    accuracy: float | None = None  # the last validation accuracy it was sent
    to_test: float | None = None  # seconds from Pause to the frame with the test set's accuracy


def _header(message: bytes) -> dict:
    (n,) = struct.unpack_from("<I", message)
    return json.loads(message[4 : 4 + n])


class _Page:
    """One page's socket: messages read and frames acknowledged as mnist.js does."""

    def __init__(self, ws, stats: MnistPageStats) -> None:
        self.ws, self.stats, self.sent = ws, stats, {0: 0.0}
        self.version, self.played, self.first, self.last = 0, None, None, None

    async def config(self, state: dict) -> None:
        self.version += 1
        self.sent[self.version] = time.perf_counter()
        await self.ws.send(json.dumps({"type": "config", "version": self.version, "state": state}))

    async def next_frame(self, timeout: float) -> dict | None:
        """The next frame's header (acknowledged), or None when none came within ``timeout``."""
        end = time.perf_counter() + timeout
        while (left := end - time.perf_counter()) > 0:
            try:
                message = await asyncio.wait_for(self.ws.recv(), timeout=left)
            except asyncio.TimeoutError:
                return None
            if isinstance(message, str):
                reply = json.loads(message)
                if reply.get("type") in ("error", "full", "unavailable"):
                    self.stats.errors.append(reply.get("message"))
                    if reply["type"] != "error":
                        raise ConnectionError(reply.get("message"))
                continue
            header = _header(message)
            if header.get("type") == "frame":
                await self.ws.send('{"type":"ready"}')
                self._count(header, len(message))
                return header
        return None

    def _count(self, header: dict, size: int) -> None:
        s, now = self.stats, time.perf_counter()
        if header["version"] not in self.sent:
            s.foreign += 1
            return
        if self.played is None:
            return
        if self.sent[header["version"]] > 0:
            s.latencies.append(now - self.sent[header["version"]])
            self.sent[header["version"]] = -1.0  # (shown)
        s.received += 1
        s.bytes += size
        if header.get("val"):
            s.accuracy = header["val"]["accuracy"]
            if s.to_target is None and s.accuracy is not None and s.accuracy >= TARGET:
                s.to_target = now - self.played
        self.first = self.first or (now, header["epoch"])
        self.last = (now, header["epoch"])

    async def pause(self, timeout: float = 15.0) -> None:
        """Pause, as the class does at the end, and wait for the frame with the test set's accuracy (the server
        measures it on Pause): the seconds it took."""
        self.played, paused = None, time.perf_counter()  # (frames from now on are not the playing page's)
        await self.ws.send('{"type":"pause"}')
        end = paused + timeout
        while (header := await self.next_frame(end - time.perf_counter())) is not None:
            test = header.get("test")
            if not header["playing"] and test is not None and test["step"] == header["step"]:
                self.stats.to_test = time.perf_counter() - paused
                return
        self.stats.errors.append(f"no test accuracy within {timeout:.0f} s of Pause")

    def finish(self) -> None:
        if self.first is not None and self.last[0] > self.first[0]:
            self.stats.seconds = self.last[0] - self.first[0]
            self.stats.frames = self.stats.received - 1
            self.stats.epochs = max(0.0, self.last[1] - self.first[1])


async def _page(url: str, setup: dict, seconds: float, everyone: asyncio.Barrier, change_every: float):
    """One page: its set-up, its first frame, Play when the whole class has its first frame, then frames for
    ``seconds``."""
    from websockets.asyncio.client import connect

    stats = MnistPageStats(setup)
    parts = urlparse(url)
    ws_url = f"ws://{parts.netloc}/ws/mnist" + (f"?{parts.query}" if parts.query else "")
    page, waited = None, False
    try:
        async with connect(ws_url, max_size=None, open_timeout=60) as ws:
            page = _Page(ws, stats)
            await page.config(setup)
            while (header := await page.next_frame(60)) is not None and header["version"] != page.version:
                pass
            waited = await _wait(everyone)
            if header is None:
                raise TimeoutError("no frame of its set-up within 60 s")
            page.played = time.perf_counter()
            await ws.send('{"type":"play"}')
            end, next_change = page.played + seconds, page.played + change_every
            while (now := time.perf_counter()) < end:
                await page.next_frame(min(end, next_change) - now)
                if time.perf_counter() >= next_change:
                    await page.config(setup)  # (the same state, a new version: its round trip)
                    next_change += change_every
            await page.pause()
    except Exception as exc:  # what went wrong is the page's result, not the run's end
        stats.errors.append(f"{type(exc).__name__}: {exc}")
    if not waited:
        await _wait(everyone)  # (a page that failed early does not hold the others back)
    if page is not None:
        page.finish()
    return stats


async def _wait(barrier: asyncio.Barrier) -> bool:
    try:
        await asyncio.wait_for(barrier.wait(), timeout=120)
    except (asyncio.TimeoutError, asyncio.BrokenBarrierError):
        await barrier.abort()
    return True


async def _usage(pid: int | None, out: dict, stop: asyncio.Event) -> None:
    """The server's CPU share (of one core) and its largest resident memory while ``stop`` is not set."""
    if not pid:
        return
    import psutil

    process = psutil.Process(pid)
    t, cpu, rss = time.perf_counter(), sum(process.cpu_times()[:2]), process.memory_info().rss
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.25)
        except asyncio.TimeoutError:
            pass
        rss = max(rss, process.memory_info().rss)
    out.update(cpu=(sum(process.cpu_times()[:2]) - cpu) / (time.perf_counter() - t), rss=rss)


def play_mnist_class(
    url: str, setups: list[dict], seconds: float, pid: int | None = None, change_every: float = 1.0
) -> tuple[list[MnistPageStats], dict]:
    """A /mnist page of the lab at ``url`` per set-up (a partial state of the page), at once, playing for
    ``seconds`` from a common Play: what each saw, and the server's usage (``cpu``, ``rss`` in bytes; empty without
    ``pid``)."""

    async def main():
        everyone, stop, usage = asyncio.Barrier(len(setups)), asyncio.Event(), {}
        sampler = asyncio.create_task(_usage(pid, usage, stop))
        seen = await asyncio.gather(*(_page(url, s, seconds, everyone, change_every) for s in setups))
        stop.set()
        await sampler
        return seen, usage

    return asyncio.run(main())


def _summary(name: str, pages: list[MnistPageStats], usage: dict) -> dict:
    reached = [math.inf if p.to_target is None else p.to_target for p in pages]
    return {
        "name": name,
        **page_figures(pages, usage.get("cpu"), usage.get("rss")),
        "chromium_fps": None,
        "to_90_s_median": _finite(statistics.median(reached)),
        "to_90_s_max": _finite(max(reached)),
        "reached_90": sum(t < math.inf for t in reached),
        "accuracy_min": min((p.accuracy for p in pages if p.accuracy is not None), default=None),
        "pause_to_test_s_max": max((p.to_test for p in pages if p.to_test is not None), default=None),
        "mib_per_extra_page": None,
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def measure_mnist_class(
    url: str | None = None, pages: int = 30, seconds: float = 20.0, setup: dict | None = None, data_root=None
) -> list[dict]:
    """One /mnist page alone, then ``pages`` at once, on the lab at ``url`` (None: a lab of its own, started in a
    subprocess, MNIST from ``data_root``, default ``$NNREF_DATA_ROOT``): a row of figures each.  Every page has
    ``setup`` (a partial state; default the page's own defaults), with its own seed.  The class's row gives
    ``mib_per_extra_page``: its largest resident memory above the lone page's, per page beyond the first."""
    process = None
    if url is None:
        process, url = start_lab(max_pages=2 * pages + 5, data_root=data_root)
    try:
        pid = process.pid if process is not None else listening(url)
        rows = []
        alone = ("one /mnist page alone", 1, min(seconds, ALONE_SECONDS))
        for name, count, span in (alone, (f"{pages} /mnist pages at once", pages, seconds)):
            setups = [{**(setup or {}), "seed": seed} for seed in range(count)]
            seen, usage = play_mnist_class(url, setups, span, pid)
            rows.append(_summary(name, seen, usage))
        one, many = rows[0]["server_rss_mib"], rows[-1]["server_rss_mib"]
        if one is not None and many is not None and pages > 1:
            rows[-1]["mib_per_extra_page"] = (many - one) / (pages - 1)
        return rows
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


def format_mnist_class(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| scenario | pages | updates/s each (median / min) | epochs/s each (median / min) | from Play to 90% "
        "(median / max) | bytes/frame | change shows (median / max) | server CPU | server memory | per extra page |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def s(x):
            return "never" if x is None else f"{x:.1f} s"

        cpu, rss, lat = common_cells(r)
        extra = f"{r['mib_per_extra_page']:.1f} MiB" if r["mib_per_extra_page"] is not None else "–"
        lines.append(
            f"| {r['name']} | {r['pages']} | {r['fps_median']:.1f} / {r['fps_min']:.1f} | "
            f"{r['epochs_per_s_median']:.2f} / {r['epochs_per_s_min']:.2f} | "
            f"{s(r['to_90_s_median'])} / {s(r['to_90_s_max'])} ({r['reached_90']} of {r['pages']}) | "
            f"{r['bytes_per_frame']:.0f} | {lat} | {cpu} | {rss} | {extra} |"
        )
    return "\n".join(lines)
