"""What the fleet needs of an HTTP/2 fault point server, and where it gets one.

``Fleet(..., http2=True)`` puts one HTTP/2 fault point inline for every backend (client →
Toxiproxy proxy → point → backend). The point itself is grpc-chaos's (chaos/http2/): the
fleet is the system under test and never imports chaos (tests/test_layers.py), so it is
given the point the way it is given Toxiproxy — by what it needs (:class:`PointServer`),
either passed in (``Fleet(..., http2=server)``) or made by the factory chaos registers
here when it is imported (``chaos.faults`` registers ``chaos.http2.Http2Server``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

PathArg = str | os.PathLike[str]


class Point(Protocol):
    """One point (chaos.http2.Http2Point): where it listens and relays, its active faults
    (``stats()["faults"]``) and how to clear one (by kind); the faults themselves are
    injected by chaos (chaos/faults/http2.py)."""

    name: str
    address: tuple[str, int]

    def set_upstream(self, upstream: tuple[str, int]) -> None: ...

    def set_certificate(self, cert: PathArg, key: PathArg) -> None: ...

    def stats(self) -> dict: ...

    def clear(self, fault: str) -> int: ...

    def close(self) -> None: ...


class PointServer(Protocol):
    """The process holding the points (chaos.http2.Http2Server)."""

    @property
    def pid(self) -> int | None: ...

    def add_point(
        self,
        name: str,
        *,
        upstream: tuple[str, int],
        server_name: str,
        cert: PathArg,
        key: PathArg,
        ca: PathArg,
        client_ca: PathArg | None = None,
        client_cert: PathArg | None = None,
        client_key: PathArg | None = None,
    ) -> Point: ...

    def stop(self) -> None: ...


_factory: Callable[[], PointServer] | None = None


def register(factory: Callable[[], PointServer]) -> None:
    """Make ``factory`` (returns a started server) what ``Fleet(http2=True)`` uses."""
    global _factory
    _factory = factory


def start_server() -> PointServer:
    """A started point server from the registered factory; a clear error without one."""
    if _factory is None:
        raise RuntimeError(
            "Fleet(http2=True) needs grpc-chaos's HTTP/2 fault point: import chaos.faults "
            "(it registers chaos.http2.Http2Server) or pass a started server as http2="
        )
    return _factory()
