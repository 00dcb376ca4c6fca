"""The lab as a teacher uses it, in headless Chromium: every knob while playing, your own points and CSV, messages
that stay true, a projector's screen, the keyboard alone, a classroom's hidden controls (issue 26's cases)."""

from __future__ import annotations

import json

import pytest
from browser import lab_in_browser, lab_page, new_page, open_lab, require_browser, shown

from nnref.lab.server import LabServer
from nnref.lab.state import PRESETS

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


def _lab(page, expression: str):
    return page.evaluate(f"() => window.nnrefLab.{expression}")


def _epoch_after(page, epoch: float) -> None:
    page.wait_for_function("(e) => window.nnrefLab.epoch > e", arg=epoch)


# --------------------------------------------------------------------------------------------------
# Knobs
# --------------------------------------------------------------------------------------------------
RECIPE = [("lr", "0.1"), ("momentum", "0.5"), ("regularization", "L2"), ("regRate", "0.01")]


def test_play_then_every_recipe_control_the_epoch_keeps_rising(page):
    open_lab(page, "#preset=one-layer-on-xor")
    page.get_by_role("button", name="Play").click()
    _epoch_after(page, 2)
    for control, value in RECIPE:
        before = _lab(page, "epoch")
        page.locator(f"#{control}").select_option(value)
        shown(page)  # the first frame that shows the change
        assert _lab(page, "epoch") >= before, control
        assert _lab(page, "playing"), control
        _epoch_after(page, _lab(page, "epoch") + 0.5)
    before = _lab(page, "epoch")
    page.locator("#batch").fill("20")  # a slider, as the keyboard or the mouse sets it
    page.locator("#batch").dispatch_event("change")
    shown(page)
    assert _lab(page, "epoch") >= before and _lab(page, "playing")


def test_a_network_change_starts_a_new_network_paused_and_a_new_loss_curve(page):
    open_lab(page, "#preset=one-layer-on-xor")
    page.get_by_role("button", name="Play").click()
    _epoch_after(page, 3)
    page.get_by_role("button", name="Add neuron to layer 1").click()
    shown(page)
    assert _lab(page, "epoch") == 0 and not _lab(page, "playing")
    assert page.get_by_role("button", name="Play").is_visible()


# --------------------------------------------------------------------------------------------------
# Your own points, and CSV
# --------------------------------------------------------------------------------------------------
def _click_plane(page, x1: float, x2: float) -> None:
    box = page.locator("canvas.plane").first.bounding_box()
    page.mouse.click(box["x"] + (x1 + 6) / 12 * box["width"], box["y"] + (6 - x2) / 12 * box["height"])


def test_your_own_points_start_on_an_empty_plane_and_every_point_stays_where_you_put_it(page):
    open_lab(page, "#preset=one-layer-on-xor")
    page.get_by_role("button", name="Play").click()
    _epoch_after(page, 1)
    page.get_by_label("Dataset").select_option("custom")
    shown(page)
    assert _lab(page, "points()") == 0 and page.locator("canvas.plane").count() == 1  # a plane to click on
    assert not _lab(page, "playing") and "Test loss" not in page.locator("#losses").inner_text()
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => document.querySelector('#notices').textContent.includes('Nothing to train yet')")
    placed = [(1, 1), (-2, -2), (3, -3), (-3, 3), (4, 4), (-4, -1)]
    for i, (x1, x2) in enumerate(placed):
        page.get_by_label("Class of new points").select_option(str(i % 2))
        _click_plane(page, x1, x2)
        page.wait_for_function("(n) => window.nnrefLab.points() === n", arg=i + 1)
        shown(page)  # (the frame that shows the point: the plot may take another size once the notice goes)
        train = _lab(page, "state().points")
        assert len(train) == i + 1 and all(len(p) == 3 for p in train)  # every one a training point: shown
        for (a, b), p in zip(placed[: i + 1], train):
            assert abs(p[0] - a) < 0.1 and abs(p[1] - b) < 0.1
    page.get_by_label("New points are for").select_option("test")
    _click_plane(page, 0, 5)
    page.wait_for_function("() => window.nnrefLab.points() === 7")
    assert _lab(page, "state().points")[-1][3] == 1 and page.get_by_label("Show test data").is_checked()


def test_csv_export_then_import_gives_back_the_same_points_and_split(page, tmp_path):
    open_lab(page, "#dataset=xor&samples=60&ratio=70")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export data (CSV)").click()
    exported = tmp_path / "points.csv"
    download.value.save_as(exported)
    before = page.evaluate("() => ({train: window.nnrefLab.points()})")
    train_before = json.loads(page.evaluate("() => JSON.stringify(window.nnrefLab.state())"))
    assert train_before["dataset"] == "xor"
    page.get_by_label("Import points (CSV)").set_input_files(str(exported))
    page.wait_for_function("() => window.nnrefLab.state().dataset === 'custom'")
    shown(page)
    points = _lab(page, "state().points")
    rows = exported.read_text().splitlines()[1:]
    assert len(points) == len(rows) == before["train"] == 60
    assert sum(len(p) > 3 for p in points) == sum(r.endswith(",test") for r in rows) == 18  # 30% test, as exported
    for p, row in zip(points, rows):
        x1, x2, c, split = row.split(",")
        assert [p[0], p[1], p[2]] == [float(x1), float(x2), int(c)] and (len(p) > 3) == (split == "test")


CSV_CASES = [
    ("x1,x2,y\n1,1,1\n-1,-1,-1\n2,2,1\n-2,-2,-1\n", 4, "labels −1 and 1 read as classes 0 and 1", [1, 0, 1, 0]),
    ('"x1","x2","class"\n"1.0","1.0","0"\n"2","-2","1"\n', 2, "Imported 2 points", [0, 1]),
    ("x1;x2;class\n1,5;2;0\n-1;-1;1\n", 2, "Imported 2 points", [0, 1]),
    ("1,1,0\n7,1,0\n1,1,5\nnan,1,0\n1,1,1.5\n2,2,1\n", 2, "dropped 1 row off the plane", [0, 1]),
]


@pytest.mark.parametrize("text,count,said,classes", CSV_CASES, ids=["-1/1", "quoted", "semicolons", "bad rows"])
def test_csv_import_reads_what_people_bring_and_says_what_it_dropped(page, tmp_path, text, count, said, classes):
    open_lab(page)
    path = tmp_path / "mine.csv"
    path.write_text(text)
    page.get_by_label("Import points (CSV)").set_input_files(str(path))
    page.wait_for_function("() => window.nnrefLab.csv !== null")
    report = page.locator("#notices").inner_text()
    assert said in report, report
    assert [p[2] for p in _lab(page, "state().points")] == classes and len(_lab(page, "state().points")) == count
    if "bad rows" in said or "dropped" in said:
        for reason in ("with a class outside 0–3", "not numbers", "off the plane"):
            assert reason in report, report


def test_csv_beyond_a_thousand_points_says_how_many_it_dropped(page, tmp_path):
    open_lab(page)
    path = tmp_path / "many.csv"
    path.write_text("x1,x2,class\n" + "".join(f"{(i % 100) / 20},{(i // 100) / 300},{i % 2}\n" for i in range(1500)))
    page.get_by_label("Import points (CSV)").set_input_files(str(path))
    page.wait_for_function("() => window.nnrefLab.csv !== null")
    assert "dropped 500 rows beyond 1000 points" in page.locator("#notices").inner_text()
    assert len(_lab(page, "state().points")) == 1000


# --------------------------------------------------------------------------------------------------
# Messages that stay true
# --------------------------------------------------------------------------------------------------
def test_the_divergence_message_goes_with_reset_and_with_a_lower_learning_rate(page):
    open_lab(page, "#preset=one-layer-on-xor&lr=10&activation=linear&momentum=0.99")
    for undo in ("reset", "lower rate"):
        page.get_by_role("button", name="Play").click()
        page.wait_for_function("() => document.querySelector('#notices').textContent.includes('diverged')")
        if undo == "reset":
            page.get_by_role("button", name="Reset").click()
        else:
            page.locator("#lr").select_option("0.03")
        page.wait_for_function("() => !document.querySelector('#notices').textContent.includes('diverged')")
        assert _lab(page, "epoch") == 0


def test_a_range_alert_goes_once_the_input_is_fixed(page):
    open_lab(page, "#dataset=custom&points=")
    page.get_by_label("New point x₁").fill("9")
    page.get_by_role("button", name="Add point").click()
    assert page.get_by_role("alert").inner_text().startswith("A point's x₁ and x₂ lie between")
    page.get_by_label("New point x₁").fill("1")
    page.get_by_role("button", name="Add point").click()
    page.wait_for_function("() => window.nnrefLab.points() === 1")
    assert page.locator("#alert").is_hidden()


def test_knn_says_it_has_nothing_to_train_and_when_k_is_larger_than_the_points(page):
    open_lab(page, "#dataset=xor&model=knn&k=7")
    assert page.locator("#lr").is_disabled() and page.locator("#activation").is_disabled()
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => document.querySelector('#notices').textContent.includes('nothing to train')")
    assert not _lab(page, "playing")
    open_lab(page, "#dataset=custom&points=1:1:0;-1:-1:1;2:-2:0&model=knn&k=7")
    assert "k = 7 is larger than the 3 training points" in page.locator("#notices").inner_text()


def test_the_lines_activation_menu_is_disabled(page):
    open_lab(page, "#preset=the-line")
    assert page.locator("#activation").is_disabled() and page.locator("#lr").is_enabled()


def test_a_stopped_server_is_said_and_the_button_stops_claiming_it_plays(lab):
    _, browser = lab
    page = new_page(browser)
    try:
        with LabServer() as server:
            page.goto(server.url + "#preset=one-layer-on-xor")
            shown(page)
            page.get_by_role("button", name="Play").click()
            page.wait_for_function("() => window.nnrefLab.playing")
        page.wait_for_function("() => !window.nnrefLab.connected")
        assert page.get_by_role("button", name="Play").is_visible()
        assert "The connection to nnref lab closed" in page.get_by_role("alert").inner_text()
    finally:
        page.context.close()


# --------------------------------------------------------------------------------------------------
# A projector, a keyboard, a classroom
# --------------------------------------------------------------------------------------------------
SET_UPS = [f"#preset={name}" for name in PRESETS] + [
    "#dataset=xor&model=compare&hidden=4&k=7",
    "#preset=deeper-net-on-spirals&hidden=8,8,8,8,8,8",
]


@pytest.mark.parametrize("width,height", [(1280, 720), (1366, 768)])
def test_on_a_projector_every_set_up_shows_its_whole_output(page, width, height):
    page.set_viewport_size({"width": width, "height": height})
    for set_up in SET_UPS:
        open_lab(page, set_up)
        boxes = page.locator("#plots figure").evaluate_all(
            "fs => fs.map(f => { const b = f.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })"
        )
        for left, top, right, bottom in boxes:  # every plot with its accuracy caption, on the screen
            assert 0 <= left and right <= width and 0 <= top and bottom <= height, (set_up, boxes)
        columns = page.locator(".columns > section").evaluate_all(
            "ss => ss.filter(s => s.offsetParent).map(s => s.getBoundingClientRect().top)"
        )
        assert max(columns) - min(columns) < 1, (set_up, columns)  # the output never goes under another column
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_on_a_1920_screen_everything_is_visible(page):
    page.set_viewport_size({"width": 1920, "height": 1080})
    for set_up in SET_UPS:
        open_lab(page, set_up)
        bottoms = page.locator(".columns > section, .bar").evaluate_all(
            "ss => ss.map(s => s.getBoundingClientRect().bottom)"
        )
        assert max(bottoms) <= 1080, (set_up, bottoms)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 1920


def test_focus_stays_on_the_control_just_used(page):
    open_lab(page, "#preset=one-layer-on-xor")
    for name in ("Add neuron to layer 1", "Add layer", "Remove layer", "Input X₁²"):
        control = page.get_by_label(name) if name.startswith("Input") else page.get_by_role("button", name=name)
        control.focus()
        page.keyboard.press("Space" if name.startswith("Input") else "Enter")
        shown(page)
        focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
        assert focused == name, (name, focused)


def test_a_layers_neuron_buttons_are_a_few_keys_away(page):
    """The skip link to the network, then "+ layer", "− layer", and the first layer's "+": not 39 Tabs."""
    open_lab(page, "#preset=one-layer-on-xor")
    page.locator("body").focus()
    presses = 0
    while page.evaluate("() => document.activeElement.getAttribute('aria-label')") != "Add neuron to layer 1":
        name = page.evaluate("() => document.activeElement.textContent")
        page.keyboard.press("Enter" if name == "Skip to the network" else "Tab")
        presses += 1
        assert presses <= 8, name


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_demo_runs_from_the_keyboard_alone(page, preset):
    open_lab(page)
    page.locator("body").focus()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.getAttribute('href')") == f"#preset={preset}":
            break
    page.keyboard.press("Enter")
    page.wait_for_function("(p) => location.hash.includes('dataset=' + p)", arg=PRESETS[preset]["state"]["dataset"])
    shown(page)
    page.keyboard.press("p")  # (the key help under the output)
    _epoch_after(page, 1)


def test_a_classrooms_hidden_controls_survive_a_preset_link(page):
    open_lab(page, "#preset=one-layer-on-xor&hide=regularization,checks")
    assert page.locator("#regularization").is_hidden()
    page.get_by_role("link", name=PRESETS["deeper-net-on-spirals"]["title"]).click()
    page.wait_for_function("() => window.nnrefLab.state().dataset === 'spirals'")
    assert _lab(page, "state().hide") == ["regularization", "checks"] and page.locator("#regularization").is_hidden()
    assert "hide=regularization,checks" in page.url
    assert "hide%3Dregularization" in page.get_by_role("link", name="Draw a digit").get_attribute("href")
