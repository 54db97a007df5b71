"""Robustness of the API: random paths, methods and JSON bodies never break the server.

Every request gets a complete answer (never a dropped connection), with a 2xx or 4xx
status, a 301 only for a path that is not in canonical form, and a 5xx only for a bind
error; the server stays up. Bodies are kept on loopback: any "listen" becomes
127.0.0.1:0, and proxy names get this test's prefix so they are cleaned up.
"""

from __future__ import annotations

import http.client
import json
import socket
import string
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.toxiproxy_server.api import clean_path  # the rule both servers follow (mux)
from chaos.toxiproxy_server.gojson import fold

KEYS = [
    "name",
    "upstream",
    "listen",
    "enabled",
    "type",
    "stream",
    "toxicity",
    "attributes",
    "latency",
    "jitter",
    "rate",
    "delay",
    "timeout",
    "bytes",
    "average_size",
    "size_variation",
    "NAME",
    "Type",
    "Logger",
]
TYPES = [
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "noop",
    "down",
    "",
]

keys = st.sampled_from(KEYS) | st.text(max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 70), 1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(TYPES)
    | st.sampled_from(["upstream", "downstream", "UpStream", "127.0.0.1:1"])
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=16,
)
objects = st.dictionaries(keys, json_values, max_size=6)
attribute_values = st.integers(-5, 10**6) | scalars
plausible = st.fixed_dictionaries(
    {},
    optional={  # shaped like the API's own bodies
        "name": st.text(max_size=5),
        "upstream": st.just("127.0.0.1:1"),
        "type": st.sampled_from(TYPES),
        "stream": st.sampled_from(["upstream", "downstream", ""]),
        "toxicity": st.floats(-1, 2) | st.none(),
        "enabled": st.booleans() | st.none(),
        "attributes": st.dictionaries(st.sampled_from(KEYS[8:16]), attribute_values, max_size=3),
    },
)
api_methods = st.sampled_from(["POST", "GET", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"])
any_methods = st.text(string.ascii_uppercase, min_size=1, max_size=7).filter(
    lambda m: m != "CONNECT"
)


def _paths(prefix: str):
    """Mostly the API's routes (on this test's proxy and toxic), sometimes anything."""
    name = st.sampled_from([prefix + "p", "t"]) | st.text(max_size=6)
    routes = st.one_of(
        st.sampled_from(
            [
                "/proxies",
                "/populate",
                "/reset",
                "/version",
                "/metrics",
                f"/proxies/{prefix}p",
                f"/proxies/{prefix}p/toxics",
                f"/proxies/{prefix}p/toxics/t",
            ]
        ),
        name.map(lambda n: "/proxies/" + quote(n, safe="")),
        name.map(lambda n: f"/proxies/{prefix}p/toxics/" + quote(n, safe="")),
    )
    segment = st.sampled_from(
        ["proxies", "toxics", prefix + "p", "t", "", ".", "..", "a/b", "with space", "ünï"]
    ) | st.text(max_size=6)
    quoted = segment.map(lambda s: quote(s, safe="") if s not in (".", "..") else s)
    anything = st.lists(quoted, max_size=5).map(lambda parts: "/" + "/".join(parts))
    return st.one_of(routes, anything)


def _loopback_only(value, prefix: str):
    """Keep generated bodies on loopback and their proxy names ours."""
    if isinstance(value, list):
        return [_loopback_only(item, prefix) for item in value]
    if not isinstance(value, dict):
        return value
    out = {k: v for k, v in value.items() if fold(k) != "listen"}
    out["listen"] = "127.0.0.1:0"
    for key, item in value.items():
        if fold(key) == "name" and isinstance(item, str):
            out[key] = prefix + item
    return out


@pytest.fixture
def raw(toxiproxy_server):
    """Send one request on a fresh connection; the full answer or an assertion error."""

    def send(method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(
            toxiproxy_server.host, toxiproxy_server.port, timeout=30
        )
        try:
            connection.request(
                method, path, body=body, headers={"Content-Type": "application/json"}
            )
            reply = connection.getresponse()
            return reply.status, dict(reply.getheaders()), reply.read()
        except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise AssertionError(f"{method} {path}: no complete answer: {err!r}") from None
        finally:
            connection.close()

    return send


def _check(method: str, path: str, status: int, headers: dict, body: bytes) -> None:
    where = f"{method} {path} -> {status} {body[:200]!r}"
    if status == 301:
        assert clean_path(unquote(path)) != unquote(path), where
        return
    assert 200 <= status < 300 or 400 <= status < 500 or status == 500, where
    if method == "HEAD":
        return
    if status == 500:
        assert b"bind" in body or b"listen tcp" in body, where
    if status == 404 and body == b"404 page not found\n":
        return
    if status == 405:
        assert body == b"", where
    elif status >= 400:
        error = json.loads(body)
        assert error["status"] == status and isinstance(error["error"], str), where


def _ensure_target(control, name: str, upstream: str) -> None:
    """The proxy and toxic the generated requests mostly address (they may be deleted)."""
    if name not in control.proxies():
        control.create(name, "127.0.0.1:0", upstream)
    if not any(t["name"] == "t" for t in control.toxics(name)):
        control.add_toxic(name, "noop", name="t")


def _bodies(prefix: str):
    def dumped(strategy):
        return strategy.map(lambda v: json.dumps(_loopback_only(v, prefix)))

    return st.one_of(
        dumped(plausible),
        dumped(st.lists(plausible, max_size=3)),
        dumped(objects),
        dumped(st.lists(objects, max_size=3)),
        dumped(json_values),
        st.binary(max_size=32).map(lambda b: b.decode("latin-1")),
        st.just(""),
    )


def _requests(prefix: str):
    """(method, path, body) shaped like the API's calls, with random values in them."""
    proxy = f"/proxies/{prefix}p"
    bodies = _bodies(prefix)
    plain = st.one_of(plausible.map(lambda v: json.dumps(_loopback_only(v, prefix))), bodies)
    listed = st.lists(plausible, max_size=3).map(lambda v: json.dumps(_loopback_only(v, prefix)))
    return st.one_of(
        st.tuples(st.just("POST"), st.just("/proxies"), plain),
        st.tuples(st.just("POST"), st.just("/populate"), st.one_of(listed, bodies)),
        st.tuples(st.sampled_from(["POST", "PATCH"]), st.just(proxy), plain),
        st.tuples(st.just("POST"), st.just(proxy + "/toxics"), plain),
        st.tuples(
            st.sampled_from(["POST", "PATCH"]),
            st.sampled_from([proxy + "/toxics/t", proxy + "/toxics/latency_downstream"]),
            plain,
        ),
        st.tuples(st.sampled_from(["GET", "DELETE"]), _paths(prefix), st.just("")),
        st.tuples(st.just("POST"), st.just("/reset"), bodies),
    )


def _property(raw, control, prefix, upstream, requests_, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests_)
    def one_request(request):
        method, path, body = request
        _ensure_target(control, prefix + "p", upstream)
        status, headers, answer = raw(method, path, body.encode("utf-8", "surrogatepass"))
        _check(method, path, status, headers, answer)
        assert raw("GET", "/version", b"")[0] == 200, "the server went down"

    one_request()


def test_random_api_calls_never_break_the_api(raw, control, prefix, echo):
    """The API's own calls with random values: explores its states."""
    _property(raw, control, prefix, echo.address, _requests(prefix), 200)


def test_random_requests_never_break_the_api(raw, control, prefix, echo):
    """Random paths with the API's methods and random bodies."""
    requests_ = st.tuples(api_methods, _paths(prefix), _bodies(prefix))
    _property(raw, control, prefix, echo.address, requests_, 150)


def test_random_methods_never_break_the_api(raw, control, prefix, echo):
    requests_ = st.tuples(any_methods, _paths(prefix), _bodies(prefix))
    _property(raw, control, prefix, echo.address, requests_, 50)


def test_malformed_http_is_answered_not_dropped(toxiproxy_server):
    for request in (
        b"GARBAGE\r\n\r\n",
        b"GET /version HTTP/9.x\r\n\r\n",
        b"GET /ver%zzsion HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /version HTTP/1.1\r\n\r\n",
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",
    ):
        with socket.create_connection(
            (toxiproxy_server.host, toxiproxy_server.port), timeout=10
        ) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 Bad Request"), (request, answer)
