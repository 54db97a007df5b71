"""The load generator records every RPC, attributes it to a backend, and stops cleanly."""

from __future__ import annotations

import threading
import time

import pytest

from chaos import profiles
from chaos.history import History
from chaos.load import Load
from fleet.controller import Fleet


@pytest.fixture(scope="module")
def fleet():
    with Fleet(3, net="127.0.204.0/24") as fleet:
        yield fleet


@pytest.fixture
def make_channel(fleet):
    fleet.reset()
    info, profile = fleet.info(), profiles.load("naive")
    return lambda: profile.channel(info, aio=True)


def test_closed_loop_records_every_rpc_on_one_clock(make_channel):
    history = History()
    before = time.monotonic_ns()
    with Load(make_channel, history, concurrency=4) as load:
        load.wait_for(300, timeout=20)
    rpcs = history.rpcs
    assert len(rpcs) == load.completed >= 300
    assert len({r.id for r in rpcs}) == len(rpcs)
    assert all(before <= r.start_ns <= r.end_ns <= time.monotonic_ns() for r in rpcs)
    assert {r.backend for r in rpcs} == {"b1", "b2", "b3"}
    assert {r.code for r in rpcs} == {"OK"}


def test_nothing_is_recorded_after_stop_and_the_thread_is_gone(make_channel):
    history = History()
    load = Load(make_channel, history, concurrency=4).start()
    load.wait_for(50, timeout=20)
    load.stop()
    count = len(history.rpcs)
    assert not any(t.name == "chaos-load" and t.is_alive() for t in threading.enumerate())
    time.sleep(0.1)  # a window in which a leaked worker would record more
    assert len(history.rpcs) == count


def test_failed_rpcs_keep_their_backend_and_code(fleet, make_channel):
    fleet.app_fault("b1", "UNAVAILABLE", details="planned")
    history = History()
    with Load(make_channel, history, concurrency=4) as load:
        load.wait_until(
            lambda: sum(r.backend == "b1" for r in history.rpcs) >= 20, 20, "20 RPCs on b1"
        )
    on_b1 = [r for r in history.rpcs if r.backend == "b1"]
    assert {(r.code, r.details) for r in on_b1} == {("UNAVAILABLE", "planned")}
    assert all(r.ok for r in history.rpcs if r.backend != "b1")


def test_open_loop_launches_at_the_rate_asked(make_channel):
    history = History()
    started = time.monotonic()  # before the first launch, so the bound below is strict
    with Load(make_channel, history, rate=100) as load:
        load.wait_for(100, timeout=20)
        elapsed = time.monotonic() - started
    # 100 completed RPCs need 100 launches, the last 99 intervals of 10 ms after the first:
    # never sooner (a closed loop would do thousands per second here), and late only by
    # what load adds (a loose bound: it catches a loop that does not keep its schedule).
    promised = 99 / 100
    assert promised - 0.0005 <= elapsed <= promised + 1.0, elapsed  # 0.5 ms: clock reads
    assert load.skipped == 0


def test_deadline_applies_to_each_rpc(fleet, make_channel):
    fleet.app_fault("b2", delay_ms=2000)
    history = History()
    with Load(make_channel, history, concurrency=3, deadline_s=0.2) as load:
        load.wait_until(
            lambda: any(r.code == "DEADLINE_EXCEEDED" for r in history.rpcs),
            20,
            "a deadline exceeded",
        )
    late = [r for r in history.rpcs if r.code == "DEADLINE_EXCEEDED"]
    # Never before the 0.2 s deadline (less 1 ms: gRPC keeps deadlines in whole ms); late
    # only by what load adds to recording the failure (a loose second). A deadline 6 to 10
    # times too long fails that bound; a longer one sees the 2 s answer, no failure at all.
    assert all(0.199e9 <= r.latency_ns <= 1.2e9 for r in late), [r.latency_ns for r in late]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"concurrency": 0}, "concurrency 0"),
        ({"rate": 0}, "rate 0"),
        ({"deadline_s": 0}, "deadline 0"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Load(lambda: None, History(), **kwargs)


def test_a_failing_channel_factory_surfaces_in_the_caller():
    def broken():
        raise OSError("no channel today")

    with pytest.raises(RuntimeError, match="no channel today"):
        Load(broken, History()).start()
