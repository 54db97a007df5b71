"""The resilience matrix: every scenario under every profile, pass or fail, with the reason.

    python -m chaos.matrix [--profiles pick_first,naive,recommended,outlier] [--runs 3]
                           [--readme README.md] [-- extra pytest args]

Runs ``pytest scenarios/ --chaos-profile P`` ``--runs`` times per profile (each in its own
process, with --junitxml), then prints a Markdown table — one row per scenario, one column
per profile. A cell that came out the same in every run is ``pass``, ``FAIL: <the verdict
that failed>``, ``INCONCLUSIVE: ...`` or ``n/a: <why>``; a cell that differed between runs
is ``flaky (k/N): <the failures>`` — never ``pass``. With ``--readme`` the table replaces
the one between the matrix markers in that file: it is generated, never edited by hand.
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
from chaos.outcomes import NOT_APPLICABLE

DEFAULT_PROFILES = ("pick_first", "naive", "recommended", "outlier")
BEGIN = "<!-- resilience-matrix:begin -->"
END = "<!-- resilience-matrix:end -->"
_REASON_CHARS = 110


@dataclass(frozen=True)
class Cell:
    outcome: str  # "pass", "FAIL", "INCONCLUSIVE", "n/a", "skip", "flaky (k/N)"
    reason: str = ""

    def __str__(self) -> str:
        return self.outcome if not self.reason else f"{self.outcome}: {self.reason}"


def combine(runs: list[Cell]) -> Cell:
    """One cell from the same scenario's cells over several runs: the cell itself when
    every run agreed, else ``flaky (k/N)`` with the distinct failures (k runs failed)."""
    if all(cell == runs[0] for cell in runs):
        return runs[0]
    failed = [cell for cell in runs if cell.outcome != "pass"]
    reasons = list(dict.fromkeys(str(cell) for cell in failed))
    return Cell(f"flaky ({len(failed)}/{len(runs)})", "; ".join(reasons))


def run_profile(profile: str, pytest_args: list[str], workdir: Path,
                paths: list[str] = ("scenarios/",), runs: int = 1) -> dict[str, Cell]:
    """Run the scenarios under one profile ``runs`` times; returns scenario id
    (module::name) -> the combined cell."""
    results = [_run_once(profile, pytest_args, workdir / f"run{n}", paths)
               for n in range(1, runs + 1)]
    names = {name for cells in results for name in cells}
    return {name: combine([cells.get(name, Cell("—")) for cells in results])
            for name in sorted(names)}


def _run_once(profile: str, pytest_args: list[str], workdir: Path,
              paths: list[str]) -> dict[str, Cell]:
    workdir.mkdir(parents=True, exist_ok=True)
    junit = workdir / f"{Path(profile).stem}.xml"
    command = [sys.executable, "-m", "pytest", *paths, "--chaos-profile", profile, "-q",
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
            reason = _reason(element.get("message") or element.text or "")
            if reason.startswith("INCONCLUSIVE "):
                return Cell("INCONCLUSIVE", reason.removeprefix("INCONCLUSIVE "))
            if reason.startswith(NOT_APPLICABLE):
                return Cell("n/a", reason.removeprefix(NOT_APPLICABLE))
            return Cell(outcome, reason)
    return Cell("pass")


def _reason(message: str) -> str:
    """The first informative line: the failed verdict's headline, or the error."""
    text = message.strip()
    # An error in a fixture (the preflight) comes as: failed on setup with "<error>"
    setup = re.match(r'failed on (setup|teardown) with "(.*)', text, re.S)
    if setup:
        text = setup.group(2)
    for prefix in ("chaos.outcomes.ScenarioFailed: ", "chaos.outcomes.ScenarioInconclusive: ",
                   "chaos.outcomes.PreflightFailed: ",
                   "chaos.scenario.ScenarioFailed: ", "ScenarioFailed: ", "Skipped: "):
        text = text.replace(prefix, "")
    text = re.sub(r"^(preflight: )?\[profile [^\]]+\]\s*", r"\1", text)
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
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per profile; a cell that differs between them is flaky (3)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: give at least 1")
    chosen = [p for p in args.profiles.split(",") if p]
    for name in chosen:
        profiles.load(name)  # fail now, with the profile error, not after a long run
    results: dict[str, dict[str, Cell]] = {}
    with tempfile.TemporaryDirectory(prefix="grpc-chaos-matrix-") as tmp:
        for name in chosen:
            print(f"running scenarios under profile {name} ...", file=sys.stderr, flush=True)
            results[profiles.load(name).name] = run_profile(
                name, args.pytest_args, Path(tmp) / profiles.load(name).name, runs=args.runs)
    text = table(results)
    print(text)
    if args.readme:
        update_readme(args.readme, text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
