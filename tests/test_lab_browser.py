"""nnref lab in a real browser (headless Chromium): the page driven by role and name, as a screen reader would,
its canvases read back pixel by pixel, and axe-core's accessibility rules.

Outside CI a missing browser skips these tests; ``.ci/run`` sets NNREF_REQUIRE_BROWSER=1, so there it fails them.
"""

from __future__ import annotations

import re

import pytest
import torch
from browser import lab_in_browser, lab_page, pixels, require_browser, serious_violations

from nnref.lab.state import SERVER_FIELDS

pytestmark = pytest.mark.browser
require_browser()


@pytest.fixture(scope="module")
def lab():
    with lab_in_browser() as lab:
        yield lab


@pytest.fixture
def page(lab):
    with lab_page(lab) as page:
        yield page


def _open(page, hash_=""):
    page.goto(page.lab.url + hash_)
    page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0")
    return page


def _frames_after(page, count: int) -> None:
    page.wait_for_function("(n) => window.nnrefLab.frames >= n", arg=page.evaluate("window.nnrefLab.frames") + count)


def _shown(page) -> None:
    """Wait until the page has drawn a frame of its latest set-up (the server answers each change with one)."""
    page.wait_for_function("() => window.nnrefLab.sent > 0 && window.nnrefLab.version === window.nnrefLab.sent")


def test_play_redraws_the_heat_map_and_the_epoch_rises(page):
    _open(page, "#preset=one-layer-on-xor")
    before = pixels(page, "canvas.plane")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => window.nnrefLab.epoch > 5")
    assert page.get_by_role("button", name="Pause").is_visible()  # the button says what it does now
    assert pixels(page, "canvas.plane") != before
    assert int(page.locator("#epoch").inner_text().replace(",", "")) >= 5
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("() => !window.nnrefLab.playing")


def test_switching_the_dataset_draws_other_points_and_keeps_them_in_the_url(page):
    _open(page)
    before = pixels(page, "canvas.plane")
    page.get_by_label("Dataset").select_option("spirals")
    page.wait_for_function("() => window.nnrefLab.state().dataset === 'spirals' && window.nnrefLab.dataVersion > 1")
    _shown(page)
    assert "dataset=spirals" in page.url and pixels(page, "canvas.plane") != before


def test_adding_a_layer_and_a_neuron(page):
    _open(page)
    assert page.locator(".node.neuron").count() == 6  # hidden [4, 2]
    page.get_by_role("button", name="Add layer").click()
    page.get_by_role("button", name="Add neuron to layer 1").click()
    page.wait_for_function("() => window.nnrefLab.state().hidden.join() === '5,2,2'")
    _shown(page)
    assert page.locator(".node.neuron").count() == 9
    assert page.get_by_text("3 hidden layers").is_visible() and "hidden=5,2,2" in page.url
    page.get_by_role("button", name="Remove neuron from layer 3").click()
    page.wait_for_function("() => window.nnrefLab.state().hidden.join() === '5,2,1'")
    assert page.get_by_role("button", name="Remove neuron from layer 3").is_disabled()  # at least one neuron


def test_step_takes_one_step(page):
    _open(page)
    page.get_by_role("button", name="Step").click()
    page.wait_for_function("() => window.nnrefLab.epoch > 0")
    assert page.evaluate("window.nnrefLab.epoch") == pytest.approx(1 / 20)  # batch 10 of 200 training points


def test_reloading_the_url_gives_the_same_set_up(page):
    _open(page)
    page.get_by_label("Dataset").select_option("xor")
    page.get_by_label("Learning rate").select_option("0.1")
    page.get_by_role("button", name="Add layer").click()
    page.wait_for_function("() => window.nnrefLab.state().hidden.length === 3")
    _shown(page)
    url, state, picture = page.url, page.evaluate("window.nnrefLab.state()"), pixels(page, "canvas.plane")
    page.goto("about:blank")
    _open(page, url[url.index("#") :])
    _shown(page)
    assert page.evaluate("window.nnrefLab.state()") == state
    assert page.get_by_label("Learning rate").input_value() == "0.1"
    assert pixels(page, "canvas.plane") == picture  # the same seed: the same points, the same initial weights


def test_clicking_the_plane_adds_a_point_of_the_chosen_class(page):
    _open(page)
    points = page.evaluate("window.nnrefLab.points()")
    page.locator("canvas.plane").click(position={"x": 50, "y": 50})  # a built-in dataset's points stay as they are
    page.get_by_text("stay as they are").wait_for()
    assert page.get_by_label("Dataset").input_value() == "circles" and "dataset=circles" in page.url
    assert page.evaluate("window.nnrefLab.points()") == points
    page.get_by_role("button", name="Edit these points").click()  # on purpose: these points, as your own
    page.wait_for_function("() => window.nnrefLab.state().dataset === 'custom'")
    _shown(page)
    assert page.evaluate("window.nnrefLab.points()") == points
    page.get_by_label("Class of new points").select_option("0")
    page.locator("canvas.plane").click(position={"x": 50, "y": 50})
    page.wait_for_function("(n) => window.nnrefLab.points() === n", arg=points + 1)
    box = page.locator("canvas.plane").bounding_box()
    added = page.evaluate("window.nnrefLab.state().points.at(-1)")
    assert added[2] == 0
    assert added[0] == pytest.approx(-6 + 12 * 50 / box["width"], abs=0.05)
    assert added[1] == pytest.approx(6 - 12 * 50 / box["height"], abs=0.05)
    page.get_by_role("spinbutton", name="New point x₁").fill("1.5")
    page.get_by_role("spinbutton", name="New point x₂").fill("-2")
    page.get_by_role("button", name="Add point").click()  # the same, from the keyboard
    page.wait_for_function("(n) => window.nnrefLab.points() === n", arg=points + 2)


def test_side_by_side_shows_three_boundaries_with_their_accuracies(page):
    _open(page, "#preset=one-layer-on-xor")
    page.get_by_label("Model").select_option("compare")
    page.wait_for_function("() => document.querySelectorAll('canvas.plane').length === 3")
    _shown(page)
    captions = page.locator("figcaption").all_inner_texts()
    assert [c.split(":")[0] for c in captions] == ["The line", "Neural network", "k-nearest neighbours"]
    assert all(re.search(r"test accuracy \d+\.\d%", c) for c in captions)
    assert len({pixels(page, f"figure:nth-child({i}) canvas") for i in (1, 2, 3)}) == 3


def test_changing_k_changes_the_knn_picture_from_the_keyboard(page):
    _open(page, "#preset=one-layer-on-xor&model=knn&k=1")
    _shown(page)
    before = pixels(page, "canvas.plane")
    _raise_k_from_the_keyboard(page, 14)
    assert pixels(page, "canvas.plane") != before


def _raise_k_from_the_keyboard(page, presses: int) -> None:
    """k raised by ``presses`` with the arrow key on its slider, then the frame that shows it drawn."""
    k = page.evaluate("window.nnrefLab.state().k")
    slider = page.get_by_label("Neighbours k")
    slider.focus()
    for _ in range(presses):
        page.keyboard.press("ArrowRight")
    slider.dispatch_event("change")
    page.wait_for_function("(k) => window.nnrefLab.state().k === k", arg=k + presses)
    _shown(page)


def test_a_frame_that_changes_only_knn_computes_no_network_again(page):
    """Side by side and paused: a new k sends a frame with the same networks' weights, whose pictures the page keeps
    (nothing traced again); a Step changes the weights, and both networks are traced again."""
    _open(page, "#preset=one-layer-on-xor&model=compare&k=1")
    _shown(page)
    frames, traced = page.evaluate("[window.nnrefLab.frames, window.nnrefLab.traced]")
    before = pixels(page, "figure:nth-child(3) canvas")  # (the plots: the line, the MLP, KNN)
    _raise_k_from_the_keyboard(page, 6)
    assert page.evaluate("window.nnrefLab.frames") > frames and pixels(page, "figure:nth-child(3) canvas") != before
    assert page.evaluate("window.nnrefLab.traced") == traced  # KNN's picture changed; the networks' did not
    page.get_by_role("button", name="Step").click()
    page.wait_for_function("(n) => window.nnrefLab.traced === n + 2", arg=traced)


def test_the_gradient_check_shows_an_error_below_one_in_a_million(page):
    _open(page, "#preset=deeper-net-on-spirals")
    page.get_by_role("button", name="Check the gradient").click()
    status = page.get_by_role("status", name="Gradient check")
    status.filter(has_text="central").wait_for()
    central = float(re.search(r"error ([0-9.e+-]+) with central", status.inner_text()).group(1))
    assert central < 1e-6


def test_the_points_are_drawn_over_the_heat_map_once_while_it_changes(page):
    """The heat map is a canvas of the frame's grid that the page scales to the plane; the points lie on a canvas
    over it, drawn again only when they change (here: the test points shown), not on every frame."""
    _open(page, "#preset=deeper-net-on-spirals")
    _shown(page)
    assert page.locator("canvas.plane").evaluate("c => c.width") == page.evaluate("window.nnrefLabFrame().resolution")
    marks, before = page.evaluate("window.nnrefLab.marks"), pixels(page, "canvas.plane")
    page.get_by_role("button", name="Play").click()
    _frames_after(page, 10)
    page.get_by_role("button", name="Pause").click()
    assert pixels(page, "canvas.plane") != before and page.evaluate("window.nnrefLab.marks") == marks
    test_point = """canvas => {  // the alpha of the marks' pixel at the first test point
        const [x1, x2] = window.nnrefLab.data().test[0];
        return canvas.getContext('2d').getImageData(Math.floor((x1 + 6) / 12 * canvas.width),
                                                    Math.floor((6 - x2) / 12 * canvas.height), 1, 1).data[3];
    }"""
    assert page.locator("canvas.marks").evaluate(test_point) == 0  # (test data not shown)
    page.get_by_label("Show test data").check()
    page.wait_for_function("(n) => window.nnrefLab.marks === n + 1", arg=marks)
    assert page.locator("canvas.marks").evaluate(test_point) == 255


_CHART = """async (count) => {
  const {LossChart} = await import("/static/lab/chart.js");
  const make = () => Object.assign(document.createElement("canvas"), {width: 230, height: 50});
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const chart = new LossChart(make());
  for (let i = 0; i < count; i++) {  // a noisy loss curve, its test loss missing now and then
    const train = 0.7 * Math.exp(-i / 300) + 0.05 + 0.08 * random();
    chart.add(i, train, i % 97 === 5 ? null : train * 1.1 + 0.03 * random());
  }
  const points = chart.points, w = 230, h = 50, pad = 4;
  const reference = make(), ctx = reference.getContext("2d");  // the line through every point, as drawn before
  ctx.strokeStyle = "#d0d0d0";
  ctx.lineWidth = 1.5;
  ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
  const top = Math.max(1e-9, ...points.flatMap(p => [p[1], p[2]]).filter(v => v !== null));
  const x = e => pad + ((e - points[0][0]) / (points.at(-1)[0] - points[0][0])) * (w - 2 * pad);
  const y = v => h - pad - (v / top) * (h - 2 * pad);
  for (const [series, colour] of [[1, "#333333"], [2, "#aa5500"]]) {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    points.filter(p => p[series] !== null).forEach((p, i) => ctx[i ? "lineTo" : "moveTo"](x(p[0]), y(p[series])));
    ctx.stroke();
  }
  const mine = chart.canvas.getContext("2d").getImageData(0, 0, w, h).data, theirs = ctx.getImageData(0, 0, w, h).data;
  const inked = (data, col, row) => data[(row * w + col) * 4 + 3] > 0;
  const columns = (data) => [...Array(w).keys()].map(col => [...Array(h).keys()].some(row => inked(data, col, row)));
  let differ = 0, missed = 0;
  for (let i = 0; i < mine.length; i++) differ += mine[i] !== theirs[i];
  for (const p of points) {
    for (const s of [1, 2]) if (p[s] !== null && !inked(mine, Math.floor(x(p[0])), Math.floor(y(p[s])))) missed++;
  }
  return {kept: points.length, differ, missed, sameColumns: String(columns(mine)) === String(columns(theirs))};
}"""


def test_the_loss_chart_shows_every_point_of_a_long_curve(page):
    """The chart draws each series through four points per pixel column (first, lowest, highest, last): with no more
    points than columns it is the line through every point, pixel for pixel; with 1,999 it keeps them all, and every
    one of them is on the line drawn, in the same columns as the line through all of them."""
    _open(page)
    short = page.evaluate(_CHART, 150)
    assert short == {"kept": 150, "differ": 0, "missed": 0, "sameColumns": True}
    long = page.evaluate(_CHART, 1999)
    assert long["kept"] == 1999 and long["missed"] == 0 and long["sameColumns"]


def test_play_works_from_the_keyboard(page):
    _open(page)
    page.get_by_role("button", name="Play").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.nnrefLab.playing && window.nnrefLab.epoch > 1")


@pytest.mark.parametrize("hash_", ["", "#preset=the-line", "#model=compare&dataset=spirals&classes=3"])
def test_axe_finds_no_serious_or_critical_violation(page, hash_):
    _open(page, hash_)
    _shown(page)
    assert serious_violations(page) == []


def test_the_page_reads_its_state_from_the_server(page):
    """Defaults, menus, sliders and presets on the page are the server's definition (nnref/lab/state.py)."""
    from nnref.lab.state import FIELDS, PRESETS

    _open(page)
    state = page.evaluate("window.nnrefLab.state()")
    assert state == {name: field.default for name, field in FIELDS.items()}
    for name in ("model", "activation", "regularization", "metric", "dataset", "lr", "regRate", "momentum"):
        shown = page.locator(f"#{name} option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
        field = FIELDS[name]
        values = [float(v) if field.kind == "number" else v for v, _ in shown]  # (1e-05 is 0.00001 in JavaScript)
        labels = [t for _, t in shown] if field.labels else [float(t) for _, t in shown]
        assert values == list(field.options) and labels == list(field.labels or field.options), name
    for name in ("ratio", "noise", "samples", "batch", "k"):
        got = page.locator(f"#{name}").evaluate("e => [Number(e.min), Number(e.max), Number(e.step)]")
        assert got == [FIELDS[name].lo, FIELDS[name].hi, FIELDS[name].step], name
    titles = page.get_by_role("navigation", name="The lecture's demos").get_by_role("link").all_inner_texts()
    assert titles[: len(PRESETS)] == [p["title"] for p in PRESETS.values()]


def test_a_field_added_in_python_appears_on_the_page_with_its_default(page, monkeypatch):
    from nnref.lab import state

    monkeypatch.setitem(state.FIELDS, "colourBlind", state.Field("flag", True, "page", "a field added in Python"))
    _open(page)
    assert page.evaluate("window.nnrefLab.state().colourBlind") is True
    assert "colourBlind=true" in page.url


# --------------------------------------------------------------------------------------------------
# The page draws from the weights a frame carries: the same pictures as the server's model
# --------------------------------------------------------------------------------------------------
def _server_pictures(state: dict, header: dict):
    """The server's models (nnref.plane's) with the weights of the frame: each model's class probabilities over the
    heat map's grid, and each hidden neuron's picture on the thumbnail grid (bytes 128 ± 127 · output / max)."""
    from nnref import plane
    from nnref.lab.session import RESOLUTION, THUMBNAIL, PlaygroundSession

    session = PlaygroundSession({k: v for k, v in state.items() if k in SERVER_FIELDS})
    grid, step, maps, neurons = plane.grid(resolution=RESOLUTION), RESOLUTION // THUMBNAIL, [], []
    for entry in header["models"]:
        model = session.models[entry["kind"]]
        if entry["kind"] == "knn":
            maps.append(model.predict_proba(grid))
            continue
        layers = entry.get("layers", header["network"]["layers"])
        with torch.no_grad():
            for linear, sent in zip(model.linears(), layers):
                linear.weight.copy_(torch.tensor(sent["w"]))
                linear.bias.copy_(torch.tensor(sent["b"]))
        hidden, probs = model.trace(grid)
        maps.append(probs)
        if "layers" not in entry:
            for out in hidden:
                out = out.reshape(RESOLUTION, RESOLUTION, -1)[::step, ::step]
                scaled = 128 + 127 * out / out.abs().amax((0, 1)).clamp_min(1e-12)
                neurons.append(scaled.round().clamp(0, 255).permute(2, 0, 1).flatten())
    return maps, neurons


def test_the_page_s_fast_tanh_is_math_tanh_to_within_3e_8(page):
    """model.js's tanh (a rational function: no Math.tanh per neuron and point) against Math.tanh over [-30, 30]."""
    _open(page)
    worst, kept_nan, ends = page.evaluate("""async () => {
        const {tanh} = await import("/static/lab/model.js");
        let worst = 0;
        for (let i = -300000; i <= 300000; i++) worst = Math.max(worst, Math.abs(tanh(i / 1e4) - Math.tanh(i / 1e4)));
        return [worst, Number.isNaN(tanh(NaN)), [tanh(-Infinity), tanh(0), tanh(Infinity)]];
    }""")
    assert worst <= 3e-8 and kept_nan
    assert ends[1] == 0 and -1 <= ends[0] < -1 + 3e-8 and 1 - 3e-8 < ends[2] <= 1


@pytest.mark.parametrize(
    "hash_",
    [
        "#preset=deeper-net-on-spirals",
        "#model=compare&dataset=spirals&classes=3&activation=relu&hidden=5,3",
        "#dataset=xor&classes=4&activation=sigmoid&hidden=6,4&inputs=x1,x2,x1x2&lr=0.3",
    ],
)
def test_the_page_s_pictures_are_the_server_s_model_on_the_frame_s_weights(page, hash_):
    _open(page, hash_)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => window.nnrefLab.epoch > 3")
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("() => !window.nnrefLab.playing && !window.nnrefLabFrame().playing")
    header, drawn = page.evaluate("() => [window.nnrefLabFrame(), window.nnrefLabPictures()]")
    assert header["epoch"] > 3
    maps, neurons = _server_pictures(page.evaluate("() => window.nnrefLab.state()"), header)
    assert len(drawn["maps"]) == len(maps) and len(drawn["neurons"]) == len(neurons) > 0
    for mine, theirs in zip(drawn["maps"], maps):
        assert (torch.tensor(mine, dtype=torch.float64) / 255 - theirs.flatten()).abs().max() <= 1 / 255
    for mine, theirs in zip(drawn["neurons"], neurons):
        assert (torch.tensor(mine) - theirs).abs().max() <= 1  # the same picture, up to a byte's rounding


def test_a_page_playing_among_classmates_draws_the_weights_sent_as_float32(page):
    """With classmates on the same set-up, the page trains in their group and its frames carry the weights as
    float32 (nnref.lab.crowd's look): the page puts them back into its layers (static/socket.js) and draws the
    server's model on them."""
    import threading

    from nnref.bench.classroom import LARGEST_PRESET, SAME, play_class

    _open(page, f"#preset={LARGEST_PRESET}")
    classmates = threading.Thread(target=play_class, args=(page.lab.url, [SAME] * 3, 8.0), daemon=True)
    classmates.start()
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => (window.nnrefLabFrame()?.floats ?? 0) > 0 && window.nnrefLab.epoch > 1")
    header, drawn = page.evaluate("() => [window.nnrefLabFrame(), window.nnrefLabPictures()]")
    page.get_by_role("button", name="Pause").click()
    classmates.join()
    assert header["floats"] == sum(len(layer["w"]) * (len(layer["w"][0]) + 1) for layer in header["network"]["layers"])
    maps, neurons = _server_pictures(page.evaluate("() => window.nnrefLab.state()"), header)
    for mine, theirs in zip(drawn["maps"], maps):
        assert (torch.tensor(mine, dtype=torch.float64) / 255 - theirs.flatten()).abs().max() <= 1 / 255
    for mine, theirs in zip(drawn["neurons"], neurons):
        assert (torch.tensor(mine) - theirs).abs().max() <= 1
