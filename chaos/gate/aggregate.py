"""The one aggregation of scenario records: cells of the matrix, figures, the run's verdict.

Every view — the gate's progress lines, summary.md, report.html, results.json,
``python -m chaos.gate.matrix``, ``python -m chaos.gate.report`` and the baseline comparison —
reads records (chaos/run/results.py, one per scenario × client × profile × repeat) through
here, so a cell, a figure or the verdict means the same everywhere.

    records --cells()-----> (scenario, column id) -> Cell   pass / FAIL / flaky (k/N) / ...
            --figures()---> (scenario, profile, check, bound, comparison, unit, client)
                            -> Figures
            --columns()---> the matrix's columns (client x profile) and their headings
            --tally()-----> counts by cell outcome --> verdict() / exit_code()

A column is one profile under one client (``--client``: the in-process grpcio, or a client
driver; the records' ``client`` field). Its id (:func:`column_id`) is the profile's name
for the in-process client — so a run of the default client, and every run made before
clients existed (records without ``client``), keys exactly as it always did — and
``PROFILE@CLIENT`` for any other: two clients' cells and figures are never mixed. How a
column is headed is :class:`Column`'s ``label``: the profile's name when the run had one
client, else "PROFILE · IMPLEMENTATION VERSION" from the records.

A figure is aggregated per (scenario, check, bound) — within a profile and a client — and
never across bounds: the same check under two bounds (two requirements files, or a
scenario that checks latency against 100 ms and 200 ms) is two rows.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from chaos.outcomes import Exit, Outcome, merge
from chaos.outcomes import exit_code as outcome_exit_code

# Cell outcomes: the records' outcomes plus "flaky" (the repeats disagree); chaos/outcomes.py.
PASS, FAIL, FLAKY, INCONCLUSIVE, ERROR = (
    Outcome.PASS,
    Outcome.FAIL,
    Outcome.FLAKY,
    Outcome.INCONCLUSIVE,
    Outcome.ERROR,
)
NOT_APPLICABLE, SKIPPED = Outcome.NOT_APPLICABLE, Outcome.SKIPPED
# How a cell reads in a table: the shipped matrix's words.
# An error (a fixture that failed, the preflight) reads FAIL, as pytest counts it; the
# records keep "error", and the counts say "errored".
_LABELS: dict[str, str] = {
    PASS: "pass",
    FAIL: "FAIL",
    INCONCLUSIVE: "INCONCLUSIVE",
    ERROR: "FAIL",
    NOT_APPLICABLE: "n/a",
    SKIPPED: "skip",
}
# What a reason carries that a cell already says: the outcome word, the exception's class,
# the profile (the cell's column).
_REASON_NOISE = re.compile(r"^(FAIL |INCONCLUSIVE |not applicable: |chaos\.outcomes\.\w+: )+")
_PROFILE_TAG = re.compile(r"\[profile [^\]]*\]\s*")
# Units whose figure is a test statistic, not a quality: a higher p is no better client.
STATISTICS = ("p",)


# The client the plugin uses unless told otherwise (chaos/clients/builtin.py INPROCESS):
# grpcio in the runner's own process. Records written before clients existed are its.
INPROCESS = "inprocess"


def profile_of(record: dict) -> str:
    return record["profile"]["name"]


def client_of(record: dict) -> str:
    """The name of the client a record judged (``inprocess`` when the record has none)."""
    return (record.get("client") or {}).get("name") or INPROCESS


def column_id(profile: str, client: str = INPROCESS) -> str:
    """The key of a column: the profile's name for the in-process client, else
    ``PROFILE@CLIENT`` (one word, so that a text table still splits on spaces)."""
    return profile if client == INPROCESS else f"{profile}@{client}"


def column_of(record: dict) -> str:
    return column_id(profile_of(record), client_of(record))


def client_info(records: list[dict], name: str) -> dict:
    """``{"name", "implementation", "version"}`` of a client as its records describe it:
    the first record that names an implementation (a driver that never started names
    none); nulls when none does."""
    for record in records:
        client = record.get("client") or {}
        if client_of(record) == name and client.get("implementation"):
            return {
                "name": name,
                "implementation": client["implementation"],
                "version": client.get("version"),
            }
    return {"name": name, "implementation": None, "version": None}


def client_text(info: dict) -> str:
    """A client in words: "grpc-go 1.33.3"; its name when its implementation is unknown."""
    implementation = info.get("implementation")
    if not implementation:
        return info["name"]
    return f"{implementation} {info['version']}" if info.get("version") else implementation


def clients_text(infos: list[dict]) -> str:
    """The clients of a run in one phrase: "inprocess (grpcio 1.85.1), go (grpc-go 1.33.3)"."""
    return ", ".join(
        info["name"]
        if client_text(info) == info["name"]
        else f"{info['name']} ({client_text(info)})"
        for info in infos
    )


@dataclass(frozen=True)
class Column:
    """One column of the matrix: a profile under a client, and how it is headed."""

    profile: str
    client: str = INPROCESS
    client_label: str = ""  # "grpc-go 1.33.3" when the run had several clients, else ""

    @property
    def id(self) -> str:
        return column_id(self.profile, self.client)

    @property
    def label(self) -> str:
        """The heading: the profile's name, or with several clients "recommended ·
        grpc-go 1.33.3"."""
        return f"{self.profile} · {self.client_label}" if self.client_label else self.profile


def columns(
    records: list[dict], profiles: list[str] | tuple = (), clients: list[str] | tuple = ()
) -> list[Column]:
    """Every (profile, client) column: the profiles and clients in the order given (a run's
    metadata), then any other the records have; profile by profile, each under every
    client. With one client a column is headed by its profile's name, exactly as before
    clients existed; with several by "PROFILE · IMPLEMENTATION VERSION" (from the records;
    the client's name when its implementation is unknown — a driver that did not start),
    and when two clients read the same (the in-process grpcio and the python driver) each
    also by its name: "recommended · grpcio 1.85.1 (python)"."""
    profile_order = list(dict.fromkeys([*profiles, *(profile_of(r) for r in records)]))
    client_order = list(dict.fromkeys([*clients, *(client_of(r) for r in records)])) or [INPROCESS]
    if len(client_order) == 1:
        return [Column(p, client_order[0]) for p in profile_order]
    texts = {name: client_text(client_info(records, name)) for name in client_order}
    shared = Counter(texts.values())
    for name, text in texts.items():
        if shared[text] > 1 and text != name:
            texts[name] = f"{text} ({name})"
    return [Column(p, c, texts[c]) for p in profile_order for c in client_order]


def run_columns(run: dict, records: list[dict]) -> list[Column]:
    """The columns of a run read back: its metadata's profiles and clients (a results.json
    from before clients existed has no ``clients``: the in-process one)."""
    return columns(
        records,
        [p["name"] for p in run.get("profiles") or []],
        [c["name"] for c in run.get("clients") or []],
    )


def reason_of(record: dict) -> str:
    """The record's reason without the outcome word the cell already shows."""
    decisive = record.get("decisive")
    if decisive is not None and record["outcome"] in (FAIL, INCONCLUSIVE):
        return describe(decisive)
    text = _REASON_NOISE.sub("", record.get("reason") or "")
    return _PROFILE_TAG.sub("", text, count=1)


def describe(verdict: dict) -> str:
    """A verdict as "errors: 10 rpcs (bound <= 0 rpcs)" (dimensionless: "p 0.02")."""
    headline = verdict.get("headline")
    if headline and f"{verdict['name']}: " in headline:
        # The verdict's own headline (what failed, in words where no figure says it),
        # without its outcome word: the page shows the outcome beside it.
        return headline[headline.index(f"{verdict['name']}: ") :]
    unit = verdict.get("unit") or ""
    named = unit in ("p", "ratio")
    figure = verdict.get("figure")
    if figure is None:  # no figure: the thing never happened (never recovered, ...)
        shown = "n/a"
    elif named:
        shown = f"{unit} {figure:.6g}"
    else:
        shown = f"{figure:.6g} {unit}".rstrip()
    bound = verdict.get("bound")
    limit = (
        ""
        if bound is None
        else f" (bound {verdict.get('comparison', '<=')} {bound:.6g}{'' if named else ' ' + unit})"
    )
    stalled = (
        f" — runner stalled {verdict['stall_ms']:.0f} ms"
        if verdict.get("inconclusive") and verdict.get("stall_ms") is not None
        else ""
    )
    return f"{verdict['name']}: {shown}{limit}{stalled}"


def headroom(verdict: dict) -> float | None:
    """How much of its bound a figure uses: 1.0 is at the bound, above 1 past it. None
    when it cannot be said (no figure, no bound, a test statistic)."""
    figure, bound = verdict.get("figure"), verdict.get("bound")
    if figure is None or bound is None or verdict.get("unit") in STATISTICS:
        return None
    if verdict.get("comparison", "<=") == "<=":
        return (0.0 if figure <= 0 else float("inf")) if bound <= 0 else figure / bound
    return float("inf") if figure <= 0 else bound / figure


def decisive(record: dict) -> dict | None:
    """The verdict that decided: the failed one, else the passed one closest to its bound
    (what a progress line and a plot show), else the first."""
    if record.get("decisive") is not None:
        return record["decisive"]
    verdicts = record.get("verdicts") or []
    ranked = [(headroom(v), i) for i, v in enumerate(verdicts) if headroom(v) is not None]
    if ranked:
        return verdicts[max(ranked)[1]]
    return verdicts[0] if verdicts else None


@dataclass(frozen=True)
class Cell:
    """One scenario under one profile and client over its repeats. ``failed`` of ``runs``
    did not pass (a flaky cell's k/N)."""

    outcome: str
    reason: str = ""
    failed: int = 0
    runs: int = 1
    check: str | None = None  # the decisive check's name, for agreement across repeats

    @property
    def label(self) -> str:
        if self.outcome == FLAKY:
            return f"flaky ({self.failed}/{self.runs})"
        return _LABELS.get(self.outcome, self.outcome)

    def __str__(self) -> str:
        return self.label if not self.reason else f"{self.label}: {self.reason}"


def cell_of(record: dict) -> Cell:
    verdict = record.get("decisive")
    return Cell(
        record["outcome"],
        reason_of(record),
        failed=0 if record["outcome"] in (PASS, NOT_APPLICABLE, SKIPPED) else 1,
        check=None if verdict is None else verdict["name"],
    )


def combine(runs: list[Cell]) -> Cell:
    """One cell from the same scenario's cells over several runs: the first run's cell
    when every run ended the same way (same outcome, same decisive check — a count that
    differs between failing runs is still one failure), else ``flaky (k/N)`` with the
    distinct failures (k runs did not pass). A flaky cell is never a pass."""
    first = runs[0]
    failed = sum(cell.failed for cell in runs)
    same_check = all(cell.check == first.check for cell in runs)
    if same_check and merge(cell.outcome for cell in runs) is not Outcome.FLAKY:
        return Cell(first.outcome, first.reason, failed, len(runs), first.check)
    reasons = list(dict.fromkeys(str(c) for c in runs if c.outcome != PASS))
    return Cell(FLAKY, "; ".join(reasons), failed, len(runs))


def cells(records: list[dict]) -> dict[tuple[str, str], Cell]:
    """(scenario, column id) -> its cell over every record of it (repeats, and several run
    directories read together). The column id is the profile's name for the in-process
    client (:func:`column_id`)."""
    grouped: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.get("repeat", 1)):
        grouped[(record["scenario"], column_of(record))].append(cell_of(record))
    return {key: combine(runs) for key, runs in sorted(grouped.items())}


@dataclass(frozen=True)
class Figures:
    """One check's figures over runs, for one (scenario, profile, client, bound)."""

    scenario: str
    profile: str
    check: str
    unit: str
    bound: float | None
    comparison: str
    values: tuple[float | None, ...]
    passed: int
    client: str = INPROCESS

    @property
    def runs(self) -> int:
        return len(self.values)

    @property
    def measured(self) -> list[float]:
        return [v for v in self.values if v is not None]

    @property
    def median(self) -> float | None:
        return statistics.median(self.measured) if self.measured else None

    @property
    def column(self) -> str:
        return column_id(self.profile, self.client)

    @property
    def key(self) -> tuple:
        return (
            self.scenario,
            self.profile,
            self.check,
            self.bound,
            self.comparison,
            self.unit,
            self.client,
        )


def figures(records: list[dict]) -> dict[tuple, Figures]:
    """(scenario, profile, check, bound, comparison, unit, client) -> Figures over every
    record; two clients' figures are never one."""
    found: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        for verdict in record.get("verdicts") or []:
            key = (
                record["scenario"],
                profile_of(record),
                verdict["name"],
                verdict["bound"],
                verdict.get("comparison", "<="),
                verdict.get("unit") or "",
                client_of(record),
            )
            found[key].append(verdict)
    return {
        key: Figures(
            scenario=key[0],
            profile=key[1],
            check=key[2],
            unit=key[5],
            bound=key[3],
            comparison=key[4],
            values=tuple(v["figure"] for v in verdicts),
            passed=sum(bool(v["passed"]) for v in verdicts),
            client=key[6],
        )
        for key, verdicts in sorted(found.items(), key=lambda item: _sortable(item[0]))
    }


def _sortable(key: tuple) -> tuple:
    return tuple("" if part is None else str(part) for part in key)


@dataclass
class Tally:
    """Counts of cells by outcome, and regressed figures."""

    by_outcome: Counter = field(default_factory=Counter)
    regressed: int = 0
    not_run: int = 0

    @property
    def cells(self) -> int:
        return sum(self.by_outcome.values())

    def text(self) -> str:
        """E.g. "3 failed, 1 flaky, 40 passed, 2 not applicable"."""
        words = (
            (FAIL, "failed"),
            (ERROR, "errored"),
            (FLAKY, "flaky"),
            (INCONCLUSIVE, "inconclusive"),
            (PASS, "passed"),
            (NOT_APPLICABLE, "not applicable"),
            (SKIPPED, "skipped"),
        )
        parts = [f"{self.by_outcome[o]} {w}" for o, w in words if self.by_outcome[o]]
        if self.regressed:
            parts.append(f"{self.regressed} figure{'s' if self.regressed > 1 else ''} regressed")
        if self.not_run:
            parts.append(f"{self.not_run} not run")
        return ", ".join(parts) or "nothing ran"


def tally(matrix: dict[tuple[str, str], Cell], regressed: int = 0, not_run: int = 0) -> Tally:
    return Tally(Counter(cell.outcome for cell in matrix.values()), regressed, not_run)


def exit_code(counts: Tally, fail_on_regression: bool = False, interrupted: bool = False) -> int:
    """The gate's exit code (chaos/outcomes.py's map) for these counts."""
    return outcome_exit_code(
        counts.by_outcome,
        regressed=fail_on_regression and bool(counts.regressed),
        interrupted=interrupted,
    )


def verdict(code: int) -> str:
    """PASS / FAIL / INCONCLUSIVE / INTERRUPTED for an exit code."""
    words: dict[int, str] = {
        Exit.PASS: "PASS",
        Exit.FAIL: "FAIL",
        Exit.INCONCLUSIVE: "INCONCLUSIVE",
        Exit.INTERRUPTED: "INTERRUPTED",
    }
    return words.get(code, "ERROR")
