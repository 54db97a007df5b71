"""``grpc-chaos fuzz`` (``python -m chaos.fuzz``): search fault schedules for one that
breaks the client, shrink it, and replay it.

    python -m chaos.fuzz --budget 5m [--profile P] [--target FILE] [--seed N]
                         [--requirements FILE] [--fleet-size N] [--kinds K,K...]
                         [--max-faults N] [--output DIR] [--corpus DIR | --no-corpus]
                         [--no-database] [--toxiproxy-url URL] [--quiet]
    python -m chaos.fuzz --replay FILE [--times 10] [--profile P] ...

One fleet (proxied, DNS, the target's backends) is started for the whole campaign and
reset between examples. Progress: one line per example (examples run, failures found,
shrink steps, the smallest failing schedule so far). Results: a run directory
(chaos/fuzz/results.py), the smallest failing schedule saved to the corpus (a regression
scenario: scenarios/test_fuzz_corpus.py), and printed with the command that replays it
and a ready-to-paste pytest scenario.

Exit codes (as the gate's, chaos/gate/exits.py): 0 no violation found (a replay: every
replay held), 1 a violation found (a replay: it reproduced), 2 a replay that was only
inconclusive, 4 a usage or configuration error (one line that names it; nothing started),
130 interrupted (what was found so far is written).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import time
from pathlib import Path

from chaos import profiles as profiles_module
from chaos import rundir
from chaos.fuzz import kinds as kinds_module
from chaos.fuzz import render, results
from chaos.fuzz.campaign import Campaign, Finding, Result, database_key
from chaos.fuzz.executor import ERROR, FAIL, INCONCLUSIVE, Executor
from chaos.fuzz.schedule import Schedule, ScheduleError
from chaos.fuzz.strategy import MAX_FAULTS, schedules
from chaos.outcomes import Exit, UsageError, UsageParser
from chaos.toxiproxy_server.control import ServerStartError
from fleet.controller import FleetError
from fleet.procs.lifeline import interrupts

DEFAULT_OUTPUT = "chaos-fuzz"
DEFAULT_CORPUS = Path("scenarios") / "fuzz_corpus"
DEFAULT_TIMES = 10
MIN_FLEET, MAX_FLEET = 2, 200  # a failover needs a survivor (as chaos/run/plugin.py)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """Seconds from "90", "90s", "5m", "1.5h"; UsageError for anything else, or for 0."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match:
        raise UsageError(f"--budget {text}: not a time; give e.g. 30s, 5m or 1h")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise UsageError(f"--budget {text}: give a time above 0, e.g. 30s, 5m or 1h")
    return seconds


def parser(prog: str = "python -m chaos.fuzz") -> argparse.ArgumentParser:
    p = UsageParser(
        prog=prog,
        description="Search fault schedules for one that breaks the "
        "client, shrink it to the smallest, replay it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit codes: 0 no violation (replay: every run held), 1 a violation "
        "(replay: reproduced), 2 a replay only inconclusive, 4 usage error, "
        "130 interrupted. docs/fuzzing.md explains the oracle.",
    )
    p.add_argument("--budget", help="how long to search (and shrink), e.g. 90s, 5m, 1h")
    p.add_argument("--replay", metavar="FILE", help="replay a saved schedule instead")
    p.add_argument(
        "--times",
        type=int,
        default=DEFAULT_TIMES,
        help=f"replays of --replay FILE ({DEFAULT_TIMES})",
    )
    p.add_argument(
        "--profile",
        metavar="P",
        help="client profile: a shipped name (%s) or a "
        "JSON file (default: recommended; a replay: the profile the schedule "
        "failed under)" % ", ".join(profiles_module.shipped()),
    )
    p.add_argument(
        "--target",
        metavar="FILE",
        help="a target file (your service) instead of the built-in Greeter",
    )
    p.add_argument(
        "--client",
        metavar="NAME|COMMAND",
        help="the client under test: inprocess (default), a shipped driver (python, go, "
        "node) or your driver's command (docs/clients.md); default: the target's [client]",
    )
    p.add_argument("--requirements", metavar="FILE", help="your bounds, TOML or JSON")
    p.add_argument("--seed", type=int, help="Hypothesis seed (printed when not given)")
    p.add_argument("--fleet-size", type=int, metavar="N", help="backends (3)")
    p.add_argument(
        "--kinds",
        metavar="K,K",
        help="fault kinds to draw from (default: every "
        "kind the fleet offers): " + ", ".join(kinds_module.REGISTRY),
    )
    p.add_argument(
        "--max-faults",
        type=int,
        default=MAX_FAULTS,
        metavar="N",
        help=f"faults per schedule at most ({MAX_FAULTS})",
    )
    p.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"where run directories go ({DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--corpus",
        metavar="DIR",
        help=f"save the smallest failing schedule here (default: {DEFAULT_CORPUS} when it exists)",
    )
    p.add_argument("--no-corpus", action="store_true", help="save no schedule to a corpus")
    p.add_argument(
        "--no-database",
        action="store_true",
        help="no Hypothesis example database (a search from scratch)",
    )
    p.add_argument("--toxiproxy-url", metavar="URL", help="an already running Toxiproxy")
    p.add_argument("--quiet", "-q", action="store_true", help="no line per example")
    return p


def parse(argv: list[str], prog: str = "python -m chaos.fuzz") -> argparse.Namespace:
    args = parser(prog).parse_args(argv)
    if args.replay is None and args.budget is None:
        raise UsageError("give --budget (e.g. --budget 5m) to search, or --replay FILE")
    if args.replay is not None and args.budget is not None:
        raise UsageError("--budget searches and --replay replays: give one of them")
    args.budget_s = parse_budget(args.budget) if args.budget is not None else None
    if args.times < 1:
        raise UsageError(f"--times {args.times}: give 1 or more")
    if args.max_faults < 1:
        raise UsageError(f"--max-faults {args.max_faults}: give 1 or more")
    if args.fleet_size is not None and not MIN_FLEET <= args.fleet_size <= MAX_FLEET:
        raise UsageError(f"--fleet-size {args.fleet_size} is not within {MIN_FLEET}..{MAX_FLEET}")
    args.schedule = None
    if args.replay is not None:
        try:
            args.schedule = Schedule.read(args.replay)
        except ScheduleError as exc:
            raise UsageError(str(exc)) from None
    args.kind_names = None
    if args.kinds:
        names = [n.strip() for n in args.kinds.split(",") if n.strip()]
        try:
            args.kind_names = tuple(kinds_module.get(n).name for n in names)
        except kinds_module.UnknownKind as exc:
            raise UsageError(f"--kinds: {exc}") from None
        if not args.kind_names:
            raise UsageError("--kinds: name at least one fault kind")
    return args


class Setup:
    """Everything checked before a process starts: profile, target, requirements."""

    def __init__(self, args: argparse.Namespace):
        recorded = args.schedule.found.get("profile") if args.schedule is not None else None
        self.profile_spec = args.profile or recorded or "recommended"
        try:
            self.profile = profiles_module.load(self.profile_spec)
        except profiles_module.ProfileError as exc:
            raise UsageError(str(exc)) from None
        from chaos.gate import cli as gate_cli  # the same loading rules as the gate

        try:
            self.target = gate_cli.load_target(args.target)
            self.requirements = gate_cli.load_requirements(args.requirements, self.target)
        except UsageError as exc:
            raise UsageError(str(exc)) from None
        from chaos.clients import builtin
        from chaos.clients.driver import DriverError

        try:
            self.client = builtin.resolve(getattr(args, "client", None), self.target)
        except DriverError as exc:
            raise UsageError(str(exc)) from None
        planned = args.schedule.fleet_size if args.schedule is not None else 3
        self.size = args.fleet_size or planned
        if args.schedule is not None and args.schedule.fleet_size > self.size:
            raise UsageError(
                f"the schedule is written for {args.schedule.fleet_size} backends; "
                f"--fleet-size {self.size} is too small"
            )
        # What the fleet this command starts offers faults: always proxied, with DNS, local
        # processes and HTTP/2 points (started only when a kind drawn needs them); the
        # Control service when the target serves it.
        offered = {kinds_module.PROCESS, kinds_module.DNS, kinds_module.PROXY, kinds_module.HTTP2}
        if self.target.builtin or self.target.server.control:
            offered.add(kinds_module.CONTROL)
        self.kinds = kinds_module.available(offered, args.kind_names)
        if not self.kinds:
            raise UsageError(
                f"--kinds {args.kinds}: none of them can run on this target (it "
                f"lacks the Control service: {self.target.missing('control')})"
            )
        needed = (
            set()
            if args.schedule is None
            else {need for f in args.schedule.faults for need in kinds_module.get(f.kind).needs}
        )
        if needed - offered:
            raise UsageError(
                f"the schedule needs {', '.join(sorted(needed - offered))}, which "
                f"this target does not offer: {self.target.missing('control')}"
            )
        self.http2 = kinds_module.HTTP2 in needed or any(
            kinds_module.HTTP2 in k.needs for k in self.kinds
        )


class Rig:
    """The stall monitor, Toxiproxy and the fleet, for the whole command; stopped on exit."""

    def __init__(self, setup: Setup, toxiproxy_url: str | None):
        self.setup = setup
        self.url = toxiproxy_url

    def __enter__(self):
        import tempfile

        from chaos.clients.driver import Driver
        from chaos.observe.proxy_lag import LagLog
        from chaos.observe.starvation import monitor
        from chaos.toxiproxy_server.control import ToxiproxyServer
        from fleet.controller import Fleet

        # The runner's stalls, the CPU waits of the fleet, the proxy and the client driver,
        # and the proxy's event-loop lag (a verdict depends on each of them getting a CPU:
        # chaos/verdicts/judge.py).
        self.stalls = monitor()
        from fleet.procs import reaper

        self.scratch = tempfile.TemporaryDirectory(prefix="grpc-chaos-fuzz-")
        reaper.register_path(self.scratch.name)  # removed even if this process is killed
        self.toxiproxy = ToxiproxyServer("url" if self.url else None, url=self.url)
        self.lag = None
        self.driver = None
        lag_path = Path(self.scratch.name) / "lag.log"
        if self.toxiproxy.kind == "embedded":
            self.toxiproxy.args += ("--lag-log", str(lag_path))
        try:
            self.toxiproxy.start()
            if self.toxiproxy.pid:
                who = f"toxiproxy (pid {self.toxiproxy.pid})"
                self.stalls.watch(who, self.toxiproxy.pid)
                self.lag = LagLog(lag_path, f"{who} event loop")
                self.stalls.add(self.lag)
            command = self.setup.client
            if command is not None:
                self.driver = Driver(
                    command.argv, command.name, env=command.env, cwd=command.cwd
                ).start()
                assert self.driver.process is not None
                self.stalls.watch(
                    f"client driver {command.name} (pid {self.driver.process.pid})",
                    self.driver.process.pid,
                )
            self.fleet = Fleet(
                self.setup.size,
                proxies=self.toxiproxy.control(),
                service=self.setup.target,
                http2=self.setup.http2,
            ).start()
        except BaseException:
            self._stop_rest()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.fleet.close()
        finally:
            self._stop_rest()

    def _stop_rest(self) -> None:
        if self.driver is not None and self.driver.process is not None:
            self.stalls.unwatch(self.driver.process.pid)
        if self.driver is not None:
            self.driver.close()
        if self.toxiproxy.pid:
            self.stalls.unwatch(self.toxiproxy.pid)
        if self.lag is not None:
            self.stalls.remove(self.lag)
        self.toxiproxy.stop()
        from fleet.procs import reaper

        self.scratch.cleanup()
        reaper.unregister_path(self.scratch.name)


class Command:
    """One fuzz or replay command, from checked arguments to its exit code."""

    def __init__(self, args: argparse.Namespace, out=None, argv=()):
        self.args = args
        self.out = out or sys.stdout
        self.argv = list(argv)
        self.setup = Setup(args)
        self.log: list[str] = []

    def say(self, line: str, always: bool = False) -> None:
        self.log.append(line)
        if always or not self.args.quiet:
            self.out.write(line + "\n")
            self.out.flush()

    def run(self) -> int:
        try:
            directory = _create_run_directory(Path(self.args.output))
        except UsageError as exc:
            raise UsageError(str(exc)) from None
        # Ctrl-C and SIGTERM stop the campaign (exit 130), also where SIGINT came in ignored
        # (nohup, a background job): fleet.procs.lifeline.interrupts.
        try:
            with interrupts():
                if self.args.replay is not None:
                    return self._replay(directory)
                return self._fuzz(directory)
        except (FleetError, ServerStartError) as exc:
            shutil.rmtree(directory, ignore_errors=True)  # nothing was judged
            raise UsageError(f"the fleet did not start: {' '.join(str(exc).split())}") from None
        finally:
            if directory.exists():
                (directory / "progress.log").write_text("\n".join(self.log) + "\n")

    # ------------------------------------------------------------------ search

    def _fuzz(self, directory: Path) -> int:
        from chaos.run import preflight

        setup, args = self.setup, self.args
        started, load_start = time.time(), rundir.load_average()
        self.say(
            f"grpc-chaos fuzz: run {directory}; profile {setup.profile.name}; budget "
            f"{args.budget_s:g} s; fleet of {setup.size}; load average {load_start}",
            always=True,
        )
        with Rig(setup, args.toxiproxy_url) as side:
            check = preflight.run(
                setup.profile,
                side.fleet,
                stalls=side.stalls,
                target=setup.target,
                client=side.driver,
            )
            if not check.passed:
                failed = Result(stopped="preflight", last_error=check.message)
                return self._report(directory, failed, started, load_start, [])
            assert check.shape is not None  # a preflight that passed observed the shape
            self.say(f"preflight: the client {check.shape.describe()}")
            kinds = setup.kinds
            executor = Executor(
                side.fleet,
                setup.profile,
                requirements=setup.requirements,
                stalls=side.stalls,
                spreads=check.shape.spreads,
                target=setup.target,
                client=side.driver,
            )
            key = database_key(
                setup.profile,
                setup.size,
                [k.name for k in kinds],
                args.max_faults,
                setup.target.name,
            )
            campaign = Campaign(
                executor,
                schedules(setup.size, kinds, args.max_faults),
                budget_s=args.budget_s,
                seed=args.seed,
                database=None if args.no_database else Path(args.output) / "examples",
                key=key,
                progress=self.say,
            )
            self.say(
                f"seed {campaign.seed} (rerun it with --seed {campaign.seed}); kinds: "
                f"{', '.join(k.name for k in kinds)}",
                always=True,
            )
            result = campaign.run()
        return self._report(directory, result, started, load_start, [k.name for k in kinds])

    def _report(self, directory: Path, result, started: float, load_start, kind_names) -> int:
        setup, args = self.setup, self.args
        if result.minimal is not None:
            found = {
                "profile": setup.profile_spec,
                "rule": result.rule,
                "seed": result.seed,
                "date": results.iso(time.time()),
            }
            result.minimal.schedule = result.minimal.schedule.with_found(**found)
            result.first.schedule = result.first.schedule.with_found(**found)
        extra = (["--target", args.target] if args.target else []) + (
            ["--requirements", args.requirements] if args.requirements else []
        )
        meta = {
            "command": [*render.PROGRAM, *self.argv],
            "started": results.iso(started),
            "ended": results.iso(time.time()),
            "budget_s": args.budget_s,
            "profile": {
                "name": setup.profile.name,
                "source": setup.profile_spec,
                "sha256": _digest(setup.profile),
            },
            "target": {"name": setup.target.name, "source": setup.target.source},
            "requirements": {
                "source": setup.requirements.source,
                "values": setup.requirements.to_dict(),
            },
            "fleet_size": setup.size,
            "kinds": kind_names,
            "max_faults": args.max_faults,
            "host": dict(rundir.host(), load_average=load_start),
            "load_average_end": rundir.load_average(),
            "replay_extra": extra,
        }
        results.write_run(directory, meta, result)
        corpus = self._save_to_corpus(result)
        _point_latest(directory)
        self.say(self._closing(directory, result, corpus, extra), always=True)
        if result.stopped == "interrupted":
            return Exit.INTERRUPTED
        if result.stopped == "broken":
            return Exit.USAGE
        return (
            Exit.FAIL if result.minimal is not None or result.stopped == "preflight" else Exit.PASS
        )

    def _closing(self, directory: Path, result, corpus: Path | None, extra) -> str:
        lines = [
            f"grpc-chaos fuzz: {results.verdict(result)}",
            f"  {result.examples} examples in {result.seconds:.0f} s "
            f"({result.examples_per_minute:.1f} a minute), failures {result.failures}, "
            f"shrink steps {result.shrink_steps}, inconclusive {result.inconclusive}, "
            f"errors {result.errors}; seed {result.seed}",
            f"  rules not judged (too little evidence; neither passed nor failed): "
            f"{results.not_judged_text(result)}",
        ]
        if result.minimal is not None:
            smallest = result.minimal
            lines += [
                f"  first failure after {result.first.at_s:.1f} s; the smallest schedule "
                f"after {smallest.at_s:.1f} s"
                + (
                    " (shrinking stopped by the budget: a smaller one may exist)"
                    if result.stopped == "budget"
                    else ""
                ),
                render.failure(smallest.schedule, smallest.run, f"  fails {result.rule}:"),
                "  replay it:",
                "    "
                + render.replay_command(
                    directory / "minimal.json", DEFAULT_TIMES, self.setup.profile_spec, extra
                ),
                f"  as a pytest scenario: {directory / 'scenario.py'}",
            ]
            if corpus is not None:
                lines.append(
                    f"  saved to the corpus: {corpus} (scenarios/test_fuzz_corpus.py "
                    f"runs it with the catalogue)"
                )
        for rule, finding in result.also.items():
            lines.append(f"  also seen failing {rule} (not shrunk): {finding.schedule.summary()}")
        lines.append(f"  results: {directory}")
        return "\n".join(lines)

    def _save_to_corpus(self, result) -> Path | None:
        if result.minimal is None or self.args.no_corpus:
            return None
        corpus = Path(self.args.corpus) if self.args.corpus else DEFAULT_CORPUS
        if not self.args.corpus and not corpus.is_dir():
            return None
        return save_to_corpus(corpus, result.minimal.schedule, result.rule, self.setup.profile.name)

    # ------------------------------------------------------------------ replay

    def _replay(self, directory: Path) -> int:
        from chaos.run import preflight

        setup, args, schedule = self.setup, self.args, self.args.schedule
        expected = schedule.found.get("rule")
        self.say(
            f"grpc-chaos fuzz: replaying {args.replay} {args.times} times under "
            f"{setup.profile.name}"
            + (f"; it failed {expected}" if expected else "")
            + f"; load average {rundir.load_average()}",
            always=True,
        )
        self.say(schedule.text(), always=True)
        outcomes: list[str] = []
        reruns = 0  # inconclusive runs that were run again
        with Rig(setup, args.toxiproxy_url) as side:
            check = preflight.run(
                setup.profile,
                side.fleet,
                stalls=side.stalls,
                target=setup.target,
                client=side.driver,
            )
            if not check.passed:
                self.say(f"FAIL before any fault — the preflight: {check.message}", always=True)
                return Exit.FAIL
            assert check.shape is not None  # a preflight that passed observed the shape
            executor = Executor(
                side.fleet,
                setup.profile,
                requirements=setup.requirements,
                stalls=side.stalls,
                spreads=check.shape.spreads,
                target=setup.target,
                client=side.driver,
            )

            def rerun(run) -> None:  # called within the iteration: `number` is this replay's
                nonlocal reruns
                reruns += 1
                self._replayed(number, run, ": run again")

            for number in range(1, args.times + 1):
                # A replay counts judged runs: an inconclusive one (the runner stalled) is
                # run again, as a scenario is, and counts inconclusive only if it stays so.
                run = executor.judged(schedule, on_rerun=rerun)
                outcomes.append(self._replayed(number, run))
                if run.outcome == FAIL and not (directory / "artifacts" / "replay").exists():
                    results.write_artifacts(
                        directory / "artifacts" / "replay", Finding(schedule, run, 0.0)
                    )
        return self._replay_summary(directory, outcomes, expected, reruns)

    def _replayed(self, number: int, run, note: str = "") -> str:
        """Print one replayed run's line; its outcome as counted ("fail RULE", "pass", ...)."""
        what = run.outcome if run.outcome != FAIL else f"fail {run.rule}"
        expected = self.args.schedule.found.get("rule")
        if run.outcome == "pass" and expected in run.not_judged:
            # The rule the schedule failed had too little evidence this time: not a pass.
            what = f"not judged {expected}"
        unjudged = f" (not judged: {', '.join(run.not_judged)})" if run.not_judged else ""
        self.say(
            f"replay {number}/{self.args.times}: {what.upper()} ({run.seconds:.1f} s; "
            f"{run.ranks_text()}) {run.headline()}{unjudged}{note}",
            always=True,
        )
        return what

    def _replay_summary(
        self, directory: Path, outcomes: list[str], expected: str | None, reruns: int
    ) -> int:
        failed = [o for o in outcomes if o.startswith("fail")]
        same = [o for o in failed if expected is None or o == f"fail {expected}"]
        unjudged = sum(o.startswith("not judged") for o in outcomes)
        line = (
            f"grpc-chaos fuzz: reproduced {len(same)}/{len(outcomes)}"
            + (f" ({expected})" if expected else "")
            + (f"; other failures {len(failed) - len(same)}" if len(failed) > len(same) else "")
            + f"; passed {outcomes.count('pass')}, inconclusive {outcomes.count(INCONCLUSIVE)}"
            + (f", not judged {unjudged}" if unjudged else "")
            + f", errors {outcomes.count(ERROR)}"
            + (f" ({reruns} inconclusive run(s) run again)" if reruns else "")
            + f"; load average {rundir.load_average()}"
        )
        self.say(line + f"\n  results: {directory}", always=True)
        (directory / "replay.json").write_text(
            _json(
                {
                    "schema": results.FUZZ_SCHEMA,
                    "schedule": self.args.schedule.to_json(),
                    "profile": self.setup.profile_spec,
                    "expected": expected,
                    "outcomes": outcomes,
                    "reproduced": len(same),
                    "times": len(outcomes),
                    "reruns": reruns,
                }
            )
        )
        _point_latest(directory)
        if failed:
            return Exit.FAIL
        unknown = INCONCLUSIVE in outcomes or unjudged
        return Exit.INCONCLUSIVE if unknown and "pass" not in outcomes else Exit.PASS


def save_to_corpus(corpus: Path, schedule: Schedule, rule: str | None, profile: str) -> Path:
    """Save ``schedule`` in ``corpus`` (created if missing) unless the same schedule is there
    already (then that file); the name says the rule, the profile and the fault kinds."""
    corpus.mkdir(parents=True, exist_ok=True)
    for existing in sorted(corpus.glob("*.json")):
        try:
            if Schedule.read(existing).key() == schedule.key():
                return existing
        except ScheduleError:
            continue
    name = Path(profile).stem if profile.endswith(".json") else profile  # a file: its name
    stem = re.sub(
        r"[^A-Za-z0-9_.-]+",
        "-",
        render.test_name(schedule, rule).removeprefix("test_fuzz_") + f"-{name}",
    ).strip("-")
    path = corpus / f"{stem}.json"
    number = 2
    while path.exists():
        path = corpus / f"{stem}-{number}.json"
        number += 1
    return schedule.save(path)


def _create_run_directory(output: Path) -> Path:
    return rundir.create(output)


def _point_latest(directory: Path) -> None:
    # The run directory itself is written; only the convenience link may be missing.
    with contextlib.suppress(UsageError):
        rundir.point_latest(directory)


def _digest(profile) -> str:
    from chaos.run.results import profile_digest

    return profile_digest(profile)


def _json(data) -> str:
    import json

    return json.dumps(data, indent=2) + "\n"


def main(argv: list[str] | None = None, prog: str = "python -m chaos.fuzz") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return Command(parse(argv, prog), argv=argv).run()
    except UsageError as exc:
        print(f"grpc-chaos fuzz: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:
        print("grpc-chaos fuzz: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
