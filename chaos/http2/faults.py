"""The HTTP/2 faults a point injects, as plain data checked once, on both sides of the
control API (the caller's process and the point's).

Each :class:`Http2Fault` names one ``kind`` and the few parameters that kind takes; the
constructors below (``Http2Fault.goaway()``, ``Http2Fault.rst_stream("CANCEL")``, …) are
the intended way to build one. Bad input raises ValueError naming the problem: an unknown
kind, an unknown HTTP/2 error code, a gRPC status outside 0..16, a parameter the kind does
not take.

Kinds, and what is in force while they are active (docs/http2.md has the gRPC rule each
one exercises):

==========================  ==============================================================
``goaway``                  one-shot: GOAWAY(code, last-stream-id = highest seen) on every
                            open connection, then each is closed after ``grace_ms``
``goaway_below_in_flight``  one-shot: GOAWAY whose last-stream-id is below the streams in
                            flight (``last_stream_id``, or the lowest in flight minus 2);
                            streams above it are abandoned at the point, never answered
``too_many_pings``          one-shot: GOAWAY ENHANCE_YOUR_CALM "too_many_pings", close
                            after ``grace_ms``
``rst_stream``              new streams are reset with ``code`` (the next ``count``, or all
                            while active), never reaching the backend
``withhold_ping_acks``      PING ACKs are not passed to the client (all connections)
``max_concurrent_streams``  SETTINGS_MAX_CONCURRENT_STREAMS = ``value`` sent to the client
``starve_flow_control``     no WINDOW_UPDATE to the backend: a response larger than the
                            point's receive window (256 KiB a stream) stalls
``headers_then_nothing``    new streams reach the backend; its response headers are passed
                            on, then nothing more (no data, no trailers)
``trailers_only``           new streams are answered by the point with a Trailers-Only
                            response (``status``, ``message``), never reaching the backend
==========================  ==============================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from h2.errors import ErrorCodes

from chaos.history import STATUS_CODES

GOAWAY = "goaway"
GOAWAY_BELOW_IN_FLIGHT = "goaway_below_in_flight"
TOO_MANY_PINGS = "too_many_pings"
RST_STREAM = "rst_stream"
WITHHOLD_PING_ACKS = "withhold_ping_acks"
MAX_CONCURRENT_STREAMS = "max_concurrent_streams"
STARVE_FLOW_CONTROL = "starve_flow_control"
HEADERS_THEN_NOTHING = "headers_then_nothing"
TRAILERS_ONLY = "trailers_only"

# One-shot faults act on the connections open at injection and need no clear.
ONE_SHOT = (GOAWAY, GOAWAY_BELOW_IN_FLIGHT, TOO_MANY_PINGS)
# Stream faults act on streams the client opens while they are active.
PER_STREAM = (RST_STREAM, HEADERS_THEN_NOTHING, TRAILERS_ONLY)
KINDS = ONE_SHOT + PER_STREAM + (WITHHOLD_PING_ACKS, MAX_CONCURRENT_STREAMS, STARVE_FLOW_CONTROL)

# Which parameters each kind takes besides ``kind`` (the others must keep their defaults).
_PARAMETERS: dict[str, frozenset[str]] = {
    GOAWAY: frozenset({"code", "grace_ms", "debug"}),
    GOAWAY_BELOW_IN_FLIGHT: frozenset({"code", "grace_ms", "last_stream_id", "debug"}),
    TOO_MANY_PINGS: frozenset({"grace_ms"}),
    RST_STREAM: frozenset({"code", "count"}),
    WITHHOLD_PING_ACKS: frozenset(),
    MAX_CONCURRENT_STREAMS: frozenset({"value"}),
    STARVE_FLOW_CONTROL: frozenset(),
    HEADERS_THEN_NOTHING: frozenset({"count"}),
    TRAILERS_ONLY: frozenset({"status", "message", "count"}),
}


DEFAULT_GRACE_MS = 1000
# A GOAWAY's grace is bounded: the point must close every connection in a known time.
MAX_GRACE_MS = 600_000
# SETTINGS_MAX_CONCURRENT_STREAMS is a 32-bit value.
MAX_SETTING = 2**31 - 1


def error_code(name: str | int) -> ErrorCodes:
    """The HTTP/2 error code named ``name`` ("REFUSED_STREAM", "refused_stream" or 7)."""
    if isinstance(name, bool):
        raise ValueError(f"unknown HTTP/2 error code {name!r}")
    if isinstance(name, int):
        try:
            return ErrorCodes(name)
        except ValueError:
            raise ValueError(f"unknown HTTP/2 error code {name!r}") from None
    try:
        return ErrorCodes[str(name).upper()]
    except KeyError:
        known = ", ".join(code.name for code in ErrorCodes)
        raise ValueError(f"unknown HTTP/2 error code {name!r} (known: {known})") from None


def grpc_status(status: str | int) -> int:
    """A gRPC status code (0..16) from its number or name ("UNAVAILABLE")."""
    if isinstance(status, bool):
        raise ValueError(f"unknown gRPC status {status!r}")
    if isinstance(status, int):
        if 0 <= status <= 16:
            return status
        raise ValueError(f"unknown gRPC status {status!r} (0..16)")
    name = str(status).upper().removeprefix("STATUSCODE.")
    if name not in STATUS_CODES:
        raise ValueError(f"unknown gRPC status {status!r} (known: {', '.join(STATUS_CODES)})")
    return STATUS_CODES[name]


@dataclass(frozen=True)
class Http2Fault:
    """One HTTP/2 fault (see the module docstring for the kinds). Validated on creation.

    ``code`` is an HTTP/2 error code name (GOAWAY and RST_STREAM kinds); ``count`` limits a
    per-stream fault to the next N new streams of the point (None: every new stream while
    active); ``grace_ms`` is how long a GOAWAY'd connection stays open; ``value`` is the
    MAX_CONCURRENT_STREAMS sent; ``status``/``message`` the Trailers-Only answer.
    """

    kind: str
    code: str = ""
    count: int | None = None
    grace_ms: int = DEFAULT_GRACE_MS
    last_stream_id: int | None = None
    value: int = 0
    status: int = 14
    message: str = ""
    debug: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown HTTP/2 fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        for name in _DEFAULTS:
            given = getattr(self, name)
            default = _DEFAULTS[name]
            if name not in _PARAMETERS[self.kind] and given != default:
                raise ValueError(f"HTTP/2 fault {self.kind!r} takes no {name!r} (got {given!r})")
        if self.kind in (GOAWAY, GOAWAY_BELOW_IN_FLIGHT, RST_STREAM):
            code = self.code or ("NO_ERROR" if self.kind != RST_STREAM else "")
            if not code:
                raise ValueError("HTTP/2 fault 'rst_stream' needs a code (e.g. REFUSED_STREAM)")
            object.__setattr__(self, "code", error_code(code).name)
        if self.count is not None and (isinstance(self.count, bool) or self.count < 1):
            raise ValueError(f"HTTP/2 fault count must be a positive integer, got {self.count!r}")
        if not 0 <= self.grace_ms <= MAX_GRACE_MS:
            raise ValueError(f"grace_ms must be within 0..{MAX_GRACE_MS}, got {self.grace_ms!r}")
        if self.last_stream_id is not None and not 0 <= self.last_stream_id <= MAX_SETTING:
            raise ValueError(
                f"last_stream_id must be within 0..2^31-1, got {self.last_stream_id!r}"
            )
        if not 0 <= self.value <= MAX_SETTING:
            raise ValueError(f"value must be within 0..2^31-1, got {self.value!r}")
        object.__setattr__(self, "status", grpc_status(self.status))

    # -- constructors, one a kind

    @classmethod
    def goaway(cls, code: str = "NO_ERROR", grace_ms: int = DEFAULT_GRACE_MS) -> Http2Fault:
        """GOAWAY with last-stream-id = the highest stream seen; close after ``grace_ms``."""
        return cls(GOAWAY, code=code, grace_ms=grace_ms)

    @classmethod
    def goaway_below_in_flight(
        cls,
        last_stream_id: int | None = None,
        code: str = "NO_ERROR",
        grace_ms: int = DEFAULT_GRACE_MS,
    ) -> Http2Fault:
        """GOAWAY with a last-stream-id below streams in flight (the lowest in flight minus 2
        unless given): streams above it were not processed and must be retried."""
        return cls(
            GOAWAY_BELOW_IN_FLIGHT, code=code, grace_ms=grace_ms, last_stream_id=last_stream_id
        )

    @classmethod
    def too_many_pings(cls, grace_ms: int = 0) -> Http2Fault:
        """GOAWAY ENHANCE_YOUR_CALM "too_many_pings", as a gRPC server sends to a client that
        pings too often; the connection is closed after ``grace_ms``."""
        return cls(TOO_MANY_PINGS, grace_ms=grace_ms)

    @classmethod
    def rst_stream(cls, code: str, count: int | None = None) -> Http2Fault:
        """RST_STREAM(code) on the next ``count`` new streams (all while active if None)."""
        return cls(RST_STREAM, code=code, count=count)

    @classmethod
    def withhold_ping_acks(cls) -> Http2Fault:
        return cls(WITHHOLD_PING_ACKS)

    @classmethod
    def max_concurrent_streams(cls, value: int) -> Http2Fault:
        return cls(MAX_CONCURRENT_STREAMS, value=value)

    @classmethod
    def starve_flow_control(cls) -> Http2Fault:
        return cls(STARVE_FLOW_CONTROL)

    @classmethod
    def headers_then_nothing(cls, count: int | None = None) -> Http2Fault:
        return cls(HEADERS_THEN_NOTHING, count=count)

    @classmethod
    def trailers_only(
        cls, status: str | int, message: str = "", count: int | None = None
    ) -> Http2Fault:
        return cls(TRAILERS_ONLY, status=grpc_status(status), message=message, count=count)

    # -- the wire form of the control API

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind} | {
            key: value
            for key, value in asdict(self).items()
            if key in _DEFAULTS and value != _DEFAULTS[key]
        }

    @classmethod
    def from_json(cls, data: Any) -> Http2Fault:
        if not isinstance(data, dict):
            raise ValueError(f"an HTTP/2 fault is an object, got {data!r}")
        known = {field.name for field in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown HTTP/2 fault parameter(s): {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("an HTTP/2 fault needs a 'kind'")
        return cls(**data)


_DEFAULTS: dict[str, Any] = {
    field.name: field.default for field in fields(Http2Fault) if field.name != "kind"
}
