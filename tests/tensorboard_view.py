"""TensorBoard as a person sees it: a server on loopback and a headless Chromium page on it.

Used by the browser tests (``tests/test_browser.py``) and by ``scripts/tensorboard_screenshots.py``, which
regenerates the README's pictures.  Needs Debian's ``chromium`` (or ``$NNREF_CHROMIUM``) and the PyPI
``playwright`` package; the browser itself is :mod:`nnref.bench.chromium`'s.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

__all__ = ["TensorBoardServer", "time_series", "scalar_cards", "image_cards", "runs_listed", "hparams_cells"]


class TensorBoardServer:
    """``tensorboard --logdir LOGDIR --host 127.0.0.1 --port 0`` for a ``with`` block: the operating system picks
    a free port and TensorBoard binds it at once (no port is looked up and released first, for another process
    to take); the server's own first line says which."""

    def __init__(self, logdir) -> None:
        self.logdir, self.port, self.url = Path(logdir), None, None

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            body = response.read()
        return json.loads(body) if response.headers.get_content_type() == "application/json" else body

    def __enter__(self) -> TensorBoardServer:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                str(self.logdir),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--reload_interval",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output: list[str] = []
        started = threading.Event()

        def read() -> None:  # the address line, then everything else (kept for the error message)
            for line in self.process.stderr:
                self.output.append(line)
                found = re.search(r"at (http://127\.0\.0\.1:(\d+))/", line)
                if found and not started.is_set():
                    self.url, self.port = found.group(1), int(found.group(2))
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(120) or self.url is None:
            self.__exit__()
            raise RuntimeError(f"TensorBoard did not start: {''.join(self.output)[-2000:]}")
        return self

    def wait_for_runs(self, runs, seconds: float = 90) -> list[str]:
        """Block until the server lists every run in ``runs``; returns the runs it lists."""
        deadline, listed = time.time() + seconds, []
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"TensorBoard exited: {''.join(self.output)[-2000:]}")
            try:
                listed = self.get("/data/runs")
                if set(runs) <= set(listed):
                    return listed
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"TensorBoard listed {listed}, not all of {sorted(runs)}, after {seconds:.0f} s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --------------------------------------------------------------------------------------------------
# What the page shows
# --------------------------------------------------------------------------------------------------
def time_series(page, server: TensorBoardServer, tag_filter: str = "", wait_ms: int = 60_000) -> None:
    """Open the Time Series dashboard (charts as SVG: no WebGL headless), filtered to tags matching a regex."""
    page.goto(f"{server.url}/?forceSVG=true#timeseries")
    page.wait_for_selector("scalar-card-component, image-card-component", timeout=wait_ms)
    if tag_filter:
        page.fill("input[placeholder='Filter tags (regex)']", tag_filter)
        page.keyboard.press("Escape")  # close the filter's autocomplete list, which would cover the cards
    if page.locator("metrics-dashboard-right-pane, .right-pane settings-view").count():
        page.click("button[aria-label='Toggle settings side pane']")  # open by default: a third of the width
    page.wait_for_function(_CARDS_READY, arg=tag_filter, timeout=wait_ms)


#: True once every card in view matches the tag filter and has drawn its data: a chart's lines, an image loaded.
_CARDS_READY = """(filter) => {
    const re = new RegExp(filter || '.*');
    const cards = [...document.querySelectorAll('scalar-card-component, image-card-component')]
        .filter(card => { const r = card.getBoundingClientRect(); return r.height > 0 && r.top < window.innerHeight; });
    return cards.length > 0 && cards.every(card => {
        const tag = card.querySelector('tb-truncated-path')?.title || '';
        if (!re.test(tag)) return false;
        if (card.tagName === 'IMAGE-CARD-COMPONENT') {
            const img = card.querySelector('img');
            return img !== null && img.complete && img.naturalWidth > 0;
        }
        return card.querySelectorAll('line-chart svg path').length > 0 && card.querySelector('tb-data-table');
    });
}"""


def scalar_cards(page) -> list[dict]:
    """Every scalar card on screen: its tag, the runs its data table lists, and how many lines it draws."""
    return page.locator("scalar-card-component").evaluate_all("""cards => cards.map(card => ({
        tag: card.querySelector('tb-truncated-path.tag')?.title || '',
        table: card.querySelector('tb-data-table')?.innerText || '',
        lines: card.querySelectorAll('line-chart svg path.line, line-chart svg path').length}))""")


def image_cards(page) -> list[dict]:
    """Every image card on screen: its tag and run, the loaded image's width, and how many steps it holds."""
    return page.locator("image-card-component").evaluate_all("""cards => cards.map(card => ({
        tag: card.querySelector('tb-truncated-path')?.title || '',
        text: card.innerText,
        width: card.querySelector('img')?.naturalWidth || 0,
        steps: card.querySelector('input[type=range]') ? Number(card.querySelector('input[type=range]').max) + 1 : 1
    }))""")


def runs_listed(page) -> list[str]:
    """The runs in the Time Series dashboard's run selector."""
    return [
        line.strip()
        for line in page.locator("runs-table").inner_text().splitlines()
        if line.strip() and line.strip() != "Run"
    ]


def hparams_cells(page, server: TensorBoardServer, wait_ms: int = 30_000) -> list[str]:
    """The HParams dashboard's table view, cell by cell (headers first)."""
    page.goto(f"{server.url}/#hparams")
    cells = page.locator("vaadin-grid-cell-content")  # inside Polymer's shadow roots: a locator reaches them
    deadline = time.time() + wait_ms / 1000
    while not any(re.fullmatch(r"0\.\d+|1(\.0+)?", t.strip()) for t in cells.all_inner_texts()):
        if time.time() > deadline:  # the table has drawn no metric's value
            raise TimeoutError(f"the HParams table showed no metric value within {wait_ms / 1000:.0f} s")
        page.wait_for_timeout(100)
    return [t.strip() for t in page.locator("vaadin-grid-cell-content").all_inner_texts() if t.strip()]
