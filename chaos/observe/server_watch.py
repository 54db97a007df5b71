"""Watching one backend from outside, during its shutdown: what its health service tells a
client, and when its listener stops accepting connections.

    HealthWatch(channel, service)   a Health.Watch stream straight to the backend (no proxy,
                                    no balancer): every status it sends, with its time
    ListenerWatch(address)          connects every PROBE_S until one is refused: the
                                    instant the server closed its listening socket

A graceful shutdown shows NOT_SERVING first, then — after the clients had time to move
away — the listener closing, then the process ending once in-flight RPCs are done. Both
watchers run on threads and stop by themselves (the stream ends with the server; the
probe at the first refusal or its deadline).
"""

from __future__ import annotations

import socket
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# A connect on loopback takes ~0.1 ms: probing every 5 ms places the close within 5 ms
# (a drain period is hundreds of ms) at a negligible cost.
PROBE_S = 0.005


class HealthWatch:
    """The statuses a backend's health service streams for ``service``: [(t_ns, name)]."""

    def __init__(self, channel: grpc.Channel, service: str):
        self.statuses: list[tuple[int, str]] = []
        self.error: str | None = None
        self._call = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service)
        )
        self._thread = threading.Thread(target=self._read, daemon=True, name="health-watch")
        self._thread.start()

    def _read(self) -> None:
        try:
            for reply in self._call:
                self.statuses.append(
                    (
                        time.monotonic_ns(),
                        health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status),
                    )
                )
        except grpc.RpcError as error:  # the server went away: the stream ends
            self.error = f"{error.code().name}: {error.details()}"

    def first(self, status: str, since_ns: int = 0) -> int | None:
        """When ``status`` was first streamed at or after ``since_ns``, or None."""
        return next((t for t, s in self.statuses if s == status and t >= since_ns), None)

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(5)


class ListenerWatch:
    """Connects to ``address`` every PROBE_S from now on; ``closed_ns`` is the first
    refused connect (None while it still accepts, or if it never refused within
    ``timeout_s``)."""

    def __init__(self, address: str, timeout_s: float):
        host, port = address.rsplit(":", 1)
        self._target = (host, int(port))
        self._deadline = time.monotonic() + timeout_s
        self.closed_ns: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True, name="listener-watch")
        self._thread.start()

    def _probe(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                with socket.create_connection(self._target, timeout=1):
                    pass
            except ConnectionRefusedError:
                self.closed_ns = time.monotonic_ns()
                return
            except OSError:
                pass  # a timeout or reset while the server goes: not a refusal yet
            self._stop.wait(PROBE_S)  # the probing period, not a wait for a condition

    def wait(self, timeout: float) -> int | None:
        self._thread.join(timeout)
        return self.closed_ns

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
