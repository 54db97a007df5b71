"""App: a backend whose process and network are fine but whose application fails or is slow
(its health still says SERVING, so health checking does not see it)."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import AppError, SlowHandler

# Application faults are staged inside the backend through grpc-chaos's Control service.
pytestmark = [pytest.mark.app, pytest.mark.needs("control")]

# Every backend fails this share of calls in the all-backends scenario: above outlier
# detection's usual 50 % failure threshold, so that every backend is a candidate for
# ejection, and low enough that retries still get most RPCs through.
FAIL_EVERYWHERE = 0.6


@pytest.mark.detects(naive="ejection_time", pick_first="ejection_time")
def test_backend_failing_every_call_is_ejected(chaos):
    """Property: when the busiest backend answers every call with UNAVAILABLE while its
    health still says SERVING, the client ejects it: within the ejection bound it stops
    sending it attempts — first attempts and retries alike, as gRPC's own per-backend
    counters show — for at least half a second.

    Bound: ejection_ms (1500 ms) from the backend failing (fault in force) — outlier
    detection ejects at the end of a 0.5 s interval in which the backend failed at least
    half of at least 10 calls; the interval running at the fault may still be mostly
    successes, so the end of the next one (1000 ms) is the latest; 500 ms of margin. A
    retry policy alone hides the failures from callers but keeps sending the backend a
    third of the first attempts (measured with 16 in flight: 3,779 calls to it against
    1,072 with outlier detection, p99 147 ms against 37 ms): that fails this check.
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    sampler = chaos.attempts(load)
    fault = chaos.nemesis.inject(AppError(target, "UNAVAILABLE"))
    chaos.expect_ejected(
        load, sampler, target, fault.in_force_ns, answers=("outlierDetection", "round_robin")
    )


# How long the backend fails before it recovers: long enough for outlier detection to
# eject it (at the end of a 0.5 s interval in which it failed at least 10 calls) and, with
# a 1 s base ejection, to eject it again — the second ejection lasts longer.
FAILING_S = 2.5


def test_ejected_backend_that_recovers_is_readmitted(chaos):
    """Property: when the busiest backend fails every call for 2.5 s (health SERVING) and
    then recovers, the client sends it RPCs again, and it serves them, within the
    readmission bound of its recovery — whether or not the client ejected it meanwhile.

    Bound: readmission_ms (6000 ms) from the fault being cleared — outlier detection lifts
    an ejection after baseEjectionTime x the ejections so far, capped at maxEjectionTime
    (recommended: 1 s, capped at 5 s; two ejections in 2.5 s, so at most ~2 s here),
    checked at each 0.5 s interval. A client that ejects for minutes (baseEjectionTime
    300 s, or gRPC's default 30 s) keeps a recovered backend out of rotation for as long:
    it fails. A client without outlier detection never ejects it and passes.
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    fault = chaos.nemesis.inject(AppError(target, "UNAVAILABLE"))
    failing_until = fault.in_force_ns + int(FAILING_S * 1e9)
    load.wait_until(
        lambda: chaos.history.now() >= failing_until,
        FAILING_S + 5,
        f"{target} failing calls for {FAILING_S:g} s",
    )
    cleared = chaos.nemesis.undo(fault).end_ns
    need = chaos.requirements
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since(target, cleared),
        need.readmission_ms / 1000 + 5,
        f"{target} serving again",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=target, after_ns=cleared, bound_ms=need.readmission_ms
        ),
        answers=("outlierDetection",),
    )


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_backend_failing_every_call_is_hidden_by_retries(chaos):
    """Property: when one backend answers every call with UNAVAILABLE (health SERVING), a
    client with a retry policy on UNAVAILABLE sees no error: each call that lands on it is
    replayed on the next backend in the rotation.

    Bound: error_budget (0) failed RPCs while the failing backend refuses 30 calls. One
    call at a time, so a retry always goes to the next backend of the rotation (with many
    calls in flight a call could land on the failing backend five times in a row and run
    out of attempts, ~0.4% of them).
    """
    load = chaos.load(concurrency=1)
    warm = chaos.warm_up(load)
    load.wait_for(30, timeout=10)
    target = chaos.history.busiest(warm)

    def refused() -> int:
        return chaos.fleet.stats(target)["by_code"].get("UNAVAILABLE", 0)

    before = refused()
    chaos.nemesis.inject(AppError(target, "UNAVAILABLE"))
    # The client's retries bring the refusals: with backoffs of seconds, or a backend
    # ejected for minutes, they never come, and the scenario fails on these settings.
    load.wait_until(
        lambda: refused() >= before + 30,
        10,
        f"30 calls refused by {target}",
        progress=lambda: f"{refused() - before} refused",
        answers=("retryPolicy", "outlierDetection"),
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=chaos.requirements.error_budget),
        answers=("retryPolicy",),
    )


def test_failures_on_every_backend_never_eject_them_all(chaos):
    """Property: when every backend fails 60 % of its calls with UNAVAILABLE (all still
    SERVING), the client never turns every backend away: every RPC that fails was answered
    by a backend — none fails inside the client for want of a backend to send it to.

    Bound: 0 RPCs failing with no backend. The backends' own failures reach callers when
    all five attempts of an RPC fail (0.6^5 = 7.8 %, measured 7.8 %): that is the fleet's
    error, not the client's. But outlier detection allowed to eject 100 % of the backends
    ejects them all, and the client then fails RPCs itself, "connections to all backends
    failing ... ejected by outlier detection" (measured: 31 % of RPCs, 36 % errors in all);
    maxEjectionPercent below 100 always keeps some backends in.
    """
    load = chaos.load(concurrency=16)
    chaos.warm_up(load)
    faults = [
        chaos.nemesis.inject(AppError(b, "UNAVAILABLE", fraction=FAIL_EVERYWHERE))
        for b in chaos.fleet.ids
    ]
    start = faults[0].start_ns
    # Outlier detection decides at the end of each interval: 3 s hold several of them.
    load.wait_until(
        lambda: chaos.history.now() >= faults[-1].in_force_ns + 3_000_000_000,
        10,
        "three seconds of failures",
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=start, unanswered=True, budget=0),
        answers=("outlierDetection",),
    )
    chaos.check(checks.error_rate(chaos.history, start_ns=start, max_ratio=1.0))


def test_slow_handler_shows_in_that_backends_latency(chaos):
    """Property: when b2's handler takes 200 ms (the process and network are fine), b2's
    median RPC latency is at least 200 ms, the other backends' 90th percentile stays within
    the healthy latency bound, and no RPC fails.

    Bound: 200 ms is the injected delay itself; healthy_latency_ms (100 ms) for the others —
    ~30x their normal p90 on loopback, far below the delay, so the two cannot be confused;
    the deadline (2 s) is far above the delay, so nothing fails. Not applicable to a client
    that sends every RPC to one backend: there are no "other backends" to compare.
    """
    chaos.require_spread("per-backend latency")
    load = chaos.load(concurrency=12)
    chaos.warm_up(load)
    slow = chaos.nemesis.inject(SlowHandler("b2", delay_ms=200))
    chaos.expect_slowness_stays_on(
        load, slow, "b2", delay_ms=200, answers=("outlierDetection", "round_robin")
    )
