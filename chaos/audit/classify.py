"""A setting's verdict from the records of its scenarios (chaos/run/results.py): at the
baseline (the profile as given) and under its mutation (the setting removed).

    needed          a scenario that passed at baseline fails without it: the first such
                    (scenario, check, figure against bound), preferring a check the
                    setting answers (its advice names it)
    no effect seen  every scenario it answers that ran passed without it
    not covered     no scenario answers it, or every one is not applicable / skipped
    inconclusive    no failure, but a scenario failed or errored at baseline ("fails with
                    the profile as given"), or stayed inconclusive (the judge's stall
                    rule) or errored or did not run under the mutation

Never "needed" nor "no effect" without a run that shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chaos.audit import known
from chaos.audit.settings import Setting
from chaos.gate import aggregate, settings_view
from chaos.outcomes import Exit, Outcome

NEEDED = "needed"
NO_EFFECT = "no effect seen"
NOT_COVERED = "not covered"
INCONCLUSIVE = "inconclusive"
VERDICTS = (NEEDED, NO_EFFECT, NOT_COVERED, INCONCLUSIVE)


@dataclass(frozen=True)
class Result:
    """One scenario's outcome in one run: ``check`` and ``figure`` ("errors: 6 rpcs (bound
    <= 0 rpcs)") when it failed on a verdict; ``names`` the settings its advice names."""

    outcome: str
    check: str | None = None
    figure: str = ""
    names: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "check": self.check, "figure": self.figure}


def result(record: Mapping | None) -> Result | None:
    """A record as a Result; None when the scenario did not run."""
    if record is None:
        return None
    verdict = record.get("decisive")
    if record["outcome"] == Outcome.FAIL and verdict and verdict.get("outcome") == Outcome.FAIL:
        names = tuple(n for n, _ in settings_view.settings_of(verdict.get("advice") or ""))
        return Result(record["outcome"], verdict["name"], aggregate.describe(verdict), names)
    return Result(record["outcome"], None, record.get("reason") or "")


# Which of a scenario's parametrizations speaks for it: a failure first, then what is
# unsure, then a pass; not applicable only when every one is.
_RANK: dict[str, int] = {
    Outcome.FAIL: 0,
    Outcome.ERROR: 1,
    Outcome.INCONCLUSIVE: 1,
    Outcome.PASS: 2,
}


def results(records: Sequence[Mapping]) -> dict[str, Result | None]:
    """Records by scenario function (``test_tls::test_x``): a parametrized scenario's
    records (``test_x[expired]``, ...) become one result, its worst (a failure first)."""
    found: dict[str, Result | None] = {}
    for record in records:
        name = record["scenario"].split("[", 1)[0]
        new, old = result(record), found.get(name)
        if old is None or (new and _RANK.get(new.outcome, 3) < _RANK.get(old.outcome, 3)):
            found[name] = new
    return found


@dataclass
class Finding:
    """A setting's verdict, why in one sentence, and each of its scenarios' results."""

    setting: Setting
    verdict: str
    why: str
    scenarios: list[dict] = field(default_factory=list)
    known: str | None = None
    duration_s: float | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return {
            "id": self.setting.id,
            "name": self.setting.name,
            "label": self.setting.label,
            "value": self.setting.value,
            "keys": list(self.setting.keys),
            "mutation": self.setting.mutation,
            "verdict": self.verdict,
            "why": self.why,
            "known": self.known,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "stopped_early": self.stopped_early,
            "scenarios": self.scenarios,
        }


def classify(
    setting: Setting,
    scenarios: Sequence[str],
    baseline: Mapping[str, Result | None],
    mutated: Mapping[str, Result | None],
    implementation: str | None = None,
) -> Finding:
    """The verdict of ``setting`` from its ``scenarios``' results (by scenario name)."""
    rows = [
        {
            "scenario": name,
            "baseline": _dict(baseline.get(name)),
            "mutated": _dict(mutated.get(name)),
        }
        for name in scenarios
    ]
    if not scenarios:
        return Finding(setting, NOT_COVERED, "no scenario in the selection answers it", rows)
    failures = [
        (name, found)
        for name in scenarios
        if (found := mutated.get(name)) is not None
        and found.outcome == Outcome.FAIL
        and _passed(baseline.get(name))
    ]
    if failures:
        keys = set(setting.keys)
        name, found = next(((n, f) for n, f in failures if keys & set(f.names)), failures[0])
        figure = found.figure.removeprefix(f"{found.check}: ")
        where = f"on {found.check}: {figure}" if found.check else f"({figure})"
        return Finding(setting, NEEDED, f"without it, {name} fails {where}", rows)
    bad_base = [n for n in scenarios if (b := baseline.get(n)) is None or not _ran_ok(b)]
    if bad_base:
        return Finding(
            setting,
            INCONCLUSIVE,
            f"fails with the profile as given: {', '.join(bad_base)}",
            rows,
        )
    ran = [n for n in scenarios if (b := baseline.get(n)) is not None and not _skipped(b)]
    if not ran:
        return Finding(
            setting, NOT_COVERED, "every scenario that answers it is not applicable here", rows
        )
    unsure = [n for n in ran if (m := mutated.get(n)) is None or m.outcome != Outcome.PASS]
    if unsure:
        return Finding(
            setting,
            INCONCLUSIVE,
            "without it, no pass or fail from "
            + ", ".join(f"{n} ({_word(mutated.get(n))})" for n in unsure),
            rows,
        )
    why = f"every scenario it answers passes without it ({len(ran)})"
    return Finding(
        setting,
        NO_EFFECT,
        why,
        rows,
        known=known.explain(setting.name, setting.value, implementation),
    )


def _passed(found: Result | None) -> bool:
    return found is not None and found.outcome == Outcome.PASS


def _skipped(found: Result) -> bool:
    return found.outcome in (Outcome.NOT_APPLICABLE, Outcome.SKIPPED)


def _ran_ok(found: Result) -> bool:
    return found.outcome == Outcome.PASS or _skipped(found)


def _word(found: Result | None) -> str:
    return "did not run" if found is None else found.outcome


def _dict(found: Result | None) -> dict | None:
    return None if found is None else found.to_dict()


def exit_code(findings: Sequence[Finding], interrupted: bool = False) -> Exit:
    """0 every setting needed or not covered, 1 one has no effect, 2 one inconclusive (and
    none without effect), 130 interrupted."""
    if interrupted:
        return Exit.INTERRUPTED
    verdicts = {f.verdict for f in findings}
    if NO_EFFECT in verdicts:
        return Exit.FAIL
    if INCONCLUSIVE in verdicts:
        return Exit.INCONCLUSIVE
    return Exit.PASS
