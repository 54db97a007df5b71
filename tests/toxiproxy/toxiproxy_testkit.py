"""Loopback sockets for the Toxiproxy tests: upstream servers and client-side measurements.

Everything here talks to 127.0.0.1 only, every wait has a deadline, and every loop is
bounded. Servers run in one thread each with a selector (so 1,000 connections cost no
threads) and are stopped, with all their sockets closed, by ``close()``.
"""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"

# ---------------------------------------------------------------------- timing policy
# Every timed assertion in this suite follows one rule (issue 8). What a toxic promises is
# a lower bound -- it never releases data early -- and is asserted strictly, less EARLY_S
# for the clocks' granularity. A busy machine only ever adds time, and unevenly: measured
# here in batches of nine round trips through a 100 ms latency (embedded server, four CPU
# burners beside other work, load average 5-14), a slowest came 556 ms late and a median
# 198 ms late, while the fastest of a batch was at most 3.4 ms late (90 batches). So an
# upper bound is one of:
#   * the least that the break it catches would give, on the fastest of several samples
#     (a delay applied twice makes every sample take at least twice the delay), or on one
#     sample with the whole gap between promise and break as its margin;
#   * LATE_S past the promise, for what should happen at once: it catches "broken"
#     (never, or seconds late), not "slow machine".
EARLY_S = 0.0005
LATE_S = 1.0
# How long to wait for something that takes milliseconds on a quiet machine.
WAIT_S = 5.0


def assert_delays(samples: list[float], at_least: float, fastest_below: float) -> None:
    """Every sample took ``at_least`` s (less EARLY_S), the fastest under ``fastest_below``.

    ``fastest_below`` is what the break to catch would make every sample take at least
    (e.g. twice the delay for a toxic applied twice): load makes some samples late, so
    the fastest of several stays near the truth however busy the machine is.
    """
    shown = [round(sample * 1000, 1) for sample in samples]
    assert min(samples) >= at_least - EARLY_S, (
        f"released before {at_least * 1000:g} ms (ms: {shown})"
    )
    assert min(samples) < fastest_below, (
        f"not one sample faster than {fastest_below * 1000:g} ms (ms: {shown})"
    )


@dataclass
class Peer:
    """What an upstream server saw of one accepted connection."""

    received: bytearray = field(default_factory=bytearray)
    first_at: float | None = None  # time.monotonic() of the first byte
    last_at: float | None = None
    ended_at: float | None = None  # EOF or reset seen
    reset: bool = False


class Upstream:
    """A loopback TCP server: ``echo`` sends back what it reads, ``sink`` only records.

    Both close a connection when its client ends it. ``peers`` lists every connection in
    accept order; ``open_count`` is how many are still open.
    """

    def __init__(self, mode: str = "echo", backlog: int = 4096):
        assert mode in ("echo", "sink")
        self.mode = mode
        self.peers: list[Peer] = []
        self._lock = threading.Lock()
        self._open: dict[socket.socket, tuple[Peer, bytearray]] = {}
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(backlog)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.address = f"{LOOPBACK}:{self.port}"
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"upstream-{mode}", daemon=True)
        self._thread.start()

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread and close every socket (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(10)
        for sock in list(self._open):
            sock.close()
        self._open.clear()
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def _run(self) -> None:
        while not self._stopping:
            for key, events in self._selector.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data != "wake":
                    self._serve(key.fileobj, events)

    def _accept(self) -> None:
        for _ in range(1024):  # drain the backlog in bounded batches
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = Peer()
            with self._lock:
                self.peers.append(peer)
                self._open[sock] = (peer, bytearray())
            self._selector.register(sock, selectors.EVENT_READ, "conn")

    def _serve(self, sock: socket.socket, events: int) -> None:
        peer, pending = self._open[sock]
        if events & selectors.EVENT_READ:
            try:
                data = sock.recv(262144)
            except ConnectionResetError:
                peer.reset = True
                data = b""
            except (BlockingIOError, InterruptedError):
                return
            now = time.monotonic()
            if not data:
                peer.ended_at = now
                self._drop(sock)
                return
            peer.received += data
            peer.first_at = peer.first_at or now
            peer.last_at = now
            if self.mode == "echo":
                pending += data
        if pending:
            self._flush(sock, pending)

    def _flush(self, sock: socket.socket, pending: bytearray) -> None:
        try:
            sent = sock.send(pending)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(sock)
            return
        del pending[:sent]
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending else 0)
        self._selector.modify(sock, wanted, "conn")

    def _drop(self, sock: socket.socket) -> None:
        self._selector.unregister(sock)
        with self._lock:
            self._open.pop(sock, None)
        sock.close()


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def connect(address: str, timeout: float = WAIT_S) -> socket.socket:
    sock = socket.create_connection(split(address), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, size: int, timeout: float = WAIT_S) -> bytes:
    """Read exactly ``size`` bytes (AssertionError if the peer ends first or time runs out)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) < size:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out after {len(data)} of {size} bytes"
        sock.settimeout(left)
        piece = sock.recv(size - len(data))
        assert piece, f"connection ended after {len(data)} of {size} bytes"
        data += piece
    return bytes(data)


def read_until_closed(sock: socket.socket, timeout: float = WAIT_S) -> tuple[bytes, str, float]:
    """Read until the peer ends the connection: (data, "eof" | "reset", monotonic time)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"still open after {timeout} s ({len(data)} bytes read)")
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return bytes(data), "reset", time.monotonic()
        except TimeoutError:
            continue
        if not piece:
            return bytes(data), "eof", time.monotonic()
        data += piece


def stays_open(sock: socket.socket, period: float) -> bytes:
    """Watch a connection for ``period`` s; AssertionError if it ends. Returns bytes read."""
    deadline = time.monotonic() + period
    data = bytearray()
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        assert piece, "the connection ended"
        data += piece
    return bytes(data)


def round_trip(sock: socket.socket, payload: bytes = b"x") -> float:
    """Send ``payload`` to an echo server and wait for it back; returns seconds."""
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload
    return time.perf_counter() - start


def round_trips(address: str, count: int, payload: bytes = b"x") -> list[float]:
    with connect(address) as sock:
        round_trip(sock, payload)  # warm-up: connection set-up is not measured
        return [round_trip(sock, payload) for _ in range(count)]


def refused(address: str) -> bool:
    """Whether a connect to ``address`` is refused (ECONNREFUSED)."""
    try:
        with socket.create_connection(split(address), timeout=2.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError as err:
        return err.errno == errno.ECONNREFUSED


def wait_for(condition, timeout: float, what: str):
    """Poll ``condition`` until it is true (returns its value) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    for delay in _backoff():
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
    raise AssertionError(f"gave up waiting for {what}")


def _backoff():
    delay = 0.001
    for _ in range(10000):
        yield delay
        delay = min(delay * 2, 0.05)
