"""slow_close: data passes unchanged; when the source ends, closing waits ``delay`` ms."""

from ..stream import INTERRUPTED, millis
from . import Toxic, register


@register
class SlowClose(Toxic):
    type_name = "slow_close"
    go_struct = "SlowCloseToxic"
    fields = ("delay",)

    @classmethod
    async def pipe(cls, stub, attrs):
        while True:
            chunk = await stub.recv()
            if chunk is INTERRUPTED:
                return
            if chunk is None:
                # An interrupt ends the wait; the restarted toxic sees the end again.
                if not await stub.sleep(millis(attrs["delay"])):
                    stub.close()
                return
            await stub.send(chunk)
