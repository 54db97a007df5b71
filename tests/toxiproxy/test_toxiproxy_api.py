"""The HTTP API, endpoint by endpoint: status codes, exact error texts, JSON shapes and field
order, and the order in which each endpoint checks its input (spec §2-§4, §8)."""

from __future__ import annotations

import http.client
import json
import re
import socket

import pytest
from toxiproxy_testkit import EARLY_S, LATE_S, connect, read_until_closed, refused, round_trip

PROXY_KEYS = ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
TOXIC_KEYS = ["attributes", "name", "type", "stream", "toxicity"]
REQUEST_ID = re.compile(r"[0-9a-v]{20}")
ATTRIBUTES = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def assert_error(reply, status: int, message: str) -> None:
    """A routed error: JSON {"error", "status"} + newline in a text/plain response."""
    assert (reply.status_code, reply.text) == (
        status,
        compact({"error": message, "status": status}) + "\n",
    )
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert REQUEST_ID.fullmatch(reply.headers["X-Toxiproxy-Request-Id"])


def assert_error_starts(reply, status: int, start: str) -> None:
    assert reply.status_code == status, reply.text
    body = json.loads(reply.text)
    assert list(body) == ["error", "status"] and body["status"] == status
    assert body["error"].startswith(start), body["error"]


def assert_proxy(reply, status: int, **expected) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert list(body) == PROXY_KEYS
    assert reply.text == compact(body), "not compact JSON in the reference's field order"
    assert body["Logger"] == {}
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    return body


def assert_toxic(reply, status: int = 200, **expected) -> dict:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert list(body) == TOXIC_KEYS and reply.text == compact(body)
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    return body


def busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


# ------------------------------------------------------------------------ conventions


def test_version(api):
    reply = api.get("/version")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json;charset=utf-8"
    assert re.fullmatch(r'\{"version": "[^"]+"\}\n', reply.text)


def test_unknown_paths_are_plain_404s_without_request_id(api):
    for path in ("/nope", "/proxies/", "/proxies/a/b/c/d", "/"):
        reply = api.get(path, headers={"User-Agent": "Mozilla/5.0"})
        assert (reply.status_code, reply.text) == (404, "404 page not found\n"), path
        assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert "X-Toxiproxy-Request-Id" not in reply.headers


def test_wrong_method_is_an_empty_405(api):
    for method, path in (
        ("PUT", "/proxies"),
        ("POST", "/version"),
        ("GET", "/reset"),
        ("DELETE", "/populate"),
        ("PUT", "/proxies/x/toxics/y"),
    ):
        reply = api.request(method, path)
        assert (reply.status_code, reply.text) == (405, ""), (method, path)


def test_browsers_are_refused_on_routed_paths(api):
    reply = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux)"})
    assert (reply.status_code, reply.text) == (403, "User agent not allowed\n")
    assert REQUEST_ID.fullmatch(reply.headers["X-Toxiproxy-Request-Id"])
    assert api.get("/proxies", headers={"User-Agent": "curl/8"}).status_code == 200


def test_request_ids_are_unique(api):
    ids = {api.get("/version").headers["X-Toxiproxy-Request-Id"] for _ in range(20)}
    assert len(ids) == 20 and all(REQUEST_ID.fullmatch(i) for i in ids)


def test_non_canonical_paths_are_redirected(toxiproxy_server):
    # http.client sends the path as given (requests would normalise the dots away).
    for path, location in (
        ("//proxies", "/proxies"),
        ("/proxies/../version", "/version"),
        ("/proxies/./x/", "/proxies/x/"),
        ("/a/%2E%2E/reset?q=1", "/reset?q=1"),
    ):
        connection = http.client.HTTPConnection(
            toxiproxy_server.host, toxiproxy_server.port, timeout=10
        )
        try:
            connection.request("GET", path)
            reply = connection.getresponse()
            assert (reply.status, reply.getheader("Location"), reply.read()) == (
                301,
                location,
                b"",
            ), path
        finally:
            connection.close()


# --------------------------------------------------------------------- proxy create


def test_create_returns_201_with_the_bound_address(api, prefix, echo):
    reply = api.post(
        "/proxies", {"name": prefix + "p", "upstream": echo.address, "listen": "127.0.0.1:0"}
    )
    body = assert_proxy(
        reply, 201, name=prefix + "p", upstream=echo.address, enabled=True, toxics=[]
    )
    assert re.fullmatch(r"127\.0\.0\.1:[1-9][0-9]*", body["listen"])
    assert_proxy(api.get(f"/proxies/{prefix}p"), 200, listen=body["listen"])


def test_create_checks_in_order(api, prefix):
    cases = [
        (b"", "bad request body: EOF"),
        (b"   ", "bad request body: EOF"),
        (b"{", "bad request body: unexpected EOF"),
        (b"x", "bad request body: invalid character 'x' looking for beginning of value"),
        (
            b"[1]",
            "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy",
        ),
        (b'{"upstream": "127.0.0.1:1"}', "missing required field: name"),
        (b'{"name": "", "upstream": ""}', "missing required field: name"),
        (b'{"name": "%sp"}' % prefix.encode(), "missing required field: upstream"),
    ]
    for body, message in cases:
        assert_error(api.post("/proxies", body), 400, message)
    assert_error_starts(
        api.post("/proxies", {"name": 5, "upstream": "u"}),
        400,
        "bad request body: json: cannot unmarshal number into Go struct field",
    )


def test_create_conflict_is_checked_before_binding(api, prefix, echo):
    first = api.post(
        "/proxies", {"name": prefix + "p", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()
    again = {"name": prefix + "p", "upstream": "other:1", "listen": first["listen"]}
    assert_error(api.post("/proxies", again), 409, "proxy already exists")


def test_create_bind_errors_are_500_with_go_text_and_create_nothing(api, prefix):
    with busy_port() as taken:
        port = taken.getsockname()[1]
        for listen in (f"127.0.0.1:{port}", f"localhost:{port}"):
            reply = api.post(
                "/proxies", {"name": prefix + "p", "upstream": "x:1", "listen": listen}
            )
            assert_error(reply, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    reply = api.post("/proxies", {"name": prefix + "p", "upstream": "x:1", "listen": "bogus"})
    assert_error(reply, 500, "listen tcp: address bogus: missing port in address")
    assert_error(api.get(f"/proxies/{prefix}p"), 404, "proxy not found")


def test_create_disabled_keeps_listen_verbatim_and_binds_nothing(api, prefix):
    reply = api.post(
        "/proxies",
        {
            "name": prefix + "p",
            "upstream": "somehost:12345",
            "listen": "localhost:0",
            "enabled": False,
        },
    )
    assert_proxy(reply, 201, listen="localhost:0", enabled=False, upstream="somehost:12345")


def test_create_body_rules_follow_go(api, prefix, echo):
    # Keys are case-insensitive, unknown keys ignored, null = default, trailing bytes
    # ignored, and the content type does not matter.
    body = (
        '{"NAME": "%sp", "Upstream": "%s", "listen": "127.0.0.1:0", "enabled": null, '
        '"toxics": [1], "extra": {"a": [true]}} trailing' % (prefix, echo.address)
    )
    reply = api.post(
        "/proxies", body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_proxy(reply, 201, name=prefix + "p", enabled=True, toxics=[])


# --------------------------------------------------------------------- proxy index, show


def test_index_maps_names_to_proxies_in_sorted_order(api, prefix, echo):
    for suffix in ("b", "a", "c"):
        api.post(
            "/proxies",
            {
                "name": prefix + suffix,
                "upstream": echo.address,
                "listen": "127.0.0.1:0",
                "enabled": suffix != "c",
            },
        )
    reply = api.get("/proxies")
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
    proxies = reply.json()
    ours = [name for name in proxies if name.startswith(prefix)]
    assert ours == [prefix + "a", prefix + "b", prefix + "c"]
    assert list(proxies) == sorted(proxies)
    assert all(list(p) == PROXY_KEYS for p in proxies.values())
    assert proxies[prefix + "c"]["enabled"] is False


def test_show_unknown_proxy_is_404(api, prefix):
    assert_error(api.get(f"/proxies/{prefix}none"), 404, "proxy not found")


def test_names_are_addressed_percent_decoded(api, prefix, echo):
    name = prefix + "with space"
    api.post("/proxies", {"name": name, "upstream": echo.address, "listen": "127.0.0.1:0"})
    assert_proxy(api.get(f"/proxies/{prefix}with%20space"), 200, name=name)


# --------------------------------------------------------------------- proxy update


@pytest.fixture
def proxy(api, prefix, echo) -> dict:
    return api.post(
        "/proxies", {"name": prefix + "p", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()


def test_update_checks_in_order(api, prefix, proxy):
    assert_error(api.post(f"/proxies/{prefix}none", b""), 404, "proxy not found")
    assert_error(api.post(f"/proxies/{prefix}p", b""), 400, "bad request body: EOF")
    assert_error(
        api.patch(f"/proxies/{prefix}p", b"[]"),
        400,
        "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy",
    )
    assert_error(
        api.post(f"/proxies/{prefix}p", {"listen": "bogus"}),
        500,
        "address bogus: missing port in address",
    )
    assert_proxy(api.get(f"/proxies/{prefix}p"), 200, listen=proxy["listen"], enabled=True)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_update_toggles_and_keeps_name_and_port(api, prefix, proxy, method):
    path = f"/proxies/{prefix}p"
    reply = api.request(method, path, {"enabled": False, "name": "renamed"})
    assert_proxy(reply, 200, name=prefix + "p", enabled=False, listen=proxy["listen"])
    assert refused(proxy["listen"])
    assert_proxy(
        api.request(method, path, {"enabled": True}), 200, listen=proxy["listen"], enabled=True
    )
    assert_proxy(api.request(method, path, {"enabled": None}), 200, enabled=True)


def test_update_listen_port_0_rebinds_a_new_port(api, prefix, proxy):
    reply = api.patch(f"/proxies/{prefix}p", {"listen": "localhost:0"})
    body = assert_proxy(reply, 200, enabled=True)
    assert body["listen"] != proxy["listen"] and body["listen"].startswith("127.0.0.1:")
    assert refused(proxy["listen"])


def test_update_bind_failure_leaves_the_proxy_disabled_with_new_values(api, prefix, proxy):
    with busy_port() as taken:
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        reply = api.post(f"/proxies/{prefix}p", {"listen": listen})
        assert_error(reply, 500, f"listen tcp {listen}: bind: address already in use")
    assert_proxy(api.get(f"/proxies/{prefix}p"), 200, enabled=False, listen=listen)


# --------------------------------------------------------------------- proxy delete


def test_delete(api, prefix, proxy):
    reply = api.delete(f"/proxies/{prefix}p")
    assert (reply.status_code, reply.text) == (204, "")
    assert "Content-Type" not in reply.headers
    assert_error(api.delete(f"/proxies/{prefix}p"), 404, "proxy not found")
    assert refused(proxy["listen"])


# ------------------------------------------------------------------------ toxics


@pytest.mark.parametrize("kind", sorted(ATTRIBUTES))
def test_toxic_create_returns_200_with_every_attribute(api, prefix, proxy, kind):
    # Only the attributes sent are given; the answer has all of them (slicer needs a size:
    # the embedded server refuses average_size 0, on which the reference crashes).
    sent = {"average_size": 1} if kind == "slicer" else {}
    reply = api.post(f"/proxies/{prefix}p/toxics", {"type": kind, "attributes": sent})
    assert reply.headers["Content-Type"] == "application/json"
    assert_toxic(
        reply,
        200,
        attributes=dict(ATTRIBUTES[kind], **sent),
        name=f"{kind}_downstream",
        type=kind,
        stream="downstream",
        toxicity=1,
    )
    if kind == "bandwidth":  # rate 0 stalls the proxy: leave no stalled connection behind
        api.delete(f"/proxies/{prefix}p/toxics/bandwidth_downstream")


def test_toxic_create_fields(api, prefix, proxy):
    path = f"/proxies/{prefix}p/toxics"
    reply = api.post(
        path,
        {
            "type": "latency",
            "stream": "UpStream",
            "toxicity": 0.2,
            "attributes": {"latency": 10, "unknown": "ignored"},
        },
    )
    assert_toxic(
        reply,
        name="latency_UpStream",
        stream="UpStream",
        toxicity=0.2,
        attributes={"latency": 10, "jitter": 0},
    )
    reply = api.post(path, {"type": "timeout", "name": "t", "toxicity": -1, "attributes": None})
    assert_toxic(reply, name="t", toxicity=-1, attributes={"timeout": 0})
    reply = api.post(path, {"type": "slow_close", "name": "s", "stream": None, "toxicity": None})
    assert_toxic(reply, stream="downstream", toxicity=1)
    assert_toxic(api.get(f"{path}/t"), name="t", type="timeout")


def test_toxic_create_checks_in_order(api, prefix, proxy):
    path = f"/proxies/{prefix}p/toxics"
    assert_error(api.post(f"/proxies/{prefix}none/toxics", b""), 404, "proxy not found")
    assert_error(api.post(path, b""), 400, "bad request body: EOF")
    assert_error_starts(
        api.post(path, {"type": "latency", "toxicity": "1"}),
        400,
        "bad request body: json: cannot unmarshal string into Go struct field",
    )
    invalid_stream = "stream was invalid, can be either upstream or downstream"
    assert_error(api.post(path, {"type": "bogus", "stream": "sideways"}), 400, invalid_stream)
    assert_error(api.post(path, {"type": "latency", "stream": ""}), 400, invalid_stream)
    for kind in ("bogus", "down", "Latency", None):
        assert_error(api.post(path, {"type": kind}), 400, "invalid toxic type")
    api.post(path, {"type": "latency", "name": "taken", "stream": "upstream"})
    # The name is unique across both directions, checked before the attributes.
    assert_error(
        api.post(path, {"type": "latency", "name": "taken", "attributes": {"latency": 1.5}}),
        409,
        "toxic already exists",
    )
    assert_error(
        api.post(path, {"type": "latency", "attributes": {"latency": 1.5}}),
        400,
        "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
        "LatencyToxic.attributes.latency of type int64",
    )
    assert_error_starts(
        api.post(path, {"type": "latency", "attributes": {"jitter": "5"}}),
        400,
        "bad request body: json: cannot unmarshal string into Go struct",
    )
    assert [t["name"] for t in api.get(path).json()] == ["taken"]


def test_toxics_are_listed_upstream_first_in_creation_order(api, prefix, proxy):
    path = f"/proxies/{prefix}p/toxics"
    assert api.get(path).json() == []
    for name, stream in (
        ("d1", "downstream"),
        ("u1", "upstream"),
        ("d2", "downstream"),
        ("u2", "upstream"),
    ):
        api.post(path, {"type": "noop", "name": name, "stream": stream})
    expected = ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in api.get(path).json()] == expected
    assert [t["name"] for t in api.get(f"/proxies/{prefix}p").json()["toxics"]] == expected
    assert_error(api.get(f"/proxies/{prefix}none/toxics"), 404, "proxy not found")


def test_toxic_show(api, prefix, proxy):
    api.post(f"/proxies/{prefix}p/toxics", {"type": "noop", "name": "n"})
    assert_toxic(api.get(f"/proxies/{prefix}p/toxics/n"), name="n", attributes={})
    assert_error(api.get(f"/proxies/{prefix}none/toxics/n"), 404, "proxy not found")
    assert_error(api.get(f"/proxies/{prefix}p/toxics/none"), 404, "toxic not found")


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_toxic_update_merges_attributes(api, prefix, proxy, method):
    path = f"/proxies/{prefix}p/toxics"
    api.post(
        path,
        {
            "type": "latency",
            "name": "l",
            "toxicity": 0.5,
            "attributes": {"latency": 100, "jitter": 5},
        },
    )
    reply = api.request(
        method,
        f"{path}/l",
        {"attributes": {"jitter": 3}, "name": "zzz", "type": "timeout", "stream": "upstream"},
    )
    assert_toxic(
        reply,
        name="l",
        type="latency",
        stream="downstream",
        toxicity=0.5,
        attributes={"latency": 100, "jitter": 3},
    )
    reply = api.request(method, f"{path}/l", {"toxicity": 1, "attributes": None})
    assert_toxic(reply, toxicity=1, attributes={"latency": 100, "jitter": 3})
    assert_toxic(api.get(f"{path}/l"), toxicity=1, attributes={"latency": 100, "jitter": 3})


def test_toxic_update_errors(api, prefix, proxy):
    path = f"/proxies/{prefix}p/toxics"
    api.post(path, {"type": "latency", "name": "l"})
    assert_error(api.post(f"/proxies/{prefix}none/toxics/l", b"{}"), 404, "proxy not found")
    assert_error(api.post(f"{path}/none", b""), 404, "toxic not found")
    assert_error(api.post(f"{path}/l", b""), 400, "bad request body: EOF")
    assert_error(
        api.post(f"{path}/l", {"attributes": {"latency": 1.5}}),
        400,
        "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
        "LatencyToxic.attributes.latency of type int64",
    )


def test_toxic_delete(api, prefix, proxy):
    path = f"/proxies/{prefix}p/toxics"
    api.post(path, {"type": "noop", "name": "n"})
    reply = api.delete(f"{path}/n")
    assert (reply.status_code, reply.text) == (204, "")
    assert_error(api.delete(f"{path}/n"), 404, "toxic not found")
    assert_error(api.delete(f"/proxies/{prefix}none/toxics/n"), 404, "proxy not found")
    assert api.get(path).json() == []


def test_toxics_can_be_added_to_a_disabled_proxy(api, prefix, proxy, echo):
    api.post(f"/proxies/{prefix}p", {"enabled": False})
    api.post(f"/proxies/{prefix}p/toxics", {"type": "latency", "attributes": {"latency": 100}})
    api.post(f"/proxies/{prefix}p", {"enabled": True})
    with connect(proxy["listen"]) as sock:
        assert round_trip(sock) >= 0.1 - EARLY_S


# ---------------------------------------------------------------------------- reset


def test_reset_enables_proxies_and_removes_toxics(api, prefix, proxy, echo):
    # A latency reset left in place would hold the round trip below for 5 s.
    api.post(f"/proxies/{prefix}p/toxics", {"type": "latency", "attributes": {"latency": 5000}})
    api.post(f"/proxies/{prefix}p", {"enabled": False})
    reply = api.post("/reset", b"this body is ignored")
    assert (reply.status_code, reply.text) == (204, "")
    assert_proxy(
        api.get(f"/proxies/{prefix}p"), 200, enabled=True, toxics=[], listen=proxy["listen"]
    )
    with connect(proxy["listen"]) as sock:
        assert round_trip(sock) < LATE_S


def test_reset_closes_connections_held_by_a_timeout(api, prefix, proxy):
    api.post(f"/proxies/{prefix}p/toxics", {"type": "timeout"})
    with connect(proxy["listen"]) as sock:
        sock.sendall(b"swallowed")
        assert api.post("/reset").status_code == 204
        assert read_until_closed(sock)[:2] == (b"", "eof")


# ------------------------------------------------------------------------- populate


def test_populate_validates_every_entry_before_changing_anything(api, prefix):
    body = [
        {"name": prefix + "a", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
        {"upstream": "127.0.0.1:2"},
    ]
    reply = api.post("/populate", body)
    assert reply.status_code == 400
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.text == compact(
        {"error": "missing required field: name at proxy 2", "status": 400, "proxies": None}
    )
    body[1] = {"name": prefix + "b", "upstream": ""}
    assert (
        api.post("/populate", body).json()["error"] == "missing required field: upstream at proxy 2"
    )
    assert_error(api.get(f"/proxies/{prefix}a"), 404, "proxy not found")


def test_populate_rejects_a_non_array(api):
    for body in (b"", b"{}", b'"x"'):
        reply = api.post("/populate", body)
        assert reply.status_code == 400 and reply.headers["Content-Type"] == "application/json"
        result = reply.json()
        assert list(result) == ["error", "status", "proxies"]
        assert result["error"].startswith("bad request body: ")
        assert result["proxies"] is None
    assert api.post("/populate", b"").json()["error"] == "bad request body: EOF"


def test_populate_empty_array(api):
    reply = api.post("/populate", [])
    assert (reply.status_code, reply.text) == (201, '{"proxies":null}')


def test_populate_creates_keeps_and_replaces(api, prefix, echo):
    path = "/populate"
    reply = api.post(
        path,
        [
            {"name": prefix + "a", "upstream": echo.address, "listen": "127.0.0.1:0"},
            {
                "name": prefix + "b",
                "upstream": echo.address,
                "listen": "localhost:0",
                "enabled": False,
            },
            {
                "name": prefix + "c",
                "upstream": echo.address,
                "listen": "127.0.0.1:0",
                "enabled": None,
            },
        ],
    )
    assert reply.status_code == 201 and reply.headers["Content-Type"] == "application/json"
    created = reply.json()["proxies"]
    assert [p["name"] for p in created] == [prefix + "a", prefix + "b", prefix + "c"]
    assert [p["enabled"] for p in created] == [True, False, True]
    assert created[1]["listen"] == "localhost:0"
    a_listen = created[0]["listen"]
    port = a_listen.rsplit(":", 1)[1]
    api.post(f"/proxies/{prefix}a/toxics", {"type": "noop", "name": "kept"})
    api.post(f"/proxies/{prefix}c/toxics", {"type": "noop", "name": "lost"})
    reply = api.post(
        path,
        [
            # same place, named differently, and enabled false: kept untouched
            {
                "name": prefix + "a",
                "upstream": echo.address,
                "listen": f"localhost:{port}",
                "enabled": False,
            },
            # another upstream: replaced by a new proxy without toxics
            {"name": prefix + "c", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"},
        ],
    )
    again = reply.json()["proxies"]
    assert again[0] == dict(
        created[0],
        toxics=[
            {
                "attributes": {},
                "name": "kept",
                "type": "noop",
                "stream": "downstream",
                "toxicity": 1,
            }
        ],
    )
    assert again[1]["upstream"] == "127.0.0.1:9" and again[1]["toxics"] == []
    assert api.get(f"/proxies/{prefix}a").json()["listen"] == a_listen


def test_populate_stops_at_a_bind_error_keeping_earlier_entries(api, prefix, echo):
    with busy_port() as taken:
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        reply = api.post(
            "/populate",
            [
                {"name": prefix + "a", "upstream": echo.address, "listen": "127.0.0.1:0"},
                {"name": prefix + "b", "upstream": echo.address, "listen": listen},
                {"name": prefix + "c", "upstream": echo.address, "listen": "127.0.0.1:0"},
            ],
        )
    assert reply.status_code == 500 and reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert list(body) == ["error", "status", "proxies"]
    assert body["error"] == f"listen tcp {listen}: bind: address already in use"
    assert body["status"] == 500
    assert [p["name"] for p in body["proxies"]] == [prefix + "a"]
    assert api.get(f"/proxies/{prefix}a").status_code == 200
    assert api.get(f"/proxies/{prefix}c").status_code == 404


# --------------------------------------------- where the embedded server differs on purpose


@pytest.mark.embedded_only
@pytest.mark.parametrize(
    "kind, attributes",
    [
        ("bandwidth", {"rate": -1}),
        ("slicer", {"average_size": 0}),
        ("slicer", {"average_size": 4, "size_variation": 9}),
        ("slicer", {"average_size": 4, "size_variation": -4}),
    ],
)
def test_attributes_that_crash_the_reference_are_refused(api, prefix, proxy, kind, attributes):
    path = f"/proxies/{prefix}p/toxics"
    reply = api.post(path, {"type": kind, "attributes": attributes})
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("bad request body: ")
    assert "crashes" in reply.json()["error"]
    assert api.get(path).json() == []


@pytest.mark.embedded_only
def test_updates_that_would_crash_the_reference_are_refused(api, prefix, proxy):
    path = f"/proxies/{prefix}p/toxics"
    api.post(path, {"type": "slicer", "attributes": {"average_size": 8}})
    reply = api.post(f"{path}/slicer_downstream", {"attributes": {"average_size": 0}})
    assert reply.status_code == 400 and "average_size" in reply.json()["error"]
    assert api.get(f"{path}/slicer_downstream").json()["attributes"]["average_size"] == 8


@pytest.mark.embedded_only
def test_version_names_this_implementation(api):
    assert "grpc-chaos" in api.get("/version").json()["version"]
