"""nnref.checkpoint: atomic writes, checked loading, the RNG states and the loop's state round trip."""

from __future__ import annotations

import random

import pytest
import torch

from nnref.run.checkpoint import TrainState, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from nnref.run.config import TrainingError


def test_save_is_atomic_a_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"format": 2, "config": {}, "value": 1})

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(
        TrainingError,
        match=r"could not write the checkpoint .*checkpoint.pt: disk full; the previous "
        r"checkpoint is intact",
    ):
        save_checkpoint(path, {"format": 2, "config": {}, "value": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind


def test_load_names_the_problem(tmp_path):
    with pytest.raises(TrainingError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="could not be read as an nnref checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(TrainingError, match="not an nnref checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_train_state_round_trips_through_a_weights_only_file(tmp_path):
    state = TrainState(epoch=2, global_step=37, batches_done=5)
    state.add_batch(torch.tensor(0.5), torch.tensor(3), 4)
    state.add_batch(torch.tensor(0.25), torch.tensor(4), 4)
    save_checkpoint(tmp_path / "c.pt", {"format": 2, "config": {}, **state.to_dict()})
    back = TrainState.from_dict(load_checkpoint(tmp_path / "c.pt"))
    assert (back.epoch, back.global_step, back.batches_done) == (2, 37, 5)
    assert back.epoch_stats.tolist() == [3.0, 7.0, 8.0]  # loss sum, correct, count
    assert back.window.tolist() == [3.0, 8.0]  # loss sum, count since the last log point
    back.end_epoch()
    assert back.epoch == 3 and back.batches_done == 0 and back.epoch_stats.tolist() == [0, 0, 0]
    assert back.window.tolist() == [3.0, 8.0]  # the log window spans epochs


def test_format_1_checkpoints_without_a_window_still_load():
    old = {"epoch": 1, "global_step": 10, "batches_done": 0, "epoch_stats": torch.zeros(3)}
    assert TrainState.from_dict(old).window.tolist() == [0.0, 0.0]


def test_rng_state_round_trip(tmp_path):
    random.seed(1)
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "c.pt", {"format": 2, "config": {}, "rng": rng_state()})
    expected = (random.random(), torch.rand(3))
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert random.random() == expected[0] and torch.equal(torch.rand(3), expected[1])
