"""failover_time and recovery_time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chaos.checks import failover_time, recovery_time

from .conftest import T0, at, make_history, make_rpcs

# A kill of b2 at 100 ms: RPCs on b2 fail for a while, then everything goes to b1/b3.
KILL = [
    (80, "b1"), (90, "b2"), (95, "b3"),
    (100, "b2", "UNAVAILABLE", 2, "Socket closed"),  # id 4: starts exactly at the fault
    (110, "b1"), (120, "b2", "UNAVAILABLE"),  # id 6: the last bad one
    (130, "b3"), (140, "b1"), (150, "b3"),
]  # fmt: skip


def test_failover_measures_to_the_first_rpc_after_the_last_bad_one():
    h = make_history(KILL, events=[("kill", "b2", 100, None)])
    v = failover_time(h, "b2", at(100), bound_ms=50)
    assert v and v.passed
    assert v.figure == 30.0 and v.unit == "ms" and v.bound == 50
    assert "#6 (UNAVAILABLE on b2" in v.explanation
    assert "all 3 RPCs that started succeeded" in v.explanation
    assert "begin kill b2" in v.explanation  # the timeline excerpt is there


def test_failover_over_the_bound_fails():
    v = failover_time(make_history(KILL), "b2", at(100), bound_ms=29.999)
    assert not v and v.figure == 30.0
    assert "over the bound" in v.explanation


def test_failover_counts_ok_rpcs_on_the_target_as_not_failed_over():
    rows = [(0, "b1"), (10, "b2"), (20, "b1"), (30, "b3")]  # #2: OK but still on the dead b2
    v = failover_time(make_history(rows), "b2", at(0), bound_ms=100)
    assert v.figure == 20.0
    assert "OK but served by b2: 1" in v.explanation


def test_failover_is_zero_when_nothing_went_wrong_after_the_fault():
    v = failover_time(make_history([(0, "b1"), (50, "b3")]), "b2", at(10), bound_ms=0)
    assert v.passed and v.figure == 0.0


def test_failover_fails_when_the_last_rpc_is_bad():
    rows = [(0, "b1"), (10, "b2", "UNAVAILABLE"), (20, "b1"), (1300, "b1", "DEADLINE_EXCEEDED")]
    v = failover_time(make_history(rows), "b2", at(5), bound_ms=1000)
    assert v.failed and v.figure is None
    assert "never failed over" in v.explanation and "#4 (DEADLINE_EXCEEDED on b1" in v.explanation
    assert v.headline.startswith("FAIL failover_time: never within the 1.3 s observed")


def test_failover_with_bad_rpcs_observed_for_less_than_the_bound_is_not_judged():
    # The load stopped 25 ms after the fault: a client that fails over in 1 s had no chance.
    rows = [(0, "b1"), (10, "b2", "UNAVAILABLE"), (20, "b1"), (30, "b1", "DEADLINE_EXCEEDED")]
    v = failover_time(make_history(rows), "b2", at(5), bound_ms=1000)
    assert not v.passed and not v.failed and v.outcome == "not judged"
    assert v.headline.startswith("NOT JUDGED failover_time: RPCs were started for only 25 ms")


def test_failover_with_no_rpc_after_the_fault_is_not_judged():
    v = failover_time(make_history([(0, "b1"), (10, "b2")]), "b2", at(11), bound_ms=1000)
    assert not v and v.outcome == "not judged" and v.figure is None
    assert "No RPC started at or after the fault" in v.explanation


def test_failover_on_an_empty_history_does_not_raise():
    v = failover_time([], "b2", T0, bound_ms=1000)
    assert not v and v.outcome == "not judged" and "No RPC started" in v.explanation


def test_failover_ignores_rpcs_in_flight_when_the_fault_struck():
    # #2 started before the kill and failed after it: errors() sees it, failover does not.
    rows = [(0, "b1"), (5, "b2", "UNAVAILABLE", 100), (20, "b1"), (30, "b3")]
    v = failover_time(make_history(rows), "b2", at(10), bound_ms=1000)
    assert v.passed and v.figure == 0.0


def test_failover_clock_tie_with_the_last_bad_rpc_is_not_after_it():
    # #3 starts in the same ns as the last bad RPC #2: T is #4's start, not #3's.
    rows = [(0, "b1"), (10, "b2", "UNAVAILABLE"), (10, "b1"), (12, "b3")]
    v = failover_time(make_history(rows), "b2", at(0), bound_ms=1000)
    assert v.figure == 12.0


def test_failover_rpc_without_backend():
    # an OK RPC with no backend id counts as a survivor; a failed one is bad
    rows = [(0, None, "UNAVAILABLE"), (10, None), (20, "b1")]
    v = failover_time(make_history(rows), "b2", at(0), bound_ms=1000)
    assert v.figure == 10.0


def test_failover_accepts_unsorted_lists_of_rpcs():
    rpcs = make_rpcs(KILL)
    v = failover_time(list(reversed(rpcs)), "b2", at(100), bound_ms=50)
    assert v.figure == 30.0


def _brute_force_failover(rpcs, target, after):
    """The definition, literally: earliest candidate T (after, or an RPC start)."""
    later = [r for r in rpcs if r.start_ns >= after]
    for t in sorted({after} | {r.start_ns for r in later}):
        tail = [r for r in later if r.start_ns >= t]
        if tail and all(r.ok and r.backend != target for r in tail):
            return t
    return None


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 200),  # start ms: small range, so ties are common
        st.sampled_from(["b1", "b2", "b3", None]),
        st.sampled_from(["OK", "OK", "OK", "UNAVAILABLE"]),
    ),
    max_size=30,
)


@given(rows=rows_strategy, after=st.integers(-10, 210))
def test_failover_matches_its_definition(rows, after):
    rpcs = make_rpcs(rows)
    expected = _brute_force_failover(rpcs, "b2", at(after))
    v = failover_time(rpcs, "b2", at(after), bound_ms=10**9)
    if expected is None:
        assert not v.passed and v.figure is None
        # Never failed over, but never observed for the (huge) bound either.
        assert v.outcome == "not judged"
    else:
        assert v.passed and v.figure == (expected - at(after)) / 1e6


# -- recovery -------------------------------------------------------------------------


def test_recovery_measures_to_the_first_ok_rpc_on_the_target():
    rows = [(0, "b1"), (10, "b2", "UNAVAILABLE"), (20, "b3"), (35, "b2"), (40, "b2")]
    h = make_history(rows, events=[("kill", "b2", -100, 5)])
    v = recovery_time(h, "b2", at(5), bound_ms=30)
    assert v.passed and v.figure == 30.0
    assert "#4 (OK on b2" in v.explanation and "end   kill b2" in v.explanation


# Two rounds over b1..b3 after the bound: the evidence a miss is judged on.
ROUNDS_AFTER = [(t, b) for t in range(1100, 1160, 10) for b in ("b1", "b3")]


def test_recovery_over_the_bound_fails():
    rows = [(0, "b1"), (31, "b1"), (32, "b1"), (33, "b1"), (34, "b1"), (35, "b2")]
    v = recovery_time(make_history(rows), "b2", at(5), bound_ms=20)
    assert v.failed and v.figure == 30.0
    assert v.headline.startswith("FAIL recovery_time: 30 ms (bound <= 20 ms)")


def test_recovery_over_the_bound_with_no_load_after_the_bound_is_not_judged():
    # The first RPC after an idle stretch went to b2: it may have been back long before.
    rows = [(0, "b1"), (35, "b2")]
    v = recovery_time(make_history(rows), "b2", at(5), bound_ms=29.9)
    assert v.outcome == "not judged"
    assert "0 RPC(s) started between the end of the bound and the first RPC on b2" in v.headline


def test_recovery_fails_when_the_target_never_serves():
    rows = [(0, "b1"), (10, "b2", "UNAVAILABLE"), (20, "b3")] + ROUNDS_AFTER
    v = recovery_time(make_history(rows), "b2", at(5), bound_ms=1000)
    assert v.failed and v.figure is None
    assert "did not serve again" in v.explanation and "UNAVAILABLE 1" in v.explanation
    assert v.headline.startswith("FAIL recovery_time: never within the 1.1 s observed")


def test_recovery_with_load_that_stopped_before_the_bound_is_not_judged():
    # The fuzzer's false red: an idle gap began 10 ms after the clear and the run ended.
    rows = [(0, "b1")] + [(5 + i, ("b1", "b3")[i % 2]) for i in range(10)]
    v = recovery_time(make_history(rows), "b2", at(5), bound_ms=2000)
    assert v.outcome == "not judged" and not v.passed
    assert "0 RPC(s) started between the end of the bound and the end of the history" in v.headline


def test_recovery_needs_two_rounds_of_rpcs_after_the_bound():
    rows = [(0, "b1"), (10, "b2", "UNAVAILABLE")] + ROUNDS_AFTER[:5]  # b1..b3: 6 needed
    assert recovery_time(make_history(rows), "b2", at(5), bound_ms=1000).outcome == "not judged"
    rows += ROUNDS_AFTER[5:6]
    assert recovery_time(make_history(rows), "b2", at(5), bound_ms=1000).failed


def test_recovery_does_not_count_rpcs_in_idle_intervals_as_evidence():
    rows = [(0, "b1"), (10, "b2", "UNAVAILABLE")] + ROUNDS_AFTER
    v = recovery_time(make_history(rows), "b2", at(5), bound_ms=1000, idle=[(at(1000), at(2000))])
    assert v.outcome == "not judged"


def test_recovery_ignores_ok_rpcs_on_the_target_started_before_the_clear():
    rows = [(0, "b2", "OK", 50), (20, "b1")]  # served by b2, but sent before the clear at 10
    v = recovery_time(make_history(rows), "b2", at(10), bound_ms=1000)
    assert not v


def test_recovery_at_the_exact_clear_instant_is_zero():
    v = recovery_time(make_history([(10, "b2")]), "b2", at(10), bound_ms=0)
    assert v.passed and v.figure == 0.0


def test_recovery_on_empty_input_does_not_raise():
    v = recovery_time([], "b2", T0, bound_ms=10)
    assert not v and v.outcome == "not judged" and "none of the 0 RPCs" in v.explanation
