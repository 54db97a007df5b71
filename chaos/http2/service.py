"""The point process's control API: newline-delimited JSON over one loopback TCP port.
(This is the Python point's; the compiled one, relay_go/main.go, serves the same API.)

Each request is one JSON object on one line, ``{"op": ..., ...}``; each answer one line,
``{"ok": true, ...}`` or ``{"ok": false, "error": "...", "type": "ValueError"}``. Requests
on one connection are answered in order. Operations:

============  =========================================================================
``add``       ``name``, ``upstream`` [host, port], ``server_name``, ``cert``, ``key``,
              ``ca``, optional ``client_ca``, ``client_cert``, ``client_key`` (paths):
              start a point; answers its ``address`` [host, port]
``remove``    ``name``: close the point and every connection through it
``upstream``  ``name``, ``upstream`` [host, port]: where the point's new connections go
              (open ones keep their backend)
``inject``    ``name``, ``fault`` (Http2Fault.to_json()): answers ``in_force_ns`` and more
``clear``     ``name``, ``kind``: answers ``cleared``, ``cleared_ns``
``events``    ``name``, ``since``: answers ``events``, ``next``
``stats``     ``name``: connections, streams, active faults, counters
``points``    the names of the points
============  =========================================================================

Bad input (an unknown op, point or fault kind, a bad error code) is answered with a
ValueError naming it; the process goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from typing import Any

from .faults import Http2Fault
from .point import LOOPBACK, Point, server_tls, upstream_tls

log = logging.getLogger("chaos.http2")

MAX_REQUEST = 1 << 20  # bytes in one request line


class Service:
    """Every point of this process, by name."""

    def __init__(self) -> None:
        self.points: dict[str, Point] = {}
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task] = set()

    async def listen(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0, limit=MAX_REQUEST)
        return self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await asyncio.gather(*(point.close() for point in self.points.values()))
        self.points.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, ConnectionError):  # a line over the limit, a reset
                    return
                if not line:
                    return
                answer = await self.answer(line)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            return {"ok": True, **await self.handle(request)}
        except (ValueError, TypeError, KeyError, OSError, ssl.SSLError) as err:
            kind = "ValueError" if isinstance(err, ValueError | TypeError | KeyError) else "OSError"
            message = str(err) if not isinstance(err, KeyError) else f"missing {err}"
            return {"ok": False, "error": message, "type": kind}

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "points":
            return {"points": sorted(self.points)}
        if op == "add":
            return await self._add(request)
        if op not in ("remove", "upstream", "certificate", "inject", "clear", "events", "stats"):
            raise ValueError(f"unknown operation {op!r}")
        point = self._point(request.get("name"))
        if op == "remove":
            del self.points[point.name]
            await point.close()
            return {}
        if op == "upstream":
            host, port = request["upstream"]
            point.upstream = (str(host), int(port))
            return {"upstream": list(point.upstream)}
        if op == "certificate":
            point.set_certificate(str(request["cert"]), str(request["key"]))
            return {}
        if op == "inject":
            return await point.inject(Http2Fault.from_json(request.get("fault")))
        if op == "clear":
            return await point.clear(str(request.get("kind")))
        if op == "events":
            return point.events(int(request.get("since", 0)))
        return point.stats()

    def _point(self, name: Any) -> Point:
        if name not in self.points:
            known = ", ".join(sorted(self.points)) or "none"
            raise ValueError(f"no HTTP/2 point named {name!r} (points: {known})")
        return self.points[name]

    async def _add(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["name"]
        if not isinstance(name, str) or not name:
            raise ValueError(f"a point name is a non-empty string, got {name!r}")
        if name in self.points:
            raise ValueError(f"an HTTP/2 point named {name!r} exists already")
        host, port = request["upstream"]
        point = Point(
            name,
            (str(host), int(port)),
            str(request["server_name"]),
            server_tls(request["cert"], request["key"], request.get("client_ca")),
            upstream_tls(request["ca"], request.get("client_cert"), request.get("client_key")),
        )
        address = await point.start()
        self.points[name] = point
        return {"address": list(address)}
