"""``grpc-chaos gate`` (also ``python -m chaos gate``): the pre-release resilience gate.

    grpc-chaos gate [PATH ...] [--profile P ...] [--target FILE] [--requirements FILE]
                    [--family F ...] [-m EXPR] [-k EXPR] [--repeat N]
                    [--output DIR] [--baseline PATH|latest] [--tolerance X]
                    [--fail-on-regression] [--quiet] [-- PYTEST ARGS]

Runs the scenarios (the shipped catalogue unless PATHs are given) through the pytest
plugin, once per profile and repeat, each in its own pytest process; prints one line per
finished scenario; writes a run directory (chaos/rundir.py) with results.json,
junit.xml, summary.md and report.html; compares with a baseline; and exits with a code CI
can act on (chaos/outcomes.py, Exit): 0 pass, 1 fail / flaky / regressed (with
--fail-on-regression), 2 inconclusive, 4 usage or configuration error, 130 interrupted.

    arguments --> checks (profiles, requirements, target, selection, baseline, output)
              --> for each repeat, for each profile: pytest child (pytest_run.py),
                  its records tailed into progress lines (progress.py)
              --> records --> aggregate.py --> results.json, junit.xml, summary.md,
                  report.html; baseline.py; latest link; exit code
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from chaos import profiles as profiles_module
from chaos import rundir
from chaos.gate import aggregate, junit, results_file, summary_md
from chaos.gate import baseline as baseline_module
from chaos.gate import selection as selection_module
from chaos.gate.progress import Progress
from chaos.gate.pytest_run import Options, PytestRun
from chaos.outcomes import Exit, UsageError, UsageParser
from chaos.run import results as records_module
from chaos.verdicts import requirements as requirements_module
from fleet.procs.lifeline import check_interrupt, interrupts

DEFAULT_OUTPUT = "chaos-runs"
POLL_S = 0.25  # how often progress is read from the results files (and the bar redrawn)
DEFAULT_LIMIT_MIN = 60  # per pytest run: the catalogue takes ~2 min; a hung run is stopped


def parser() -> argparse.ArgumentParser:
    p = UsageParser(
        prog="grpc-chaos gate",
        description=__doc__.split("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit codes: 0 pass, 1 fail (or flaky, or regressed with "
        "--fail-on-regression), 2 inconclusive, 4 usage or configuration "
        "error, 130 interrupted. docs/gate.md has more.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="scenario files or directories (default: the shipped catalogue)",
    )
    p.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        metavar="P",
        help="client profile: a shipped name (%s) or a JSON file; repeat or "
        "comma-separate for several (default: recommended)" % ", ".join(profiles_module.shipped()),
    )
    p.add_argument(
        "--target",
        metavar="FILE",
        help="a target file (your service) instead of the built-in Greeter fleet",
    )
    p.add_argument(
        "--requirements", metavar="FILE", help="your bounds (SLOs), TOML or JSON, over the defaults"
    )
    p.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="F",
        help="fault families to run (repeat or comma-separate): %s"
        % ", ".join(selection_module.FAMILIES),
    )
    p.add_argument("-m", dest="markers", metavar="EXPR", help="a pytest marker expression")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="a pytest -k expression")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each scenario N times; a cell that differs is flaky (1)",
    )
    p.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"where run directories go ({DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--baseline",
        metavar="PATH|latest",
        help="compare every figure with this run (a run directory, its "
        "results.json, or 'latest' under --output)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=baseline_module.DEFAULT_TOLERANCE,
        metavar="X",
        help="how much worse than the baseline a figure may get "
        "before it is marked regressed (0.5 = 50 %%)",
    )
    p.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="a regressed figure fails the gate (exit 1)",
    )
    p.add_argument("--fleet-size", type=int, metavar="N", help="backends per fleet (3)")
    p.add_argument("--toxiproxy-url", metavar="URL", help="an already running Toxiproxy")
    p.add_argument(
        "--reruns", type=int, metavar="N", help="reruns of a scenario that ends inconclusive (2)"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_LIMIT_MIN,
        metavar="MIN",
        help=f"minutes one pytest run may take before it is stopped ({DEFAULT_LIMIT_MIN})",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="plain progress lines, no bar")
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = parser().parse_args(argv)
    args.pytest_args = extra
    if args.repeat < 1:
        raise UsageError(f"--repeat {args.repeat}: give 1 or more")
    if args.tolerance < 0:
        raise UsageError(f"--tolerance {args.tolerance}: give 0 or more (0.5 = 50 %)")
    if args.time_limit <= 0:
        raise UsageError(f"--time-limit {args.time_limit}: give a number of minutes above 0")
    if args.fail_on_regression and not args.baseline:
        raise UsageError("--fail-on-regression needs --baseline PATH|latest to compare with")
    return args


def load_profiles(names: list[str]) -> list:
    """Every profile checked at once (one gRPC parser process), before anything runs."""
    given = [n.strip() for item in names for n in item.split(",") if n.strip()]
    read = []
    for name in dict.fromkeys(given):
        try:
            read.append(profiles_module.read(name))
        except profiles_module.ProfileError as exc:
            raise UsageError(str(exc)) from None
    found = []
    for (source, data), problems in zip(
        read, profiles_module.check_many([d for _, d in read]), strict=False
    ):
        errors = [str(p) for p in problems if p.is_error]
        if errors:
            raise UsageError(
                f"profile {source}: {len(errors)} problem(s): "
                + "; ".join(errors)
                + " (python -m chaos.profiles check "
                f"{source} explains each)"
            )
        found.append(profiles_module.parse(data, source=source, check=False))
    names_seen: dict[str, str] = {}
    for profile in found:
        if profile.name in names_seen:
            raise UsageError(
                f"two profiles are named {profile.name!r} ({names_seen[profile.name]}"
                f', {profile.source}): give each its own "name"'
            )
        names_seen[profile.name] = profile.source
    return found


def load_target(path: str | None):
    """The service under test as the plugin will find it: --target, else grpc-chaos.toml
    in the working directory, else the built-in Greeter (chaos/targets/)."""
    from chaos import targets as target

    found = path or target.find(Path.cwd())
    try:
        return target.load(found) if found else target.builtin()
    except target.TargetError as exc:
        raise UsageError("; ".join(str(exc).splitlines())) from None


def load_requirements(path: str | None, target):
    """--requirements, else the target file's [requirements], else the defaults."""
    if path is None:
        return target.requirements or requirements_module.DEFAULTS
    try:
        return requirements_module.load(path)
    except requirements_module.RequirementsError as exc:
        raise UsageError(str(exc)) from None


class Gate:
    """One gate run, from checked arguments to the exit code."""

    def __init__(self, args: argparse.Namespace, out=sys.stdout, command=()):
        self.args = args
        self.command = ["grpc-chaos", "gate", *command]
        self.out = out
        self.profiles = load_profiles(args.profiles or ["recommended"])
        self.target = load_target(args.target)
        self.requirements = load_requirements(args.requirements, self.target)
        self.selection = selection_module.build(
            args.paths, args.family, args.markers, args.keyword, args.pytest_args
        )
        self.output = Path(args.output)
        self.baseline = (
            results_file.read(rundir.resolve(args.baseline, self.output), "baseline")
            if args.baseline
            else None
        )
        self.options = Options(
            self.selection,
            str(Path(args.target).resolve()) if args.target else None,
            str(Path(args.requirements).resolve()) if args.requirements else None,
            args.fleet_size,
            args.toxiproxy_url,
            args.reruns,
        )
        self.runs: list[PytestRun] = []
        self.interrupted = False
        self.problems: list[str] = []

    # -------------------------------------------------------------------- running

    def run(self) -> int:
        self.directory = rundir.create(self.output)
        self.started = time.time()
        self.progress = Progress(self.out, bar=self.out.isatty() and not self.args.quiet)
        self.progress.say(
            f"grpc-chaos gate: run {self.directory}; profiles "
            f"{', '.join(p.name for p in self.profiles)}; "
            f"{self.selection.describe()}"
            + (f"; repeat {self.args.repeat}" if self.args.repeat > 1 else "")
        )
        # Ctrl-C and SIGTERM mean "stop and keep what was written", also where SIGINT came
        # in ignored (fleet.procs.lifeline.interrupts).
        with interrupts():
            try:
                for repeat in range(1, self.args.repeat + 1):
                    for profile in self.profiles:
                        self._one_pytest_run(profile, repeat)
            except KeyboardInterrupt:
                self.interrupted = True
                self.progress.say(
                    "grpc-chaos gate: interrupted; stopping pytest and keeping what was written"
                )
                for run in self.runs:
                    run.stop()
            except UsageError:
                for run in self.runs:
                    run.stop()
                shutil.rmtree(self.directory, ignore_errors=True)  # it judged nothing
                self.progress.say(f"grpc-chaos gate: removed {self.directory}: nothing was judged")
                raise
            finally:
                self.progress.close()
        return self._finish()

    def _one_pytest_run(self, profile, repeat: int) -> None:
        run = PytestRun(self.directory, str(Path(profile.source).resolve()), profile.name, repeat)
        self.runs.append(run)
        run.start(self.options)
        deadline = time.monotonic() + self.args.time_limit * 60
        tag = f" [{profile.name}{f' #{repeat}' if self.args.repeat > 1 else ''}]"
        expected = False
        while not run.wait(POLL_S):
            check_interrupt()  # a Ctrl-C dropped while pytest was being started
            for record in run.new_records():
                self.progress.finished(record, tag)
            planned = None if expected else run.planned()
            if planned is not None:
                self.progress.expect(len(planned) * self.args.repeat * len(self.profiles))
                expected = True
            self.progress.tick()
            if time.monotonic() > deadline:  # a hung run fails the gate; the others still run
                self.problems.append(
                    f"pytest for {profile.name} repeat {repeat} ran past "
                    f"--time-limit {self.args.time_limit:g} min and was "
                    f"stopped"
                )
                run.stop()
                return
        for record in run.new_records():
            self.progress.finished(record, tag)
        self._check_exit(run)

    def _check_exit(self, run: PytestRun) -> None:
        code = run.exit_code
        if code in (0, 1):
            return
        if code == 5:
            raise UsageError(f"no scenario matches the selection ({self.selection.describe()})")
        if code == 4:
            raise UsageError(run.usage_error())
        if code in (2, 3):  # not interrupted by the gate: a collection or internal error
            raise UsageError(
                f"pytest could not run the scenarios: {run.usage_error()} "
                f"(python -m pytest --collect-only shows it whole)"
            )
        self.problems.append(
            f"pytest for {run.profile_name} repeat {run.repeat} ended with "
            f"exit code {code}: see {run.file('log')}"
        )

    # -------------------------------------------------------------------- results

    def _records(self) -> tuple[list[dict], int]:
        """Every record of the run (artifact paths made relative to the run directory),
        and how many selected scenarios never reported (an interrupted run)."""
        records, not_run = [], 0
        for run in self.runs:
            path = run.file("jsonl")
            found = records_module.read(path) if path.is_file() else []
            planned = run.planned() or []
            if run.exit_code == 1 and all(r["outcome"] == "pass" for r in found):
                self.problems.append(
                    f"pytest under {run.profile_name} repeat {run.repeat} "
                    f"reported a failure outside any scenario: see "
                    f"{run.file('log').relative_to(self.directory)}"
                )
            not_run += max(0, len(planned) - len(found))
            for record in found:
                record["repeat"] = run.repeat
                if record.get("artifacts"):
                    record["artifacts"] = os.path.relpath(record["artifacts"], self.directory)
                records.append(record)
        return records, not_run

    def _finish(self) -> int:
        records, not_run = self._records()
        comparisons = None
        if self.baseline is not None:
            comparisons = baseline_module.compare(
                aggregate.figures(records),
                aggregate.figures(self.baseline.records),
                self.args.tolerance,
            )
        regressed = sum(c.regressed for c in comparisons or [])
        counts = aggregate.tally(aggregate.cells(records), regressed, not_run)
        code = aggregate.exit_code(counts, self.args.fail_on_regression, self.interrupted)
        if code in (Exit.PASS, Exit.INCONCLUSIVE) and self.problems:
            code = Exit.FAIL  # pytest said something failed: never a pass
        meta = self._meta(code, counts)
        doc = results_file.document(meta, records, comparisons)
        results_file.write(self.directory, doc)
        run = results_file.Run(self.directory, doc)
        junit.merge(self.runs, records, self._suite_properties(), self.directory / "junit.xml")
        text = summary_md.render(doc, run.records, comparisons)
        summary_md.write(self.directory, text)
        warning = summary_md.append_to_step_summary(text)
        from chaos.gate import report_html  # matplotlib: only once there is a report to make

        report = report_html.write(run, comparisons)
        rundir.point_latest(self.directory)
        self._say_end(meta, report, warning)
        return code

    def _meta(self, code: int, counts) -> dict:
        ended = time.time()
        return {
            "id": self.directory.name,
            "directory": str(self.directory.resolve()),
            "started": records_module._iso(self.started),
            "ended": records_module._iso(ended),
            "duration_s": round(ended - self.started, 3),
            "interrupted": self.interrupted,
            "exit_code": code,
            "verdict": aggregate.verdict(code),
            "counts": dict(counts.by_outcome, regressed=counts.regressed, not_run=counts.not_run),
            "counts_text": counts.text(),
            "problems": self.problems,
            "host": rundir.host(),
            "versions": results_file.versions(),
            "command": self.command,
            "target": {
                "name": self.target.name,
                "source": self.target.source,
                "builtin": self.target.builtin,
            },
            "profiles": [
                {"name": p.name, "source": p.source, "sha256": records_module.profile_digest(p)}
                for p in self.profiles
            ],
            "requirements": {
                "source": self.requirements.source,
                "values": self.requirements.to_dict(),
            },
            "selection": self.selection.to_dict(),
            "repeat": self.args.repeat,
            "pytest_runs": [r.to_dict() for r in self.runs],
            "baseline": None
            if self.baseline is None
            else {
                "path": str(self.baseline.directory),
                "run_id": self.baseline.doc["run"]["id"],
                "tolerance": self.args.tolerance,
                "fail_on_regression": self.args.fail_on_regression,
                "regressed": counts.regressed,
            },
        }

    def _suite_properties(self) -> dict:
        return {
            "chaos_requirements": self.requirements.source,
            "chaos_target": self.target.source,
            **{
                f"chaos_profile_sha256_{p.name}": records_module.profile_digest(p)
                for p in self.profiles
            },
        }

    def _say_end(self, meta: dict, report: Path, warning: str | None) -> None:
        lines = [f"grpc-chaos gate: {meta['verdict']} — {meta['counts_text']}"]
        lines += [f"  {problem}" for problem in self.problems]
        if warning:
            lines.append(f"  warning: {warning}")
        lines.append(f"  report: {report}")
        lines.append(
            f"  results: {self.directory / results_file.NAME} (junit.xml, summary.md beside it)"
        )
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return Gate(parse(argv), command=argv).run()
    except UsageError as exc:
        print(f"grpc-chaos gate: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:  # before any pytest started, or while writing the report
        print("grpc-chaos gate: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
