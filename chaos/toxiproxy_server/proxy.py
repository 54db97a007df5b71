"""One named proxy: its listener, its open connections, and its toxics (spec §5).

While enabled it accepts clients on ``listen`` and dials ``upstream`` for each; ``listen``
then holds the address actually bound, so disabling and enabling again rebinds the same
port. Stopping closes the listener (new clients get ECONNREFUSED) and every connection.
"""

from __future__ import annotations

import asyncio
import logging

from . import goaddr, gojson
from .link import Connection
from .toxic_collection import ToxicCollection

log = logging.getLogger("toxiproxy.proxy")


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, metrics=None):
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.metrics = metrics
        self.toxics = ToxicCollection(self)
        self.connections: set[Connection] = set()
        self.lock = asyncio.Lock()  # start/stop/update one at a time, as the reference
        self._server: asyncio.AbstractServer | None = None

    def to_json(self) -> str:
        """The proxy object of the API, fields in the reference's order (spec §3.1)."""
        toxics = ",".join(w.to_json() for w in self.toxics.array())
        return '{"name":%s,"listen":%s,"upstream":%s,"enabled":%s,"Logger":{},"toxics":[%s]}' % (
            gojson.encode(self.name),
            gojson.encode(self.listen),
            gojson.encode(self.upstream),
            "true" if self.enabled else "false",
            toxics,
        )

    async def start(self) -> None:
        """Bind ``listen`` and accept clients; raises GoNetError with Go's text."""
        sock, bound = await goaddr.listen(self.listen)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self).client, sock=sock, backlog=goaddr.LISTEN_BACKLOG
        )
        self.listen = bound
        self.enabled = True
        log.info("started proxy %s on %s -> %s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        """Close the listener and every connection of this proxy."""
        if not self.enabled:
            return
        self.enabled = False
        assert self._server is not None  # enabled only once start() made it
        self._server.close()
        self._server = None
        for conn in list(self.connections):
            conn.abort()
        log.info("terminated proxy %s on %s", self.name, self.listen)

    async def differs(self, listen: str, upstream: str) -> bool:
        """Whether (listen, upstream) names another place (listen compared resolved)."""
        resolved = await goaddr.resolve_tcp(listen)
        return not (self.listen == str(resolved) and self.upstream == upstream)

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply an update (spec §4.4); raises GoNetError on a resolve or bind failure."""
        async with self.lock:
            if await self.differs(listen, upstream):
                self.stop()
                self.listen, self.upstream = listen, upstream
            if enabled and not self.enabled:
                await self.start()
            elif not enabled:
                self.stop()

    async def ensure_started(self) -> None:
        async with self.lock:
            if not self.enabled:
                await self.start()

    def count_received(self, labels: tuple, count: int) -> None:
        if self.metrics is not None:
            self.metrics.add_received(labels, count)

    def count_sent(self, labels: tuple, count: int) -> None:
        if self.metrics is not None:
            self.metrics.add_sent(labels, count)
