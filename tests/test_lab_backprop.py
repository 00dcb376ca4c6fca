"""The backward pass, live, and weights by hand, in headless Chromium: the lecture's worked example read from the
page's table, an instance picked by mouse and by keyboard, weights typed and dragged, Apply, the state in the URL,
axe-core."""

from __future__ import annotations

import pytest
from browser import lab_in_browser, lab_page, open_lab, require_browser, serious_violations, shown

pytestmark = pytest.mark.browser
require_browser()


@pytest.fixture(scope="module")
def lab():
    with lab_in_browser() as lab:
        yield lab


@pytest.fixture
def page(lab):
    with lab_page(lab, 1280, 720) as page:  # a projector's screen
        yield page


def _table(page, name: str) -> list[list[str]]:
    rows = page.locator(f"#{name} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.textContent))"
    )
    return [[c.replace("−", "-") for c in row] for row in rows]


def _frame_weights(page):
    return page.evaluate("() => window.nnrefLab.state().weights")


def test_the_worked_backward_pass_preset_shows_the_slides_numbers(page):
    open_lab(page, "#preset=worked-backward-pass")
    assert page.get_by_role("button", name="Backward pass").get_attribute("aria-pressed") == "true"
    (neuron,) = _table(page, "backprop-neurons")  # Layer, Neuron, z, a, dL/da, da/dz, dL/dz
    assert neuron[4] == "-1.900" and neuron[5] == "0.249"
    params = {row[1]: row for row in _table(page, "backprop-params")}  # Layer, Parameter, value, factors, dL/dw, …
    assert params["w₁ (X₁)"][4] == "-0.237" and params["w₂ (X₂)"][4] == "-0.284" and params["b"][4] == "-0.474"
    assert params["w₁ (X₁)"][3] == "0.500 × 0.249 × -1.900 ="  # the product of the local gradients
    note = page.locator("#backprop-note").inner_text()
    assert "rounds a(1 − a) = 0.249 to 0.24" in note and "−0.22" in note
    assert serious_violations(page) == []
    # on the projector's 1280 × 720, every column of both tables shows without scrolling sideways (the new value too)
    widths = page.locator(".backprop .table-scroll").evaluate_all("els => els.map(e => e.scrollWidth - e.clientWidth)")
    assert len(widths) == 2 and all(w <= 1 for w in widths), widths


def test_apply_makes_the_update_the_models_weights(page):
    open_lab(page, "#preset=worked-backward-pass")
    new = {row[1]: row[6] for row in _table(page, "backprop-params")}
    page.get_by_role("button", name="Apply: w ← w − α dL/dw").click()
    page.wait_for_function("() => !document.querySelector('#backprop-params tbody').textContent.includes('0.200')")
    after = {row[1]: row[2] for row in _table(page, "backprop-params")}
    assert after == new  # the values the update column promised, one step of α = 1


def test_an_instance_is_picked_with_the_mouse_and_with_the_keyboard(page):
    open_lab(page, "#preset=one-layer-on-xor&backprop=true")
    data = page.evaluate("() => JSON.parse(JSON.stringify(window.nnrefLab.state()))")
    assert data["backprop"] is True and data["instance"] == []
    box = page.locator("canvas.plane").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)  # (3, 3)
    page.wait_for_function("() => window.nnrefLab.state().instance.length === 3")
    shown(page)
    picked = page.evaluate("() => window.nnrefLab.state().instance")
    assert abs(picked[0] - 3) < 0.4 and abs(picked[1] - 3) < 0.4 and "instance=" in page.url
    assert page.locator("#backprop-neurons tbody tr").count() == 4 + 1  # four hidden neurons and the output
    page.locator("body").focus()
    page.keyboard.press("]")  # the next training point
    page.wait_for_function("(p) => window.nnrefLab.state().instance[0] !== p", arg=picked[0])
    page.get_by_role("button", name="On a stage").click()  # backward through the output layer
    assert page.locator(".unit.output.current").count() == 1
    assert page.locator("#backprop-params tr.current").count() == 5  # four weights and the bias of the output


def test_a_neurons_weights_are_typed_from_the_keyboard_and_kept_in_the_url(page):
    open_lab(page, "#preset=one-layer-on-xor")
    neuron = page.get_by_role("button", name="Layer 1, neuron 2")
    neuron.focus()
    assert "a = tanh(" in page.locator("#link-tooltip").inner_text()  # its formula, with its numbers
    page.keyboard.press("Enter")
    field = page.get_by_label("weight from X₁")
    assert field.evaluate("e => e === document.activeElement")
    field.fill("0.5")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.nnrefLab.state().weights.length > 0")
    shown(page)
    assert [0, 1, 0, 0.5] in _frame_weights(page) and "weights=" in page.url
    assert page.evaluate("() => window.nnrefLabFrame().network.layers[0].w[1][0]") == 0.5
    page.reload()
    shown(page)
    assert page.evaluate("() => window.nnrefLabFrame().network.layers[0].w[1][0]") == 0.5


def test_the_line_by_hand_typed_and_dragged(page):
    open_lab(page, "#preset=fit-the-line-by-hand")
    before, points = page.locator("#losses").inner_text(), page.evaluate("() => window.nnrefLab.points()")
    page.get_by_label("w₂").fill("2")
    page.get_by_label("w₂").dispatch_event("change")
    page.wait_for_function("() => window.nnrefLabFrame().models[0].line.w[1] === 2")
    assert page.locator("#losses").inner_text() != before  # the cross-entropy, as the line moves
    line = page.evaluate("() => window.nnrefLabFrame().models[0].line")
    canvas = page.locator("canvas.plane").first
    box = canvas.bounding_box()
    w1, w2, b = line["w"][0], line["w"][1], line["b"]
    x = 0.0
    y = -(w1 * x + b) / w2  # a point on the line, in the middle of the plane
    px, py = box["x"] + (x + 6) / 12 * box["width"], box["y"] + (6 - y) / 12 * box["height"]
    page.mouse.move(px, py)
    page.mouse.down()
    page.mouse.move(px, py + 60, steps=6)
    page.mouse.up()
    page.wait_for_function("(b) => Math.abs(window.nnrefLabFrame().models[0].line.b - b) > 0.5", arg=b)
    moved = page.evaluate("() => window.nnrefLabFrame().models[0].line")
    assert moved["w"] == pytest.approx(line["w"], abs=1e-3)  # moved parallel to itself
    assert page.evaluate("() => window.nnrefLab.points()") == points  # a drag adds no point
