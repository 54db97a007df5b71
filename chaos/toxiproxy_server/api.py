"""The HTTP API: routing as gorilla/mux does it, and one handler per endpoint (spec §4).

Before routing, a path that is not in canonical form is answered with a 301 to the
cleaned path (mux's path cleaning). Unknown paths get Go's ``404 page not found``, a known
path with another method an empty 405. A routed request gets an ``X-Toxiproxy-Request-Id``,
a ``Mozilla/`` user agent gets 403, and a handler running over 25 s is answered with an
empty 503 while it finishes in the background. Handlers check in the spec's order.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
import time
from collections.abc import Awaitable, Callable

from . import VERSION, gojson
from .collection import PROXY
from .errors import ApiError, bad_request_body, missing_field
from .goaddr import GoNetError
from .http11 import Request, Response
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = logging.getLogger("toxiproxy.api")

# A route's handler: handler(request, **path parameters).
Handler = Callable[..., Awaitable[Response]]

HANDLER_TIMEOUT = 25.0  # the reference wraps every handler in http.TimeoutHandler(25 s)
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"


# ------------------------------------------------------------------------ responses


def json_response(status: int, body: str, content_type: str = _JSON) -> Response:
    return Response(status, body.encode("utf-8"), [("Content-Type", content_type)])


def text_error(status: int, text: str) -> Response:
    """Go's http.Error: a text/plain body with a newline, and nosniff."""
    return Response(
        status,
        (text + "\n").encode("utf-8"),
        [("Content-Type", _TEXT), ("X-Content-Type-Options", "nosniff")],
    )


def api_error(err: ApiError) -> Response:
    """The reference's error body: JSON in a text/plain response (spec §2)."""
    return text_error(err.status, gojson.encode({"error": err.message, "status": err.status}))


# ------------------------------------------------------------------------- routing


def go_clean(path: str) -> str:
    """Go's path.Clean."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = ("/" if rooted else "") + "/".join(parts)
    return cleaned or "."


def clean_path(path: str) -> str:
    """gorilla/mux's cleanPath: path.Clean, keeping a trailing slash."""
    if path == "":
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    cleaned = go_clean(path)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


_PATH_SAFE = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@"
)


def escape_path(path: str) -> str:
    """Go's url.PathEscape-like escaping of a whole path (encodePath mode)."""
    raw = path.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _PATH_SAFE else "%%%02X" % b for b in raw)


def _split(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("/"))


def _match(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params = {}
    for want, got in zip(pattern, segments, strict=False):
        if want.startswith("{"):
            if not got:
                return None
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


class _Xid:
    """Request ids in the format of rs/xid (20 base32hex characters), as the reference."""

    def __init__(self):
        self.machine = os.urandom(3)
        self.pid = struct.pack(">H", os.getpid() & 0xFFFF)
        self.counter = int.from_bytes(os.urandom(3), "big")

    def __call__(self) -> str:
        self.counter = (self.counter + 1) & 0xFFFFFF
        raw = (
            struct.pack(">I", int(time.time()) & 0xFFFFFFFF)
            + self.machine
            + self.pid
            + self.counter.to_bytes(3, "big")
        )
        return base64.b32hexencode(raw).decode("ascii").lower().rstrip("=")


class Api:
    """Routes requests to handlers; ``handle`` is the http11 handler."""

    def __init__(self, app):
        self.app = app
        self.proxies = app.collection
        self._request_id = _Xid()
        self._background: set[asyncio.Task] = set()  # handlers that outlived their 503
        routes: list[tuple[str, set[str] | None, Handler]] = [
            ("/reset", {"POST"}, self.reset),
            ("/proxies", {"GET"}, self.proxy_index),
            ("/proxies", {"POST"}, self.proxy_create),
            ("/populate", {"POST"}, self.populate),
            ("/proxies/{proxy}", {"GET"}, self.proxy_show),
            ("/proxies/{proxy}", {"POST", "PATCH"}, self.proxy_update),
            ("/proxies/{proxy}", {"DELETE"}, self.proxy_delete),
            ("/proxies/{proxy}/toxics", {"GET"}, self.toxic_index),
            ("/proxies/{proxy}/toxics", {"POST"}, self.toxic_create),
            ("/proxies/{proxy}/toxics/{toxic}", {"GET"}, self.toxic_show),
            ("/proxies/{proxy}/toxics/{toxic}", {"POST", "PATCH"}, self.toxic_update),
            ("/proxies/{proxy}/toxics/{toxic}", {"DELETE"}, self.toxic_delete),
            ("/version", {"GET"}, self.version),
        ]
        if app.metrics.enabled:
            routes.append(("/metrics", None, self.metrics))  # every method
        self.routes = [(_split(p), methods, h) for p, methods, h in routes]

    async def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS" and request.target == "*":
            return Response(200)  # Go's server answers "OPTIONS *" itself
        cleaned = clean_path(request.path)
        if cleaned != request.path:
            location = escape_path(cleaned) + ("?" + request.query if request.query else "")
            return Response(301, b"", [("Location", location)])
        segments = request.path.split("/")
        method_mismatch = False
        for pattern, methods, handler in self.routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            if methods is None or request.method in methods:
                return await self._routed(handler, params, request)
            method_mismatch = True
        if method_mismatch:
            return Response(405)
        return text_error(404, "404 page not found")

    async def _routed(self, handler, params: dict, request: Request) -> Response:
        request_id = self._request_id()
        if request.header("User-Agent").startswith("Mozilla/"):
            response = text_error(403, "User agent not allowed")
        else:
            response = await self._with_timeout(self._call(handler, request, params))
        response.headers.insert(0, ("X-Toxiproxy-Request-Id", request_id))
        return response

    async def _with_timeout(self, work) -> Response:
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.wait_for(asyncio.shield(task), HANDLER_TIMEOUT)
        except TimeoutError:
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return Response(503)

    async def _call(self, handler, request: Request, params: dict) -> Response:
        try:
            return await handler(request, **params)
        except ApiError as err:
            return api_error(err)
        except GoNetError as err:
            return api_error(ApiError(500, str(err)))
        except Exception as err:  # a bug: answer (the reference recovers panics too)
            log.exception("%s %s failed", request.method, request.path)
            return api_error(ApiError(500, f"internal error: {err!r}"))

    # ------------------------------------------------------------------- handlers

    async def proxy_index(self, request: Request) -> Response:
        items = sorted(self.proxies.proxies.items())
        body = ",".join(gojson.encode(name) + ":" + p.to_json() for name, p in items)
        return json_response(200, "{" + body + "}")

    async def reset(self, request: Request) -> Response:
        for proxy in list(self.proxies.proxies.values()):
            await proxy.ensure_started()  # a bind error ends the loop with a 500
            await proxy.toxics.reset()
        return Response(204)

    async def proxy_create(self, request: Request) -> Response:
        fresh = {"name": "", "listen": "", "upstream": "", "enabled": True}
        doc, problem = gojson.parse_into(request.body, PROXY, fresh)
        if problem:
            raise bad_request_body(problem)
        for field in ("name", "upstream"):
            if not doc[field]:
                raise missing_field(field)
        proxy = self.proxies.new_proxy(doc["name"], doc["listen"], doc["upstream"])
        await self.proxies.add(proxy, doc["enabled"])
        return json_response(201, proxy.to_json())

    async def populate(self, request: Request) -> Response:
        applied, err = await self.proxies.populate(request.body)
        listed = "[" + ",".join(p.to_json() for p in applied) + "]" if applied else "null"
        if err is None:
            return json_response(201, '{"proxies":%s}' % listed)
        head = gojson.encode({"error": err.message, "status": err.status})[:-1]
        return json_response(err.status, head + ',"proxies":%s}' % listed)

    async def proxy_show(self, request: Request, proxy: str) -> Response:
        return json_response(200, self.proxies.get(proxy).to_json())

    async def proxy_update(self, request: Request, proxy: str) -> Response:
        target = self.proxies.get(proxy)
        current = {
            "name": "",
            "listen": target.listen,
            "upstream": target.upstream,
            "enabled": target.enabled,
        }
        doc, problem = gojson.parse_into(request.body, PROXY, current)
        if problem:
            raise bad_request_body(problem)
        await target.update(doc["listen"], doc["upstream"], doc["enabled"])
        return json_response(200, target.to_json())

    async def proxy_delete(self, request: Request, proxy: str) -> Response:
        await self.proxies.remove(proxy)
        return Response(204)

    async def toxic_index(self, request: Request, proxy: str) -> Response:
        toxics = self.proxies.get(proxy).toxics.array()
        return json_response(200, "[" + ",".join(w.to_json() for w in toxics) + "]")

    async def toxic_create(self, request: Request, proxy: str) -> Response:
        wrapper = await self.proxies.get(proxy).toxics.add(request.body)
        return json_response(200, wrapper.to_json())

    async def toxic_show(self, request: Request, proxy: str, toxic: str) -> Response:
        wrapper = self.proxies.get(proxy).toxics.find(toxic)
        if wrapper is None:
            raise ApiError(404, "toxic not found")
        return json_response(200, wrapper.to_json())

    async def toxic_update(self, request: Request, proxy: str, toxic: str) -> Response:
        wrapper = await self.proxies.get(proxy).toxics.update(toxic, request.body)
        return json_response(200, wrapper.to_json())

    async def toxic_delete(self, request: Request, proxy: str, toxic: str) -> Response:
        await self.proxies.get(proxy).toxics.remove(toxic)
        return Response(204)

    async def version(self, request: Request) -> Response:
        return json_response(200, '{"version": "%s"}\n' % VERSION, "application/json;charset=utf-8")

    async def metrics(self, request: Request) -> Response:
        return json_response(200, self.app.metrics.render(), METRICS_CONTENT_TYPE)
