"""Pass, fail or inconclusive: a failed verdict that the runner's own stall explains.

A check measures the system under test from the runner's point of view; if the runner
could not run for a while, what it measured in that while includes its own absence. So a
failed verdict is looked at once more, against the stalls the runner measured
(chaos/stall.py), before it becomes a red::

    time bound (figure <= bound, e.g. failover 1016 ms <= 1000 ms):
        inconclusive when the runner stalled at least (figure - bound) in total
        within the span the figure measures (fault in force -> decisive instant);
    count (errors, RPCs sent where they should not go):
        inconclusive when EVERY culprit (each failed RPC's lifetime, each misplaced
        RPC's delay) lived through one runner stall of at least STALL_EXPLAINS_MS and of
        at least half the culprit's length (a 3 s DEADLINE_EXCEEDED is not explained by a
        quarter second of stall; a connection torn down by a ping timeout is);
    floors (latency at least ...), p-values, figures without a span or culprits:
        never inconclusive — a stall cannot make a thing faster, and a check that gives
        no interval gives nothing a stall could have bent.

Inconclusive is never a pass: the scenario is rerun, and a run that stays inconclusive
says so and exits non-zero. The rule only ever turns a red into "not known"; a verdict
that passed is never touched.
"""

from __future__ import annotations

from dataclasses import replace

from chaos.checks.verdict import Verdict
from chaos.stall import StallMonitor

# A count failure is put down to the machine only when every failing item lived through
# this much runner stall. The shortest client timer the shipped profiles set is the 500 ms
# keepalive ping timeout: a stall of ~half of it, added to a ping already under way and to
# the same stall on the backend's side of a starved machine, can make that timer fire
# (measured: see README, "Verdicts under load"). Ordinary scheduling noise on a loaded
# 2-core machine stays far below (stalls of 4-40 ms with four CPU burners).
STALL_EXPLAINS_MS = 200.0


def judge(verdict: Verdict, stalls: StallMonitor | None) -> Verdict:
    """The verdict, made inconclusive when the runner's stall explains its failure."""
    if verdict.passed or stalls is None:
        return verdict
    if verdict.span is not None and verdict.comparison == "<=" and verdict.figure is not None \
            and verdict.bound is not None:
        excess = verdict.figure - verdict.bound
        stalled = stalls.total_ms(*verdict.span)
        if stalled > 0 and stalled >= excess:
            return replace(verdict, inconclusive=True, stall_ms=stalled)
        return verdict
    if verdict.culprits:
        explained = []
        for start, end in verdict.culprits:
            worst = stalls.worst(start, end)
            longest = 0.0 if worst is None else worst.ms
            if longest < max(STALL_EXPLAINS_MS, (end - start) / 2e6):
                return verdict
            explained.append(longest)
        return replace(verdict, inconclusive=True, stall_ms=min(explained))
    return verdict
