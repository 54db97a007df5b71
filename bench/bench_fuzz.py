"""Fuzzer figures: examples per minute, time to the first failure and to the smallest
schedule, and how often that schedule reproduces — per profile. Prints, asserts nothing.

    .venv/bin/python bench/bench_fuzz.py [--budget 3m] [--replays 10] [--seed 1]
                                         [--profile P ...] [--output DIR]

For each profile (default: naive and two broken ones from tests/profiles/; pass --profile
as often as wanted, a shipped name or a file)
it runs one campaign (``python -m chaos.fuzz --budget B --no-database``: a search from
scratch, one fleet of 3, every fault kind) and, when it found a failure, replays the
smallest schedule ``--replays`` times. Each is its own process; their run directories are
kept under ``--output``. The machine's load average is printed with every figure: the
machine has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "profiles"
DEFAULT_PROFILES = ["naive"] + [
    str(BROKEN / f"{name}.json") for name in ("no-retry-policy", "no-health-check")
]


def fuzz(*argv: str) -> None:
    """One CLI run in its own process; its output goes to this terminal."""
    subprocess.run([sys.executable, "-m", "chaos.fuzz", *argv], cwd=ROOT, check=False)


def latest(output: Path, name: str) -> dict | None:
    path = output / "latest" / name
    return json.loads(path.read_text()) if path.exists() else None


def campaign(profile: str, args) -> dict:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    fuzz(
        "--budget",
        args.budget,
        "--profile",
        profile,
        "--seed",
        str(args.seed),
        "--no-database",
        "--no-corpus",
        "--quiet",
        "--output",
        str(args.output),
    )
    doc = latest(args.output, "fuzz.json") or {"result": {}}
    row = {
        "profile": Path(profile).stem,
        "wall_s": time.monotonic() - started,
        "load": (load_before, os.getloadavg()[0]),
        **doc["result"],
        "directory": str((args.output / "latest").resolve()),
    }
    minimal = Path(row["directory"]) / "minimal.json"
    if args.replays and row.get("minimal") and minimal.exists():
        fuzz(
            "--replay",
            str(minimal),
            "--times",
            str(args.replays),
            "--profile",
            profile,
            "--quiet",
            "--output",
            str(args.output),
        )
        replay = latest(args.output, "replay.json") or {}
        row["replayed"] = f"{replay.get('reproduced', 0)}/{replay.get('times', 0)}"
    return row


def show(rows: list[dict]) -> None:
    print(
        "\nprofile                 examples  /min  first s  minimal s  rule                 "
        "smallest schedule                  replays  load avg"
    )
    for r in rows:
        first = "-" if r.get("first_failure_s") is None else f"{r['first_failure_s']:.1f}"
        smallest = "-" if r.get("minimal_s") is None else f"{r['minimal_s']:.1f}"
        schedule = (r.get("minimal") or {}).get("summary") or (
            "no fault: the preflight failed" if r.get("stopped") == "preflight" else "none found"
        )
        print(
            f"{r['profile']:<23} {r.get('examples', 0):>8} {r.get('examples_per_minute', 0):>5.1f}"
            f" {first:>8} {smallest:>10}  {str(r.get('rule') or '-'):<20} {schedule:<34} "
            f"{r.get('replayed', '-'):>7}  {r['load'][0]:.1f}->{r['load'][1]:.1f}"
        )
        minimal = (r.get("minimal") or {}).get("schedule")
        if minimal:
            for fault in minimal["faults"]:
                print(
                    f"{'':<25}{fault['kind']} #{fault['target']} at {fault['at_ms']} ms for "
                    f"{fault['for_ms']} ms {fault['params'] or ''}; load {minimal['load']}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="3m")
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="append", dest="profiles")
    parser.add_argument("--output", type=Path, default=Path("/tmp/grpc-chaos-bench-fuzz"))
    args = parser.parse_args()
    rows = [campaign(profile, args) for profile in args.profiles or DEFAULT_PROFILES]
    show(rows)


if __name__ == "__main__":
    main()
