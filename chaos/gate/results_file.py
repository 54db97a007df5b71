"""results.json: a run directory's machine-readable verdict, in a versioned schema.

The schema is documented in docs/gate.md; in short::

    {"kind": "grpc-chaos run", "version": 1, "records_schema": 1,
     "run":     {id, started, ended, duration_s, interrupted, exit_code, verdict, counts,
                 host, versions, command, target, profiles [{name, source, sha256}],
                 clients [{name, given, implementation, version}],
                 requirements, selection, repeat, pytest_runs, baseline},
     "results": [one record per scenario x client x profile x repeat (chaos/run/results.py)
                 + "repeat", paths relative to the run directory],
     "matrix":  [{scenario, profile, client, column, outcome, label, reason, failed, runs}],
     "figures": [{scenario, profile, client, column, check, unit, bound, comparison, runs,
                  passed, values, min, median, max, baseline, status}],
     "what_to_change": [{profile, client, column, failures, settings [{name, says, count,
                         failures}], unanswered}] (chaos/gate/settings_view.py)}

``client`` in "matrix" and "figures" is ``{name, implementation, version}`` as the
records name it, ``column`` the heading the views give that column (chaos/gate/aggregate.py
Column). Both were added within version 1: a reader of version 1 that ignores them reads a
one-client run exactly as before. So was "what_to_change" (the failures by setting, per
column): a view of the records, never read back — a run written before it is shown by
setting all the same.

``version`` changes whenever a field changes meaning; :func:`read` refuses any other
version (and any other records schema) with a message naming both, so a baseline is
never compared field by field with something it does not mean.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from chaos.gate import aggregate, settings_view
from chaos.outcomes import UsageError
from chaos.run import results as records_module

KIND = "grpc-chaos run"
VERSION = 1
NAME = "results.json"


def versions() -> dict:
    found: dict[str, str | None] = {}
    for package in ("grpc-chaos", "grpcio", "pytest"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def document(run: dict, records: list[dict], comparisons: list | None = None) -> dict:
    """The whole results.json from the run's metadata and its records."""
    matrix = aggregate.cells(records)
    compared = {c.figures.key: c for c in comparisons or []}
    columns = {c.id: c for c in aggregate.run_columns(run, records)}
    clients = {c.client: aggregate.client_info(records, c.client) for c in columns.values()}
    return {
        "kind": KIND,
        "version": VERSION,
        "records_schema": records_module.SCHEMA,
        "run": run,
        "results": records,
        "matrix": [
            {
                "scenario": s,
                "profile": columns[column].profile,
                "client": clients[columns[column].client],
                "column": columns[column].label,
                "outcome": c.outcome,
                "label": c.label,
                "reason": c.reason,
                "failed": c.failed,
                "runs": c.runs,
            }
            for (s, column), c in matrix.items()
        ],
        "figures": [
            _figure(f, compared.get(f.key), clients[f.client], columns[f.column].label)
            for f in aggregate.figures(records).values()
        ],
        "what_to_change": [
            change.to_dict(
                columns[change.column].profile,
                clients[columns[change.column].client],
                columns[change.column].label,
            )
            for change in settings_view.by_column(records, list(columns.values()))
        ],
    }


def _figure(figures: aggregate.Figures, comparison, client: dict, column: str) -> dict:
    measured = figures.measured
    return {
        "scenario": figures.scenario,
        "profile": figures.profile,
        "client": client,
        "column": column,
        "check": figures.check,
        "unit": figures.unit,
        "bound": figures.bound,
        "comparison": figures.comparison,
        "runs": figures.runs,
        "passed": figures.passed,
        "values": list(figures.values),
        "min": min(measured) if measured else None,
        "median": figures.median,
        "max": max(measured) if measured else None,
        "baseline": None if comparison is None else comparison.before,
        "status": None if comparison is None else comparison.status,
    }


def write(directory: Path, doc: dict) -> Path:
    """Write results.json atomically (a reader never sees half a file)."""
    path = directory / NAME
    partial = directory / f".{NAME}.partial"
    partial.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(partial, path)
    return path


@dataclass(frozen=True)
class Run:
    """A run directory read back: its results.json and where it lies."""

    directory: Path
    doc: dict

    @property
    def records(self) -> list[dict]:
        """The run's records with their artifact paths made absolute again."""
        found = []
        for record in self.doc.get("results") or []:
            record = dict(record)
            if record.get("artifacts"):
                record["artifacts"] = str(self.directory / record["artifacts"])
            found.append(record)
        return found


def read(path: str | os.PathLike, what: str = "run") -> Run:
    """A results.json (or the run directory holding one), refusing another schema.
    ``what`` names it in errors ("baseline", "run")."""
    path = Path(path)
    file = path / NAME if path.is_dir() else path
    if not file.is_file():
        raise UsageError(
            f"{what} {path}: no {NAME} there (give a run directory made by "
            f"grpc-chaos gate, its {NAME}, or 'latest')"
        )
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} {file}: not a readable {NAME}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise UsageError(f'{what} {file}: not a grpc-chaos {NAME} (no "kind": "{KIND}")')
    if doc.get("version") != VERSION or doc.get("records_schema") != records_module.SCHEMA:
        raise UsageError(
            f"{what} {file}: results schema version {doc.get('version')!r} (records "
            f"{doc.get('records_schema')!r}); this grpc-chaos reads version {VERSION} (records "
            f"{records_module.SCHEMA}) — make the {what} again with this grpc-chaos"
        )
    return Run(file.parent, doc)
