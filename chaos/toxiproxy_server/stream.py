"""What flows through a toxic chain: chunks, directions, and the signals a stub can get."""

from __future__ import annotations

import time

UPSTREAM = "upstream"  # client -> upstream server
DOWNSTREAM = "downstream"  # upstream server -> client
DIRECTIONS = (UPSTREAM, DOWNSTREAM)  # the order toxics are listed in (spec §3.1)

CHUNK_SIZE = 32 * 1024  # the reference reads each link in chunks of up to 32 KiB


class Chunk:
    """Bytes read from a source, stamped with their arrival time (time.monotonic())."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float):
        self.data = data
        self.ts = ts


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


INTERRUPTED = _Signal("INTERRUPTED")  # the toxic must return: it is being updated or removed
TIMEOUT = _Signal("TIMEOUT")  # a recv(timeout=...) saw no chunk in time
# End of stream is None, as a closed Go channel yields nil.


def parse_direction(stream: str) -> str | None:
    """The direction a toxic's ``stream`` names (case-insensitive, spec §4.7), or None."""
    lowered = stream.lower()
    return lowered if lowered in DIRECTIONS else None


def chunks_of(data: bytes, now: float | None = None):
    """Cut freshly read bytes into stamped chunks of at most CHUNK_SIZE."""
    ts = time.monotonic() if now is None else now
    if len(data) <= CHUNK_SIZE:
        return [Chunk(data, ts)]
    return [Chunk(data[i : i + CHUNK_SIZE], ts) for i in range(0, len(data), CHUNK_SIZE)]


def go_duration(value: int, unit_ns: int) -> float:
    """Seconds of Go's ``time.Duration(value) * unit``, wrapping at 64 bits like Go.

    Attributes are int64 counts of ms or µs; Go multiplies them into nanoseconds without
    overflow checks, so absurd values wrap (often to a negative = no wait).
    """
    ns = (value * unit_ns) & 0xFFFFFFFFFFFFFFFF
    if ns >= 1 << 63:
        ns -= 1 << 64
    return ns / 1e9


def millis(value: int) -> float:
    return go_duration(value, 1_000_000)


def micros(value: int) -> float:
    return go_duration(value, 1_000)
