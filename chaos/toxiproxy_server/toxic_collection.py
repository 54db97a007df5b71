"""A proxy's toxics: one ordered chain per direction, applied to every open link.

Each chain starts with a hidden noop (never listed). Creating, updating and removing a
toxic changes the chain and then every open link of that direction (pipeline.py says how);
these changes are serialised per proxy, as the reference does under its collection lock.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from dataclasses import dataclass

from . import gojson, toxics
from .errors import (
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    bad_request_body,
    error,
)
from .gojson import FLOAT32, STRING, GoType
from .stream import DIRECTIONS, DOWNSTREAM, parse_direction

log = logging.getLogger("toxiproxy.toxics")


@dataclass(eq=False)
class ToxicWrapper:
    """A toxic as the API knows it (the reference's ToxicWrapper)."""

    name: str
    type: str
    stream: str  # as sent, e.g. "UpStream"
    direction: str
    toxicity: float  # a float32 value
    kind: builtins.type[toxics.Toxic]  # ``type`` is the field above
    attrs: dict

    def to_json(self) -> str:
        attrs = ",".join(f'"{k}":{self.attrs[k]}' for k in self.kind.fields)
        return '{"attributes":{%s},"name":%s,"type":%s,"stream":%s,"toxicity":%s}' % (
            attrs,
            gojson.encode(self.name),
            gojson.encode(self.type),
            gojson.encode(self.stream),
            gojson.format_float32(self.toxicity),
        )


NOOP = ToxicWrapper("", "noop", "", "", 1.0, toxics.REGISTRY["noop"], {})

# The Go types the reference decodes toxic bodies into (their names appear in errors).
_NOOP_ATTRS = toxics.REGISTRY["noop"].go_type()
WRAPPER = GoType(
    "struct",
    "toxics.ToxicWrapper",
    "ToxicWrapper",
    (
        ("attributes", _NOOP_ATTRS),
        ("name", STRING),
        ("type", STRING),
        ("stream", STRING),
        ("toxicity", FLOAT32),
    ),
)


def _attributes_only(kind) -> GoType:
    return GoType(
        "struct",
        'struct { Attributes interface {} "json:\\"attributes\\"" }',
        "",
        (("attributes", kind.go_type()),),
    )


def _update_body(kind) -> GoType:
    return GoType(
        "struct",
        'struct { Attributes interface {} "json:\\"attributes\\""; '
        'Toxicity float32 "json:\\"toxicity\\"" }',
        "",
        (("attributes", kind.go_type()), ("toxicity", FLOAT32)),
    )


def _checked(kind, attrs: dict) -> dict:
    problem = kind.invalid(attrs)
    if problem:
        raise bad_request_body(problem)
    return attrs


class ToxicCollection:
    def __init__(self, proxy):
        self.proxy = proxy
        self.chains: dict[str, list[ToxicWrapper]] = {d: [NOOP] for d in DIRECTIONS}
        self.links: set = set()
        self.lock = asyncio.Lock()

    def array(self) -> list[ToxicWrapper]:
        """Every toxic: upstream ones in chain order, then downstream ones (spec §3.1)."""
        return [w for d in DIRECTIONS for w in self.chains[d][1:]]

    def find(self, name: str) -> ToxicWrapper | None:
        for wrapper in self.array():
            if wrapper.name == name:
                return wrapper
        return None

    # ---- links

    def start_links(self, conn, up, down) -> None:
        """Run a new connection's links with the current chains."""
        if any(w.kind.resets_peer for d in DIRECTIONS for w in self.chains[d]):
            for side in conn.sides():
                side.set_linger_zero()
        for link in (up, down):
            self.links.add(link)
            link.start(list(self.chains[link.direction]))

    def forget(self, link) -> None:
        self.links.discard(link)

    async def _on_links(self, direction: str, change) -> None:
        links = [link for link in self.links if link.direction == direction]
        results = await asyncio.gather(*(change(link) for link in links), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("toxic change failed on a link of %s: %r", self.proxy.name, result)

    # ---- the API's operations, with the reference's order of checks (spec §4.7-4.11)

    async def add(self, body: bytes) -> ToxicWrapper:
        async with self.lock:
            try:
                value = gojson.decode(body)
            except gojson.DecodeError as err:
                raise bad_request_body(str(err)) from None
            defaults = {
                "attributes": {},
                "name": "",
                "type": "",
                "stream": DOWNSTREAM,
                "toxicity": 1.0,
            }
            doc, problem = gojson.decode_into(value, WRAPPER, defaults)
            if problem:
                raise bad_request_body(problem)
            direction = parse_direction(doc["stream"])
            if direction is None:
                raise error(INVALID_STREAM)
            name = doc["name"] or f"{doc['type']}_{doc['stream']}"
            kind = toxics.lookup(doc["type"])
            if kind is None:
                raise error(INVALID_TOXIC_TYPE)
            if self.find(name) is not None:
                raise error(TOXIC_EXISTS)
            attrs_doc, problem = gojson.decode_into(
                value, _attributes_only(kind), {"attributes": kind.defaults()}
            )
            if problem:
                raise bad_request_body(problem)
            attrs = _checked(kind, attrs_doc["attributes"])
            wrapper = ToxicWrapper(
                name, doc["type"], doc["stream"], direction, doc["toxicity"], kind, attrs
            )
            chain = self.chains[direction]
            chain.append(wrapper)
            previous = chain[-2]
            await self._on_links(direction, lambda link: link.add_toxic(wrapper, previous, NOOP))
            return wrapper

    async def update(self, name: str, body: bytes) -> ToxicWrapper:
        async with self.lock:
            wrapper = self.find(name)
            if wrapper is None:
                raise error(TOXIC_NOT_FOUND)
            current = {"attributes": dict(wrapper.attrs), "toxicity": wrapper.toxicity}
            doc, problem = gojson.parse_into(body, _update_body(wrapper.kind), current)
            if problem:
                raise bad_request_body(problem)
            wrapper.attrs = _checked(wrapper.kind, doc["attributes"])
            wrapper.toxicity = doc["toxicity"]
            index = self.chains[wrapper.direction].index(wrapper)
            await self._on_links(wrapper.direction, lambda link: link.update_toxic(index, wrapper))
            return wrapper

    async def remove(self, name: str) -> None:
        async with self.lock:
            wrapper = self.find(name)
            if wrapper is None:
                raise error(TOXIC_NOT_FOUND)
            await self._remove(wrapper)

    async def reset(self) -> None:
        """Remove every toxic, first to last (spec §4.11)."""
        async with self.lock:
            for direction in DIRECTIONS:
                while len(self.chains[direction]) > 1:
                    await self._remove(self.chains[direction][1])

    async def _remove(self, wrapper: ToxicWrapper) -> None:
        chain = self.chains[wrapper.direction]
        index = chain.index(wrapper)
        del chain[index]
        previous = chain[index - 1]
        await self._on_links(
            wrapper.direction, lambda link: link.remove_toxic(index, wrapper, previous)
        )
