"""errors and error_rate."""

from __future__ import annotations

import pytest

from chaos.checks import error_rate, errors
from chaos.history import Rpc

from .conftest import at, make_history, make_rpcs

ROWS = [
    (0, "b1"),
    (5, "b2", "UNAVAILABLE", 200, "Socket closed"),  # in flight across the kill at 10 ms
    (10, "b2", "UNAVAILABLE", 1, "Connection refused"),
    (10, "b3"),
    (20, None, "UNAVAILABLE", 1, "no healthy upstream"),
    (30, "b1", "DEADLINE_EXCEEDED", 1000),
    (40, "b1"),
    (50, "b3"),
]


def test_errors_counts_non_ok_by_code():
    v = errors(make_history(ROWS), budget=4)
    assert v.passed and v.figure == 4 and v.unit == "rpcs" and v.bound == 4
    assert v.data["by_code"] == {"UNAVAILABLE": 3, "DEADLINE_EXCEEDED": 1}
    assert "UNAVAILABLE 3, DEADLINE_EXCEEDED 1" in v.explanation
    assert (
        "#2 (UNAVAILABLE on b2" in v.explanation
        and "#5 (UNAVAILABLE with no backend" in v.explanation
    )


def test_errors_over_budget_fails():
    v = errors(make_history(ROWS))  # default budget 0
    assert not v and v.figure == 4 and "over the budget of 0" in v.explanation


def test_errors_window_selects_by_start():
    h = make_history(ROWS)
    # #2 started at 5 ms and failed at 205: it belongs to a window opened before the kill
    assert errors(h, start_ns=at(10), budget=10).figure == 3
    assert errors(h, start_ns=at(0), end_ns=at(10), budget=10).figure == 1
    assert errors(h, start_ns=at(10), end_ns=at(20), budget=10).figure == 1  # 20 excluded


def test_errors_restricted_to_codes():
    h = make_history(ROWS)
    assert errors(h, codes={"DEADLINE_EXCEEDED"}).figure == 1
    assert errors(h, codes="UNAVAILABLE", budget=3).figure == 3  # a single code as a string
    v = errors(h, codes=["INTERNAL"])
    assert v.passed and v.figure == 0 and "failed with INTERNAL" in v.explanation


def test_errors_on_an_empty_window_is_not_judged_unless_allowed():
    h = make_history(ROWS)
    v = errors(h, start_ns=at(1000))
    assert not v and v.figure == 0 and "at least 1 RPCs were needed" in v.explanation
    assert v.outcome == "not judged" and not v.failed
    assert errors(h, start_ns=at(1000), min_rpcs=0).passed
    assert not errors([])
    assert errors([], min_rpcs=0)


def test_errors_accepts_unsorted_rpcs_and_lists_failures_in_time_order():
    v = errors(list(reversed(make_rpcs(ROWS))), budget=10)
    assert v.explanation.index("#2 (") < v.explanation.index("#3 (") < v.explanation.index("#6 (")


def test_errors_explanation_shows_the_timeline_around_the_first_failure():
    v = errors(make_history(ROWS, events=[("kill", "b2", 10, None)]))
    timeline = v.explanation.split("\n\n", 1)[1]
    assert "begin kill b2" in timeline
    assert [line for line in timeline.splitlines() if line.startswith(">>")][0].split()[
        1
    ] == "+0.000"


def test_error_rate_is_a_ratio_of_the_window():
    h = make_history(ROWS)
    v = error_rate(h, max_ratio=0.5)
    assert v.passed and v.figure == 0.5 and v.unit == "ratio"
    assert not error_rate(h, max_ratio=0.49)
    assert error_rate(h, start_ns=at(40), max_ratio=0.0).figure == 0.0
    assert error_rate(h, codes={"DEADLINE_EXCEEDED"}, max_ratio=0.125).passed


def test_error_rate_on_an_empty_window_has_no_figure():
    v = error_rate(make_history(ROWS), start_ns=at(999), max_ratio=0.1)
    assert not v and v.figure is None
    assert error_rate([], max_ratio=0.1, min_rpcs=0).passed


def test_error_rate_needs_max_ratio():
    with pytest.raises(TypeError):
        error_rate(make_history(ROWS))


# -- committed RPCs ------------------------------------------------------------------------


def committed_note(rpc_id: int, headers_ms: float) -> tuple:
    """The HTTP/2 point's report of an RPC lost after its response headers."""
    detail = {"rpc": str(rpc_id), "headers_ns": at(headers_ms), "why": "connection closed"}
    return ("http2:committed", "b2", 210.0, 210.0, detail)


def test_failures_committed_by_early_headers_are_named_so():
    rows = [(0, "b1"), (5, None, "UNAVAILABLE", 200, "Socket closed"), (6, "b3")]
    v = errors(make_history(rows, [committed_note(2, 5.4)]))
    assert not v.passed and v.data["committed"] == 1
    assert "All failed RPC(s) were committed: #2 got its response headers 0.4 ms" in v.explanation
    assert "no retry policy can replay" in v.explanation


def test_a_client_that_reports_headers_marks_its_rpcs_committed():
    history = make_history()
    history.record(Rpc(1, at(0), at(50), None, "UNAVAILABLE", "Socket closed", headers_ns=at(2)))
    history.record(Rpc(2, at(0), at(50), None, "UNAVAILABLE", "Socket closed"))
    v = errors(history)
    assert v.data["committed"] == 1
    assert "1 of the 2 failed RPC(s) were committed: #1" in v.explanation


def test_failures_without_headers_say_nothing_of_commitment():
    rows = [(0, "b1"), (5, None, "UNAVAILABLE", 200, "Socket closed")]
    v = errors(make_history(rows, [committed_note(99, 5.4)]))  # another RPC's report
    assert "committed" not in v.data and "committed" not in v.explanation
