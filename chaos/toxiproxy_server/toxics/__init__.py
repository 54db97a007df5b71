"""Toxic types: one module per type, each registering itself with :func:`register`.

A toxic type is a :class:`Toxic` subclass: its API name, its Go struct (whose name and
field types appear in the reference's error texts), its integer attributes, and an async
``pipe(stub, attrs)`` that moves chunks from the stub's input to its output for one
direction of one connection. What a stub offers is in ``pipeline.Stub``:

    chunk = await stub.recv()        # a Chunk, None at end of stream, INTERRUPTED,
                                     # or TIMEOUT when recv(timeout=...) expires
    await stub.send(chunk)           # to the next toxic (waits while it is busy)
    interrupted = await stub.sleep(s)  # an interruptible wait
    await stub.pause(s)              # a wait nothing interrupts
    stub.close()                     # end the stream here (the connection closes)
    stub.state                       # per-connection state from new_state()

``pipe`` returns when interrupted (update or removal of the toxic; the chunk in hand
must still be sent) or after closing the stub. A toxic that passes the end of stream on
at once reads with :func:`receive`:

    while (chunk := await receive(stub)) is not None:
        ...                          # handle chunk; return when a sleep is interrupted

Adding a toxic type means adding a module to this package: the registry imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import ClassVar

from ..gojson import INT64, GoType
from ..stream import INTERRUPTED

REGISTRY: dict[str, type[Toxic]] = {}


class Toxic:
    """A toxic type; subclasses set the class attributes and implement ``pipe``."""

    type_name: ClassVar[str] = ""  # the API's "type"
    go_struct: ClassVar[str] = ""  # the reference's struct name, e.g. "LatencyToxic"
    fields: ClassVar[tuple[str, ...]] = ()  # attribute names, in the reference's order
    go_int: ClassVar[GoType] = INT64  # Go type of the attributes (slicer uses int)
    buffer_size: ClassVar[int] = 0  # chunks buffered in front of it (latency: 1024)
    resets_peer: ClassVar[bool] = False  # SO_LINGER 0 on connections accepted with it
    closes_on_removal: ClassVar[bool] = False  # removing it closes the stream (timeout)

    @classmethod
    def defaults(cls) -> dict[str, int]:
        return {name: 0 for name in cls.fields}

    @classmethod
    def go_type(cls) -> GoType:
        """The Go struct the attributes decode into."""
        return GoType(
            "struct",
            "toxics." + cls.go_struct,
            cls.go_struct,
            tuple((name, cls.go_int) for name in cls.fields),
        )

    @classmethod
    def invalid(cls, attrs: dict[str, int]) -> str | None:
        """Why ``attrs`` cannot run (the reference would crash on them), or None."""
        return None

    @classmethod
    def new_state(cls):
        """Fresh per-connection state for a stateful toxic (limit_data), else None."""
        return None

    @classmethod
    async def pipe(cls, stub, attrs: dict[str, int]) -> None:
        raise NotImplementedError


async def receive(stub):
    """The next chunk from ``stub``'s input, or None when ``pipe`` must return now.

    One ``await stub.recv()`` (no timeout), then:

    * a chunk: returned as it is;
    * INTERRUPTED (the toxic is being updated or removed): None, and nothing else is done;
      the stub stays open and nothing is in hand;
    * None (end of stream): ``stub.close()`` is called at once, then None.

    For toxics that end differently (slow_close delays the close; timeout reads with a
    timeout; reset_peer waits before closing) read ``stub.recv()`` directly.
    """
    chunk = await stub.recv()
    if chunk is INTERRUPTED:
        return None
    if chunk is None:
        stub.close()
    return chunk


def register(cls: type[Toxic]) -> type[Toxic]:
    """Class decorator: make a toxic type creatable through the API."""
    REGISTRY[cls.type_name] = cls
    return cls


def lookup(type_name: str) -> type[Toxic] | None:
    """The registered toxic type named ``type_name`` (case-sensitive), or None."""
    return REGISTRY.get(type_name)


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_all()
