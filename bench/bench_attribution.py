"""Per-RPC backend attribution without the server's help, held against the header's answer.

    .venv/bin/python bench/bench_attribution.py [--rpcs 10000] [--concurrency 16,64]

A 3-backend Greeter fleet behind the embedded Toxiproxy (or TOXIPROXY_URL), the
recommended profile's grpc.aio channel, a closed-loop load. For each number of RPCs in
flight it runs ``--rpcs`` RPCs (after a warm-up) three times — steadily, with a kill -9 and
restart of one backend mid-run, with a health flip (NOT_SERVING, then SERVING) of another —
and holds chaos.observe.attribution's answer for every RPC against the ``x-backend-id`` the backend
sent (the truth here). It prints, for RPCs whose answer named a backend: exact (same
backend), mismatched (another backend: a bug), unattributed (attribution said unknown);
for RPCs whose answer named none (failures no backend answered): what attribution said;
why the unattributed ones were left unknown; and the cost: RPC/s and the client's CPU per
RPC with attribution against the same steady load without it (run before and after the
attributed runs: the machine is shared), and channelz subchannel reads per RPC.

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
from chaos.faults import Health, Kill, Nemesis  # noqa: E402
from chaos.history import History  # noqa: E402
from chaos.load import Load  # noqa: E402
from chaos.observe.attribution import Attribution  # noqa: E402
from chaos.toxiproxy_server.control import ToxiproxyServer  # noqa: E402
from fleet.controller import Fleet  # noqa: E402

WARM_RPCS = 500  # as bench_load.py: connections made, caches hot, before measuring
TIMEOUT_S = 300  # per waited-for step: attribution may run the load at a few hundred RPC/s


@dataclass
class Run:
    rpcs: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0  # this process's CPU in the window: the client (backends and proxy
    # are other processes), steadier than RPC/s on a shared machine
    exact: int = 0
    mismatched: list = field(default_factory=list)
    unattributed: int = 0
    unnamed: Counter = field(default_factory=Counter)  # the answer named no backend
    why: Counter = field(default_factory=Counter)  # reasons of the unattributed
    reads: float = 0.0  # channelz subchannel reads per RPC

    @property
    def rate(self) -> float:
        return self.rpcs / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.rpcs if self.rpcs else 0.0


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


FAULTS = {"steady": steady, "kill -9 b2 + restart": kill_and_restart, "health flip b1": health_flip}


def measure(fleet: Fleet, proxies, concurrency: int, rpcs: int, fault, attribute: bool) -> Run:
    profile, info = profiles.load("recommended"), fleet.info()
    backends = {b["address"]: b["id"] for b in info["backends"]}
    history = History()
    nemesis = Nemesis(fleet, history, proxies)
    load = Load(lambda: profile.channel(info, aio=True), history, concurrency=concurrency)
    attribution = None
    if attribute:
        attribution = load.attribution = Attribution(lambda: load.channelz_id, backends)
    with load:
        load.wait_for(WARM_RPCS, TIMEOUT_S)
        first, t0 = load.completed, history.now()
        started, cpu = time.perf_counter(), time.process_time()
        fault(load, nemesis, rpcs)
        load.wait_until(lambda: load.completed - first >= rpcs, TIMEOUT_S, f"{rpcs} RPCs")
        run = Run(seconds=time.perf_counter() - started, cpu_s=time.process_time() - cpu)
        t1 = history.now()
    nemesis.undo_all()
    window = [r for r in history.rpcs if t0 <= r.end_ns <= t1]
    run.rpcs = len(window)
    if attribution is not None:
        compare(run, window, attribution)
    return run


def compare(run: Run, window, attribution: Attribution) -> None:
    reasons = attribution.reasons
    run.reads = attribution.reads / len(attribution.answers)
    for rpc in window:
        said = attribution.answers[rpc.id]
        if rpc.backend is None:
            run.unnamed[f"{rpc.code}: attributed to {said}"] += 1
        elif said == rpc.backend:
            run.exact += 1
        elif said is None:
            run.unattributed += 1
            run.why[reasons[rpc.id]] += 1
        else:
            run.mismatched.append((rpc, said, reasons.get(rpc.id, "exact")))


def report(concurrency: int, name: str, run: Run) -> None:
    named = run.exact + len(run.mismatched) + run.unattributed
    print(
        f"{concurrency:>9} {name:<22} {run.rpcs:>6} {run.exact:>6} {len(run.mismatched):>5} "
        f"{run.unattributed:>5}  {run.exact / named:8.2%}  {run.rate:6.0f}  "
        f"{run.cpu_ms:6.2f}  {run.reads:5.2f}"
    )
    for why, count in run.why.most_common():
        print(f"{'':>33}unattributed {count}: {why}")
    for what, count in run.unnamed.most_common():
        print(f"{'':>33}answer named no backend {count}: {what}")
    for rpc, said, why in run.mismatched[:5]:
        print(
            f"{'':>33}MISMATCH rpc {rpc.id} {rpc.code}: header {rpc.backend}, "
            f"attribution {said} ({why})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpcs", type=int, default=10_000)
    parser.add_argument("--concurrency", default="16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with (
        ToxiproxyServer() as server,
        Fleet(3, net="127.0.218.0/24", proxies=server.control()) as fleet,
    ):
        print(
            f"toxiproxy: {server.kind} {server.url}; {args.rpcs} RPCs per run after "
            f"{WARM_RPCS} warm-up; agreement = exact / RPCs whose answer named a backend"
        )
        print(
            f"{'in flight':>9} {'run':<22} {'RPCs':>6} {'exact':>6} {'wrong':>5} "
            f"{'unatt':>5}  {'agreement':>8}  {'RPC/s':>6}  {'CPU ms/RPC':>6}  reads/RPC"
        )
        costs = []
        for concurrency in levels:
            # The cost: the same steady load without attribution, measured on both sides of
            # the attributed runs (the machine is shared; its speed drifts).
            plain = [measure(fleet, server.control(), concurrency, args.rpcs, steady, False)]
            for name, fault in FAULTS.items():
                run = measure(fleet, server.control(), concurrency, args.rpcs, fault, True)
                report(concurrency, name, run)
                fleet.reset()
                if fault is steady:
                    costs.append((concurrency, run, plain))
            plain.append(measure(fleet, server.control(), concurrency, args.rpcs, steady, False))
        print("cost (steady runs; without attribution: the runs before and after):")
        for concurrency, run, plain in costs:
            rate = sum(p.rate for p in plain) / len(plain)
            cpu = sum(p.cpu_ms for p in plain) / len(plain)
            print(
                f"{concurrency:>9} in flight: {run.rate:.0f} RPC/s against {rate:.0f} "
                f"({run.rate / rate:.0%}; without: {', '.join(f'{p.rate:.0f}' for p in plain)}); "
                f"client CPU {run.cpu_ms:.2f} ms/RPC against {cpu:.2f} "
                f"(+{run.cpu_ms - cpu:.2f} ms for {run.reads:.2f} channelz reads)"
            )


if __name__ == "__main__":
    main()
