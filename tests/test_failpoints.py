"""nnref.run.failpoints: named places where a test makes a real failure happen — parsed, matched by count and
rank, inert when unarmed."""

from __future__ import annotations

import errno

import pytest

from nnref.run import failpoints
from nnref.run.failpoints import PLACES, armed, failpoint


def test_an_unarmed_place_does_nothing():
    for place in PLACES:
        failpoint(place, 3)


def test_enospc_fires_at_the_nth_time_a_place_is_reached_and_only_then():
    with armed("checkpoint-write@2=enospc"):
        failpoint("checkpoint-write")  # the first write passes
        with pytest.raises(OSError) as info:
            failpoint("checkpoint-write")
        assert info.value.errno == errno.ENOSPC
        failpoint("checkpoint-write")  # the third passes again
    failpoint("checkpoint-write")  # disarmed after the block


def test_a_place_that_passes_a_number_matches_that_number(monkeypatch):
    with armed("step@37=enospc"):
        failpoint("step", 36)
        with pytest.raises(OSError):
            failpoint("step", 37)


def test_a_point_for_another_rank_or_a_restarted_job_stays_quiet(monkeypatch):
    with armed("step@1=enospc#1"):
        monkeypatch.setenv("RANK", "0")
        failpoint("step", 1)  # rank 0: not this point's rank
        monkeypatch.setenv("RANK", "1")
        monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
        failpoint("step", 1)  # torchrun's restarted group carries on
        monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
        with pytest.raises(OSError):
            failpoint("step", 1)


@pytest.mark.parametrize("spec", ["nowhere=kill", "step@3=explode", "step=kill#x"])
def test_a_malformed_spec_is_refused_with_the_grammar(spec):
    with pytest.raises(ValueError, match=r"NNREF_FAILPOINT: .* is not PLACE\[@N\]=ACTION\[#RANK\]"):
        failpoints._parse(spec)
