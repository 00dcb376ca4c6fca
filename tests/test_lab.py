"""nnref.lab: the lab's session and its WebSocket protocol, driven by a plain WebSocket client (no browser):
frames, every kind of bad message, the Origin check, the token, the session limit, a closed page, the files
served — and the same boundary as the playground for the same seed and settings."""

from __future__ import annotations

import contextlib
import io
import json
import time
import urllib.error
import urllib.request

import pytest
import torch
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from nnref import plane
from nnref.lab.inbox import IN_FLIGHT
from nnref.lab.server import LabServer
from nnref.lab.session import PlaygroundSession, decode
from nnref.lab.state import BadMessage, parse_message


@pytest.fixture(scope="module")
def server():
    with LabServer(max_sessions=3) as lab:
        yield lab


def _ws(lab, path="/ws/playground", token=None, **kw):
    url = lab.base.replace("http", "ws") + path + (f"?token={token}" if token else "")
    return connect(url, open_timeout=10, **kw)


def _next(ws, want: str, timeout: float = 20):
    """The next message of type ``want`` (JSON or a binary frame's header), answering frames with "ready"."""
    deadline = time.time() + timeout
    while True:
        message = ws.recv(timeout=max(0.1, deadline - time.time()))
        if isinstance(message, bytes):
            header, payload = decode(message)
            if header["type"] == "frame":
                ws.send(json.dumps({"type": "ready"}))
            if header["type"] == want:
                return header, payload
        else:
            message = json.loads(message)
            if message["type"] == want:
                return message, None


def test_a_page_gets_its_points_then_a_frame_of_weights(server):
    with _ws(server) as ws:
        data, _ = _next(ws, "data")
        assert data["classes"] == 2 and len(data["train"]) == 200 and len(data["test"]) == 200  # circles, 50%
        header, payload = _next(ws, "frame")
        assert [m["kind"] for m in header["models"]] == ["mlp"] and header["epoch"] == 0
        assert payload == b""  # weights, not pictures: the page draws the maps from them
        assert header["network"]["inputs"] == ["x1", "x2"] and header["network"]["activation"] == "tanh"
        assert [len(layer["w"]) for layer in header["network"]["layers"]] == [4, 2, 1]


def test_play_trains_and_the_epoch_rises_and_pause_stops_it(server):
    with _ws(server) as ws:
        _next(ws, "frame")
        ws.send(json.dumps({"type": "config", "version": 7, "state": {"dataset": "xor", "hidden": [4], "lr": 0.1}}))
        header, _ = _next(ws, "frame")
        while header["version"] != 7:
            header, _ = _next(ws, "frame")
        ws.send(json.dumps({"type": "play"}))
        epochs = [_next(ws, "frame")[0]["epoch"] for _ in range(15)]
        assert epochs == sorted(epochs) and epochs[-1] > epochs[0]
        ws.send(json.dumps({"type": "pause"}))
        header, _ = _next(ws, "frame")
        while header["playing"]:
            header, _ = _next(ws, "frame")
        with pytest.raises(TimeoutError):  # paused: no frame comes unasked
            ws.recv(timeout=0.5)
        ws.send(json.dumps({"type": "step"}))
        stepped, _ = _next(ws, "frame")
        assert stepped["epoch"] == pytest.approx(header["epoch"] + 1 / 20)  # one step of 10 of the 200 points


def test_a_slow_page_holds_at_most_two_frames_the_latest_wins(server):
    with _ws(server) as ws:
        _next(ws, "data")
        ws.send(json.dumps({"type": "play"}))
        frames = []
        deadline = time.time() + 1.5
        while time.time() < deadline:  # never "ready": the server must stop sending
            try:
                message = ws.recv(timeout=0.3)
            except TimeoutError:
                continue
            if isinstance(message, bytes):
                frames.append(decode(message)[0])
        assert len(frames) == IN_FLIGHT
        ws.send(json.dumps({"type": "ready"}))
        header, _ = decode(ws.recv(timeout=5))
        assert header["epoch"] > frames[-1]["epoch"]  # the next frame is the current state, nothing queued


BAD = [
    ("{not json", "must be JSON"),
    ('{"type": "config", "state": {"lr": NaN}}', "numbers must be finite"),
    ('{"type": "config", "state": {"lr": Infinity}}', "numbers must be finite"),
    ('{"type": "launch"}', "type is one of"),
    ('["play"]', "an object whose type"),
    ('{"type": "play", "speed": 2}', "has no field 'speed'"),
    ('{"type": "config", "state": {"learning_rate": 0.1}}', "unknown field 'learning_rate'"),
    ('{"type": "config", "state": {"lr": "fast"}}', "lr must be a number"),
    ('{"type": "config", "state": {"lr": -1}}', "lr must be between"),
    ('{"type": "config", "state": {"samples": 100000000}}', "samples must be between"),
    ('{"type": "config", "state": {"hidden": [1000000]}}', "neurons in a layer"),
    ('{"type": "config", "state": {"hidden": [8, 8, 8, 8, 8, 8, 8]}}', "at most 6 layer sizes"),
    ('{"type": "config", "state": {"hidden": [2.5]}}', "a whole number"),
    ('{"type": "config", "state": {"inputs": []}}', "non-empty list"),
    ('{"type": "config", "state": {"activation": "gelu"}}', "activation must be one of"),
    ('{"type": "config", "state": {"dataset": "xor", "classes": 3}}', "xor has 2 or 4 classes"),
    ('{"type": "config", "state": {"points": [[0, 0, 9]]}}', "class must be between"),
    ('{"type": "config", "state": {"points": [[0, 0]]}}', r"\[x1, x2, class\]"),
    ('{"type": "config", "state": {"showTest": true}}', "unknown field 'showTest'"),
    ('{"type": "config", "version": -3, "state": {}}', "version must be between"),
    ('{"type": "config", "state": {"weights": [[0, 0, 0, 1e300]]}}', "a typed weight must be between"),
    ('{"type": "config", "state": {"weights": [[0, 0, 0]]}}', r"\[layer, neuron, input, value\]"),
    ('{"type": "config", "state": {"instance": [0.5, 9, 1]}}', "x2 must be between"),
]


@pytest.mark.parametrize("text,reason", BAD, ids=[b[1] for b in BAD])
def test_parse_message_refuses_with_a_reason(text, reason):
    with pytest.raises(BadMessage, match=reason):
        parse_message(text)


def test_a_burst_of_messages_is_read_in_order_past_the_read_ahead(server):
    """A page that sends many messages at once (Step pressed fast): the server reads ahead at most READ_AHEAD of
    them before it stops reading the socket, and takes every one, in order — each Step is one step."""
    from nnref.lab.server import READ_AHEAD

    with _ws(server) as ws:
        _next(ws, "frame")
        ws.send(json.dumps({"type": "config", "version": 1, "state": {"dataset": "xor", "batch": 10}}))
        burst = 3 * READ_AHEAD
        for _ in range(burst):
            ws.send(json.dumps({"type": "step"}))
        header, _ = _next(ws, "frame")
        deadline = time.time() + 20
        while header["steps"] < burst and time.time() < deadline:
            header, _ = _next(ws, "frame")
        assert header["version"] == 1 and header["steps"] == burst


def test_bad_messages_get_a_message_and_the_session_goes_on(server):
    with _ws(server) as ws:
        _next(ws, "frame")
        session_bad = [  # messages well formed, but not for this session's network
            ('{"type": "config", "state": {"instance": [0.5, 0.5, 3]}}', "the instance's class 3 is not one of"),
            ('{"type": "config", "state": {"weights": [[0, 9, 0, 1.0]]}}', "there is no weight 1 of neuron 10"),
            ('{"type": "apply"}', "pick an instance first"),
        ]
        for text, reason in [
            *BAD,
            *session_bad,
            (b"\x00\x01binary", "JSON text, not binary"),
            ("x" * 300_000, "at most 256 KiB"),
        ]:
            ws.send(text)
            error, _ = _next(ws, "error")
            assert reason.replace("\\", "") in error["message"], (text[:40], error)
        ws.send(json.dumps({"type": "config", "version": 99, "state": {"dataset": "spirals", "classes": 3}}))
        data, _ = _next(ws, "data")  # still alive, and doing what it is asked
        assert data["classes"] == 3 and data["version"] == 99


def test_another_sites_page_cannot_open_a_socket(server):
    with pytest.raises(InvalidStatus) as refused:
        _ws(server, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with _ws(server, origin=server.base) as ws:  # the lab's own page
        assert _next(ws, "data")[0]["type"] == "data"


def test_beyond_loopback_a_token_is_needed_for_pages_and_sockets():
    with LabServer(token="s3cret") as lab:
        for path in ("/", "/digits"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(lab.base + path, timeout=10)
            assert refused.value.code == 403 and b"needs its token" in refused.value.read()
            with urllib.request.urlopen(lab.base + path + "?token=s3cret", timeout=10) as page:
                assert page.status == 200
        for token in (None, "guess"):
            with pytest.raises(InvalidStatus) as refused:
                _ws(lab, token=token)
            assert refused.value.response.status_code == 403
        with _ws(lab, token="s3cret") as ws:
            assert _next(ws, "data")[0]["type"] == "data"


def test_the_session_limit_and_a_closed_page_ending_its_session(server):
    sessions = server.app.state.sessions
    deadline = time.time() + 5
    while sessions.open and time.time() < deadline:  # earlier tests' pages have gone
        time.sleep(0.02)
    with contextlib.ExitStack() as stack:
        pages = [stack.enter_context(_ws(server)) for _ in range(3)]
        for ws in pages:
            _next(ws, "data")
        _full_then_one_closed(server, sessions, pages)


def _full_then_one_closed(server, sessions, pages):
    with _ws(server) as fourth:
        full = json.loads(fourth.recv(timeout=10))
        assert full["type"] == "full" and "3 pages are open" in full["message"] and "--max-pages" in full["message"]
        with pytest.raises(ConnectionClosed):  # and then the server closes it
            fourth.recv(timeout=5)
        assert fourth.close_code == 1013
    pages[0].close()
    start = time.time()
    while sessions.open != 2:
        assert time.time() - start < 1.0, "a closed page must end its session within a second"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static/lab/../../session.py",
        "/static//etc/passwd",
        "/etc/passwd",
    ],
)
def test_nothing_outside_the_apps_own_files_is_served(server, path):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server.base + path, timeout=10)
    assert refused.value.code == 404


def test_pages_and_files_carry_a_strict_content_security_policy(server):
    with urllib.request.urlopen(server.base + "/", timeout=10) as page:
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert b'<script type="module" src="/static/lab/lab.js">' in page.read()
    with urllib.request.urlopen(server.base + "/static/lab/state.js", timeout=10) as script:
        assert script.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))


def test_gradient_check_and_export_over_the_socket(server):
    with _ws(server) as ws:
        _next(ws, "frame")
        ws.send(json.dumps({"type": "gradcheck"}))
        result, _ = _next(ws, "gradcheck")
        assert result["model"] == "mlp" and result["parameters"] == 2 * 4 + 4 + 4 * 2 + 2 + 2 + 1
        assert result["central"] < 1e-6 and result["forward"] > result["central"]  # O(Δ²) vs O(Δ)
        ws.send(json.dumps({"type": "export"}))
        header, payload = _next(ws, "file")
        saved = torch.load(io.BytesIO(payload), weights_only=True)
        assert header["name"].endswith(".pt") and saved["model"] == "mlp" and saved["hidden"] == [4, 2]
        from nnref.models import MLP

        net = MLP(len(saved["inputs"]), saved["hidden"], 1, saved["activation"])
        net.load_state_dict(saved["state_dict"])  # what the page promises: a model anyone can rebuild


def test_divergence_is_a_message_not_a_blank_picture():
    session = PlaygroundSession(
        {
            "dataset": "spirals",
            "lr": 10.0,
            "momentum": 0.99,
            "hidden": [8, 8],
            "activation": "linear",
            "inputs": ["x1", "x2", "x1^2", "x2^2"],
        }
    )
    session.playing = True
    for _ in range(50):
        session.advance(0.01)
        if session.diverged:
            break
    assert session.diverged and "Lower the learning rate (now 10)" in session.diverged and not session.playing
    header, _ = decode(session.frame())
    assert header["diverged"] == session.diverged and session.diverged in header["notices"]
    session.reset()
    assert session.diverged is None and session.epoch == 0
    for _ in range(50):  # diverged again: a lower rate starts again from the same initial weights, the message goes
        session.advance(0.01)
    assert session.diverged
    session.configure({"lr": 0.03})
    assert not session.diverged and session.epoch == 0 and decode(session.frame())[0]["notices"] == []


def test_reset_returns_to_the_same_initial_weights_and_new_weights_to_others():
    session = PlaygroundSession({"dataset": "xor", "hidden": [3]})
    first = session.models["mlp"].predict_proba(plane.grid(resolution=10))
    session.advance(0.05)
    session.reset()
    assert torch.equal(session.models["mlp"].predict_proba(plane.grid(resolution=10)), first)
    session.reset(new_weights=True)
    assert not torch.equal(session.models["mlp"].predict_proba(plane.grid(resolution=10)), first)


@pytest.mark.parametrize("model,kind", [("line", "logreg"), ("mlp", "mlp")])
def test_the_lab_and_the_playground_draw_the_same_boundary(model, kind):
    """One implementation: the same seed and settings, the same number of steps — the same function."""
    settings = {
        "dataset": "xor",
        "classes": 2,
        "noise": 0.2,
        "samples": 300,
        "ratio": 70,
        "seed": 5,
        "model": model,
        "inputs": ["x1", "x2", "x1x2"],
        "hidden": [5, 3],
        "activation": "tanh",
        "lr": 0.05,
        "momentum": 0.9,
        "batch": 16,
        "regularization": "L2",
        "regRate": 0.001,
    }
    session = PlaygroundSession(settings)
    for _ in range(120):
        for d in session.descents.values():
            d.step()
    session._refresh()
    X, y = plane.make_points("xor", 300, 0.2, 5)
    cfg = plane.PlaygroundConfig(
        steps=120,
        lr=0.05,
        momentum=0.9,
        batch_size=16,
        hidden=(5, 3),
        activation="tanh",
        weight_decay=0.001,
        features=("x1", "x2", "x1x2"),
        seed=5,
    )
    playground, _ = plane.fit(kind, *plane.split(X, y, 0.3, 5)[:2], 2, cfg)
    grid = plane.grid(resolution=60)
    assert torch.equal(session.models[model].predict_proba(grid), playground.predict_proba(grid))


def _started(process) -> str:
    """The students' address ``nnref lab`` printed (alone on loopback; labelled beside the teacher's beyond it)."""
    from helpers import line_with

    line = line_with(process, ": http://")
    return line.split(": ", 1)[1].strip()


def test_nnref_lab_serves_the_page_and_stops_quietly_on_ctrl_c():
    import signal

    from helpers import cli_process

    lab = cli_process("lab", "--port", "0")
    try:
        url = _started(lab)
        with urllib.request.urlopen(url, timeout=20) as page:
            assert page.status == 200 and b"nnref lab" in page.read()
    finally:
        lab.send_signal(signal.SIGINT)
    out, err = lab.communicate(timeout=30)
    assert lab.returncode == 0 and "Traceback" not in err, err


def test_beyond_loopback_nnref_lab_prints_an_address_with_a_token():
    import signal

    from helpers import cli_process

    from nnref.lab.server import machine_addresses

    lab = cli_process("lab", "--host", "0.0.0.0", "--port", "0")
    try:
        url = _started(lab)
        assert "?token=" in url and len(url.split("token=")[1]) >= 20
        # the address students open: this machine's own (not 127.0.0.1, which is each student's own machine)
        assert url.startswith(f"http://{machine_addresses()[0]}:")
        if len(machine_addresses()) > 1:
            assert not url.startswith("http://127.0.0.1")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.split("?")[0], timeout=20)
        assert refused.value.code == 403
        with urllib.request.urlopen(url, timeout=20) as page:
            assert page.status == 200
    finally:
        lab.send_signal(signal.SIGINT)
        lab.communicate(timeout=30)


def test_the_definition_is_consistent_and_served():
    """Every default passes its own check, every preset is a valid state, and the page's document is this one."""
    from nnref.lab.state import DEFAULTS, FIELDS, PRESETS, check_state, definition

    for name, field in FIELDS.items():
        assert field.check(name, field.default) == field.default, name
    assert check_state(DEFAULTS) == DEFAULTS
    for preset in PRESETS.values():  # the server's fields by the server's checks, the page's by their own
        check_state({k: v for k, v in preset["state"].items() if FIELDS[k].group != "page"})
        for name, value in preset["state"].items():
            assert FIELDS[name].check(name, value) == value
    with LabServer() as lab, urllib.request.urlopen(lab.base + "/lab/definition.json", timeout=10) as response:
        assert json.loads(response.read()) == json.loads(json.dumps(definition()))


def test_a_page_closed_while_its_gradient_check_runs_leaves_one_line_in_the_log(server, caplog, capfd, monkeypatch):
    import threading

    started, check = threading.Event(), PlaygroundSession.gradient_check

    def gradient_check(session):
        started.set()
        return check(session)

    monkeypatch.setattr(PlaygroundSession, "gradient_check", gradient_check)
    big = {"dataset": "spirals", "hidden": [8] * 6, "inputs": list(plane.FEATURES)}
    with _ws(server) as ws:
        _next(ws, "frame")
        ws.send(json.dumps({"type": "config", "version": 1, "state": big}))
        _next(ws, "data")
        ws.send(json.dumps({"type": "gradcheck"}))  # (about a second of work) — and the page closes while it runs
        assert started.wait(30)
    deadline = time.time() + 30
    while server.app.state.sessions.open and time.time() < deadline:
        time.sleep(0.05)
    while "a page closed" not in caplog.text and time.time() < deadline:
        time.sleep(0.05)
    closed = [r.getMessage() for r in caplog.records if r.name == "nnref.lab"]
    assert len(closed) == 1 and closed[0].startswith("nnref lab: a page closed while its "), closed
    assert "Traceback" not in capfd.readouterr().err


def test_the_first_frame_of_a_page_never_passes_for_its_first_change():
    """The server's default set-up is version 0; the page's first change is version 1 (it waits for that one)."""
    with LabServer() as lab, _ws(lab) as ws:
        header, _ = _next(ws, "frame")
        assert header["version"] == 0
        ws.send(json.dumps({"type": "config", "version": 1, "state": {"model": "knn"}}))
        while header["version"] != 1:
            header, _ = _next(ws, "frame")
        assert [m["kind"] for m in header["models"]] == ["knn"]


def test_the_idle_server_wakes_once_a_second_and_still_stops_at_once():
    """uvicorn's loop wakes ten times a second to see whether to stop; the lab's waits to be told (a paused class
    costs no CPU to speak of), and still refreshes the Date header."""
    import email.utils

    with LabServer() as lab:
        ticks, on_tick = [], lab.server.on_tick

        async def counted(counter):
            ticks.append(counter)
            return await on_tick(counter)

        lab.server.on_tick = counted  # the main loop looks it up on each wake-up
        time.sleep(2.5)
        with urllib.request.urlopen(lab.base + "/", timeout=10) as response:
            date = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
        started = time.perf_counter()
    assert time.perf_counter() - started < 0.5  # told to stop, it stops without waiting for its next wake-up
    assert not lab.thread.is_alive()
    assert 1 <= len(ticks) <= 4, ticks  # uvicorn's own loop: 25 in 2.5 s
    assert abs(date - time.time()) < 3  # the Date header is still refreshed


# --------------------------------------------------------------------------------------------------
# Every cap of the lab's schema: the documented value taken, one past it refused
# --------------------------------------------------------------------------------------------------
def _config(state: dict) -> str:
    return json.dumps({"type": "config", "state": state})


#: The caps docs/playground.md states, written out here (not read from LIMITS: a raised cap must fail a test), each
#: as (a state at the cap, the same one past it).
CAPS = {
    "layers": ({"hidden": [1] * 6}, {"hidden": [1] * 7}),
    "neurons": ({"hidden": [8]}, {"hidden": [9]}),
    "points": ({"points": [[0, 0, 0]] * 1000}, {"points": [[0, 0, 0]] * 1001}),
    "samples": ({"samples": 1000}, {"samples": 1001}),
    "k": ({"k": 50}, {"k": 51}),
    "weight": ({"weights": [[0, 0, 0, 1000]]}, {"weights": [[0, 0, 0, 1000.5]]}),
    "typed": (
        {"weights": [[i // 72, i // 9 % 8, i % 9 - 1, 0.5] for i in range(600)]},
        {"weights": [[i // 72, i // 9 % 8, i % 9 - 1, 0.5] for i in range(601)]},
    ),
}


@pytest.mark.parametrize("cap", sorted(CAPS))
def test_every_cap_takes_its_limit_and_refuses_one_past_it(cap):
    at, past = CAPS[cap]
    assert parse_message(_config(at))["state"] == at
    with pytest.raises(BadMessage):
        parse_message(_config(past))


def test_the_schema_has_no_cap_this_test_does_not_check():
    from nnref.lab.state import LIMITS

    assert set(LIMITS) == {*CAPS, "message_bytes"}


def test_a_message_of_256_kib_is_read_and_one_byte_more_refused():
    pad = json.dumps({"type": "ready"})
    exact = pad[:-1] + " " * (256 * 1024 - len(pad)) + "}"
    assert len(exact) == 256 * 1024 and parse_message(exact) == {"type": "ready"}
    with pytest.raises(BadMessage, match="at most 256 KiB"):
        parse_message(pad[:-1] + " " * (256 * 1024 + 1 - len(pad)) + "}")


def test_every_number_field_refuses_a_value_past_either_end():
    from nnref.lab.state import FIELDS, SERVER_FIELDS

    for name in SERVER_FIELDS:
        field = FIELDS[name]
        if field.kind not in ("number", "integer"):
            continue
        step = 1 if field.kind == "integer" else max(field.hi * 1e-6, 1e-9)
        for inside in (field.lo, field.hi):
            assert parse_message(_config({name: inside}))["state"][name] == inside
        for outside in (field.lo - step, field.hi + step):
            with pytest.raises(BadMessage, match=name):
                parse_message(_config({name: int(outside) if field.kind == "integer" else outside}))


def test_the_lower_ends_of_the_schemas_lists_and_sizes():
    """A layer of 0 neurons is refused; all seven inputs (the whole list) are taken, an empty list refused."""
    with pytest.raises(BadMessage, match="neurons in a layer"):
        parse_message(_config({"hidden": [0]}))
    seven = ["x1", "x2", "x1^2", "x2^2", "x1x2", "sin x1", "sin x2"]
    assert parse_message(_config({"inputs": seven}))["state"]["inputs"] == seven
    with pytest.raises(BadMessage, match="non-empty"):
        parse_message(_config({"inputs": []}))


@pytest.mark.parametrize(
    "point,reason",
    [
        ([0, 0, 4], "class"),  # four classes at most: 0-3
        ([0, 0, 1.5], "class"),
        ([0, 0, 1, 0.5], "split"),
        ([0, 0, 1, 2], "split"),
        ([6.5, 0, 1], "x1"),
        ([0, -6.5, 1], "x2"),
    ],
)
def test_a_point_of_your_own_is_refused_off_the_plane_or_of_no_class(point, reason):
    with pytest.raises(BadMessage, match=reason):
        parse_message(_config({"dataset": "custom", "points": [point]}))


def test_a_point_of_your_own_is_a_training_point_unless_its_split_is_1():
    points = [[1, 1, 3], [1, 1, 0, 0], [-6, 6, 1, 1]]
    assert parse_message(_config({"points": points}))["state"]["points"] == [[1, 1, 3], [1, 1, 0], [-6, 6, 1, 1]]


def test_a_config_version_is_a_whole_number_from_0_to_2_31_minus_1():
    for version in (0, 2**31 - 1):
        assert parse_message(json.dumps({"type": "config", "state": {}, "version": version}))["version"] == version
    for version in (-1, 2**31, 1.5):
        with pytest.raises(BadMessage, match="version"):
            parse_message(json.dumps({"type": "config", "state": {}, "version": version}))


def test_a_typed_weights_indices_are_whole_numbers_from_minus_1_to_64():
    assert parse_message(_config({"weights": [[64, 64, -1, 0.5]]}))["state"]["weights"] == [[64, 64, -1, 0.5]]
    for entry, part in [([65, 0, 0, 1], "layer"), ([0, -2, 0, 1], "neuron"), ([0, 0, 65, 1], "input")]:
        with pytest.raises(BadMessage, match=part):
            parse_message(_config({"weights": [entry]}))
    with pytest.raises(BadMessage, match="whole number"):
        parse_message(_config({"weights": [[0.5, 0, 0, 1]]}))


def test_a_refusal_says_what_was_wrong_with_the_text():
    with pytest.raises(BadMessage, match="must be JSON: Expecting value"):
        parse_message("nope")
    with pytest.raises(BadMessage, match="at most 256 KiB, got 256 KiB"):
        parse_message(" " * (256 * 1024 + 1))


def test_the_instance_is_three_numbers_or_none():
    assert parse_message(_config({"instance": [0.5, 0.6, 1]}))["state"]["instance"] == [0.5, 0.6, 1]
    assert parse_message(_config({"instance": []}))["state"]["instance"] == []
    for instance in ([0.5, 0.6, 1, 1], [0.5, 0.6], "0.5,0.6,1"):
        with pytest.raises(BadMessage, match=r"\[x1, x2, class\] or \[\]"):
            parse_message(_config({"instance": instance}))
