"""report.html: the run for the person who decides on the release, in one file.

Self-contained: CSS inline, plots as PNG data URIs, no script, no font or anything else
fetched. From the top::

    the verdict in one line (PASS / FAIL / INCONCLUSIVE with counts), what it judged
      (target, profiles with their hashes, the clients with their implementation and
      version unless only the in-process one ran, requirements) and when, where, with what
    What to change: first by setting, per column — each setting that answers a failure
      once, ranked by how many it answers, with what the advice says of it and those
      failures (chaos/gate/settings_view.py) — then each failure with the settings that
      answer it (chaos/verdicts/advice.py)
    Regressions against the baseline, when there is one
    The matrix scenario x column (each cell links to its scenario)
    Every scenario, failures first: its property and bound in words, each column's
      verdicts (figure, bound, outcome over the repeats), the plot (chaos/gate/plots.py),
      the explanation, and where its artifacts are

A column is a profile under a client (chaos/gate/aggregate.py Column): headed by the
profile's name when the run had one client, by "PROFILE · IMPLEMENTATION VERSION" when it
had several — every verdict on the page is under the heading of its column.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from chaos.gate import aggregate, baseline, plots, settings_view
from chaos.gate.aggregate import Cell, Column
from chaos.gate.results_file import Run
from chaos.gate.summary_md import judged

NAME = "report.html"
_ORDER = {
    aggregate.FAIL: 0,
    aggregate.ERROR: 0,
    aggregate.FLAKY: 1,
    aggregate.INCONCLUSIVE: 2,
    aggregate.PASS: 3,
    aggregate.SKIPPED: 4,
    aggregate.NOT_APPLICABLE: 5,
}
_CLASS: dict[str, str] = {
    aggregate.PASS: "pass",
    aggregate.FAIL: "fail",
    aggregate.ERROR: "fail",
    aggregate.FLAKY: "flaky",
    aggregate.INCONCLUSIVE: "inconclusive",
    aggregate.NOT_APPLICABLE: "na",
    aggregate.SKIPPED: "na",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1d2433;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:0 20px 40px}
header.verdict{padding:18px 20px;color:#fff}
header.verdict h1{margin:0;font-size:26px}
header.verdict p{margin:4px 0 0;font-size:14px;opacity:.95}
.v-pass{background:#2b9348}.v-fail{background:#c1121f}.v-inconclusive{background:#b7791f}
.v-interrupted,.v-error{background:#5c677d}
h2{margin:28px 0 10px;font-size:19px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
h3{margin:18px 0 6px;font-size:16px}
.advice{background:#fff4e5;border-left:5px solid #e85d04;padding:10px 14px;margin:10px 0;border-radius:3px}
.advice h3{margin:0 0 6px}
pre{white-space:pre-wrap;word-break:break-word;margin:6px 0;
font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
.advice pre{font-size:13px}
.setting h3 .count{font-weight:400;color:#5c677d}
.setting .status{margin:2px 0;color:#5c677d;font-size:13px}
.setting[data-status="set"]{border-left-color:#adb5bd}
.setting ul{margin:6px 0 0;padding-left:20px}.setting li{margin:2px 0}
.setting.unanswered{border-left-color:#5c677d;background:#f1f3f5}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:13px}
th,td{border:1px solid #d5d9e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4}
td.pass{background:#e3f4e8}td.fail{background:#fde2e4}td.flaky{background:#ffe8cc}
td.inconclusive{background:#fff3bf}td.na{background:#f1f3f5;color:#555}
td a{color:inherit}
article{background:#fff;border:1px solid #d5d9e0;border-radius:4px;padding:10px 16px;margin:14px 0}
article .words{color:#3d4556}
.tag{display:inline-block;padding:0 6px;border-radius:3px;font-weight:600;font-size:12px}
.tag.pass{background:#2b9348;color:#fff}.tag.fail{background:#c1121f;color:#fff}
.tag.flaky{background:#e85d04;color:#fff}.tag.inconclusive{background:#b7791f;color:#fff}
.tag.na{background:#adb5bd;color:#fff}
.regressed{color:#c1121f;font-weight:600}
img.plot{display:block;max-width:100%;height:auto;margin:6px 0;border:1px solid #e5e7eb}
figure{margin:6px 0}figcaption{font-size:12px;color:#555}
details summary{cursor:pointer;color:#3d4556}
.meta{color:#5c677d;font-size:12px}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _anchor(scenario: str, column: str | None = None) -> str:
    """The id of a scenario's article, or of one column's part of it (a column id)."""
    base = "s-" + "".join(c if c.isalnum() else "-" for c in scenario)
    return (
        base if column is None else f"{base}--{''.join(c if c.isalnum() else '-' for c in column)}"
    )


def _verdict_class(run: dict) -> str:
    return "v-" + run["verdict"].lower()


def render(run: Run, comparisons=None) -> str:
    """The whole page for a run read back (chaos/gate/results_file.py)."""
    doc, records = run.doc, run.records
    meta = doc["run"]
    columns = aggregate.run_columns(meta, records)
    labels = {c.id: c.label for c in columns}
    matrix = aggregate.cells(records)
    jobs = _plot_jobs(records, columns)
    images = dict(zip(jobs, plots.render_many(list(jobs.values())), strict=False))
    body = [
        _header(meta),
        "<main>",
        _changes(records, columns, labels),
        _regressions(comparisons, meta, labels),
        _matrix(matrix, columns),
        _scenarios(records, matrix, columns, comparisons, run.directory, images),
        "</main>",
    ]
    title = f"grpc-chaos gate: {meta['verdict']} — {meta['counts_text']}"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body></html>\n"
    )


def _header(meta: dict) -> str:
    versions = meta.get("versions") or {}
    host = meta.get("host") or {}
    baseline = meta.get("baseline")
    compared = f" · compared with run {_e(baseline['run_id'])}" if baseline else ""
    interrupted = " · <b>interrupted</b>: what finished is shown" if meta.get("interrupted") else ""
    return (
        f'<header class="verdict {_verdict_class(meta)}">'
        f"<h1>{_e(meta['verdict'])} — {_e(meta['counts_text'])}</h1>"
        f"<p>Judged {_e(judged(meta, markdown=False))}</p>"
        f"<p>Run {_e(meta['id'])} · {_e(meta['started'])} → {_e(meta.get('ended') or '…')}"
        f" ({meta.get('duration_s', 0):.0f} s) · host {_e(host.get('name', '?'))}"
        f" (load {_e(' '.join(map(str, host.get('load_average', []))))}) · grpcio "
        f"{_e(versions.get('grpcio'))} · grpc-chaos {_e(versions.get('grpc-chaos'))}"
        f"{compared}{interrupted}</p></header>"
    )


def _changes(records: list[dict], columns: list[Column], labels: dict[str, str]) -> str:
    """ "What to change": by setting first (:func:`_by_setting`), then each failure (and
    each inconclusive scenario) with its whole advice, once per scenario, column and
    decisive check."""
    failed = [
        r
        for r in records
        if r["outcome"] in (aggregate.FAIL, aggregate.ERROR, aggregate.INCONCLUSIVE)
    ]
    if not failed:
        return ""
    seen, items = set(), []
    for record in failed:
        verdict = record.get("decisive")
        key = (
            record["scenario"],
            aggregate.column_of(record),
            None if verdict is None else verdict["name"],
        )
        if key in seen:  # the same failure in another repeat: once is enough here
            continue
        seen.add(key)
        advice = (verdict or {}).get("advice") or (
            "The runner stalled: rerun on a quieter machine."
            if record["outcome"] == aggregate.INCONCLUSIVE
            else "No setting is named for this failure; see its explanation below."
        )
        items.append(
            f'<div class="advice"><h3><a href="#{_anchor(record["scenario"], key[1])}">'
            f"{_e(record['scenario'])}</a> [{_e(labels.get(key[1], key[1]))}] "
            f'<span class="tag {_CLASS[record["outcome"]]}">{_e(record["outcome"].upper())}'
            f"</span> {_e(aggregate.reason_of(record))}</h3><pre>{_e(advice)}</pre></div>"
        )
    return (
        "<h2>What to change</h2>"
        + _by_setting(settings_view.by_column(records, columns), labels)
        + '<h3 id="each-failure">Each failure, with what answers it</h3>'
        + "".join(items)
    )


def _by_setting(changes: list[settings_view.Changes], labels: dict[str, str]) -> str:
    """Per column with failures: each setting once, ranked by the failures it answers,
    with what the advice says of it and those failures (each linked to its scenario's
    part for that column); then the failures that no setting answers."""
    parts = []
    for change in changes:
        label = labels.get(change.column, change.column)
        parts.append(
            f'<section class="by-setting" data-column="{_e(change.column)}">'
            f"<h3>By setting [{_e(label)}]</h3>"
            f'<p class="meta">{change.failures} failure(s) in this column. Each setting '
            f"once — those this profile leaves unset first, then the server's, then those "
            f"it already sets — ranked by how many failures it answers; a failure is under every "
            f'setting that answers it. Each failure\'s whole advice is <a href="#each-failure">'
            f"further down</a>.</p>"
        )
        for rank, setting in enumerate(change.settings, 1):
            plural = "s" if setting.count > 1 else ""
            parts.append(
                f'<div class="advice setting" data-setting="{_e(setting.name)}" '
                f'data-count="{setting.count}" data-status="{_e(setting.status)}"><h3>'
                f'{rank}. {_e(setting.name)} <span class="count">— {setting.count} '
                f'failure{plural}</span></h3><p class="status">{_e(setting.label)}</p>'
                f"<pre>{_e(setting.name)}: {_e(setting.says)}</pre>"
                f"{_failure_list(setting.failures, change)}</div>"
            )
        if change.unanswered:
            parts.append(
                f'<div class="advice setting unanswered" data-setting="" '
                f'data-count="{len(change.unanswered)}"><h3>{_e(settings_view.NO_SETTING)} '
                f'<span class="count">— {len(change.unanswered)}</span></h3>'
                f"{_failure_list(change.unanswered, change)}</div>"
            )
        parts.append("</section>")
    return "".join(parts)


def _failure_list(failures, change: settings_view.Changes) -> str:
    return (
        "<ul>"
        + "".join(
            f'<li><a href="#{_anchor(f.scenario, change.column)}">{_e(f.scenario)}</a> — '
            f"{_e(f.text)}{_e(f.repeats)}</li>"
            for f in failures
        )
        + "</ul>"
    )


def _regressions(comparisons, meta: dict, labels: dict[str, str]) -> str:
    baseline = meta.get("baseline")
    if not baseline:
        return ""
    regressed = [c for c in comparisons or [] if c.regressed]
    rows = "".join(
        f'<tr><td><a href="#{_anchor(c.figures.scenario, c.figures.column)}">'
        f"{_e(c.figures.scenario)}</a></td>"
        f"<td>{_e(labels.get(c.figures.column, c.figures.profile))}</td>"
        f'<td class="regressed">{_e(c.text())}</td><td>{_bound(c.figures)}</td></tr>'
        for c in regressed
    )
    table = (
        f"<table><tr><th>scenario</th><th>profile</th><th>figure (baseline → now, "
        f"medians)</th><th>bound</th></tr>{rows}</table>"
        if rows
        else "<p>No figure got worse beyond the tolerance.</p>"
    )
    return (
        f"<h2>Against baseline {_e(baseline['run_id'])}: {len(regressed)} figure(s) "
        f'regressed</h2><p class="meta">A figure regressed when its median got worse '
        f"than the baseline's by more than {baseline['tolerance']:.0%} (and more than "
        f"the noise floor of time figures), even within its bound.</p>{table}"
    )


def _bound(figures) -> str:
    return (
        ""
        if figures.bound is None
        else _e(f"{figures.comparison} {figures.bound:g} {figures.unit}")
    )


def _matrix(matrix: dict[tuple[str, str], Cell], columns: list[Column]) -> str:
    scenarios = sorted({s for s, _ in matrix})
    head = "".join(f"<th>{_e(c.label)}</th>" for c in columns)
    rows = []
    for scenario in scenarios:
        cells = []
        for column in columns:
            cell = matrix.get((scenario, column.id))
            if cell is None:
                cells.append('<td class="na">not run</td>')
                continue
            cells.append(
                f'<td class="{_CLASS.get(cell.outcome, "na")}"><a href="#'
                f'{_anchor(scenario, column.id)}">{_e(cell)}</a></td>'
            )
        rows.append(
            f'<tr><td><a href="#{_anchor(scenario)}">{_e(scenario)}</a></td>'
            + "".join(cells)
            + "</tr>"
        )
    several = len({c.client for c in columns}) > 1
    return (
        f"<h2>Scenarios × {'profiles and clients' if several else 'profiles'}</h2>"
        f"<table><tr><th>scenario</th>{head}</tr>" + "".join(rows) + "</table>"
    )


def _shown(records: list[dict]) -> dict:
    """The run of a scenario x column that its plot and explanation show: the first that
    did not pass, else the first."""
    return next((r for r in records if r["outcome"] != aggregate.PASS), records[0])


def _own(records: list[dict], scenario: str, column: str) -> list[dict]:
    return sorted(
        (r for r in records if r["scenario"] == scenario and aggregate.column_of(r) == column),
        key=lambda r: r.get("repeat", 1),
    )


def _plot_jobs(records: list[dict], columns: list[Column]) -> dict[tuple, plots.Job]:
    """(scenario, column id) -> what its plot is drawn from, for those with a history."""
    jobs = {}
    for scenario in sorted({r["scenario"] for r in records}):
        for column in columns:
            own = _own(records, scenario, column.id)
            shown = _shown(own) if own else None
            if (
                shown is None
                or not shown.get("artifacts")
                or shown["outcome"] in (aggregate.NOT_APPLICABLE, aggregate.SKIPPED)
            ):  # nothing was judged
                continue
            history = Path(shown["artifacts"]) / "history.jsonl"
            if history.is_file():  # named by the headings above it: no title drawn
                jobs[(scenario, column.id)] = plots.Job(history, aggregate.decisive(shown), "")
    return jobs


def _scenarios(records, matrix, columns: list[Column], comparisons, directory: Path, images) -> str:
    by_scenario: dict[str, list[dict]] = {}
    for record in records:
        by_scenario.setdefault(record["scenario"], []).append(record)
    compared = {c.figures.key: c for c in comparisons or []}

    def rank(scenario: str) -> int:
        return min(
            _ORDER.get(matrix[(scenario, c.id)].outcome, 9)
            for c in columns
            if (scenario, c.id) in matrix
        )

    parts = ["<h2>Every scenario</h2>"]
    for scenario in sorted(by_scenario, key=lambda s: (rank(s), s)):
        found = by_scenario[scenario]
        first = found[0]
        parts.append(
            f'<article id="{_anchor(scenario)}"><h3>{_e(scenario)}</h3>'
            f'<p class="words">{_e(first.get("property") or "")}</p>'
            f'<p class="words">{_e(first.get("bound") or "")}</p>'
        )
        for column in columns:
            own = _own(found, scenario, column.id)
            if own:
                parts.append(
                    _column_part(
                        scenario,
                        column,
                        own,
                        matrix[(scenario, column.id)],
                        compared,
                        directory,
                        images.get((scenario, column.id)),
                    )
                )
        parts.append("</article>")
    return "".join(parts)


def _column_part(
    scenario, column: Column, records, cell: Cell, compared, directory, plot: plots.Plot | None
) -> str:
    """One column's part of a scenario's article: its heading names the profile (and with
    several clients the client's implementation and version) of every verdict under it."""
    shown = _shown(records)
    parts = [
        f'<h3 id="{_anchor(scenario, column.id)}">[{_e(column.label)}] '
        f'<span class="tag {_CLASS.get(cell.outcome, "na")}">{_e(cell.label)}</span> '
        f"{_e(cell.reason)}</h3>"
    ]
    table = _verdict_table(records, compared)
    if table:
        parts.append(table)
    if plot is not None:
        repeat = f"repeat {shown['repeat']}; " if len(records) > 1 else ""
        parts.append(
            f'<figure><img class="plot" alt="RPC rate, errors and latency over time '
            f'for {_e(scenario)} [{_e(column.label)}]" src="data:image/png;base64,'
            f'{base64.b64encode(plot.png).decode()}"><figcaption>{_e(repeat)}time '
            f"axis: {_e(plot.time_axis)}</figcaption></figure>"
        )
    explanation = "\n\n".join(
        f"{v['name']}: {v['explanation']}"
        for v in shown.get("verdicts") or []
        if v["outcome"] != "pass"
    ) or "\n\n".join(f"{v['name']}: {v['explanation']}" for v in shown.get("verdicts") or [])
    if explanation:
        parts.append(
            f"<details><summary>the verdict explained (timeline around the "
            f"decisive point)</summary><pre>{_e(explanation)}</pre></details>"
        )
    if shown.get("artifacts"):
        relative = os.path.relpath(shown["artifacts"], directory)
        parts.append(
            f'<p class="meta">artifacts: <a href="{_e(relative)}/history.jsonl">'
            f"{_e(relative)}/history.jsonl</a> (RPCs and faults, monotonic and UTC "
            f"wall-clock times), verdicts.json, summary.json</p>"
        )
    return "".join(parts)


def _verdict_table(records: list[dict], compared) -> str:
    """Each check's figures over the repeats, with the baseline's when there is one."""
    figures = aggregate.figures(records)
    if not figures:
        return ""
    against = bool(compared)
    rows = []
    for key, f in figures.items():
        values = ", ".join("n/a" if v is None else f"{v:.4g}" for v in f.values)
        cells = [_e(f.check), f"{_e(values)} {_e(f.unit)}", _bound(f), f"{f.passed}/{f.runs}"]
        if against:
            comparison = compared.get(key)
            cells.append(
                ""
                if comparison is None or comparison.before is None
                else f'<span class="{"regressed" if comparison.regressed else ""}">'
                f"{_e(comparison.status)} (baseline {comparison.before:.4g})</span>"
            )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["check", "figure", "bound", "passed"] + (["against baseline"] if against else [])
    return (
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def write(run: Run, comparisons=None) -> Path:
    """Write the run's report.html; without ``comparisons``, those the run recorded."""
    if comparisons is None:
        comparisons = baseline.recorded(run)
    path = run.directory / NAME
    path.write_text(render(run, comparisons), encoding="utf-8")
    return path
