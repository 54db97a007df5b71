"""Fuzzing fault schedules: find the failing schedule nobody wrote, shrink it, replay it.

    kinds.py       the fault kinds a schedule may name: a chaos.faults fault each, its
                   parameter ladders, and what it does to a backend (the oracle's model)
    schedule.py    Schedule / LoadSpec / FaultSpec: data, JSON round trip, text, validation
    strategy.py    Hypothesis strategies that draw schedules and shrink toward simple ones
    load_shape.py  the load with idle gaps
    executor.py    one schedule on a running fleet: warm-up, faults at their offsets, tail,
                   reset; judged by the oracle
    model.py       from recorded faults: which backend could serve when
    oracle.py      the invariants (safety, liveness) as verdicts
    campaign.py    the search: budget, seed, example database, shrinking the first failure
    results.py     the run directory (as the gate's)
    render.py      the failure, the replay command, a ready-to-paste pytest scenario
    scenario.py    run_scenario(chaos, schedule): a schedule as a pytest scenario (the corpus)
    cli.py         python -m chaos.fuzz (grpc-chaos fuzz)

docs/fuzzing.md explains the oracle's rules with a worked example.
"""

from chaos.fuzz.schedule import FaultSpec, LoadSpec, Schedule, ScheduleError
from chaos.fuzz.scenario import run_scenario

__all__ = ["FaultSpec", "LoadSpec", "Schedule", "ScheduleError", "run_scenario"]
