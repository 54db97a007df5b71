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

import importlib

# Imported on first use (as chaos/__init__.py does): ``python -m chaos.fuzz`` must be able
# to set gRPC's log level before anything here imports grpc.
_EXPORTS = {
    "FaultSpec": "chaos.fuzz.schedule",
    "LoadSpec": "chaos.fuzz.schedule",
    "Schedule": "chaos.fuzz.schedule",
    "ScheduleError": "chaos.fuzz.schedule",
    "run_scenario": "chaos.fuzz.scenario",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'chaos.fuzz' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
