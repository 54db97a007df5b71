"""Pass, fail or inconclusive: a failed verdict that a stall of the machine explains.

A check measures the system under test from the runner's point of view; if the runner, or
a process the RPCs go through, could not run for a while, what it measured in that while
includes that absence. So a failed verdict is looked at once more, against the stalls
measured (the runner's own lateness, chaos/observe/stall.py, and the time each process a verdict
depends on — the fleet's backends, the proxy, the runner with its client and DNS server —
waited for a CPU, chaos/observe/starvation.py), before it becomes a red::

    time bound (figure <= bound, e.g. failover 1016 ms <= 1000 ms):
        inconclusive when something was stalled at least (figure - bound) in total
        within the span the figure measures (fault in force -> decisive instant), each
        instant once however many processes were stalled in it;
    count (errors, RPCs sent where they should not go):
        inconclusive when EVERY culprit (each failed RPC's lifetime, each misplaced
        RPC's delay) lived through one stall of at least STALL_EXPLAINS_MS and of at
        least half the culprit's length (a 3 s DEADLINE_EXCEEDED is not explained by a
        quarter second of stall; a connection torn down by a ping timeout is);
    floors (latency at least ...), p-values, figures without a span or culprits:
        never inconclusive — a stall cannot make a thing faster, and a check that gives
        no interval gives nothing a stall could have bent.

An inconclusive verdict says whose stall explains it, in its headline ("backend b2 (pid
4711) waited 60 ms for a CPU, runner stalled 30 ms (72 ms in all)"; data["stall_cause"]).
Inconclusive is never a pass: the scenario is rerun, and a run that stays inconclusive
says so and exits non-zero. The rule only ever turns a red into "not known"; a verdict
that passed is never touched.

Which processes count is what ``stalls`` watches: the plugin's monitor watches this
process's fleets, their proxy and the runner, never another pytest-xdist worker's fleet
(that is what starves ours, not what ours depends on). A verdict names no backend, so
every backend of the scenario's fleets counts for it.
"""

from __future__ import annotations

from dataclasses import replace

from chaos.checks.verdict import Verdict
from chaos.observe.stall import RUN_QUEUE, Stall, StallQueries, union_ns

# A count failure is put down to the machine only when every failing item lived through
# this much stall. The shortest client timer the shipped profiles set is the 500 ms
# keepalive ping timeout: a stall of ~half of it, added to a ping already under way and to
# the same stall on the backend's side of a starved machine, can make that timer fire
# (measured: docs/reliability.md, "Verdicts under load"). Ordinary scheduling noise on a loaded
# 2-core machine stays far below (stalls of 4-40 ms with four CPU burners).
STALL_EXPLAINS_MS = 200.0
# How many of the stalled processes a headline names (the largest shares first).
NAMED = 3


def judge(verdict: Verdict, stalls: StallQueries | None) -> Verdict:
    """The verdict, made inconclusive when a stall of the runner or a CPU wait of a process
    it depends on explains its failure (``stalls``: a chaos.observe.stall.StallMonitor or a
    chaos.observe.starvation.Stalls)."""
    if verdict.passed or stalls is None or verdict.not_judged:
        return verdict
    if (
        verdict.span is not None
        and verdict.comparison == "<="
        and verdict.figure is not None
        and verdict.bound is not None
    ):
        return _time_bound(verdict, stalls)
    if verdict.late:
        judged = _late(verdict, stalls)
        if judged.inconclusive:
            return judged
    if verdict.culprits:
        return _counts(verdict, stalls)
    return verdict


def _late(verdict: Verdict, stalls: StallQueries) -> Verdict:
    """A count of items that each came past a time bound: inconclusive only when every
    item's excess over the bound is covered by the stalls between the instant the bound
    counts from and the item (a client stalled that long may have learnt that late)."""
    least: tuple[float, int, int] | None = None
    for start, at, excess_ms in verdict.late:
        stalled = stalls.total_ms(start, at)
        if stalled <= 0 or stalled < excess_ms:
            return verdict
        if least is None or stalled < least[0]:
            least = (stalled, start, at)
    assert least is not None  # verdict.late is not empty
    stalled, start, at = least
    cause = shares(stalls.stalls(start, at), start, at)
    if len(verdict.late) > 1:
        cause += f" (the least of the stalls before each of the {len(verdict.late)} items)"
    return _inconclusive(verdict, stalled, cause)


def _time_bound(verdict: Verdict, stalls: StallQueries) -> Verdict:
    # judge() checked these: a time bound with a figure and the span it measures.
    assert verdict.figure is not None and verdict.bound is not None and verdict.span is not None
    excess = verdict.figure - verdict.bound
    start, end = verdict.span
    stalled = stalls.total_ms(start, end)
    if stalled > 0 and stalled >= excess:
        return _inconclusive(verdict, stalled, shares(stalls.stalls(start, end), start, end))
    return verdict


def _counts(verdict: Verdict, stalls: StallQueries) -> Verdict:
    # One query for all culprits (there may be thousands of failed RPCs, and a long
    # session's log holds many stalls), then the longest stall each one lived through.
    window = stalls.stalls(min(s for s, _ in verdict.culprits), max(e for _, e in verdict.culprits))
    explaining: list[Stall] = []
    for start, end in verdict.culprits:
        worst = max(
            (s for s in window if s.end_ns >= start and s.start_ns <= end),
            key=lambda s: s.end_ns - s.start_ns,
            default=None,
        )
        if worst is None or worst.ms < max(STALL_EXPLAINS_MS, (end - start) / 2e6):
            return verdict
        explaining.append(worst)
    weakest = min(explaining, key=lambda s: s.ms)
    cause = weakest.describe()
    if len(explaining) > 1:
        cause += f" (the least of the stalls each of the {len(explaining)} failures lived through)"
    return _inconclusive(verdict, weakest.ms, cause)


def _inconclusive(verdict: Verdict, stall_ms: float, cause: str) -> Verdict:
    return replace(
        verdict, inconclusive=True, stall_ms=stall_ms, data={**verdict.data, "stall_cause": cause}
    )


def shares(stalls: list[Stall], start_ns: int, end_ns: int) -> str:
    """Who was stalled within [start_ns, end_ns], and how long each (each instant once per
    process), the largest first: "backend b2 (pid 4711) waited 60 ms for a CPU, runner
    stalled 30 ms (72 ms in all)". One process alone is named without a total."""
    groups: dict[tuple[str, bool], list[Stall]] = {}
    for stall in stalls:
        groups.setdefault((stall.who, stall.source == RUN_QUEUE), []).append(stall)
    ranked = sorted(
        ((union_ns(group, start_ns, end_ns) / 1e6, group[0]) for group in groups.values()),
        key=lambda pair: -pair[0],
    )
    ranked = [(ms, stall) for ms, stall in ranked if ms > 0]
    named = ", ".join(stall.describe(ms) for ms, stall in ranked[:NAMED])
    if len(ranked) > NAMED:
        named += f" and {len(ranked) - NAMED} more"
    if len(ranked) <= 1:
        return named
    return f"{named} ({union_ns(stalls, start_ns, end_ns) / 1e6:.0f} ms in all)"
