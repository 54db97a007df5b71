"""Health: the gRPC health service drains a backend that says NOT_SERVING."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Drain, Health

pytestmark = pytest.mark.health


@pytest.mark.detects(naive="drain_time", pick_first="drain_time")
def test_not_serving_drains_the_backend_and_serving_brings_it_back(chaos):
    """Property: once the busiest backend's health is NOT_SERVING, no RPC starts on it
    later than 50 ms after the flip; once it is SERVING again, it serves again within 1 s;
    no RPC fails.

    Bound: 50 ms — client-side health checking streams the status (Health.Watch) and the
    round_robin picker drops the backend as soon as the update arrives, a few ms on
    loopback (DESIGN.md); the margin covers a busy machine. 1 s for the way back: the
    update is as fast, the margin covers the first RPC to be picked.
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.busiest(warm)
    flip = chaos.nemesis.inject(Health(target))
    load.wait_for(1500, timeout=20)
    chaos.expect(checks.drain_time(chaos.history, target=target, after_ns=flip.start_ns,
                                   bound_ms=50))
    back = chaos.nemesis.undo(flip)
    load.wait_until(lambda: chaos.served_since(target, back.end_ns), 5,
                    f"{target} serving again")
    chaos.expect(checks.recovery_time(chaos.history, target=target, after_ns=back.end_ns,
                                      bound_ms=1000))
    chaos.expect(checks.errors(chaos.history, start_ns=flip.start_ns, budget=0))


@pytest.mark.detects(naive="no_traffic_to")
def test_every_backend_not_serving_fails_fast(chaos):
    """Property: when every backend says NOT_SERVING, the client sends them nothing and
    fails each RPC fast with UNAVAILABLE — no RPC is served and none waits for its 2 s
    deadline.

    Bound: no RPC starts on any backend later than 50 ms after the last flip (as for one
    backend, see above); every RPC in the outage ends within 1000 ms (a channel with no
    healthy backend fails RPCs at once; the recommended retry policy adds at most ~0.6 s).
    """
    if chaos.profile.policy == "pick_first":
        pytest.skip("pick_first does not do client-side health checking")
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    flips = [chaos.nemesis.inject(Health(b)) for b in chaos.fleet.ids]
    drained = flips[-1].start_ns + 50_000_000
    load.wait_until(lambda: chaos.history.now() > drained, 5, "the drain bound passed")
    load.wait_for(40, timeout=20)
    for backend in chaos.fleet.ids:
        chaos.expect(checks.no_traffic_to(chaos.history, target=backend, start_ns=drained))
    chaos.expect(checks.latency(chaos.history, percentile=100, bound_ms=1000, only_ok=False,
                                start_ns=drained))
    chaos.expect(checks.errors(chaos.history, start_ns=drained, codes=["DEADLINE_EXCEEDED"],
                               budget=0))


def test_graceful_drain_loses_no_rpc(chaos):
    """Property: a graceful drain of the busiest backend — NOT_SERVING, 500 ms for clients to
    move away, then stop with 1 s of grace for what is still in flight — under load (16 in
    flight, its handlers taking 20 ms) loses no RPC.

    Bound: 0 failed RPCs — that is the point of draining: health checking moves new RPCs
    away within milliseconds, and the grace period lets in-flight ones finish.
    """
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.busiest(warm)  # where the traffic is (pick_first: its only backend)
    chaos.hold_rpcs_on(target, delay_ms=20)
    drain = chaos.nemesis.inject(Drain(target, wait_ms=500, grace_ms=1000))
    load.wait_for(500, timeout=20)
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
    chaos.check(checks.drain_time(chaos.history, target=target, after_ns=drain.start_ns,
                                  bound_ms=500))


def test_server_without_health_service_counts_as_healthy(chaos):
    """Property: a fleet whose backends do not serve grpc.health.v1 at all is used normally
    by a health-checking client: every backend gets traffic and no RPC fails.

    Bound: all three backends answer within the warm-up deadline, then 600 RPCs with 0
    failures — gRPC treats UNIMPLEMENTED from the health service as healthy.
    """
    fleet = chaos.extra_fleet(health=False)
    load = chaos.load(concurrency=8, fleet=fleet)
    warm = chaos.warm_up(load, backends=fleet.ids)
    load.wait_for(600, timeout=20)
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
