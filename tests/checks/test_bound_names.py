"""A requirement given to a check as its bound keeps its name in the verdict, passed,
failed or not judged, so a scenario writes each bound once (Scenario.expect names the
requirement from the verdict's bound) — the checks the catalogue gives requirements to."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.checks.shutdown import shutdown_notice
from chaos.verdicts.requirements import DEFAULTS, Requirements, requirement_of

from .conftest import at, make_history

STRICT = Requirements(failover_ms=1, drain_ms=1, recovery_ms=1, healthy_latency_ms=1)
# b2 fails twice and is served after 300 ms; every RPC takes 20 ms.
ROWS = [
    (0, "b1", "OK", 20),
    (10, "b2", "UNAVAILABLE", 20),
    (20, "b2", "UNAVAILABLE", 20),
    (300, "b2", "OK", 20),
    (310, "b1", "OK", 20),
] + [(400 + 10 * i, "b1" if i % 2 else "b2", "OK", 20) for i in range(40)]


def _cases(need: Requirements):
    h = make_history(ROWS, events=[("kill", "b2", 5, 250)])
    return {
        "error_budget": checks.errors(h, budget=need.error_budget),
        "healthy_latency_ms": checks.latency(h, percentile=90, bound_ms=need.healthy_latency_ms),
        "recovery_ms": checks.recovery_time(h, "b2", at(250), bound_ms=need.recovery_ms),
        "failover_ms": checks.failover_time(h, "b2", at(5), bound_ms=need.failover_ms),
        "drain_ms": checks.drain_time(h, "b2", at(5), bound_ms=need.drain_ms),
        "min_share": checks.share(h, "b2", ["b1", "b2"], min_share=need.min_share),
        "fail_fast_ms": shutdown_notice(at(0), at(1), at(500), bound_ms=need.fail_fast_ms),
    }


@pytest.mark.parametrize("need", [DEFAULTS, STRICT], ids=["defaults", "strict"])
def test_each_check_keeps_the_name_of_the_requirement_it_was_given(need):
    for name, verdict in _cases(need).items():
        assert requirement_of(verdict.bound) == name, (name, verdict.outcome)


def test_both_outcomes_are_covered():
    outcomes = {v.outcome for need in (DEFAULTS, STRICT) for v in _cases(need).values()}
    assert {"pass", "fail"} <= outcomes


def test_a_value_derived_from_a_requirement_is_not_that_requirement():
    assert requirement_of(DEFAULTS.failover_ms) == "failover_ms"
    assert requirement_of(DEFAULTS.failover_ms * 2) is None
    assert requirement_of(DEFAULTS.error_budget + 1) is None
    assert requirement_of(1000.0) is None
