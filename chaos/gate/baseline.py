"""Compare every figure of a run with an earlier run (``--baseline PATH|latest``).

A figure *regressed* when its median over the repeats got worse than the baseline's
median by more than the tolerance — even while it is within its bound: a failover that
took 40 ms and now takes 400 ms passes a 1000 ms bound and is still news for a release.

    worse  = (now - before) in the bound's direction ("<=": higher is worse, ">=": lower)
    regressed when  worse > tolerance x |before|  and  worse > the unit's noise floor

The noise floor keeps scheduling noise out: NOISE_FLOOR_MS for time figures (the runner
stalls measured on a busy 2-core machine reach ~180 ms), nothing for counts — errors
going from 0 to 1 is a regression. Test statistics (a chi-square p-value) are compared by
their verdict only.

Figures are matched per (scenario, profile, client, check, bound): a changed bound is
another figure, and a client is only ever compared with the same client (by its name:
``go`` before and after a grpc-go upgrade is one client; ``go`` and ``node`` are never
compared). When each run judged exactly one profile, the two are compared whatever their
names — a team's client profile before and after a change. A baseline made before clients
existed is the in-process client's.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.gate.aggregate import INPROCESS, STATISTICS, Figures
from chaos.gate.aggregate import figures as figures_of

DEFAULT_TOLERANCE = 0.5  # 50 % worse: "failover time doubled" is caught, jitter is not
NOISE_FLOOR_MS = 200.0
_TIME_UNITS_MS = {"ms": 1.0, "s": 1000.0}

REGRESSED, IMPROVED, SAME, NEW, GONE = "regressed", "improved", "same", "new", "gone"


@dataclass(frozen=True)
class Comparison:
    """One figure against its baseline; ``before``/``now`` are medians (None: n/a)."""

    figures: Figures
    before: float | None
    now: float | None
    status: str
    baseline_profile: str | None = None

    @property
    def regressed(self) -> bool:
        return self.status == REGRESSED

    def text(self) -> str:
        """E.g. "recovery_time 212 ms -> 1180 ms (+457 %)"."""
        f = self.figures
        return f"{f.check} {_value(self.before, f.unit)} -> {_value(self.now, f.unit)}" + _change(
            self.before, self.now
        )


def _value(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.4g} {unit}".rstrip()


def _change(before: float | None, now: float | None) -> str:
    if before is None or now is None or before == 0:
        return ""
    return f" ({(now - before) / abs(before) * 100:+.0f} %)"


def compare(
    current: dict[tuple, Figures],
    baseline: dict[tuple, Figures],
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[Comparison]:
    """Every figure of ``current`` against ``baseline`` (both from aggregate.figures())."""
    rename = _profile_pairing(current, baseline)
    by_key = {_key(f, rename.get(f.profile, f.profile)): f for f in baseline.values()}
    found = []
    for figures in current.values():
        before = by_key.get(_key(figures, figures.profile))
        if before is None:
            found.append(Comparison(figures, None, figures.median, NEW))
            continue
        status = judge(before.median, figures.median, figures.comparison, figures.unit, tolerance)
        found.append(Comparison(figures, before.median, figures.median, status, before.profile))
    return found


def _key(figures: Figures, profile: str) -> tuple:
    return (
        figures.scenario,
        profile,
        figures.check,
        figures.bound,
        figures.comparison,
        figures.unit,
        figures.client,
    )


def _profile_pairing(current: dict, baseline: dict) -> dict[str, str]:
    """baseline profile -> current profile, when each side has exactly one profile."""
    now = {f.profile for f in current.values()}
    before = {f.profile for f in baseline.values()}
    if len(now) == 1 and len(before) == 1:
        return {next(iter(before)): next(iter(now))}
    return {}


def judge(
    before: float | None,
    now: float | None,
    comparison: str,
    unit: str,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str:
    """REGRESSED, IMPROVED or SAME for one figure's medians (the rule in the docstring)."""
    if unit in STATISTICS:
        return SAME
    if now is None:
        return SAME if before is None else REGRESSED  # measured before, not reached now
    if before is None:
        return IMPROVED
    direction = 1 if comparison == "<=" else -1
    worse = (now - before) * direction
    floor = NOISE_FLOOR_MS / _TIME_UNITS_MS[unit] if unit in _TIME_UNITS_MS else 0.0
    if abs(worse) <= tolerance * abs(before) or abs(worse) <= floor:
        return SAME
    return REGRESSED if worse > 0 else IMPROVED


def recorded(run) -> list[Comparison] | None:
    """The comparisons a run directory recorded (results.json "figures": baseline median
    and status), so that a view of the run shows them without the baseline at hand."""
    if not run.doc["run"].get("baseline"):
        return None
    current = figures_of(run.records)
    found = []
    for entry in run.doc.get("figures") or []:
        key = (
            entry["scenario"],
            entry["profile"],
            entry["check"],
            entry["bound"],
            entry["comparison"],
            entry["unit"],
            (entry.get("client") or {}).get("name") or INPROCESS,
        )
        if key in current and entry.get("status"):
            found.append(
                Comparison(current[key], entry["baseline"], current[key].median, entry["status"])
            )
    return found
