"""Health: the gRPC health service drains a backend that says NOT_SERVING."""

from __future__ import annotations

import grpc
import pytest

from chaos import checks
from chaos.checks import Verdict
from chaos.faults import Drain, Health

pytestmark = pytest.mark.health

# Client-side health checking works under round_robin only (pick_first ignores it).
HEALTH = ("healthCheckConfig", "round_robin")


@pytest.mark.needs("control")
@pytest.mark.detects(naive="drain_time", pick_first="drain_time")
def test_not_serving_drains_the_backend_and_serving_brings_it_back(chaos):
    """Property: once the busiest backend's health is NOT_SERVING, no RPC starts on it
    later than the drain bound after the flip; once it is SERVING again, it serves again
    within the recovery bound; no RPC fails.

    Bound: drain_ms (50 ms) from the backend confirming NOT_SERVING — client-side health
    checking streams the status (Health.Watch) and the picker drops the backend as soon as
    the update arrives, a few ms on loopback (docs/grpc-facts.md). recovery_ms (2000 ms) for the way
    back: the update is as fast; the rest covers the first RPC to be picked.
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    flip = chaos.nemesis.inject(Health(target))
    load.wait_for(1500, timeout=20)
    need = chaos.requirements
    chaos.expect(
        checks.drain_time(
            chaos.history, backend=target, after_ns=flip.in_force_ns, bound_ms=need.drain_ms
        ),
        answers=HEALTH,
    )
    back = chaos.nemesis.undo(flip)
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since(target, back.end_ns),
        need.recovery_ms / 1000 + 5,
        f"{target} serving again",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=target, after_ns=back.end_ns, bound_ms=need.recovery_ms
        ),
        answers=HEALTH,
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=flip.start_ns, budget=need.error_budget),
        answers=HEALTH,
    )


@pytest.mark.needs("control")
@pytest.mark.detects(naive="no_traffic_to", pick_first="no_traffic_to")
def test_every_backend_not_serving_fails_fast(chaos):
    """Property: when every backend says NOT_SERVING, the client sends them nothing and
    fails each RPC fast with UNAVAILABLE — no RPC is served and none waits for its 2 s
    deadline.

    Bound: no RPC starts on any backend later than drain_ms (50 ms) after the last backend
    confirmed the flip (as for one backend, see above); every RPC in the outage ends within
    fail_fast_ms (1000 ms: a channel with no healthy backend fails RPCs at once; the
    recommended retry policy adds at most ~0.6 s). A client that ignores health (no
    healthCheckConfig, or pick_first) keeps being served: it fails no_traffic_to.
    """
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    flips = [chaos.nemesis.inject(Health(b)) for b in chaos.fleet.ids]
    need = chaos.requirements
    drained = flips[-1].in_force_ns + int(need.drain_ms * 1e6)
    load.wait_until(lambda: chaos.history.now() > drained, 5, "the drain bound passed")
    load.wait_for(40, timeout=20)
    for backend in chaos.fleet.ids:
        chaos.expect(
            checks.no_traffic_to(
                chaos.history,
                backend=backend,
                start_ns=drained,
                bound_from_ns=flips[-1].in_force_ns,
            ),
            answers=HEALTH,
            requirement="drain_ms",
        )
    chaos.expect(
        checks.latency(
            chaos.history,
            percentile=100,
            bound_ms=need.fail_fast_ms,
            only_ok=False,
            start_ns=drained,
        ),
        answers=("waitForReady", "retryPolicy"),
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=drained, codes=["DEADLINE_EXCEEDED"], budget=0),
        answers=("waitForReady",),
    )


@pytest.mark.needs("control")
@pytest.mark.detects(naive="drain_time", pick_first="drain_time")
def test_graceful_drain_loses_no_rpc(chaos):
    """Property: in a graceful drain of the busiest backend — NOT_SERVING, 500 ms for
    clients to move away, then stop with 1 s of grace for what is still in flight — under
    load (16 in flight, its handlers taking 20 ms) the client stops sending it RPCs within
    the drain bound, and loses no RPC.

    Bound: drain_ms (50 ms) from the backend confirming NOT_SERVING — what a drain is for:
    health checking moves new RPCs away within milliseconds, long before the listener
    closes; error_budget (0) failed RPCs — the grace period lets in-flight ones finish. A
    client that ignores health keeps sending RPCs until the server's GOAWAY, 500 ms later,
    and may lose the ones that race it (the server drops calls it accepted but had not yet
    started when it stops): it fails drain_time every time, errors sometimes.
    """
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)  # where the traffic is (pick_first: its only backend)
    chaos.hold_rpcs_on(target, delay_ms=20)
    drain = chaos.nemesis.inject(Drain(target, wait_ms=500, grace_ms=1000))
    chaos.fleet.wait_exit(target, timeout=10)
    load.wait_for(500, timeout=20)
    need = chaos.requirements
    chaos.expect(
        checks.drain_time(
            chaos.history, backend=target, after_ns=drain.in_force_ns, bound_ms=need.drain_ms
        ),
        answers=HEALTH,
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=("healthCheckConfig", "retryPolicy"),
    )


@pytest.mark.needs("variants")
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
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=chaos.requirements.error_budget),
    )


HEALTH_PROBE_CALLS = 5


def test_every_backend_that_says_serving_answers_its_rpc(chaos):
    """Property: the health service tells the truth — every backend whose health service
    says SERVING answers the target's RPC correctly, asked directly (no balancer, no
    retries in between).

    Bound: 0 backends saying SERVING while their RPCs fail (5 calls each, each within the
    target's RPC deadline). A backend that says SERVING while it cannot answer (a broken
    dependency, a cache still cold) keeps getting the RPCs of every health-checking client;
    only the client's retries and outlier detection stand between it and errors.
    """
    service = chaos.fleet.health_services[-1]
    liars = {}
    for backend in chaos.fleet.backends:
        with chaos.fleet.direct_channel(backend) as channel:
            status = health_status(channel, service)
            if status != "SERVING":
                continue
            outcomes = [
                direct_call(channel, chaos.target_rpc(), n) for n in range(HEALTH_PROBE_CALLS)
            ]
            wrong = [o for o in outcomes if o is not None]
            if wrong:
                liars[backend.id] = wrong[0]
    text = (
        f"{len(liars)} backend(s) say SERVING for {service!r} but fail the RPC: "
        + "; ".join(f"{b}: {why}" for b, why in liars.items())
        if liars
        else f"every backend saying SERVING for {service!r} answered "
        f"{HEALTH_PROBE_CALLS} RPCs correctly"
    )
    chaos.expect(
        Verdict("health_truth", not liars, len(liars), "backends", 0, text + "."),
        answers=("server.health_truth",),
    )


def health_status(channel, service: str) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    except grpc.RpcError as error:
        return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def direct_call(channel, rpc, n: int) -> str | None:
    """None when the RPC is answered correctly, else what went wrong."""
    try:
        data = channel.unary_unary(rpc.path)(rpc.request_bytes(n), timeout=rpc.deadline_s)
    except grpc.RpcError as error:
        return f"{error.code().name}: {error.details()}"
    return rpc.check_response(data, n)
