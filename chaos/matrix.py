"""The resilience matrix: every scenario under every profile, pass or fail, with the reason.

    python -m chaos.matrix [--profiles pick_first,naive,recommended,outlier]
                           [--readme README.md] [-- extra pytest args]

Runs ``pytest scenarios/ --profile P`` once per profile (each in its own process, with
--junitxml), then prints a Markdown table — one row per scenario, one column per profile,
each cell ``pass``, ``FAIL: <the verdict that failed>`` or ``skip: <why>`` — and, with
``--readme``, replaces the table between the matrix markers in that file. The table is
generated, never edited by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from chaos import profiles

DEFAULT_PROFILES = ("pick_first", "naive", "recommended", "outlier")
BEGIN = "<!-- resilience-matrix:begin -->"
END = "<!-- resilience-matrix:end -->"
_REASON_CHARS = 110


@dataclass(frozen=True)
class Cell:
    outcome: str  # "pass", "FAIL", "skip"
    reason: str = ""

    def __str__(self) -> str:
        return self.outcome if not self.reason else f"{self.outcome}: {self.reason}"


def run_profile(profile: str, pytest_args: list[str], workdir: Path,
                paths: list[str] = ("scenarios/",)) -> dict[str, Cell]:
    """Run the scenarios under one profile; returns scenario id (module::name) -> cell."""
    junit = workdir / f"{Path(profile).stem}.xml"
    command = [sys.executable, "-m", "pytest", *paths, "--profile", profile, "-q",
               "-p", "no:cacheprovider", f"--junitxml={junit}",
               f"--chaos-artifacts={workdir / 'artifacts'}", *pytest_args]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    if not junit.exists():
        raise SystemExit(f"pytest under profile {profile} produced no report "
                         f"(exit {result.returncode}):\n{result.stdout[-2000:]}"
                         f"{result.stderr[-2000:]}")
    return parse_junit(junit)


def parse_junit(path: Path) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for case in ElementTree.parse(path).iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        cells[name] = _cell(case)
    return cells


def _cell(case) -> Cell:
    for tag, outcome in (("failure", "FAIL"), ("error", "FAIL"), ("skipped", "skip")):
        element = case.find(tag)
        if element is not None:
            return Cell(outcome, _reason(element.get("message") or element.text or ""))
    return Cell("pass")


def _reason(message: str) -> str:
    """The first informative line: the failed verdict's headline, or the error."""
    text = message.strip()
    for prefix in ("chaos.scenario.ScenarioFailed: ", "ScenarioFailed: "):
        text = text.replace(prefix, "")
    text = re.sub(r"^\[profile [^\]]+\]\s*", "", text)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = re.sub(r"^FAIL ", "", first)  # the cell already says FAIL
    first = first.replace("|", "/")
    return first if len(first) <= _REASON_CHARS else first[:_REASON_CHARS - 1] + "…"


def table(results: dict[str, dict[str, Cell]]) -> str:
    names = sorted({name for cells in results.values() for name in cells})
    header = "| scenario | " + " | ".join(results) + " |"
    rule = "|---|" + "---|" * len(results)
    rows = [f"| `{name}` | " + " | ".join(str(results[p].get(name, Cell("—")))
                                          for p in results) + " |" for name in names]
    return "\n".join([header, rule, *rows])


def update_readme(path: Path, text: str) -> None:
    content = path.read_text()
    if BEGIN not in content or END not in content:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers to put the matrix between")
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.matrix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", default=",".join(DEFAULT_PROFILES),
                        help="comma-separated profile names or paths")
    parser.add_argument("--readme", type=Path, help="write the table into this file")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    chosen = [p for p in args.profiles.split(",") if p]
    for name in chosen:
        profiles.load(name)  # fail now, with the profile error, not after a long run
    results: dict[str, dict[str, Cell]] = {}
    with tempfile.TemporaryDirectory(prefix="grpc-chaos-matrix-") as tmp:
        for name in chosen:
            print(f"running scenarios under profile {name} ...", file=sys.stderr, flush=True)
            results[profiles.load(name).name] = run_profile(name, args.pytest_args, Path(tmp))
    text = table(results)
    print(text)
    if args.readme:
        update_readme(args.readme, text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
