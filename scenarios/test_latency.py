"""Latency: one backend's network is slow."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Latency

pytestmark = pytest.mark.latency


def test_latency_on_one_backend_shows_only_in_its_percentiles(chaos):
    """Property: with 200 ms of latency on b2's replies, b2's median RPC latency is at
    least 200 ms, the other backends' 99th percentile stays under 100 ms, and no RPC fails.

    Bound: 200 ms is the toxic itself (each reply chunk is held that long); 100 ms for the
    healthy backends is ~30x their normal p99 on loopback (~3 ms) — a margin for a busy
    machine that is still far below the injected latency, so the two cannot be confused.
    """
    if chaos.profile.policy == "pick_first":
        pytest.skip("pick_first uses one backend; per-backend latency needs round_robin")
    load = chaos.load(concurrency=12)
    chaos.warm_up(load)
    slow = chaos.nemesis.inject(Latency("b2", 200))
    load.wait_until(lambda: chaos.count_ok("b2", slow.start_ns) >= 40, 20,
                    "40 RPCs answered by the slow backend")
    chaos.expect(checks.latency(chaos.history, backend="b2", percentile=50, bound_ms=200,
                                at_least=True, start_ns=slow.start_ns))
    for fast in ("b1", "b3"):
        chaos.expect(checks.latency(chaos.history, backend=fast, percentile=99, bound_ms=100,
                                    start_ns=slow.start_ns))
    chaos.expect(checks.errors(chaos.history, start_ns=slow.start_ns, budget=0))
