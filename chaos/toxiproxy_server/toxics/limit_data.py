"""limit_data: lets exactly ``bytes`` bytes through per connection and direction, then closes.

The chunk that reaches the limit is cut so the count is exact. The count lives with the
connection (it survives updates of the toxic) and starts again for a new connection or a
re-added toxic. With ``bytes`` 0 the first chunk (or the end) closes without forwarding.
"""

from ..stream import Chunk
from . import Toxic, receive, register


class _Sent:
    __slots__ = ("count",)

    def __init__(self):
        self.count = 0


@register
class LimitData(Toxic):
    type_name = "limit_data"
    go_struct = "LimitDataToxic"
    fields = ("bytes",)

    @classmethod
    def new_state(cls):
        return _Sent()

    @classmethod
    async def pipe(cls, stub, attrs):
        sent = stub.state
        limit = attrs["bytes"]
        remaining = limit - sent.count
        while (chunk := await receive(stub)) is not None:
            remaining = max(remaining, 0)
            if remaining < len(chunk.data):
                chunk = Chunk(chunk.data[:remaining], chunk.ts)
            if chunk.data:
                await stub.send(chunk)
                sent.count += len(chunk.data)
            remaining = limit - sent.count
            if remaining <= 0:
                stub.close()
                return
