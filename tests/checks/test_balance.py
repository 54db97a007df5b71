"""balance_exact and balance_chi2."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chaos.checks import balance_chi2, balance_exact, share

from .conftest import make_history, make_rpcs, round_robin

B3 = ["b1", "b2", "b3"]


def swap_backends(rows: list[tuple], i: int, j: int) -> None:
    """Exchange the backends of rows i and j, keeping their start times."""
    rows[i], rows[j] = (
        (rows[i][0], rows[j][1], *rows[i][2:]),
        (rows[j][0], rows[i][1], *rows[j][2:]),
    )


# -- exact ----------------------------------------------------------------------------


def test_exact_round_robin_passes_with_the_number_of_rounds():
    v = balance_exact(make_history(round_robin(["b2", "b3", "b1"], 100)), B3)
    assert v.passed and v.figure == 100 and v.unit == "rounds"
    assert "100 complete rounds, each in the order b2 b3 b1" in v.explanation
    assert v.data["order"] == ["b2", "b3", "b1"]


def test_exact_round_robin_discovers_backends_when_not_listed():
    v = balance_exact(make_history(round_robin(B3, 4)))
    assert v.passed and v.figure == 4 and v.data["backends"] == B3


def test_a_round_in_another_order_fails_and_is_shown():
    rows = round_robin(B3, 5)
    swap_backends(rows, 9, 10)  # round 4 goes b2 b1 b3
    v = balance_exact(make_history(rows), B3)
    assert not v and v.figure == 3
    # The headline names the broken round: "3 rounds (bound >= 1 rounds)" reads as a pass.
    assert (
        v.headline
        == "FAIL balance_exact: round 4 of 5 out of rotation (b2 b1 b3) (bound >= 1 rounds)"
    )
    assert (
        "round 4 of 5 (RPCs #10..#12) went to b2 b1 b3: a different order from round 1 (b1 b2 b3)"
        in v.explanation
    )
    assert "The 3 rounds before it" in v.explanation
    highlighted = [line for line in v.explanation.splitlines() if line.startswith(">>")]
    assert [line.split()[3] for line in highlighted] == ["#10", "#11", "#12"]


def test_a_round_missing_a_backend_fails():
    rows = round_robin(B3, 3)
    rows[4] = (rows[4][0], "b1")  # round 2: b1 b1 b3
    v = balance_exact(make_history(rows), B3)
    assert not v and v.figure == 1
    assert "missing b2; b1 more than once" in v.explanation


def test_a_first_round_that_is_not_a_permutation_fails():
    v = balance_exact(
        make_history([(0, "b1"), (1, "b1"), (2, "b3")] + round_robin(B3, 2, start_ms=3)), B3
    )
    assert not v and v.figure == 0 and "round 1 of 3" in v.explanation


def test_an_unlisted_backend_breaks_its_round():
    rows = round_robin(B3, 2) + [(10, "b1"), (11, "b4"), (12, "b3")]
    v = balance_exact(make_history(rows), B3)
    assert not v and "unlisted backend b4" in v.explanation


def test_an_ok_rpc_without_backend_breaks_its_round():
    rows = round_robin(B3, 2) + [(10, "b1"), (11, None), (12, "b3")]
    v = balance_exact(make_history(rows), B3)
    assert not v and "unlisted backend None" in v.explanation


def test_failed_rpcs_are_left_out_of_the_rounds():
    rows = round_robin(B3, 3)
    rows.insert(4, (3.5, "b2", "UNAVAILABLE"))
    v = balance_exact(make_history(rows), B3)
    assert v.passed and v.figure == 3 and "1 failed RPCs left out" in v.explanation


def test_a_trailing_partial_round_must_follow_the_rotation():
    rows = round_robin(B3, 3) + [(9, "b1"), (10, "b2")]
    assert balance_exact(make_history(rows), B3).figure == 3
    bad = round_robin(B3, 3) + [(9, "b2")]
    v = balance_exact(make_history(bad), B3)
    assert not v and "round 4 of 4" in v.explanation


def test_exact_clock_ties_are_ordered_by_id():
    # all at the same ns: the request ids (issue order) decide the order
    rows = [(0, b) for b in ["b1", "b2", "b3"] * 3]
    assert balance_exact(make_history(rows, shuffle=3), B3).figure == 3


def test_exact_accepts_unsorted_rpcs():
    rpcs = make_rpcs(round_robin(B3, 5))
    assert balance_exact(rpcs[::-1], B3).figure == 5


def test_exact_window():
    rows = [(0, "b1"), (1, "b1")] + round_robin(B3, 4, start_ms=10)  # cold start, then warm
    h = make_history(rows)
    assert not balance_exact(h, B3)
    assert balance_exact(h, B3, start_ns=h.rpcs[2].start_ns).figure == 4


def test_exact_with_too_few_rounds_is_not_judged_unless_allowed():
    h = make_history([(0, "b1"), (1, "b2")])
    v = balance_exact(h, B3)
    assert not v and v.figure == 0 and "At least 1 complete rounds" in v.explanation
    assert v.outcome == "not judged" and v.headline.startswith(
        "NOT JUDGED balance_exact: 0 complete"
    )
    assert balance_exact(h, B3, min_rounds=0).passed
    assert balance_exact(make_history(round_robin(B3, 2)), B3, min_rounds=3).passed is False


def test_exact_on_empty_input_does_not_raise():
    assert not balance_exact([])
    assert not balance_exact([], B3)
    assert balance_exact([], B3, min_rounds=0).passed


@pytest.mark.parametrize("backends", [[], ["b1", "b1"]])
def test_exact_rejects_a_bad_backend_list(backends):
    with pytest.raises(ValueError, match="backends"):
        balance_exact(make_history(round_robin(B3, 2)), backends)


names = st.lists(
    st.sampled_from([f"b{i}" for i in range(1, 9)]), min_size=2, max_size=6, unique=True
)


@given(backends=names, rotation=st.integers(0, 100), rounds=st.integers(1, 20), data=st.data())
def test_any_perfect_rotation_passes(backends, rotation, rounds, data):
    order = data.draw(st.permutations(backends))
    order = order[rotation % len(order) :] + order[: rotation % len(order)]
    v = balance_exact(make_rpcs(round_robin(order, rounds)), backends)
    assert v.passed and v.figure == rounds


@given(backends=names, rounds=st.integers(2, 12), data=st.data())
def test_any_swap_of_two_different_backends_fails(backends, rounds, data):
    rows = round_robin(data.draw(st.permutations(backends)), rounds)
    i, j = sorted(
        data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=2, max_size=2, unique=True))
    )
    assume(rows[i][1] != rows[j][1])
    swap_backends(rows, i, j)
    v = balance_exact(make_rpcs(rows), backends)
    assert not v.passed
    n = len(backends)
    # The first bad round is the one the swap touched first; a swap inside round 1 only
    # changes the reference order, so it shows in round 2.
    assert v.figure == (1 if i // n == j // n == 0 else i // n)


# -- chi-square -----------------------------------------------------------------------


def _counts(**per_backend: int) -> list[tuple]:
    rows = []
    for backend, n in per_backend.items():
        rows += [(len(rows) + k, backend) for k in range(n)]
    return rows


def test_chi2_uniform_counts_pass_with_p_one():
    v = balance_chi2(make_history(_counts(b1=100, b2=100, b3=100)), B3)
    assert v.passed and v.figure == pytest.approx(1.0) and v.unit == "p" and v.comparison == ">="
    assert v.data["counts"] == {"b1": 100, "b2": 100, "b3": 100}


def test_chi2_p_value_is_the_chi_square_tail():
    # counts 120/90/90: chi2 = (400 + 100 + 100)/100 = 6 on 2 df, p = exp(-3)
    v = balance_chi2(make_history(_counts(b1=120, b2=90, b3=90)), B3)
    assert v.data["chi2"] == pytest.approx(6.0)
    assert v.figure == pytest.approx(0.049787068, rel=1e-6)
    assert v.passed  # 0.0498 >= default alpha 0.001
    assert not balance_chi2(make_history(_counts(b1=120, b2=90, b3=90)), B3, alpha=0.05)


def test_chi2_skewed_counts_fail():
    v = balance_chi2(make_history(_counts(b1=150, b2=75, b3=75)), B3)
    assert not v and v.figure < 0.001 and "not uniform" in v.explanation


def test_chi2_a_listed_backend_with_no_rpc_fails():
    v = balance_chi2(make_history(_counts(b1=500, b3=500)), B3)
    assert not v and "b2 got no RPC" in v.explanation


def test_chi2_an_unlisted_backend_fails():
    v = balance_chi2(make_history(_counts(b1=100, b2=100, b3=100, b4=3)), B3)
    assert not v and "backends not listed: b4 3" in v.explanation


def test_chi2_too_little_data_fails():
    v = balance_chi2(make_history(_counts(b1=4, b2=4, b3=4)), B3)
    assert not v and v.figure is None and "too few RPCs" in v.explanation
    assert balance_chi2(make_history(_counts(b1=4, b2=4, b3=4)), B3, min_expected=4).passed


def test_chi2_leaves_out_failed_and_unattributed_rpcs():
    rows = _counts(b1=100, b2=100, b3=100) + [(400, "b1", "UNAVAILABLE")] * 50 + [(500, None)] * 7
    v = balance_chi2(make_history(rows), B3)
    assert v.passed and v.figure == pytest.approx(1.0)
    assert "7 OK RPCs had no backend id" in v.explanation


def test_chi2_window():
    rows = _counts(b1=300, b2=0, b3=0) + [(1000 + i, B3[i % 3]) for i in range(300)]
    h = make_history(rows)
    assert not balance_chi2(h, B3)
    assert balance_chi2(h, B3, start_ns=h.rpcs[300].start_ns).passed


def test_chi2_on_empty_input_does_not_raise():
    v = balance_chi2([], B3)
    assert not v and v.figure is None
    assert not balance_chi2([])  # no backends listed, none seen


def test_chi2_accepts_a_plain_unsorted_list():
    assert balance_chi2(make_rpcs(_counts(b1=50, b2=50))[::-1], ["b1", "b2"]).passed


@given(st.lists(st.integers(5, 300), min_size=2, max_size=6))
def test_chi2_p_is_a_probability_and_one_only_when_even(counts):
    per = {f"b{i}": n for i, n in enumerate(counts)}
    v = balance_chi2(make_rpcs(_counts(**per)), list(per), min_expected=0)
    assert 0.0 <= v.figure <= 1.0
    # Exactly 1 for an even split (statistic 0); a near-even one (e.g. 299 vs 300) comes
    # within 1e-6 of it, so an approximate comparison would call it even.
    assert (v.figure == 1.0) == (len(set(counts)) == 1)


def test_share_is_the_targets_fraction_of_an_even_share():
    # The counts of the campaign's false red: uneven by connection churn, a fair share all
    # the same — and a backend that got a trickle, which is not.
    rows = (
        [(i, "b1") for i in range(401)]
        + [(i, "b2") for i in range(405)]
        + [(i, "b3") for i in range(407)]
        + [(i, "b4") for i in range(294)]
    )
    h = make_history(rows)
    assert not balance_chi2(h, ["b1", "b2", "b3", "b4"])
    v = share(h, "b4", ["b1", "b2", "b3", "b4"], 0.5)
    assert v.passed and v.figure == pytest.approx(294 / (1507 / 4))
    assert v.comparison == ">=" and v.bound == 0.5 and "b4 got 294" in v.explanation
    trickle = make_history(
        [(i, "b1") for i in range(500)]
        + [(i, "b2") for i in range(500)]
        + [(i, "b3") for i in range(50)]
    )
    v = share(trickle, "b3", ["b1", "b2", "b3"], 0.5)
    assert not v and "under the required 0.5" in v.explanation


def test_share_with_no_rpc_fails_and_failed_rpcs_do_not_count():
    assert not share(make_history([]), "b1", ["b1", "b2"], 0.5)
    h = make_history([(0, "b1", "UNAVAILABLE"), (1, "b1", "UNAVAILABLE"), (2, "b2")])
    v = share(h, "b1", ["b1", "b2"], 0.5)
    assert not v and v.figure == 0.0


# -- exact, with connection events (the HTTP/2 points' GOAWAYs and closes) ---------------


def goaway(target: str, at_ms: float, conn: int = 1, by: str = "server") -> tuple:
    """A connection event note as the points' events arrive in a history."""
    detail = {"conn": conn, "by": by, "code": "NO_ERROR", "last_stream_id": 7}
    return ("http2:goaway_seen", target, at_ms, at_ms, detail)


def aged_out(before: list[str], after: list[str], gone: str) -> list[tuple]:
    """Rows of a client whose picker loses `gone` at 30 ms (its connection aged out), serves
    the two others meanwhile, and rotates in another order once it is back (from 36 ms)."""
    rows = round_robin(before, 10)  # 0..29 ms
    rest = [b for b in before if b != gone]
    rows += [(30.0 + i, rest[i % 2]) for i in range(6)]  # 30..35 ms: without it
    rows += round_robin(after, 10, start_ms=36.0)
    return rows


def test_a_rotation_restarted_by_a_goaway_is_judged_in_stretches():
    rows = aged_out(B3, ["b3", "b1", "b2"], gone="b2")
    without = balance_exact(make_history(rows), B3)
    assert not without.passed  # the picker rebuilt: a steady-connection check fails it
    v = balance_exact(make_history(rows, [goaway("b2", 29.5)]), B3, quiet_ms=0)
    assert v.passed, v.explanation
    # Left out: round 10 (27..29 ms: the RPC at 29 ms was in flight at the GOAWAY, so its
    # round is incomplete), the six without b2, and the two of the new order before b2
    # serves again at 38 ms; the next stretch starts there (b2 b3 b1: 9 rounds and one
    # RPC in that order).
    assert v.figure == 9 + 9 and v.data["left_out_rpcs"] == 3 + 6 + 2
    assert v.data["connection_events"] == 1
    assert "11 OK RPC(s) were left out" in v.explanation
    assert "GOAWAY NO_ERROR by the server on b2" in v.explanation


def test_a_goaway_does_not_excuse_a_broken_rotation_after_the_backend_is_back():
    rows = aged_out(B3, ["b3", "b1", "b2"], gone="b2")
    swap_backends(rows, 50, 51)  # well after b2 is back: a real break
    v = balance_exact(make_history(rows, [goaway("b2", 29.5)]), B3, quiet_ms=0)
    assert not v.passed
    assert "stretch 2 of 2 between connection events" in v.explanation


def test_a_backend_not_back_within_the_settle_time_is_judged():
    rows = round_robin(B3, 10)
    rows += [(30.0 + i * 10, ["b1", "b3"][i % 2]) for i in range(60)]  # b2 never returns
    v = balance_exact(make_history(rows, [goaway("b2", 29.5)]), B3, settle_ms=100, quiet_ms=0)
    assert not v.passed  # 100 ms after the GOAWAY the rounds lack b2
    assert "missing b2" in v.explanation


def test_the_close_of_the_old_connection_opens_a_window_of_its_own():
    # The server closes the aged-out connection after its grace (here at 50 ms, while the
    # client already rotates over the new one); the health-check stream that lived on it
    # is restarted, and the client's picker may change once more: the rotation restarts
    # at 60 ms, and the quiet time after the close (15 ms) leaves that out.
    rows = aged_out(B3, ["b3", "b1", "b2"], gone="b2")
    rows = rows[:60] + round_robin(["b1", "b2", "b3"], 5, start_ms=60.0)
    close = ("http2:close", "b2", 50.0, 50.0, {"conn": 1, "by": "server", "reason": "closed"})
    events = [goaway("b2", 29.5), close]
    assert not balance_exact(make_history(rows, events), B3, quiet_ms=0).passed
    v = balance_exact(make_history(rows, events), B3, quiet_ms=15)
    assert v.passed, v.explanation
    assert v.data["connection_events"] == 2


def test_pick_first_fails_between_connection_events_too():
    rows = [(float(i), "b1") for i in range(30)] + [(30.0 + i, "b1") for i in range(30)]
    v = balance_exact(make_history(rows, [goaway("b1", 29.5)]), B3, quiet_ms=0)
    assert not v.passed and "missing b2, b3" in v.explanation
