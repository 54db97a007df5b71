"""Toxiproxy data path benchmark: direct vs the embedded server (vs a real one on PATH).

Prints, for each path: request/response round trips per second on one connection and
their latency (p50, p99, and what the proxy adds to the direct p50/p99), and the bulk
throughput of one connection in MB/s. No toxics are set. The upstream servers (echo and
sink) run in a separate process so the client, the servers and the proxy each have their
own interpreter. Goals: added p50 under 150 µs, bulk at least 500 MB/s.

    .venv/bin/python bench/bench_toxiproxy.py [--round-trips N] [--bulk-mb N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.toxiproxy_server.control import ToxiproxyServer  # noqa: E402

LOOPBACK = "127.0.0.1"
MESSAGE = b"m" * 64  # a small request, as in an RPC
BLOCK = 1 << 20  # the bulk sender writes 1 MiB at a time


# --------------------------------------------------------- upstream servers (own process)


def _echo(conn: socket.socket) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(65536):
            conn.sendall(data)


def _sink(conn: socket.socket) -> None:
    """Read an 8-byte length, then that many bytes, then acknowledge with one byte."""
    with conn:
        header = b""
        while len(header) < 8:
            piece = conn.recv(8 - len(header))
            if not piece:
                return
            header += piece
        left = struct.unpack(">Q", header)[0]
        buffer = bytearray(4 << 20)
        while left > 0:
            got = conn.recv_into(buffer, min(left, len(buffer)))
            if not got:
                return
            left -= got
        conn.sendall(b"k")


def _serve(listener: socket.socket, handler) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def upstreams(ready, stop) -> None:
    """The child process: an echo and a sink server on loopback until ``stop`` is set."""
    listeners = []
    for handler in (_echo, _sink):
        listener = socket.socket()
        listener.bind((LOOPBACK, 0))
        listener.listen(64)
        listeners.append(listener)
        threading.Thread(target=_serve, args=(listener, handler), daemon=True).start()
    ready.send([f"{LOOPBACK}:{s.getsockname()[1]}" for s in listeners])
    stop.wait(600)  # bounded: the parent sets it when done
    for listener in listeners:
        listener.close()


# ------------------------------------------------------------------------ measurements


def _connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trips(address: str, count: int) -> list[float]:
    """Seconds per 64-byte request/response on one connection (after a warm-up)."""
    samples = []
    with _connect(address) as sock:
        for i in range(count + 200):
            start = time.perf_counter()
            sock.sendall(MESSAGE)
            got = 0
            while got < len(MESSAGE):
                got += len(sock.recv(65536))
            if i >= 200:
                samples.append(time.perf_counter() - start)
    return samples


def bulk(address: str, megabytes: int) -> float:
    """MB/s (10^6 bytes) of one connection sending ``megabytes`` MiB to the sink."""
    total = megabytes * BLOCK
    block = memoryview(bytearray(BLOCK))
    with _connect(address) as sock:
        start = time.perf_counter()
        sock.sendall(struct.pack(">Q", total))
        for _ in range(megabytes):
            sock.sendall(block)
        assert sock.recv(1) == b"k", "the sink did not get everything"
        elapsed = time.perf_counter() - start
    return total / elapsed / 1e6


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(label: str, echo: str, sink: str, args) -> dict:
    samples = round_trips(echo, args.round_trips)
    return {
        "label": label,
        "rps": len(samples) / sum(samples),
        "p50": statistics.median(samples),
        "p99": percentile(samples, 0.99),
        "mbps": bulk(sink, args.bulk_mb),
    }


def through(server: ToxiproxyServer, label: str, echo: str, sink: str, args) -> dict:
    control = server.control()
    echo_proxy = control.create("bench-echo", "127.0.0.1:0", echo)
    sink_proxy = control.create("bench-sink", "127.0.0.1:0", sink)
    return measure(label, echo_proxy, sink_proxy, args)


def report(rows: list[dict]) -> None:
    direct = rows[0]
    print(
        f"{'path':<28}{'round trips/s':>15}{'p50 µs':>9}{'p99 µs':>9}"
        f"{'+p50 µs':>9}{'+p99 µs':>9}{'bulk MB/s':>11}"
    )
    for row in rows:
        added = (
            ""
            if row is direct
            else (
                f"{(row['p50'] - direct['p50']) * 1e6:>9.0f}{(row['p99'] - direct['p99']) * 1e6:>9.0f}"
            )
        )
        print(
            f"{row['label']:<28}{row['rps']:>15,.0f}{row['p50'] * 1e6:>9.0f}"
            f"{row['p99'] * 1e6:>9.0f}{added or ' ' * 18}{row['mbps']:>11,.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--bulk-mb", type=int, default=1024)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    stop = context.Event()
    child = context.Process(target=upstreams, args=(child_end, stop), daemon=True)
    child.start()
    try:
        echo, sink = parent_end.recv()
        rows = [measure("direct", echo, sink, args)]
        with ToxiproxyServer("embedded") as server:
            rows.append(through(server, "embedded proxy", echo, sink, args))
        if shutil.which("toxiproxy-server"):
            with ToxiproxyServer("binary") as server:
                rows.append(through(server, "toxiproxy-server (real)", echo, sink, args))
        else:
            print("(no toxiproxy-server on PATH: the real server is not measured)")
        report(rows)
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
