"""A schedule as a pytest scenario: the corpus of failing schedules runs with the catalogue.

``run_scenario(chaos, schedule)`` runs one schedule with the scenario's fleet, profile,
requirements and stall monitor, records it in the scenario's history (so its artifacts
hold the run), and expects every oracle rule: a rule that does not hold fails the scenario
with its verdict (chaos.expect: judged against the runner's stalls, with the settings that
answer it). A rule the run gave too little evidence is *not judged*: recorded, and — for
the rule the schedule was saved for — the scenario is rerun like an inconclusive one.
scenarios/test_fuzz_corpus.py runs every saved schedule this way.
"""

from __future__ import annotations

from chaos.fuzz import kinds
from chaos.fuzz.executor import Executor
from chaos.fuzz.schedule import Schedule
from chaos.outcomes import NotApplicable

# What the settings that answer each rule are called in chaos/verdicts/advice.py's catalogue.
ANSWERS = {
    "in_flight_succeeds": ("retryPolicy", "grpc.keepalive_time_ms", "grpc.http2.ping_timeout_ms"),
    "rpc_succeeds": ("retryPolicy", "outlierDetection", "healthCheckConfig"),
    "routed_away": (
        "healthCheckConfig",
        "grpc.keepalive_time_ms",
        "grpc.http2.ping_timeout_ms",
        "outlierDetection",
    ),
    "fails_fast": ("waitForReady", "retryPolicy"),
    "recovers": ("grpc.initial_reconnect_backoff_ms", "grpc.max_reconnect_backoff_ms"),
    "rejoins": (
        "grpc.initial_reconnect_backoff_ms",
        "grpc.max_reconnect_backoff_ms",
        "outlierDetection",
    ),
}


def run_scenario(chaos, schedule: Schedule) -> None:
    """Run ``schedule`` in the scenario ``chaos`` and expect every rule of the oracle."""
    size = len(chaos.fleet.ids)
    if schedule.fleet_size > size:
        raise NotApplicable(
            f"the schedule is written for {schedule.fleet_size} backends and "
            f"the fleet has {size}: run with --chaos-fleet-size "
            f"{schedule.fleet_size}"
        )
    offered = kinds.capabilities(chaos.fleet)
    for fault in schedule.faults:
        missing = kinds.get(fault.kind).needs - offered
        if missing:
            raise NotApplicable(
                f"the schedule's {fault.kind} needs {', '.join(sorted(missing))}"
                f", which this fleet does not offer"
            )
    spreads = chaos.shape.spreads if chaos.shape is not None else True
    executor = Executor(
        chaos.fleet,
        chaos.profile,
        requirements=chaos.requirements,
        stalls=chaos.stalls,
        spreads=spreads,
        target=chaos.target,
        client=chaos.client,
    )
    run = executor.run(schedule, history=chaos.history)
    if run.problems:
        raise RuntimeError("the schedule could not run: " + "; ".join(run.problems))
    saved_for = schedule.found.get("rule")
    for verdict in run.verdicts:
        if verdict.passed or (verdict.not_judged and verdict.name != saved_for):
            # A rule this run gave too little evidence is shown in the artifacts; only the
            # rule the schedule was saved for must be judged (else the run is rerun).
            chaos.check(verdict)
    for verdict in run.verdicts:
        if not verdict.passed and not verdict.not_judged:
            chaos.expect(
                verdict,
                answers=ANSWERS.get(verdict.name, ()),
                requirement=_requirement(verdict.name),
            )
    for verdict in run.verdicts:
        if verdict.not_judged and verdict.name == saved_for:
            chaos.expect(verdict)


def _requirement(rule: str) -> str | None:
    return {"fails_fast": "fail_fast_ms", "recovers": "recovery_ms", "rejoins": "recovery_ms"}.get(
        rule
    )
