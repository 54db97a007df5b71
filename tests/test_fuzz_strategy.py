"""The schedule strategy: every drawn schedule can run, every kind is drawn, and Hypothesis
shrinks toward the simplest schedule (cheap predicates through hypothesis.find: no fleet)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings

from chaos.fuzz import kinds
from chaos.fuzz.schedule import ALL, problems
from chaos.fuzz.strategy import AT_MS, FOR_MS, complexity, schedules

# derandomize: the same search every run. Hypothesis's shrinker can stop in a local minimum
# (a kill on #1 keeps a pause from moving to #1: two faults may not need one backend at
# once) depending on where the search started, so a random start made these tests fail
# one run in several; with a fixed one, a failure means the strategy's order changed.
SEARCH = settings(
    max_examples=5000,
    database=None,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


DRAWN: set[str] = set()


@settings(max_examples=400, database=None, deadline=None)
@given(schedules(3))
def test_every_drawn_schedule_is_valid_and_round_trips(schedule):
    assert problems(schedule) == []
    assert len(schedule.faults) <= 3
    assert type(schedule).loads(schedule.dumps()) == schedule
    DRAWN.update(f.kind for f in schedule.faults)


def test_every_kind_is_drawn():
    # 400 schedules of up to 3 faults: each of 20 kinds is drawn ~20 times on average.
    test_every_drawn_schedule_is_valid_and_round_trips()
    assert set(kinds.REGISTRY) == DRAWN


def simplest(fault) -> bool:
    kind = kinds.get(fault.kind)
    return (
        fault.target == (ALL if kind.fleet_wide else 1)
        and fault.at_ms == AT_MS[0]
        and fault.for_ms == (0 if kind.instant else FOR_MS[0])
        and fault.params == kind.defaults()
    )


def short(fault) -> bool:
    return fault.at_ms == AT_MS[0] and fault.for_ms in (0, FOR_MS[0])


@pytest.mark.parametrize(
    "name",
    [next(k.name for k in kinds.REGISTRY.values() if k.group == g) for g in kinds.GROUPS]
    + ["dns_outage", "app_error", "slicer"],
)
def test_a_kind_of_each_group_shrinks_to_its_simplest_form(name):
    found = find(schedules(3), lambda s: any(f.kind == name for f in s.faults), settings=SEARCH)
    wanted = [f for f in found.faults if f.kind == name]
    assert len(wanted) == 1 and simplest(wanted[0]), found
    # Hypothesis's shrinker may leave a fault it could have deleted (the campaign drops
    # such faults itself afterwards: campaign.simpler), but shrunk to the shortest.
    assert len(found.faults) <= 2 and all(short(f) for f in found.faults), found
    assert found.load.concurrency == 16 and not found.load.idle


def test_any_break_shrinks_to_a_kill():
    found = find(
        schedules(3),
        lambda s: any(kinds.get(f.kind).group == "break" for f in s.faults),
        settings=SEARCH,
    )
    assert [(f.kind, f.target, f.for_ms) for f in found.faults] == [("kill", 1, FOR_MS[0])]


def test_a_long_outage_of_every_backend_shrinks_to_one_fault_on_all_at_the_shortest_length():
    def whole_fleet_down_for_3_s(schedule):
        return any(
            f.target == ALL and kinds.get(f.kind).group == "break" and f.for_ms >= 3000
            for f in schedule.faults
        )

    found = find(schedules(3), whole_fleet_down_for_3_s, settings=SEARCH)
    outages = [(f.kind, f.target, f.for_ms) for f in found.faults if f.for_ms >= 3000]
    assert outages == [("kill", ALL, 4000)], found
    assert all(short(f) for f in found.faults if f.for_ms < 3000), found


def test_two_faults_that_must_overlap_shrink_to_two():
    def hang_and_drain_at_once(schedule):
        pauses = [f for f in schedule.faults if f.kind == "pause"]
        flips = [f for f in schedule.faults if f.kind == "health"]
        return any(
            p.target != h.target and p.at_ms < h.end_ms and h.at_ms < p.end_ms
            for p in pauses
            for h in flips
        )

    found = find(schedules(3), hang_and_drain_at_once, settings=SEARCH)
    kinds_found = [f.kind for f in found.faults]
    assert kinds_found.count("health") == 1 and kinds_found.count("pause") == 1, found
    assert len(found.faults) <= 3 and all(short(f) for f in found.faults), found


def test_low_rates_and_idle_gaps_are_drawn():
    found = find(
        schedules(3),
        lambda s: s.load.rate is not None and s.load.rate <= 5 and s.load.idle,
        settings=SEARCH,
    )
    assert found.load.rate == 5 and len(found.load.idle) == 1


def test_complexity_orders_fewer_faults_then_shorter_then_simpler():
    from chaos.fuzz.schedule import FaultSpec, LoadSpec, Schedule

    def schedule(*faults):
        return Schedule(3, LoadSpec(), tuple(faults))

    one_kill = schedule(FaultSpec(0, "kill", 1, FOR_MS[0]))
    long_kill = schedule(FaultSpec(0, "kill", 1, 4000))
    latency = schedule(FaultSpec(0, "latency", 1, FOR_MS[0], kinds.get("latency").defaults()))
    two = schedule(FaultSpec(0, "kill", 1, FOR_MS[0]), FaultSpec(0, "kill", 2, FOR_MS[0]))
    assert complexity(one_kill) < complexity(long_kill) < complexity(two)
    assert complexity(one_kill) < complexity(latency) < complexity(two)


def test_the_campaigns_polish_offers_each_fault_dropped_biggest_first():
    from chaos.fuzz.campaign import simpler
    from chaos.fuzz.schedule import FaultSpec, LoadSpec, Schedule

    kill = FaultSpec(0, "kill", 1, 100)
    pause = FaultSpec(0, "pause", "all", 3000)
    schedule = Schedule(3, LoadSpec(None, 20.0, 3000, ((500, 1000),)), (kill, pause))
    offered = list(simpler(schedule))
    assert [s.faults for s in offered[:2]] == [(kill,), (pause,)]
    assert offered[2].faults == (kill, FaultSpec(0, "pause", 1, 3000))
    assert offered[3].load.idle == () and offered[4].load == LoadSpec(idle=((500, 1000),))
    assert all(complexity(s) < complexity(schedule) for s in offered)
