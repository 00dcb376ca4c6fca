"""TensorBoard in a real browser: what a student sees of a run, checked in the rendered page (headless Chromium).

Outside CI a missing browser skips these tests with the install command; ``.ci/run`` installs Chromium and
sets NNREF_REQUIRE_BROWSER=1, so there a missing browser fails them.
"""

from __future__ import annotations

import pytest
import tensorboard_view as tbview
from browser import require_browser
from helpers import train_args

from nnref.bench import chromium
from nnref.cli import main

pytestmark = pytest.mark.browser

require_browser()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A TensorBoard server over a softmax run, an MLP run and a playground run, and a browser page on it."""
    from conftest import make_tiny_mnist
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("tb")
    root, logdir = make_tiny_mnist(tmp / "data"), tmp / "runs"
    assert main(train_args(root, logdir, "softmax", "--epochs", "3", run_name="softmax")) == 0
    assert main(train_args(root, logdir, "mlp", "--epochs", "2", "--hidden", "16", run_name="mlp")) == 0
    assert (
        main(
            [
                "playground",
                "--dataset",
                "xor",
                "--model",
                "logreg",
                "--steps",
                "200",
                "--snapshots",
                "4",
                "--logdir",
                str(logdir),
                "--run-name",
                "playground",
                "--quiet",
            ]
        )
        == 0
    )
    with tbview.TensorBoardServer(logdir) as server, sync_playwright() as playwright:
        server.wait_for_runs(["softmax", "softmax/train", "softmax/val", "mlp", "playground/xor/logreg"])
        browser = chromium.open_browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.server, page.shots = server, tmp / "screenshots"
        page.shots.mkdir()
        yield page
        browser.close()


def test_runs_and_train_vs_validation_on_one_chart(page):
    tbview.time_series(page, page.server, "^(loss|accuracy)$")
    assert {"softmax", "softmax/train", "softmax/val", "mlp"} <= set(tbview.runs_listed(page))
    cards = {c["tag"]: c for c in tbview.scalar_cards(page)}
    assert {"loss", "accuracy"} <= set(cards), sorted(cards)
    for card in (cards["loss"], cards["accuracy"]):  # both curves of a run on one chart: over-fitting shows
        for run in ("softmax/train", "softmax/val", "mlp/train", "mlp/val"):
            assert run in card["table"], (card["tag"], card["table"])
        assert card["lines"] >= 4
    page.screenshot(path=str(page.shots / "time-series.png"))


def test_images_dashboard_shows_templates_confusion_matrix_and_mistakes(page):
    tbview.time_series(page, page.server, "weights/|test/")
    cards = tbview.image_cards(page)
    shown = {(c["tag"], run) for c in cards for run in ("softmax", "mlp") if run in c["text"]}
    for expected in (
        ("weights/templates", "softmax"),
        ("weights/first_layer_filters", "mlp"),
        ("test/confusion_matrix", "softmax"),
        ("test/misclassified", "softmax"),
    ):
        assert expected in shown, (expected, [c["text"][:60] for c in cards])
    assert all(c["width"] > 100 for c in cards)  # every image actually loaded and drawn
    page.screenshot(path=str(page.shots / "images.png"))


def test_playground_boundary_images_at_several_steps(page):
    tbview.time_series(page, page.server, "^boundary$")
    cards = [c for c in tbview.image_cards(page) if c["tag"] == "boundary" and "playground/xor/logreg" in c["text"]]
    assert cards, tbview.image_cards(page)
    assert all(c["steps"] >= 5 and c["width"] > 100 for c in cards)  # 4 snapshots and the first step: a slider


def test_hparams_table_has_each_run_with_its_final_metrics(page):
    cells = tbview.hparams_cells(page, page.server)
    assert {"accuracy/test", "accuracy/val", "loss/test"} <= set(cells)
    assert "softmax" in cells and "mlp" in cells
    numbers = [float(c) for c in cells if c.replace(".", "", 1).isdigit()]
    assert any(0.5 < v <= 1 for v in numbers)  # the accuracies are filled in, not blank
    page.screenshot(path=str(page.shots / "hparams.png"))
