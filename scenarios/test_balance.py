"""Balance: how RPCs spread over healthy backends."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Kill

pytestmark = pytest.mark.balance


@pytest.mark.detects(pick_first="balance_chi2")
def test_load_is_spread_over_every_backend(chaos):
    """Property: under load (8 in flight), 1,500 RPCs are spread evenly over the three
    backends: a chi-square test against the uniform split does not reject it at
    alpha = 0.001, and no backend gets nothing.

    Bound: alpha 0.001 — with round_robin the split is near exact, so the test only fails
    when traffic is really skewed (pick_first puts all of it on one backend, which is what
    the gRPC default does).
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(1500, timeout=20)
    chaos.expect(checks.balance_chi2(chaos.history, chaos.fleet.ids, start_ns=warm))


@pytest.mark.detects(pick_first="balance_exact")
def test_round_robin_is_exact_on_a_warm_channel(chaos):
    """Property: on a warm channel 60 sequential RPCs go exactly round robin: each backend
    once per round, every round in the same order (as gRPC's own round_robin tests check).

    Bound: exact — sequential RPCs on a warm round_robin channel leave no room for timing.
    """
    with chaos.channel() as channel:
        hello = chaos.hello(channel)
        chaos.spread_calls(hello)
        warm = chaos.history.mark("warm")
        for _ in range(60):
            hello()
    chaos.expect(checks.balance_exact(chaos.history, chaos.fleet.ids, start_ns=warm))


def test_returning_backend_gets_its_share_again(chaos):
    """Property: after b2 is killed for 1 s and restarted, it serves again within the
    profile's reconnect backoff, and from then on the load is spread evenly again (chi-square,
    alpha = 0.001, over the next 1,500 RPCs).

    Bound: max reconnect backoff x 1.2 (gRPC's backoff jitter) + 500 ms for the process to
    start and the handshake; for the recommended profile (1 s) that is 1.7 s, for gRPC's
    default (120 s) 144.5 s — the scenario waits only as long as the client really takes.
    """
    if chaos.profile.policy == "pick_first":
        pytest.skip("pick_first gives a returning backend no share by design")
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    chaos.nemesis.timed(Kill("b2"), 1.0)
    restarted = chaos.history.events[-1].end_ns
    bound_ms = chaos.profile.max_reconnect_backoff_ms * 1.2 + 500
    load.wait_until(lambda: chaos.served_since("b2", restarted), bound_ms / 1000 + 5,
                    "b2 serving again")
    chaos.expect(checks.recovery_time(chaos.history, target="b2", after_ns=restarted,
                                      bound_ms=bound_ms))
    back = chaos.history.mark("b2 back")
    load.wait_for(1500, timeout=20)
    chaos.expect(checks.balance_chi2(chaos.history, chaos.fleet.ids, start_ns=back))
