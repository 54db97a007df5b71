"""The audit's outputs: the terminal table, audit.json (schema in docs/audit.md) and
audit.html (self-contained, with the gate report's stylesheet)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from chaos.audit.classify import Finding
from chaos.gate.report_html import CSS

KIND = "grpc-chaos audit"
VERSION = 1
JSON_NAME = "audit.json"
HTML_NAME = "audit.html"
# Each verdict's cell class in the gate's stylesheet.
_CLASS = {
    "needed": "pass",
    "not covered": "na",
    "no effect seen": "fail",
    "inconclusive": "inconclusive",
}


def table(findings: Sequence[Finding]) -> list[str]:
    """One line per setting: name, verdict, why (and the known case)."""
    width = max([len(f.setting.label) for f in findings] + [7])
    lines = [f"{'setting':<{width}}  {'verdict':<14}  why"]
    for f in findings:
        why = f.why + (f"; {f.known}" if f.known else "")
        lines.append(f"{f.setting.label:<{width}}  {f.verdict:<14}  {why}")
    return lines


def document(meta: dict, findings: Sequence[Finding]) -> dict:
    counts = {v: sum(f.verdict == v for f in findings) for v in _CLASS}
    return {
        "kind": KIND,
        "version": VERSION,
        **meta,
        "counts": counts,
        "settings": [f.to_dict() for f in findings],
    }


def write(directory: Path, doc: dict) -> tuple[Path, Path]:
    """audit.json and audit.html in ``directory``."""
    data = directory / JSON_NAME
    data.write_text(json.dumps(doc, indent=2) + "\n")
    page = directory / HTML_NAME
    page.write_text(render(doc))
    return data, page


def _e(value) -> str:
    return html.escape(str(value))


def render(doc: dict) -> str:
    """The page: the verdict header, then one row per setting, then each one's scenarios."""
    verdict = doc["verdict"]
    header = {"pass": "v-pass", "no effect": "v-fail", "inconclusive": "v-inconclusive"}.get(
        verdict, "v-interrupted"
    )
    counts = ", ".join(f"{n} {v}" for v, n in doc["counts"].items() if n)
    rows = "".join(
        f"<tr><td><code>{_e(s['label'])}</code></td>"
        f"<td class='{_CLASS[s['verdict']]}'>{_e(s['verdict'])}</td><td>{_e(s['why'])}"
        + (f"<br><em>{_e(s['known'])}</em>" if s["known"] else "")
        + f"</td><td>{_e(s['mutation'])}</td></tr>"
        for s in doc["settings"]
    )
    details = "".join(
        f"<h3><code>{_e(s['label'])}</code> — {_e(s['verdict'])}</h3><ul>"
        + "".join(
            f"<li><code>{_e(r['scenario'])}</code>: baseline "
            f"{_e((r['baseline'] or {}).get('outcome', 'not run'))}, without it "
            f"{_e((r['mutated'] or {}).get('outcome', 'not run'))}"
            + (f" — {_e(r['mutated']['figure'])}" if (r["mutated"] or {}).get("check") else "")
            + "</li>"
            for r in s["scenarios"]
        )
        + "</ul>"
        for s in doc["settings"]
        if s["scenarios"]
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>grpc-chaos audit — {_e(doc['profile']['name'])}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header class='verdict {header}'><h1>Audit of {_e(doc['profile']['name'])}: "
        f"{_e(verdict)}</h1><p>{_e(counts)} — client {_e(doc['client']['name'])}, "
        f"{_e(doc['selection'])}</p></header><main>"
        "<h2>Settings</h2><table><tr><th>setting</th><th>verdict</th><th>why</th>"
        f"<th>mutation</th></tr>{rows}</table><h2>Scenarios per setting</h2>{details}"
        "</main></body></html>\n"
    )
