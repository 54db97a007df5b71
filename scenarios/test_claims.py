"""Claims: statements of the design (docs/grpc-facts.md) reproduced as named,
runnable scenarios. Each uses the client settings the claim is about, whatever --profile
says, so every claim is checked under every profile run. A claim about one implementation
(grpcio's ignored keepalive timeout) or one capability (client-side health checking) is
not applicable to a client under test without it (Scenario.require_client)."""

from __future__ import annotations

from typing import Any

import pytest

from chaos import checks, profiles
from chaos.faults import Certificate, CutConnections, Health, Pause

pytestmark = pytest.mark.claims

ROUND_ROBIN: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}


def _profile(name: str, service_config=None, **options) -> profiles.Profile:
    return profiles.parse(
        {"name": name, "service_config": service_config, "channel_options": options}
    )


def test_claim_the_default_policy_is_pick_first(chaos):
    """Claim: a channel without a service config uses pick_first — every RPC goes to one
    backend, although DNS returns three.

    Bound: all of 300 RPCs on a single backend.
    """
    load = chaos.load(concurrency=4, profile=_profile("no service config"))
    warm = chaos.warm_up(load, profile=_profile("pick_first"))
    load.wait_for(300, timeout=20)
    served = {r.backend for r in chaos.history.window(warm) if r.ok and r.backend}
    others = [b for b in chaos.fleet.ids if b not in served]
    assert len(served) == 1, f"RPCs went to {sorted(served)}: not pick_first"
    for backend in others:
        chaos.expect(checks.no_traffic_to(chaos.history, backend=backend, start_ns=warm))


def test_claim_round_robin_skips_a_backend_with_a_bad_certificate(chaos):
    """Claim: round_robin skips a backend whose certificate does not verify, and the
    channel keeps working on the others: no RPC fails, none is served by it.

    Bound: 0 failures and 0 RPCs on b2 over 600 RPCs.
    """
    chaos.nemesis.inject(Certificate("b2", "other_ca"))
    chaos.nemesis.inject(CutConnections("b2"))
    start = chaos.history.mark("bad certificate in place")
    load = chaos.load(concurrency=8, profile=_profile("round_robin", ROUND_ROBIN))
    chaos.warm_up(load, backends=["b1", "b3"])
    load.wait_for(600, timeout=20)
    chaos.expect(checks.no_traffic_to(chaos.history, backend="b2", start_ns=start))
    chaos.expect(checks.errors(chaos.history, start_ns=start, budget=0))


@pytest.mark.needs("control")
def test_claim_the_health_service_drains_a_backend(chaos):
    """Claim: with client-side health checking (healthCheckConfig, round_robin) a backend
    flipped to NOT_SERVING gets no new RPC within a few ms.

    Bound: 50 ms from the flip to the last RPC started on it (a few ms measured on an idle
    machine; the margin is for a busy one).
    """
    chaos.require_client(
        health_check=True, why="what its absence costs, the health family's verdicts say"
    )
    config = dict(ROUND_ROBIN, healthCheckConfig={"serviceName": "greeter.Greeter"})
    load = chaos.load(concurrency=8, profile=_profile("health checking", config))
    chaos.warm_up(load)
    flip = chaos.nemesis.inject(Health("b2"))
    load.wait_for(600, timeout=20)
    chaos.expect(
        checks.drain_time(chaos.history, backend="b2", after_ns=flip.start_ns, bound_ms=50)
    )


def test_claim_keepalive_without_ping_timeout_does_not_catch_a_hang(chaos):
    """Claim: keepalive alone does not take a hung backend out of rotation — the ping
    deadline is grpc.http2.ping_timeout_ms (default 60 s), and grpc.keepalive_timeout_ms
    has no effect in this grpcio. (That keepalive *with* ping_timeout_ms 500 takes it out in
    under a second is what the hang family checks of the recommended profile.)

    Bound: with keepalive 500 ms and keepalive_timeout_ms 500 but no ping timeout, RPCs
    sent to the paused backend still end in DEADLINE_EXCEEDED 2.5 s after the pause — five
    keepalive periods: had keepalive_timeout_ms worked, the backend would have been out
    after ~1 s.
    """
    chaos.require_client(
        implementation="grpcio",
        why="other implementations name their ping deadline keepalive timeout (docs/clients.md)",
    )
    keepalive = {
        "grpc.keepalive_time_ms": 500,
        "grpc.keepalive_timeout_ms": 500,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.http2.max_pings_without_data": 0,
    }
    load = chaos.load(
        concurrency=6, deadline_s=0.5, profile=_profile("keepalive only", ROUND_ROBIN, **keepalive)
    )
    chaos.warm_up(load)
    pause = chaos.nemesis.inject(Pause("b2"))
    late = pause.start_ns + 2_500_000_000
    load.wait_until(
        lambda: any(
            r.start_ns >= late and r.code == "DEADLINE_EXCEEDED" for r in chaos.history.window(late)
        ),
        5,
        "an RPC started 2.5 s after the pause ending in DEADLINE_EXCEEDED",
    )
    stuck = checks.errors(chaos.history, start_ns=late, codes=["DEADLINE_EXCEEDED"], budget=0)
    assert not stuck.passed, "keepalive without a ping timeout caught the hang: claim broken"
    chaos.check(stuck)
