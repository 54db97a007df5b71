"""latency: delays every chunk by ``latency`` ms, plus a uniform jitter in [-jitter, +jitter).

The delay counts from the chunk's arrival at the proxy, so a chunk that queued behind
slower ones waits only what is left; its stamp then moves by the time waited, which makes
two latency toxics in a row add up. Up to 1024 chunks wait in front of it, so reading goes
on while earlier chunks are held: latency does not limit bandwidth. Order is kept.
"""

import random
import time

from ..stream import millis
from . import Toxic, receive, register

# jitter*2 overflows int64 above this; the reference panics there.
MAX_JITTER = (1 << 62) - 1


@register
class Latency(Toxic):
    type_name = "latency"
    go_struct = "LatencyToxic"
    fields = ("latency", "jitter")
    buffer_size = 1024

    @classmethod
    def invalid(cls, attrs):
        if attrs["jitter"] > MAX_JITTER:
            return f"jitter must be at most {MAX_JITTER} (the reference server crashes above)"
        return None

    @staticmethod
    def delay(attrs) -> float:
        """Seconds to hold the next chunk, counted from its arrival."""
        ms = attrs["latency"]
        jitter = attrs["jitter"]
        if jitter > 0:
            ms += random.randrange(2 * jitter) - jitter
        return millis(ms)

    @classmethod
    async def pipe(cls, stub, attrs):
        while (chunk := await receive(stub)) is not None:
            wait = cls.delay(attrs) - (time.monotonic() - chunk.ts)
            if await stub.sleep(wait):
                await stub.send(chunk)  # interrupted: forward at once, drop nothing
                return
            chunk.ts += wait
            await stub.send(chunk)
