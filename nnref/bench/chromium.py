"""A headless Chromium for the bench's browser sections (the lab, /mnist, the digits page), the browser tests
and the screenshot scripts: Debian's ``chromium`` (or ``$NNREF_CHROMIUM``) driven by the PyPI ``playwright``
package (``playwright install`` is not needed: the system browser is used), reaching nothing but loopback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["chromium_path", "browser_missing", "open_browser", "INSTALL_HINT"]

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


def open_browser(playwright):
    """A headless Chromium that reaches nothing but loopback (no background networking, no sandbox for root)."""
    return playwright.chromium.launch(
        executable_path=chromium_path(),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
