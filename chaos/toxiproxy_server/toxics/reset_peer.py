"""reset_peer: on the first chunk (or end) in its direction, wait ``timeout`` ms, then reset.

The connection ends with a TCP RST because every connection accepted while a reset_peer
toxic is in either chain gets SO_LINGER 0 on both its sockets (even where toxicity left
the toxic inactive); a reset_peer added to an open connection therefore ends it with a
plain FIN. The chunk that triggers it is discarded, and the wait cannot be interrupted,
as in the reference. With no data in its direction nothing happens.
"""

from ..stream import INTERRUPTED, millis
from . import Toxic, register


@register
class ResetPeer(Toxic):
    type_name = "reset_peer"
    go_struct = "ResetToxic"
    fields = ("timeout",)
    resets_peer = True

    @classmethod
    async def pipe(cls, stub, attrs):
        if await stub.recv() is INTERRUPTED:
            return
        await stub.pause(millis(attrs["timeout"]))
        stub.close()
