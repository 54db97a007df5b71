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
(chaos/verdicts.py).

Limits: it sees the runner process only (one thread's wake-ups and the load loop's
lateness), not the backends' or the proxy's; on a machine starved of CPU they are starved
alike, which is what it is for. Resolution is one tick; stalls shorter than
``MIN_STALL_NS`` are not kept.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

# 5 ms ticks: fine enough to see a stall of the size that matters to bounds of 50 ms and
# up, cheap enough to run all session long (~200 wake-ups a second, a few µs each).
TICK_S = 0.005
# Lateness below this is ordinary scheduler noise (a loaded 2-core machine wakes a
# sleeping thread 0.1-2 ms late); only longer stalls are stored.
MIN_STALL_NS = 3_000_000
# Hours of busy-machine stalls; old ones fall off the front.
MAX_STALLS = 200_000


@dataclass(frozen=True, slots=True)
class Stall:
    """The runner could not run from ``start_ns`` to ``end_ns`` (history clock)."""

    start_ns: int
    end_ns: int
    source: str = "ticker"

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class StallMonitor:
    """Measures the runner's stalls on ``time.monotonic_ns`` from a daemon thread.

    ``start()``/``stop()`` (or ``with``); ``record()`` lets other loops (the load
    generator's event loop) add what they saw. Thread-safe.
    """

    def __init__(self, tick_s: float = TICK_S, min_stall_ns: int = MIN_STALL_NS,
                 clock=time.monotonic_ns):
        self.tick_s = tick_s
        self.min_stall_ns = min_stall_ns
        self._clock = clock
        self._lock = threading.Lock()
        self._stalls: deque[Stall] = deque(maxlen=MAX_STALLS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.since_ns: int | None = None

    def __enter__(self) -> "StallMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "StallMonitor":
        if self._thread is None:
            self.since_ns = self._clock()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="chaos-stall-monitor",
                                            daemon=True)
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

    def record(self, start_ns: int, end_ns: int, source: str) -> None:
        """Add a stall seen by another loop (kept if at least ``min_stall_ns`` long)."""
        if end_ns - start_ns >= self.min_stall_ns:
            with self._lock:
                self._stalls.append(Stall(start_ns, end_ns, source))

    def stalls(self, start_ns: int | None = None, end_ns: int | None = None) -> list[Stall]:
        """The stalls that overlap [start_ns, end_ns] (None leaves a side open), oldest first."""
        with self._lock:
            stalls = list(self._stalls)
        lo = -1 << 62 if start_ns is None else start_ns
        hi = 1 << 62 if end_ns is None else end_ns
        return [s for s in stalls if s.end_ns >= lo and s.start_ns <= hi]

    def worst(self, start_ns: int | None = None, end_ns: int | None = None) -> Stall | None:
        """The longest stall overlapping the interval, or None."""
        found = self.stalls(start_ns, end_ns)
        return max(found, key=lambda s: s.end_ns - s.start_ns) if found else None

    def total_ms(self, start_ns: int | None = None, end_ns: int | None = None) -> float:
        """How long, within the interval, the runner was stalled, in ms: the union of the
        stalls clipped to it. One stall seen by both loops (the ticker and the load loop
        wake late together) counts once, and a stall that began before the interval counts
        only its part inside: summing them would credit the runner with more absence than
        the interval holds, and turn real misses into inconclusive verdicts."""
        lo = -1 << 62 if start_ns is None else start_ns
        hi = 1 << 62 if end_ns is None else end_ns
        total = 0
        reach = lo  # everything before this instant is counted already
        for stall in sorted(self.stalls(start_ns, end_ns), key=lambda s: s.start_ns):
            begin, end = max(stall.start_ns, reach), min(stall.end_ns, hi)
            if end > begin:
                total += end - begin
                reach = end
        return total / 1e6


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
