#!/usr/bin/env python
"""Regenerate the README's TensorBoard pictures (docs/tensorboard-*.png) from real runs, seen in Chromium.

    python scripts/tensorboard_screenshots.py [--data-root ../shared/data] [--out docs]

Trains softmax regression and the MLP for a few epochs on MNIST (from --data-root, else $NNREF_DATA_ROOT),
starts TensorBoard on loopback, and photographs the Time Series dashboard (train and validation curves on
one chart) and the pictures a run logs.  Needs Chromium and playwright (see README, "Tests").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from nnref.bench import chromium
from nnref.cli import main as nnref

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' TensorBoard tooling
import tensorboard_view as tbview  # noqa: E402


def _train(data_root: str | None, logdir: Path) -> None:
    common = ["--logdir", str(logdir), "--quiet", "--no-download"] + (["--data-root", data_root] if data_root else [])
    runs = [
        ["train", "softmax", "--epochs", "8", "--run-name", "softmax"],
        ["train", "mlp", "--epochs", "8", "--hidden", "800", "--run-name", "mlp"],
    ]
    for args in runs:
        if nnref([*args, *common]) != 0:
            sys.exit(f"training failed: nnref {' '.join(args)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    if chromium.browser_missing():
        sys.exit(chromium.browser_missing())
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp) / "runs"
        _train(args.data_root, logdir)
        with tbview.TensorBoardServer(logdir) as server, sync_playwright() as playwright:
            server.wait_for_runs(["softmax", "softmax/train", "softmax/val", "mlp", "mlp/train", "mlp/val"])
            browser = chromium.open_browser(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 720})
            tbview.time_series(page, server, "^(loss|accuracy)$")
            page.screenshot(path=str(out / "tensorboard-time-series.png"))
            page.set_viewport_size({"width": 1400, "height": 1000})
            tbview.time_series(page, server, "weights/templates|test/confusion_matrix")
            page.screenshot(path=str(out / "tensorboard-images.png"))
            browser.close()
    print(f"wrote {out / 'tensorboard-time-series.png'} and {out / 'tensorboard-images.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
