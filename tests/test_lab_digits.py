"""nnref.lab.digits: the draw-a-digit page — its backend's forward and backward pass, its socket (drawings,
dropped pictures, a chosen class, bad messages), and the page in headless Chromium."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from websockets.sync.client import connect

from nnref.bench.digits import render
from nnref.data import load_mnist
from nnref.lab.digits import DigitsBackend
from nnref.lab.server import LabServer
from nnref.lab.session import decode


@pytest.fixture(scope="module")
def backend(mnist_mlp):
    checkpoint, root = mnist_mlp
    return DigitsBackend.load(checkpoint, data_root=root)


@pytest.fixture(scope="module")
def digits(mnist_mlp):
    images, labels = load_mnist(mnist_mlp[1], train=False, download=False)
    return images[:20], labels[:20]


def test_the_forward_pass_the_backward_pass_and_the_neighbours(backend, digits):
    images, labels = digits
    picture = render(images[0], "paper", torch.Generator().manual_seed(0))
    analysis = backend.analyse(picture, target=3)
    header, payload = decode(analysis.frame)
    assert header["prediction"] == str(int(labels[0])) and header["target"] == 3
    assert abs(sum(header["probabilities"]) - 1) < 1e-4 and header["hidden"] == [300]
    assert len(payload) == 784 + 784 + 300  # the input, the gradient picture, the hidden activations
    # the gradient is nnref's backward of the chosen class's loss: one step along it makes that class likelier
    from nnref.digits import to_row

    x = to_row(analysis.image).requires_grad_()
    loss = backend.model.loss(backend.model(x), torch.tensor([3]))
    (g,) = torch.autograd.grad(loss, x)
    toward = torch.frombuffer(bytearray(payload[784:1568]), dtype=torch.uint8).float() - 128
    assert torch.corrcoef(torch.stack([toward, -g[0]]))[0, 1] > 0.99
    with torch.no_grad():
        before = backend.model.predict_proba(x)[0, 3]
        after = backend.model.predict_proba(x - 0.5 * g / g.abs().max())[0, 3]
    assert after > before
    header, payload = decode(backend.neighbours(analysis.image))
    assert len(header["labels"]) == backend.k == 3 and len(payload) == 3 * 784
    assert header["distances"] == sorted(header["distances"]) and header["labels"][0] == int(labels[0])


def _message(header: dict, payload: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<I", len(head)) + head + payload


def _blank_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (200, 200), 255).save(out, "PNG")
    return out.getvalue()


def _recv(ws, kind: str):
    while True:
        message = ws.recv(timeout=30)
        if isinstance(message, bytes):
            header, payload = decode(message)
        else:
            header, payload = json.loads(message), None
        if header["type"] == kind:
            return header, payload


def test_the_socket_answers_drawings_pictures_and_a_new_class(backend, digits):
    images, labels = digits
    with LabServer(digits=backend) as lab, connect(lab.base.replace("http", "ws") + "/ws/digits") as ws:
        ready, _ = _recv(ws, "ready")
        assert ready["classes"] == [str(i) for i in range(10)] and ready["k"] == 3
        canvas = torch.zeros(280, 280, dtype=torch.uint8)
        canvas[40:240, 40:240] = torch.nn.functional.interpolate(images[1][None, None].float(), size=200)[0, 0].byte()
        ws.send(_message({"type": "draw", "width": 280, "height": 280, "target": None}, canvas.numpy().tobytes()))
        digit, _ = _recv(ws, "digit")
        assert digit["prediction"] == str(int(labels[1]))
        assert _recv(ws, "neighbours")[0]["labels"][0] == int(labels[1])
        ws.send(json.dumps({"type": "target", "class": 5}))
        again, _ = _recv(ws, "digit")
        assert again["target"] == 5 and again["prediction"] == digit["prediction"]
        file = render(images[2], "transparent", torch.Generator().manual_seed(1))
        ws.send(_message({"type": "file", "name": "two.png", "target": 5}, file))
        assert _recv(ws, "digit")[0]["prediction"] == str(int(labels[2]))
        for bad, reason, kind in (
            (_message({"type": "draw", "width": 280, "height": 280}, b"\x00" * 10), "width × height", None),
            (_message({"type": "paint"}, b""), "draw or file", None),
            (_message({"type": "file", "name": "x", "target": 12}, b"x"), "target must be a class", None),
            (b"\x01", "a header and its bytes", None),
            ("{nope", "JSON text", None),
            (json.dumps({"type": "target", "class": "seven"}), "class must be 0-9", None),
        ):
            ws.send(bad)
            error, _ = _recv(ws, "error")
            assert reason in error["message"] and error.get("kind") == kind
        ws.send(json.dumps({"type": "target", "class": None}))  # the predicted class again
        assert _recv(ws, "digit")[0]["target"] == int(labels[2])  # the session went on through every bad message
        # a picture the model cannot be shown: said with its kind, and the last picture is forgotten
        for bad, reason, kind in (
            (
                _message({"type": "file", "name": "/home/me/notes.txt"}, b"not a picture"),
                "notes.txt is not a picture nnref can read: ",
                "not-a-picture",
            ),
            (
                _message({"type": "draw", "width": 280, "height": 280}, b"\x00" * 78400),
                "No digit found in your drawing: the picture is blank",
                "no-digit",
            ),
            (
                _message({"type": "file", "name": "white.png"}, _blank_png()),
                "No digit found in white.png: ",
                "no-digit",
            ),
        ):
            ws.send(bad)
            error, _ = _recv(ws, "error")
            assert error["message"].startswith(reason) and error["kind"] == kind
            ws.send(json.dumps({"type": "target", "class": 1}))  # nothing to explain: no frame of the old picture
            ws.send(
                _message(
                    {"type": "file", "name": "three.png", "target": 1},
                    render(images[3], "paper", torch.Generator().manual_seed(3)),
                )
            )
            digit, _ = _recv(ws, "digit")
            assert digit["prediction"] == str(int(labels[3])) != str(int(labels[2])) and digit["target"] == 1
            assert _recv(ws, "neighbours")[0]["labels"][0] == int(labels[3])


def test_a_lab_without_a_checkpoint_says_how_to_get_the_digit_page():
    with LabServer() as lab, connect(lab.base.replace("http", "ws") + "/ws/digits") as ws:
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and "--checkpoint" in error["message"]


def test_the_digit_page_refuses_a_knn_checkpoint_as_its_model(mnist_mlp, tmp_path):
    from nnref.cli import main
    from nnref.run.config import TrainingError

    checkpoint, root = mnist_mlp
    assert (
        main(
            [
                "train",
                "knn",
                "--limit-train",
                "1000",
                "--data-root",
                str(root),
                "--no-download",
                "--logdir",
                str(tmp_path),
                "--run-name",
                "knn",
                "--quiet",
            ]
        )
        == 0
    )
    with pytest.raises(TrainingError, match="needs a parametric model"):
        DigitsBackend.load(tmp_path / "knn" / "checkpoint.pt", data_root=root)
    knn = DigitsBackend.load(checkpoint, tmp_path / "knn" / "checkpoint.pt", data_root=root)
    assert knn.k == torch.load(tmp_path / "knn" / "checkpoint.pt", weights_only=True)["best_k"]


# --------------------------------------------------------------------------------------------------
# The page, in headless Chromium
# --------------------------------------------------------------------------------------------------
CLOSED = "The connection to nnref lab closed. Is the server still running? Reload to reconnect."


@pytest.fixture(scope="module")
def chromium():
    from browser import require_browser
    from playwright.sync_api import sync_playwright

    from nnref.bench import chromium

    require_browser()
    with sync_playwright() as playwright:
        browser = chromium.open_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(backend):
    with LabServer(digits=backend) as server:
        yield server


def _open(chromium, url: str, width: int = 1400, height: int = 900, ready: bool = True):
    from browser import new_page

    page = new_page(chromium, width, height)
    page.goto(url)
    if ready:
        page.wait_for_function("() => window.nnrefDigits && window.nnrefDigits.ready")
    return page


@pytest.fixture
def page(chromium, lab):
    page = _open(chromium, lab.base + "/digits")
    yield page
    page.context.close()


def _stroke(page, *points) -> None:
    """One mouse stroke through points of the pad (0-280 each way), several moves between two points."""
    box = page.get_by_role("img", name="Draw a digit").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + points[0][0], y + points[0][1])
    page.mouse.down()
    for px, py in points[1:]:
        page.mouse.move(x + px, y + py, steps=12)
    page.mouse.up()


def _draw_a_seven(page) -> None:
    """A 7 with the mouse: a bar, then the diagonal."""
    _stroke(page, (70, 60), (210, 60), (120, 240))


def _analysed(page, draw) -> dict:
    """Draw (or upload), then wait for both answers: the prediction and the neighbours; the prediction's header."""
    before = page.evaluate("[window.nnrefDigits.predictions, window.nnrefDigits.neighbours]")
    draw()
    page.wait_for_function(
        "([p, n]) => window.nnrefDigits.predictions > p && window.nnrefDigits.neighbours > n", arg=before
    )
    return page.evaluate("window.nnrefDigits.last")


def _upload(page, name: str, content: bytes, mime: str) -> None:
    page.locator("#picture").set_input_files(files=[{"name": name, "mimeType": mime, "buffer": content}])


def _banner(page) -> str | None:
    return page.evaluate(
        "(() => { const a = document.getElementById('alert'); return a.hidden ? null : a.textContent; })()"
    )


def _shown(page) -> dict:
    """What the page shows of an analysis: texts, counts, and the ink of the two 28 × 28 pictures."""
    return page.evaluate("""() => {
        const ink = id => document.getElementById(id).getContext('2d').getImageData(0, 0, 28, 28).data
            .reduce((sum, v, i) => i % 4 === 3 ? sum + v : sum, 0);
        const n = id => document.getElementById(id).children.length;
        return {prediction: document.getElementById('prediction').textContent,
                timing: document.getElementById('timing').textContent,
                bars: n('bars'), neighbours: n('neighbours'), hidden: n('hidden'),
                input: ink('input'), gradient: ink('gradient')};
    }""")


NOTHING = {"bars": 0, "neighbours": 0, "hidden": 0, "input": 0, "gradient": 0, "timing": ""}


def _said(page, action) -> str | None:
    """Do something, wait for the page's next message, and return the banner then."""
    before = page.evaluate("window.nnrefDigits.errors.length")
    action()
    page.wait_for_function("n => window.nnrefDigits.errors.length > n", arg=before)
    return _banner(page)


def _closed(page) -> None:
    """Wait until the page has seen its socket close (and said so)."""
    page.wait_for_function("() => window.nnrefDigits && window.nnrefDigits.closed", timeout=10_000)


@pytest.mark.browser
def test_drawing_a_digit_shows_the_prediction_the_neighbours_and_the_gradient(page):
    from browser import pixels

    _analysed(page, lambda: _draw_a_seven(page))
    status = page.get_by_role("status", name="Prediction")
    assert status.inner_text().startswith("Prediction: 7 (")
    bars = page.get_by_role("list", name="Class probabilities").get_by_role("listitem")
    assert bars.count() == 10 and "class 7:" in bars.nth(7).get_attribute("aria-label")
    assert page.get_by_role("list", name="The nearest training images").get_by_role("img").count() == 3
    gradient = pixels(page, "#gradient")
    page.get_by_label("Class for the gradient").select_option("1")
    page.wait_for_function("() => window.nnrefDigits.last.target === 1")
    assert pixels(page, "#gradient") != gradient  # the backward pass of another class's loss
    assert page.evaluate("window.nnrefDigits.predictionMs.length") == 1
    page.get_by_role("button", name="Clear").click()
    assert status.inner_text() == "Draw a digit."
    assert _shown(page) | {"prediction": None} == NOTHING | {"prediction": None}


@pytest.mark.browser
def test_a_picture_without_a_digit_clears_the_last_results_and_says_why(page):
    """Teacher report 3.3: a blank picture after a 7 left the 7's bars, neighbours, timing, input and gradient."""
    _analysed(page, lambda: _draw_a_seven(page))
    assert _shown(page)["bars"] == 10 and _banner(page) is None
    banner = _said(page, lambda: _upload(page, "blank.png", _blank_png(), "image/png"))
    assert banner.startswith("No digit found in blank.png: the picture is blank")  # which picture, and why
    assert _shown(page) == NOTHING | {"prediction": "No digit found."}
    # a class picked now has no picture to explain: the 7 does not come back
    predictions = page.evaluate("window.nnrefDigits.predictions")
    page.get_by_label("Class for the gradient").select_option("3")
    page.wait_for_timeout(500)
    assert page.evaluate("window.nnrefDigits.predictions") == predictions and _shown(page)["bars"] == 0
    # the next drawing starts on a black pad, is analysed, and the message, no longer true, goes
    header = _analysed(page, lambda: _draw_a_seven(page))
    assert header["prediction"] == "7" and _banner(page) is None and _shown(page)["neighbours"] == 3


@pytest.mark.browser
def test_a_file_that_is_not_a_picture_is_named_in_words(page):
    """Teacher report 3.4: a text file or a PDF gave "…(UnidentifiedImageError: … <_io.BytesIO object at 0x…>)"."""
    _analysed(page, lambda: _draw_a_seven(page))
    files = [
        ("notes.txt", b"this is not a picture\n", "text/plain"),
        ("scan.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "application/pdf"),
    ]
    for name, content, mime in files:
        banner = _said(page, lambda file=(name, content, mime): _upload(page, *file))
        assert banner.startswith(f"{name} is not a picture nnref can read: "), banner
        assert not any(part in banner for part in ("<", "0x", "BytesIO", "Error")), banner
        assert _shown(page) == NOTHING | {"prediction": "Not a picture nnref can read."}
    _analysed(page, lambda: _draw_a_seven(page))
    assert _banner(page) is None


@pytest.mark.browser
def test_without_a_checkpoint_the_page_says_how_to_start_it(chromium):
    """Teacher report 3.5: the server's own message was overwritten by "No connection to nnref lab."."""
    with LabServer() as bare:
        page = _open(chromium, bare.base + "/digits", ready=False)
        _closed(page)
        assert _banner(page) == (
            "This lab has no model for digits: start it with nnref lab --checkpoint runs/<run>/checkpoint.pt"
        )
        page.context.close()


@pytest.mark.browser
def test_a_full_lab_says_so(chromium, backend):
    """Teacher report 3.6: with --max-pages reached, the digit page said "No connection to nnref lab."."""
    with (
        LabServer(digits=backend, max_sessions=1) as full,
        connect(full.base.replace("http", "ws") + "/ws/digits") as ws,
    ):
        assert _recv(ws, "ready")  # the one page the lab takes
        page = _open(chromium, full.base + "/digits", ready=False)
        _closed(page)
        assert _banner(page).startswith("The lab is full: 1 page")
        page.context.close()


@pytest.mark.browser
def test_a_server_that_stops_is_said_as_such_and_the_message_stays(chromium, backend):
    """Teacher report 3.7: the server stopped after the page was ready, and the page said nothing."""
    server = LabServer(digits=backend).__enter__()
    try:
        page = _open(chromium, server.base + "/digits")
        _analysed(page, lambda: _draw_a_seven(page))
        # a message already up: the server's end replaces it
        assert _said(page, lambda: _upload(page, "notes.txt", b"not a picture", "text/plain"))
    finally:
        server.__exit__(None, None, None)
    _closed(page)
    assert _banner(page) == CLOSED
    page.get_by_role("button", name="Clear").click()  # clears the picture's message, not the connection's
    assert _banner(page) == CLOSED
    page.context.close()


@pytest.mark.browser
def test_the_class_for_the_gradient_follows_the_prediction_until_picked_and_again_after_clear(page):
    """Teacher report 3.8: after Clear the picked class stayed, and a 1 was explained by class 3's gradient."""
    picker = page.get_by_label("Class for the gradient")
    header = _analysed(page, lambda: _draw_a_seven(page))
    assert header["target"] == header["best"] == 7
    assert picker.input_value() == "" and picker.locator("option:checked").inner_text() == "the prediction (7)"
    picker.select_option("3")
    page.wait_for_function("() => window.nnrefDigits.last.target === 3")
    assert picker.input_value() == "3"
    _analysed(page, lambda: _stroke(page, (40, 250), (250, 250)))  # a new stroke: the picked class stays
    assert page.evaluate("window.nnrefDigits.last.target") == 3 and picker.input_value() == "3"
    picker.select_option("")  # "the prediction" again
    page.wait_for_function("() => window.nnrefDigits.last.target === window.nnrefDigits.last.best")
    picker.select_option("3")
    page.wait_for_function("() => window.nnrefDigits.last.target === 3")
    page.get_by_role("button", name="Clear").click()
    assert picker.input_value() == ""
    predictions = page.evaluate("window.nnrefDigits.predictions")
    picker.select_option("5")  # nothing on the pad to explain: no answer about the cleared drawing
    page.wait_for_timeout(500)
    assert page.evaluate("window.nnrefDigits.predictions") == predictions and _shown(page)["bars"] == 0
    picker.select_option("")
    header = _analysed(page, lambda: _stroke(page, (140, 40), (140, 240)))  # a 1
    assert header["target"] == header["best"] and picker.input_value() == ""


@pytest.mark.browser
@pytest.mark.parametrize("width,height", [(1280, 720), (1366, 768), (1920, 1080)])
def test_the_results_fit_a_projector_screen(chromium, lab, width, height):
    """Teacher report 4.1: at 1280 × 720 and 1366 × 768 the nearest images were below the fold, the right third
    empty.  The prediction, the ten bars, the gradient and every nearest image: all on the first screen."""
    page = _open(chromium, lab.base + "/digits", width, height)
    _analysed(page, lambda: _draw_a_seven(page))
    boxes = page.evaluate("""() => {
        const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
        const all = s => [...document.querySelectorAll(s)].map(box);
        return {prediction: all('#prediction'), bars: all('#bars li'), gradient: all('#gradient'),
                neighbours: all('#neighbours canvas'), page: [document.documentElement.scrollWidth,
                                                             document.documentElement.scrollHeight]};
    }""")
    assert len(boxes["bars"]) == 10 and len(boxes["neighbours"]) == 3
    off = {
        name: [b for b in found if not (b[0] >= 0 and b[1] >= 0 and b[2] <= width and b[3] <= height)]
        for name, found in boxes.items()
        if name != "page"
    }
    assert off == {"prediction": [], "bars": [], "gradient": [], "neighbours": []}, (width, height)
    assert boxes["page"][0] <= width  # no sideways scrolling either
    _said(page, lambda: _upload(page, "notes.txt", b"not a picture", "text/plain"))
    box = page.locator("#alert").bounding_box()  # a message is on the screen too, beside the pad
    assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height
    page.context.close()


@pytest.mark.browser
def test_the_file_inputs_keyboard_focus_is_visible(page):
    """Teacher report 4.2: Tab reached the (hidden) file input, and nothing on the screen showed it."""
    outline = (
        "(() => { const s = getComputedStyle(document.querySelector('label.file-button')); "
        "return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
    )
    assert page.evaluate(outline)[0] == "none"  # not focused: no outline
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "picture":
            break
    assert page.evaluate("document.activeElement.id") == "picture"
    style, width = page.evaluate(outline)
    assert style != "none" and width >= 2


@pytest.mark.browser
def test_the_playground_link_keeps_the_playgrounds_set_up(chromium, backend):
    """Teacher report 4.3: playground → Draw a digit → The playground lost the set-up (preset, hide=): the links
    carried only the token.  The playground's hash goes along (#from=…) and comes back."""
    with LabServer(digits=backend, token="s3cret") as secured:
        page = _open(chromium, secured.base + "/digits?token=s3cret")  # come straight here: the plain playground
        assert page.get_by_role("link", name="The playground").get_attribute("href") == "/?token=s3cret"
        page.goto(secured.base + "/?token=s3cret#preset=one-layer-on-xor&hide=regularization,checks")
        page.wait_for_function("() => window.nnrefLab && window.nnrefLab.connected")
        hash_ = page.evaluate("location.hash")
        assert "hide=regularization,checks" in hash_
        page.get_by_role("link", name="Draw a digit").click()
        page.wait_for_function("() => window.nnrefDigits && window.nnrefDigits.ready")
        assert page.evaluate("location.pathname + location.search") == "/digits?token=s3cret"
        page.get_by_role("link", name="The playground").click()
        page.wait_for_function("() => window.nnrefLab && window.nnrefLab.connected")
        assert page.evaluate("[location.pathname + location.search, location.hash]") == ["/?token=s3cret", hash_]
        page.context.close()


@pytest.mark.browser
def test_the_digit_page_passes_axe(page):
    from browser import serious_violations

    _analysed(page, lambda: _draw_a_seven(page))
    assert serious_violations(page) == []
    assert _said(page, lambda: _upload(page, "notes.txt", b"not a picture", "text/plain"))  # and with a message up
    assert serious_violations(page) == []
