""" "What to change" by setting: each setting that answers a failure, once, ranked by how
many failures it answers — the view for a person deciding on a release, read before the
failures one by one.

It reads nothing but the records (chaos/run/results.py) and the advice text their failed
verdicts already carry (chaos/verdicts/advice.py ``explain``, filled in by
chaos/scenario.py ``expect``)::

    What answers this (the profile under test, "naive", and the server under test):
      - retryPolicy: not set (no retryPolicy applies to ...). A methodConfig retryPolicy ...
      - healthCheckConfig: not set. Client-side health checking: ...
    Bound: ...

Each ``  - NAME: TEXT`` line of that block is one setting answering that failure; the
setting's name is the key the advice names (``retryPolicy``, ``healthCheckConfig``,
``grpc.keepalive_time_ms``, ``server.max_connection_age``) and what it says about it is
the rest of the line, taken from the advice as written: the settings are never derived
again here, so this view and the per-failure one cannot disagree.

What counts, per column (one profile under one client — aggregate.Column; one column's
failures are never another's):

- a *failure* is a (scenario, check) whose record failed or errored on it: the record's
  decisive verdict with outcome ``fail``. A scenario ends at its first failed check, so
  that check is the only one known to fail; a check recorded for its figures only
  (``chaos.check``) does not decide anything and is not counted. The same failure in
  several repeats is one failure ("2/3 repeats"); two different checks of one scenario
  (a flaky cell, across repeats) are two.
- inconclusive and not-judged verdicts are not failures (the runner stalled, or the
  history held too little evidence): neither is listed here.
- a failure whose advice names no setting — and a scenario that failed or errored with no
  failed verdict (a fixture error, an exception) — is listed once under
  :data:`NO_SETTING`, so that nothing failed is hidden.

Settings are ranked first by what the profile has for them (advice.status_of, read off
the advice's own text): those it leaves unset — the changes to make — then the server's,
then those it already sets, whose value (or a client implementation that ignores them:
grpc-go without outlier detection) is the question rather than the setting; then by the
number of distinct failures they answer, ties by name. A failure answered by three
settings is listed under each of the three.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from chaos.gate import aggregate
from chaos.verdicts import advice

NO_SETTING = "answered by no client setting"
# The advice block's first line (chaos/verdicts/advice.py explain); its settings follow as
# "  - NAME: TEXT" lines.
_HEADER = "What answers this"
_ITEM = "- "
# Settings the terminal names on a column's line; the rest are counted ("+ 3 more").
TERMINAL_TOP = 5
# The groups of a column's ranking, in order, and how each is labelled.
ORDER = (advice.NOT_SET, advice.SERVER, advice.SET)
LABELS = {
    advice.NOT_SET: "not set in this profile",
    advice.SERVER: "a setting of the server",
    advice.SET: "already set in this profile: its value, or a client that ignores it, is "
    "the question",
}
# What the terminal's line puts before the first setting of a group (none for the first).
_TERMINAL_GROUP = {advice.NOT_SET: "", advice.SERVER: "server: ", advice.SET: "already set: "}


@dataclass(frozen=True)
class Failure:
    """One failed (scenario, check) in a column, over the column's repeats of it.

    ``check`` is None for a scenario that failed or errored with no failed verdict;
    ``text`` is the figure against its bound ("errors: 6 rpcs (bound <= 0 rpcs)",
    aggregate.describe), or the record's reason when there is no verdict; ``failed`` of
    ``runs`` repeats failed on this check."""

    scenario: str
    check: str | None
    text: str
    outcome: str
    failed: int = 1
    runs: int = 1

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario, self.check or "")

    @property
    def repeats(self) -> str:
        """ " (2/3 repeats)" when the column ran the scenario more than once, else ""."""
        return f" ({self.failed}/{self.runs} repeats)" if self.runs > 1 else ""

    def line(self) -> str:
        """ "test_kill::test_x — errors: 6 rpcs (bound <= 0 rpcs)"."""
        return f"{self.scenario} — {self.text}{self.repeats}"

    def to_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "check": self.check,
            "text": self.text,
            "outcome": self.outcome,
            "failed": self.failed,
            "runs": self.runs,
        }


@dataclass(frozen=True)
class Setting:
    """A setting named by the advice of at least one failure in a column: its name, what
    the advice says about it (the text after "NAME: ", as the first failure's advice has
    it — within a column every failure's advice reads the same profile), and the failures
    it answers, by scenario then check."""

    name: str
    says: str
    failures: tuple[Failure, ...]

    @property
    def count(self) -> int:
        return len(self.failures)

    @property
    def status(self) -> str:
        """advice.NOT_SET, advice.SET or advice.SERVER: what the profile has for it."""
        return advice.status_of(self.says)

    @property
    def label(self) -> str:
        return LABELS[self.status]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "says": self.says,
            "status": self.status,
            "count": self.count,
            "failures": [f.to_dict() for f in self.failures],
        }


@dataclass(frozen=True)
class Changes:
    """One column's "What to change": its settings ranked (unset ones first, then the
    server's, then those already set; within each most failures answered first, ties by
    name), the failures no setting answers, and how many distinct failures the
    column has in all."""

    column: str  # aggregate.column_id
    settings: tuple[Setting, ...]
    unanswered: tuple[Failure, ...]
    failures: int

    def to_dict(self, profile: str, client: dict, label: str) -> dict:
        """Its entry in results.json's "what_to_change": ``client`` and ``label`` as the
        matrix names them (``{name, implementation, version}``, the column's heading)."""
        return {
            "profile": profile,
            "client": client,
            "column": label,
            "failures": self.failures,
            "settings": [s.to_dict() for s in self.settings],
            "unanswered": [f.to_dict() for f in self.unanswered],
        }


def settings_of(advice: str) -> list[tuple[str, str]]:
    """(name, text) of each setting an advice text names, in its order: the ``- NAME:
    TEXT`` items of its "What answers this" block (a line indented further continues the
    item before it). Empty for an advice that names none (only its "Bound:" line)."""
    found: list[tuple[str, str]] = []
    inside = False
    for raw in advice.splitlines():
        stripped = raw.strip()
        if raw.startswith(_HEADER):
            inside = True
            continue
        if not inside:
            continue
        if stripped.startswith(_ITEM) and ": " in stripped:
            name, text = stripped[len(_ITEM) :].split(": ", 1)
            found.append((name.strip(), text.strip()))
        elif stripped and raw[:1].isspace() and found:
            name, text = found[-1]
            found[-1] = (name, f"{text} {stripped}")
        else:  # the block ended ("Bound: ...", or a blank line)
            inside = False
    return found


def _failed_check(record: dict) -> dict | None:
    """The verdict a failed record failed on (its decisive one, outcome "fail"), else None."""
    verdict = record.get("decisive")
    if verdict is not None and verdict.get("outcome", aggregate.FAIL) == aggregate.FAIL:
        return verdict
    return None


@dataclass
class _Seen:
    """A failure as first met in a column (its earliest repeat), and how often it was met."""

    text: str
    outcome: str
    named: list[tuple[str, str]]
    failed: int = 1


def by_column(records: list[dict], columns: list[aggregate.Column] | None = None) -> list[Changes]:
    """Each column's "What to change", for the columns with a failure: in the order of
    ``columns`` (a run's, aggregate.run_columns), then any other the records have."""
    runs: dict[tuple[str, str], int] = defaultdict(int)  # (column, scenario) -> repeats
    found: dict[str, dict[tuple[str, str], _Seen]] = defaultdict(dict)
    for record in sorted(records, key=lambda r: r.get("repeat", 1)):
        column = aggregate.column_of(record)
        runs[(column, record["scenario"])] += 1
        if record["outcome"] not in (aggregate.FAIL, aggregate.ERROR):
            continue
        verdict = _failed_check(record)
        key = (record["scenario"], "" if verdict is None else verdict["name"])
        if key in found[column]:
            found[column][key].failed += 1
            continue
        text = aggregate.reason_of(record) if verdict is None else aggregate.describe(verdict)
        found[column][key] = _Seen(
            text or record["outcome"],
            record["outcome"],
            settings_of((verdict or {}).get("advice") or ""),
        )
    order = [c.id for c in columns or []]
    order += sorted(c for c in found if c not in order)
    return [_changes(c, found[c], runs) for c in order if found.get(c)]


def _changes(column: str, found: dict[tuple[str, str], _Seen], runs: dict) -> Changes:
    answers: dict[str, list[Failure]] = defaultdict(list)
    says: dict[str, str] = {}
    unanswered = []
    for (scenario, check), seen in sorted(found.items()):
        failure = Failure(
            scenario, check or None, seen.text, seen.outcome, seen.failed, runs[(column, scenario)]
        )
        if not seen.named:
            unanswered.append(failure)
        for name, said in dict(seen.named).items():  # a setting named twice counts once
            says.setdefault(name, said)
            answers[name].append(failure)
    settings = sorted(
        (Setting(name, says[name], tuple(failures)) for name, failures in answers.items()),
        key=lambda s: (ORDER.index(s.status), -s.count, s.name.casefold(), s.name),
    )
    return Changes(column, tuple(settings), tuple(unanswered), len(found))


def terminal_lines(
    changes: list[Changes], labels: dict[str, str], top: int = TERMINAL_TOP
) -> list[str]:
    """One line per column with failures, for the gate's end of run: "What to change
    (naive): retryPolicy — 14 failures; healthCheckConfig — 6; ...; already set:
    round_robin — 6; answered by no client setting — 1". The first ``top`` settings are
    named (each group after the first unset ones headed), the rest counted."""
    lines = []
    for change in changes:
        parts = []
        for i, s in enumerate(change.settings[:top]):
            head = (
                _TERMINAL_GROUP[s.status]
                if i == 0 or s.status != change.settings[i - 1].status
                else ""
            )
            tail = f" failure{'s' if s.count > 1 else ''}" if i == 0 else ""
            parts.append(f"{head}{s.name} — {s.count}{tail}")
        if len(change.settings) > top:
            parts.append(f"{len(change.settings) - top} more setting(s) in report.html")
        if change.unanswered:
            parts.append(f"{NO_SETTING} — {len(change.unanswered)}")
        label = labels.get(change.column, change.column)
        lines.append(f"What to change ({label}): " + "; ".join(parts))
    return lines
