"""The lab as a person meets it, measured in headless Chromium: frames drawn per second for the largest network,
how soon a change shows, four pages playing at once, what a paused page costs; and the draw-a-digit page's time
from the end of a stroke to the prediction and to the neighbours."""

from __future__ import annotations

import resource
import statistics
import time

from .core import Context, section

__all__ = ["LARGEST", "measure_playground", "measure_digit_page"]

#: The largest network the lab draws: 6 hidden layers of 8 tanh neurons on all seven inputs, on the spirals.
LARGEST = (
    "#dataset=spirals&noise=0.15&model=mlp&hidden=8,8,8,8,8,8&activation=tanh"
    "&inputs=x1,x2,x1^2,x2^2,x1x2,sin x1,sin x2&lr=0.03&batch=10"
)
#: "A deeper network on the spirals" (3 hidden layers of 8, 8, 6 tanh neurons on 4 inputs): what a class plays in
#: nnref bench --only classroom.
DEEPER = "#preset=deeper-net-on-spirals"


def _browser(playwright):
    from .chromium import open_browser

    return open_browser(playwright)


def _open(browser, url: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url)
    page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
    return page


def _fps(pages, seconds: float) -> list[float]:
    """Frames each page drew per second over ``seconds`` (they all play meanwhile)."""
    start = [p.evaluate("window.nnrefLab.frames") for p in pages]
    t = time.perf_counter()
    pages[0].wait_for_timeout(seconds * 1000)
    elapsed = time.perf_counter() - t
    return [(p.evaluate("window.nnrefLab.frames") - s) / elapsed for p, s in zip(pages, start)]


def _latencies(page, changes: int, playing: bool = False) -> list[float]:
    """Milliseconds from a change to the first frame that shows it: the learning rate, and a neuron removed from
    (then added back to) the first layer — a new network, which starts paused: while ``playing``, Play is pressed
    again after it."""
    rates = ["0.01", "0.03", "0.1"]
    for i in range(changes):
        if i % 2:
            page.get_by_label("Learning rate").select_option(rates[i % 3])
        else:
            page.get_by_role(
                "button", name="Remove neuron from layer 1" if i % 4 == 0 else "Add neuron to layer 1"
            ).click()
        page.wait_for_function("() => window.nnrefLab.version === window.nnrefLab.sent", timeout=10_000)
        if playing and not page.evaluate("window.nnrefLab.playing"):
            page.get_by_role("button", name="Play").click()
            page.wait_for_function("() => window.nnrefLab.playing", timeout=10_000)
    return page.evaluate("window.nnrefLab.latencies")[-changes:]


def measure_playground(seconds: float = 10.0, pages: int = 4) -> dict:
    """The playground's figures, from a lab served in this process and pages in one headless Chromium."""
    from playwright.sync_api import sync_playwright

    from ..lab.server import LabServer

    with LabServer(max_sessions=pages + 1) as lab, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = _open(browser, lab.url + LARGEST)
        paused_latency = _latencies(page, 8)
        page.get_by_role("button", name="Play").click()
        one = _fps([page], seconds)[0]
        draw_ms = page.evaluate("window.nnrefLab.drawMs")
        view = _backprop_fps(page, seconds)
        playing_latency = _latencies(page, 8, playing=True)
        epoch_rate = page.evaluate("window.nnrefLab.epoch")
        page.get_by_role("button", name="Pause").click()
        page.wait_for_function("() => !window.nnrefLab.playing")
        cpu = _cpu_seconds()
        page.wait_for_timeout(seconds * 1000)
        paused_cpu = (_cpu_seconds() - cpu) / seconds
        pictures_ms = _pictures_ms(page)
        deeper = _open(browser, lab.url + DEEPER)
        deeper_ms = _pictures_ms(deeper)
        deeper.close()
        others = [_open(browser, lab.url + LARGEST) for _ in range(pages - 1)]
        for p in [page, *others]:
            p.get_by_role("button", name="Play").click()
        several = _fps([page, *others], seconds)
        browser.close()
    return {
        "fps_one_page": one,
        "draw_ms": draw_ms,
        "pictures_ms": pictures_ms,
        "pictures_ms_deeper": deeper_ms,
        "fps_each_of_several": several,
        "latency_paused_ms": paused_latency,
        "latency_playing_ms": playing_latency,
        "paused_cpu_share": paused_cpu,
        "epochs": epoch_rate,
        **view,
    }


def _backprop_fps(page, seconds: float, rounds: int = 3) -> dict:
    """Frames per second with the backward pass view open (its worked example on every frame) and closed, the two
    taking turns for ``rounds`` rounds of ``seconds`` / 2 each: medians."""
    toggle = page.get_by_role("button", name="Backward pass")
    if not page.evaluate("() => window.nnrefLab.state().instance.length"):
        _pick(page)
    rates: dict = {"true": [], "false": []}
    for _ in range(rounds):
        for wanted in ("true", "false"):
            if toggle.get_attribute("aria-pressed") != wanted:
                toggle.click()
            page.wait_for_function("() => window.nnrefLab.version === window.nnrefLab.sent", timeout=10_000)
            rates[wanted].append(_fps([page], seconds / 2)[0])
    return {
        "fps_backprop_open": statistics.median(rates["true"]),
        "fps_backprop_closed": statistics.median(rates["false"]),
    }


_PICTURES = """async (rounds) => {
  const {pictures} = await import("/static/lab/pictures.js");
  const frame = window.nnrefLabFrame(), times = [];
  for (let r = 1; r <= rounds; r++) {
    const header = structuredClone(frame);
    header.network.layers[0].b[0] += 1e-12 * r;  // (other weights than the last frame's: nothing kept is reused)
    const start = performance.now();
    pictures(header, null);
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(rounds / 2)];
}"""


def _pictures_ms(page, rounds: int = 50) -> float:
    """Median milliseconds the page takes to compute a frame's pictures from its weights (static/lab/model.js: the
    heat map and every neuron's picture), recomputed ``rounds`` times in the page on the last frame's weights."""
    return page.evaluate(_PICTURES, rounds)


def _pick(page) -> None:
    """An instance for the backward pass view: the first training point."""
    page.get_by_role("button", name="Backward pass").click()
    page.get_by_role("button", name="Next point").click()
    page.wait_for_function("() => window.nnrefLab.state().instance.length === 3", timeout=10_000)


def _cpu_seconds() -> float:
    """CPU time of this process (the lab's server runs in it; Chromium is another process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_digit_page(checkpoint, data_root, strokes: int = 20) -> dict:
    """Milliseconds from the end of each stroke on the draw-a-digit page to the prediction and to the neighbours
    (KNN over all 60,000 training images), each stroke a new digit drawn with the mouse."""
    from playwright.sync_api import sync_playwright

    from ..lab.digits import DigitsBackend
    from ..lab.server import LabServer

    backend = DigitsBackend.load(checkpoint, data_root=data_root)
    with LabServer(digits=backend) as lab, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.goto(lab.base + "/digits")
        page.wait_for_function("() => window.nnrefDigits && window.nnrefDigits.ready", timeout=60_000)
        box = page.get_by_role("img", name="Draw a digit").bounding_box()
        for i in range(strokes):
            page.get_by_role("button", name="Clear").click()
            x, y, dx = box["x"], box["y"], (i % 5) * 8
            page.mouse.move(x + 70 + dx, y + 60)
            page.mouse.down()
            page.mouse.move(x + 210, y + 60 + dx, steps=10)
            page.mouse.move(x + 120 - dx, y + 240, steps=12)
            page.mouse.up()
            page.wait_for_function("(n) => window.nnrefDigits.neighbours >= n", arg=i + 1, timeout=30_000)
        stats = page.evaluate("window.nnrefDigits")
        browser.close()
    return {"prediction_ms": stats["predictionMs"], "neighbours_ms": stats["neighboursMs"]}


@section("lab")
def lab_section(ctx: Context) -> list[dict]:
    """The lab's playground in headless Chromium: frames drawn per second for the largest network (6 layers × 8 tanh
    neurons, all 7 inputs, heat map and every neuron's picture), how soon a change shows, four pages playing at
    once, and the CPU a paused page costs.  The reference column is the target."""
    m = measure_playground(ctx.profile.lab_seconds, ctx.profile.lab_pages)
    latency = m["latency_paused_ms"] + m["latency_playing_ms"]
    return [
        {
            "name": "lab: frames per second, largest network, one page playing",
            "nnref": m["fps_one_page"],
            "reference": 30.0,
            "unit": "fps",
            "ratio": m["fps_one_page"] / 30,
            "aim": "TensorFlow Playground's 60",
            "page_draw_ms": round(m["draw_ms"], 1),  # the page's own work on a frame, pictures included
            "pictures_ms": round(m["pictures_ms"], 1),  # of which the heat map's and the neurons' values
            "deeper_spirals_pictures_ms": round(m["pictures_ms_deeper"], 1),  # the same for a smaller network
        },
        {
            "name": f"lab: frames per second of each of {ctx.profile.lab_pages} pages playing at once (slowest)",
            "nnref": min(m["fps_each_of_several"]),
            "reference": 10.0,
            "unit": "fps",
            "ratio": min(m["fps_each_of_several"]) / 10,
            "each": [round(v, 1) for v in m["fps_each_of_several"]],
        },
        {
            "name": "lab: a change (learning rate, a neuron) to the frame that shows it, median / slowest",
            "nnref": statistics.median(latency),
            "reference": 100.0,
            "unit": "ms",
            "ratio": max(latency) / 100,
            "slowest_ms": max(latency),
            "paused_median_ms": statistics.median(m["latency_paused_ms"]),
            "playing_median_ms": statistics.median(m["latency_playing_ms"]),
        },
        {
            "name": "lab: frames per second with the backward pass view open, against closed (largest network)",
            "nnref": m["fps_backprop_open"],
            "reference": m["fps_backprop_closed"],
            "unit": "fps",
            "ratio": m["fps_backprop_open"] / m["fps_backprop_closed"],
        },
        {
            "name": "lab: CPU of the server while its one page is paused",
            "nnref": 100 * m["paused_cpu_share"],
            "reference": 1.0,
            "unit": "% of a core",
            "ratio": m["paused_cpu_share"] * 100,
        },
    ]
