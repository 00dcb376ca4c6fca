"""nnref.lab.trainer: the class's steps in a process of their own — each page where it would stand alone, the
server training on when the trainer dies, nothing left behind."""

from __future__ import annotations

import glob
import logging
import os
import random
import time

import pytest
import torch
from test_lab_crowd import _descent, _largest_difference, _setup, _weights, _WrongTanh

from nnref.exercises import use_functions
from nnref.lab.crowd import Crowd, assemble
from nnref.lab.trainer import _SHARED, Trainer


@pytest.fixture
def trainer():
    trainer = Trainer()
    trainer.start()
    deadline = time.time() + 60
    while not trainer.ready():
        assert time.time() < deadline and not trainer.failed, "the trainer process did not start"
        time.sleep(0.05)
    yield trainer
    trainer.close()


def _rounds_in(trainer: Trainer, descents: list, rounds: int, seconds: float = 0.03) -> None:
    """The class's rounds as the server runs them: each ends the last, makes the groups again, begins the next."""
    kept: dict = {}
    for _ in range(rounds):
        trainer.end()
        trainer.begin(assemble(descents, kept, alone=False))
        time.sleep(seconds)
    trainer.end()


def _alone(setup: dict, steps: int):
    d = _descent(setup)
    for _ in range(steps):
        d.step()
    return d


def test_each_page_stands_where_it_would_alone_and_goes_on_from_there(trainer):
    rng = random.Random(11)
    setups = [dict(_setup(rng), samples=100) for _ in range(8)]  # (one family: padded to one group)
    setups += [dict(setups[0], seed=s) for s in range(3)]  # (and pages of one shape)
    descents = [_descent(s) for s in setups]
    _rounds_in(trainer, descents, rounds=5)
    for s, d in zip(setups, descents):
        assert d.steps > 0, s
        alone = _alone(s, d.steps)
        assert _largest_difference(_weights(alone), _weights(d)) <= 1e-5, s
        assert d.epoch == alone.epoch
        for _ in range(7):  # (the batches go on as alone: each page's order and generator came back with it)
            d.step(), alone.step()
        assert _largest_difference(_weights(alone), _weights(d)) <= 1e-5, s


def test_a_group_made_again_between_rounds_keeps_every_page_where_it_was(trainer):
    rng = random.Random(12)
    setups = [dict(_setup(rng), samples=100) for _ in range(6)]
    descents = [_descent(s) for s in setups]
    kept: dict = {}
    trainer.begin(assemble(descents, kept, alone=False))
    time.sleep(0.03)
    trainer.end()
    descents[2].step()  # (a step of the page alone: the group is made again)
    descents[4].set_recipe(lr=0.01)  # (a slider moved: the recipe follows)
    setups[4]["lr"] = 0.01
    trainer.begin(assemble(descents, kept, alone=False))
    time.sleep(0.03)
    trainer.end()
    for j, (s, d) in enumerate(zip(setups, descents)):
        if j == 4:
            continue  # (its recipe changed midway: checked below)
        alone = _alone(s, d.steps)
        assert _largest_difference(_weights(alone), _weights(d)) <= 1e-5, s
    assert descents[4].steps > 0 and torch.isfinite(torch.cat([p.flatten() for p in _weights(descents[4])])).all()


def test_a_paused_class_leaves_the_trainer_idle(trainer):
    import psutil

    descents = [_descent(dict(_setup(random.Random(5)), seed=s)) for s in range(4)]
    _rounds_in(trainer, descents, rounds=2)
    steps = [d.steps for d in descents]
    process = psutil.Process(trainer.process.pid)
    before = sum(process.cpu_times()[:2])
    time.sleep(0.5)
    assert sum(process.cpu_times()[:2]) - before < 0.05  # (waiting for the next round, not stepping)
    assert [d.steps for d in descents] == steps and not trainer.running


def test_the_trainer_leaves_no_shared_memory_behind(trainer):
    descents = [_descent(dict(_setup(random.Random(6)), seed=s)) for s in range(3)]
    _rounds_in(trainer, descents, rounds=2)
    trainer.close()
    assert not glob.glob(os.path.join(_SHARED, f"nnref-lab-{os.getpid()}-*"))


def _class(count: int):
    from nnref.bench.classroom import random_setup
    from nnref.lab.session import PlaygroundSession

    rng = random.Random(36)
    sessions = [PlaygroundSession(random_setup(rng)) for _ in range(count)]
    for s in sessions:
        s.playing = True
    return sessions


def test_the_class_trains_on_when_the_trainer_dies_and_the_log_says_so_once(trainer, caplog):
    sessions = _class(6)
    crowd = Crowd(0.005, trainer=trainer)
    assert crowd._beside()
    for _ in range(3):
        crowd._round_beside(sessions, sessions)
        time.sleep(0.02)
    steps = sum(d.steps for s in sessions for d in s.training())
    assert steps > 0
    trainer.process.kill()
    trainer.process.wait()
    with caplog.at_level(logging.WARNING, logger="nnref.lab"):
        for _ in range(4):
            frames = crowd._round_beside(sessions, sessions) if crowd._beside() else crowd._round(sessions)
            assert set(frames) == set(sessions)
    assert sum(d.steps for s in sessions for d in s.training()) > steps  # (the server trains them itself)
    said = [r.getMessage() for r in caplog.records if "trainer" in r.getMessage()]
    assert len(said) == 1 and "trains the class itself" in said[0], said


def test_a_student_s_functions_train_in_the_server_not_in_the_trainer(trainer):
    crowd = Crowd(0.005, trainer=trainer)
    assert crowd._beside()
    with use_functions({"TanhFunction": _WrongTanh}):
        assert not crowd._beside()  # (the trainer computes with nnref's own)


def test_a_lab_s_class_trains_in_its_trainer_and_the_trainer_ends_with_the_lab():
    from nnref.bench.classroom import play_class, random_setup
    from nnref.lab.server import LabServer

    rng = random.Random(40)
    setups = [random_setup(rng) for _ in range(10)]
    with LabServer(max_sessions=20) as lab:
        trainer = lab.app.state.crowd.trainer
        play_class(lab.url, setups[:1], seconds=0.5)  # (the first page starts the trainer)
        deadline = time.time() + 60
        while not trainer.ready():
            assert time.time() < deadline and not trainer.failed, "the trainer process did not start"
            time.sleep(0.05)
        pages = play_class(lab.url, setups, seconds=3)
        assert trainer.sent and not trainer.failed  # (the class's groups went to the trainer)
        for p in pages:
            assert p.frames > 0 and not p.errors and p.foreign == 0, p
            assert p.epochs > 0 or p.diverged, p
        process = trainer.process
    assert process.poll() is not None  # (the lab closed: its trainer is gone)
    assert not glob.glob(os.path.join(_SHARED, f"nnref-lab-{os.getpid()}-*"))
