"""The run directory of a fuzz campaign (laid out by chaos/rundir.py, as the gate's).

chaos-fuzz/
  latest -> 20261130T193000Z-1a2b3c
  20261130T193000Z-1a2b3c/
    fuzz.json        what ran (profile + sha256, target, requirements, seed, budget,
                     kinds, load average) and what came of it: counts, examples per
                     minute, time to the first failure and to the smallest schedule,
                     the rule, both schedules, the failed verdicts (schema: FUZZ_SCHEMA)
    minimal.json     the smallest failing schedule (replay it: grpc-chaos fuzz --replay)
    first.json       the first failing schedule, as found
    scenario.py      the smallest one as a ready-to-paste pytest scenario
    summary.md       the same for a person: verdicts, schedule, replay command
    progress.log     every progress line
    artifacts/{first,minimal}/  history.jsonl (monotonic and wall-clock times),
                                verdicts.json, schedule.json of those runs
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from chaos.fuzz import render
from chaos.fuzz.campaign import Finding, Result
from chaos.history import clock_anchor

FUZZ_SCHEMA = 1


def write_run(directory: Path, meta: dict, result: Result) -> dict:
    """Write everything a campaign found into ``directory``; returns the fuzz.json data."""
    doc = {"schema": FUZZ_SCHEMA, "run": meta, "result": _result(result)}
    for name, finding in (("first", result.first), ("minimal", result.minimal)):
        if finding is None:
            continue
        finding.schedule.save(directory / f"{name}.json")
        write_artifacts(directory / "artifacts" / name, finding)
    if result.minimal is not None:
        headline = _headline(result.minimal)
        (directory / "scenario.py").write_text(
            render.scenario(result.minimal.schedule, result.rule, headline)
        )
    (directory / "fuzz.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (directory / "summary.md").write_text(summary(doc, result, directory))
    return doc


def write_artifacts(directory: Path, finding: Finding) -> None:
    """The run of a finding: its history, verdicts and schedule."""
    directory.mkdir(parents=True, exist_ok=True)
    finding.run.history.to_jsonl(directory / "history.jsonl", clock_anchor())
    (directory / "verdicts.json").write_text(
        json.dumps([v.to_dict() for v in finding.run.verdicts], indent=2)
    )
    finding.schedule.save(directory / "schedule.json")


def _headline(finding: Finding) -> str:
    failed = [v.headline for v in finding.run.verdicts if v.failed]
    return "; ".join(failed) or "failed"


def _finding(finding: Finding | None) -> dict | None:
    if finding is None:
        return None
    return {
        "at_s": round(finding.at_s, 3),
        "schedule": finding.schedule.to_json(),
        "summary": finding.schedule.summary(),
        "ranks": finding.run.ranks,
        "run_s": round(finding.run.seconds, 3),
        "failed": [v.to_dict() for v in finding.run.verdicts if v.failed],
        "not_judged": finding.run.not_judged,
    }


def _result(r: Result) -> dict:
    return {
        "stopped": r.stopped,
        "seconds": round(r.seconds, 3),
        "seed": r.seed,
        "examples": r.examples,
        "passed": r.passed,
        "failures": r.failures,
        "inconclusive": r.inconclusive,
        "errors": r.errors,
        "shrink_steps": r.shrink_steps,
        "not_judged": dict(r.not_judged.most_common()),
        "examples_per_minute": round(r.examples_per_minute, 2),
        "run_s_median": _median(r.run_seconds),
        "rule": r.rule,
        "first_failure_s": None if r.first is None else round(r.first.at_s, 3),
        "minimal_s": None if r.minimal is None else round(r.minimal.at_s, 3),
        "first": _finding(r.first),
        "minimal": _finding(r.minimal),
        "also": {rule: f.schedule.summary() for rule, f in r.also.items()},
        "last_error": r.last_error,
    }


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 3)


def summary(doc: dict, result: Result, directory: Path) -> str:
    meta, res = doc["run"], doc["result"]
    lines = [
        f"# grpc-chaos fuzz: {verdict(result)}",
        "",
        f"- profile: {meta['profile']['name']} ({meta['profile']['source']})",
        f"- budget {meta['budget_s']:g} s, seed {result.seed}, stopped: {result.stopped}",
        f"- examples {res['examples']} ({res['examples_per_minute']} a minute), "
        f"failures {res['failures']}, shrink steps {res['shrink_steps']}, inconclusive "
        f"{res['inconclusive']}, errors {res['errors']}",
        f"- rules not judged (too little evidence in a run's history; neither passed "
        f"nor failed): {not_judged_text(result)}",
        f"- load average {meta['host']['load_average']} at the start, "
        f"{meta.get('load_average_end')} at the end",
    ]
    if result.minimal is not None:
        lines += [
            f"- first failure after {res['first_failure_s']} s, the smallest schedule "
            f"after {res['minimal_s']} s",
            "",
            "## The smallest failing schedule",
            "",
            "```",
            render.failure(result.minimal.schedule, result.minimal.run, f"fails {result.rule}"),
            "```",
            "",
            "Replay it:",
            "",
            "```",
            render.replay_command(
                directory / "minimal.json", 10, meta["profile"]["source"], meta.get("replay_extra")
            ),
            "```",
            "",
            "As a scenario: `scenario.py` beside this file.",
        ]
    if result.also:
        lines += ["", "Also seen failing (other rules, not shrunk):"]
        lines += [f"- {rule}: {f.schedule.summary()}" for rule, f in result.also.items()]
    return "\n".join(lines) + "\n"


def not_judged_text(result: Result) -> str:
    """E.g. "rejoins 3, fails_fast 1 (in 4 runs)", or "none"."""
    counts = result.not_judged.most_common()
    return ", ".join(f"{rule} {n}" for rule, n in counts) or "none"


def verdict(result: Result) -> str:
    if result.minimal is not None:
        return f"FAIL — {result.rule}, smallest schedule: {result.minimal.schedule.summary()}"
    if result.stopped == "interrupted":
        return "INTERRUPTED — no violation found before it was stopped"
    if result.stopped == "broken":
        return f"ERROR — {result.last_error}"
    if result.stopped == "preflight":
        return f"FAIL before any fault — the client cannot use a healthy fleet: {result.last_error}"
    return "PASS — no violation found within the budget"


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
