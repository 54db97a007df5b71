"""``grpc-chaos audit``: which settings of a client profile carry its resilience.

    grpc-chaos audit --profile P [--target FILE] [--client C] [--requirements FILE]
                     [--scenarios PATTERN ...] [--only SETTING ...] [--output DIR]

For each setting of the profile, the scenarios whose checks it answers run with the
setting removed; each setting is then needed, no effect seen, not covered or
inconclusive (docs/audit.md).

    arguments --> checks (profile, client, target, requirements; every mutated profile)
              --> baseline: every scenario any setting answers, once, profile as given
              --> per setting: its scenarios that passed at baseline, mutated profile
                  (stopped at the first failure on a check the setting answers)
              --> audit.json, audit.html, the table; exit code

Each run is one pytest child through the gate's runner (chaos/gate/pytest_run.py); Ctrl-C
or SIGTERM stops it (its fleets go with it) and keeps what was written, marked
interrupted. Exit codes (chaos/outcomes.py Exit): 0 every setting needed or not covered,
1 a setting shows no effect, 2 a setting inconclusive (and none without effect), 4 usage,
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from chaos import profiles as profiles_module
from chaos import rundir
from chaos.audit import answers, classify, report, settings
from chaos.gate import cli as gate_cli
from chaos.gate import progress as progress_module
from chaos.gate.pytest_run import Options, PytestRun
from chaos.gate.selection import CATALOGUE, Selection
from chaos.outcomes import Exit, Outcome, UsageError, UsageParser
from fleet.procs.lifeline import check_interrupt, interrupts

POLL_S = 0.25  # how often a run's results file is read (progress, the early stop)
PROG = "grpc-chaos audit"


def parser() -> argparse.ArgumentParser:
    p = UsageParser(
        prog=PROG,
        description=__doc__.split("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit codes: 0 every setting needed or not covered, 1 a setting shows no "
        "effect, 2 inconclusive, 4 usage or configuration error, 130 interrupted. "
        "docs/audit.md has more.",
    )
    p.add_argument("--profile", required=True, metavar="P", help="a shipped name or a JSON file")
    p.add_argument("--client", metavar="C", help="the client under test (default: inprocess)")
    p.add_argument("--target", metavar="FILE", help="a target file (your service)")
    p.add_argument("--requirements", metavar="FILE", help="your bounds, TOML or JSON")
    p.add_argument(
        "--scenarios",
        action="append",
        default=[],
        metavar="PATTERN",
        help="keep only scenarios whose name (test_kill::test_x) contains PATTERN "
        "(repeat or comma-separate)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SETTING",
        help="audit only these settings, by name or id (repeat or comma-separate)",
    )
    p.add_argument("--output", default=gate_cli.DEFAULT_OUTPUT, metavar="DIR")
    p.add_argument("--fleet-size", type=int, metavar="N", help="backends per fleet (3)")
    p.add_argument("--toxiproxy-url", metavar="URL", help="an already running Toxiproxy")
    p.add_argument("--reruns", type=int, metavar="N", help="reruns of an inconclusive scenario")
    p.add_argument(
        "--time-limit",
        type=float,
        default=gate_cli.DEFAULT_LIMIT_MIN,
        metavar="MIN",
        help="minutes one pytest run may take before it is stopped",
    )
    return p


def _split(values: list[str]) -> list[str]:
    return [part.strip() for item in values for part in item.split(",") if part.strip()]


class Audit:
    """One audit, from checked arguments to the exit code."""

    def __init__(self, args: argparse.Namespace, out=sys.stdout, command=()):
        self.args, self.out = args, out
        self.command = [*PROG.split(), *command]
        self.profile = gate_cli.load_profiles([args.profile])[0]
        clients = gate_cli.load_clients([args.client or "inprocess"])
        if len(clients) != 1:
            raise UsageError("--client: give one client (the audit runs one implementation)")
        self.client = clients[0]
        self.target = gate_cli.load_target(args.target)
        self.requirements = gate_cli.load_requirements(args.requirements, self.target)
        catalogue = answers.scan(CATALOGUE)
        patterns = _split(args.scenarios)
        if patterns:
            catalogue = [s for s in catalogue if any(p in s.name for p in patterns)]
            if not catalogue:
                raise UsageError(f"--scenarios {', '.join(patterns)}: matches no scenario")
        self.catalogue = catalogue
        try:
            self.settings = settings.select(
                settings.enumerate_settings(self.profile), _split(args.only)
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.scenarios = {s.id: answers.answering(catalogue, s.keys) for s in self.settings}
        self.selection_text = (
            f"scenarios matching {', '.join(patterns)}" if patterns else "the catalogue"
        )
        self.interrupted = False
        self.runs: list[PytestRun] = []
        self.durations: list[float] = []

    def _options(self, scenarios: list[answers.Scenario]) -> Options:
        args = self.args
        return Options(
            Selection(tuple(s.nodeid for s in scenarios)),
            str(Path(args.target).resolve()) if args.target else None,
            str(Path(args.requirements).resolve()) if args.requirements else None,
            args.fleet_size,
            args.toxiproxy_url,
            args.reruns,
        )

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        self.directory = rundir.create(Path(self.args.output))
        self.started = time.monotonic()
        mutated_files = self._write_mutations()
        union = [s for s in self.catalogue if any(s in v for v in self.scenarios.values())]
        # Baseline plus one run per setting with a scenario to run (known only after it).
        self.planned = 1 + sum(bool(v) for v in self.scenarios.values())
        self.say(
            f"{PROG}: run {self.directory}; profile {self.profile.name}; client "
            f"{self.client.name}; {len(self.settings)} settings; {len(union)} scenarios "
            f"answer them ({self.selection_text})"
        )
        baseline: dict[str, classify.Result | None] = {}
        mutated: dict[str, dict[str, classify.Result | None]] = {}
        stopped: set[str] = set()
        with interrupts():
            try:
                if union:
                    records = self._one_run(self.profile.source, "baseline", union, None)
                    baseline = classify.results(records)
                for setting in self.settings:
                    chosen = [
                        s
                        for s in self.scenarios[setting.id]
                        if (b := baseline.get(s.name)) is not None and b.outcome == Outcome.PASS
                    ]
                    if setting.id not in mutated_files:  # an invalid mutation: no run
                        continue
                    if not chosen:
                        self.planned -= bool(self.scenarios[setting.id])
                        continue
                    records = self._one_run(
                        str(mutated_files[setting.id]), _slug(setting), chosen, setting
                    )
                    mutated[setting.id] = classify.results(records)
                    if self.runs[-1].stopped:
                        stopped.add(setting.id)
            except KeyboardInterrupt:
                self.interrupted = True
                self.say(f"{PROG}: interrupted; keeping what was written")
        findings = self._findings(baseline, mutated, stopped, mutated_files)
        return self._finish(findings)

    def _write_mutations(self) -> dict[str, Path]:
        """Each setting's mutated profile file (in the run directory), checked all at once;
        a mutation gRPC's parser refuses gets no file (the setting is then inconclusive)."""
        folder = self.directory / "profiles"
        folder.mkdir()
        datas = [s.mutate(self.profile.data()) for s in self.settings]
        problems = profiles_module.check_many(datas)
        self.invalid: dict[str, str] = {}
        files = {}
        for setting, data, found in zip(self.settings, datas, problems, strict=True):
            errors = [str(p) for p in found if p.is_error]
            if errors:
                self.invalid[setting.id] = "; ".join(errors)
                continue
            path = folder / f"{_slug(setting)}.json"
            path.write_text(json.dumps(data, indent=2) + "\n")
            files[setting.id] = path
        return files

    def _one_run(self, profile: str, name: str, scenarios, setting) -> list[dict]:
        """One pytest child over ``scenarios``; stopped early when ``setting`` is shown
        needed (a scenario fails on a check the setting answers), or at the time limit."""
        done = len(self.runs)
        eta = ""
        if self.durations:
            mean = sum(self.durations) / len(self.durations)
            eta = f", ETA {progress_module._clock(mean * (self.planned - done))}"
        elapsed = progress_module._clock(time.monotonic() - self.started)
        what = setting.label if setting else "baseline (the profile as given)"
        self.say(
            f"[run {done + 1}/{self.planned}] {what}: {len(scenarios)} scenario(s) — "
            f"elapsed {elapsed}{eta}"
        )
        run = PytestRun(
            self.directory, profile, name, 1, client=self.client.given, client_name=self.client.name
        )
        self.runs.append(run)
        run.start(self._options(scenarios))
        records: list[dict] = []
        deadline = time.monotonic() + self.args.time_limit * 60
        try:
            check_interrupt()
            while not run.wait(POLL_S):
                check_interrupt()
                if self._take(run, records, setting) or time.monotonic() > deadline:
                    run.stop()
                    break
        except KeyboardInterrupt:
            run.stop()
            self._take(run, records, setting)
            raise
        self._take(run, records, setting)
        if run.exit_code in (3, 4) and not records:  # pytest's internal or usage error
            raise UsageError(run.usage_error())
        self.durations.append(run.duration_s)
        return records

    def _take(self, run: PytestRun, records: list[dict], setting) -> bool:
        """Read new records (a progress line each); True when ``setting`` is shown needed."""
        needed = False
        for record in run.new_records():
            records.append(record)
            self.say("  " + progress_module.line(record))
            found = classify.result(record)
            if setting is not None and found is not None and found.check:
                needed = needed or bool(set(setting.keys) & set(found.names))
        return needed

    # ------------------------------------------------------------------ results

    def _findings(self, baseline, mutated, stopped, files) -> list[classify.Finding]:
        implementation = self._implementation()
        findings = []
        for setting in self.settings:
            names = [s.name for s in self.scenarios[setting.id]]
            if setting.id in self.invalid:
                finding = classify.Finding(
                    setting,
                    classify.INCONCLUSIVE,
                    f"its mutation is not a valid profile: {self.invalid[setting.id]}",
                )
            else:
                finding = classify.classify(
                    setting, names, baseline, mutated.get(setting.id, {}), implementation
                )
            finding.stopped_early = setting.id in stopped
            run = next((r for r in self.runs if r.profile_name == _slug(setting)), None)
            finding.duration_s = run.duration_s if run else None
            findings.append(finding)
        return findings

    def _implementation(self) -> str | None:
        """The client's implementation as its records name it (grpcio, grpc-go, ...)."""
        for run in self.runs:
            try:
                lines = run.file("jsonl").read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                if line.strip():
                    return json.loads(line).get("client", {}).get("implementation")
        return None

    def _finish(self, findings: list[classify.Finding]) -> int:
        code = classify.exit_code(findings, self.interrupted)
        verdict = {
            Exit.PASS: "pass",
            Exit.FAIL: "no effect",
            Exit.INCONCLUSIVE: "inconclusive",
            Exit.INTERRUPTED: "interrupted",
        }[code]
        meta = {
            "verdict": verdict,
            "exit_code": int(code),
            "interrupted": self.interrupted,
            "duration_s": round(time.monotonic() - self.started, 3),
            "command": self.command,
            "host": rundir.host(),
            "profile": {"name": self.profile.name, "source": self.profile.source},
            "client": {
                "name": self.client.name,
                "given": self.client.given,
                "implementation": self._implementation(),
            },
            "target": {"name": self.target.name, "source": self.target.source},
            "requirements": self.requirements.source,
            "selection": self.selection_text,
            "runs": [r.to_dict() for r in self.runs],
        }
        doc = report.document(meta, findings)
        data, page = report.write(self.directory, doc)
        rundir.point_latest(self.directory)
        self.say("\n".join(report.table(findings)))
        self.say(
            f"{PROG}: {verdict} — " + ", ".join(f"{n} {v}" for v, n in doc["counts"].items() if n)
        )
        self.say(f"  report: {page}\n  results: {data}")
        return code


def _slug(setting: settings.Setting) -> str:
    return "m-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in setting.id)


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    audit = None
    try:
        audit = Audit(parser().parse_args(argv), command=argv)
        return audit.run()
    except UsageError as exc:
        if audit is not None and getattr(audit, "directory", None):
            shutil.rmtree(audit.directory, ignore_errors=True)  # nothing judged: no run kept
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:  # before any run started
        print(f"{prog}: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
