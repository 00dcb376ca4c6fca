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
@pytest.fixture
def page(backend):
    from browser import new_page, require_browser
    from playwright.sync_api import sync_playwright

    from nnref.run import tbview

    require_browser()
    with LabServer(digits=backend) as lab, sync_playwright() as playwright:
        browser = tbview.open_browser(playwright)
        page = new_page(browser, 1400, 900)
        page.goto(lab.base + "/digits")
        page.wait_for_function("() => window.nnrefDigits && window.nnrefDigits.ready")
        yield page
        browser.close()


def _draw_a_seven(page) -> None:
    """A 7 with the mouse: a bar, then the diagonal, several moves per stroke."""
    box = page.get_by_role("img", name="Draw a digit").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 70, y + 60)
    page.mouse.down()
    page.mouse.move(x + 210, y + 60, steps=12)
    page.mouse.move(x + 120, y + 240, steps=15)
    page.mouse.up()


@pytest.mark.browser
def test_drawing_a_digit_shows_the_prediction_the_neighbours_and_the_gradient(page):
    from browser import pixels

    _draw_a_seven(page)
    page.wait_for_function("() => window.nnrefDigits.neighbours > 0")
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
    assert page.get_by_role("list", name="The nearest training images").get_by_role("img").count() == 0


@pytest.mark.browser
def test_the_digit_page_passes_axe(page):
    from browser import serious_violations

    _draw_a_seven(page)
    page.wait_for_function("() => window.nnrefDigits.neighbours > 0")
    assert serious_violations(page) == []
