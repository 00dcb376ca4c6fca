"""nnref.run.records: what a run leaves for people to read — status.json (atomic, read back whole or as {}) and
the one way nnref opens a TensorBoard writer."""

from __future__ import annotations

import json

from nnref.run.records import STATUS_FILE, open_writer, read_status, write_status


def test_a_status_is_written_whole_and_read_back(tmp_path):
    write_status(tmp_path, "train", "running", step=7, message="epoch 1", config={"lr": 0.1})
    status = read_status(tmp_path)
    assert {k: status[k] for k in ("kind", "status", "step", "message", "config")} == {
        "kind": "train",
        "status": "running",
        "step": 7,
        "message": "epoch 1",
        "config": {"lr": 0.1},
    }
    write_status(tmp_path, "train", "finished", step=9)
    assert read_status(tmp_path)["status"] == "finished"
    assert [p.name for p in tmp_path.iterdir()] == [STATUS_FILE]  # no temporary file left beside it


def test_a_missing_or_torn_status_reads_as_nothing(tmp_path):
    assert read_status(tmp_path) == {}
    (tmp_path / STATUS_FILE).write_text('{"kind": "tr')
    assert read_status(tmp_path) == {}


def test_a_writer_opened_again_at_once_writes_a_later_event_file(tmp_path):
    """TensorBoard reads event files in the order of their names (the second each was made): a resumed run's
    writer, opened within the same second, must sort after the first."""
    with open_writer(tmp_path) as first:
        first.add_scalar("loss", 1.0, 0)
    with open_writer(tmp_path, purge_step=1) as second:
        second.add_scalar("loss", 0.5, 1)
    names = sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))
    assert len(names) == 2 and int(names[0].split(".")[3]) < int(names[1].split(".")[3])
    assert json.loads(json.dumps(read_status(tmp_path))) == {}  # a writer writes no status
