"""bandwidth: limits one direction to ``rate`` KB/s (1 KB = 1000 bytes).

Each chunk adds len/rate ms to a sleep budget, paid before the chunk goes on; chunks
larger than rate*100 bytes are released in rate*100-byte pieces every 100 ms, and the
timer's own error is carried into the next sleep so the average rate holds. ``rate`` 0
(the default) stalls the direction until the toxic is updated or removed, as in the
reference. A negative rate crashes the reference server; here it is refused with a 400.
"""

import time

from ..stream import Chunk
from . import Toxic, receive, register

PIECE_INTERVAL = 0.1  # the reference releases oversized chunks in 100 ms steps
MAX_RATE = ((1 << 63) - 1) // 100  # rate*100 must fit in int64


@register
class Bandwidth(Toxic):
    type_name = "bandwidth"
    go_struct = "BandwidthToxic"
    fields = ("rate",)

    @classmethod
    def invalid(cls, attrs):
        if not 0 <= attrs["rate"] <= MAX_RATE:
            return (
                f"rate must be between 0 and {MAX_RATE} KB/s, got {attrs['rate']} "
                "(the reference server crashes on a negative rate)"
            )
        return None

    @classmethod
    async def pipe(cls, stub, attrs):
        rate = attrs["rate"]
        piece = rate * 100  # bytes released per 100 ms step
        debt_ns = 0  # time still owed for bytes already passed
        while (chunk := await receive(stub)) is not None:
            debt_ns = debt_ns + len(chunk.data) * 1_000_000 // rate if rate > 0 else 0
            data = chunk.data
            while len(data) > piece:
                if await stub.sleep(PIECE_INTERVAL):
                    await stub.send(Chunk(data, chunk.ts))
                    return
                await stub.send(Chunk(data[:piece], chunk.ts))
                data = data[piece:]
                debt_ns -= 100_000_000
            start = time.monotonic_ns()
            if await stub.sleep(debt_ns / 1e9):
                await stub.send(Chunk(data, chunk.ts))
                return
            debt_ns -= time.monotonic_ns() - start
            await stub.send(Chunk(data, chunk.ts))
