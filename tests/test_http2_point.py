"""The HTTP/2 fault point (chaos/http2/): transparent with no fault, and each fault gives
the client-visible outcome gRPC's rules predict, with real grpcio clients and a real TLS
grpcio server behind the point.

The backend is an in-process grpcio server with TLS certificates from the fleet's PKI and
a raw (bytes) service whose requests say what to answer: a size, a delay, metadata, a
status, several messages. It counts RPCs in flight, so a test can see what reached it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from chaos.history import RPC_TAG
from chaos.http2 import Http2Fault, Http2Point, Http2Server
from chaos.toxiproxy_server.control import ToxiproxyServer
from fleet.pki import FLEET_NAME, PKI
from fleet.procs.waiting import wait_until
from fleet.server import BASE_SERVER_OPTIONS
from tests.helpers import descendants

SERVICE = "chaostest.Raw"
MIB = 1 << 20
# Clients may send and receive the 4 MiB messages of the tests (gRPC's default cap is 4 MiB
# including the 5-byte frame header).
MESSAGE_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * MIB),
    ("grpc.max_send_message_length", 16 * MIB),
]


def _identity(data: bytes) -> bytes:
    return data


class Backend:
    """The raw service: a request is JSON ``{"size", "sleep_ms", "status", "message",
    "messages", "headers_first"}``; the answer is ``size`` bytes (``messages`` of them when
    streaming), after ``sleep_ms``, with request metadata ``x-echo-*`` echoed in the
    initial metadata and ``x-trailer: done`` in the trailers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0
        self.tags: list[str] = []  # RPC_TAG of each request, in order
        self.release = threading.Event()  # requests with "wait": true wait for it
        self.release.set()

    def _enter(self) -> None:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def reset(self) -> None:
        with self.lock:
            self.max_in_flight = self.in_flight
            self.calls = 0
        self.release.set()

    def _prepare(self, request: bytes, context) -> dict:
        spec = json.loads(request or b"{}")
        with self.lock:
            self.tags += [v for k, v in context.invocation_metadata() if k == RPC_TAG]
        echoed = tuple((k, v) for k, v in context.invocation_metadata() if k.startswith("x-echo-"))
        if echoed or spec.get("headers_first"):
            context.send_initial_metadata(echoed)
        if spec.get("wait"):
            self.release.wait(30)
        if spec.get("sleep_ms"):
            time.sleep(spec["sleep_ms"] / 1000)
        context.set_trailing_metadata((("x-trailer", "done"),))
        if spec.get("status"):
            context.abort(grpc.StatusCode[spec["status"]], spec.get("message", ""))
        return spec

    def unary(self, request: bytes, context) -> bytes:
        self._enter()
        try:
            spec = self._prepare(request, context)
            return b"x" * spec.get("size", 1) if spec.get("size", 1) else b""
        finally:
            self._leave()

    def stream(self, request: bytes, context) -> Iterator[bytes]:
        self._enter()
        try:
            spec = self._prepare(request, context)
            for n in range(spec.get("messages", 3)):
                yield b"%d" % n + b"x" * spec.get("size", 0)
        finally:
            self._leave()

    def echo_sizes(self, requests: Iterator[bytes], context) -> bytes:
        """Client streaming: answers the total size received."""
        self._enter()
        try:
            return str(sum(len(r) for r in requests)).encode()
        finally:
            self._leave()

    def handler(self) -> grpc.GenericRpcHandler:
        raw = {"request_deserializer": _identity, "response_serializer": _identity}
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(self.unary, **raw),
                "Stream": grpc.unary_stream_rpc_method_handler(self.stream, **raw),
                "Sizes": grpc.stream_unary_rpc_method_handler(self.echo_sizes, **raw),
            },
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def serving(pki: PKI, service: Backend) -> Iterator[tuple[grpc.Server, int]]:
    """The raw service on a TLS port of its own: (server, port), stopped on exit."""
    files = pki.server_cert("b1", "127.0.0.1")
    credentials = grpc.ssl_server_credentials([(files.key_pem(), files.cert_pem())])
    executor = futures.ThreadPoolExecutor(max_workers=80, thread_name_prefix="h2-backend")
    server = grpc.server(
        executor,
        options=[*BASE_SERVER_OPTIONS, *MESSAGE_OPTIONS],
        maximum_concurrent_rpcs=None,
    )
    server.add_generic_rpc_handlers((service.handler(),))
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield server, port
    finally:
        service.release.set()
        server.stop(grace=None).wait()
        executor.shutdown(wait=True)


@pytest.fixture(scope="module")
def backend(pki) -> Iterator[tuple[Backend, int]]:
    service = Backend()
    with serving(pki, service) as (_, port):
        yield service, port


# Every test runs on both point processes: the compiled one and Python's.
IMPLEMENTATIONS = ["go", "python"]


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def implementation(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def h2server(implementation) -> Iterator[Http2Server]:
    with Http2Server(implementation=implementation) as server:
        yield server


_names = iter(range(1, 1_000_000))


@pytest.fixture
def point(h2server, backend, pki) -> Iterator[Http2Point]:
    service, port = backend
    service.reset()
    point = add_point(h2server, pki, port)
    try:
        yield point
    finally:
        point.close()
        service.release.set()


def dial(pki: PKI, target: str, *options: tuple[str, object]) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(pki.ca_cert.read_bytes())
    return grpc.secure_channel(
        target,
        credentials,
        options=[("grpc.ssl_target_name_override", FLEET_NAME), *MESSAGE_OPTIONS, *options],
    )


@contextlib.contextmanager
def channel(pki: PKI, point: Http2Point, *options: tuple[str, object]) -> Iterator[grpc.Channel]:
    ch = dial(pki, point.target, *options)
    try:
        yield ch
    finally:
        ch.close()


def unary(ch: grpc.Channel, spec: dict | None = None, timeout: float = 10, **kwargs):
    """(response, call) of one Unary RPC."""
    method = ch.unary_unary(f"/{SERVICE}/Unary")
    return method.with_call(json.dumps(spec or {}).encode(), timeout=timeout, **kwargs)


def unary_future(ch: grpc.Channel, spec: dict | None = None, timeout: float = 10, **kwargs):
    method = ch.unary_unary(f"/{SERVICE}/Unary")
    return method.future(json.dumps(spec or {}).encode(), timeout=timeout, **kwargs)


def add_point(h2server: Http2Server, pki: PKI, port: int) -> Http2Point:
    files = pki.server_cert("b1", "127.0.0.1")
    return h2server.add_point(
        f"p{next(_names)}",
        upstream=("127.0.0.1", port),
        server_name=FLEET_NAME,
        cert=files.cert,
        key=files.key,
        ca=pki.ca_cert,
    )


def status_of(call_or_error) -> grpc.StatusCode:
    return call_or_error.code()


def goaways(point: Http2Point, by: str | None = None) -> list[dict]:
    return [e for e in point.events() if e["event"] == "goaway" and (by is None or e["by"] == by)]


def opened(point: Http2Point) -> int:
    return sum(1 for e in point.events() if e["event"] == "open")


# ------------------------------------------------------------------------ transparency


def test_unary_rpc_with_metadata_and_trailers_passes_through(pki, point):
    with channel(pki, point) as ch:
        reply, call = unary(
            ch, {"size": 5}, metadata=(("x-echo-who", "tester"),), wait_for_ready=True
        )
    assert reply == b"xxxxx"
    assert dict(call.initial_metadata())["x-echo-who"] == "tester"
    assert dict(call.trailing_metadata())["x-trailer"] == "done"
    kinds = [e["event"] for e in point.events()]
    assert kinds[0] == "open"


def test_error_status_and_trailers_only_responses_pass_through(pki, point):
    with channel(pki, point) as ch, pytest.raises(grpc.RpcError) as failed:
        unary(ch, {"status": "NOT_FOUND", "message": "no such thing é%"}, wait_for_ready=True)
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert failed.value.details() == "no such thing é%"
    # grpcio sends an error before any header as Trailers-Only: the trailer is in it.
    assert dict(failed.value.trailing_metadata())["x-trailer"] == "done"


def test_streaming_rpcs_pass_through(pki, point):
    with channel(pki, point) as ch:
        stream = ch.unary_stream(f"/{SERVICE}/Stream")
        replies = list(stream(json.dumps({"messages": 50, "size": 1000}).encode(), timeout=10))
        assert [r[:2].rstrip(b"x") for r in replies] == [b"%d" % n for n in range(50)]
        sizes = ch.stream_unary(f"/{SERVICE}/Sizes")
        assert sizes(iter([b"a" * 70_000] * 20), timeout=10) == b"1400000"


def test_a_4_mib_message_passes_both_ways(pki, point):
    size = 4 * MIB
    with channel(pki, point) as ch:
        reply, _ = unary(ch, {"size": size}, wait_for_ready=True)
        assert len(reply) == size
        sizes = ch.stream_unary(f"/{SERVICE}/Sizes")
        assert sizes(iter([b"y" * size]), timeout=20) == str(size).encode()


def test_64_concurrent_rpcs_pass_through(pki, point, backend):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        calls = [unary_future(ch, {"size": 100, "sleep_ms": 200}) for _ in range(64)]
        assert all(len(call.result()) == 100 for call in calls)
    assert service.max_in_flight >= 32  # they were concurrent, not serialised by the point


def test_keepalive_pings_are_answered_end_to_end(pki, point):
    options = (
        ("grpc.keepalive_time_ms", 200),
        ("grpc.keepalive_timeout_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    )
    with channel(pki, point, *options) as ch:
        unary(ch, wait_for_ready=True)
        started = time.monotonic()
        while time.monotonic() - started < 1.5:  # several keepalive periods, RPCs meanwhile
            unary(ch, {"sleep_ms": 100})
        assert ch._channel.check_connectivity_state(False) == 2  # READY (grpc._cython enum)
    assert opened(point) == 1  # one connection, never closed for a missing PING ACK
    counters = point.stats()["counters"]
    # The client's PINGs went to the backend and its ACKs came back through the point.
    assert counters["client_pings"] >= 3 and counters["ping_acks_passed"] >= 3


# ------------------------------------------------------------------------ RST_STREAM


RETRY_UNAVAILABLE = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def test_refused_stream_fails_unavailable_in_grpcio_unless_a_retry_policy_replays_it(
    pki, point, backend
):
    """gRFC A6 lets a client retry a REFUSED_STREAM transparently, but grpcio (C-core's
    RST_STREAM parser) does not mark it "not seen by server": without a retry policy the
    RPC fails UNAVAILABLE, with one it succeeds. Either way the backend never saw it."""
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        service.reset()
        point.inject(Http2Fault.rst_stream("REFUSED_STREAM", count=1))
        with pytest.raises(grpc.RpcError) as failed:
            unary(ch, {"size": 3})
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "error code 7" in failed.value.details()
    with channel(pki, point, ("grpc.service_config", RETRY_UNAVAILABLE)) as ch:
        unary(ch, wait_for_ready=True)
        service.reset()
        point.inject(Http2Fault.rst_stream("REFUSED_STREAM", count=1))
        reply, _ = unary(ch, {"size": 3})
        assert reply == b"xxx"
    assert service.calls == 1  # the refused stream never reached the backend
    assert point.stats()["counters"]["streams_rst_stream"] == 2
    assert point.stats()["faults"] == []  # spent after one stream


@pytest.mark.parametrize(
    ("code", "status"),
    [("CANCEL", grpc.StatusCode.CANCELLED), ("INTERNAL_ERROR", grpc.StatusCode.INTERNAL)],
)
def test_rst_stream_maps_to_its_status(pki, point, backend, code, status):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        service.reset()
        point.inject(Http2Fault.rst_stream(code))
        for _ in range(3):  # every new stream while active
            with pytest.raises(grpc.RpcError) as failed:
                unary(ch)
            assert failed.value.code() == status
        point.clear(Http2Fault.rst_stream(code))
        assert unary(ch)[0] == b"x"
    assert service.calls == 1


# ------------------------------------------------------------------------ Trailers-Only


@pytest.mark.parametrize("status", [s for s in grpc.StatusCode if s != grpc.StatusCode.OK])
def test_trailers_only_answers_with_the_given_status(pki, point, backend, status):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        service.reset()
        point.inject(
            Http2Fault.trailers_only(status.name, f"by the point: {status.name} %é", count=1)
        )
        with pytest.raises(grpc.RpcError) as failed:
            unary(ch)
    assert failed.value.code() == status
    assert failed.value.details() == f"by the point: {status.name} %é"
    assert service.calls == 0


# ------------------------------------------------------------------------ committed, then silent


def test_headers_then_nothing_ends_only_at_the_deadline(pki, point, backend):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        point.inject(Http2Fault.headers_then_nothing(count=2))
        # A unary-unary call in grpcio receives headers, message and status in one batch:
        # a server-streaming call shows the headers as they arrive.
        stream = ch.unary_stream(f"/{SERVICE}/Stream")
        started = time.monotonic()
        call = stream(json.dumps({"headers_first": True}).encode(), timeout=1.5)
        assert call.initial_metadata() is not None  # committed: the headers arrived
        committed = time.monotonic() - started
        with pytest.raises(grpc.RpcError) as failed:
            list(call)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert committed < 1.0 < time.monotonic() - started
        with pytest.raises(grpc.RpcError) as failed:
            unary(ch, timeout=0.5)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert unary(ch)[0] == b"x"  # the next stream is unaffected (count=2)
    assert service.calls == 4  # the muted RPCs did reach the backend: not retryable


# ------------------------------------------------------------------------ flow control


def test_flow_control_starvation_stalls_a_large_response_until_the_deadline(pki, point):
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        point.inject(Http2Fault.starve_flow_control())
        small, _ = unary(ch, {"size": 1000})  # within the window: unaffected
        assert len(small) == 1000
        assert "responses_starved" not in point.stats()["counters"]
        with pytest.raises(grpc.RpcError) as failed:
            unary(ch, {"size": MIB}, timeout=1.5)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert point.stats()["counters"]["responses_starved"] == 1  # once, however long
        point.clear(Http2Fault.starve_flow_control())
        big, _ = unary(ch, {"size": MIB})
        assert len(big) == MIB


# ------------------------------------------------------------------------ MAX_CONCURRENT_STREAMS


def test_max_concurrent_streams_1_queues_rpcs_at_the_client(pki, point, backend):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        point.inject(Http2Fault.max_concurrent_streams(1))
        assert point.last_injection["unacknowledged"] == 0
        service.reset()
        calls = [unary_future(ch, {"sleep_ms": 50}, timeout=20) for _ in range(8)]
        assert all(call.result() == b"x" for call in calls)
    assert service.max_in_flight == 1
    assert point.stats()["counters"]["max_upstream_streams"] >= 1


def test_max_concurrent_streams_0_makes_rpcs_wait_for_their_deadline(pki, point, backend):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        point.inject(Http2Fault.max_concurrent_streams(0))
        service.reset()
        with pytest.raises(grpc.RpcError) as failed:
            unary(ch, timeout=1.0)
        # grpcio queues the stream until one may open: only the deadline ends it.
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        point.clear(Http2Fault.max_concurrent_streams(0))
        assert unary(ch)[0] == b"x"
    assert service.calls == 1


# ------------------------------------------------------------------------ GOAWAY


def test_graceful_goaway_lets_rpcs_in_flight_finish_and_new_ones_use_a_new_connection(
    pki, point, backend
):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        in_flight = [unary_future(ch, {"sleep_ms": 600}) for _ in range(4)]
        wait_until(lambda: service.in_flight == 4, 5, "4 RPCs at the backend")
        in_force = point.inject(Http2Fault.goaway(grace_ms=2000))
        assert point.last_injection["connections"] == 1
        after = [unary(ch, {"size": 2})[0] for _ in range(3)]
        assert after == [b"xx"] * 3
        assert [call.result() for call in in_flight] == [b"x"] * 4  # finished, not failed
        assert opened(point) == 2  # the new RPCs went on a new connection
    (goaway,) = goaways(point, by="point")
    assert goaway["code"] == "NO_ERROR" and goaway["last_stream_id"] == 9  # 1, 3..9 seen
    assert goaway["t_ns"] <= in_force
    wait_until(
        lambda: any(e["event"] == "close" and e["conn"] == goaway["conn"] for e in point.events()),
        10,
        "the GOAWAY'd connection closed after its grace",
    )


def test_goaway_below_streams_in_flight_makes_the_client_retry_them_transparently(
    pki, point, backend
):
    service, _ = backend
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)  # stream 1
        service.reset()
        service.release.clear()
        in_flight = [unary_future(ch, {"wait": True}) for _ in range(4)]  # streams 3..9
        wait_until(lambda: service.in_flight == 4, 5, "4 RPCs at the backend")
        point.inject(Http2Fault.goaway_below_in_flight())
        assert point.last_injection["last_stream_ids"] == [1]
        wait_until(lambda: service.calls == 8, 10, "the 4 refused RPCs retried")
        service.release.set()
        assert [call.result() for call in in_flight] == [b"x"] * 4  # no retry policy needed
    assert opened(point) == 2
    (goaway,) = goaways(point, by="point")
    assert (goaway["code"], goaway["last_stream_id"]) == ("NO_ERROR", 1)


def test_too_many_pings_goaway_closes_the_connection_and_the_client_reconnects(pki, point):
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        in_force = point.inject(Http2Fault.too_many_pings())
        wait_until(
            lambda: any(e["event"] == "close" for e in point.events()), 5, "connection closed"
        )
        assert unary(ch, wait_for_ready=True)[0] == b"x"
    (goaway,) = goaways(point, by="point")
    assert goaway["code"] == "ENHANCE_YOUR_CALM" and goaway["debug"] == "too_many_pings"
    assert goaway["t_ns"] <= in_force
    assert opened(point) == 2


@pytest.fixture
def aging_backend(pki) -> Iterator[int]:
    """A backend that ages connections out after 300 ms (GOAWAY, then 2 s of grace)."""
    service = Backend()
    files = pki.server_cert("b1", "127.0.0.1")
    executor = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="h2-aging")
    server = grpc.server(
        executor,
        options=[
            *BASE_SERVER_OPTIONS,
            ("grpc.max_connection_age_ms", 300),
            ("grpc.max_connection_age_grace_ms", 2000),
        ],
    )
    server.add_generic_rpc_handlers((service.handler(),))
    port = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials([(files.key_pem(), files.cert_pem())])
    )
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None).wait()
        executor.shutdown(wait=True)


def test_the_backends_own_goaway_is_passed_on_and_recorded(pki, h2server, aging_backend):
    files = pki.server_cert("b1", "127.0.0.1")
    point = h2server.add_point(
        "aging",
        upstream=("127.0.0.1", aging_backend),
        server_name=FLEET_NAME,
        cert=files.cert,
        key=files.key,
        ca=pki.ca_cert,
    )
    try:
        with channel(pki, point) as ch:
            started = time.monotonic()
            while time.monotonic() - started < 1.5:  # max connection age: several GOAWAYs
                assert unary(ch, {"sleep_ms": 20}, wait_for_ready=True)[0] == b"x"
        by_server = goaways(point, by="server")
        assert by_server, point.events()
        assert all(e["code"] == "NO_ERROR" for e in by_server)
        assert opened(point) >= 2
    finally:
        point.close()


# ------------------------------------------------------------------------ PING ACKs


KEEPALIVE = (
    ("grpc.keepalive_time_ms", 500),
    ("grpc.keepalive_timeout_ms", 500),
    # grpcio 1.85 times a keepalive PING out by this (default: one minute), not by
    # keepalive_timeout_ms alone.
    ("grpc.http2.ping_timeout_ms", 500),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


def test_withheld_ping_acks_make_a_keepalive_client_close_its_connection(pki, point):
    with channel(pki, point, *KEEPALIVE) as ch:
        unary(ch, wait_for_ready=True)
        in_force = point.inject(Http2Fault.withhold_ping_acks())
        closed = wait_until(
            lambda: [e for e in point.events() if e["event"] == "close"], 5, "keepalive close"
        )
        assert closed[0]["by"] == "client"
        assert (closed[0]["t_ns"] - in_force) / 1e9 < 2.5  # one keepalive period + timeout
        assert point.stats()["counters"]["ping_acks_withheld"] >= 1
        point.clear(Http2Fault.withhold_ping_acks())
        assert unary(ch, wait_for_ready=True)[0] == b"x"  # reconnected


def test_withheld_ping_acks_go_unnoticed_by_a_client_without_keepalive(pki, point):
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        point.inject(Http2Fault.withhold_ping_acks())
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # longer than the keepalive client needed
            assert unary(ch, {"sleep_ms": 100})[0] == b"x"
        assert opened(point) == 1
        assert [e for e in point.events() if e["event"] == "close"] == []


# ------------------------------------------------------------------------ mTLS on both hops


def test_mtls_on_both_hops(pki, h2server):
    files = pki.server_cert("b1", "127.0.0.1")
    client = pki.client_cert()
    credentials = grpc.ssl_server_credentials(
        [(files.key_pem(), files.cert_pem())],
        root_certificates=pki.ca_cert.read_bytes(),
        require_client_auth=True,
    )
    service = Backend()
    executor = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="h2-mtls")
    server = grpc.server(executor, options=BASE_SERVER_OPTIONS)
    server.add_generic_rpc_handlers((service.handler(),))
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    point = h2server.add_point(
        "mtls",
        upstream=("127.0.0.1", port),
        server_name=FLEET_NAME,
        cert=files.cert,
        key=files.key,
        ca=pki.ca_cert,
        client_ca=pki.ca_cert,
        client_cert=client.cert,
        client_key=client.key,
    )
    try:
        with_cert = grpc.ssl_channel_credentials(
            pki.ca_cert.read_bytes(), client.key_pem(), client.cert_pem()
        )
        ch = grpc.secure_channel(
            point.target, with_cert, options=[("grpc.ssl_target_name_override", FLEET_NAME)]
        )
        with contextlib.closing(ch):
            assert unary(ch, wait_for_ready=True)[0] == b"x"
        with channel(pki, point) as ch, pytest.raises(grpc.RpcError) as failed:
            unary(ch, timeout=2)  # no client certificate: the point refuses the handshake
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert service.calls == 1
    finally:
        point.close()
        server.stop(grace=None).wait()
        executor.shutdown(wait=True)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: Http2Fault("reset_everything"), "unknown HTTP/2 fault kind 'reset_everything'"),
        (lambda: Http2Fault.rst_stream("REFUSED"), "unknown HTTP/2 error code 'REFUSED'"),
        (lambda: Http2Fault.rst_stream(99), "unknown HTTP/2 error code 99"),
        (lambda: Http2Fault.goaway("NOPE"), "unknown HTTP/2 error code 'NOPE'"),
        (lambda: Http2Fault.trailers_only(17), "unknown gRPC status 17"),
        (lambda: Http2Fault.trailers_only("BROKEN"), "unknown gRPC status 'BROKEN'"),
        (lambda: Http2Fault.rst_stream("CANCEL", count=0), "count must be a positive"),
        (lambda: Http2Fault.goaway(grace_ms=-1), "grace_ms must be within"),
        (lambda: Http2Fault("withhold_ping_acks", count=3), "takes no 'count'"),
        (lambda: Http2Fault.max_concurrent_streams(-1), "value must be within"),
        (lambda: Http2Fault.from_json({"kind": "goaway", "colour": 1}), "colour"),
    ],
)
def test_bad_faults_are_refused_with_a_clear_error(make, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        make()


def test_bad_requests_to_the_point_process_are_refused_by_name(h2server, point, pki):
    with pytest.raises(ValueError, match="no HTTP/2 point named 'nope'"):
        h2server.call("inject", name="nope", fault=Http2Fault.goaway().to_json())
    with pytest.raises(ValueError, match="no HTTP/2 point named 'nope'"):
        h2server.point("nope")
    with pytest.raises(ValueError, match="unknown HTTP/2 error code 'BAD'"):
        h2server.call("inject", name=point.name, fault={"kind": "rst_stream", "code": "BAD"})
    with pytest.raises(ValueError, match="unknown HTTP/2 fault kind 'bogus'"):
        point.clear("bogus")
    with pytest.raises(ValueError, match="unknown operation"):
        h2server.call("explode")
    with pytest.raises(ValueError, match="exists already"):
        h2server.add_point(
            point.name,
            upstream=("127.0.0.1", 1),
            server_name=FLEET_NAME,
            cert="x",
            key="x",
            ca=pki.ca_cert,
        )
    # A GOAWAY needs a connection to go on: an error naming that, not a silent no-op.
    with pytest.raises(ValueError, match="no connection is open"):
        point.inject(Http2Fault.goaway())
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
        with pytest.raises(ValueError, match="no stream in flight"):
            point.inject(Http2Fault.goaway_below_in_flight())
    assert point.clear(Http2Fault.starve_flow_control()) > 0  # not active: a no-op
    assert h2server.points() == [point.name]  # the process goes on


def test_an_unreachable_backend_closes_the_clients_connection(pki, h2server):
    files = pki.server_cert("b1", "127.0.0.1")
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # bound, never listening: connections refused
        point = h2server.add_point(
            "dead",
            upstream=("127.0.0.1", dead_port),
            server_name=FLEET_NAME,
            cert=files.cert,
            key=files.key,
            ca=pki.ca_cert,
        )
        try:
            with channel(pki, point) as ch, pytest.raises(grpc.RpcError) as failed:
                unary(ch, timeout=2)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            closes = [e for e in point.events() if e["event"] == "close"]
            assert closes and closes[0]["by"] == "server"
            assert "backend unreachable" in closes[0]["reason"]
        finally:
            point.close()


def test_removing_a_point_abandons_a_backend_handshake_that_hangs(pki, h2server):
    """A backend that accepts TCP and never answers the TLS handshake (a hung process):
    the point's attempt waits up to the connect timeout (20 s) — unless the point is
    removed meanwhile, which must end it within its own close bound."""
    socket = __import__("socket")
    files = pki.server_cert("b1", "127.0.0.1")
    with contextlib.closing(socket.create_server(("127.0.0.1", 0))) as hung:
        point = h2server.add_point(
            "hung",
            upstream=hung.getsockname()[:2],
            server_name=FLEET_NAME,
            cert=files.cert,
            key=files.key,
            ca=pki.ca_cert,
        )
        with channel(pki, point) as ch:
            attempt = unary_future(ch, timeout=30)
            hung.settimeout(10)
            upstream, _ = hung.accept()  # the point's connection: its ClientHello waits
            with contextlib.closing(upstream):
                started = time.monotonic()
                point.close()
                upstream.settimeout(10)
                while upstream.recv(4096):  # the ClientHello, then the end
                    pass
                closed_after = time.monotonic() - started
            attempt.cancel()
    assert closed_after < 8, f"the point's handshake outlived its removal by {closed_after:.1f} s"


# ------------------------------------------------------------------------ nothing leaks


def test_stopping_the_server_leaves_no_process_thread_or_port(pki, backend, implementation):
    threads = set(threading.enumerate())
    _, port = backend
    files = pki.server_cert("b1", "127.0.0.1")
    server = Http2Server(implementation=implementation).start()
    point = server.add_point(
        "leak",
        upstream=("127.0.0.1", port),
        server_name=FLEET_NAME,
        cert=files.cert,
        key=files.key,
        ca=pki.ca_cert,
    )
    with channel(pki, point) as ch:
        unary(ch, wait_for_ready=True)
    pid = server.pid
    assert pid in descendants(os.getpid())
    server.stop()
    assert pid not in descendants(os.getpid())
    with pytest.raises(ConnectionRefusedError):
        __import__("socket").create_connection(point.address, timeout=2).close()
    assert set(threading.enumerate()) - threads == set()


def test_the_point_process_dies_with_a_parent_killed_by_sigkill(tmp_path, implementation):
    import subprocess
    import sys

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from chaos.http2 import Http2Server; "
            f"s = Http2Server(implementation={implementation!r}).start(); "
            "print(s.pid, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_until(
            lambda: not os.path.exists(f"/proc/{child}") or _zombie(child),
            10,
            "the point process gone with its parent",
        )
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# ------------------------------------------------------------------------ committed RPCs


@pytest.mark.parametrize("tagged", [True, False])
def test_an_rpc_lost_after_its_response_headers_is_reported_as_committed(pki, h2server, tagged):
    """The backend sends its headers, then its connection dies with the call in flight:
    the point reports the RPC (by the id its client tagged it with) as committed, with when
    its headers passed; an untagged RPC is not reported (nothing to name it by).

    The connection is cut below HTTP/2 (a Toxiproxy proxy disabled), so that no trailers
    can end the call: a backend stopped by grpcio's ``server.stop`` may still answer it
    with trailers (status UNAVAILABLE, "Cancelling all calls"), which is not a lost RPC —
    seen once in CI, with the compiled point."""
    service = Backend()
    service.release.clear()
    with (
        serving(pki, service) as (_, backend_port),
        ToxiproxyServer(kind="embedded") as toxiproxy,
    ):
        proxies = toxiproxy.control()
        host, _, port = proxies.create(
            "cut", "127.0.0.1:0", f"127.0.0.1:{backend_port}"
        ).rpartition(":")
        point = add_point(h2server, pki, int(port))
        try:
            with channel(pki, point) as ch:
                metadata = ((RPC_TAG, "41"),) if tagged else ()
                started = time.monotonic_ns()
                future = unary_future(
                    ch, {"headers_first": True, "wait": True}, metadata=metadata,
                    wait_for_ready=True,
                )  # fmt: skip
                wait_until(
                    lambda: point.stats()["counters"].get("responses_committed"),
                    10,
                    "the response headers passed on",
                )
                proxies.disable("cut")  # the backend's connection cut: the call is lost
                assert future.exception(timeout=10) is not None
                lost = wait_until(
                    lambda: [e for e in point.events() if e["event"] in ("committed", "close")],
                    10,
                    "the point's report",
                )
                committed = [e for e in lost if e["event"] == "committed"]
                if not tagged:
                    assert committed == []
                    return
                (event,) = committed
                assert event["rpc"] == "41"
                assert started < event["opened_ns"] <= event["headers_ns"] < event["t_ns"]
                assert "server" in event["why"]
        finally:
            point.close()


def test_tagged_rpcs_reach_the_backend_with_their_tags_and_every_other_header(pki, point, backend):
    """The point sends a tag on never-indexed (a new value every RPC): the backend still
    gets each tag, and the headers around it, indexed as usual, stay right."""
    service, _ = backend
    service.tags.clear()
    with channel(pki, point) as ch:
        for n in range(300):
            metadata = ((RPC_TAG, f"rpc-{n}"), ("x-echo-n", str(n % 7)))
            _, call = unary(ch, {"size": 1}, metadata=metadata, wait_for_ready=True)
            assert dict(call.initial_metadata())["x-echo-n"] == str(n % 7)
    assert service.tags == [f"rpc-{n}" for n in range(300)]


def test_a_trailers_only_answer_is_not_committed(pki, point):
    with channel(pki, point) as ch, pytest.raises(grpc.RpcError):
        unary(ch, {"status": "UNAVAILABLE"}, metadata=((RPC_TAG, "7"),), wait_for_ready=True)
    assert "responses_committed" not in point.stats()["counters"]
    assert not [e for e in point.events() if e["event"] == "committed"]
