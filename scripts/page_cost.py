#!/usr/bin/env python
"""What one playground page costs in headless Chromium, per frame drawn, before and after, side by side (issue 35:
on a 2-core server every millisecond of CPU a Chromium page spends is taken from the server).

Each checkout named serves its own lab (its own static files: the page measured is that checkout's); the checkouts
take turns (A, B, A, B …) so that a machine whose load drifts treats both alike.  A turn opens ONE page of the
largest preset ("A deeper network on the spirals") at 1280 × 720 in a fresh headless Chromium, as
``nnref bench --only classroom`` does, presses Play, plays ``--settle`` seconds, then ``--seconds`` more and
reports: frames drawn per second (and the points the loss chart holds then), the CPU milliseconds per frame summed
over every Chromium process (renderer, GPU/compositor, browser, utilities: psutil over the browser's process tree),
that sum by process type, the renderer's main thread's share (DevTools' Performance metrics), and the lab server's
CPU milliseconds per frame.  The checkout "before" can be made with ``git archive main nnref | tar -x -C DIR``.

    PYTHONPATH=. python scripts/page_cost.py --code before=/tmp/main-checkout after=. [--seconds 10]
        [--repeats 4] [--settle 3] [--out docs/results/page-cost.log]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import psutil

from nnref.bench.sides import SideLog, start_checkout_lab

PRESET = "deeper-net-on-spirals"


def _chromium_processes() -> list[psutil.Process]:
    """Every Chromium process this script started (through playwright's driver)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name().lower():
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _kind(process: psutil.Process) -> str:
    try:
        kind = next((a.split("=", 1)[1] for a in process.cmdline() if a.startswith("--type=")), "browser")
    except psutil.NoSuchProcess:
        return "gone"
    return kind


def _cpu(processes) -> dict:
    """{pid: (kind, user + system CPU seconds)} of the processes still alive."""
    seen = {}
    for p in processes:
        try:
            times = p.cpu_times()
            seen[p.pid] = (_kind(p), times.user + times.system)
        except psutil.NoSuchProcess:
            pass
    return seen


def measure(url: str, server: psutil.Process, seconds: float, settle: float = 3.0) -> dict:
    """One page of the largest preset playing for ``seconds`` in a fresh Chromium: frames/s and CPU per frame."""
    from playwright.sync_api import sync_playwright

    from nnref.bench.chromium import open_browser

    with sync_playwright() as playwright:
        browser = open_browser(playwright)
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.goto(url + f"#preset={PRESET}")
        page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
        page.get_by_role("button", name="Play").click()
        page.wait_for_timeout(settle * 1000)  # (the first frames, the JIT's warm-up: not what a lesson costs)
        processes = _chromium_processes()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        metrics = _metrics(cdp)
        before, server_before = _cpu(processes), sum(server.cpu_times()[:2])
        frames, t = page.evaluate("window.nnrefLab.frames"), time.perf_counter()
        page.wait_for_timeout(seconds * 1000)
        elapsed = time.perf_counter() - t
        frames = page.evaluate("window.nnrefLab.frames") - frames
        chart = page.evaluate("window.nnrefLab.chart()")
        after, server_after = _cpu(processes + _chromium_processes()), sum(server.cpu_times()[:2])
        main_thread = {k: v - metrics[k] for k, v in _metrics(cdp).items()}
        browser.close()
    kinds: dict[str, float] = {}
    for pid, (kind, cpu) in after.items():
        kinds[kind] = kinds.get(kind, 0.0) + cpu - before.get(pid, (kind, 0.0))[1]
    per_frame = 1e3 / max(frames, 1)
    return {
        "fps": frames / elapsed,
        "chart_points": chart,
        "chromium_ms": sum(kinds.values()) * per_frame,
        "by_kind_ms": {k: round(v * per_frame, 2) for k, v in sorted(kinds.items())},
        "server_ms": (server_after - server_before) * per_frame,
        "chromium_share": sum(kinds.values()) / elapsed,
        "main_thread_ms": {k.removesuffix("Duration"): round(v * per_frame, 2) for k, v in main_thread.items()},
    }


def _metrics(cdp) -> dict:
    """The renderer's main thread so far: seconds of tasks, of script, of style and of layout (the DevTools
    Performance domain's cumulative durations)."""
    wanted = ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration")
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] in wanted}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", nargs="+", default=["this=."], help="NAME=PATH of each checkout to measure")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds played before the measured ones (a long lesson: 40)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    codes = dict(item.split("=", 1) for item in args.code)
    log = SideLog()
    say = log.say

    labs = {name: start_checkout_lab(Path(path), max_sessions=8) for name, path in codes.items()}
    runs: dict[str, list] = {name: [] for name in codes}
    try:
        for repeat in range(args.repeats):
            for name, (process, url) in labs.items():
                r = measure(url, psutil.Process(process.pid), args.seconds, args.settle)
                runs[name].append(r)
                say(
                    f"{name} {repeat + 1}: {r['fps']:.1f} frames/s ({r['chart_points']} chart points), "
                    f"Chromium {r['chromium_ms']:.2f} ms/frame "
                    f"({100 * r['chromium_share']:.0f}% of a core) {r['by_kind_ms']}, server {r['server_ms']:.2f} "
                    f"ms/frame; the renderer's main thread, ms/frame: {r['main_thread_ms']} "
                    f"(load {os.getloadavg()[0]:.2f})"
                )
    finally:
        for process, _ in labs.values():
            process.terminate()
            process.wait(timeout=30)
    say(f"\nmedians over {args.repeats} turns of {args.seconds:.0f} s each, after {args.settle:.0f} s of play")
    medians = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("fps", "chromium_ms", "server_ms", "chromium_share")}
        for name, rs in runs.items()
    }
    for name, m in medians.items():
        say(
            f"{name}: {m['fps']:.1f} frames/s, Chromium {m['chromium_ms']:.2f} ms CPU/frame "
            f"({100 * m['chromium_share']:.0f}% of a core), server {m['server_ms']:.2f} ms CPU/frame"
        )
    if len(medians) >= 2:
        (a, ma), (b, mb) = list(medians.items())[:2]
        say(
            f"{b} / {a}: Chromium CPU per frame {mb['chromium_ms'] / ma['chromium_ms']:.2f}×, "
            f"frames/s {mb['fps'] / ma['fps']:.2f}×, server CPU per frame {mb['server_ms'] / ma['server_ms']:.2f}×"
        )
    log.write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
