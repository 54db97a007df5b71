"""The resilience matrix: every scenario under every profile, a view of gate run directories.

    python -m chaos.gate.matrix [--profiles pick_first,naive,recommended,outlier] [--repeat 3]
                           [--readme docs/matrix.md] [--output chaos-runs] [-- gate arguments]
    python -m chaos.gate.matrix --run chaos-runs/latest [--run DIR ...] [--readme docs/matrix.md]

Without ``--run`` it runs the gate (``grpc-chaos gate --profile ... --repeat 3``; one
run directory under --output) and shows that run; with ``--run`` it shows runs already
made (several are read together: their repeats add up). One row per scenario, one column
per profile (per profile and client for runs of several ``--client``); a cell comes from
chaos/gate/aggregate.py: ``pass``, ``FAIL: <the verdict that failed>``, ``INCONCLUSIVE:
...``, ``n/a: <why>``, ``skip: <why>``, and a cell whose repeats ended differently is
``flaky (k/N): <the failures>`` — never ``pass``. With ``--readme`` the table replaces
the one between the matrix markers in that file: it is generated, never edited by hand.
Exits 0 once the table is made (the gate's verdict is in its run directory), 4 on a
usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos import rundir
from chaos.gate import aggregate, results_file
from chaos.gate.cli import DEFAULT_OUTPUT, Gate
from chaos.gate.cli import parse as parse_gate
from chaos.gate.selection import CATALOGUE
from chaos.gate.summary_md import matrix_table
from chaos.outcomes import Exit, UsageError

DEFAULT_PROFILES = ("pick_first", "naive", "recommended", "outlier")
DEFAULT_REPEAT = 3
BEGIN = "<!-- resilience-matrix:begin -->"
END = "<!-- resilience-matrix:end -->"
# Scenario paths a user gives (scenarios/test_kill.py) are relative to the catalogue's parent.
ROOT = CATALOGUE.parent
# pytest options of the plugin that are the gate's own options
_GATE_OPTIONS = {
    "--chaos-target": "--target",
    "--chaos-requirements": "--requirements",
    "--chaos-client": "--client",
}


@dataclass(frozen=True)
class Cell:
    """A cell as the matrix shows it: ``outcome`` is its label ("pass", "FAIL",
    "INCONCLUSIVE", "n/a", "skip", "flaky (k/N)"), ``reason`` the failure or why not."""

    outcome: str
    reason: str = ""

    def __str__(self) -> str:
        return self.outcome if not self.reason else f"{self.outcome}: {self.reason}"


def run_profile(
    profile: str,
    pytest_args: list[str],
    workdir: Path,
    paths: Sequence[str] = (),
    runs: int = 1,
) -> dict[str, Cell]:
    """Run the gate under one profile (``runs`` repeats) on ``paths`` and ``pytest_args``
    (node ids relative to the project count as paths), into ``workdir``; returns scenario
    id (module::name) -> its cell. What tests/test_detection.py runs."""
    selected, options, extra = [], [], []
    for arg in [*paths, *pytest_args]:
        flag, _, value = arg.partition("=")
        if flag in _GATE_OPTIONS and value:  # the gate checks these itself, up front
            options += [_GATE_OPTIONS[flag], value]
        elif (ROOT / arg.split("::")[0]).exists() or Path(arg.split("::")[0]).exists():
            selected.append(arg if Path(arg.split("::")[0]).exists() else str(ROOT / arg))
        else:
            extra.append(arg)
    argv = [
        *selected,
        *options,
        "--profile",
        profile,
        "--repeat",
        str(runs),
        "--output",
        str(workdir),
        "--quiet",
        *(["--", *extra] if extra else []),
    ]
    run = results_file.read(_gate(argv))
    return {
        scenario: Cell(cell.label, cell.reason)
        for (scenario, _), cell in aggregate.cells(run.records).items()
    }


def of_runs(runs: list[results_file.Run]) -> str:
    """The Markdown table of one or more run directories read back: a column per profile
    (and per client, when they ran several: chaos/gate/aggregate.py columns())."""
    records = [record for run in runs for record in run.records]
    metas = [run.doc["run"] for run in runs]
    profiles = list(dict.fromkeys(p["name"] for m in metas for p in m["profiles"]))
    clients = list(dict.fromkeys(c["name"] for m in metas for c in m.get("clients") or []))
    return matrix_table(aggregate.cells(records), aggregate.columns(records, profiles, clients))


def update_readme(path: Path, text: str) -> None:
    content = path.read_text()
    if BEGIN not in content or END not in content:
        raise UsageError(f"{path} has no {BEGIN} ... {END} markers to put the matrix between")
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def _run_gate(profiles: str, repeat: int, output: str, extra: list[str]) -> Path:
    return _gate(
        ["--profile", profiles, "--repeat", str(repeat), "--output", output, "--quiet", *extra]
    )


def _gate(argv: list[str]) -> Path:
    """Run the gate in this process; its run directory. A Ctrl-C or SIGTERM stops the gate
    (which keeps what was written) and then this process too: the gate catches it to stop
    its pytest, so it is raised again here."""
    gate = Gate(parse_gate(argv), out=sys.stderr, command=argv)
    gate.run()
    if gate.interrupted:
        raise KeyboardInterrupt(f"the gate was interrupted (run {gate.directory})")
    return gate.directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.gate.matrix",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profiles",
        default=",".join(DEFAULT_PROFILES),
        help="comma-separated profile names or paths (when running)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help="runs per profile; a cell that differs between them is flaky (3)",
    )
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where the run goes")
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="DIR",
        help="show these run directories (or 'latest') instead of running",
    )
    parser.add_argument("--readme", type=Path, help="write the table into this file")
    parser.add_argument("gate_args", nargs="*", help="passed to the gate (after --)")
    args = parser.parse_args(argv)
    try:
        if args.readme is not None and not args.readme.is_file():
            raise UsageError(f"no file {args.readme} to write the matrix into")
        if args.run:
            directories = [rundir.resolve(spec, Path(args.output)) for spec in args.run]
        else:
            directories = [_run_gate(args.profiles, args.repeat, args.output, args.gate_args)]
        text = of_runs([results_file.read(d) for d in directories])
        if args.readme:
            update_readme(args.readme, text)
    except UsageError as exc:
        print(f"chaos.gate.matrix: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
