"""What a person reads and pastes: the failure, the replay command, the pytest scenario.

A shrunk failure is printed three ways: the schedule's text with the verdicts it failed;
the command that replays it N times; and a scenario module that runs it with the catalogue
(``run_scenario``: every oracle rule is one ``chaos.expect``)::

    from chaos.fuzz import Schedule, run_scenario

    SCHEDULE = Schedule.loads(\"\"\"{...}\"\"\")


    def test_fuzz_in_flight_succeeds_kill(chaos):
        \"\"\"Property: ... Bound: ...\"\"\"
        run_scenario(chaos, SCHEDULE)
"""

from __future__ import annotations

import re
import shlex

from chaos.fuzz.schedule import Schedule

SCENARIO = '''"""Found by grpc-chaos fuzz{origin}: {headline}"""

from chaos.fuzz import Schedule, run_scenario

SCHEDULE = Schedule.loads(r"""
{json}""")


def {name}(chaos):
    """Property: every rule of the fuzz oracle (docs/fuzzing.md) holds under this schedule:

{text}

    Bound: each rule's own requirement (chaos/verdicts/requirements.py): failover_ms, drain_ms,
    hang_detection_ms, ejection_ms, fail_fast_ms, recovery_ms; 0 failed RPCs that a client
    could have avoided. Found failing {under}: {headline}.
    """
    run_scenario(chaos, SCHEDULE)
'''


def test_name(schedule: Schedule, rule: str | None) -> str:
    """E.g. test_fuzz_in_flight_succeeds_kill (the rule, then the kinds of the faults)."""
    kinds = "_".join(dict.fromkeys(f.kind for f in schedule.faults)) or "no_fault"
    name = f"test_fuzz_{rule or 'schedule'}_{kinds}"
    return re.sub(r"[^A-Za-z0-9_]", "_", name)[:90]


def scenario(schedule: Schedule, rule: str | None, headline: str) -> str:
    """A ready-to-paste pytest scenario module for ``schedule``."""
    found = schedule.found
    profile = found.get("profile")
    origin = f" under {profile}" if profile else ""
    if found.get("seed") is not None:
        origin += f" (seed {found['seed']})"
    text = "\n".join("        " + line for line in schedule.text().splitlines())
    return SCENARIO.format(
        origin=origin,
        headline=headline,
        json=schedule.dumps(),
        name=test_name(schedule, rule),
        text=text,
        under=f"under {profile}" if profile else "",
    )


# How the fuzzer is started. TODO(gate hook): "grpc-chaos fuzz" once chaos/__main__.py
# dispatches the fuzz subcommand to chaos.fuzz.cli.main.
PROGRAM = ("python", "-m", "chaos.fuzz")


def replay_command(
    path, times: int = 10, profile: str | None = None, extra: list[str] | None = None
) -> str:
    """The command that replays a saved schedule ``times`` times."""
    argv = [*PROGRAM, "--replay", str(path), "--times", str(times)]
    if profile:
        argv += ["--profile", profile]
    return shlex.join(argv + list(extra or []))


def failure(schedule: Schedule, run, title: str) -> str:
    """The schedule, who #1, #2... were, and each failed verdict in full."""
    lines = [title, _indent(schedule.text(), 2), f"  ranks in that run: {run.ranks_text()}"]
    for verdict in run.verdicts:
        if verdict.failed:
            lines.append(_indent(str(verdict), 2))
    return "\n".join(lines)


def _indent(text: str, by: int) -> str:
    return "\n".join(" " * by + line if line else "" for line in text.splitlines())
