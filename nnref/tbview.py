"""TensorBoard as a person sees it: a server on loopback and a headless Chromium page on it.

Used by the browser tests (``tests/test_browser.py``) and by ``scripts/tensorboard_screenshots.py``, which
regenerates the README's pictures.  Needs Debian's ``chromium`` (or ``$NNREF_CHROMIUM``) and the PyPI
``playwright`` package (``playwright install`` is not needed: the system browser is used).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["TensorBoardServer", "chromium_path", "browser_missing", "open_browser", "INSTALL_HINT"]

INSTALL_HINT = "apt-get install -y chromium && pip install playwright"


def chromium_path() -> str | None:
    """``$NNREF_CHROMIUM``, else Debian's ``/usr/bin/chromium``, else whatever ``chromium`` the PATH has."""
    for candidate in (os.environ.get("NNREF_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def browser_missing() -> str | None:
    """Why no browser can be driven here (None when one can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"the playwright package is missing ({INSTALL_HINT})"
    if chromium_path() is None:
        return f"no Chromium found ({INSTALL_HINT}, or set NNREF_CHROMIUM)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TensorBoardServer:
    """``tensorboard --logdir LOGDIR --host 127.0.0.1`` on a free port, for a ``with`` block."""

    def __init__(self, logdir, port: int | None = None) -> None:
        self.logdir, self.port = Path(logdir), port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            body = response.read()
        return json.loads(body) if response.headers.get_content_type() == "application/json" else body

    def __enter__(self) -> "TensorBoardServer":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(self.logdir), "--host", "127.0.0.1",
             "--port", str(self.port), "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return self

    def wait_for_runs(self, runs, seconds: float = 90) -> list[str]:
        """Block until the server lists every run in ``runs``; returns the runs it lists."""
        deadline, listed = time.time() + seconds, []
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"TensorBoard exited: {self.process.stderr.read()[-2000:]}")
            try:
                listed = self.get("/data/runs")
                if set(runs) <= set(listed):
                    return listed
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"TensorBoard listed {listed}, not all of {sorted(runs)}, after {seconds:.0f} s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def open_browser(playwright):
    """A headless Chromium that reaches nothing but loopback (no background networking, no sandbox for root)."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


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
    page.wait_for_timeout(2500)  # cards render their data after the filter settles


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
    return [line.strip() for line in page.locator("runs-table").inner_text().splitlines()
            if line.strip() and line.strip() != "Run"]


def hparams_cells(page, server: TensorBoardServer, wait_ms: int = 30_000) -> list[str]:
    """The HParams dashboard's table view, cell by cell (headers first)."""
    page.goto(f"{server.url}/#hparams")
    page.wait_for_selector("vaadin-grid-cell-content", timeout=wait_ms)
    page.wait_for_timeout(2000)
    return [t.strip() for t in page.locator("vaadin-grid-cell-content").all_inner_texts() if t.strip()]
