"""The server's named proxies: create, replace, delete, and /populate (spec §4.2, §4.12)."""

from __future__ import annotations

import asyncio

from . import gojson
from .errors import PROXY_EXISTS, PROXY_NOT_FOUND, ApiError, bad_request_body, error, missing_field
from .goaddr import GoNetError
from .gojson import BOOL, PTR_BOOL, STRING, GoType
from .proxy import Proxy

_LOGGER = GoType("struct", "zerolog.Logger", "Logger", ())  # an exported field since 2.5.0
PROXY = GoType(
    "struct",
    "toxiproxy.Proxy",
    "Proxy",
    (
        ("name", STRING),
        ("listen", STRING),
        ("upstream", STRING),
        ("enabled", BOOL),
        ("Logger", _LOGGER),
    ),
)
_POPULATE_ENTRY = GoType(
    "struct",
    'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }',
    "",
    (
        ("name", STRING),
        ("listen", STRING),
        ("upstream", STRING),
        ("enabled", PTR_BOOL),
        ("Logger", _LOGGER),
    ),
)
POPULATE = GoType("slice", "[]" + _POPULATE_ENTRY.name, elem=_POPULATE_ENTRY)


class ProxyCollection:
    def __init__(self, metrics=None):
        self.proxies: dict[str, Proxy] = {}
        self.metrics = metrics
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise error(PROXY_NOT_FOUND)
        return proxy

    def new_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, self.metrics if self.metrics.proxy else None)

    async def add(self, proxy: Proxy, start: bool) -> None:
        """Add a new proxy, started if asked; 409 if the name is taken, bind errors raised."""
        async with self.lock:
            if proxy.name in self.proxies:
                raise error(PROXY_EXISTS)
            if start:
                await proxy.start()
            self.proxies[proxy.name] = proxy

    async def remove(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            proxy.stop()
            del self.proxies[name]

    async def _add_or_replace(self, proxy: Proxy, start: bool) -> Proxy:
        """Keep an existing proxy with the same (resolved) listen and upstream untouched;
        otherwise stop it and put ``proxy`` in its place (spec §4.12)."""
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            if not await existing.differs(proxy.listen, proxy.upstream):
                return existing
            existing.stop()
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def populate(self, body: bytes) -> tuple[list[Proxy], ApiError | None]:
        """Apply a /populate body: (proxies applied, error that stopped it or None)."""
        entries, problem = gojson.parse_into(body, POPULATE, None)
        if problem:
            return [], bad_request_body(problem)
        entries = [entry or {} for entry in entries or []]
        for number, entry in enumerate(entries, 1):
            for name in ("name", "upstream"):
                if not entry.get(name):
                    return [], missing_field(f"{name} at proxy {number}")
        applied: list[Proxy] = []
        async with self.lock:
            for entry in entries:
                enabled = entry.get("enabled")
                proxy = self.new_proxy(entry["name"], entry.get("listen", ""), entry["upstream"])
                try:
                    applied.append(await self._add_or_replace(proxy, enabled is not False))
                except GoNetError as err:
                    return applied, ApiError(500, str(err))
        return applied, None

    def stop_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
