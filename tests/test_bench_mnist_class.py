"""nnref.bench.mnist_class: a class of /mnist pages, as websocket clients that read and acknowledge every frame — a
tiny run on tiny synthetic MNIST (``tiny_mnist``: 600 training digits, 100 held out)."""

from __future__ import annotations

from nnref.bench.mnist_class import format_mnist_class, measure_mnist_class, play_mnist_class
from nnref.lab.mnist.dataset import SharedMNIST
from nnref.lab.server import LabServer


def test_a_class_of_three_pages_on_a_lab_of_its_own(tiny_mnist, monkeypatch):
    """A lab started in a subprocess (its MNIST from $NNREF_DATA_ROOT): one page alone, then three at once; every
    page gets frames, reaches 90% on the easy synthetic digits, and the server's CPU and memory are measured."""
    monkeypatch.setenv("NNREF_DATA_ROOT", str(tiny_mnist))
    rows = measure_mnist_class(pages=3, seconds=2.0)
    assert [r["pages"] for r in rows] == [1, 3]
    for r in rows:
        assert not r["errors"] and r["foreign_frames"] == 0 and r["received_min"] >= 3, r
        assert r["fps_min"] > 0 and r["epochs_per_s_min"] > 0 and r["bytes_per_frame"] > 10 * 784
        assert r["reached_90"] == r["pages"] and 0 < r["to_90_s_median"] <= r["to_90_s_max"] < 2.0
        assert r["server_cpu"] > 0 and r["server_rss_mib"] > 100 and r["pause_to_test_s_max"] is not None
        assert r["latency_ms_median"] is not None
    assert rows[0]["mib_per_extra_page"] is None and rows[1]["mib_per_extra_page"] is not None
    table = format_mnist_class(rows)
    assert "3 /mnist pages at once" in table and "(3 of 3)" in table


def test_a_page_that_does_not_learn_is_told_apart(tiny_mnist):
    """Two pages on a lab in this process: one learns, one with a learning rate of 1e-6 does not — the second never
    reaches 90% (None), and the class's slowest time is None."""
    with LabServer(mnist=SharedMNIST(tiny_mnist, download=False)) as lab:
        pages, usage = play_mnist_class(lab.base, [{"seed": 0}, {"seed": 1, "lr": 1e-6}], seconds=2.0)
    learns, stuck = pages
    assert learns.to_target is not None and learns.accuracy >= 0.9
    assert stuck.to_target is None and stuck.accuracy < 0.9 and stuck.frames > 0
    assert usage == {}  # (no server process named: nothing measured of it)
