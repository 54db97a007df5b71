"""Network faults: Toxiproxy toxics on the proxy in front of one backend, and proxy down.

Every toxic of the Toxiproxy spec has a fault here. ``stream`` is the direction the toxic
acts on: "downstream" = backend -> client (replies), "upstream" = client -> backend
(requests, pings). Toxic names are unique per fault, so faults of one kind can stack.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from chaos.faults.base import Fault

_names = itertools.count(1)


@dataclass(frozen=True)
class Toxic(Fault):
    """Any toxic by type and attributes (see the Toxiproxy spec, section 7)."""

    backend: str
    type: str = "noop"
    attributes: dict = field(default_factory=dict)
    stream: str = "downstream"
    toxicity: float = 1.0

    @property
    def kind(self) -> str:  # type: ignore[override]
        return f"toxic:{self.type}"

    def _toxic_name(self) -> str:
        # Frozen dataclass: the name is drawn once per fault object and kept on it.
        name = self.__dict__.get("_name")
        if name is None:
            name = f"chaos_{self.type}_{self.stream}_{next(_names)}"
            object.__setattr__(self, "_name", name)
        return name

    def apply(self, nemesis) -> None:
        proxy = nemesis.proxy_of(self.backend)
        nemesis.proxies.add_toxic(
            proxy,
            self.type,
            self.attributes,
            stream=self.stream,
            toxicity=self.toxicity,
            name=self._toxic_name(),
        )

    def revert(self, nemesis) -> None:
        proxy = nemesis.proxy_of(self.backend)
        nemesis.proxies.remove_toxic(proxy, self._toxic_name())


def Latency(backend: str, ms: int, jitter_ms: int = 0, stream: str = "downstream") -> Toxic:
    """Each chunk delayed by ``ms`` ± ``jitter_ms`` (uniform)."""
    return Toxic(backend, "latency", {"latency": ms, "jitter": jitter_ms}, stream)


def Bandwidth(backend: str, kb_per_s: int, stream: str = "downstream") -> Toxic:
    """Throughput limited to ``kb_per_s`` KB/s (0 stalls the direction entirely)."""
    return Toxic(backend, "bandwidth", {"rate": kb_per_s}, stream)


def Blackhole(backend: str, timeout_ms: int = 0, stream: str = "upstream") -> Toxic:
    """Bytes are swallowed (the timeout toxic): requests and pings never arrive; with
    ``timeout_ms`` > 0 the connection is closed after that long without data."""
    return Toxic(backend, "timeout", {"timeout": timeout_ms}, stream)


def ResetPeer(backend: str, timeout_ms: int = 0, stream: str = "upstream") -> Toxic:
    """Connections are reset (RST) ``timeout_ms`` after their first bytes."""
    return Toxic(backend, "reset_peer", {"timeout": timeout_ms}, stream)


def Slicer(
    backend: str,
    average_size: int = 16,
    size_variation: int = 8,
    delay_us: int = 100,
    stream: str = "downstream",
) -> Toxic:
    """Chunks cut into small pieces sent ``delay_us`` apart; bytes unchanged."""
    return Toxic(
        backend,
        "slicer",
        {"average_size": average_size, "size_variation": size_variation, "delay": delay_us},
        stream,
    )


def LimitData(backend: str, limit_bytes: int, stream: str = "downstream") -> Toxic:
    """Each connection is closed after ``limit_bytes`` bytes in this direction."""
    return Toxic(backend, "limit_data", {"bytes": limit_bytes}, stream)


def SlowClose(backend: str, delay_ms: int, stream: str = "downstream") -> Toxic:
    """Closing is delayed by ``delay_ms`` after the source ends."""
    return Toxic(backend, "slow_close", {"delay": delay_ms}, stream)


@dataclass(frozen=True)
class ProxyDown(Fault):
    """The proxy stops listening and closes every connection (refused until it is back on
    the same port)."""

    backend: str
    kind = "proxy:down"

    def apply(self, nemesis) -> None:
        proxy = nemesis.proxy_of(self.backend)
        nemesis.proxies.disable(proxy)

    def revert(self, nemesis) -> None:
        proxy = nemesis.proxy_of(self.backend)
        nemesis.proxies.enable(proxy)


@dataclass(frozen=True)
class CutConnections(Fault):
    """Close every open connection through the proxy at once (disable + enable): clients
    must reconnect, and so meet whatever the backend serves now (e.g. a new certificate)."""

    backend: str
    kind = "proxy:cut"
    instant = True

    def apply(self, nemesis) -> None:
        proxy = nemesis.proxy_of(self.backend)
        nemesis.proxies.disable(proxy)
        nemesis.proxies.enable(proxy)
