"""Latency: one backend's network is slow."""

from __future__ import annotations

import grpc
import pytest

from chaos import checks
from chaos.faults import Latency

pytestmark = pytest.mark.latency


def test_latency_on_one_backend_shows_only_in_its_percentiles(chaos):
    """Property: with 200 ms of latency on b2's replies, b2's median RPC latency is at
    least 200 ms, the other backends' 90th percentile stays within the healthy latency
    bound, and no RPC fails.

    Bound: 200 ms is the toxic itself (each reply chunk is held that long);
    healthy_latency_ms (100 ms) for the healthy backends is ~30x their normal p90 on
    loopback (~3 ms), still far below the injected latency, so the two cannot be confused.
    p90, not p99: b2 holds most of the 12 workers, so b1 and b3 answer only ~50 RPCs in the
    window, and one scheduling stall of a backend process on a busy 2-core machine
    (measured: ~240 ms, with CPU burners) would be their p99 on its own. Not applicable to a
    client that sends every RPC to one backend.
    """
    chaos.require_spread("per-backend latency")
    load = chaos.load(concurrency=12)
    chaos.warm_up(load)
    # Measured from the toxic in force (the API answered: every connection to b2 holds it);
    # RPCs sent while it was being added may have slipped through undelayed.
    slow = chaos.nemesis.inject(Latency("b2", 200))
    chaos.expect_slowness_stays_on(load, slow, "b2", delay_ms=200)


JITTER_CLIENTS = 12
JITTER_SAMPLES = 120


def test_jitter_on_one_backend_spreads_only_its_latency(chaos):
    """Property: with 100 ms ± 90 ms of latency (uniform jitter) on the way to b2, b2's
    latencies spread both ways: its p5 is at most 100 ms — faster than the latency itself,
    which only jitter can do — and its p95 at least 145 ms (latency + half the jitter),
    while the other backends' median stays under 50 ms (b2's is ~100 ms), and no RPC fails.

    Bound: each request is one chunk (the client writes headers and message at once), held
    a delay drawn uniformly from [10, 190) ms, so b2's p5 is ~20 ms and its p95 ~180 ms
    (measured 23-33 and 180-187 ms over 120 RPCs: margins of several standard errors);
    without jitter every RPC would take 100 ms + a few. The jitter is on requests because a
    reply is two or three chunks (headers, then message and trailers), whose latency is the
    largest of as many draws: that squeezes the low side. 12 clients each send one RPC at a
    time, so no request queues behind another's longer delay (order is kept per
    connection: on a busy connection jitter turns into a steady ~latency + jitter), and a
    keepalive ping waits at most 190 ms (< the 500 ms ping timeout). The others are held to
    their median, 50 ms (~15x loopback, half of b2's): with 12 client threads on a busy
    2-core machine their tail is scheduling noise — one stall of a backend process
    (measured ~240 ms with CPU burners) lands in their p99, and their p90 reached 60 ms.
    """
    chaos.require_spread("per-backend latency")
    loads = [chaos.load(concurrency=1) for _ in range(JITTER_CLIENTS)]
    chaos.warm_up(loads[0])
    chaos.wait_until(lambda: all(load.completed >= 6 for load in loads), 10, "every client warm")
    # From the toxic in force (the API answered: every connection to b2 holds it); an RPC
    # sent while it was being added may have slipped through undelayed.
    in_place = chaos.nemesis.inject(Latency("b2", 100, jitter_ms=90, stream="upstream")).in_force_ns
    loads[0].wait_until(
        lambda: chaos.history.count_ok("b2", in_place) >= JITTER_SAMPLES,
        20,
        f"{JITTER_SAMPLES} RPCs answered by the jittery backend",
    )
    chaos.expect(
        checks.latency(
            chaos.history,
            backend="b2",
            percentile=5,
            bound_ms=100,
            start_ns=in_place,
            min_rpcs=JITTER_SAMPLES,
        )
    )
    chaos.expect(
        checks.latency(
            chaos.history,
            backend="b2",
            percentile=95,
            bound_ms=145,
            at_least=True,
            start_ns=in_place,
        )
    )
    for fast in ("b1", "b3"):
        chaos.expect(
            checks.latency(
                chaos.history, backend=fast, percentile=50, bound_ms=50, start_ns=in_place
            )
        )
    chaos.expect(checks.errors(chaos.history, start_ns=in_place))


DEADLINE_MS = 250
ROUNDS = 6
# Every status code but OK and the one the scenario expects.
OTHER_CODES = [
    code.name
    for code in grpc.StatusCode
    if code not in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED)
]


def test_latency_above_the_deadline_fails_only_that_backends_rpcs(chaos):
    """Property: with 350 ms of latency on b2's replies and a 250 ms RPC deadline, over 18
    RPCs sent one at a time (six rounds of the rotation), every attempt b2 is given fails
    (its answers always come after the deadline) and no attempt b1 or b3 is given does:
    they answer every RPC in time, none fails with any code but DEADLINE_EXCEEDED, and b2's
    turns are where the deadline struck (at least two of them).

    Bound: 350 ms is held on every reply chunk of b2, so its answers always come after the
    250 ms deadline (100 ms apart, no timing margin needed: the toxic never delays less);
    b1 and b3 answer in ~3 ms, far within it. The failed RPCs carry no backend id (b2's
    headers come after the deadline), so where each attempt went, and whether it failed,
    comes from gRPC's per-backend attempt counters (channelz), not from the order of the
    rotation: a keepalive ping held 350 ms behind b2's replies may time out on a busy
    machine and restart the rotation, which changes nothing of the property. Not
    applicable to a client that sends every RPC to one backend.
    """
    chaos.require_spread("per-backend deadlines")
    with chaos.channel() as channel:
        call = chaos.caller(channel)
        chaos.spread_calls(call)
        for _ in range(3):
            call()
        sampler = chaos.attempts(channel)
        slow = chaos.nemesis.inject(Latency("b2", 350))
        sampler.mark()
        for _ in range(3 * ROUNDS):
            call(tolerate=True, timeout=DEADLINE_MS / 1000)
        sampler.mark()
    window = dict(start_ns=slow.in_force_ns)
    chaos.expect(checks.errors(chaos.history, codes=OTHER_CODES, **window))
    chaos.expect(checks.no_traffic_to(chaos.history, backend="b2", **window))
    for fast in ("b1", "b3"):
        chaos.expect(
            checks.attempts(sampler.samples, fast, counter="failed", start_ns=slow.in_force_ns)
        )
    chaos.expect(
        checks.attempts(
            sampler.samples, "b2", counter="failed", at_least=2, start_ns=slow.in_force_ns
        )
    )
