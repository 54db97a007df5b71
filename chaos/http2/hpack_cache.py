"""HPACK encoders and decoders that remember the header blocks a gRPC connection repeats.

The point decodes every header block it receives and encodes it again for the other hop
(the two hops have their own HPACK contexts). On a gRPC connection most blocks repeat
byte for byte once the dynamic table has learnt them: every response's headers
(``:status 200``, ``content-type: application/grpc`` ...) and every OK trailer. Decoding
and encoding them in pure Python was about a fifth of the point's CPU per RPC
(bench/bench_http2_point.py), so these subclasses keep the result of a block that did
*not* change the dynamic table, and reuse it while the table is still the same.

"The same table" is checked, not assumed: entries are only ever added at the front of the
table (a new tuple object each time) and evicted at the back (only when something is
added or the size shrinks), so the front entry's identity, the number of entries and the
size limits together say whether anything changed. A block that adds to the table is
never reused (decoding it again would add again). Never-indexed fields are never served
from the cache (their encoding is a choice the sender made per field).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hpack import Decoder, Encoder, NeverIndexedHeaderTuple
from hpack.table import HeaderTable

# Distinct blocks remembered per connection and direction; a gRPC connection repeats a
# handful, so hitting the limit means the blocks do not repeat (the cache is then cleared).
CACHE_SIZE = 64


def _table_state(table: HeaderTable, *limits: int) -> tuple[Any, ...]:
    entries = table.dynamic_entries
    # The front entry itself (not its id): holding it keeps its identity unique.
    return (entries[0] if entries else None, len(entries), table.maxsize, *limits)


def _same(state: tuple[Any, ...], other: tuple[Any, ...]) -> bool:
    return state[0] is other[0] and state == other


class CachingDecoder(Decoder):
    """An hpack :class:`~hpack.Decoder` that reuses the headers of a repeated block."""

    def __init__(self, max_header_list_size: int = 2**16) -> None:
        super().__init__(max_header_list_size)
        self._cache: dict[tuple[bytes, bool], tuple[tuple[Any, ...], list[Any]]] = {}

    def _state(self) -> tuple[Any, ...]:
        return _table_state(
            self.header_table, self.max_header_list_size, self.max_allowed_table_size
        )

    def decode(self, data: bytes, raw: bool = False) -> list[Any]:
        key = (bytes(data), raw)
        before = self._state()
        cached = self._cache.get(key)
        if cached is not None and _same(cached[0], before):
            return list(cached[1])
        headers = list(super().decode(data, raw))
        if _same(self._state(), before):
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = (before, headers)
        return list(headers)


class CachingEncoder(Encoder):
    """An hpack :class:`~hpack.Encoder` that reuses the encoding of a repeated header list."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple[tuple[Any, ...], bool], tuple[tuple[Any, ...], bytes]] = {}

    def encode(self, headers: Iterable[Any], huffman: bool = True) -> bytes:
        if isinstance(headers, dict):
            return super().encode(headers, huffman)
        fields = tuple(headers)
        if self.header_table.resized or any(
            isinstance(f, NeverIndexedHeaderTuple) or len(f) > 2 for f in fields
        ):
            return super().encode(fields, huffman)  # a size update, or sensitive fields
        key = (fields, huffman)
        before = _table_state(self.header_table)
        cached = self._cache.get(key)
        if cached is not None and _same(cached[0], before):
            return cached[1]
        block = super().encode(fields, huffman)
        if _same(_table_state(self.header_table), before):
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = (before, block)
        return block
