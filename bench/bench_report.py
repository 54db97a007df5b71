"""How long report.html takes for a whole catalogue run (goal: under 5 s).

    python bench/bench_report.py [RUN]

RUN is a run directory made by ``grpc-chaos gate`` over the catalogue with one profile
(default: chaos-runs/latest; when there is none, the gate is run once to make it, which
takes a few minutes). Prints the scenarios, plots and history records it covers, then the
wall-clock and CPU time of writing report.html (reading results.json, every history,
every plot, the page), best of three, with the load average beside it — the machine is
shared, so a figure means little without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_started = time.perf_counter()
from chaos.gate import report_html, results_file, rundir  # noqa: E402  (matplotlib)

IMPORT_S = time.perf_counter() - _started

GOAL_S = 5.0
ROUNDS = 3


def main() -> int:
    spec = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "chaos-runs" / rundir.LATEST)
    if not Path(spec).exists():
        print(f"no run at {spec}: running the gate over the catalogue once to make one", flush=True)
        subprocess.run(
            [sys.executable, "-m", "chaos", "gate", "--quiet", "--output", str(Path(spec).parent)],
            cwd=ROOT,
            check=False,
        )
    run = results_file.read(Path(spec).resolve())
    records = run.records
    histories = [Path(r["artifacts"]) / "history.jsonl" for r in records if r.get("artifacts")]
    lines = sum(len(h.read_bytes().splitlines()) for h in histories if h.is_file())
    print(
        f"run {run.directory.name}: {len(records)} scenario runs, "
        f"{sum(h.is_file() for h in histories)} plots, {lines} history records"
    )
    print(f"importing the report code (matplotlib): {IMPORT_S:.2f} s")
    best = None
    for _ in range(ROUNDS):
        load = os.getloadavg()[0]
        wall, before = time.perf_counter(), os.times()
        path = report_html.write(run)
        wall, after = time.perf_counter() - wall, os.times()
        cpu = sum(after[:4]) - sum(before[:4])  # this process and its plot workers
        print(
            f"report.html {path.stat().st_size / 1e6:.1f} MB in {wall:.2f} s "
            f"(CPU {cpu:.2f} s over {os.cpu_count()} cores; load average {load:.2f})"
        )
        best = wall if best is None else min(best, wall)
    total = best + IMPORT_S
    print(
        f"best: {best:.2f} s (+ {IMPORT_S:.2f} s import = {total:.2f} s); goal < {GOAL_S:g} s:"
        f" {'met' if total < GOAL_S else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
