"""The fuzzer's load with idle gaps, on a real (unproxied) fleet: nothing is sent in a gap,
closed loop or open loop, the same client carries on after it, and the gap is recorded."""

from __future__ import annotations

import pytest

from chaos import profiles
from chaos.fuzz.load_shape import ShapedLoad
from chaos.fuzz.model import IDLE
from chaos.history import History
from fleet.controller import Fleet

MS = 1_000_000
# Gaps are 400 ms long: far longer than an RPC on loopback (ms), so "nothing started in
# the gap" is a real claim; the load runs 300 ms before and after.
GAP_MS = 400


@pytest.fixture(scope="module")
def fleet():
    with Fleet(3) as running:
        yield running


@pytest.mark.parametrize("shape", [{"concurrency": 4}, {"rate": 200.0}], ids=["closed", "open"])
def test_nothing_is_sent_in_an_idle_gap_and_the_same_client_goes_on(fleet, shape):
    profile, info, history = profiles.load("naive"), fleet.info(), History()
    load = ShapedLoad(lambda: profile.channel(info, aio=True), history, **shape)
    with load:
        load.wait_for(20, timeout=10)
        start = history.now() + 100 * MS
        load.set_idle([(start, start + GAP_MS * MS)], history)
        channel = load.channelz_id
        load.wait_until(
            lambda: history.now() > start + (GAP_MS + 300) * MS, 10, "the gap and 300 ms after it"
        )
    in_gap = [r for r in history.rpcs if start <= r.start_ns < start + GAP_MS * MS]
    after = [r for r in history.rpcs if r.start_ns >= start + GAP_MS * MS]
    assert in_gap == []
    assert len(after) >= 10 and all(r.ok for r in history.rpcs)
    assert load.channelz_id == channel  # one client throughout
    gaps = [e for e in history.events if e.kind == IDLE]
    assert [(e.start_ns, e.end_ns) for e in gaps] == [(start, start + GAP_MS * MS)]
