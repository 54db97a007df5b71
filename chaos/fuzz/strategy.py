"""Hypothesis strategies that draw fault schedules, shaped so that a failure shrinks to the
smallest schedule that still shows it.

    schedules(size, kinds)
      load    closed loop (16, 8, 4, 1 in flight) or open loop (300, 100, 20, 5 RPC/s),
              3 s deadline, at most one idle gap
      faults  a list (0..max_faults; overlaps allowed) of
              group  -> kind      break, hang, drain, app, weather, trust (kinds.py)
              target              #1..#N (ranks in the warm-up) or "all"
              at                  AT_MS ladder
              for                 FOR_MS ladder (0 for an instant kind)
              params              each from its kind's ladder

Every choice is drawn from a ladder whose *first* value is the simplest, so Hypothesis's
shrinker — which deletes list elements and lowers each choice — moves toward fewer faults,
a break before anything else (and a kill first of all), the busiest backend, the start of
the schedule, the shortest duration, the simplest parameters, 16 RPCs in flight and no
idle gap. Ladders keep values apart: a shrunk duration is one that failed, not a value
picked at the edge where failing is a coin toss.

Faults that clash with earlier ones (the same backend's process needed by two, latency
summing past half the deadline: schedule.problems) are dropped, so every drawn schedule
can run.
"""

from __future__ import annotations

from hypothesis import strategies as st

from chaos.fuzz import kinds as kinds_module
from chaos.fuzz.kinds import Kind
from chaos.fuzz.schedule import ALL, FaultSpec, LoadSpec, Schedule, problems

# Offsets from the schedule's start (the client warm). 0 strikes at once; the rest spread
# faults over ~1 s so that they overlap or follow each other.
AT_MS = (0, 100, 200, 300, 500, 800, 1200)
# Durations: mostly short (examples stay fast: ~20 a minute is the goal), and one long
# enough for what only shows late: a hang past the 2.5 s detection bound and past the 3 s
# deadline, a whole-fleet outage past failover_ms + fail_fast_ms. None equals the deadline:
# a hang as long as it leaves an RPC stuck on it racing its own deadline (a coin toss).
FOR_MS = (100, 200, 500, 1000, 2000, 4000)
CONCURRENCY = (16, 8, 4, 1)
# Open-loop rates: high enough to keep every backend busy, down to a client that sends an
# RPC every 200 ms (its connections idle in between: only keepalive sees a hang then).
RATES = (300, 100, 20, 5)
# The RPC deadline must outlast hang_detection_ms (2.5 s by default) so that an RPC stuck on
# a hung backend can be replayed (scenarios/test_hang.py uses 3 s for the same reason).
DEADLINE_MS = 3000
IDLE_AT_MS = (500, 200, 1000)
IDLE_FOR_MS = (1000, 2500, 4000)
MAX_FAULTS = 3


def load_specs() -> st.SearchStrategy[LoadSpec]:
    closed = st.sampled_from(CONCURRENCY).map(lambda n: (n, None))
    opened = st.sampled_from(RATES).map(lambda r: (None, float(r)))
    gaps = st.lists(
        st.tuples(st.sampled_from(IDLE_AT_MS), st.sampled_from(IDLE_FOR_MS)), max_size=1
    )
    return st.builds(
        lambda shape, idle: LoadSpec(shape[0], shape[1], DEADLINE_MS, tuple(idle)),
        st.one_of(closed, opened),
        gaps,
    )


@st.composite
def fault_specs(draw, kinds: tuple[Kind, ...], size: int) -> FaultSpec:
    groups = tuple(dict.fromkeys(k.group for k in kinds))
    group = draw(st.sampled_from(groups))
    kind = draw(st.sampled_from(tuple(k for k in kinds if k.group == group)))
    target = ALL if kind.fleet_wide else draw(st.sampled_from((*range(1, size + 1), ALL)))
    at = draw(st.sampled_from(AT_MS))
    duration = 0 if kind.instant else draw(st.sampled_from(FOR_MS))
    params = {p.name: draw(st.sampled_from(p.values)) for p in kind.params}
    return FaultSpec(at, kind.name, target, duration, params)


@st.composite
def schedules(
    draw, size: int = 3, kinds: tuple[Kind, ...] | None = None, max_faults: int = MAX_FAULTS
) -> Schedule:
    """Schedules over a fleet of ``size`` with faults of ``kinds`` (default: every kind)."""
    kinds = tuple(kinds_module.REGISTRY.values()) if kinds is None else tuple(kinds)
    if not kinds:
        raise ValueError("no fault kind to draw from")
    load = draw(load_specs())
    faults = draw(st.lists(fault_specs(kinds, size), max_size=max_faults))
    drawn = Schedule(size, load, tuple(faults))
    dropped = {index for index, _ in problems(drawn) if index is not None}
    return Schedule(size, load, tuple(f for i, f in enumerate(faults) if i not in dropped))


def complexity(schedule: Schedule) -> tuple:
    """How complicated a schedule is, the order a person reads "smaller" in: fewer faults
    (a fault on every backend counts as that many), shorter durations, simpler kinds and
    parameters, earlier offsets, the simplest load."""
    order = list(kinds_module.REGISTRY)
    faults = schedule.faults
    weight = sum(schedule.fleet_size if f.target == ALL else 1 for f in faults)
    params = sum(
        next(i for i, v in enumerate(p.values) if v == f.params.get(p.name))
        for f in faults
        for p in kinds_module.get(f.kind).params
    )
    load = schedule.load
    shape = (
        (CONCURRENCY.index(load.concurrency) if load.concurrency in CONCURRENCY else 9)
        if load.rate is None
        else 10 + (RATES.index(load.rate) if load.rate in RATES else 9)
    )
    return (
        weight,
        sum(f.for_ms for f in faults),
        sum(order.index(f.kind) for f in faults),
        params,
        sum(f.at_ms for f in faults),
        len(load.idle),
        shape,
    )
