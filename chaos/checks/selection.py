"""What a check looks at: its input as a History, the RPCs of a window, and how to name them.

Every check takes a History or a plain list of Rpc (and Event) records in any order.
Windows select RPCs by *start*: an RPC belongs to the window in which it was started,
wherever it ended, because that is when the client chose a backend for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos.history import NO_BACKEND, Event, History, Rpc, started_in


def as_history(source: History | Iterable[Rpc | Event]) -> History:
    """The source itself if it is a History, else a History of its records."""
    if isinstance(source, History):
        return source
    return History.from_records(source)


def in_window(rpcs: Iterable[Rpc], start_ns: int | None, end_ns: int | None) -> list[Rpc]:
    """The RPCs that started in [start_ns, end_ns), in the order given."""
    return [r for r in rpcs if started_in(r, start_ns, end_ns)]


def origin_ns(history: History) -> int | None:
    """The history's first instant: the earliest start of any record."""
    starts = [r.start_ns for r in history.rpcs[:1]] + [e.start_ns for e in history.events[:1]]
    return min(starts) if starts else None


def describe_window(history: History, start_ns: int | None, end_ns: int | None) -> str:
    """E.g. "from +1200.000 ms to the end of the history" (relative to its first record)."""
    origin = origin_ns(history)
    if start_ns is None and end_ns is None:
        return "over the whole history"
    if origin is None:
        origin = start_ns if start_ns is not None else end_ns
        assert origin is not None  # both None was answered above
    since = "the start" if start_ns is None else f"{(start_ns - origin) / 1e6:+.3f} ms"
    until = "the end" if end_ns is None else f"{(end_ns - origin) / 1e6:+.3f} ms"
    return f"from {since} to {until} of the history"


def anchor(history: History, start_ns: int | None) -> tuple[int, str]:
    """The instant a window's times are told relative to, and its name."""
    if start_ns is not None:
        return start_ns, "the window start"
    origin = origin_ns(history)
    return (0 if origin is None else origin), "the history start"


# The HTTP/2 points' note for a committed RPC they saw lose its stream (chaos/faults/http2.py).
COMMITTED_NOTE = "http2:committed"


def describe_rpc(rpc: Rpc, origin_ns: int, origin_name: str) -> str:
    """E.g. "#41 (UNAVAILABLE on b2, started +3.100 ms after the fault)"."""
    where = f"on {rpc.backend}" if rpc.backend is not None else "with no backend"
    details = f', "{rpc.details[:60]}"' if rpc.details else ""
    started = f"{(rpc.start_ns - origin_ns) / 1e6:+.3f} ms after {origin_name}"
    return f"#{rpc.id} ({rpc.code} {where}{details}, started {started})"


def committed(history: History, rpcs: Iterable[Rpc]) -> dict[int, int]:
    """Of ``rpcs``, those that had their response headers before they ended (id ->
    when the headers arrived): committed RPCs, which gRPC never retries. Known from the
    client (``Rpc.headers_ns``, where its implementation tells) or from the fleet's HTTP/2
    points (``http2:committed`` notes, for RPCs they saw lose their stream after the
    headers)."""
    seen: dict[int, int] = {}
    for event in history.events:
        if event.kind == COMMITTED_NOTE and str(event.detail.get("rpc", "")).isdigit():
            seen[int(event.detail["rpc"])] = int(event.detail["headers_ns"])
    found = {}
    for rpc in rpcs:
        at = rpc.headers_ns if rpc.headers_ns is not None else seen.get(rpc.id)
        if at is not None and at < rpc.end_ns:
            found[rpc.id] = at
    return found


def count_text(counter: Counter | dict) -> str:
    """E.g. "b1 100, b2 98, b3 102", largest first; "none" when empty."""
    items = counter.most_common() if isinstance(counter, Counter) else counter.items()
    return ", ".join(f"{key if key is not None else NO_BACKEND} {n}" for key, n in items) or "none"


def by_backend(rpcs: Iterable[Rpc]) -> Counter:
    return Counter(r.backend for r in rpcs)
