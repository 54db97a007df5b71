"""Health: the gRPC health service drains a backend that says NOT_SERVING."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Health

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
