"""nnref lab's /mnist page in headless Chromium, driven by role and name as a screen reader would: Play, Pause,
Step, Reset, the templates read back pixel by pixel, the gallery's colours, one digit's forward and backward pass,
the export read by ``nnref eval``, the page without MNIST, axe-core.

On tiny synthetic MNIST (600 training digits whose class is a bar: easy, so its "past 85%" only shows that the page
trains and reports); the claim on the real digits is ``test_on_the_real_mnist_…`` (marked ``mnist``).
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from browser import new_page, pixels, require_browser, serious_violations

from nnref.lab.mnist.dataset import SharedMNIST
from nnref.lab.server import LabServer

pytestmark = pytest.mark.browser
require_browser()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from nnref.bench import chromium

    with sync_playwright() as playwright:
        browser = chromium.open_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from conftest import make_tiny_mnist

    return make_tiny_mnist(tmp_path_factory.mktemp("mnist") / "data")


@pytest.fixture(scope="module")
def lab(tiny_root, browser):
    with LabServer(mnist=SharedMNIST(tiny_root, download=False)) as server:
        yield server, browser


@pytest.fixture
def page(lab):
    server, browser = lab
    page = new_page(browser)
    page.lab = server
    yield page
    page.context.close()


def _open(page, hash_=""):
    page.goto(page.lab.base + "/mnist" + hash_)
    _shown(page)
    return page


def _shown(page) -> None:
    """Wait until the page has drawn a frame of its latest set-up."""
    page.wait_for_function("() => { const m = window.nnrefMnist; return m && m.frames > 0 && m.version === m.sent; }")


def _mnist(page, expression: str):
    return page.evaluate(f"() => window.nnrefMnist.{expression}")


def _templates(page) -> list[int]:
    return [pixels(page, f"canvas[aria-label='Template of {k}']") for k in range(10)]


def _validation_accuracy(page) -> float:
    return float(page.get_by_role("status", name="Validation accuracy").inner_text().rstrip("%")) / 100


def test_the_controls_have_their_names(page):
    _open(page)
    for name in ("Play", "Step", "Reset"):
        assert page.get_by_role("button", name=name, exact=True).is_visible()
    for name in ("Model", "Learning rate", "Batch size"):
        assert page.get_by_role("combobox", name=name, exact=True).is_visible()
    assert [page.get_by_role("img", name=f"Template of {k}", exact=True).count() for k in range(10)] == [1] * 10
    assert page.get_by_role("table", name="Confusion matrix", exact=True).is_visible()
    assert page.get_by_role("region", name="Test digits").get_by_role("button").count() == 24


def test_play_raises_the_validation_accuracy_past_85_percent_and_pause_measures_the_test_set(page):
    _open(page)
    start = _validation_accuracy(page)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => window.nnrefMnist.valAccuracy > 0.85")
    assert page.get_by_role("button", name="Pause").is_visible()
    assert _validation_accuracy(page) > 0.85 > start
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("() => !window.nnrefMnist.playing && window.nnrefMnist.test.step === window.nnrefMnist.step")
    shown = page.locator("#test-accuracy").inner_text()
    assert re.match(r"\d+\.\d% \(200 digits, step [\d,]+\)", shown)


def test_the_templates_change_while_playing_and_stop_on_pause(page):
    _open(page)
    first = _templates(page)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("(n) => window.nnrefMnist.step > n", arg=50)
    playing = _templates(page)
    assert all(a != b for a, b in zip(first, playing))
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("() => !window.nnrefMnist.playing")
    paused, step = _templates(page), _mnist(page, "step")
    page.wait_for_timeout(600)
    assert _templates(page) == paused and _mnist(page, "step") == step


def test_step_advances_by_exactly_one_batch(page):
    _open(page)
    page.get_by_role("combobox", name="Batch size").select_option("32")
    _shown(page)
    page.get_by_role("button", name="Step", exact=True).click()
    page.wait_for_function("() => window.nnrefMnist.step === 1")
    assert _mnist(page, "images") == 32 and page.locator("#images-count").inner_text() == "32"
    page.keyboard.press("s")  # the same from the keyboard
    page.wait_for_function("() => window.nnrefMnist.step === 2")
    assert _mnist(page, "images") == 64 and "batch=32" in page.url


def test_reset_gives_back_the_first_frames_templates(page):
    _open(page, "#lr=0.3&seed=4")
    first = _templates(page)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => window.nnrefMnist.step > 20")
    page.get_by_role("button", name="Reset").click()
    page.wait_for_function("() => window.nnrefMnist.step === 0 && !window.nnrefMnist.playing")
    assert _templates(page) == first
    page.get_by_role("button", name="New weights").click()
    page.wait_for_function("(g) => window.nnrefMnist.generation > g", arg=_mnist(page, "generation"))
    assert _templates(page) != first


def test_the_gallerys_colours_follow_the_predictions(page):
    _open(page)
    for when in ("untrained", "trained"):
        gallery, labels = _mnist(page, "gallery"), _mnist(page, "labels")
        shown = (
            page.get_by_role("region", name="Test digits")
            .locator("button.digit")
            .evaluate_all("bs => bs.map(b => [b.className, getComputedStyle(b).borderTopColor, b.innerText])")
        )
        for (classes, border, text), top, label in zip(shown, gallery, labels):
            right = top[0][0] == label
            assert ("right" in classes.split()) == right and ("wrong" in classes.split()) != right, when
            assert border == ("rgb(46, 125, 50)" if right else "rgb(198, 40, 40)"), when
            assert text.startswith(f"{'✓' if right else '✗'} {top[0][0]} "), when
        if when == "untrained":
            page.get_by_role("button", name="Play").click()
            page.wait_for_function("() => window.nnrefMnist.valAccuracy > 0.9")
            page.get_by_role("button", name="Pause").click()
            page.wait_for_function("() => !window.nnrefMnist.playing")


def test_a_chosen_digit_shows_its_probabilities_and_its_gradient(page):
    _open(page, "#model=mlp&hidden=32&activation=tanh")
    labels = _mnist(page, "labels")
    gallery = page.get_by_role("region", name="Test digits")
    gallery.get_by_role("button").nth(3).click()
    page.wait_for_function("() => window.nnrefMnist.digit && window.nnrefMnist.digit.source === 'test digit 4'")
    digit = _mnist(page, "digit")
    assert digit["label"] == digit["target"] == labels[3] and digit["hidden"] == [32]
    bars = page.get_by_role("list", name="Probabilities").get_by_role("listitem")
    assert bars.count() == 10 and bars.nth(digit["best"]).get_attribute("aria-label").startswith(
        f"class {digit['best']}:"
    )
    gradient = page.get_by_role("img", name="−dL/dx: how each pixel would change the loss")
    assert gradient.evaluate("c => new Set(c.getContext('2d').getImageData(0, 0, 28, 28).data).size") > 10
    gallery.get_by_role("button").nth(5).focus()
    page.keyboard.press("Enter")  # from the keyboard
    page.wait_for_function("() => window.nnrefMnist.digit.source === 'test digit 6'")
    box = page.get_by_role("img", name="Draw a digit").bounding_box()
    page.mouse.move(box["x"] + 70, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 70, box["y"] + 120, steps=8)
    page.mouse.up()
    page.wait_for_function("() => window.nnrefMnist.digit.source === 'your drawing'")
    assert _mnist(page, "digit")["label"] is None


def test_the_exported_model_is_read_by_nnref_eval(page, tiny_root, tmp_path):
    from nnref.cli import main

    _open(page)
    page.get_by_role("button", name="Step", exact=True).click()
    page.wait_for_function("() => window.nnrefMnist.step === 1 && window.nnrefMnist.test.step === 1")
    shown = _mnist(page, "test")["accuracy"]
    with page.expect_download() as download:
        page.get_by_role("button", name="Export model (.pt)").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", str(path), "--data-root", str(tiny_root), "--no-download", "--device", "cpu"]) == 0
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", out.getvalue()).group(1)) / 100
    assert path.name == "nnref-mnist-softmax-step1.pt" and accuracy == pytest.approx(shown, abs=1e-4)


@pytest.mark.parametrize("hash_", ["", "#model=mlp&hidden=64,32&activation=sigmoid"])
def test_axe_finds_no_serious_or_critical_violation(page, hash_):
    _open(page, hash_)
    page.get_by_role("region", name="Test digits").get_by_role("button").first.click()
    page.wait_for_function("() => window.nnrefMnist.digit !== null")
    assert serious_violations(page) == []


def test_without_mnist_the_page_says_how_to_get_it_and_the_playground_works(browser, tmp_path):
    with LabServer(mnist=SharedMNIST(tmp_path / "empty", download=False)) as server:
        page = new_page(browser)
        page.goto(server.base + "/mnist")
        page.wait_for_function("() => window.nnrefMnist && window.nnrefMnist.unavailable")
        region = page.get_by_role("region", name="MNIST is not available to this lab")
        assert region.is_visible() and "--data-root" in region.inner_text()
        assert str(tmp_path / "empty") in page.locator("#unavailable-message").inner_text()
        assert page.get_by_role("button", name="Play").is_disabled()
        assert serious_violations(page) == []
        page.goto(server.url)
        page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0")


@pytest.mark.mnist
def test_on_the_real_mnist_play_passes_85_percent_and_a_learning_rate_of_100_diverges(browser, real_mnist):
    with LabServer(mnist=SharedMNIST(real_mnist, download=False)) as server:
        page = new_page(browser)
        page.lab = server
        _open(page)
        page.get_by_role("button", name="Play").click()
        page.wait_for_function("() => window.nnrefMnist.valAccuracy > 0.85", timeout=60_000)
        assert _validation_accuracy(page) > 0.85
        page.get_by_role("combobox", name="Learning rate").select_option("100")
        page.wait_for_function("() => !window.nnrefMnist.playing", timeout=60_000)
        notices = page.get_by_role("status", name="What the lab says about this run")
        assert "Training diverged" in notices.inner_text() and "Lower the learning rate" in notices.inner_text()
        page.get_by_role("combobox", name="Learning rate").select_option("0.1")
        page.wait_for_function("() => window.nnrefMnist.step === 0")
        assert "Training diverged" not in notices.inner_text()


def test_the_playgrounds_link_opens_the_page_with_its_token(browser, tiny_root):
    with LabServer(token="classroom", mnist=SharedMNIST(tiny_root, download=False)) as server:
        page = new_page(browser)
        page.goto(server.url)
        page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0")
        page.get_by_role("navigation", name="The lecture's demos").get_by_role("link", name="MNIST, live").click()
        page.wait_for_url("**/mnist?token=classroom&from=*")
        _shown(page)  # (its socket carried the token)
        page.get_by_role("link", name="The playground").click()
        page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0")
