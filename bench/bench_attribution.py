"""Per-RPC backend attribution without the server's help, held against the header's answer.

    .venv/bin/python bench/bench_attribution.py [--rpcs 10000] [--concurrency 16,64]

A 3-backend Greeter fleet behind the embedded Toxiproxy (or TOXIPROXY_URL), the
recommended profile's grpc.aio channel, a closed-loop load. For each number of RPCs in
flight it runs ``--rpcs`` RPCs (after a warm-up) three times — steadily, with a kill -9 and
restart of one backend mid-run, with a health flip (NOT_SERVING, then SERVING) of another —
and holds chaos.attribution's answer for every RPC against the ``x-backend-id`` the backend
sent (the truth here). It prints, for RPCs whose answer named a backend: exact (same
backend), mismatched (another backend: a bug), unattributed (attribution said unknown);
for RPCs whose answer named none (failures no backend answered): what attribution said;
why the unattributed ones were left unknown; and the cost: RPC/s with attribution against
RPC/s of the same load without it.

Everything runs on this machine: client, backends and proxy share its cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos import profiles  # noqa: E402
from chaos.attribution import AttributingHistory  # noqa: E402
from chaos.faults import Health, Kill, Nemesis  # noqa: E402
from chaos.history import History  # noqa: E402
from chaos.load import Load  # noqa: E402
from chaos.toxiproxy_control import ToxiproxyServer  # noqa: E402
from fleet.controller import Fleet  # noqa: E402

WARM_RPCS = 500  # as bench_load.py: connections made, caches hot, before measuring
TIMEOUT_S = 300  # per waited-for step: attribution may run the load at a few hundred RPC/s


@dataclass
class Run:
    rpcs: int = 0
    seconds: float = 0.0
    exact: int = 0
    mismatched: list = field(default_factory=list)
    unattributed: int = 0
    unnamed: Counter = field(default_factory=Counter)  # the answer named no backend
    why: Counter = field(default_factory=Counter)      # reasons of the unattributed

    @property
    def rate(self) -> float:
        return self.rpcs / self.seconds if self.seconds else 0.0


def steady(load: Load, nemesis: Nemesis, rpcs: int) -> None:
    load.wait_for(rpcs, TIMEOUT_S)


def kill_and_restart(load: Load, nemesis: Nemesis, rpcs: int) -> None:
    load.wait_for(rpcs * 3 // 10, TIMEOUT_S)
    killed = nemesis.inject(Kill("b2"))  # returns once the process is gone
    load.wait_for(rpcs // 10, TIMEOUT_S)  # survivors carry the load for a while
    nemesis.undo(killed)  # restart on the same address; returns once it serves


def health_flip(load: Load, nemesis: Nemesis, rpcs: int) -> None:
    load.wait_for(rpcs * 3 // 10, TIMEOUT_S)
    flipped = nemesis.inject(Health("b1"))
    load.wait_for(rpcs // 5, TIMEOUT_S)
    nemesis.undo(flipped)


FAULTS = {"steady": steady, "kill -9 b2 + restart": kill_and_restart,
          "health flip b1": health_flip}


def measure(fleet: Fleet, proxies, concurrency: int, rpcs: int, fault, attribute: bool) -> Run:
    profile, info = profiles.load("recommended"), fleet.info()
    backends = {b["address"]: b["id"] for b in info["backends"]}
    history = AttributingHistory(backends) if attribute else History()
    nemesis = Nemesis(fleet, history, proxies)
    load = Load(lambda: profile.channel(info, aio=True), history, concurrency=concurrency)
    if attribute:
        history.follow(load)
    with load:
        load.wait_for(WARM_RPCS, TIMEOUT_S)
        first, started, t0 = load.completed, time.perf_counter(), history.now()
        fault(load, nemesis, rpcs)
        load.wait_until(lambda: load.completed - first >= rpcs, TIMEOUT_S, f"{rpcs} RPCs")
        run = Run(seconds=time.perf_counter() - started)
        t1 = history.now()
    nemesis.undo_all()
    window = [r for r in history.rpcs if t0 <= r.end_ns <= t1]
    run.rpcs = len(window)
    if attribute:
        compare(run, window, history)
    return run


def compare(run: Run, window, history: AttributingHistory) -> None:
    reasons = history.attribution.reasons
    for rpc in window:
        said = history.attributed[rpc.id]
        if rpc.backend is None:
            run.unnamed[f"{rpc.code}: attributed to {said}"] += 1
        elif said == rpc.backend:
            run.exact += 1
        elif said is None:
            run.unattributed += 1
            run.why[reasons[rpc.id]] += 1
        else:
            run.mismatched.append((rpc, said, reasons.get(rpc.id, "exact")))


def report(concurrency: int, name: str, run: Run, plain: float) -> None:
    named = run.exact + len(run.mismatched) + run.unattributed
    cost = f"{run.rate:6.0f} RPC/s ({run.rate / plain:.0%} of {plain:.0f} without)"
    print(f"{concurrency:>9} {name:<22} {run.rpcs:>6} {run.exact:>6} {len(run.mismatched):>5} "
          f"{run.unattributed:>5}  {run.exact / named:8.2%}  {cost}")
    for why, count in run.why.most_common():
        print(f"{'':>33}unattributed {count}: {why}")
    for what, count in run.unnamed.most_common():
        print(f"{'':>33}answer named no backend {count}: {what}")
    for rpc, said, why in run.mismatched[:5]:
        print(f"{'':>33}MISMATCH rpc {rpc.id} {rpc.code}: header {rpc.backend}, "
              f"attribution {said} ({why})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpcs", type=int, default=10_000)
    parser.add_argument("--concurrency", default="16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with ToxiproxyServer() as server, \
            Fleet(3, net="127.0.218.0/24", proxies=server.control()) as fleet:
        print(f"toxiproxy: {server.kind} {server.url}; {args.rpcs} RPCs per run after "
              f"{WARM_RPCS} warm-up; agreement = exact / RPCs whose answer named a backend")
        print(f"{'in flight':>9} {'run':<22} {'RPCs':>6} {'exact':>6} {'wrong':>5} "
              f"{'unatt':>5}  {'agreement':>8}  cost")
        for concurrency in levels:
            plain = measure(fleet, server.control(), concurrency, args.rpcs, steady, False)
            for name, fault in FAULTS.items():
                run = measure(fleet, server.control(), concurrency, args.rpcs, fault, True)
                report(concurrency, name, run, plain.rate)
                fleet.reset()


if __name__ == "__main__":
    main()
