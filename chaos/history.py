"""The history: every RPC and every fault on one monotonic clock, as in Jepsen.

    load generator --record(Rpc)------>  History  <--begin/end/mark--  faults, scenario
                                            |
                                            +--> checks (pure functions) --> Verdict
                                            +--> to_jsonl --> artifacts, reports

An RPC is one record, written once its outcome is known (start, end, backend, code).
A fault is an Event with a start and, once undone, an end on the same clock, so a
check can ask "what happened to the RPCs that started after the kill".

Appends come from many threads and an asyncio loop at thousands per second, so
record() is a lock and a list append; sorting and copying happen on read.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from os import PathLike

MARK = "mark"  # the kind of an Event made by History.mark()
NO_BACKEND = "(none)"  # how summaries name the backend of RPCs that never reached one
# gRPC's status codes by the names Rpc.code holds (grpc/status.h; the names grpc-core's
# service-config parser accepts), for code that must not import grpc (the HTTP/2 point).
STATUS_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


# Request metadata naming an RPC's history id, sent by grpc-chaos's own clients when the
# fleet has HTTP/2 points: a point that sees the RPC's response headers and then loses its
# stream reports it under this id (a committed RPC, which no retry can replay).
RPC_TAG = "x-chaos-rpc"


@dataclass(frozen=True, slots=True)
class Rpc:
    """One RPC's outcome.

    ``backend`` is the server's ``x-backend-id`` response metadata, None when the RPC
    never reached a backend (or the metadata was lost). ``code`` is the grpc status
    code name ("OK", "UNAVAILABLE", ...). ``headers_ns`` is when its response headers
    arrived, where the client can tell: an RPC that has them is *committed* — gRPC never
    retries it, whatever its retry policy (None: none arrived, or not known).
    """

    id: int
    start_ns: int
    end_ns: int
    backend: str | None
    code: str
    details: str = ""
    headers_ns: int | None = None

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @property
    def latency_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True)
class Event:
    """A fault, or any marked action, on the history's clock.

    ``end_ns`` is None while the event is active (or if it is never undone).
    ``in_force_ns`` is when the fault was in force — its action confirmed (a toxic: the
    API answered; a kill: the process is gone; health: the server confirmed) — None until
    then, and for marks. ``start_ns`` is when the action began, so a check that measures
    how fast the client reacted measures from ``in_force_ns``, and a window of RPCs that
    the fault may have hit starts at ``start_ns``.
    ``detail`` must be JSON-native (dict, list, str, int, float, bool, None) so that a
    history round-trips through JSON lines; it takes no part in hashing.
    """

    kind: str
    target: str | None
    start_ns: int
    end_ns: int | None = None
    detail: dict = field(default_factory=dict, hash=False)
    in_force_ns: int | None = None

    @property
    def active(self) -> bool:
        return self.end_ns is None


class History:
    """A thread-safe, append-only log of Rpc and Event records.

    Invariants: records are never changed or removed, except that end() sets the end
    of an event begun with begin(), once. Readers get sorted copies, so a check can
    never disturb a history that is still being written.
    """

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns):
        # The clock is a parameter so tests can drive begin/end/mark deterministically;
        # in a scenario it must be the one the load generator stamps RPCs with.
        self._clock = clock
        self._lock = threading.Lock()
        self._rpcs: list[Rpc] = []
        self._events: list[Event] = []
        self._ids = itertools.count(1)
        self._sources: list[Callable[[], object]] = []
        self._pulling = threading.Lock()  # one pull at a time: each source moves a cursor

    @classmethod
    def from_records(cls, records: Iterable[Rpc | Event]) -> History:
        """A history holding the given Rpc and Event records, in any order."""
        history = cls()
        for record in records:
            if isinstance(record, Rpc):
                history.record(record)
            elif isinstance(record, Event):
                history.add_event(record)
            else:
                raise TypeError(
                    f"a history holds Rpc and Event records, not {type(record).__name__}: {record!r}"
                )
        return history

    def now(self) -> int:
        """The history's clock, in ns (time.monotonic_ns unless a test gave another)."""
        return self._clock()

    # -- writing ---------------------------------------------------------------------

    def next_id(self) -> int:
        """A request id not yet given out by this history (every client of one history
        draws from here, so ids stay unique)."""
        return next(self._ids)  # itertools.count is atomic under the GIL

    def record(self, rpc: Rpc) -> None:
        """Append one RPC. Cheap on purpose: called thousands of times a second."""
        with self._lock:
            self._rpcs.append(rpc)

    def begin(self, kind: str, target: str | None = None, **detail) -> int:
        """Start an event now; returns the handle to pass to end()."""
        _check_json(kind, detail)
        with self._lock:
            self._events.append(Event(kind, target, self._clock(), None, detail))
            return len(self._events) - 1

    def end(self, handle: int) -> Event:
        """Set the end of the event begun as `handle` to now, and return it.

        Ending an event twice keeps the first end: undo paths (a context manager's exit
        and a scenario's final cleanup) may both run.
        """
        with self._lock:
            event = self._event_at(handle)
            if event.end_ns is None:
                event = replace(event, end_ns=self._clock())
                self._events[handle] = event
            return event

    def in_force(self, handle: int) -> Event:
        """Set the instant the event begun as `handle` is in force to now (once)."""
        with self._lock:
            event = self._event_at(handle)
            if event.in_force_ns is None:
                event = replace(event, in_force_ns=self._clock())
                self._events[handle] = event
            return event

    def event(self, handle: int) -> Event:
        """The event begun as `handle`, as it is now (its end is set once end() ran)."""
        with self._lock:
            return self._event_at(handle)

    def _event_at(self, handle: int) -> Event:
        # bool is an int, but True is no handle anyone was given
        if type(handle) is not int or not 0 <= handle < len(self._events):
            raise ValueError(f"no event with handle {handle!r}: pass the value begin() returned")
        return self._events[handle]

    @contextmanager
    def during(self, kind: str, target: str | None = None, **detail) -> Iterator[int]:
        """begin() on entry and end() on exit, even when the body raises."""
        handle = self.begin(kind, target, **detail)
        try:
            yield handle
        finally:
            self.end(handle)

    def add_event(self, event: Event) -> None:
        """Append an event made elsewhere (e.g. a timed fault with known start and end)."""
        _check_json(event.kind, event.detail)
        with self._lock:
            self._events.append(event)

    def add_source(self, pull: Callable[[], object]) -> None:
        """Run ``pull`` before every read of :attr:`events`: it adds (with :meth:`note`)
        what was observed elsewhere since it last ran — the HTTP/2 points' connection
        events — so a check reading the events sees every one up to that read. A pull that
        raises fails the read: a check must not be judged on a history missing events."""
        self._sources.append(pull)

    @property
    def follows_sources(self) -> bool:
        """Whether sources keep this history up to date (see :meth:`add_source`)."""
        return bool(self._sources)

    def pull(self) -> None:
        """Run every source now (see :meth:`add_source`)."""
        if not self._sources:
            return
        with self._pulling:
            for pull in self._sources:
                pull()

    def note(self, kind: str, target: str | None, t_ns: int, **detail) -> None:
        """Record an instant observed elsewhere (e.g. a backend's health seen flipping) as
        an event of ``kind`` at ``t_ns``."""
        self.add_event(Event(kind, target, t_ns, t_ns, detail, in_force_ns=t_ns))

    def mark(self, label: str) -> int:
        """Record a named instant (an Event of kind "mark"); returns its time in ns."""
        with self._lock:
            t_ns = self._clock()
            self._events.append(Event(MARK, None, t_ns, t_ns, {"label": label}))
        return t_ns

    # -- reading ---------------------------------------------------------------------

    @property
    def rpcs(self) -> list[Rpc]:
        """A copy of the RPCs sorted by start; ties by id (ids are issued in order)."""
        with self._lock:
            rpcs = list(self._rpcs)
        rpcs.sort(key=lambda r: (r.start_ns, r.id))
        return rpcs

    @property
    def events(self) -> list[Event]:
        """A copy of the events sorted by start; ties keep the order they were added."""
        self.pull()
        with self._lock:
            events = list(self._events)
        events.sort(key=lambda e: e.start_ns)
        return events

    def mark_ns(self, label: str) -> int:
        """The time of the first mark with this label."""
        marks = [e for e in self.events if e.kind == MARK]
        for event in marks:
            if event.detail.get("label") == label:
                return event.start_ns
        known = sorted({str(e.detail.get("label")) for e in marks})
        raise KeyError(
            f"no mark {label!r} in this history; marks are: {', '.join(known) or 'none'}"
        )

    def window(self, start_ns: int | None = None, end_ns: int | None = None) -> list[Rpc]:
        """The RPCs that *started* in [start_ns, end_ns); None leaves a side open."""
        return [r for r in self.rpcs if started_in(r, start_ns, end_ns)]

    def served_by(self, since_ns: int | None = None) -> set[str]:
        """The backends that answered an RPC OK that started at or after ``since_ns``."""
        return {r.backend for r in self.window(since_ns) if r.ok and r.backend}

    def served_since(self, backend: str, since_ns: int) -> bool:
        """Whether ``backend`` answered an RPC OK that started at or after ``since_ns``."""
        return backend in self.served_by(since_ns)

    def count_ok(self, backend: str, since_ns: int) -> int:
        """OK RPCs answered by ``backend`` that started at or after ``since_ns``."""
        return sum(1 for r in self.window(since_ns) if r.ok and r.backend == backend)

    def busiest(self, since_ns: int) -> str:
        """The backend that answered most OK RPCs since ``since_ns`` (ties: lowest id).

        Scenarios fault this one, so that under pick_first (one backend takes everything)
        the fault lands where the traffic is. AssertionError when none answered yet."""
        counts = Counter(r.backend for r in self.window(since_ns) if r.ok and r.backend)
        if not counts:
            raise AssertionError("no backend has answered an RPC OK yet")
        return min(counts, key=lambda b: (-counts[b], b))

    def summary(self) -> dict:
        """Counts by code, by backend and by event kind, and the time span covered."""
        rpcs, events = self.rpcs, self.events
        starts = [r.start_ns for r in rpcs] + [e.start_ns for e in events]
        ends = [r.end_ns for r in rpcs] + [
            e.start_ns if e.end_ns is None else e.end_ns for e in events
        ]
        first, last = (min(starts), max(ends)) if starts else (None, None)
        ok = sum(r.ok for r in rpcs)
        return {
            "rpcs": len(rpcs),
            "ok": ok,
            "errors": len(rpcs) - ok,
            "by_code": dict(sorted(Counter(r.code for r in rpcs).items())),
            "by_backend": dict(sorted(Counter(r.backend or NO_BACKEND for r in rpcs).items())),
            "events": len(events),
            "events_by_kind": dict(sorted(Counter(e.kind for e in events).items())),
            "first_ns": first,
            "last_ns": last,
            "duration_ms": 0.0 if first is None or last is None else (last - first) / 1e6,
        }

    def timeline(
        self,
        around_ns: int,
        before_ns: int,
        after_ns: int,
        limit: int = 40,
        highlight: Iterable[int] = (),
    ) -> str:
        """A readable excerpt of what happened in [around - before, around + after].

        RPCs and events in time order, times in ms relative to `around_ns`. When more
        than `limit` entries fall in the window, events and the RPCs whose ids are in
        `highlight` are kept first, then the RPCs nearest to `around_ns`.
        """
        return format_timeline(
            self.rpcs, self.events, around_ns, before_ns, after_ns, limit, highlight
        )

    # -- JSON lines ------------------------------------------------------------------

    def to_jsonl(self, path: str | PathLike, wall_anchor: tuple[int, int] | None = None) -> None:
        """Write one JSON object per line, RPCs and events interleaved in time order.

        With ``wall_anchor`` = (monotonic ns, wall-clock ns) taken at one instant, every
        record also carries its start (and end) in UTC wall-clock time, ISO 8601 with µs
        (``start_wall``, ``end_wall``), to line it up with server logs; the monotonic
        times stay the reference (the wall clock can jump)."""
        rows = [(r.start_ns, 1, _rpc_to_json(r)) for r in self.rpcs]
        rows += [(e.start_ns, 0, _event_to_json(e)) for e in self.events]
        rows.sort(key=lambda row: row[:2])  # stable: ties keep each list's own order
        if wall_anchor is not None:
            for _, _, obj in rows:
                for key in ("start_ns", "end_ns"):
                    if obj.get(key) is not None:
                        obj[key.replace("_ns", "_wall")] = wall_time(obj[key], wall_anchor)
        with open(path, "w", encoding="utf-8") as out:
            for _, _, obj in rows:
                # ASCII escapes keep any str (even a lone surrogate) exact and one line.
                out.write(json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n")

    @classmethod
    def from_jsonl(cls, path: str | PathLike) -> History:
        """Read a history written by to_jsonl(); blank lines are skipped."""
        history = cls()
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    history._load_line(line, f"{path}:{number}")
        return history

    def _load_line(self, line: str, where: str) -> None:
        try:
            obj = json.loads(line)
            kind = obj.pop("type")
            obj.pop("start_wall", None)
            obj.pop("end_wall", None)
            obj.pop("headers_wall", None)
            if kind == "rpc":
                self.record(Rpc(**obj))
            elif kind == "event":
                self.add_event(Event(**obj))
            else:
                raise ValueError(f'unknown record type {kind!r} (expected "rpc" or "event")')
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{where}: not a history record: {exc}") from exc

    def __repr__(self) -> str:
        with self._lock:
            return f"History({len(self._rpcs)} rpcs, {len(self._events)} events)"


def clock_anchor() -> tuple[int, int]:
    """(monotonic ns, wall-clock ns) read together: converts history times to wall time."""
    return time.monotonic_ns(), time.time_ns()


def wall_time(t_ns: int, anchor: tuple[int, int]) -> str:
    """A history time (monotonic ns) as UTC wall-clock time, ISO 8601 with microseconds."""
    wall_ns = anchor[1] + (t_ns - anchor[0])
    seconds, rest = divmod(wall_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def started_in(rpc: Rpc, start_ns: int | None, end_ns: int | None) -> bool:
    """Whether the RPC started in [start_ns, end_ns); None leaves a side open."""
    return (start_ns is None or rpc.start_ns >= start_ns) and (
        end_ns is None or rpc.start_ns < end_ns
    )


def _check_json(kind: str, detail: dict) -> None:
    # Fail where the bad detail is made, not later when the artifacts are written.
    if not isinstance(detail, dict):
        raise TypeError(f"detail of event {kind!r} must be a dict, not {type(detail).__name__}")
    try:
        json.dumps(detail, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"detail of event {kind!r} must be JSON-native (str, int, float, bool, None, list, dict): {exc}"
        ) from None


def _rpc_to_json(rpc: Rpc) -> dict:
    return {
        "type": "rpc",
        "id": rpc.id,
        "start_ns": rpc.start_ns,
        "end_ns": rpc.end_ns,
        "backend": rpc.backend,
        "code": rpc.code,
        "details": rpc.details,
        **({} if rpc.headers_ns is None else {"headers_ns": rpc.headers_ns}),
    }


def _event_to_json(event: Event) -> dict:
    return {
        "type": "event",
        "kind": event.kind,
        "target": event.target,
        "start_ns": event.start_ns,
        "end_ns": event.end_ns,
        "detail": event.detail,
        "in_force_ns": event.in_force_ns,
    }


# -- timeline ------------------------------------------------------------------------


def format_timeline(
    rpcs: Iterable[Rpc],
    events: Iterable[Event],
    around_ns: int,
    before_ns: int,
    after_ns: int,
    limit: int = 40,
    highlight: Iterable[int] = (),
) -> str:
    """History.timeline() for plain lists of records (see there)."""
    lo, hi = around_ns - before_ns, around_ns + after_ns
    marked = set(highlight)
    entries = [
        *_event_entries(events, lo, hi, around_ns),
        *_rpc_entries(rpcs, lo, hi, around_ns, marked),
    ]
    # Keep events and highlighted RPCs first, then the RPCs nearest to the point.
    entries.sort(key=lambda e: (e.rank, e.distance))
    shown = sorted(entries[: max(limit, 0)], key=lambda e: (e.t_ns, e.rank))
    header = (
        f"timeline around t={around_ns} ns, times in ms relative to it "
        f"({len(shown)} of {len(entries)} entries from {-before_ns / 1e6:+.3f} to {after_ns / 1e6:+.3f} ms"
        f"{'; >> marks the RPCs in question' if marked else ''}):"
    )
    if not entries:
        return header + "\n    (nothing happened in this interval)"
    return "\n".join([header, *(e.line for e in shown)])


@dataclass(frozen=True, slots=True)
class _Entry:
    t_ns: int  # where the line sits in time order
    rank: int  # 0: events and highlighted RPCs, 1: other RPCs
    distance: int  # ns from the point of interest, to choose what to show
    line: str


def _offset(t_ns: int, around_ns: int) -> str:
    return f"{(t_ns - around_ns) / 1e6:+.3f}"


def _rpc_entries(
    rpcs: Iterable[Rpc], lo: int, hi: int, around: int, marked: set[int]
) -> Iterator[_Entry]:
    for r in rpcs:
        if r.start_ns > hi or r.end_ns < lo:  # not in flight at any point of the interval
            continue
        flag = ">>" if r.id in marked else "  "
        details = f"  {json.dumps(_clip(r.details), ensure_ascii=False)}" if r.details else ""
        line = (
            f"{flag}{_offset(r.start_ns, around):>12}  rpc #{r.id} {r.backend or '-'} {r.code}"
            f"  ends {_offset(r.end_ns, around)} ({r.latency_ns / 1e6:.3f} ms){details}"
        )
        distance = min(abs(r.start_ns - around), abs(r.end_ns - around))
        yield _Entry(r.start_ns, 0 if r.id in marked else 1, distance, line)


def _event_entries(events: Iterable[Event], lo: int, hi: int, around: int) -> Iterator[_Entry]:
    for e in events:
        if e.start_ns > hi or (e.end_ns is not None and e.end_ns < lo):
            continue
        if e.kind == MARK:
            yield _Entry(
                e.start_ns,
                0,
                abs(e.start_ns - around),
                f"  {_offset(e.start_ns, around):>12}  mark {e.detail.get('label')!r}",
            )
            continue
        name = f"{e.kind} {e.target or 'fleet-wide'}"
        params = f" {json.dumps(e.detail, ensure_ascii=False)}" if e.detail else ""
        still = "  (still active)" if e.end_ns is None else ""
        yield _Entry(
            e.start_ns,
            0,
            abs(e.start_ns - around),
            f"  {_offset(e.start_ns, around):>12}  begin {name}{params}{still}",
        )
        if e.in_force_ns is not None and lo <= e.in_force_ns <= hi and e.in_force_ns != e.start_ns:
            took = f"{(e.in_force_ns - e.start_ns) / 1e6:.3f} ms after it began"
            yield _Entry(
                e.in_force_ns,
                0,
                abs(e.in_force_ns - around),
                f"  {_offset(e.in_force_ns, around):>12}  in force {name} ({took})",
            )
        if e.end_ns is not None and lo <= e.end_ns <= hi:
            lasted = f"lasted {(e.end_ns - e.start_ns) / 1e6:.3f} ms"
            yield _Entry(
                e.end_ns,
                0,
                abs(e.end_ns - around),
                f"  {_offset(e.end_ns, around):>12}  end   {name} ({lasted})",
            )


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
