"""How long the runner itself stalled: a hiccup meter on the history's clock.

A verdict on a time bound is worth nothing if the process measuring it was not running.
On a busy machine (other jobs, CPU burners, a CI neighbour) the runner's threads wait for a
core, and every RPC in flight then looks slow, every fault looks late to be noticed. So
the runner measures its own stall, all the time, the way jHiccup does::

    ticker thread:   sleep(TICK) ... woke up late by L  ->  Stall(woke_ns - L, woke_ns)
    load loop:       call_later(TICK) ... ran late by L ->  Stall(...)     (load.py feeds it)

A stall is an interval in which a thread that asked to run could not: the process (or its
GIL) was not scheduled. Checks do not look at stalls — they are pure; the scenario asks
:meth:`StallMonitor.worst` for the interval a failed verdict measured, and calls the
verdict *inconclusive* when that stall is large enough to explain the miss
(chaos/verdicts/judge.py).

Limits: it sees the runner process only (one thread's wake-ups and the load loop's
lateness), not the backends' or the proxy's: chaos/observe/starvation.py measures those (how long
each of their threads waited for a CPU) and keeps them as the same :class:`Stall` records,
so the judge asks one object about both. Resolution is one tick; stalls shorter than
``MIN_STALL_NS`` are not kept.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Self

# 5 ms ticks: fine enough to see a stall of the size that matters to bounds of 50 ms and
# up, cheap enough to run all session long (~200 wake-ups a second, a few µs each).
TICK_S = 0.005
# Lateness below this is ordinary scheduler noise (a loaded 2-core machine wakes a
# sleeping thread 0.1-2 ms late); only longer stalls are stored.
MIN_STALL_NS = 3_000_000
# Hours of busy-machine stalls; old ones fall off the front.
MAX_STALLS = 200_000


RUNNER = "runner"
# The source of a stall measured as time spent waiting on a CPU's run queue
# (chaos/observe/starvation.py), as opposed to a thread's lateness measured on the clock.
RUN_QUEUE = "run-queue"


@dataclass(frozen=True, slots=True)
class Stall:
    """``who`` could not run from ``start_ns`` to ``end_ns`` (history clock).

    ``who`` is the process ("runner", "backend b2 (pid 4711)", ...); ``source`` how it was
    measured: a loop's lateness ("ticker", "load-loop") or the kernel's run-queue delay
    (:data:`RUN_QUEUE`)."""

    start_ns: int
    end_ns: int
    source: str = "ticker"
    who: str = RUNNER

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def describe(self, ms: float | None = None) -> str:
        """ "backend b2 (pid 4711) waited 180 ms for a CPU", "runner stalled 402 ms": this
        stall, or ``ms`` of this stall's kind."""
        ms = self.ms if ms is None else ms
        if self.source == RUN_QUEUE:
            return f"{self.who} waited {ms:.0f} ms for a CPU"
        return f"{self.who} stalled {ms:.0f} ms"


def union_ns(stalls: list[Stall], start_ns: int | None = None, end_ns: int | None = None) -> int:
    """How long, within [start_ns, end_ns], at least one of ``stalls`` was under way, in ns:
    each instant once, and only the part inside the interval.

    Summing instead would credit more absence than the interval holds (one stall seen by
    two loops, two processes starved at the same time) and turn real misses into
    inconclusive verdicts."""
    lo = -1 << 62 if start_ns is None else start_ns
    hi = 1 << 62 if end_ns is None else end_ns
    total = 0
    reach = lo  # everything before this instant is counted already
    for stall in sorted(stalls, key=lambda s: s.start_ns):
        begin, end = max(stall.start_ns, reach), min(stall.end_ns, hi)
        if end > begin:
            total += end - begin
            reach = end
    return total


class StallQueries:
    """The questions the judge asks, answered from :meth:`stalls` (which subclasses give)."""

    def stalls(self, start_ns: int | None = None, end_ns: int | None = None) -> list[Stall]:
        raise NotImplementedError

    def worst(self, start_ns: int | None = None, end_ns: int | None = None) -> Stall | None:
        """The longest stall overlapping the interval, or None."""
        found = self.stalls(start_ns, end_ns)
        return max(found, key=lambda s: s.end_ns - s.start_ns) if found else None

    def total_ms(self, start_ns: int | None = None, end_ns: int | None = None) -> float:
        """How long, within the interval, something was stalled, in ms: the union of the
        stalls clipped to it (:func:`union_ns`)."""
        return union_ns(self.stalls(start_ns, end_ns), start_ns, end_ns) / 1e6


class StallLog(StallQueries):
    """A thread-safe, bounded log of stalls, queried by overlap."""

    def __init__(self, min_stall_ns: int = MIN_STALL_NS):
        self.min_stall_ns = min_stall_ns
        self._lock = threading.Lock()
        self._stalls: deque[Stall] = deque(maxlen=MAX_STALLS)

    def record(self, start_ns: int, end_ns: int, source: str, who: str = RUNNER) -> None:
        """Add a stall (kept if at least ``min_stall_ns`` long)."""
        if end_ns - start_ns >= self.min_stall_ns:
            with self._lock:
                self._stalls.append(Stall(start_ns, end_ns, source, who))

    def stalls(self, start_ns: int | None = None, end_ns: int | None = None) -> list[Stall]:
        """The stalls that overlap [start_ns, end_ns] (None leaves a side open), in the
        order they were recorded."""
        with self._lock:
            stalls = list(self._stalls)
        lo = -1 << 62 if start_ns is None else start_ns
        hi = 1 << 62 if end_ns is None else end_ns
        return [s for s in stalls if s.end_ns >= lo and s.start_ns <= hi]


class TickingLog(StallLog):
    """A stall log filled by a daemon thread that runs ``_run`` every ``tick_s`` until
    :meth:`stop`; ``start()``/``stop()`` (or ``with``). ``thread_name`` names the thread,
    ``since_ns`` is when it started."""

    thread_name = "chaos-ticker"

    def __init__(
        self, tick_s: float = TICK_S, min_stall_ns: int = MIN_STALL_NS, clock=time.monotonic_ns
    ):
        super().__init__(min_stall_ns)
        self.tick_s = tick_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.since_ns: int | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Self:
        if self._thread is None:
            self.since_ns = self._clock()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def thread_id(self) -> int | None:
        """The thread's id (chaos/observe/starvation.py does not count it as the runner's work)."""
        thread = self._thread
        return None if thread is None else thread.native_id

    def _run(self) -> None:
        raise NotImplementedError


class StallMonitor(TickingLog):
    """Measures the runner's stalls on ``time.monotonic_ns`` from a daemon thread.

    ``start()``/``stop()`` (or ``with``); ``record()`` lets other loops (the load
    generator's event loop) add what they saw. Thread-safe.
    """

    thread_name = "chaos-stall-monitor"

    def _run(self) -> None:
        tick_ns = int(self.tick_s * 1e9)
        # Event.wait is the tick itself (a timed wake-up whose lateness is the
        # measurement), not a wait for a condition; it returns at once on stop().
        while True:
            asked = self._clock()
            if self._stop.wait(self.tick_s):
                return
            woke = self._clock()
            late = woke - asked - tick_ns
            if late >= self.min_stall_ns:
                # It should have woken at woke - late: from then on it could not run.
                self.record(woke - late, woke, "ticker")


_monitor: StallMonitor | None = None
_monitor_lock = threading.Lock()


def monitor() -> StallMonitor:
    """The process-wide monitor, started on first use (the plugin starts it at session
    start so that stalls are measured throughout, not only from the first scenario)."""
    global _monitor
    with _monitor_lock:
        if _monitor is None:
            _monitor = StallMonitor().start()
        return _monitor
