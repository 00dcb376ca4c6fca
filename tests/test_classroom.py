"""nnref.lab.classroom and nnref.lab.teacher: the teacher's view of the class and the teacher's hand on it, over the
real sockets — the two tokens, tiles that equal what each student's page shows, and actions that reach every page
and hold."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from nnref.lab.classroom import Classroom, locked_setup, parse_action, setup_words
from nnref.lab.server import LabServer
from nnref.lab.session import decode
from nnref.lab.state import PRESETS, BadMessage


def _ws(lab, path="/ws/playground", token=None):
    url = lab.base.replace("http", "ws") + path + (f"?token={token}" if token else "")
    return connect(url, open_timeout=10, max_size=2**24)


def _next(ws, want: str, timeout: float = 20, test=lambda m: True):
    """The next message of type ``want`` that passes ``test`` (JSON, or a binary frame's header; frames answered)."""
    deadline = time.time() + timeout
    while True:
        message = ws.recv(timeout=max(0.1, deadline - time.time()))
        if isinstance(message, bytes):
            message = decode(message)[0]
            if message["type"] == "frame":
                ws.send(json.dumps({"type": "ready"}))
        else:
            message = json.loads(message)
        if message["type"] == want and test(message):
            return message


def _latest(ws, frame: dict) -> dict:
    """The last frame a page has been sent: ``frame``, or one that came after it (read until the socket is quiet)."""
    while True:
        try:
            message = ws.recv(timeout=0.5)
        except TimeoutError:
            return frame
        if isinstance(message, bytes) and decode(message)[0]["type"] == "frame":
            frame = decode(message)[0]
            ws.send(json.dumps({"type": "ready"}))


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as page:
            return page.status
    except urllib.error.HTTPError as refused:
        return refused.code


def _refused(lab, path, token) -> bool:
    try:
        _ws(lab, path, token).close()
    except InvalidStatus as refused:
        return refused.response.status_code == 403
    return False


# --------------------------------------------------------------------------------------------------
# Safe: each address opens what it should
# --------------------------------------------------------------------------------------------------
def test_beyond_loopback_the_students_token_opens_the_students_pages_only():
    with LabServer(token="pupil", teacher_token="teach") as lab:
        for path in ("/", "/mnist", "/digits"):
            assert [_status(f"{lab.base}{path}{q}") for q in ("", "?token=pupil", "?token=teach")] == [403, 200, 200]
        assert [_status(f"{lab.base}/class{q}") for q in ("", "?token=pupil", "?token=guess", "?token=teach")] == [
            403,
            403,
            403,
            200,
        ]
        assert _refused(lab, "/ws/class", None) and _refused(lab, "/ws/class", "pupil")
        assert _refused(lab, "/ws/playground", None) and not _refused(lab, "/ws/playground", "pupil")
        with _ws(lab, "/ws/class", "teach") as teacher:
            assert _next(teacher, "class")["pages"] == []
        with _ws(lab, token="pupil") as student:  # a teacher's action on a student's socket is not a message there
            student.send(json.dumps({"type": "lock", "preset": "the-line"}))
            assert "type is one of" in _next(student, "error")["message"]
    assert lab.class_url.endswith("/class?token=teach")


def test_on_loopback_the_teacher_alone_opens_class_without_a_token_and_a_student_token_makes_a_teachers():
    with LabServer() as lab:
        assert _status(lab.base + "/class") == 200 and not _refused(lab, "/ws/class", None)
    with LabServer(token="pupil") as lab:  # a students' token given: the teacher's view needs a token of its own
        assert lab.teacher_token and lab.teacher_token != "pupil"
        assert _status(lab.base + "/class?token=pupil") == 403 and _status(lab.class_url) == 200


def test_the_students_frames_never_carry_the_teachers_token_or_another_page():
    with LabServer(token="pupil", teacher_token="Zq9-secret") as lab:
        with _ws(lab, token="pupil") as one, _ws(lab, token="pupil") as two, _ws(lab, "/ws/class", "Zq9-secret") as t:
            one.send(json.dumps({"type": "name", "name": "Ada"}))
            two.send(json.dumps({"type": "config", "version": 1, "state": {"dataset": "spirals"}}))
            _next(t, "class", test=lambda m: len(m["pages"]) == 2 and "Ada" in {p["label"] for p in m["pages"]})
            t.send(json.dumps({"type": "pause"}))
            seen = []
            deadline = time.time() + 3
            while time.time() < deadline:  # everything page two receives for a while
                try:
                    seen.append(two.recv(timeout=0.5))
                except TimeoutError:
                    pass
                else:
                    if isinstance(seen[-1], bytes):
                        two.send(json.dumps({"type": "ready"}))
        text = b"".join(m if isinstance(m, bytes) else m.encode() for m in seen)
        assert b"Your teacher paused the class" in text and b"Zq9-secret" not in text and b"Ada" not in text


@pytest.mark.parametrize(
    "action,reason",
    [
        ({"type": "send", "preset": "nowhere"}, "preset must be one of"),
        ({"type": "hide", "groups": ["data", "the-teachers-desk"]}, "groups must be a list of"),
        ({"type": "send", "preset": "the-line", "same_weights": "yes"}, "same_weights must be true or false"),
        ({"type": "pause", "now": True}, "has no field 'now'"),
        ({"type": "shutdown"}, "type is one of"),
    ],
)
def test_every_teachers_message_is_checked(action, reason):
    with pytest.raises(BadMessage, match=reason):
        parse_action(json.dumps(action))


# --------------------------------------------------------------------------------------------------
# The tiles: what each student's page shows
# --------------------------------------------------------------------------------------------------
def _random_setup(rng: random.Random) -> dict:
    model = rng.choice(["line", "mlp", "knn", "compare"])
    hidden = [rng.randint(1, 6) for _ in range(rng.randint(0, 3))]
    return {
        "dataset": rng.choice(["blobs", "xor", "circles", "spirals"]),
        "model": model,
        "hidden": hidden,
        "activation": rng.choice(["relu", "tanh", "sigmoid", "linear"]),
        "lr": rng.choice([0.003, 0.01, 0.03, 0.1, 0.3]),
        "k": rng.choice([1, 3, 5]),
    }


def test_twenty_students_are_twenty_tiles_that_equal_their_own_frames():
    rng = random.Random(7)
    with LabServer(max_sessions=24) as lab:
        students = [_ws(lab) for _ in range(20)]
        try:
            shown = {}
            for i, ws in enumerate(students):
                setup = _random_setup(rng)
                ws.send(json.dumps({"type": "name", "name": f"pupil {i}"}))
                ws.send(json.dumps({"type": "config", "version": 1, "state": setup}))
                ws.send(json.dumps({"type": "step"}))
                stepped = setup["model"] != "knn"  # (KNN has nothing to step: it stays at epoch 0)
                frame = _next(ws, "frame", test=lambda h, s=stepped: h["version"] == 1 and (h["epoch"] > 0) == s)
                shown[i] = (setup, _latest(ws, frame))
            with _ws(lab, "/ws/class") as teacher:
                tiles = _next(teacher, "class", test=lambda m: len(m["pages"]) == 20)["pages"]
                assert sorted(t["seat"] for t in tiles) == list(range(1, 21))
                tiles = sorted(tiles, key=lambda t: int(t["label"].split()[1]))  # the name each student typed
                assert [t["label"] for t in tiles] == [f"pupil {i}" for i in range(20)]
                for tile, (setup, frame) in zip(tiles, shown.values()):
                    drawn = "mlp" if setup["model"] in ("mlp", "compare") else setup["model"]
                    own = next(m for m in frame["models"] if m["kind"] == drawn)
                    assert tile["accuracy"] == own["test_accuracy"] and tile["epoch"] == frame["epoch"]
                    assert tile["setup"].startswith(setup["dataset"]) and tile["network"] == frame.get("network")
                    assert not tile["diverged"] and not tile["playing"]
                students.pop(3).close()  # one student leaves: their tile goes
                tiles = _next(teacher, "class", test=lambda m: len(m["pages"]) == 19)["pages"]
                assert "pupil 3" not in {t["label"] for t in tiles}
                wild = {"dataset": "spirals", "lr": 10.0, "momentum": 0.99, "hidden": [8, 8], "activation": "linear"}
                students[0].send(json.dumps({"type": "config", "version": 2, "state": {**wild, "model": "mlp"}}))
                students[0].send(json.dumps({"type": "play"}))
                marked = _next(teacher, "class", 60, lambda m: any(p["diverged"] for p in m["pages"]))["pages"]
                assert [p["label"] for p in marked if p["diverged"]] == ["pupil 0"]
                teacher.send(json.dumps({"type": "names", "shown": False}))  # projected: no name leaves the server
                hidden = _next(teacher, "class", test=lambda m: not m["names"])["pages"]
                assert not any("pupil" in json.dumps(p) for p in hidden)
                assert {p["label"] for p in hidden} == {f"Student {p['seat']}" for p in hidden}
        finally:
            for ws in students:
                ws.close()


def test_a_tile_names_its_set_up_in_words():
    state = {"dataset": "spirals", "classes": 3, "model": "mlp", "hidden": [8, 8, 6], "activation": "tanh"}
    assert setup_words({**state, "lr": 0.03, "k": 3}) == "spirals, 3 classes · network 8-8-6 tanh · lr 0.03"
    knn = {**state, "classes": 2, "model": "knn", "dataset": "custom", "lr": 0.03, "k": 5}
    assert setup_words(knn) == "your own points · KNN, k = 5"


def test_a_page_that_stands_still_is_marked_stale():
    class Still:
        playing = False

        def summary(self):
            return {"setup": "xor", "epoch": 3.0}

    room = Classroom()
    room.join("playground", Still(), lambda message: None)
    start = time.monotonic()
    assert not room.tiles(now=start)["pages"][0]["stale"]
    assert room.tiles(now=start + 61)["pages"][0]["stale"]


# --------------------------------------------------------------------------------------------------
# The teacher's hand: it reaches every page, and it holds
# --------------------------------------------------------------------------------------------------
def test_pause_lock_hide_and_send_reach_every_page_and_hold_until_freed(tiny_mnist):
    from nnref.lab.mnist.dataset import SharedMNIST

    with LabServer(max_sessions=6, mnist=SharedMNIST(tiny_mnist, download=False)) as lab:
        with _ws(lab) as a, _ws(lab) as b, _ws(lab, "/ws/mnist") as m, _ws(lab, "/ws/class") as teacher:
            _next(teacher, "class", test=lambda msg: len(msg["pages"]) == 3)  # the /mnist page seated too
            teacher.send(json.dumps({"type": "pause"}))
            assert _next(teacher, "done")["line"] == "Your teacher paused the class."
            for page in (a, b, m):
                said = _next(page, "teacher")
                assert said["paused"] and said["line"] == "Your teacher paused the class."
            a.send(json.dumps({"type": "play"}))
            assert "Your teacher paused the class" in _next(a, "notice")["message"]

            teacher.send(json.dumps({"type": "lock", "preset": "one-layer-on-xor"}))
            for page in (a, b):
                said = _next(page, "teacher", test=lambda s: s["lock"] is not None)
                assert said["setup"] == "#preset=one-layer-on-xor" and said["lock"]["preset"] == "one-layer-on-xor"
            held = locked_setup("one-layer-on-xor")
            a.send(json.dumps({"type": "config", "version": 5, "state": held}))  # the page opens the locked preset
            a.send(json.dumps({"type": "config", "version": 6, "state": {"dataset": "spirals"}}))
            assert "Your teacher locked this set-up (One hidden layer on XOR)" in _next(a, "error")["message"]
            a.send(json.dumps({"type": "config", "version": 7, "state": {"lr": 0.1}}))  # the recipe stays theirs
            assert _next(a, "frame", test=lambda h: h["version"] == 7)["version"] == 7

            teacher.send(json.dumps({"type": "hide", "groups": ["regularization", "checks"]}))
            assert _next(b, "teacher", test=lambda s: s["hide"])["hide"] == ["regularization", "checks"]

            with _ws(lab) as again:  # a reload: the page is told the rules before anything else it asks
                said = _next(again, "teacher")
                assert said["paused"] and said["lock"]["preset"] == "one-layer-on-xor"
                assert said["hide"] == ["regularization", "checks"]

            teacher.send(json.dumps({"type": "free"}))
            assert _next(a, "teacher", test=lambda s: s["lock"] is None)["line"].startswith("Your teacher freed")
            a.send(json.dumps({"type": "config", "version": 8, "state": {"dataset": "spirals"}}))
            assert _next(a, "frame", test=lambda h: h["version"] == 8)["version"] == 8
            teacher.send(json.dumps({"type": "play"}))
            assert not _next(b, "teacher", test=lambda s: not s["paused"])["paused"]

            teacher.send(json.dumps({"type": "send", "preset": "deeper-net-on-spirals", "same_weights": True}))
            links = {_next(page, "teacher", test=lambda s: "setup" in s)["setup"] for page in (a, b)}
            assert len(links) == 1 and links.pop().startswith("#preset=deeper-net-on-spirals&seed=")


def test_a_teachers_page_that_closes_leaves_the_class_running():
    with LabServer() as lab:
        with _ws(lab) as student:
            with _ws(lab, "/ws/class") as teacher:
                _next(teacher, "class", test=lambda m: len(m["pages"]) == 1)
            student.send(json.dumps({"type": "play"}))
            first = _next(student, "frame", test=lambda h: h["playing"])["epoch"]
            assert _next(student, "frame", test=lambda h: h["epoch"] > first)["playing"]
        deadline = time.time() + 10
        while lab.app.state.classroom.seats and time.time() < deadline:
            time.sleep(0.05)
        assert lab.app.state.classroom.seats == {}  # the student's seat went with the student


def test_the_presets_a_teacher_sends_exist():
    assert {"the-line", "deeper-net-on-spirals", "fit-the-line-by-hand"} <= set(PRESETS)


def test_a_page_on_a_preset_is_named_by_it():
    from nnref.lab.classroom import preset_of
    from nnref.lab.session import PlaygroundSession
    from nnref.lab.state import DEFAULTS

    for preset in PRESETS.values():
        served = {name: value for name, value in preset["state"].items() if name in DEFAULTS}
        assert preset_of(PlaygroundSession(served).state) == preset["title"]
    assert preset_of(PlaygroundSession({"dataset": "circles"}).state) is None
