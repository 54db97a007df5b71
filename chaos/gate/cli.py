"""``grpc-chaos gate`` (also ``python -m chaos gate``): the pre-release resilience gate.

    grpc-chaos gate [PATH ...] [--profile P ...] [--client C ...] [--target FILE]
                    [--requirements FILE] [--family F ...] [-m EXPR] [-k EXPR] [--repeat N]
                    [--output DIR] [--baseline PATH|latest] [--tolerance X]
                    [--fail-on-regression] [--quiet] [-- PYTEST ARGS]

Runs the scenarios (the shipped catalogue unless PATHs are given) through the pytest
plugin, once per client, profile and repeat, each in its own pytest process; prints one
line per finished scenario; writes a run directory (chaos/rundir.py) with results.json,
junit.xml, summary.md and report.html; compares with a baseline; and exits with a code CI
can act on (chaos/outcomes.py, Exit): 0 pass, 1 fail / flaky / regressed (with
--fail-on-regression), 2 inconclusive, 4 usage or configuration error, 130 interrupted.

    arguments --> checks (clients, profiles, requirements, target, selection, baseline,
                  output)
              --> for each repeat, for each client, for each profile: pytest child
                  (pytest_run.py), its records tailed into progress lines (progress.py)
              --> records --> aggregate.py --> results.json, junit.xml, summary.md,
                  report.html; baseline.py; latest link; exit code

A client (--client) is the gRPC client under test, the plugin's --chaos-client: inprocess
(grpcio in the runner, the default), a shipped client driver (chaos/clients/builtin.py) or
a driver command of the team's own. The matrix has a column per (profile, client); with
one client it looks exactly as it did before clients existed.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos import profiles as profiles_module
from chaos import rundir
from chaos.gate import aggregate, junit, results_file, settings_view, summary_md
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
        "--client",
        action="append",
        dest="clients",
        metavar="C",
        help="the gRPC client under test: inprocess (grpcio in the runner), a shipped client "
        "driver (python, go, node) or a driver command; repeat or comma-separate for several, "
        "one column each (default: inprocess)",
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
    if any(arg.split("=")[0] == "--chaos-client" for arg in extra):
        raise UsageError("the gate sets each pytest run's --chaos-client: give --client C instead")
    return args


@dataclass(frozen=True)
class Client:
    """A client the gate runs: ``given`` is the --chaos-client value each of its pytest
    runs gets, ``name`` the name its records carry (a driver command's: its program's
    file name, as chaos/clients/builtin.py names it)."""

    name: str
    given: str


def load_clients(values: list[str]) -> list[Client]:
    """The --client values, checked before anything runs: each is ``inprocess``, a shipped
    driver's name — found installed (and built, where it is built: the pytest runs then
    find it ready), as the plugin will need it — or else a driver command (as the plugin
    takes it) whose program exists: a typo of a shipped name is a usage error, not a
    driver that fails in every scenario. Whether a driver speaks the protocol is only
    known when the plugin starts it: its scenarios then say so. Commas separate clients
    (like --profile), so a command cannot contain one (put it in a script)."""
    from chaos.clients import builtin  # grpc: only once there are clients to check
    from chaos.clients.driver import DriverError

    shipped = [builtin.INPROCESS, *builtin.NAMES]
    found: dict[str, Client] = {}
    for item in values:
        for given in (part.strip() for part in item.split(",")):
            if not given:
                raise UsageError(
                    f"--client {item!r}: an empty client; give {', '.join(shipped)} "
                    "or a client driver's command"
                )
            if given in shipped:
                client = Client(given, given)
                try:
                    builtin.resolve(given)  # None for inprocess; a shipped driver's checks
                except DriverError as exc:
                    raise UsageError(
                        f"--client {given}: " + "; ".join(str(exc).splitlines())
                    ) from None
            else:
                client = _driver_command(given, shipped)
            seen = found.setdefault(client.name, client)
            if seen.given != client.given:
                raise UsageError(
                    f"--client: two clients are named {client.name!r} ({seen.given!r}, "
                    f"{client.given!r}): a driver is named after its program's file name"
                )
    return list(found.values())


def _driver_command(given: str, shipped: list[str]) -> Client:
    from chaos.clients import builtin

    try:
        argv = shlex.split(given)
    except ValueError as exc:
        raise UsageError(f"--client {given!r}: not a command line ({exc})") from None
    if not shutil.which(argv[0]):
        near = difflib.get_close_matches(given, shipped, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise UsageError(
            f"--client {given!r}: not a shipped client ({', '.join(shipped)}) and no program "
            f"{argv[0]!r} to run as a client driver{hint}"
        )
    command = builtin.resolve(given)
    assert command is not None  # not inprocess: checked above
    return Client(command.name, given)


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
        self.clients = load_clients(args.clients or [aggregate.INPROCESS])
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
        clients = [c.name for c in self.clients]
        self.progress.say(
            f"grpc-chaos gate: run {self.directory}; profiles "
            f"{', '.join(p.name for p in self.profiles)}; "
            + (f"clients {', '.join(clients)}; " if clients != [aggregate.INPROCESS] else "")
            + f"{self.selection.describe()}"
            + (f"; repeat {self.args.repeat}" if self.args.repeat > 1 else "")
        )
        # Ctrl-C and SIGTERM mean "stop and keep what was written", also where SIGINT came
        # in ignored (fleet.procs.lifeline.interrupts).
        with interrupts():
            try:
                for repeat in range(1, self.args.repeat + 1):
                    for client in self.clients:
                        for profile in self.profiles:
                            self._one_pytest_run(client, profile, repeat)
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

    def _one_pytest_run(self, client: Client, profile, repeat: int) -> None:
        run = PytestRun(
            self.directory,
            str(Path(profile.source).resolve()),
            profile.name,
            repeat,
            client=client.given,
            client_name=client.name,
            per_client=len(self.clients) > 1,
        )
        self.runs.append(run)
        run.start(self.options)
        deadline = time.monotonic() + self.args.time_limit * 60
        expected = False
        while not run.wait(POLL_S):
            check_interrupt()  # a Ctrl-C dropped while pytest was being started
            for record in run.new_records():
                self.progress.finished(record, self._tag(run, record))
            planned = None if expected else run.planned()
            if planned is not None:
                self.progress.expect(
                    len(planned) * self.args.repeat * len(self.profiles) * len(self.clients)
                )
                expected = True
            self.progress.tick()
            if time.monotonic() > deadline:  # a hung run fails the gate; the others still run
                self.problems.append(
                    f"pytest for {run.describe()} ran past "
                    f"--time-limit {self.args.time_limit:g} min and was "
                    f"stopped"
                )
                run.stop()
                return
        for record in run.new_records():
            self.progress.finished(record, self._tag(run, record))
        self._check_exit(run)

    def _tag(self, run: PytestRun, record: dict) -> str:
        """Whose verdict a progress line is: " [naive]", " [naive #2]" with repeats, and
        with several clients the client as its record describes itself:
        " [naive · grpc-go 1.33.3 (go)]"."""
        column = run.profile_name
        if len(self.clients) > 1:
            name = aggregate.client_of(record)
            text = aggregate.client_text(record.get("client") or {"name": name})
            column += f" · {text}" + (f" ({name})" if text != name else "")
        return f" [{column}{f' #{run.repeat}' if self.args.repeat > 1 else ''}]"

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
            f"pytest for {run.describe()} ended with exit code {code}: see {run.file('log')}"
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
                    f"pytest under {run.describe()} "
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
        meta = self._meta(code, counts, records)
        doc = results_file.document(meta, records, comparisons)
        results_file.write(self.directory, doc)
        run = results_file.Run(self.directory, doc)
        junit.merge(
            self.runs,
            records,
            self._suite_properties(),
            self.directory / "junit.xml",
            aggregate.run_columns(meta, records),
        )
        text = summary_md.render(doc, run.records, comparisons)
        summary_md.write(self.directory, text)
        warning = summary_md.append_to_step_summary(text)
        from chaos.gate import report_html  # matplotlib: only once there is a report to make

        report = report_html.write(run, comparisons)
        rundir.point_latest(self.directory)
        columns = aggregate.run_columns(meta, records)
        changes = settings_view.terminal_lines(
            settings_view.by_column(records, columns), {c.id: c.label for c in columns}
        )
        self._say_end(meta, report, warning, changes)
        return code

    def _meta(self, code: int, counts, records: list[dict]) -> dict:
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
            # Each client as its records describe it (nulls where none did: a driver that
            # never started, a run interrupted before it), and the --client value given.
            "clients": [
                {**aggregate.client_info(records, c.name), "given": c.given} for c in self.clients
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

    def _say_end(
        self, meta: dict, report: Path, warning: str | None, changes: Sequence[str] = ()
    ) -> None:
        """The verdict, the problems, what to change (ranked settings per column with
        failures: chaos/gate/settings_view.py), then where the report and results are."""
        lines = [f"grpc-chaos gate: {meta['verdict']} — {meta['counts_text']}"]
        lines += [f"  {problem}" for problem in self.problems]
        lines += [f"  {line}" for line in changes]
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
