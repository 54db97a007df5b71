"""drain_time and no_traffic_to."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chaos.checks import drain_time, no_traffic_to

from .conftest import T0, at, make_history, make_rpcs

# b2 flipped to NOT_SERVING at 100 ms; it still gets two RPCs, the last at 103 ms.
FLIP = [
    (90, "b2", "OK", 30),  # started before the flip, ends after: part of the drain, not a leak
    (99, "b1"),
    (100, "b2"),  # exactly at the flip: counts as after it
    (101, "b3"),
    (103, "b2", "UNAVAILABLE"),  # outcome does not matter: it was *started* on b2
    (104, "b1"),
    (105, None, "UNAVAILABLE"),
    (110, "b3"),
]  # fmt: skip


def test_drain_time_is_the_last_start_on_the_target_after_the_flip():
    h = make_history(FLIP, events=[("health", "b2", 100, None, {"status": "NOT_SERVING"})])
    v = drain_time(h, "b2", at(100), bound_ms=5)
    assert v.passed and v.figure == 3.0 and v.unit == "ms"
    assert "2 of the 6 RPCs" in v.explanation and "#5 (UNAVAILABLE on b2" in v.explanation
    assert "1 of them had no backend id" in v.explanation
    assert "begin health b2" in v.explanation


def test_drain_time_over_the_bound_fails():
    v = drain_time(make_history(FLIP), "b2", at(100), bound_ms=2.999)
    assert not v and v.figure == 3.0 and "over the bound" in v.explanation


def test_drain_time_is_zero_when_nothing_started_on_the_target():
    rows = [(0, "b2", "OK", 500), (10, "b1"), (20, "b3")]
    v = drain_time(make_history(rows), "b2", at(5), bound_ms=0)
    assert v.passed and v.figure == 0.0 and "drained at once" in v.explanation


def test_drain_time_fails_with_no_traffic_after_the_flip_unless_allowed():
    h = make_history([(0, "b2")])
    v = drain_time(h, "b2", at(5), bound_ms=10)
    assert not v and v.figure is None and "cannot be seen" in v.explanation
    assert drain_time(h, "b2", at(5), bound_ms=10, min_rpcs=0).passed
    assert not drain_time([], "b2", T0, bound_ms=10)  # empty input: a verdict, not an exception


def test_drain_time_with_ties_at_the_last_start():
    rows = [(10, "b2"), (12, "b1"), (12, "b2"), (12, "b3")]
    v = drain_time(make_rpcs(rows)[::-1], "b2", at(10), bound_ms=100)  # unsorted input
    assert v.figure == 2.0


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 100), st.sampled_from(["b1", "b2", None])), min_size=1, max_size=25
    ),
    after=st.integers(0, 100),
)
def test_drain_time_is_the_latest_start_on_target(rows, after):
    rpcs = make_rpcs(rows)
    starts = [r.start_ns for r in rpcs if r.backend == "b2" and r.start_ns >= at(after)]
    v = drain_time(rpcs, "b2", at(after), bound_ms=10**6, min_rpcs=0)
    assert v.figure == ((max(starts) - at(after)) / 1e6 if starts else 0.0)


# -- no_traffic_to --------------------------------------------------------------------


def test_no_traffic_to_passes_when_the_window_avoids_the_target():
    v = no_traffic_to(make_history(FLIP), "b2", at(104), at(200))
    assert v.passed and v.figure == 0 and v.bound == 0
    assert "None of the 3 RPCs" in v.explanation


def test_no_traffic_to_fails_and_names_the_first_offender():
    v = no_traffic_to(make_history(FLIP), "b2", at(100), at(200))
    assert not v and v.figure == 2
    assert "2 of the 6 RPCs" in v.explanation and "#3 (OK on b2" in v.explanation


def test_no_traffic_to_windows_by_start_not_by_end():
    # #1 ran on b2 until 120 ms but started at 90: not traffic in [100, 200).
    v = no_traffic_to(make_history(FLIP[:2] + FLIP[3:4]), "b2", at(100), at(200))
    assert v.passed
    # the end of the window is excluded
    assert no_traffic_to(make_history(FLIP), "b2", at(101), at(103)).passed
    assert not no_traffic_to(make_history(FLIP), "b2", at(101), at(103.000001))


def test_no_traffic_to_is_not_judged_on_an_idle_window_unless_allowed():
    h = make_history(FLIP)
    v = no_traffic_to(h, "b2", at(500), at(600))
    assert not v and "idle window" in v.explanation and v.outcome == "not judged"
    assert no_traffic_to(h, "b2", at(500), at(600), min_rpcs=0).passed
    assert not no_traffic_to([], "b2", None, None)


def test_no_traffic_to_does_not_blame_rpcs_without_a_backend():
    v = no_traffic_to(make_history([(0, None, "UNAVAILABLE"), (1, "b1")]), "b2", None, None)
    assert v.passed


def test_no_traffic_to_window_sides_default_to_open():
    h = make_history(FLIP)
    assert not no_traffic_to(h, "b2")
    assert no_traffic_to(h, "b2", start_ns=at(104)).passed
    assert not no_traffic_to(h, backend="b2", end_ns=at(101))


def test_no_traffic_to_says_how_late_each_rpc_was_past_a_bound_it_is_told_of():
    # The window starts at a bound (flip in force at 50 ms + a 50 ms drain bound): the RPCs
    # on b2 at 100 and 103 ms came 0 and 3 ms past it — what a stall may explain.
    v = no_traffic_to(make_history(FLIP), "b2", at(100), at(200), bound_from_ns=at(50))
    assert v.late == ((at(50), at(100), 0.0), (at(50), at(103), 3.0))
    assert no_traffic_to(make_history(FLIP), "b2", at(100), at(200)).late == ()
