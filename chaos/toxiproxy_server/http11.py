"""A small HTTP/1.1 server with the behaviour of Go's ``net/http`` that clients can see.

Enough of HTTP/1.1 for every Toxiproxy client: keep-alive (HTTP/1.0 only on request),
``Content-Length`` and chunked request bodies, ``Expect: 100-continue``, HEAD, and Go's
answers to malformed requests (``400 Bad Request`` as plain text, then close). Timeouts
follow the reference (spec §2): 15 s to read a request, 30 s to write a response, 60 s
idle between requests.

Limits: no pipelined request is read before the previous response is written (clients
that pipeline still work, one request at a time); bodies above 64 MiB are refused with 413.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

log = logging.getLogger("toxiproxy.http")

READ_TIMEOUT = 15.0  # reference: http.Server.ReadTimeout
WRITE_TIMEOUT = 30.0  # reference: http.Server.WriteTimeout
IDLE_TIMEOUT = 60.0  # reference: http.Server.IdleTimeout
MAX_HEADER_BYTES = (1 << 20) + 4096  # Go's DefaultMaxHeaderBytes plus its 4 KiB slack
MAX_BODY_BYTES = 64 << 20  # our own cap; the API bodies are a few KiB

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass
class Request:
    method: str
    target: str  # the request-target as sent
    path: str  # percent-decoded path, as Go's URL.Path
    query: str
    version: tuple[int, int]
    headers: dict[str, list[str]]  # lower-case name -> values
    body: bytes = b""

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def set(self, name: str, value: str) -> Response:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))
        return self


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """A request Go's server rejects before routing; ``status`` and a short reason."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "status code %d" % status


async def _read_line(reader: asyncio.StreamReader, budget: list[int]) -> bytes:
    """One header line without its CRLF (or bare LF, which Go also accepts)."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise BadRequest("", 431) from None
    except asyncio.IncompleteReadError as err:
        if err.partial:
            raise BadRequest("unexpected EOF") from None
        raise
    budget[0] -= len(line)
    if budget[0] < 0:
        raise BadRequest("", 431)
    return line[:-2] if line.endswith(b"\r\n") else line[:-1]


def _parse_request_line(line: bytes) -> tuple[str, str, tuple[int, int]]:
    method, sp1, rest = line.partition(b" ")
    target, sp2, proto = rest.partition(b" ")
    if not sp1 or not sp2:
        raise BadRequest("malformed HTTP request")
    match = re.fullmatch(rb"HTTP/(\d)\.(\d)", proto)
    if not match:
        raise BadRequest("malformed HTTP version")
    if not _TOKEN.fullmatch(method):
        raise BadRequest("invalid method")
    version = (int(match.group(1)), int(match.group(2)))
    if version[0] != 1:
        raise BadRequest("unsupported protocol version", 505)
    return method.decode("ascii"), target.decode("latin-1"), version


def _parse_target(target: str) -> tuple[str, str]:
    """Go's ``url.ParseRequestURI``: returns (decoded path, raw query)."""
    if target == "*":
        return "*", ""
    if _CTL.search(target.encode("latin-1")):
        raise BadRequest("invalid URI")
    if not target.startswith("/"):
        match = re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?]*(/[^?]*)?(\?.*)?", target)
        if not match:
            raise BadRequest("invalid URI")
        target = (match.group(1) or "/") + (match.group(2) or "")
    raw_path, _, query = target.partition("?")
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw_path):
        raise BadRequest("invalid URI")
    path = unquote_to_bytes(raw_path.encode("latin-1")).decode("utf-8", "surrogateescape")
    return path, query


async def _read_headers(reader, budget) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for _ in range(10000):  # bounded by the header byte budget anyway
        line = await _read_line(reader, budget)
        if not line:
            return headers
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequest("malformed MIME header line")
        value = value.strip(b" \t")
        if _CTL.search(value):
            raise BadRequest("invalid header value")
        headers.setdefault(name.decode("ascii").lower(), []).append(value.decode("latin-1"))
    raise BadRequest("", 431)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    budget = [MAX_HEADER_BYTES]
    while True:
        size_line = (await _read_line(reader, budget)).split(b";")[0].strip()
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_line):
            raise BadRequest("invalid chunk length")
        size = int(size_line, 16)
        if len(body) + size > MAX_BODY_BYTES:
            raise BadRequest("", 413)
        if size == 0:
            await _read_headers(reader, budget)  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        if await _read_line(reader, budget):
            raise BadRequest("malformed chunked encoding")


async def _read_body(reader, writer, headers: dict[str, list[str]], version) -> bytes:
    encodings = [
        v.strip().lower()
        for v in ",".join(headers.get("transfer-encoding", [])).split(",")
        if v.strip()
    ]
    lengths = headers.get("content-length", [])
    if encodings:
        if encodings != ["chunked"]:
            raise BadRequest("unsupported transfer encoding", 501)
        await _continue(writer, headers, version)
        return await _read_chunked(reader)
    if not lengths:
        return b""
    if len(set(v.strip() for v in lengths)) != 1 or not re.fullmatch(
        r"\d{1,19}", lengths[0].strip()
    ):
        raise BadRequest("bad Content-Length")
    size = int(lengths[0])
    if size > MAX_BODY_BYTES:
        raise BadRequest("", 413)
    if size:
        await _continue(writer, headers, version)
    return await reader.readexactly(size)


async def _continue(writer, headers, version) -> None:
    expect = ",".join(headers.get("expect", [])).lower()
    if version >= (1, 1) and "100-continue" in expect:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()


async def read_request(reader, writer, line_timeout: float = READ_TIMEOUT) -> Request:
    """Read one request (raises BadRequest, TimeoutError, or IncompleteReadError on close).

    ``line_timeout`` bounds the wait for the request line (the idle time of a kept-alive
    connection); the rest of the request must arrive within READ_TIMEOUT.
    """
    budget = [MAX_HEADER_BYTES]
    line = await asyncio.wait_for(_read_line(reader, budget), line_timeout)
    return await asyncio.wait_for(_read_rest(reader, writer, line, budget), READ_TIMEOUT)


async def _read_rest(reader, writer, line: bytes, budget: list[int]) -> Request:
    method, target, version = _parse_request_line(line)
    headers = await _read_headers(reader, budget)
    if version >= (1, 1):
        hosts = headers.get("host", [])
        if len(hosts) != 1:
            raise BadRequest(
                "missing required Host header" if not hosts else "too many Host headers"
            )
    path, query = _parse_target(target)
    body = await _read_body(reader, writer, headers, version)
    return Request(method, target, path, query, version, headers, body)


def _keep_alive(request: Request) -> bool:
    tokens = {
        t.strip().lower() for v in request.headers.get("connection", []) for t in v.split(",")
    }
    if request.version >= (1, 1):
        return "close" not in tokens
    return "keep-alive" in tokens


def render(response: Response, request: Request | None, keep_alive: bool) -> bytes:
    """The bytes of a response; like Go, 204/304 carry no length and HEAD no body."""
    lines = ["HTTP/1.1 %d %s" % (response.status, _phrase(response.status))]
    lines += ["%s: %s" % kv for kv in response.headers]
    lines.append("Date: " + email.utils.formatdate(usegmt=True))
    if response.status not in (204, 304) and response.status >= 200:
        lines.append("Content-Length: %d" % len(response.body))
    if not keep_alive:
        lines.append("Connection: close")
    elif request is not None and request.version < (1, 1):
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if request is not None and request.method == "HEAD":
        return head
    return head + response.body


def _bad_request_bytes(err: BadRequest) -> bytes:
    if err.status == 431:
        text = "431 Request Header Fields Too Large"
    else:
        text = "%d %s" % (err.status, _phrase(err.status))
        if str(err):
            text += ": " + str(err)
    return (
        "HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Connection: close\r\n\r\n" + text
    ).encode("latin-1", "replace")


async def _next_request(reader, writer, first: bool) -> Request | None:
    """Read the next request; None when the client is gone, idle too long, or malformed."""
    try:
        return await read_request(reader, writer, READ_TIMEOUT if first else IDLE_TIMEOUT)
    except BadRequest as err:
        writer.write(_bad_request_bytes(err))
        return None
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        return None


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> None:
    """Serve requests on one connection until either side closes it."""
    try:
        first = True
        while True:
            request = await _next_request(reader, writer, first)
            first = False
            if request is None:
                break
            response = await handler(request)
            log.debug("%s %s -> %d", request.method, request.target, response.status)
            keep = _keep_alive(request)
            writer.write(render(response, request, keep))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
            if not keep:
                break
    except (TimeoutError, ConnectionError):
        pass
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), WRITE_TIMEOUT)
    except (TimeoutError, ConnectionError, OSError):
        pass
