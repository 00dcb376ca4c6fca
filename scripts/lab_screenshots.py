#!/usr/bin/env python
"""Regenerate the README's pictures of the lab (docs/lab-*.png), photographed in Chromium.

    python scripts/lab_screenshots.py [--data-root ../shared/data] [--out docs]

Every picture is the whole screen of a projector, 1280 × 720, as a class sees it (nothing below it: no page of the
lab scrolls).  The playground: the lecture's third demo (a deeper net on the spirals) after a few seconds of play,
the side-by-side mode (the line, the MLP, KNN on the same data), your own points placed with the mouse, the worked
backward pass, and the backward pass of the spirals' net at its second hidden layer.  /mnist: softmax regression
after a few seconds of play, a test digit looked inside.  The draw-a-digit page: trains the 784-800-10 MLP
for one epoch on MNIST (from --data-root, else $NNREF_DATA_ROOT), draws a 7 with the mouse and photographs the
prediction, the hidden layer, dL/dx and the nearest training images.  Needs Chromium and playwright (README,
"Tests").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from nnref.bench import chromium
from nnref.cli import main as nnref

#: A projector's screen.
SCREEN = {"width": 1280, "height": 720}


def _playground(browser, lab, out: Path) -> list[Path]:
    page = browser.new_page(viewport=SCREEN)
    shots = []
    for name, hash_, seconds in [
        ("lab-spirals.png", "#preset=deeper-net-on-spirals", 8),
        ("lab-side-by-side.png", "#dataset=xor&model=compare&hidden=4&k=7", 4),
    ]:
        page.goto(lab.url + hash_)
        page.reload()  # the hash is read when the page loads
        page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
        page.get_by_role("button", name="Play").click()
        page.wait_for_timeout(seconds * 1000)
        page.get_by_role("button", name="Pause").click()
        page.wait_for_function("() => !window.nnrefLab.playing")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / name))
        shots.append(out / name)
    return [*shots, _own_points(page, lab, out), _backward_pass(page, lab, out), _deep_backward(page, lab, out)]


def _deep_backward(page, lab, out: Path) -> Path:
    """The backward pass on the spirals' 8-8-6 net, trained a few seconds, at the stage of hidden layer 2."""
    page.goto(lab.url + "#preset=deeper-net-on-spirals")
    page.reload()
    page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
    page.get_by_role("button", name="Play").click()
    page.wait_for_timeout(5000)
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Backward pass").click()
    page.get_by_role("button", name="Next point").click()
    page.wait_for_function("() => document.querySelector('#backprop-params tbody tr') !== null", timeout=60_000)
    for _ in range(3):  # forward, output, hidden 3, hidden 2
        page.get_by_role("button", name="On a stage").click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "lab-backward-spirals.png"))
    return out / "lab-backward-spirals.png"


def _mnist_page(browser, lab, out: Path) -> Path:
    """/mnist: softmax regression (weight decay 0.01, the default) after 3 s of play, the first test digit inside."""
    page = browser.new_page(viewport=SCREEN)
    page.goto(lab.base + "/mnist")
    page.locator("#gallery button").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Play").click()
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Pause").click()
    page.locator("#gallery button").first.click()
    page.locator("#digit-probabilities li").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "lab-mnist.png"))
    return out / "lab-mnist.png"


def _backward_pass(page, lab, out: Path) -> Path:
    """The worked backward pass: the slide's instance and weights, the tables of the chain rule."""
    page.goto(lab.url + "#preset=worked-backward-pass")
    page.reload()
    page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#backprop-params tbody tr') !== null", timeout=60_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "lab-backward-pass.png"))
    return out / "lab-backward-pass.png"


def _own_points(page, lab, out: Path) -> Path:
    """Your own points: an empty plane, six points clicked in two classes, a few seconds of the MLP on them."""
    page.goto(lab.url + "#dataset=custom&points=&hidden=4&model=mlp")
    page.reload()
    page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
    for i, (x1, x2) in enumerate([(-3, 3), (-2, 4), (3, -3), (4, -2), (2, 3), (-3, -2)]):
        page.get_by_label("Class of new points").select_option(str(int(x1 * x2 > 0)))
        box = page.locator("canvas.plane").first.bounding_box()
        page.mouse.click(box["x"] + (x1 + 6) / 12 * box["width"], box["y"] + (6 - x2) / 12 * box["height"])
        page.wait_for_function("(n) => window.nnrefLab.points() === n", arg=i + 1)
    page.get_by_role("button", name="Play").click()
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "lab-own-points.png"))
    return out / "lab-own-points.png"


def _digit_page(browser, lab, out: Path) -> Path:
    page = browser.new_page(viewport=SCREEN)
    page.goto(lab.base + "/digits")
    page.wait_for_function("() => window.nnrefDigits && window.nnrefDigits.ready", timeout=60_000)
    box = page.get_by_role("img", name="Draw a digit").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 70, y + 60)  # a 7: the bar, then the stroke down
    page.mouse.down()
    page.mouse.move(x + 210, y + 60, steps=12)
    page.mouse.move(x + 120, y + 240, steps=15)
    page.mouse.up()
    page.wait_for_function("() => window.nnrefDigits.neighbours > 0", timeout=60_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "lab-digits.png"))
    return out / "lab-digits.png"


def _class_view(browser, out: Path, pages: int = 30, seconds: float = 8.0) -> Path:
    """/class at a projector's 1280 × 720 with a class of ``pages`` students on their own set-ups (seeded), each a
    websocket client that plays and acknowledges its frames as a page does, a third of them on one preset."""
    import json
    import random
    import threading
    import time

    from websockets.sync.client import connect

    from nnref.lab.server import LabServer
    from nnref.lab.session import decode

    rng, stop = random.Random(0), threading.Event()

    def student(ws) -> None:
        while not stop.is_set():
            try:
                message = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            if isinstance(message, bytes) and decode(message)[0]["type"] == "frame":
                ws.send(json.dumps({"type": "ready"}))

    with LabServer(max_sessions=pages + 4) as lab:
        sockets = []
        for i in range(pages):
            ws = connect(lab.base.replace("http", "ws") + "/ws/playground", max_size=2**24)
            hidden = [rng.randint(2, 8) for _ in range(rng.randint(1, 3))]
            setup = {"dataset": rng.choice(["xor", "circles", "spirals", "blobs"]), "model": "mlp", "hidden": hidden}
            if i % 3 == 0:
                setup = {"dataset": "xor", "model": "mlp", "hidden": [4], "activation": "tanh", "lr": 0.03}
            ws.send(json.dumps({"type": "config", "version": 1, "state": setup}))
            ws.send(json.dumps({"type": "play"}))
            sockets.append(ws)
        threads = [threading.Thread(target=student, args=(ws,), daemon=True) for ws in sockets]
        for t in threads:
            t.start()
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.goto(lab.class_url)
        page.wait_for_function(f"() => window.nnrefClass && window.nnrefClass.tiles === {pages}")
        time.sleep(seconds)
        page.get_by_label("Sort").select_option("accuracy")
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "lab-class.png"))
        page.context.close()
        stop.set()
        for t in threads:
            t.join()
        for ws in sockets:
            ws.close()
    return out / "lab-class.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    if chromium.browser_missing():
        sys.exit(chromium.browser_missing())
    from playwright.sync_api import sync_playwright

    from nnref.lab.digits import DigitsBackend
    from nnref.lab.server import LabServer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = ["--data-root", args.data_root] if args.data_root else []
        train = [
            "train",
            "mlp",
            "--hidden",
            "800",
            "--epochs",
            "1",
            "--seed",
            "0",
            "--logdir",
            tmp,
            "--run-name",
            "digits",
            "--quiet",
            "--no-download",
            *root,
        ]
        if nnref(train) != 0:
            sys.exit(f"training failed: nnref {' '.join(train)}")
        backend = DigitsBackend.load(Path(tmp) / "digits" / "checkpoint.pt", data_root=args.data_root)
        with LabServer(digits=backend) as lab, sync_playwright() as playwright:
            browser = chromium.open_browser(playwright)
            shots = [
                *_playground(browser, lab, out),
                _digit_page(browser, lab, out),
                _mnist_page(browser, lab, out),
                _class_view(browser, out),
            ]
            browser.close()
    print("wrote " + ", ".join(str(p) for p in shots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
