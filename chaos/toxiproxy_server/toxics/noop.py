"""noop: passes every chunk through unchanged.

Also the hidden first element of every chain (spec §6) and what a toxic runs as on a
link where toxicity made it inactive.
"""

from ..stream import INTERRUPTED
from . import Toxic, register


@register
class Noop(Toxic):
    type_name = "noop"
    go_struct = "NoopToxic"

    @classmethod
    async def pipe(cls, stub, attrs):
        while True:
            chunk = await stub.recv()
            if chunk is INTERRUPTED:
                return
            if chunk is None:
                stub.close()
                return
            await stub.send(chunk)
