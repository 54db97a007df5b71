"""HTTP/2 faults: protocol events on one backend's connections, injected by its HTTP/2 fault
point (chaos/http2/, docs/http2.md) — GOAWAYs, RST_STREAM, withheld PING ACKs, stream
limits, flow-control starvation, committed-then-silent responses, Trailers-Only answers.

They need a fleet started with ``http2=True`` (a scenario module: ``chaos_fleet =
{"http2": True}``); on any other fleet ``apply`` raises a FleetError naming the backend
before anything is sent. Bad parameters (an unknown HTTP/2 error code or gRPC status) raise
ValueError when the fault is built.

Each fault's event is in force once the point answered (GOAWAYs: written on every open
connection; MAX_CONCURRENT_STREAMS: acknowledged by the clients). The point's own record of
it, and every GOAWAY (who sent it, code, last-stream-id) and connection opened or closed,
are copied into the history as notes on its clock (``http2:goaway``, ``http2:open``,
``http2:close``, ``http2:fault``, ...) when the scenario ends: the first HTTP/2 fault of a
nemesis injects :class:`ConnectionEvents`, which the nemesis undoes with the rest.

Importing this module registers chaos.http2's point server as what ``Fleet(http2=True)``
starts (fleet/points.py: the fleet never imports chaos).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from chaos.faults.base import Fault, Nemesis
from chaos.history import History
from chaos.http2 import Http2Fault, Http2Server
from fleet import points


def _start_point_server() -> Http2Server:
    return Http2Server().start()


points.register(_start_point_server)


# What the point says of a GOAWAY with no connection to send it on (chaos/http2/point.py).
NO_CONNECTION = "no connection is open"


class PointFault(Fault):
    """A fault one backend's HTTP/2 point injects; ``wire()`` is what it sends the point."""

    backend: str

    @abstractmethod
    def wire(self) -> Http2Fault:
        """The point's fault (validated when built: a bad code is a ValueError)."""

    def __post_init__(self) -> None:
        self.wire()  # bad input is an error when the fault is built, before any injection

    def apply(self, nemesis: Nemesis) -> None:
        point = nemesis.fleet.http2_point(self.backend)  # FleetError without a point
        ConnectionEvents.ensure(nemesis)
        point.inject(self.wire())

    def revert(self, nemesis: Nemesis) -> None:
        nemesis.fleet.http2_point(self.backend).clear(self.wire().kind)


class _OneShot(PointFault):
    # A GOAWAY is sent once: nothing to clear, its connections are gone after the grace.
    instant = True

    def revert(self, nemesis: Nemesis) -> None:
        pass


@dataclass(frozen=True)
class Goaway(_OneShot):
    """Graceful GOAWAY (``code``, NO_ERROR by default) with last-stream-id = the highest
    stream seen, on every connection open to the backend's point, each closed after
    ``grace_ms``: what a server's graceful restart or max connection age looks like on the
    wire. In-flight RPCs may finish; new ones must use a new connection. ValueError when no
    connection is open — unless ``if_open``: then nothing is sent (the fuzzer's schedules,
    where another fault may have closed them first)."""

    backend: str
    grace_ms: int = 1000
    code: str = "NO_ERROR"
    if_open: bool = False
    kind = "http2:goaway"

    def wire(self) -> Http2Fault:
        return Http2Fault.goaway(code=self.code, grace_ms=self.grace_ms)

    def apply(self, nemesis: Nemesis) -> None:
        try:
            super().apply(nemesis)
        except ValueError as err:
            if not (self.if_open and NO_CONNECTION in str(err)):
                raise


@dataclass(frozen=True)
class GoawayBelowInFlight(_OneShot):
    """GOAWAY whose last-stream-id is below the streams in flight (the lowest in flight
    minus 2, or ``last_stream_id``): those streams were not processed (the point abandons
    them), so gRPC retries them transparently on a new connection, without a retry policy.
    ValueError when no stream is in flight."""

    backend: str
    last_stream_id: int | None = None
    grace_ms: int = 1000
    kind = "http2:goaway_below_in_flight"

    def wire(self) -> Http2Fault:
        return Http2Fault.goaway_below_in_flight(self.last_stream_id, grace_ms=self.grace_ms)


@dataclass(frozen=True)
class TooManyPings(_OneShot):
    """GOAWAY ENHANCE_YOUR_CALM "too_many_pings", then close after ``grace_ms``: what a
    gRPC server sends a client whose keepalive pings are too frequent."""

    backend: str
    grace_ms: int = 0
    kind = "http2:too_many_pings"

    def wire(self) -> Http2Fault:
        return Http2Fault.too_many_pings(grace_ms=self.grace_ms)


@dataclass(frozen=True)
class RstStream(PointFault):
    """RST_STREAM ``code`` (REFUSED_STREAM, CANCEL, INTERNAL_ERROR, ...) on the backend's
    next ``count`` new streams (every one while in force when None); they never reach it."""

    backend: str
    code: str = "REFUSED_STREAM"
    count: int | None = None
    kind = "http2:rst_stream"

    def wire(self) -> Http2Fault:
        return Http2Fault.rst_stream(self.code, count=self.count)


@dataclass(frozen=True)
class WithholdPingAcks(PointFault):
    """The backend's PING ACKs are dropped on their way to the client while everything
    else flows: only a keepalive ping with a timeout notices."""

    backend: str
    kind = "http2:withhold_ping_acks"

    def wire(self) -> Http2Fault:
        return Http2Fault.withhold_ping_acks()


@dataclass(frozen=True)
class MaxConcurrentStreams(PointFault):
    """SETTINGS_MAX_CONCURRENT_STREAMS ``value`` to the backend's clients (in force once
    they acknowledged it): 1 makes RPCs queue at the client; 0 makes them wait for their
    deadline."""

    backend: str
    value: int = 1
    kind = "http2:max_concurrent_streams"

    def wire(self) -> Http2Fault:
        return Http2Fault.max_concurrent_streams(self.value)


@dataclass(frozen=True)
class StarveFlowControl(PointFault):
    """No WINDOW_UPDATE to the backend: a response larger than the point's receive window
    (256 KiB a stream) stalls until cleared."""

    backend: str
    kind = "http2:starve_flow_control"

    def wire(self) -> Http2Fault:
        return Http2Fault.starve_flow_control()


@dataclass(frozen=True)
class HeadersThenNothing(PointFault):
    """The backend's next ``count`` new streams (all while in force when None) get its
    response headers and then nothing: committed RPCs that only their deadline ends — no
    retry policy may replay them (gRFC A6). The point counts them (``responses_muted``)."""

    backend: str
    count: int | None = None
    kind = "http2:headers_then_nothing"

    def wire(self) -> Http2Fault:
        return Http2Fault.headers_then_nothing(count=self.count)


@dataclass(frozen=True)
class TrailersOnly(PointFault):
    """The backend's next ``count`` new streams (all while in force when None) are answered
    by the point with a Trailers-Only response: gRPC status ``code`` (a name such as
    UNAVAILABLE), ``message``; they never reach the backend."""

    backend: str
    code: str = "UNAVAILABLE"
    message: str = ""
    count: int | None = None
    kind = "http2:trailers_only"

    def wire(self) -> Http2Fault:
        return Http2Fault.trailers_only(self.code, self.message, count=self.count)


# What each point event is called in the history.
NOTE_KINDS = {
    "open": "http2:open",
    "close": "http2:close",
    "goaway": "http2:goaway_seen",
    "fault": "http2:fault",
    "fault_spent": "http2:fault_spent",
    "committed": "http2:committed",
}


@dataclass(frozen=True)
class ConnectionEvents(Fault):
    """Not a fault: while in force, what every HTTP/2 point of the fleet sees (connections
    opened and closed, GOAWAYs by whom with code and last-stream-id, faults in force or
    cleared) is collected; when undone (the scenario's end at the latest) it is copied into
    the history as notes at the point's instants (CLOCK_MONOTONIC: the history's clock).

    ``kind`` of each note: ``http2:open``, ``http2:close``, ``http2:goaway_seen``,
    ``http2:fault``, ``http2:fault_spent``, ``http2:committed`` (an RPC whose response
    headers the client had when its stream was lost: ``rpc`` is its history id,
    ``headers_ns`` when the headers were passed on); its target is the backend id. Events from
    before it was applied are left out."""

    backend: str | None = None
    kind = "http2:connection_events"

    @staticmethod
    def ensure(nemesis: Nemesis) -> None:
        """Inject one for this nemesis unless one is in force."""
        if not any(isinstance(fault, ConnectionEvents) for fault in nemesis.active):
            nemesis.inject(ConnectionEvents())

    def apply(self, nemesis: Nemesis) -> None:
        if nemesis.history.follows_sources:
            nemesis.history.pull()  # a scenario's history holds them all already
            return
        for point in _points(nemesis.fleet):
            point.new_events()  # move past what earlier scenarios saw

    def revert(self, nemesis: Nemesis) -> None:
        record_events(nemesis.history, nemesis.fleet)


def follow_events(history: History, fleet) -> bool:
    """Keep ``history`` holding every connection event the fleet's HTTP/2 points see from
    now on (earlier ones are skipped): copied in before every read of its events. False
    when the fleet has no point (nothing to follow)."""
    points = _points(fleet)
    for point in points:
        point.new_events()
    if points:
        history.add_source(lambda: record_events(history, fleet))
    return bool(points)


def _points(fleet) -> list[Any]:
    return [b.point for b in fleet.backends if b.point is not None]


def record_events(history: History, fleet) -> int:
    """Copy every point's events since the last copy into ``history`` as notes (see
    :class:`ConnectionEvents`); returns how many."""
    count = 0
    for point in _points(fleet):
        for event in point.new_events():
            detail = {k: v for k, v in event.items() if k not in ("t_ns", "point", "event")}
            kind = NOTE_KINDS.get(event["event"], f"http2:{event['event']}")
            history.note(kind, point.name, int(event["t_ns"]), **detail)
            count += 1
    return count
