"""Balance: how RPCs spread over healthy backends.

The fleet runs with an HTTP/2 point in front of each backend (no fault is ever injected
there): it sees every GOAWAY and connection close, so a server that ages its connections
out (max connection age) does not fail a correct client's exact rotation — the check leaves
out the RPCs each such event touched and says how many.
"""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Kill

pytestmark = pytest.mark.balance
chaos_fleet = {"http2": True}


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
    chaos.expect(
        checks.balance_chi2(chaos.history, chaos.fleet.ids, start_ns=warm), answers=("round_robin",)
    )


@pytest.mark.detects(pick_first="balance_exact")
def test_round_robin_is_exact_on_a_warm_channel(chaos):
    """Property: on a warm channel 60 sequential RPCs go exactly round robin: each backend
    once per round, every round in the same order (as gRPC's own round_robin tests check).

    Bound: exact — sequential RPCs on a warm round_robin channel leave no room for timing.
    """
    with chaos.channel() as channel:
        call = chaos.caller(channel)
        chaos.spread_calls(call)
        warm = chaos.history.mark("warm")
        for _ in range(60):
            call()
    chaos.expect(
        checks.balance_exact(chaos.history, chaos.fleet.ids, start_ns=warm),
        answers=("round_robin",),
    )


def test_returning_backend_gets_its_share_again(chaos):
    """Property: after b2 is killed for 1 s and restarted, it serves again within the
    recovery bound, and from then on the load is spread evenly again (chi-square, alpha =
    0.001, over the next 1,500 RPCs).

    Bound: recovery_ms (2000 ms) from the new process serving — after a 1 s outage the
    client's next reconnection attempt is at most ~1.2 s away even with gRPC's default
    backoff (a long outage is test_kill's long-outage scenario). Not applicable to a client
    that sends every RPC to one backend: it gives a returning backend no share.
    """
    chaos.require_spread("a returning backend's share")
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    chaos.nemesis.timed(Kill("b2"), 1.0)
    restarted = chaos.history.events[-1].end_ns
    need = chaos.requirements
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since("b2", restarted),
        need.recovery_ms / 1000 + 5,
        "b2 serving again",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend="b2", after_ns=restarted, bound_ms=need.recovery_ms
        ),
        answers=("grpc.initial_reconnect_backoff_ms", "grpc.max_reconnect_backoff_ms"),
    )
    back = chaos.history.mark("b2 back")
    load.wait_for(1500, timeout=20)
    chaos.expect(
        checks.balance_chi2(chaos.history, chaos.fleet.ids, start_ns=back), answers=("round_robin",)
    )
