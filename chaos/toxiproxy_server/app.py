"""The server: proxies, their toxics and the HTTP API, sharing one asyncio event loop."""

from __future__ import annotations

import asyncio
import logging

from . import goaddr, http11
from .api import Api
from .collection import ProxyCollection
from .metrics import Metrics

log = logging.getLogger("toxiproxy")


class App:
    def __init__(self, proxy_metrics: bool = False, runtime_metrics: bool = False):
        self.metrics = Metrics(proxy_metrics, runtime_metrics)
        self.collection = ProxyCollection(self.metrics)
        self.api = Api(self)
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task] = set()
        self.address = ""  # host:port the API is bound to

    async def load_config(self, path: str) -> None:
        """Create the proxies of a -config file; every problem is only logged (spec §1)."""
        try:
            with open(path, "rb") as config:
                body = config.read()
        except OSError as err:
            log.error("error reading config file %s: %s", path, err)
            return
        applied, failure = await self.collection.populate(body)
        if failure is not None:
            log.error("failed to populate proxies from file %s: %s", path, failure.message)
        else:
            log.info("populated %d proxies from file %s", len(applied), path)

    async def listen(self, host: str, port: str) -> str:
        """Start the HTTP API on host:port (port "0" picks one); returns its address."""
        sock, self.address = await goaddr.listen(goaddr.join_host_port(host, port))
        self._server = await asyncio.start_server(
            self._serve, sock=sock, limit=http11.MAX_HEADER_BYTES
        )
        log.info("starting Toxiproxy HTTP server on %s", self.address)
        return self.address

    async def _serve(self, reader, writer) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each client in a task of its own
        self._clients.add(task)
        try:
            await http11.serve_connection(reader, writer, self.api.handle)
        finally:
            self._clients.discard(task)

    async def close(self) -> None:
        """Stop the API and every proxy, closing every proxied connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        self.collection.stop_all()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports report connection_lost
