"""timeout: swallows every chunk; closes the connection after ``timeout`` ms of silence.

The countdown starts when the toxic starts on a link and restarts with each discarded
chunk. ``timeout`` 0 never closes by itself: data is discarded until the toxic goes.
Removing it closes the connection (its clean-up closes the stream, as in the reference),
and so does the end of the source.
"""

from ..stream import INTERRUPTED, TIMEOUT, millis
from . import Toxic, register


@register
class Timeout(Toxic):
    type_name = "timeout"
    go_struct = "TimeoutToxic"
    fields = ("timeout",)
    closes_on_removal = True

    @classmethod
    async def pipe(cls, stub, attrs):
        silence = millis(attrs["timeout"])
        limit = silence if silence > 0 else None
        while True:
            chunk = await stub.recv(timeout=limit)
            if chunk is INTERRUPTED:
                return
            if chunk is None or chunk is TIMEOUT:
                stub.close()
                return
            # A chunk: dropped on the floor, and the countdown starts again.
