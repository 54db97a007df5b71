"""HTTP/2 fault point benchmark: what the point adds to an RPC's latency.

Starts the built-in Greeter (``python -m fleet.server``, TLS, its own process), the
embedded Toxiproxy and each HTTP/2 point process (the compiled one and Python's, side by
side: chaos/http2/control.py), and runs unary ``SayHello`` RPCs with 16 in flight (16
client threads, one channel) on these paths:

    direct                   client -> backend
    toxiproxy                client -> Toxiproxy (TCP) -> backend
    point (IMPL)             client -> HTTP/2 point -> backend
    toxiproxy + point (IMPL) client -> Toxiproxy -> HTTP/2 point -> backend

The paths are measured in turn, ``--rounds`` times over (each round runs every path, in an
order shuffled anew each round), so that a machine whose load drifts during the run, and
whatever a path leaves behind for the next, weigh on every path alike. Prints, per
path, p50 and p99 over all its RPCs and the median over rounds of what it adds to the
direct p50 *of the same round*, and the CPU time each point process used per RPC it
relayed. No fault is active. The goal: the point adds at most 1 ms to the p50 at 16 in
flight. ``--burners N`` runs N busy loops beside, for the same on a busy machine.

    .venv/bin/python bench/bench_http2_point.py [--rpcs N] [--rounds N] [--in-flight N]
        [--implementation go|python]... [--burners N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402

from chaos.gate import campaign  # noqa: E402
from chaos.http2 import Http2Server, go_build  # noqa: E402
from chaos.http2.control import IMPLEMENTATIONS  # noqa: E402
from chaos.toxiproxy_server.control import ToxiproxyServer  # noqa: E402
from fleet.pki import FLEET_NAME, PKI  # noqa: E402
from fleet.procs import lifeline  # noqa: E402
from fleet.protos.greeter_pb2 import HelloRequest  # noqa: E402
from fleet.protos.greeter_pb2_grpc import GreeterStub  # noqa: E402


def start_backend(pki: PKI):
    files = pki.server_cert("b1", "127.0.0.1")
    process = lifeline.spawn(
        [
            sys.executable,
            "-m",
            "fleet.server",
            "--id",
            "b1",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            str(files.cert),
            "--key",
            str(files.key),
            "--parent-pid",
            str(os.getpid()),
        ]
    )
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    host, _, port = ready["address"].rpartition(":")
    return process, (host, int(port)), files


WARM_UP = 200


def measure(pki: PKI, target: str, rpcs: int, in_flight: int) -> list[float]:
    """Latencies (seconds) of ``rpcs`` unary RPCs, ``in_flight`` at a time."""
    channel = grpc.secure_channel(
        target,
        grpc.ssl_channel_credentials(pki.ca_cert.read_bytes()),
        options=[("grpc.ssl_target_name_override", FLEET_NAME)],
    )
    hello = GreeterStub(channel).SayHello
    for _ in range(WARM_UP):  # warm up: connection, TLS, BDP, the interpreters
        hello(HelloRequest(name="warm"), timeout=10, wait_for_ready=True)
    samples: list[float] = []
    lock = threading.Lock()
    each = rpcs // in_flight

    def worker() -> None:
        mine = []
        for n in range(each):
            started = time.perf_counter()
            hello(HelloRequest(name=f"r{n}"), timeout=10)
            mine.append(time.perf_counter() - started)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpcs", type=int, default=4000, help="RPCs a path a round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seed", type=int, default=1, help="of the order of the paths")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument(
        "--implementation",
        choices=IMPLEMENTATIONS,
        action="append",
        help="a point process to measure (repeatable; default: both, or Python's alone "
        "where the compiled one cannot be built)",
    )
    parser.add_argument(
        "--burners", type=int, default=0, help="busy-loop processes beside (a busy machine)"
    )
    args = parser.parse_args()
    implementations = args.implementation or (
        ["python"] if go_build.missing() else ["go", "python"]
    )
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-h2-") as tmp:
        pki = PKI(Path(tmp))
        backend, address, files = start_backend(pki)
        stack.callback(lambda: (backend.terminate(), backend.wait(10)))
        toxiproxy = stack.enter_context(ToxiproxyServer(kind="embedded"))
        proxies = toxiproxy.control()
        upstream = f"{address[0]}:{address[1]}"
        paths = {"direct": upstream, "toxiproxy": proxies.create("direct", "127.0.0.1:0", upstream)}
        pids = {}
        for implementation in implementations:
            server = stack.enter_context(Http2Server(implementation=implementation))
            point = server.add_point(
                "b1",
                upstream=address,
                server_name=FLEET_NAME,
                cert=files.cert,
                key=files.key,
                ca=pki.ca_cert,
            )
            paths[f"point ({implementation})"] = point.target
            paths[f"toxiproxy + point ({implementation})"] = proxies.create(
                f"point-{implementation}", "127.0.0.1:0", point.target
            )
            pids[implementation] = server.pid
        burners = campaign.start_burners(args.burners)
        stack.callback(campaign.stop_burners, burners)
        rows: dict[str, list[float]] = {name: [] for name in paths}
        added: dict[str, list[float]] = {name: [] for name in paths}
        cpu = dict.fromkeys(implementations, 0.0)
        relayed = dict.fromkeys(implementations, 0)
        order = random.Random(args.seed)
        for _ in range(args.rounds):
            this_round = {}
            for name in order.sample(list(paths), len(paths)):
                owner = next((i for i in implementations if f"({i})" in name), None)
                before = cpu_seconds(pids[owner]) if owner else 0.0
                this_round[name] = measure(pki, paths[name], args.rpcs, args.in_flight)
                if owner:
                    cpu[owner] += cpu_seconds(pids[owner]) - before
                    relayed[owner] += args.rpcs + WARM_UP
            base = statistics.median(this_round["direct"])
            for name, samples in this_round.items():
                rows[name].extend(samples)
                added[name].append(statistics.median(samples) - base)
        load = os.getloadavg()[0]
    print(
        f"unary SayHello, {args.in_flight} in flight, {args.rounds} rounds of {args.rpcs} RPCs"
        f" a path, {args.burners} burner(s); load average {load:.1f}"
    )
    print(f"{'path':<28}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}{'range':>16}{'RPC/s':>8}")
    for name, samples in rows.items():
        p50 = statistics.median(samples)
        rate = len(samples) / sum(samples) * args.in_flight
        spread = f"{min(added[name]) * 1e3:+.2f}..{max(added[name]) * 1e3:+.2f}"
        print(
            f"{name:<28}{p50 * 1e3:>9.3f}{percentile(samples, 0.99) * 1e3:>9.3f}"
            f"{statistics.median(added[name]) * 1e3:>+9.3f}{spread:>16}{rate:>8.0f}"
        )
    for implementation in implementations:
        point = statistics.median(added[f"point ({implementation})"]) * 1e3
        over_proxy = statistics.median(
            [
                a - b
                for a, b in zip(
                    added[f"toxiproxy + point ({implementation})"], added["toxiproxy"], strict=True
                )
            ]
        )
        print(
            f"the {implementation} point adds {point:.3f} ms to the p50 (goal: at most 1 ms);"
            f" behind Toxiproxy, {over_proxy * 1e3:.3f} ms more than Toxiproxy alone; it used"
            f" {cpu[implementation] / max(relayed[implementation], 1) * 1e3:.3f} ms of CPU per RPC"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
