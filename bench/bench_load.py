"""Load generator throughput and fleet reset time: prints figures, asserts nothing.

    .venv/bin/python bench/bench_load.py [--seconds 3] [--concurrency 16,64,256]

For each concurrency (RPCs in flight, closed loop, grpc.aio, TLS, the recommended
profile's channel) it measures RPC/s on a 3-backend fleet reached directly and the same
fleet reached through its Toxiproxy proxies (the embedded server unless TOXIPROXY_URL is
set). Then it measures the time Fleet.reset() takes to bring a fleet back to baseline after
typical faults (no fault; one toxic and a health flip; a killed backend; a paused one) —
the cost paid between two scenarios that share a fleet.

Everything runs on this machine: client, backends and proxy share its cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos import profiles  # noqa: E402
from chaos.faults import Health, Kill, Latency, Nemesis, Pause  # noqa: E402
from chaos.history import History  # noqa: E402
from chaos.load import Load  # noqa: E402
from chaos.toxiproxy_server.control import ToxiproxyServer  # noqa: E402
from fleet.controller import Fleet  # noqa: E402


def rate(fleet: Fleet, concurrency: int, seconds: float) -> float:
    profile, info, history = profiles.load("recommended"), fleet.info(), History()
    with Load(lambda: profile.channel(info, aio=True), history, concurrency=concurrency) as load:
        load.wait_for(500, timeout=30)  # warm: connections made, caches hot
        before, started = load.completed, time.perf_counter()
        load.wait_until(
            lambda: time.perf_counter() - started >= seconds, seconds + 5, "the measuring window"
        )
        done, elapsed = load.completed - before, time.perf_counter() - started
    failed = sum(not r.ok for r in history.rpcs)
    if failed:
        print(f"  warning: {failed} RPCs failed during the measurement")
    return done / elapsed


def reset_times(fleet: Fleet, proxies) -> dict[str, list[float]]:
    scenarios = {
        "nothing to undo": [],
        "toxic + health flip": [Latency("b1", 100), Health("b2")],
        "killed backend": [Kill("b2")],
        "paused backend": [Pause("b3")],
    }
    results: dict[str, list[float]] = {}
    for name, faults in scenarios.items():
        results[name] = []
        for _ in range(3):
            nemesis = Nemesis(fleet, History(), proxies)
            for fault in faults:
                nemesis.inject(fault)
            started = time.perf_counter()
            nemesis.undo_all()
            fleet.reset()
            results[name].append((time.perf_counter() - started) * 1000)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", default="16,64,256")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with ToxiproxyServer() as server:
        print(f"toxiproxy: {server.kind} {server.url}")
        with (
            Fleet(3, net="127.0.251.0/24") as direct,
            Fleet(3, net="127.0.252.0/24", proxies=server.control()) as proxied,
        ):
            print(f"{'in flight':>10} {'direct RPC/s':>14} {'via proxies RPC/s':>18}")
            for level in levels:
                print(
                    f"{level:>10} {rate(direct, level, args.seconds):>14.0f} "
                    f"{rate(proxied, level, args.seconds):>18.0f}"
                )
            print("fleet reset after faults (ms, median of 3):")
            for name, times in reset_times(proxied, server.control()).items():
                print(
                    f"  {name:<22} {statistics.median(times):8.1f}  "
                    f"(min {min(times):.1f}, max {max(times):.1f})"
                )


if __name__ == "__main__":
    main()
