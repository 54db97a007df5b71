"""How late the server's event loop runs: a lateness log another process can read.

Every proxied byte and every toxic's timer runs on one asyncio event loop. When that loop
falls behind (a starved machine, a burst of work), every RPC through every proxy is late
by as much, and a client's deadline may expire for the proxy's sake, not the client's or
the backend's. The kernel's run-queue delay (chaos/observe/starvation.py) sees the process
waiting for a CPU, not a loop backed up by its own work on a CPU share too small for it;
this ticker sees both, as the loop's own lateness::

    every TICK_S:  await sleep(TICK_S) ... woke late by L >= MIN_LATE_NS
                   -> append "start_ns end_ns\\n" (woke - L, woke) on CLOCK_MONOTONIC

``--lag-log PATH`` (a grpc-chaos extension) turns it on; the runner reads the file as it
judges (chaos.observe.stall.StallFile). The clock is CLOCK_MONOTONIC, the history's, which
is system-wide on Linux, so the lines need no translation.

Limits: a tick's lateness is seen when the loop comes back to it, so a stall that is under
way when the process ends is lost; resolution is one tick; a line is written only for a
late tick (~0 lines a second on an idle machine, at most 1/TICK_S when the loop is behind).
"""

from __future__ import annotations

import asyncio
import os
import time

TICK_S = 0.005
MIN_LATE_NS = 3_000_000  # the runner's own threshold (chaos.observe.stall.MIN_STALL_NS)


def open_log(path: str) -> int:
    """The log's descriptor, opened for appending (created 0600); raises OSError."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


async def measure(fd: int, tick_s: float = TICK_S, min_late_ns: int = MIN_LATE_NS) -> None:
    """Append the loop's lateness to the log ``fd`` until cancelled; closes it then."""
    tick_ns = int(tick_s * 1e9)
    try:
        while True:
            asked = time.monotonic_ns()
            await asyncio.sleep(tick_s)  # the tick itself: its lateness is the measurement
            woke = time.monotonic_ns()
            late = woke - asked - tick_ns
            if late >= min_late_ns:
                # One write of a whole line: a reader never sees half of one (O_APPEND).
                os.write(fd, f"{woke - late} {woke}\n".encode())
    finally:
        os.close(fd)
