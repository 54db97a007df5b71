"""Per-RPC backend attribution from channelz, held against the x-backend-id the fleet's
backends send (the truth here): exact when it answers, unknown rather than wrong."""

from __future__ import annotations

import asyncio

import pytest

from chaos import profiles
from chaos.history import History
from chaos.load import Load
from chaos.observe.attribution import DIRTY_SEGMENT, MAYBE_RETRIED, Attribution
from fleet.controller import Fleet

WARM_RPCS = 50  # the RPCs started before the channel connected are unknown by design


@pytest.fixture(scope="module")
def fleet():
    with Fleet(3, net="127.0.217.0/24") as fleet:
        yield fleet


class AttributedHistory(History):
    """The history of a load that attributes its RPCs; ``attributed`` is what the
    attribution said of each (the history keeps the trailer's answer: the truth here)."""

    attribution: Attribution

    @property
    def attributed(self) -> dict[int, str | None]:
        return self.attribution.answers


def attributed_load(fleet, concurrency: int) -> tuple[Load, AttributedHistory]:
    fleet.reset()
    info, profile = fleet.info(), profiles.load("recommended")
    history = AttributedHistory()
    load = Load(lambda: profile.channel(info, aio=True), history, concurrency=concurrency)
    history.attribution = load.attribution = Attribution(
        lambda: load.channelz_id, {b["address"]: b["id"] for b in info["backends"]}
    )
    return load, history


def after_warm_up(history: AttributedHistory) -> list:
    return [r for r in history.rpcs if r.id > WARM_RPCS]


def mismatches(history: AttributedHistory, rpcs) -> list:
    return [
        (r.id, r.code, r.backend, history.attributed[r.id])
        for r in rpcs
        if history.attributed[r.id] not in (None, r.backend)
    ]


def test_sequential_rpcs_are_attributed_exactly(fleet):
    load, history = attributed_load(fleet, concurrency=1)
    with load:
        load.wait_for(WARM_RPCS + 150, timeout=60)
    rpcs = after_warm_up(history)
    assert len(rpcs) >= 150 and {r.backend for r in rpcs} == {"b1", "b2", "b3"}
    # Never another backend's; unattributed at most rarely: on a machine at load ~9 (make
    # test beside a campaign with two burners) one RPC in 150 was left unattributed —
    # which the attribution promises instead of a guess.
    assert mismatches(history, rpcs) == []
    exact = sum(history.attributed[r.id] == r.backend for r in rpcs)
    assert exact >= 0.99 * len(rpcs), history.attribution.outcomes


def test_under_load_no_rpc_is_attributed_to_another_backend(fleet):
    # bench/bench_attribution.py: 100 % of 10,000 RPCs exact at 16 and 64 in flight, steady.
    load, history = attributed_load(fleet, concurrency=16)
    with load:
        load.wait_for(WARM_RPCS + 1500, timeout=120)
    rpcs = after_warm_up(history)
    exact = sum(history.attributed[r.id] == r.backend for r in rpcs)
    assert mismatches(history, rpcs) == []
    assert exact >= 0.99 * len(rpcs), history.attribution.outcomes


def test_a_kill_and_restart_under_load_misattributes_no_rpc(fleet):
    # The kill's retries and the new connection's health-check stream are attempts the
    # client did not start: the RPCs around them may be unknown, never another backend's.
    load, history = attributed_load(fleet, concurrency=16)
    with load:
        load.wait_for(WARM_RPCS + 300, timeout=60)
        fleet.kill("b2")
        killed = history.now()
        load.wait_for(200, timeout=60)
        fleet.restart("b2")
        load.wait_until(
            lambda: any(r.backend == "b2" and r.start_ns > killed for r in history.rpcs),
            30,
            "b2 serving again",
        )
        load.wait_for(300, timeout=60)
    rpcs = after_warm_up(history)
    exact = sum(history.attributed[r.id] == r.backend for r in rpcs)
    assert mismatches(history, rpcs) == []
    assert exact >= 0.95 * len(rpcs), history.attribution.outcomes


def test_a_retried_rpc_is_never_given_its_first_attempts_backend(fleet):
    # b1 fails its next 3 calls with UNAVAILABLE (Trailers-Only, so retryable): the
    # recommended profile replays each on another backend, which answers.
    load, history = attributed_load(fleet, concurrency=1)
    with load:
        load.wait_for(WARM_RPCS, timeout=60)
        fleet.app_fault("b1", "UNAVAILABLE", next_n=3)
        load.wait_until(
            lambda: fleet.stats("b1")["by_code"].get("UNAVAILABLE", 0) >= 3, 30, "b1 failed 3 calls"
        )
        load.wait_for(30, timeout=60)
    rpcs = after_warm_up(history)
    assert all(r.ok for r in rpcs)
    assert mismatches(history, rpcs) == []
    unknown = [r for r in rpcs if history.attributed[r.id] is None]
    assert len(unknown) == 3 and {r.backend for r in unknown} <= {"b2", "b3"}
    # Unknown because gRPC started an attempt the client did not: the retry.
    assert {history.attribution.reasons[r.id] for r in unknown} <= {MAYBE_RETRIED, DIRTY_SEGMENT}


def test_a_failure_a_backend_answered_is_attributed_to_it(fleet):
    # INTERNAL is not retried: the client sees b1's failure, with b1's id in the trailers.
    load, history = attributed_load(fleet, concurrency=1)
    with load:
        load.wait_for(WARM_RPCS, timeout=60)
        fleet.app_fault("b1", "INTERNAL", next_n=3)
        load.wait_until(
            lambda: sum(r.code == "INTERNAL" for r in history.rpcs) >= 3, 30, "3 RPCs failed by b1"
        )
    failed = [r for r in after_warm_up(history) if not r.ok]
    assert [(r.code, r.backend) for r in failed] == [("INTERNAL", "b1")] * 3
    assert [history.attributed[r.id] for r in failed] == ["b1"] * 3


def test_a_task_factory_that_could_start_calls_early_is_refused():
    attribution = Attribution(1, {})

    async def start():
        asyncio.get_running_loop().set_task_factory(
            lambda loop, coro, **kw: asyncio.Task(coro, loop=loop, **kw)
        )
        attribution.starting(1)

    with pytest.raises(RuntimeError, match="default task factory"):
        asyncio.run(start())
