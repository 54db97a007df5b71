"""The embedded Toxiproxy's event-loop lateness, as stalls the judge weighs.

Every RPC of a scenario goes through one Toxiproxy process, whose proxies share one event
loop. That loop running late delays every RPC in flight as much as a stall of the runner
would, but neither the runner's ticker (chaos/observe/stall.py) nor the proxy's run-queue
delay (chaos/observe/starvation.py) sees a loop that is behind on its own work with a CPU
share too small for it — found at load average 14 on 2 cores: a healthy backend's RPC
missed its 250 ms deadline while the proxy's threads waited only 30-60 ms at a time for a
CPU. The server started with ``--lag-log PATH`` (chaos/toxiproxy_server/lag.py) appends
each late tick of its loop to PATH; :class:`LagLog` reads what was added each time it is
asked, as :class:`~chaos.observe.stall.Stall` records of ``who``::

    "start_ns end_ns" lines  ->  merged when the gap between them is at most one tick
                                 (the loop stayed behind: the next tick was late again)
                             ->  Stall(start, end, source="event-loop", who)

Limits: only a server that writes the log (the embedded one) is seen; a stall under way
when asked shows up at the next question, once the loop has come back to its ticker.
"""

from __future__ import annotations

import os
import threading
from collections import deque

from chaos.observe.stall import MAX_STALLS, Stall, StallQueries

SOURCE = "event-loop"
# Two late ticks this close are one stall: the ticker asked for TICK_S and came back late
# again, so the loop never caught up in between (chaos/toxiproxy_server/lag.py: 5 ms).
MERGE_GAP_NS = 6_000_000


class LagLog(StallQueries):
    """The stalls in a lag log written by another process (read incrementally)."""

    def __init__(self, path: str | os.PathLike, who: str, merge_gap_ns: int = MERGE_GAP_NS):
        self.path = os.fspath(path)
        self.who = who
        self.merge_gap_ns = merge_gap_ns
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()
        self._stalls: deque[Stall] = deque(maxlen=MAX_STALLS)

    def stalls(self, start_ns: int | None = None, end_ns: int | None = None) -> list[Stall]:
        """The stalls overlapping [start_ns, end_ns] (None leaves a side open)."""
        with self._lock:
            self._read_new()
            found = list(self._stalls)
        lo = -1 << 62 if start_ns is None else start_ns
        hi = 1 << 62 if end_ns is None else end_ns
        return [s for s in found if s.end_ns >= lo and s.start_ns <= hi]

    def _read_new(self) -> None:
        try:
            with open(self.path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:
            return  # not written yet: no late tick so far
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            fields = line.split()
            if len(fields) != 2 or not all(f.isdigit() for f in fields):
                continue  # not a line this format writes; never a stall
            self._add(int(fields[0]), int(fields[1]))

    def _add(self, start_ns: int, end_ns: int) -> None:
        last = self._stalls[-1] if self._stalls else None
        if last is not None and 0 <= start_ns - last.end_ns <= self.merge_gap_ns:
            self._stalls[-1] = Stall(last.start_ns, end_ns, SOURCE, self.who)
        else:
            self._stalls.append(Stall(start_ns, end_ns, SOURCE, self.who))
