"""/class in Chromium, as a teacher uses it at a projector's 1280 × 720 — thirty tiles, show one, snapshots, names
hidden, from the keyboard — and the students' pages under the teacher's hand: a lock, hidden groups and a pause that
hold through the student's own navigation and a reload."""

from __future__ import annotations

import json
import random

import pytest
from browser import lab_in_browser, lab_page, open_lab, require_browser, serious_violations
from websockets.sync.client import connect

from nnref.lab.session import decode

require_browser()
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab():
    with lab_in_browser(max_sessions=40) as pair:
        yield pair


def _students(server, count: int, seed: int = 0) -> list:
    """``count`` pages over websockets, each on its own set-up, stepped once, each with a name."""
    rng, pages = random.Random(seed), []
    for i in range(count):
        ws = connect(server.base.replace("http", "ws") + "/ws/playground", open_timeout=10, max_size=2**24)
        hidden = [rng.randint(2, 6) for _ in range(rng.randint(1, 3))]
        setup = {"dataset": rng.choice(["xor", "circles", "spirals", "blobs"]), "model": "mlp", "hidden": hidden}
        ws.send(json.dumps({"type": "name", "name": f"Pupil{i:02d}"}))
        ws.send(json.dumps({"type": "config", "version": 1, "state": setup}))
        ws.send(json.dumps({"type": "step"}))
        pages.append(ws)
    for ws in pages:  # until each has its stepped frame
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, bytes) and decode(message)[0].get("epoch", 0) > 0:
                break
    return pages


def _class(page, count: int):
    page.goto(page.lab.class_url)
    page.wait_for_function(f"() => window.nnrefClass && window.nnrefClass.tiles === {count}", timeout=30_000)


def test_thirty_tiles_fit_a_projector_and_show_one_fills_the_screen(lab):
    server, _ = lab
    students = _students(server, 30)
    try:
        with lab_page(lab, 1280, 720) as page:
            _class(page, 30)
            width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1]  # thirty tiles, never sideways
            assert page.locator("#summary").inner_text().startswith("30 pages open · 0 playing")
            first = page.locator(".tile").first
            box = first.bounding_box()
            assert box["width"] >= 110 and "Pupil" in first.inner_text()  # readable: a name, a score, a set-up
            maps = page.evaluate("""() => [...document.querySelectorAll('.tile canvas.map')].map(c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let coloured = 0, painted = 0;
                for (let i = 0; i < d.length; i += 4) {
                  painted += d[i + 3] === 255;
                  coloured += Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 40;
                }
                return [painted === d.length / 4, coloured]; })""")
            # each boundary drawn from the page's weights: painted whole, and coloured where a network is already sure
            assert len(maps) == 30 and all(painted for painted, _ in maps)
            assert sum(coloured > 0 for _, coloured in maps) >= 15

            first.focus()
            page.keyboard.press("Enter")  # show one, from the keyboard
            page.wait_for_selector("#one[open]")
            dialog = page.locator("#one").bounding_box()
            assert dialog["width"] >= 1270 and dialog["height"] >= 710
            assert page.locator("#one-network canvas").count() >= 2  # every hidden neuron's picture
            page.get_by_role("button", name="Keep a snapshot").click()
            page.keyboard.press("Escape")
            page.wait_for_function("() => !document.getElementById('one').open")
            assert page.locator("#snapshots button").count() == 1
            assert serious_violations(page) == []

            page.get_by_label("names shown").uncheck()  # before projecting
            page.wait_for_function("() => !window.nnrefClass.latest().names")
            page.wait_for_timeout(500)
            assert "Pupil" not in page.content()
            assert "Student" in page.locator("#snapshots").inner_text()
    finally:
        for ws in students:
            ws.close()


def test_a_lock_hidden_groups_and_a_pause_hold_through_a_students_own_navigation_and_reload(lab):
    with lab_page(lab, 1280, 720) as teacher, lab_page(lab, 1280, 720) as student:
        open_lab(student, "#preset=the-line")
        _class(teacher, 1)
        teacher.get_by_label("Set-up").select_option("one-layer-on-xor")
        teacher.get_by_role("button", name="Lock the class on it").click()
        student.wait_for_function("() => location.hash.includes('dataset=xor') && window.nnrefLab.teacher")
        assert (
            "Your teacher locked the class on One hidden layer on XOR" in student.locator("#teacher-line").inner_text()
        )
        held = "(id) => document.getElementById(id).closest('[inert]') !== null"  # seen, out of reach
        assert student.evaluate(f"() => [{held}][0]('dataset') && [{held}][0]('model')")
        assert not student.evaluate(f"() => [{held}][0]('lr')")  # the recipe stays the student's

        teacher.get_by_label("the data", exact=True).check()  # hide the data's controls on every page
        student.wait_for_function("() => document.querySelector('section.data').hidden")
        teacher.get_by_role("button", name="Pause the class").click()
        student.wait_for_function("() => document.getElementById('play').disabled")

        student.evaluate("() => { location.hash = '#preset=deeper-net-on-spirals'; }")  # the student's own link
        student.wait_for_function("() => window.nnrefLab.errors.some(e => e.includes('locked this set-up'))")
        student.reload()
        student.wait_for_function("() => window.nnrefLab && window.nnrefLab.teacher && window.nnrefLab.connected")
        assert student.locator("#play").is_disabled() and student.evaluate(f"() => [{held}][0]('dataset')")
        assert student.locator("section.data").is_hidden()

        teacher.get_by_role("button", name="Let the class play").click()
        teacher.get_by_role("button", name="Free the class").click()
        student.wait_for_function("() => !document.getElementById('dataset').closest('[inert]')")
        assert student.locator("#play").is_enabled()
        assert "freed" in student.locator("#teacher-line").inner_text()


def test_a_student_types_a_name_and_the_teacher_sees_it(lab):
    with lab_page(lab, 1280, 720) as teacher, lab_page(lab, 1280, 720) as student:
        open_lab(student)
        student.get_by_label("Your name").fill("Grace")
        student.get_by_label("Your name").press("Enter")
        student.get_by_label("Your name").blur()
        _class(teacher, 1)
        teacher.wait_for_function("() => document.querySelector('.tile .who').textContent === 'Grace'")
        student.reload()  # remembered on this machine, told again
        teacher.wait_for_function(
            "() => [...document.querySelectorAll('.tile .who')].some(e => e.textContent === 'Grace')"
        )
