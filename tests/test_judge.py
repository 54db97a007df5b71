"""A failed verdict becomes inconclusive only when a stall explains the miss: the runner's
own, or a CPU wait of a process the verdict depends on (a backend, the proxy)."""

from __future__ import annotations

import pytest

from chaos.checks import Verdict
from chaos.observe.stall import RUN_QUEUE, StallMonitor
from chaos.observe.starvation import Stalls, StarvationMonitor
from chaos.verdicts.judge import STALL_EXPLAINS_MS, judge

MS = 1_000_000


def _monitor(*stalls: tuple[int, int]) -> StallMonitor:
    monitor = StallMonitor()
    for start, end in stalls:
        monitor.record(start * MS, end * MS, "test")
    return monitor


def _time(figure: float, bound: float = 100, span=(0, 1000)) -> Verdict:
    return Verdict(
        "failover_time", figure <= bound, figure, "ms", bound, "", span=(span[0] * MS, span[1] * MS)
    )


def test_a_pass_is_never_touched():
    assert judge(_time(50), _monitor((0, 900))) == _time(50)


def test_a_time_miss_within_the_stall_in_its_span_is_inconclusive():
    judged = judge(_time(150), _monitor((100, 160)))  # missed by 50 ms, stalled 60 ms
    assert judged.inconclusive and not judged.passed and judged.stall_ms == 60
    assert judged.outcome == "inconclusive"
    assert judged.headline == (
        "INCONCLUSIVE failover_time: 150 ms (bound <= 100 ms) — runner stalled 60 ms"
    )


@pytest.mark.parametrize(
    "stalls",
    [
        [(100, 140)],  # stalled 40 ms: less than the 50 ms miss
        [(1200, 1500)],  # outside the span
        [],
    ],
)
def test_a_time_miss_the_stall_cannot_explain_stays_a_failure(stalls):
    judged = judge(_time(150), _monitor(*stalls))
    assert not judged.inconclusive and judged.outcome == "fail"


def test_one_stall_seen_twice_or_partly_outside_the_span_is_not_counted_twice():
    # Missed by 100 ms. The ticker and the load loop both saw the same 60 ms stall: 60 ms,
    # not 120, so the miss stays a failure; so does a 300 ms stall 240 ms of which came
    # before the span.
    assert judge(_time(200), _monitor((100, 160), (100, 160))).outcome == "fail"
    assert judge(_time(200, span=(240, 1000)), _monitor((0, 300))).outcome == "fail"


def test_floors_and_figures_without_an_interval_are_never_inconclusive():
    floor = Verdict("latency", False, 150.0, "ms", 200, "", ">=", span=None)
    assert not judge(floor, _monitor((0, 10_000))).inconclusive
    plain = Verdict("balance_chi2", False, 0.0001, "p", 0.001, "", ">=")
    assert not judge(plain, _monitor((0, 10_000))).inconclusive


def _count(*culprits: tuple[int, int]) -> Verdict:
    return Verdict(
        "errors",
        False,
        len(culprits),
        "rpcs",
        0,
        "",
        culprits=tuple((s * MS, e * MS) for s, e in culprits),
    )


def test_errors_each_lived_through_a_long_stall_are_inconclusive():
    long = STALL_EXPLAINS_MS + 50
    judged = judge(_count((0, 300), (100, 350)), _monitor((50, 50 + long)))
    assert judged.inconclusive and judged.stall_ms == long


def test_one_error_without_its_stall_keeps_the_verdict_a_failure():
    long = STALL_EXPLAINS_MS + 50
    assert not judge(_count((0, 300), (2000, 2300)), _monitor((50, 50 + long))).inconclusive


def test_a_long_rpc_is_not_explained_by_a_short_stall_inside_it():
    # A 3 s DEADLINE_EXCEEDED is not explained by a quarter second of stall, nor by many
    # short ones that add up.
    many = [(t, t + 40) for t in range(0, 3000, 100)]
    assert not judge(_count((0, 3000)), _monitor((1000, 1250))).inconclusive
    assert not judge(_count((0, 3000)), _monitor(*many)).inconclusive
    assert judge(_count((0, 3000)), _monitor((500, 2100))).inconclusive


def test_without_a_monitor_nothing_is_inconclusive():
    assert not judge(_time(150), None).inconclusive


# --------------------------------------------------------------- CPU waits of the fleet
# The starvation monitor (chaos/observe/starvation.py) keeps a process's wait for a CPU as a Stall
# of source RUN_QUEUE named after the process; chaos.observe.starvation.Stalls joins them to the
# runner's own stalls. tests/test_starvation.py measures them on real starved processes.

B2 = "backend b2 (pid 4711)"
PROXY = "toxiproxy (pid 4700)"


def _fleet(runner=(), **waits: list[tuple[int, int]]) -> Stalls:
    """The runner's stalls and the recorded CPU waits of named processes (keyword: who)."""
    stalls = Stalls(_monitor(*runner), StarvationMonitor())
    for who, intervals in waits.items():
        for start, end in intervals:
            stalls.starvation.record(start * MS, end * MS, RUN_QUEUE, who)
    return stalls


def test_a_time_miss_only_a_backends_cpu_wait_explains_is_inconclusive_and_names_it():
    # The runner ran on time; b2 waited 60 ms for a CPU inside the span: a 50 ms miss is
    # not known to be the client's.
    judged = judge(_time(150), _fleet(**{B2: [(100, 160)]}))
    assert judged.inconclusive and judged.stall_ms == 60
    assert judged.headline == (
        "INCONCLUSIVE failover_time: 150 ms (bound <= 100 ms) — "
        "backend b2 (pid 4711) waited 60 ms for a CPU"
    )
    assert judged.data["stall_cause"] == "backend b2 (pid 4711) waited 60 ms for a CPU"


def test_waits_of_several_processes_are_named_with_their_union():
    # b2 waited 40 ms, the proxy 30 ms of which 10 overlap b2's: 60 ms in all, enough for
    # a 55 ms miss; each named with its own share, the largest first.
    judged = judge(
        _time(155), _fleet(runner=[(300, 305)], **{B2: [(100, 140)], PROXY: [(130, 160)]})
    )
    assert judged.inconclusive and judged.stall_ms == 65
    assert judged.data["stall_cause"] == (
        "backend b2 (pid 4711) waited 40 ms for a CPU, toxiproxy (pid 4700) waited 30 ms "
        "for a CPU, runner stalled 5 ms (65 ms in all)"
    )


def test_waits_of_processes_at_the_same_instants_count_once():
    # Three processes each waited the same 40 ms: the RPCs lost 40 ms, not 120. A 50 ms
    # miss stays a red.
    same = [(100, 140)]
    judged = judge(_time(150), _fleet(**{B2: same, PROXY: same, "runner (client, DNS)": same}))
    assert judged.outcome == "fail"


def test_cpu_waits_outside_the_span_or_too_short_leave_the_red():
    assert judge(_time(150), _fleet(**{B2: [(1200, 1300)]})).outcome == "fail"
    assert judge(_time(150), _fleet(**{B2: [(100, 130)]})).outcome == "fail"


def test_errors_each_through_a_long_cpu_wait_of_a_backend_are_inconclusive():
    long = STALL_EXPLAINS_MS + 50
    stalls = _fleet(**{B2: [(50, 50 + long)], PROXY: [(900, 900 + long + 20)]})
    judged = judge(_count((0, 300), (100, 350)), stalls)
    assert judged.inconclusive and judged.stall_ms == long
    assert judged.headline.endswith(
        f"— backend b2 (pid 4711) waited {long:.0f} ms for a CPU (the least of the stalls "
        f"each of the 2 failures lived through)"
    )
    # One failure that lived through no long wait keeps the red.
    assert judge(_count((0, 300), (2000, 2300)), stalls).outcome == "fail"


def test_errors_are_not_explained_by_many_short_cpu_waits():
    # Scheduling noise: a 40 ms wait every 100 ms adds up, but no timer of the client
    # fires for it. A 3 s DEADLINE_EXCEEDED stays a red.
    many = [(t, t + 40) for t in range(0, 3000, 100)]
    assert judge(_count((0, 3000)), _fleet(**{B2: many, PROXY: many})).outcome == "fail"


def test_a_pass_and_a_floor_are_never_touched_by_cpu_waits():
    starved = _fleet(**{B2: [(0, 10_000)]})
    assert judge(_time(50), starved) == _time(50)
    floor = Verdict("latency", False, 150.0, "ms", 200, "", ">=", span=(0, 10_000 * MS))
    assert not judge(floor, starved).inconclusive


def _late(*items: tuple[int, int, float]) -> Verdict:
    """RPCs that each started ``excess`` ms past a detection bound counted from ``from``."""
    return Verdict(
        "routed_away",
        False,
        len(items),
        "rpcs",
        0,
        "",
        culprits=tuple((s * MS, (a + 500) * MS) for s, a, _ in items),
        late=tuple((s * MS, a * MS, excess) for s, a, excess in items),
    )


def test_rpcs_just_past_a_detection_bound_a_stall_explains_are_inconclusive():
    # The fuzz campaign's case: an RPC started 51 ms after a drain was in force, against a
    # 50 ms bound: a client stalled 1 ms or more in between may have learnt of it late.
    judged = judge(_late((0, 51, 1.0), (0, 52, 2.0)), _monitor((10, 14)))
    assert judged.inconclusive and judged.stall_ms == 4
    assert "runner stalled 4 ms" in judged.headline


def test_an_rpc_later_than_the_stalls_before_it_keeps_the_verdict_a_failure():
    # 4 ms of stall explain an RPC 2 ms late, not one 30 ms late; nor a stall after it.
    assert not judge(_late((0, 51, 1.0), (0, 80, 30.0)), _monitor((10, 14))).inconclusive
    assert not judge(_late((0, 51, 1.0)), _monitor((60, 200))).inconclusive
