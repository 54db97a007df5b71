"""The zero-flake campaign: the gate's pytest runner, repeated, beside CPU burners, with
every run's outcome counted.

    python -m chaos.gate.campaign --runs 20 --burners 2 [--profile P] [--out DIR]
                                  [-- extra pytest args]

Each run is one child pytest over the catalogue, as the gate starts it
(chaos/gate/pytest_run.py), writing into ``--out`` as a gate run directory does:
``pytest/<profile>.<run>.{log,jsonl,xml}`` and ``artifacts/repeat-<run>/``. The burners
are ``python3 -c "while True: pass"`` processes started before the first run and killed
after the last. Prints one line per run — passed, failed, inconclusive, not applicable,
reruns, seconds, load average — and a summary; exits as every command does
(chaos/outcomes.py): 1 when any scenario failed or errored in any run, 2 when none did but
some stayed inconclusive, 130 interrupted.

Ctrl-C or SIGTERM stops the run under way (SIGINT to its pytest, which tears its fleets
down; SIGKILL after the runner's grace) and the burners; if the campaign itself is killed,
its children get SIGKILL from the kernel (PR_SET_PDEATHSIG) and the fleets follow their
pytest (fleet/procs/lifeline.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from chaos import profiles as profiles_module
from chaos.gate.pytest_run import Options, PytestRun
from chaos.gate.selection import CATALOGUE, Selection
from chaos.outcomes import Exit, Outcome, UsageError, UsageParser, exit_code
from fleet.procs.lifeline import check_interrupt, interrupts, set_pdeathsig

BURNER = "while True: pass"
# Options the campaign sets itself for each run (give --profile, not --chaos-profile).
_OWN_OPTIONS = ("--chaos-profile", "--chaos-results", "--chaos-artifacts", "--junitxml")
_WAIT_TICK_S = 0.5  # how often a wait for a run looks for a Ctrl-C Python dropped


def _child(argv: list[str]) -> subprocess.Popen:
    """A burner that dies with the campaign (SIGKILL on our death; we may be killed -9)."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: set_pdeathsig(signal.SIGKILL),
    )


def start_burners(count: int) -> list[subprocess.Popen]:
    return [_child([sys.executable, "-c", BURNER]) for _ in range(count)]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for burner in burners:
        burner.kill()
    for burner in burners:
        burner.wait(timeout=10)


def run_once(
    number: int, out: Path, profile: str, name: str, pytest_args: list[str]
) -> tuple[Counter, float, int]:
    """One run of the catalogue; returns (outcomes by kind, seconds, pytest's exit code)."""
    run = PytestRun(out, profile, name, number)
    run.file("log").parent.mkdir(parents=True, exist_ok=True)
    options = Options(Selection(paths=(str(CATALOGUE),), extra=("-q", *pytest_args)))
    run.start(options)
    try:
        check_interrupt()  # a Ctrl-C dropped while the process was being started
        while not run.wait(_WAIT_TICK_S):
            check_interrupt()
    except KeyboardInterrupt:
        run.stop()
        raise
    outcomes: Counter = Counter()
    for record in run.new_records():
        outcomes[Outcome(record["outcome"])] += 1
        outcomes["reruns"] += record["attempts"] - 1
    assert run.exit_code is not None  # wait() returned True
    return outcomes, run.duration_s, run.exit_code


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)
    except UsageError as exc:
        print(f"campaign: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    out = args.out or Path("chaos-runs") / time.strftime("campaign-%Y%m%dT%H%M%SZ", time.gmtime())
    # Ctrl-C and SIGTERM stop the campaign cleanly, also when SIGINT came in ignored (a
    # background job): the runs' pytest then gets a SIGINT it does not ignore.
    with interrupts():
        return _campaign(args, out)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = UsageParser(
        prog="python -m chaos.gate.campaign",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--burners", type=int, default=0, help="CPU burners (busy loops) beside the runs"
    )
    parser.add_argument(
        "--profile", default="recommended", help="client profile: a shipped name or a JSON file"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where each run's results and artifacts go (default: chaos-runs/campaign-<UTC time>)",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.burners < 0:
        parser.error("--runs must be at least 1 and --burners at least 0")
    own = [arg for arg in args.pytest_args if arg.split("=")[0] in _OWN_OPTIONS]
    if own:
        parser.error(f"{own[0].split('=')[0]} is the campaign's to set (the profile: --profile)")
    try:
        args.profile_name = profiles_module.load(args.profile).name
    except profiles_module.ProfileError as exc:
        raise UsageError(str(exc)) from None
    return args


def _campaign(args: argparse.Namespace, out: Path) -> int:
    totals: Counter = Counter()
    failed_runs, number = [], 1
    burners = start_burners(args.burners)
    try:
        print(f"campaign: {args.runs} runs, {args.burners} burners, into {out}", flush=True)
        for number in range(1, args.runs + 1):
            outcomes, seconds, code = run_once(
                number, out, args.profile, args.profile_name, args.pytest_args
            )
            if code not in (0, 1):  # pytest itself failed: a usage error, nothing collected
                outcomes[Outcome.ERROR] += 1
            totals.update(outcomes)
            if exit_code(outcomes) is Exit.FAIL:
                failed_runs.append(number)
            print(
                f"run {number:2d}: pass {outcomes[Outcome.PASS]}, fail {outcomes[Outcome.FAIL]}, "
                f"error {outcomes[Outcome.ERROR]}, inconclusive {outcomes[Outcome.INCONCLUSIVE]}, "
                f"n/a {outcomes[Outcome.NOT_APPLICABLE]}, reruns {outcomes['reruns']}, "
                f"{seconds:.1f} s, load {os.getloadavg()[0]:.1f}, pytest exit {code}",
                flush=True,
            )
    except KeyboardInterrupt:
        print(
            f"campaign: stopped during run {number} (its pytest was stopped; "
            f"{number - 1} runs complete)",
            flush=True,
        )
        return exit_code(totals, interrupted=True)
    finally:
        stop_burners(burners)
    print(
        f"campaign: {args.runs} runs: pass {totals[Outcome.PASS]}, fail {totals[Outcome.FAIL]}, "
        f"error {totals[Outcome.ERROR]}, inconclusive {totals[Outcome.INCONCLUSIVE]}, reruns "
        f"{totals['reruns']}; runs with a failure: {failed_runs or 'none'}"
    )
    return exit_code(totals)


if __name__ == "__main__":
    sys.exit(main())
