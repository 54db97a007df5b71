"""The load of a schedule: chaos.load.Load with idle gaps.

A client that is idle when a backend hangs learns of it only from keepalive pings sent
without calls; one that is busy learns from the pings that go with its data. So schedules
may stop the load for a while (``LoadSpec.idle``)::

    closed loop:  each worker waits out the gap (in ticks, so that stop() is seen)
    open loop:    launches that fall in the gap are skipped (not queued for later)

The same channel — the same client, with its connections and backoff state — is used
before and after a gap. Each gap is recorded as a ``load:idle`` event, so the oracle knows
when no RPC could be sent.

Limit: built on Load's per-RPC step (``_one``); chaos/load.py has no pause of its own.
"""

from __future__ import annotations

import asyncio
import time

from chaos.fuzz.model import IDLE
from chaos.history import Event, History
from chaos.load import Load

# A closed-loop worker in a gap wakes this often to see a stop (it sends nothing then).
IDLE_TICK_S = 0.02


class ShapedLoad(Load):
    """Load that sends nothing in the idle gaps given to :meth:`set_idle`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._idle: tuple[tuple[int, int], ...] = ()

    def set_idle(self, gaps_ns: list[tuple[int, int]], history: History | None = None) -> None:
        """Idle from start to end (monotonic ns, the history's clock) for each gap; recorded
        in ``history`` as ``load:idle`` events."""
        self._idle = tuple(sorted(gaps_ns))
        for start, end in self._idle:
            if history is not None:
                history.add_event(Event(IDLE, None, start, end, {}))

    def _idle_left_ns(self, now_ns: int) -> int:
        for start, end in self._idle:
            if start <= now_ns < end:
                return end - now_ns
        return 0

    async def _one(self, call) -> bool:
        left = self._idle_left_ns(time.monotonic_ns())
        if left:
            if self.rate is None:
                await asyncio.sleep(min(left / 1e9, IDLE_TICK_S))
            return True  # nothing sent: neither a success nor a failure to pause after
        return await super()._one(call)
