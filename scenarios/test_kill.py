"""Kill: a backend process dies with kill -9 while the client is busy."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Kill, SlowHandler

pytestmark = pytest.mark.kill


@pytest.mark.detects(pick_first="balance_exact")
def test_round_robin_spreads_then_kill_moves_every_rpc_to_survivors(chaos):
    """Property: on a warm channel 30 sequential RPCs go round robin — 10/10/10, each
    backend once per round, every round in the same order; after kill -9 of b2 every later
    RPC is served by b1 or b3.

    Bound: none in time — the client is given the moment it needs to see the connection
    break (a deadline of 10 s, far above the few ms it takes); what is checked is where the
    next 30 RPCs go.
    """
    with chaos.channel() as channel:
        hello = chaos.hello(channel)
        chaos.spread_calls(hello)
        warm = chaos.history.mark("warm")
        for _ in range(30):
            hello()
        chaos.expect(checks.balance_exact(chaos.history, chaos.fleet.ids, start_ns=warm))
        kill = chaos.nemesis.inject(Kill("b2"))
        chaos.wait_until(lambda: all(hello(tolerate=True) not in (None, "b2")
                                     for _ in range(3)), 10, "b2 out of rotation")
        after = chaos.history.mark("b2 out")
        for _ in range(30):
            hello()
        chaos.expect(checks.no_traffic_to(chaos.history, target="b2", start_ns=after))
        chaos.expect(checks.balance_exact(chaos.history, ["b1", "b3"], start_ns=after))
        chaos.check(checks.failover_time(chaos.history, target="b2", after_ns=kill.start_ns,
                                         bound_ms=10_000))


@pytest.mark.detects(naive="errors", pick_first="errors")
def test_kill_under_load_loses_no_rpc(chaos):
    """Property: kill -9 of the busiest of three backends under load (16 in flight, its
    handlers taking 20 ms so that RPCs are always in flight on it) costs no client-visible
    error, and within 1 s every RPC succeeds on the two survivors.

    Bound: 0 failed RPCs — the RPCs in flight on the dead backend have no answer yet, so a
    retry policy on UNAVAILABLE replays them on a survivor; failover within 1000 ms — the
    connection breaks at once (the proxy closes it when the backend's socket dies), so
    gRPC needs only milliseconds; the margin is for a busy 2-core machine.
    """
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(300, timeout=10)
    target = chaos.busiest(warm)
    chaos.nemesis.inject(SlowHandler(target, delay_ms=20))
    chaos.wait_until(lambda: chaos.fleet.stats(target)["in_flight"] > 0, 5,
                     f"RPCs in flight on {target}")
    kill = chaos.nemesis.inject(Kill(target))
    load.wait_for(1500, timeout=20)
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
    chaos.expect(checks.failover_time(chaos.history, target=target, after_ns=kill.start_ns,
                                      bound_ms=1000))
