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
    """

    name: str
    passed: bool
    figure: float | None
    unit: str
    bound: float | None
    explanation: str
    comparison: str = "<="
    data: dict = field(default_factory=dict, hash=False)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def headline(self) -> str:
        """One line: PASS/FAIL, the name, the figure and the bound."""
        # Dimensionless figures read better named first: "p 0.0204", not "0.0204 p".
        named = self.unit in DIMENSIONLESS
        unit = "" if named else f" {self.unit}"
        figure = "n/a" if self.figure is None else f"{self.figure:.6g}{unit}"
        figure = f"{self.unit} {figure}" if named else figure
        bound = "" if self.bound is None else f" (bound {self.comparison} {self.bound:.6g}{unit})"
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {figure}{bound}"

    def __str__(self) -> str:
        body = "\n".join("    " + line if line else "" for line in self.explanation.splitlines())
        return f"{self.headline}\n{body}"

    def to_dict(self) -> dict:
        """A JSON-serialisable form, for artifacts."""
        return asdict(self)


def explain(paragraph: str, history: History, around_ns: int, highlight: Iterable[int] = ()) -> str:
    """The paragraph, then the timeline around the decisive point."""
    timeline = history.timeline(around_ns, CONTEXT_NS, CONTEXT_NS, CONTEXT_LINES, highlight)
    return f"{paragraph}\n\n{timeline}"


def ms(duration_ns: int) -> float:
    """ns -> ms, the unit of every time bound."""
    return duration_ns / 1e6
