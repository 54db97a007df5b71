"""summary.md: the run in Markdown — the verdict line, the matrix, what to change by
setting (ranked: chaos/gate/settings_view.py), what answers each failure, the
regressions — also appended to ``$GITHUB_STEP_SUMMARY`` when that is set
(GitHub Actions shows it on the job's page).

The matrix has one column per profile × client (chaos/gate/aggregate.py Column): headed
by the profile's name when the run had one client, by "PROFILE · IMPLEMENTATION VERSION"
when it had several; the line under the verdict names the clients that ran unless the
run had only the in-process one (the default, written as it always was).
"""

from __future__ import annotations

import os
from pathlib import Path

from chaos.gate import aggregate, settings_view
from chaos.gate.aggregate import Cell, Column
from chaos.outcomes import Outcome

REASON_CHARS = 110  # a table cell stays one readable line on a wide screen
NOT_RUN = Cell("—", "", 0, 0)


def matrix_table(matrix: dict[tuple[str, str], Cell], columns: list[Column]) -> str:
    """One row per scenario, one column per profile × client (docs/matrix.md)."""
    scenarios = sorted({scenario for scenario, _ in matrix})
    rows = [
        "| scenario | " + " | ".join(c.label for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for scenario in scenarios:
        cells = [_cell_text(matrix.get((scenario, c.id), NOT_RUN)) for c in columns]
        rows.append(f"| `{scenario}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _cell_text(cell: Cell) -> str:
    text = str(cell).replace("|", "/").replace("\n", " ")
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def judged(run: dict, markdown: bool = True) -> str:
    """What the run judged: target, profiles (with their hashes), the clients (when not
    the in-process one alone: each with its implementation and version), requirements."""
    target = run.get("target") or {}
    quote = "`" if markdown else ""
    profiles = ", ".join(f"{p['name']} ({quote}{p['sha256'][:8]}{quote})" for p in run["profiles"])
    repeat = f" · repeat {run['repeat']}" if run.get("repeat", 1) > 1 else ""
    name = target.get("source") or target.get("name") or "built-in Greeter"
    return (
        f"target: {name} · profiles: {profiles}{clients_part(run)}"
        f" · requirements: {run['requirements']['source']}{repeat}"
    )


def clients_part(run: dict) -> str:
    """The clients that ran, as the part of :func:`judged` that names them — " · clients:
    inprocess (grpcio 1.85.1), go (grpc-go 1.33.3)" — or "" for a run of the in-process
    client alone (the default, and every run made before clients existed)."""
    clients = run.get("clients") or []
    if [c["name"] for c in clients] in ([], [aggregate.INPROCESS]):
        return ""
    word = "clients" if len(clients) > 1 else "client"
    return f" · {word}: {aggregate.clients_text(clients)}"


def headline(run: dict) -> str:
    return f"grpc-chaos gate: {run['verdict']} — {run['counts_text']}"


def advice_markdown(text: str) -> list[str]:
    """A failure's advice (chaos/verdicts/advice.py's text) as nested Markdown list lines."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            continue
        lines.append(f"    {stripped}" if stripped.startswith("- ") else f"  {stripped}")
    return lines


def render(doc: dict, records: list[dict], comparisons) -> str:
    run = doc["run"]
    columns = aggregate.run_columns(run, records)
    labels = {c.id: c.label for c in columns}
    matrix = aggregate.cells(records)
    parts = [
        f"## {headline(run)}",
        "",
        judged(run) + f" · run `{run['id']}` ({run['duration_s']:.0f} s)",
        "",
        matrix_table(matrix, columns),
    ]
    parts += by_setting(settings_view.by_column(records, columns), labels)
    unsettled = (Outcome.FAIL, Outcome.ERROR, Outcome.INCONCLUSIVE)
    failures = [r for r in records if r["outcome"] in unsettled]
    if failures:
        parts += ["", "### What answers the failures", ""]
        for record in failures:
            verdict = record.get("decisive")
            parts.append(
                f"- `{record['scenario']}` [{labels[aggregate.column_of(record)]}"
                f"{_repeat(record, run)}] {record['outcome'].upper()} "
                f"{aggregate.reason_of(record)}"
            )
            if verdict is not None and verdict.get("advice"):
                parts += advice_markdown(verdict["advice"])
    regressed = [c for c in comparisons or [] if c.regressed]
    if run.get("baseline"):
        parts += [
            "",
            f"### Against baseline `{run['baseline']['run_id']}`: "
            f"{len(regressed)} figure(s) regressed "
            f"(tolerance {run['baseline']['tolerance']:.0%})",
        ]
        if regressed:
            parts += ["", "| scenario | profile | figure |", "|---|---|---|"]
            parts += [
                f"| `{c.figures.scenario}` | {labels.get(c.figures.column, c.figures.profile)} "
                f"| {c.text()} |"
                for c in regressed
            ]
    if run.get("interrupted"):
        parts += [
            "",
            "**The run was interrupted**: scenarios that did not finish are not in the table.",
        ]
    return "\n".join(parts) + "\n"


def by_setting(changes: list[settings_view.Changes], labels: dict[str, str]) -> list[str]:
    """ "What to change" by setting (chaos/gate/settings_view.py), one section per column
    with failures, above the failures one by one: each setting once, ranked by the
    failures it answers, with what the advice says of it and those failures; then the
    failures no setting answers."""
    parts: list[str] = []
    for change in changes:
        label = labels.get(change.column, change.column)
        parts += [
            "",
            f"### What to change ({label}), by setting",
            "",
            f"{change.failures} failure(s); each setting once — those this profile leaves "
            f"unset first, then the server's, then those it already sets — ranked by the "
            f"failures it answers (a failure is under every setting that answers it; each "
            f"failure with its whole advice is further down).",
            "",
        ]
        for rank, setting in enumerate(change.settings, 1):
            plural = "s" if setting.count > 1 else ""
            parts.append(
                f"{rank}. **{setting.name}** — {setting.count} failure{plural} "
                f"({setting.label}): {_one_line(setting.says)}"
            )
            parts += [f"    - {_failure_markdown(f)}" for f in setting.failures]
        if change.unanswered:
            parts.append(f"- **{settings_view.NO_SETTING}** — {len(change.unanswered)}")
            parts += [f"    - {_failure_markdown(f)}" for f in change.unanswered]
    return parts


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _failure_markdown(failure: settings_view.Failure) -> str:
    return f"`{failure.scenario}` — {_one_line(failure.text)}{failure.repeats}"


def _repeat(record: dict, run: dict) -> str:
    return f" #{record['repeat']}" if run.get("repeat", 1) > 1 else ""


def write(directory: Path, text: str) -> Path:
    path = directory / "summary.md"
    path.write_text(text)
    return path


def append_to_step_summary(text: str) -> str | None:
    """Append to $GITHUB_STEP_SUMMARY when set; returns a warning when it cannot."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    try:
        with open(target, "a", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        return f"could not append to GITHUB_STEP_SUMMARY={target}: {exc.strerror or exc}"
    return None
