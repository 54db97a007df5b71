"""The point's caching HPACK contexts (chaos/http2/hpack_cache.py) behave exactly like
hpack's own: same blocks out of the encoder, same headers out of the decoder, same tables
after, for any sequence of header lists — repeated ones (the cache's case), new ones that
change the table, sensitive fields, and table size changes in between."""

from __future__ import annotations

import pytest
from hpack import Decoder, Encoder, NeverIndexedHeaderTuple
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.http2.hpack_cache import CACHE_SIZE, CachingDecoder, CachingEncoder

# A small alphabet, so that lists repeat and names collide (partial table matches).
names = st.sampled_from([b"content-type", b"grpc-status", b"grpc-message", b"x-a", b"x-b"])
values = st.sampled_from([b"", b"0", b"14", b"application/grpc", b"v" * 40, b"w" * 300])
field = st.builds(
    lambda n, v, sensitive: NeverIndexedHeaderTuple(n, v) if sensitive else (n, v),
    names,
    values,
    st.integers(0, 5).map(lambda i: i == 0),  # now and then a never-indexed field
)
header_list = st.lists(field, min_size=1, max_size=5)
# Each step: encode a list (often one seen before), or change the table size.
step = st.one_of(
    st.tuples(st.just("encode"), st.integers(0, 5), header_list),
    st.tuples(st.just("resize"), st.sampled_from([0, 64, 256, 4096]), st.none()),
)


def _table(context):
    return (list(context.header_table.dynamic_entries), context.header_table.maxsize)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=40), st.lists(header_list, min_size=1, max_size=6))
def test_caching_contexts_match_hpacks_own_for_any_sequence(steps, pool):
    plain_enc, cached_enc = Encoder(), CachingEncoder()
    plain_dec, cached_dec = Decoder(), CachingDecoder()
    for kind, arg, headers in steps:
        if kind == "resize":  # the decoders follow through the size update in the block
            # (as h2 does, only to a new size: hpack 4.x forgets a pending update when the
            # same size is set twice, in its own encoder too)
            if arg != plain_enc.header_table_size:
                plain_enc.header_table_size = cached_enc.header_table_size = arg
            continue
        chosen = pool[arg % len(pool)] if arg else headers  # mostly repeats
        block = plain_enc.encode(chosen)
        assert cached_enc.encode(chosen) == block
        assert _table(cached_enc) == _table(plain_enc)
        decoded, from_cache = plain_dec.decode(block, raw=True), cached_dec.decode(block, raw=True)
        assert from_cache == decoded
        assert [type(h) for h in from_cache] == [type(h) for h in decoded]
        assert _table(cached_dec) == _table(plain_dec)


def test_a_repeated_block_is_decoded_from_the_cache_while_the_table_is_unchanged():
    encoder, decoder = Encoder(), CachingDecoder()
    headers = [(b":status", b"200"), (b"content-type", b"application/grpc")]
    first = encoder.encode(headers)  # adds content-type: not cacheable
    again = encoder.encode(headers)  # indexed only: cacheable
    assert decoder.decode(first, raw=True) == headers
    assert decoder.decode(again, raw=True) == headers
    assert len(decoder._cache) == 1
    cached = decoder.decode(again, raw=True)
    cached.append((b"x", b"y"))  # a caller's list is its own
    assert decoder.decode(again, raw=True) == headers


def test_a_block_that_adds_to_the_table_is_never_reused():
    decoder = CachingDecoder()
    block = Encoder().encode([(b"x-new", b"1")])  # literal with incremental indexing
    decoder.decode(block, raw=True)
    decoder.decode(block, raw=True)
    # Each decode added the entry again, as hpack's own decoder does.
    assert list(decoder.header_table.dynamic_entries) == [(b"x-new", b"1")] * 2
    assert not decoder._cache


def test_a_sensitive_field_is_not_served_the_block_of_its_indexed_twin():
    # Tuple equality does not see sensitivity: (n, v) == NeverIndexedHeaderTuple(n, v).
    encoder, decoder = CachingEncoder(), Decoder()
    encoder.header_table_size = 0  # nothing is added: every plain block is cacheable
    plain = [(b"x-token", b"abc")]
    for _ in range(3):
        assert decoder.decode(encoder.encode(plain), raw=True) == plain
    assert encoder._cache
    decoded = decoder.decode(
        encoder.encode([NeverIndexedHeaderTuple(b"x-token", b"abc")]), raw=True
    )
    assert isinstance(decoded[0], NeverIndexedHeaderTuple)


@pytest.mark.parametrize("context", [CachingEncoder, CachingDecoder])
def test_the_cache_stays_bounded(context):
    instance = context()
    instance.header_table_size = 0  # nothing is ever added: every block is cacheable
    encoder = Encoder()
    encoder.header_table_size = 0
    for n in range(CACHE_SIZE * 3):
        headers = [(b"x-n", str(n).encode())]
        if context is CachingEncoder:
            instance.encode(headers)
        else:
            instance.decode(encoder.encode(headers), raw=True)
        assert len(instance._cache) <= CACHE_SIZE
