"""Kill: a backend process dies with kill -9 while the client is busy, and comes back.

The fleet runs with an HTTP/2 point in front of each backend (no fault is ever injected
there): an RPC whose response headers had reached the client when its backend died is
committed, and no retry policy can replay it — the point reports those, and a failure of
them names the server's early headers rather than the client's retry policy.
"""

from __future__ import annotations

import time

import pytest

from chaos import checks
from chaos.faults import Kill, Restart
from fleet.stand_in import StandIn

pytestmark = pytest.mark.kill
chaos_fleet = {"http2": True}

RETRIES = ("retryPolicy",)
BACKOFF = (
    "grpc.initial_reconnect_backoff_ms",
    "grpc.min_reconnect_backoff_ms",
    "grpc.max_reconnect_backoff_ms",
)


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
        call = chaos.caller(channel)
        chaos.spread_calls(call)
        warm = chaos.history.mark("warm")
        for _ in range(30):
            call()
        chaos.expect(
            checks.balance_exact(chaos.history, chaos.fleet.ids, start_ns=warm),
            answers=("round_robin",),
        )
        kill = chaos.nemesis.inject(Kill("b2"))
        chaos.wait_until(
            lambda: all(call(tolerate=True) not in (None, "b2") for _ in range(3)),
            10,
            "b2 out of rotation",
        )
        after = chaos.history.mark("b2 out")
        for _ in range(30):
            call()
        chaos.expect(checks.no_traffic_to(chaos.history, backend="b2", start_ns=after))
        # Shared by both survivors — not necessarily in exact rotation: round_robin rebuilds
        # its picker (restarting the rotation) whenever the dead backend's subchannel
        # changes state while it retries the connection.
        chaos.expect(
            checks.balance_chi2(chaos.history, ["b1", "b3"], start_ns=after),
            answers=("round_robin",),
        )
        chaos.check(
            checks.failover_time(
                chaos.history, backend="b2", after_ns=kill.in_force_ns, bound_ms=10_000
            )
        )


@pytest.mark.detects(naive="errors", pick_first="errors")
def test_kill_under_load_loses_no_rpc(chaos):
    """Property: kill -9 of the busiest of three backends under load (16 in flight, its
    handlers taking 20 ms so that RPCs are always in flight on it) costs no client-visible
    error, and every RPC succeeds on the survivors within the failover bound.

    Bound: error_budget (0) failed RPCs — the RPCs in flight on the dead backend have no
    answer yet, so a retry policy on UNAVAILABLE replays them on a survivor; failover_ms
    (1000 ms) from the process being gone — the connection breaks at once (the proxy closes
    it when the backend's socket dies), so gRPC needs only milliseconds.
    """
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(300, timeout=10)
    target = chaos.history.busiest(warm)
    chaos.hold_rpcs_on(target, delay_ms=20)
    kill = chaos.nemesis.inject(Kill(target))
    load.wait_for(1500, timeout=20)
    need = chaos.requirements
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=RETRIES,
    )
    chaos.expect(
        checks.failover_time(
            chaos.history, backend=target, after_ns=kill.in_force_ns, bound_ms=need.failover_ms
        ),
        answers=RETRIES,
    )


def test_all_backends_killed_fail_fast_then_recover(chaos):
    """Property: with every backend killed, RPCs fail fast — each ends UNAVAILABLE well
    before its 2 s deadline (no client hangs waiting for a fleet that is gone) — and once the
    backends are restarted the client serves again within the recovery bound.

    Bound: every RPC started during the outage ends within fail_fast_ms (1000 ms: a channel
    in TRANSIENT_FAILURE fails RPCs at once; the recommended retry policy adds at most
    ~0.6 s of backoff over 5 attempts) and none with DEADLINE_EXCEEDED; the first RPC
    answered within recovery_ms (2000 ms) of the restart — the outage is short (~1 s), so
    even gRPC's default backoff has its next attempt within ~1.2 s (the long outage is
    test_backend_back_after_a_long_outage_rejoins_within_the_recovery_bound).
    """
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    outage = [chaos.nemesis.inject(Kill(b)) for b in chaos.fleet.ids]
    down = outage[-1].in_force_ns
    # 200 RPCs into the outage — fewer if they do not fail fast: after a deadline and a
    # second every RPC sent at the start has ended either way, and the checks judge them.
    chaos.wait_for(
        load,
        lambda: len(chaos.history.window(down)) >= 200,
        load.deadline_s + 1,
        "200 RPCs sent into the outage",
    )
    for kill in reversed(outage):
        chaos.nemesis.undo(kill)
    restarted = chaos.history.now()
    # An RPC is recorded when it ends: the ones sent late in the outage (by a client that
    # waits for a backend) are judged once they have, never left out.
    chaos.settle(load, "the RPCs sent into the outage have ended")
    need = chaos.requirements
    chaos.expect(
        checks.latency(
            chaos.history,
            percentile=100,
            bound_ms=need.fail_fast_ms,
            only_ok=False,
            start_ns=down,
            end_ns=outage[0].end_ns,
        ),
        answers=("waitForReady", "retryPolicy"),
    )
    chaos.expect(
        checks.errors(
            chaos.history,
            start_ns=down,
            end_ns=outage[0].end_ns,
            codes=["DEADLINE_EXCEEDED"],
            budget=0,
        ),
        answers=("waitForReady", "retryPolicy"),
    )
    chaos.wait_for(
        load,
        lambda: any(r.ok for r in chaos.history.window(restarted)),
        need.recovery_ms / 1000 + 10,
        "an RPC answered after the restart",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=None, after_ns=restarted, bound_ms=need.recovery_ms
        ),
        answers=BACKOFF,
    )


@pytest.mark.detects(naive="errors")
def test_restarted_backend_rejoins_the_rotation(chaos):
    """Property: a backend restarted in place (kill -9 and start again on the same address
    with the same certificate) rejoins the rotation within the recovery bound, and no RPC
    fails.

    Bound: recovery_ms (2000 ms) from the new process serving — the client's first
    reconnection attempt fails while the process restarts, the next comes one initial
    backoff later (100 ms recommended, 1 s gRPC's default); error_budget (0) failed RPCs —
    the restart breaks b2's connection with RPCs in flight (its handlers take 20 ms), which
    a retry policy replays on the others. Not applicable to a client that sends every RPC
    to one backend: it has no rotation to rejoin.
    """
    chaos.require_spread("a backend rejoining the rotation")
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    chaos.hold_rpcs_on("b2", delay_ms=20)
    restart = chaos.nemesis.inject(Restart("b2"))
    need = chaos.requirements
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since("b2", restart.end_ns),
        need.recovery_ms / 1000 + 10,
        "b2 serving again",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend="b2", after_ns=restart.end_ns, bound_ms=need.recovery_ms
        ),
        answers=BACKOFF,
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=RETRIES,
    )


@pytest.mark.detects(naive="recovery_time")
def test_backend_back_after_a_long_outage_rejoins_within_the_recovery_bound(chaos):
    """Property: a backend that was down for a long outage (long_outage_s, 4 s: killed, and
    every reconnection attempt of the client failing meanwhile) serves again within the
    recovery bound of being back — however far the client's reconnect backoff has grown.

    Bound: recovery_ms (2000 ms) from the instant it is back. Staging: while b2 is down a
    stand-in behind its proxy notes each of the client's reconnection attempts (and closes
    it, as a dead backend behind a proxy does); b2's replacement is started meanwhile on a
    new port, and the proxy is pointed at it right after the client's first attempt once
    the outage has lasted long_outage_s. So the figure is the client's next reconnect
    delay, not the phase of its timer: gRPC's default backoff (1 s x 1.6 per attempt, +-20 %,
    up to 120 s) waits 3.3-4.9 s after the attempt it makes ~4-6 s into an outage; a
    backoff capped at 1 s comes back within ~1.2 s.
    """
    chaos.require_spread("a backend rejoining the rotation")
    need = chaos.requirements
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    kill = chaos.nemesis.inject(Kill("b2"))
    with StandIn() as stand_in:
        chaos.fleet.repoint("b2", stand_in.address)
        chaos.fleet.replace("b2")  # started now, reachable only once repointed
        long_enough = kill.in_force_ns + int(need.long_outage_s * 1e9)
        # The outage itself (the fault's duration), not a wait for a condition.
        time.sleep(max(0.0, (long_enough - time.monotonic_ns()) / 1e9))
        attempt = stand_in.wait_for_arrival(long_enough, timeout=need.long_outage_s * 3 + 10)
        chaos.history.mark(
            f"client attempt {(attempt - kill.in_force_ns) / 1e6:.0f} ms into the outage"
        )
        chaos.fleet.repoint("b2")
        back = chaos.history.mark("b2 back")
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since("b2", back),
        need.recovery_ms / 1000 + 10,
        "b2 serving again",
    )
    chaos.expect(
        checks.recovery_time(chaos.history, backend="b2", after_ns=back, bound_ms=need.recovery_ms),
        answers=BACKOFF,
    )
