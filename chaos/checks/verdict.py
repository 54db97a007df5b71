"""The Verdict every check returns, and how a check writes its explanation.

A verdict carries the measured figure and the bound next to the yes/no, so a report
can say "failover took 212 ms (bound 500 ms)" rather than "failed", and an explanation
that a person can act on: what was measured, why it passed or failed, and the
timeline around the decisive point (the failure, or the fault).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from chaos.history import History
from chaos.outcomes import Outcome

# How much of the timeline an explanation shows each side of its decisive point, and
# at most how many lines: a fifth of a second shows a fault's start and the first RPCs
# after it even at a few RPC/s; at thousands of RPC/s the line limit keeps the nearest.
CONTEXT_NS = 200_000_000
CONTEXT_LINES = 24

DIMENSIONLESS = ("p", "ratio")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check. Truthy when it passed.

    `comparison` says which way the bound goes: "<=" (figure must not exceed it, e.g. a
    time) or ">=" (figure must reach it, e.g. a p-value). `data` holds JSON-native
    extras for reports (counts by code, percentiles, ...).

    What a busy machine could have bent (chaos/verdicts/judge.py reads these; checks only say
    what they measured): `span` is the interval of the history whose length *is* a time
    figure (fault in force -> decisive instant), and `culprits` the intervals of the
    failing items of a count (each failed RPC's lifetime, each RPC that went where it
    should not). `late` is for a count of items that each came past a time bound (an RPC
    started on a backend after the client should have known it was down): per item
    ``(from_ns, at_ns, excess_ms)`` — the item is put down to the machine when the stalls
    within [from_ns, at_ns] add up to its excess over the bound. `inconclusive` and
    `stall_ms` are set by the judge, never by a check: a
    missed bound that the runner's own stall explains. `advice` names the client or
    server settings that answer a failure (chaos/verdicts/advice.py).

    `not_judged` is set by a check whose history holds too little evidence to decide
    either way (no load after the fault was cleared, fewer RPCs than the rule needs): it
    says what was missing. Such a verdict is never a pass (``passed`` is False) and never
    a fail: it is counted and shown (see :func:`not_judged`). `shown` replaces the figure
    in the headline when a number cannot say what failed ("never within the 7.0 s
    observed", "round 11 of 20 out of rotation"): a failed headline always states what
    broke the bound.
    """

    name: str
    passed: bool
    figure: float | None
    unit: str
    bound: float | None
    explanation: str
    comparison: str = "<="
    data: dict = field(default_factory=dict, hash=False)
    span: tuple[int, int] | None = None
    culprits: tuple[tuple[int, int], ...] = ()
    late: tuple[tuple[int, int, float], ...] = ()
    inconclusive: bool = False
    stall_ms: float | None = None
    advice: str = ""
    not_judged: str = ""
    shown: str = ""

    def __bool__(self) -> bool:
        return self.passed

    @property
    def outcome(self) -> Outcome:
        """PASS, FAIL, INCONCLUSIVE or NOT_JUDGED (chaos/outcomes.py)."""
        if self.passed:
            return Outcome.PASS
        if self.not_judged:
            return Outcome.NOT_JUDGED
        return Outcome.INCONCLUSIVE if self.inconclusive else Outcome.FAIL

    @property
    def failed(self) -> bool:
        """A red: it did not pass, and neither a stall nor missing evidence explains it."""
        return self.outcome is Outcome.FAIL

    def breaks_bound(self) -> bool:
        """Whether the figure the headline states is one that breaks the bound (what a
        failed headline must state: a reader takes "10 rounds (bound >= 1 rounds)" for a
        pass)."""
        if self.shown:
            return True
        if self.figure is None or self.bound is None:
            return False
        return self.figure < self.bound if self.comparison == ">=" else self.figure > self.bound

    @property
    def headline(self) -> str:
        """One line: PASS/FAIL, the name, the figure and the bound."""
        # Dimensionless figures read better named first: "p 0.0204", not "0.0204 p".
        named = self.unit in DIMENSIONLESS
        unit = "" if named else f" {self.unit}"
        figure = "n/a" if self.figure is None else f"{self.figure:.6g}{unit}"
        figure = f"{self.unit} {figure}" if named else figure
        bound = "" if self.bound is None else f" (bound {self.comparison} {self.bound:.6g}{unit})"
        if self.not_judged:
            return f"NOT JUDGED {self.name}: {self.not_judged}{bound}"
        if self.shown:
            figure = self.shown
        stalled = f" — {self.stall_text()}" if self.inconclusive else ""
        return f"{self.outcome.upper()} {self.name}: {figure}{bound}{stalled}"

    def stall_text(self) -> str:
        """What the judge found that explains the miss (the runner's stall by default)."""
        cause = self.data.get("stall_cause") if isinstance(self.data, dict) else None
        return cause or f"runner stalled {self.stall_ms:.0f} ms"

    def __str__(self) -> str:
        text = self.explanation + (f"\n\n{self.advice}" if self.advice else "")
        body = "\n".join("    " + line if line else "" for line in text.splitlines())
        return f"{self.headline}\n{body}"

    def to_dict(self) -> dict:
        """A JSON-serialisable form, for artifacts."""
        return asdict(self)


def not_judged(
    name: str,
    reason: str,
    explanation: str,
    *,
    unit: str = "ms",
    bound: float | None = None,
    comparison: str = "<=",
    figure: float | None = None,
) -> Verdict:
    """A verdict that could not be judged: the history lacks the evidence ``reason`` names
    (e.g. "only 10 ms of load after the clear; 2000 ms needed"). Never a pass, never a
    fail, never bent by the judge; a scenario that meets one is rerun like an inconclusive
    one, and the fuzzer counts it per rule."""
    return Verdict(name, False, figure, unit, bound, explanation, comparison, not_judged=reason)


def explain(paragraph: str, history: History, around_ns: int, highlight: Iterable[int] = ()) -> str:
    """The paragraph, then the timeline around the decisive point."""
    timeline = history.timeline(around_ns, CONTEXT_NS, CONTEXT_NS, CONTEXT_LINES, highlight)
    return f"{paragraph}\n\n{timeline}"


def ms(duration_ns: int) -> float:
    """ns -> ms, the unit of every time bound."""
    return duration_ns / 1e6
