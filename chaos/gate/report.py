"""Figures of gate runs, per (profile, client, scenario, check, bound): a view of run
directories.

    python -m chaos.gate.report [RUN ...] [--output chaos-runs] [--profile P] [--html]

RUN is a run directory made by ``grpc-chaos gate``, its results.json, or ``latest`` (the
default: the newest run under --output). Several runs are read together (their repeats
add up). For every (profile, scenario, check, bound) it prints how often the check passed
and its figure over the runs (min / median / max) next to the bound; the same check under
two bounds is two lines, never merged, and so are two clients' (``gate --client``): the
first word of a line is the profile's name for the in-process client, ``PROFILE@CLIENT``
for any other. ``--html`` (re)writes each run's report.html.
Exits 0, or 4 when a run cannot be read (named).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos import rundir
from chaos.gate import aggregate, results_file
from chaos.gate.cli import DEFAULT_OUTPUT
from chaos.outcomes import Exit, UsageError


def table(figures: dict[tuple, aggregate.Figures]) -> str:
    lines = [
        f"{'profile':<12} {'scenario':<70} {'check':<16} {'passed':>7} "
        f"{'min':>9} {'median':>9} {'max':>9} {'bound':>10}"
    ]
    for f in sorted(
        figures.values(),
        key=lambda f: (f.column, f.scenario, f.check, f.bound is None, f.bound or 0),
    ):
        measured = f.measured
        stats = (
            (f"{min(measured):9.3g}", f"{f.median:9.3g}", f"{max(measured):9.3g}")
            if measured
            else ("n/a",) * 3
        )
        bound = "" if f.bound is None else f"{f.comparison} {f.bound:g}"
        lines.append(
            f"{f.column:<12} {f.scenario[:70]:<70} {f.check:<16} "
            f"{f'{f.passed}/{f.runs}':>7} {stats[0]:>9} {stats[1]:>9} {stats[2]:>9} "
            f"{bound:>7} {f.unit}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.gate.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs",
        nargs="*",
        default=[rundir.LATEST],
        metavar="RUN",
        help="run directories, results.json files or 'latest' (default)",
    )
    parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, help="where 'latest' is looked for (chaos-runs)"
    )
    parser.add_argument("--profile", help="only this profile")
    parser.add_argument("--html", action="store_true", help="(re)write each run's report.html")
    args = parser.parse_args(argv)
    try:
        runs = [results_file.read(rundir.resolve(spec, Path(args.output))) for spec in args.runs]
    except UsageError as exc:
        print(f"chaos.gate.report: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    records = [
        r
        for run in runs
        for r in run.records
        if args.profile is None or aggregate.profile_of(r) == args.profile
    ]
    print(table(aggregate.figures(records)))
    if args.html:
        from chaos.gate import report_html

        for run in runs:
            print(f"wrote {report_html.write(run)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
