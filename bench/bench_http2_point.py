"""HTTP/2 fault point benchmark: what the point adds to an RPC's latency.

Starts the built-in Greeter (``python -m fleet.server``, TLS, its own process), the HTTP/2
point process and the embedded Toxiproxy, and runs unary ``SayHello`` RPCs with 16 in
flight (16 client threads, one channel) on four paths:

    direct              client -> backend
    toxiproxy           client -> Toxiproxy (TCP) -> backend
    point               client -> HTTP/2 point -> backend
    toxiproxy + point   client -> Toxiproxy -> HTTP/2 point -> backend

The paths are measured in turn, ``--rounds`` times over (each round runs every path, in an
order shuffled anew each round), so that a machine whose load drifts during the run, and
whatever a path leaves behind for the next, weigh on every path alike. Prints, per
path, p50 and p99 over all its RPCs and the median over rounds of what it adds to the
direct p50 *of the same round*, and the CPU time the point process used per RPC it
relayed. No fault is active. The goal: the point adds at most 1 ms
to the p50 at 16 in flight.

    .venv/bin/python bench/bench_http2_point.py [--rpcs N] [--rounds N] [--in-flight N]
"""

from __future__ import annotations

import argparse
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

from chaos.http2 import Http2Server  # noqa: E402
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-h2-") as directory:
        pki = PKI(Path(directory))
        backend, address, files = start_backend(pki)
        try:
            with ToxiproxyServer(kind="embedded") as toxiproxy, Http2Server() as h2:
                proxies = toxiproxy.control()
                upstream = f"{address[0]}:{address[1]}"
                tcp_proxy = proxies.create("bench-direct", "127.0.0.1:0", upstream)
                point = h2.add_point(
                    "b1",
                    upstream=address,
                    server_name=FLEET_NAME,
                    cert=files.cert,
                    key=files.key,
                    ca=pki.ca_cert,
                )
                tcp_point = proxies.create("bench-point", "127.0.0.1:0", point.target)
                paths = {
                    "direct": upstream,
                    "toxiproxy": tcp_proxy,
                    "point": point.target,
                    "toxiproxy + point": tcp_point,
                }
                rows: dict[str, list[float]] = {name: [] for name in paths}
                added: dict[str, list[float]] = {name: [] for name in paths}
                point_cpu = point_rpcs = 0.0
                pid = h2.pid
                assert pid is not None  # started by the with
                order = random.Random(args.seed)
                for _ in range(args.rounds):
                    this_round = {}
                    for name in order.sample(list(paths), len(paths)):
                        before = cpu_seconds(pid)
                        this_round[name] = measure(pki, paths[name], args.rpcs, args.in_flight)
                        if "point" in name:
                            point_cpu += cpu_seconds(pid) - before
                            point_rpcs += args.rpcs + WARM_UP
                    base = statistics.median(this_round["direct"])
                    for name, samples in this_round.items():
                        rows[name].extend(samples)
                        added[name].append(statistics.median(samples) - base)
        finally:
            backend.terminate()
            backend.wait(10)
    print(
        f"unary SayHello, {args.in_flight} in flight, {args.rounds} rounds of {args.rpcs} RPCs"
        f" a path; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'path':<20}{'p50 ms':>10}{'p99 ms':>10}{'+p50 ms':>10}{'range':>18}{'RPC/s':>10}")
    for name, samples in rows.items():
        p50 = statistics.median(samples)
        rate = len(samples) / sum(samples) * args.in_flight
        spread = f"{min(added[name]) * 1e3:+.2f}..{max(added[name]) * 1e3:+.2f}"
        print(
            f"{name:<20}{p50 * 1e3:>10.3f}{percentile(samples, 0.99) * 1e3:>10.3f}"
            f"{statistics.median(added[name]) * 1e3:>+10.3f}{spread:>18}{rate:>10.0f}"
        )
    point = statistics.median(added["point"]) * 1e3
    over_proxy = statistics.median(
        [a - b for a, b in zip(added["toxiproxy + point"], added["toxiproxy"], strict=True)]
    )
    print(
        f"the point adds {point:.3f} ms to the p50 (goal: at most 1 ms); behind Toxiproxy,"
        f" {over_proxy * 1e3:.3f} ms more than Toxiproxy alone; the point process used"
        f" {point_cpu / max(point_rpcs, 1) * 1e3:.3f} ms of CPU per RPC"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
