"""One record per scenario run, as the plugin writes it for the gate (--chaos-results FILE).

JSON lines, appended and flushed as each scenario ends (so a reader can follow a run):

    {"schema": 1, "nodeid": "scenarios/test_kill.py::test_x", "scenario": "test_kill::test_x",
     "family": "kill", "profile": {"name", "source", "sha256"}, "target": {"name", "source"},
     "client": {"name": "inprocess" | "python" | "go" | "node" | a driver's, "implementation":
                "grpcio" | "grpc-go" | "grpc-js" | ..., "version"} (the client under test),
     "outcome": "pass" | "fail" | "inconclusive" | "not_applicable" | "skipped" | "error",
     "reason": the decisive verdict's headline, the skip reason, or the error's first line,
     "decisive": the verdict that decided (the failed one), or null,
     "verdicts": [every verdict: name, outcome ("pass" | "fail" | "inconclusive" |
                  "not judged"), headline, figure, unit, bound, comparison, explanation,
                  advice, stall_ms, not_judged (what evidence was missing), shown (the
                  failure in words where no figure says it), data, span (the [start, end] ns
                  a time figure measures, history clock), culprits (the first few failing
                  items' [start, end] ns)],
     "property": the docstring's property, "bound": its "Bound:" paragraph,
     "attempts": runs of it (reruns after an inconclusive verdict), "duration_s",
     "started": / "ended": UTC wall clock (ISO 8601), "artifacts": path or null}

The schema number changes whenever a field changes meaning; readers refuse others.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import threading
import time
from pathlib import Path

from chaos.outcomes import NOT_APPLICABLE, Outcome
from chaos.run import settings

SCHEMA = 1
CULPRITS_KEPT = 5
_lock = threading.Lock()


def profile_digest(profile) -> str:
    """sha256 of the profile's data (canonical JSON): two runs with the same hash ran the
    same client settings, whatever the file was called."""
    data = json.dumps(profile.data(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def docstring_parts(function) -> tuple[str, str]:
    """(property, bound) paragraphs of a scenario's docstring ("Property: ...", "Bound: ...")."""
    text = inspect.getdoc(function) or ""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    prop = next(
        (p for p in paragraphs if p.startswith(("Property:", "Claim:"))),
        paragraphs[0] if paragraphs else "",
    )
    bound = next((p for p in paragraphs if p.startswith("Bound:")), "")
    return prop, bound


def outcome_of(reports) -> tuple[Outcome, str]:
    """The scenario's outcome and its one-line reason from its setup/call/teardown reports."""
    for report in reports:
        if getattr(report, "chaos_inconclusive", False):
            return Outcome.INCONCLUSIVE, report.chaos_reason
    for report in reports:
        if report.skipped:
            reason = getattr(report, "chaos_reason", "") or ""
            applies = not reason.startswith(NOT_APPLICABLE)
            return (Outcome.SKIPPED if applies else Outcome.NOT_APPLICABLE), reason
        if report.failed:
            text = _first_line(report)
            if report.when == "call" and text.startswith(("[profile", "ScenarioFailed")):
                return Outcome.FAIL, text
            return (Outcome.FAIL if report.when == "call" else Outcome.ERROR), text
    return Outcome.PASS, ""


def _first_line(report) -> str:
    message = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    for line in message.splitlines():
        line = line.strip()
        if line.startswith("E "):
            return line[1:].strip().removeprefix("chaos.outcomes.ScenarioFailed: ")
    return message.strip().splitlines()[-1] if message.strip() else ""


def client_of(run) -> dict:
    """The client under test: the driver as it described itself, or the in-process grpcio."""
    if run.state.client is not None:
        return dict(run.state.client)
    if run.client is not None:  # its driver has not started (yet): only its name is known
        return {"name": run.client.name, "implementation": None, "version": None}
    import grpc

    return {"name": "inprocess", "implementation": "grpcio", "version": grpc.__version__}


def record(item, reports, scenario, started_wall: float, duration_s: float, attempts: int) -> dict:
    run = settings.of(item.config)
    profile, target = run.profile, run.target
    verdicts = (
        []
        if scenario is None
        else [
            {**v.to_dict(), "outcome": v.outcome, "headline": v.headline} for v in scenario.verdicts
        ]
    )
    for v in verdicts:  # the decisive instants, for plots; a long count keeps its first ones
        v["culprits"] = [list(c) for c in v["culprits"][:CULPRITS_KEPT]]
        v["span"] = None if v["span"] is None else list(v["span"])
    # The expectation that ended the scenario — not a figure recorded with check() (which
    # may fail without failing anything: e.g. a claim's expected failure).
    decisive = None
    if scenario is not None and scenario.decisive is not None:
        decisive = next(
            (
                v
                for v, raw in zip(verdicts, scenario.verdicts, strict=False)
                if raw is scenario.decisive
            ),
            None,
        )
    outcome, reason = outcome_of(reports)
    if decisive is not None and outcome in (Outcome.FAIL, Outcome.INCONCLUSIVE):
        reason = _headline(decisive)
    prop, bound = docstring_parts(getattr(item, "function", None))
    module = Path(str(item.fspath)).stem
    marks = {m.name for m in item.iter_markers()}
    family = next((m for m in run.families if m in marks), None)
    return {
        "schema": SCHEMA,
        "nodeid": item.nodeid,
        "scenario": f"{module}::{item.name}",
        "family": family,
        "profile": {
            "name": profile.name,
            "source": profile.source,
            "sha256": profile_digest(profile),
        },
        "target": None if target is None else {"name": target.name, "source": target.source},
        "client": client_of(run),
        "outcome": outcome,
        "reason": reason,
        "decisive": decisive,
        "verdicts": verdicts,
        "property": prop,
        "bound": bound,
        "attempts": attempts,
        "duration_s": round(duration_s, 3),
        "started": _iso(started_wall),
        "ended": _iso(started_wall + duration_s),
        "artifacts": None if scenario is None else str(scenario.artifacts),
    }


def _headline(verdict: dict) -> str:
    if verdict.get("headline"):  # the verdict's own (records before 2026-12 have none)
        return verdict["headline"]
    figure = "n/a" if verdict["figure"] is None else f"{verdict['figure']:.6g}"
    bound = (
        ""
        if verdict["bound"] is None
        else f" (bound {verdict['comparison']} {verdict['bound']:.6g} {verdict['unit']})"
    )
    return f"{verdict['outcome'].upper()} {verdict['name']}: {figure} {verdict['unit']}{bound}"


def _iso(seconds: float) -> str:
    whole = int(seconds)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        + f".{int((seconds - whole) * 1e6):06d}Z"
    )


def append(path: str | os.PathLike, entry: dict) -> None:
    """Append one record as one line (one write, O_APPEND: pytest-xdist workers may share
    the file) and flush it."""
    line = (json.dumps(entry, separators=(",", ":"), default=str) + "\n").encode()
    with _lock:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def read(path: str | os.PathLike) -> list[dict]:
    """Every record of a results file; refuses another schema with a message naming it."""
    entries = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("schema") != SCHEMA:
            raise ValueError(
                f"{path}:{number}: results schema {entry.get('schema')!r}, "
                f"this grpc-chaos reads schema {SCHEMA}"
            )
        entries.append(entry)
    return entries
