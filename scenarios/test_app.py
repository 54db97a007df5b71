"""App: a backend whose process and network are fine but whose application fails or is slow
(its health still says SERVING, so health checking does not see it)."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import AppError, SlowHandler

pytestmark = pytest.mark.app

# Outlier detection ejects at the end of an interval (0.5 s in the recommended and outlier
# profiles) in which the backend failed at least half of at least 10 calls. The interval
# running when the fault starts may still hold mostly successes, so ejection comes at the
# latest at the end of the next one: 1000 ms after the fault. 500 ms of margin for a busy
# 2-core machine.
EJECT_BOUND_MS = 1500
# Ejected means: this many RPCs in a row since the last one that failed or went to the
# failing backend (a few hundred ms of load; the first ejection lasts 1 s).
CLEAN_RUN = 100


def clean_run(history, target: str, since_ns: int) -> int:
    """How many RPCs started since ``since_ns`` after the last one that failed or was
    served by ``target``."""
    count = 0
    for rpc in reversed(history.window(since_ns)):
        if not rpc.ok or rpc.backend == target:
            break
        count += 1
    return count


@pytest.mark.detects(naive="failover_time", pick_first="failover_time")
def test_backend_failing_every_call_is_ejected(chaos):
    """Property: when the busiest backend answers every call with UNAVAILABLE while its
    health still says SERVING, outlier detection ejects it: within 1500 ms of the fault every
    RPC succeeds on the other backends.

    Bound: 1500 ms — ejection happens at the end of a 0.5 s interval in which the backend
    failed at least half of at least 10 calls; the interval running at the fault may still
    be mostly successes, so the end of the next one (1000 ms) is the latest; 500 ms of
    margin for a busy machine. Until then its failures reach the client: each is an answer
    (it carries the backend's headers), which a retry policy does not replay. The check
    looks at the RPCs up to the moment the ejection is seen (100 clean RPCs in a row),
    within the first ejection (1 s in the recommended profile).
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.busiest(warm)
    fault = chaos.nemesis.inject(AppError(target, "UNAVAILABLE"))
    try:
        load.wait_until(lambda: clean_run(chaos.history, target, fault.start_ns) >= CLEAN_RUN,
                        EJECT_BOUND_MS / 1000 + 1, f"{target} ejected")
    except TimeoutError:
        pass  # failover_time below says what happened instead
    seen = chaos.history.mark(f"{target} ejected" if clean_run(
        chaos.history, target, fault.start_ns) >= CLEAN_RUN else "not ejected")
    observed = [*chaos.history.window(None, seen), *chaos.history.events]
    chaos.expect(checks.failover_time(observed, target=target, after_ns=fault.start_ns,
                                      bound_ms=EJECT_BOUND_MS))


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_backend_failing_every_call_is_hidden_by_retries(chaos):
    """Property: when one backend answers every call with UNAVAILABLE (health SERVING), a
    client with a retry policy on UNAVAILABLE sees no error: each call that lands on it is
    replayed on the next backend in the rotation.

    Bound: 0 failed RPCs while the failing backend refuses 30 calls. One call at a time, so
    a retry always goes to the next backend of the round_robin rotation (with many calls in
    flight a call could land on the failing backend five times in a row and run out of
    attempts, ~0.4% of them).
    """
    load = chaos.load(concurrency=1)
    warm = chaos.warm_up(load)
    load.wait_for(30, timeout=10)
    target = chaos.busiest(warm)
    refused = chaos.fleet.stats(target)["by_code"].get("UNAVAILABLE", 0)
    chaos.nemesis.inject(AppError(target, "UNAVAILABLE"))
    load.wait_until(lambda: chaos.fleet.stats(target)["by_code"].get("UNAVAILABLE", 0)
                    >= refused + 30, 10, f"30 calls refused by {target}")
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))


def test_slow_handler_shows_in_that_backends_latency(chaos):
    """Property: when b2's handler takes 200 ms (the process and network are fine), b2's
    median RPC latency is at least 200 ms, the other backends' 99th percentile stays under
    100 ms, and no RPC fails.

    Bound: 200 ms is the injected delay itself; 100 ms for the others is ~30x their normal
    p99 on loopback — a margin for a busy machine still far below the delay, so the two
    cannot be confused; the deadline (2 s) is far above the delay, so nothing fails.
    """
    if chaos.profile.policy == "pick_first":
        pytest.skip("pick_first uses one backend; per-backend latency needs a balancer that "
                    "spreads RPCs")
    load = chaos.load(concurrency=12)
    chaos.warm_up(load)
    slow = chaos.nemesis.inject(SlowHandler("b2", delay_ms=200))
    load.wait_until(lambda: chaos.count_ok("b2", slow.start_ns) >= 40, 20,
                    "40 RPCs answered by the slow handler")
    chaos.expect(checks.latency(chaos.history, backend="b2", percentile=50, bound_ms=200,
                                at_least=True, start_ns=slow.start_ns))
    for fast in ("b1", "b3"):
        chaos.expect(checks.latency(chaos.history, backend=fast, percentile=99, bound_ms=100,
                                    start_ns=slow.start_ns))
    chaos.expect(checks.errors(chaos.history, start_ns=slow.start_ns, budget=0))
