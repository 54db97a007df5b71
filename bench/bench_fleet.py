"""Fleet start-up and footprint: prints seconds to a ready 3- and 10-backend fleet (PKI,
processes, DNS; no proxies) and the memory of one backend process.

    .venv/bin/python bench/bench_fleet.py [--runs 5]

"Ready" means what Fleet.start() waits for: every backend printed its ready line (both
its ports serve) and the DNS server answers. Memory is read from /proc: RSS, and PSS
(RSS with shared pages divided among the processes sharing them — the fair per-backend
cost when ten run side by side).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet.controller import Fleet  # noqa: E402


def _kib(pid: int, field: str, source: str) -> int:
    with open(f"/proc/{pid}/{source}") as text:
        for line in text:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def start_times(size: int, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fleet = Fleet(size, net="127.0.250.0/24").start()
        times.append(time.perf_counter() - started)
        fleet.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for size in (3, 10):
        times = start_times(size, args.runs)
        print(
            f"start {size:>2}-backend fleet: median {statistics.median(times):.3f} s, "
            f"min {min(times):.3f} s, max {max(times):.3f} s ({args.runs} runs)"
        )
    with Fleet(3, net="127.0.250.0/24") as fleet:
        pid = fleet.backends[0].pid
        rss = _kib(pid, "VmRSS", "status")
        pss = _kib(pid, "Pss", "smaps_rollup")
        print(f"one backend: RSS {rss / 1024:.1f} MiB, PSS {pss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
