"""Latency percentiles (nearest rank) and the latency check."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.checks import latency, percentiles
from chaos.checks.latency import nearest_rank

from .conftest import at, make_history, make_rpcs


def _rows(latencies_ms, backend="b1", code="OK", start=0):
    return [(start + i, backend, code, ms) for i, ms in enumerate(latencies_ms)]


def test_nearest_rank_on_1_to_100():
    table = percentiles(make_rpcs(_rows(range(1, 101))))["overall"]
    assert table == {50: 50.0, 90: 90.0, 99: 99.0, 99.9: 100.0}


def test_nearest_rank_is_exact_where_floats_are_not():
    # 99.9/100*1000 is 999.0000000000001 in floats; the 999th value is the p99.9
    assert nearest_rank(1000, 99.9) == 998
    table = percentiles(make_rpcs(_rows(range(1, 1001))), ps=(99.9, 0, 100))["overall"]
    assert table == {99.9: 999.0, 0: 1.0, 100: 1000.0}


def test_percentiles_per_backend_and_overall():
    rows = (
        _rows([1, 2, 3, 4], "b1")
        + _rows([10, 20], "b2", start=10)
        + _rows([7], None, "UNAVAILABLE", start=20)
    )
    table = percentiles(make_rpcs(rows[::-1]), ps=(50, 100))
    assert list(table) == ["overall", "(none)", "b1", "b2"]
    assert table["b1"] == {50: 2.0, 100: 4.0}
    assert table["b2"] == {50: 10.0, 100: 20.0}
    assert table["(none)"] == {50: 7.0, 100: 7.0}
    assert table["overall"] == {50: 4.0, 100: 20.0}  # 1 2 3 4 7 10 20: rank ceil(3.5) = 4


def test_percentiles_of_nothing():
    assert percentiles([]) == {"overall": {50: None, 90: None, 99: None, 99.9: None}}


@pytest.mark.parametrize("p", [-1, 100.5])
def test_a_percentile_outside_0_100_is_refused(p):
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentiles(make_rpcs(_rows([1])), ps=(p,))
    with pytest.raises(ValueError, match="between 0 and 100"):
        latency([], percentile=p, bound_ms=1)


@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=200), st.floats(0, 100))
def test_nearest_rank_percentile_is_an_observed_value_with_enough_below(values, p):
    n, share = len(values), Fraction(str(p)) * len(values)
    k = nearest_rank(n, p)
    # the smallest rank holding at least p% of the values (rank 1 for p = 0)
    assert (k + 1) * 100 >= share
    assert k == 0 or k * 100 < share
    assert 0 <= k < n


def test_latency_passes_within_the_bound_and_names_the_rpc():
    rows = _rows([5] * 98 + [40, 250])  # 100 RPCs: p99 is the 99th, 40 ms (id 99)
    v = latency(make_history(rows), percentile=99, bound_ms=40)
    assert v.passed and v.figure == 40.0 and v.unit == "ms" and v.bound == 40
    assert "#99 (OK on b1" in v.explanation and "max 250.000 ms" in v.explanation
    assert [line for line in v.explanation.splitlines() if line.startswith(">>")][0].split()[
        3
    ] == "#99"
    json.dumps(v.to_dict())


def test_latency_over_the_bound_fails():
    v = latency(make_history(_rows([5] * 98 + [40, 250])), percentile=99, bound_ms=39.9)
    assert not v and "over the bound" in v.explanation


def test_latency_per_backend():
    rows = _rows([1] * 10, "b1") + _rows([200] * 10, "b2", start=100)
    h = make_history(rows)
    assert latency(h, "b1", 99, bound_ms=1).passed
    v = latency(h, backend="b2", percentile=50, bound_ms=100)
    assert not v and v.figure == 200.0 and "on b2" in v.explanation


def test_latency_leaves_out_failed_rpcs_unless_asked():
    rows = _rows([1] * 10) + _rows([5000], code="DEADLINE_EXCEEDED", start=50)
    h = make_history(rows)
    assert latency(h, bound_ms=1).figure == 1.0
    assert latency(h, bound_ms=1, only_ok=False).figure == 5000.0


def test_latency_window_selects_by_start():
    rows = [(0, "b1", "OK", 500)] + _rows(
        [2] * 5, start=100
    )  # the slow one started before the window
    h = make_history(rows)
    assert latency(h, bound_ms=10, start_ns=at(50)).figure == 2.0
    assert latency(h, bound_ms=10).figure == 500.0


def test_latency_on_empty_input_fails_unless_allowed():
    v = latency(make_history(_rows([1])), "b9", bound_ms=10)
    assert (
        not v and v.figure is None and "no latency to measure (at least 1 needed)" in v.explanation
    )
    assert latency([], bound_ms=10, min_rpcs=0).passed
    assert latency(make_history(_rows([1, 2])), bound_ms=10, min_rpcs=3).passed is False


def test_latency_needs_a_bound():
    with pytest.raises(TypeError, match="bound_ms"):
        latency(make_history(_rows([1])))


def test_latency_data_is_json_native():
    v = latency(make_history(_rows([1, 2, 3], "b1") + _rows([4], "b2", start=9)), bound_ms=10)
    assert v.data["percentiles"]["overall"]["99.9"] == 4.0
    assert json.loads(json.dumps(v.data)) == v.data


def test_latency_at_least_turns_the_bound_into_a_floor():
    # a 200 ms toxic on b2: its median must be at least 200 ms, or the toxic is not in force
    rows = _rows([201, 203, 250], "b2") + _rows([1, 2], "b1", start=10)
    h = make_history(rows)
    v = latency(h, backend="b2", percentile=50, bound_ms=200, at_least=True)
    assert v.passed and v.figure == 203.0 and v.comparison == ">="
    assert "at least the floor of 200 ms" in v.explanation
    assert v.headline == "PASS latency: 203 ms (bound >= 200 ms)"
    v = latency(h, backend="b1", percentile=50, bound_ms=200, at_least=True)
    assert not v and "under the floor" in v.explanation
    assert not latency(h, backend="b9", bound_ms=200, at_least=True)  # nothing measured is no proof


def test_latency_counted_from_a_fault_leaves_out_only_the_time_held_before_it():
    # An RPC held 900 ms by the scenario before a fault at +1000 ms, replayed 200 ms after
    # it; another sent 50 ms after the fault that took 300 ms; one untouched before it.
    rows = [(100, "b2", "OK", 1100), (1050, "b3", "OK", 300), (0, "b1", "OK", 5)]
    h = make_history(rows)
    assert latency(h, percentile=100, bound_ms=500).figure == 1100.0  # from its start
    v = latency(h, percentile=100, bound_ms=500, counted_from_ns=at(1000))
    assert v.passed and v.figure == 300.0  # the one sent after the fault, from its start
    assert "counted from the later of its start and" in v.explanation
    assert "#2 (OK on b3, started" in v.explanation  # named by its real start
    assert v.span == (at(1050), at(1350))
    # The replay itself is not excused: 600 ms after the fault is over a 500 ms bound.
    late = make_history([(100, "b2", "OK", 1500)])
    v = latency(late, percentile=100, bound_ms=500, counted_from_ns=at(1000))
    assert not v and v.figure == 600.0 and v.span == (at(1000), at(1600))
