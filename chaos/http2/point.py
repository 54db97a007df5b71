"""One HTTP/2 fault point: a TLS listener on loopback in front of one backend, its relayed
connections, the faults active on it and the events it saw.

It lives on the event loop of the point process (``python -m chaos.http2``, service.py);
callers in other processes use :class:`chaos.http2.control.Http2Point`. Every method here
runs on that loop and returns within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from typing import Any

from . import faults as kinds
from .faults import Http2Fault
from .relay import CONNECT_TIMEOUT_S, Relay, now_ns

log = logging.getLogger("chaos.http2")

LOOPBACK = "127.0.0.1"
# How long an injection waits for the clients to acknowledge a SETTINGS change.
SETTINGS_ACK_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 5.0
# Events kept a point; older ones are dropped (and counted) so a long run stays bounded.
MAX_EVENTS = 100_000


def server_tls(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """What the point presents to clients: the backend's certificate, ALPN h2, and a
    client certificate required when ``client_ca`` is given (mTLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # HTTP/2 over TLS needs 1.2 or later
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


def upstream_tls(ca: str, client_cert: str | None, client_key: str | None) -> ssl.SSLContext:
    """How the point reaches the backend: trusting ``ca`` (hostname checked against the
    server name), ALPN h2, with a client certificate when given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    return context


class Point:
    """A listener relaying to ``upstream`` (host, port) with the faults below it."""

    def __init__(
        self,
        name: str,
        upstream: tuple[str, int],
        server_name: str,
        server_context: ssl.SSLContext,
        upstream_context: ssl.SSLContext,
    ):
        self.name = name
        self.upstream = upstream
        self.server_name = server_name
        self.server_tls = server_context
        self.upstream_tls = upstream_context
        self.relays: dict[int, Relay] = {}
        self.faults: dict[str, Http2Fault] = {}  # active, by kind, in injection order
        self._left: dict[str, int | None] = {}  # per-stream faults: streams still to hit
        self._events: list[dict[str, Any]] = []
        self._dropped_events = 0
        self.counters: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.address: tuple[str, int] = (LOOPBACK, 0)

    # ---------------------------------------------------------------- lifetime

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._accept,
            LOOPBACK,
            0,
            ssl=self.server_tls,
            ssl_handshake_timeout=CONNECT_TIMEOUT_S,
        )
        self.address = self._server.sockets[0].getsockname()[:2]
        return self.address

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            self.count("connections_without_h2")  # gRPC always offers h2
            writer.close()
            return
        relay = Relay(self, next(self._ids), reader, writer)
        self.relays[relay.id] = relay
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await relay.run()
        finally:
            self.relays.pop(relay.id, None)
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        """Stop listening and close every connection (both hops); bounded."""
        if self._server is not None:
            self._server.close()
        for relay in list(self.relays.values()):
            relay.close("the point was removed")
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), CLOSE_TIMEOUT_S)

    # ---------------------------------------------------------------- what relays ask

    @property
    def withhold_ping_acks(self) -> bool:
        return kinds.WITHHOLD_PING_ACKS in self.faults

    @property
    def starving(self) -> bool:
        return kinds.STARVE_FLOW_CONTROL in self.faults

    def advertised_max_streams(self, backend_value: int) -> int:
        fault = self.faults.get(kinds.MAX_CONCURRENT_STREAMS)
        return backend_value if fault is None else fault.value

    def take_stream_fault(self) -> Http2Fault | None:
        """The per-stream fault a new stream gets (the earliest injected), counting it."""
        for kind, fault in self.faults.items():
            if kind not in kinds.PER_STREAM:
                continue
            left = self._left.get(kind)
            if left is not None:
                if left <= 1:
                    del self.faults[kind]
                    self._left.pop(kind, None)
                    self.record("fault_spent", fault=kind)
                else:
                    self._left[kind] = left - 1
            self.count(f"streams_{kind}")
            return fault
        return None

    def stream_opened(self, in_flight: int) -> None:
        """A stream reached the backend; ``in_flight`` are relayed on its connection."""
        total = sum(len(relay.streams) for relay in self.relays.values())
        self.counters["max_upstream_streams"] = max(
            self.counters.get("max_upstream_streams", 0), total, in_flight
        )
        self.count("upstream_streams")

    def count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record an event on the history's clock (CLOCK_MONOTONIC ns)."""
        event = {"t_ns": now_ns(), "point": self.name, "event": kind, **fields}
        if len(self._events) >= MAX_EVENTS:
            self._events.pop(0)
            self._dropped_events += 1
        self._events.append(event)
        return event

    def events(self, since: int = 0) -> dict[str, Any]:
        """Events from index ``since`` on (indices count dropped ones too)."""
        start = max(0, since - self._dropped_events)
        return {
            "events": self._events[start:],
            "next": self._dropped_events + len(self._events),
            "dropped": self._dropped_events,
        }

    def open_connections(self) -> list[Relay]:
        return [
            relay for relay in self.relays.values() if relay.down is not None and not relay.closing
        ]

    # ---------------------------------------------------------------- faults

    async def inject(self, fault: Http2Fault) -> dict[str, Any]:
        """Put ``fault`` in force; returns ``{"in_force_ns": ..., "connections": n, ...}``.

        One-shot GOAWAYs act on the connections open now and raise ValueError when there is
        none (or, below in-flight, none with a stream in flight). The others hold for
        current and new connections until cleared (per-stream ones until ``count`` streams
        were hit); injecting a kind already active replaces it.
        """
        if fault.kind in kinds.ONE_SHOT:
            return self._goaway(fault)
        if fault.kind in kinds.PER_STREAM:
            self._left[fault.kind] = fault.count
        self.faults.pop(fault.kind, None)
        self.faults[fault.kind] = fault
        result: dict[str, Any] = {"connections": len(self.open_connections())}
        if fault.kind == kinds.MAX_CONCURRENT_STREAMS:
            relays = self.open_connections()
            for relay in relays:
                relay.update_max_streams()
            acked = await asyncio.gather(
                *(relay.settings_acknowledged(SETTINGS_ACK_TIMEOUT_S) for relay in relays)
            )
            result["unacknowledged"] = acked.count(False)
        result["in_force_ns"] = now_ns()
        self.record("fault", fault=fault.kind, action="in_force", **_detail(fault))
        return result

    def _goaway(self, fault: Http2Fault) -> dict[str, Any]:
        relays = self.open_connections()
        if not relays:
            raise ValueError(
                f"HTTP/2 point {self.name!r}: no connection is open to send a GOAWAY on"
            )
        if fault.kind == kinds.TOO_MANY_PINGS:
            code, debug = kinds.error_code("ENHANCE_YOUR_CALM"), b"too_many_pings"
        else:
            code, debug = kinds.error_code(fault.code), fault.debug.encode()
        targets: list[tuple[Relay, int | None]] = []
        if fault.kind == kinds.GOAWAY_BELOW_IN_FLIGHT:
            for relay in relays:
                flight = relay.in_flight()
                if fault.last_stream_id is not None:
                    targets.append((relay, fault.last_stream_id))
                elif flight:
                    targets.append((relay, max(0, flight[0] - 2)))
            if not targets:
                raise ValueError(
                    f"HTTP/2 point {self.name!r}: no stream in flight to send a GOAWAY below"
                )
        else:
            targets = [(relay, None) for relay in relays]
        sent = [relay.goaway(code, last, debug, fault.grace_ms / 1000) for relay, last in targets]
        return {"in_force_ns": now_ns(), "connections": len(sent), "last_stream_ids": sent}

    async def clear(self, kind: str) -> dict[str, Any]:
        """End the fault of ``kind``; a no-op (``cleared`` false) when it is not active."""
        if kind not in kinds.KINDS:
            raise ValueError(
                f"unknown HTTP/2 fault kind {kind!r} (known: {', '.join(kinds.KINDS)})"
            )
        fault = self.faults.pop(kind, None)
        self._left.pop(kind, None)
        if fault is not None:
            if kind == kinds.STARVE_FLOW_CONTROL:
                for relay in self.open_connections():
                    relay.release_withheld()
            elif kind == kinds.MAX_CONCURRENT_STREAMS:
                for relay in self.open_connections():
                    relay.update_max_streams()
            self.record("fault", fault=kind, action="cleared")
        return {"cleared": fault is not None, "cleared_ns": now_ns()}

    def set_certificate(self, cert: str, key: str) -> None:
        """Present ``cert`` (with ``key``) to new connections; open ones keep theirs — as a
        server swapping its certificate live does. A pair that does not load is a
        ValueError, and the old one stays."""
        try:
            self.server_tls.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as err:
            raise ValueError(f"HTTP/2 point {self.name!r}: certificate not loaded: {err}") from None

    def stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.open_connections()),
            "streams": sum(len(relay.streams) for relay in self.relays.values()),
            "faults": [fault.to_json() for fault in self.faults.values()],
            "counters": dict(self.counters),
        }


def _detail(fault: Http2Fault) -> dict[str, Any]:
    return {key: value for key, value in fault.to_json().items() if key != "kind"}
