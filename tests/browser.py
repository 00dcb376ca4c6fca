"""What the browser tests share: the requirement (CI must run them), a fresh page, canvas pixels, axe-core."""

from __future__ import annotations

import contextlib
import os

import pytest

from nnref.bench import chromium


def require_browser() -> None:
    """Skip the calling test module without a browser — or fail it where NNREF_REQUIRE_BROWSER is set (CI)."""
    missing = chromium.browser_missing()
    if missing:
        if os.environ.get("NNREF_REQUIRE_BROWSER"):
            raise RuntimeError(f"the browser tests must run here, but {missing}")
        pytest.skip(f"browser tests skipped: {missing}", allow_module_level=True)


def new_page(browser, width: int = 1400, height: int = 1000):
    """A page in a context of its own (its own storage), the lab's Content Security Policy left in force."""
    return browser.new_context(viewport={"width": width, "height": height}).new_page()


def pixels(page, selector: str) -> int:
    """A checksum of a canvas's pixels, read back with getImageData (a screenshot of a canvas can be blank)."""
    return page.locator(selector).first.evaluate("""canvas => {
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        for (let i = 0; i < data.length; i++) sum = (sum * 31 + data[i]) % 2147483647;
        return sum;
    }""")


def serious_violations(page) -> list[str]:
    """axe-core's violations of impact serious or critical on the page, as "rule: where" lines."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@contextlib.contextmanager
def lab_in_browser(**server_options):
    """A lab server (``LabServer(**server_options)``) and Chromium for a module's tests: yields (server, browser)."""
    from playwright.sync_api import sync_playwright

    from nnref.lab.server import LabServer

    with LabServer(**server_options) as server, sync_playwright() as playwright:
        browser = chromium.open_browser(playwright)
        try:
            yield server, browser
        finally:
            browser.close()


@contextlib.contextmanager
def lab_page(lab, width: int = 1400, height: int = 1000):
    """A fresh page of ``lab`` (server, browser), its server at ``page.lab``; closed after."""
    server, browser = lab
    page = new_page(browser, width, height)
    page.lab = server
    try:
        yield page
    finally:
        page.context.close()


def shown(page) -> None:
    """Wait until a lab page has drawn a frame of its latest set-up (the server answers each change with one)."""
    page.wait_for_function(
        "() => window.nnrefLab && window.nnrefLab.frames > 0 && window.nnrefLab.version === window.nnrefLab.sent"
    )


def open_lab(page, hash_: str = ""):
    """Open the lab of ``page.lab`` at ``hash_`` (a preset, a state) and wait until its set-up is drawn."""
    page.goto(page.lab.url + hash_)
    shown(page)
    return page
