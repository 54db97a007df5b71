"""noop: passes every chunk through unchanged.

Also the hidden first element of every chain (spec §6) and what a toxic runs as on a
link where toxicity made it inactive.
"""

from . import Toxic, receive, register


@register
class Noop(Toxic):
    type_name = "noop"
    go_struct = "NoopToxic"

    @classmethod
    async def pipe(cls, stub, attrs):
        while (chunk := await receive(stub)) is not None:
            await stub.send(chunk)
