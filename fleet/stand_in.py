"""A stand-in for a dead backend: accepts every connection, notes when, and closes it.

Behind a Toxiproxy proxy a dead backend (nothing listening upstream) and this stand-in look
the same to a client — its connection is closed during the TLS handshake, so the attempt
fails — but the stand-in *sees* each of the client's reconnection attempts::

    client --attempt--> proxy (published address) --> stand-in: accept, note t, close
                                                   later: proxy repointed to the new backend

Scenarios use it to bring a backend back right after one of the client's attempts, so
what follows measures the client's real reconnect backoff and not the phase of a timer.

Loopback only; one daemon thread; nothing is read from a connection.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
import time


class StandIn:
    """Listens on ``host:port`` (0: any free port) and records each accepted connection's
    arrival (``time.monotonic_ns``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        if not ipaddress.IPv4Address(host).is_loopback:
            raise ValueError(f"stand-in host {host} is not loopback")
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self.address = f"{host}:{self._sock.getsockname()[1]}"
        self._arrivals: list[int] = []
        self._changed = threading.Condition()
        self._wake = socket.socketpair()
        self._thread = threading.Thread(
            target=self._serve, name=f"stand-in-{self.address}", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake[0] in ready:
                    return
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    continue
                arrived = time.monotonic_ns()
                with self._changed:  # noted before the close, so a client that saw the
                    self._arrivals.append(arrived)  # close finds its attempt noted
                    self._changed.notify_all()
                conn.close()

    @property
    def arrivals(self) -> list[int]:
        with self._changed:
            return list(self._arrivals)

    def wait_for_arrival(self, since_ns: int, timeout: float) -> int:
        """The first arrival at or after ``since_ns``, waiting up to ``timeout`` seconds."""

        def first() -> int | None:
            return next((t for t in self._arrivals if t >= since_ns), None)

        with self._changed:
            found = self._changed.wait_for(first, timeout)
        if found is None:
            raise TimeoutError(
                f"no connection attempt reached the stand-in {self.address} within {timeout:g} s"
            )
        return found

    def close(self) -> None:
        if self._thread.is_alive():
            self._wake[1].send(b"x")
            self._thread.join(5)
        for sock in (self._sock, *self._wake):
            sock.close()
