"""The zero-flake campaign: the scenario suite run many times in a row, optionally beside
CPU burners, with every run's outcome counted.

    python -m chaos.gate.campaign --runs 20 --burners 2 [--out DIR] [-- extra pytest args]

Each run is ``pytest scenarios/`` in its own process with ``--chaos-results`` (one JSON
line per scenario, chaos/run/results.py) and its own artifacts directory under ``--out``. The
burners are ``python3 -c "while True: pass"`` processes started before the first run and
killed after the last. Prints one line per run — passed, failed, inconclusive, not
applicable, reruns, seconds, load average — and a summary; exits 1 when any scenario
failed in any run, 2 when none failed but some stayed inconclusive.

Ctrl-C or SIGTERM stops the run under way (SIGINT to its pytest, which tears its fleets
down; SIGKILL after STOP_GRACE_S) and the burners, and exits 130; if the campaign itself
is killed, its children get SIGKILL from the kernel (PR_SET_PDEATHSIG) and the fleets
follow their pytest (fleet/procs/lifeline.py).
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

from chaos.gate.selection import CATALOGUE
from chaos.run import results
from fleet.procs.lifeline import check_interrupt, interrupts, set_pdeathsig

BURNER = "while True: pass"
STOP_GRACE_S = 30  # for pytest to tear its fleets down after SIGINT


def _child(argv: list[str], **options) -> subprocess.Popen:
    """A child that dies with the campaign (SIGKILL on our death; we may be killed -9)."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: set_pdeathsig(signal.SIGKILL),
        **options,
    )


def start_burners(count: int) -> list[subprocess.Popen]:
    return [_child([sys.executable, "-c", BURNER]) for _ in range(count)]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for burner in burners:
        burner.kill()
    for burner in burners:
        burner.wait(timeout=10)


def run_once(number: int, out: Path, pytest_args: list[str]) -> tuple[Counter, float, int]:
    """One run of the suite; returns (outcomes by kind, seconds, pytest's exit code)."""
    folder = out / f"run-{number:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "results.jsonl"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(CATALOGUE),
        "-q",
        "-p",
        "no:cacheprovider",
        f"--chaos-results={record}",
        f"--chaos-artifacts={folder / 'artifacts'}",
        *pytest_args,
    ]
    started = time.monotonic()
    with open(folder / "pytest.log", "w") as log:
        process = _child(command, stdout=log, stderr=subprocess.STDOUT, cwd=CATALOGUE.parent)
        try:
            check_interrupt()  # a Ctrl-C dropped while the process was being started
            code = process.wait()
        except KeyboardInterrupt:
            _stop(process)
            raise
    seconds = time.monotonic() - started
    outcomes = Counter()
    if record.exists():
        for entry in results.read(record):
            outcomes[entry["outcome"]] += 1
            outcomes["reruns"] += entry["attempts"] - 1
    return outcomes, seconds, code


def _stop(process: subprocess.Popen) -> None:
    """SIGINT (pytest tears its fleets down), SIGKILL after STOP_GRACE_S."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):  # or a second Ctrl-C
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.gate.campaign",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--burners", type=int, default=0, help="CPU burners (busy loops) beside the runs"
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
    out = args.out or Path("chaos-runs") / time.strftime("campaign-%Y%m%dT%H%M%SZ", time.gmtime())
    # Ctrl-C and SIGTERM stop the campaign cleanly, also when SIGINT came in ignored (a
    # background job): the runs' pytest then gets a SIGINT it does not ignore.
    with interrupts():
        return _campaign(args, out)


def _campaign(args: argparse.Namespace, out: Path) -> int:
    totals, failed_runs, number = Counter(), [], 1
    burners = start_burners(args.burners)
    try:
        print(f"campaign: {args.runs} runs, {args.burners} burners, into {out}", flush=True)
        for number in range(1, args.runs + 1):
            outcomes, seconds, code = run_once(number, out, args.pytest_args)
            totals.update(outcomes)
            if outcomes["fail"] or outcomes["error"] or code not in (0, 1):
                failed_runs.append(number)
            print(
                f"run {number:2d}: pass {outcomes['pass']}, fail {outcomes['fail']}, "
                f"error {outcomes['error']}, inconclusive {outcomes['inconclusive']}, "
                f"n/a {outcomes['not_applicable']}, reruns {outcomes['reruns']}, "
                f"{seconds:.1f} s, load {os.getloadavg()[0]:.1f}, pytest exit {code}",
                flush=True,
            )
    except KeyboardInterrupt:
        print(
            f"campaign: stopped during run {number} (its pytest was stopped; "
            f"{number - 1} runs complete)",
            flush=True,
        )
        return 130
    finally:
        stop_burners(burners)
    print(
        f"campaign: {args.runs} runs: pass {totals['pass']}, fail {totals['fail']}, "
        f"error {totals['error']}, inconclusive {totals['inconclusive']}, reruns "
        f"{totals['reruns']}; runs with a failure: {failed_runs or 'none'}"
    )
    if totals["fail"] or totals["error"]:
        return 1
    return 2 if totals["inconclusive"] else 0


if __name__ == "__main__":
    sys.exit(main())
