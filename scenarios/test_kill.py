"""Kill: a backend process dies with kill -9 while the client is busy."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Kill, Restart

pytestmark = pytest.mark.kill


@pytest.mark.detects(pick_first="balance_exact")
def test_round_robin_spreads_then_kill_moves_every_rpc_to_survivors(chaos):
    """Property: on a warm channel 30 sequential RPCs go round robin — 10/10/10, each
    backend once per round, every round in the same order; after kill -9 of b2 every later
    RPC is served by b1 or b3, both taking a share (chi-square, alpha 0.001).

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
        # Shared by both survivors — not necessarily in exact rotation: round_robin rebuilds
        # its picker (restarting the rotation) whenever the dead backend's subchannel
        # changes state while it retries the connection.
        chaos.expect(checks.balance_chi2(chaos.history, ["b1", "b3"], start_ns=after))
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
    chaos.hold_rpcs_on(target, delay_ms=20)
    kill = chaos.nemesis.inject(Kill(target))
    load.wait_for(1500, timeout=20)
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
    chaos.expect(checks.failover_time(chaos.history, target=target, after_ns=kill.start_ns,
                                      bound_ms=1000))


def test_all_backends_killed_fail_fast_then_recover(chaos):
    """Property: with every backend killed, RPCs fail fast — each ends UNAVAILABLE well
    before its 2 s deadline (no client hangs waiting for a fleet that is gone) — and once the
    backends are restarted the client recovers within its reconnect backoff.

    Bound: every RPC started during the outage ends within 1000 ms (a channel in
    TRANSIENT_FAILURE fails RPCs at once; the recommended retry policy adds at most ~0.6 s
    of backoff over 5 attempts) and none with DEADLINE_EXCEEDED; recovery within the
    profile's max reconnect backoff x 1.2 (gRPC's jitter) + 500 ms for the restart.
    """
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    outage = [chaos.nemesis.inject(Kill(b)) for b in chaos.fleet.ids]
    down = outage[-1].start_ns
    load.wait_for(200, timeout=20)
    for kill in reversed(outage):
        chaos.nemesis.undo(kill)
    restarted = chaos.history.now()
    chaos.expect(checks.latency(chaos.history, percentile=100, bound_ms=1000, only_ok=False,
                                start_ns=down, end_ns=outage[0].end_ns))
    chaos.expect(checks.errors(chaos.history, start_ns=down, end_ns=outage[0].end_ns,
                               codes=["DEADLINE_EXCEEDED"], budget=0))
    bound_ms = chaos.profile.max_reconnect_backoff_ms * 1.2 + 500
    load.wait_until(lambda: any(r.ok for r in chaos.history.window(restarted)),
                    bound_ms / 1000 + 5,
                    "an RPC answered after the restart")
    chaos.expect(checks.recovery_time(chaos.history, target=None, after_ns=restarted,
                                      bound_ms=bound_ms))


@pytest.mark.detects(naive="errors")
def test_restarted_backend_rejoins_the_rotation(chaos):
    """Property: a backend restarted in place (kill -9 and start again on the same address
    with the same certificate) rejoins the rotation within the profile's reconnect backoff,
    and no RPC fails.

    Bound: max reconnect backoff x 1.2 + 500 ms (as above); 0 failed RPCs — the restart
    breaks b2's connection with RPCs in flight (its handlers take 20 ms), which a retry
    policy replays on the others.
    """
    if chaos.profile.policy == "pick_first":
        pytest.skip("pick_first has no rotation to rejoin")
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    chaos.hold_rpcs_on("b2", delay_ms=20)
    restart = chaos.nemesis.inject(Restart("b2"))
    bound_ms = chaos.profile.max_reconnect_backoff_ms * 1.2 + 500
    load.wait_until(lambda: chaos.served_since("b2", restart.end_ns), bound_ms / 1000 + 5,
                    "b2 serving again")
    chaos.expect(checks.recovery_time(chaos.history, target="b2", after_ns=restart.end_ns,
                                      bound_ms=bound_ms))
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
