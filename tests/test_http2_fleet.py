"""A fleet with an HTTP/2 fault point inline for every backend (Fleet(http2=True)):
client → Toxiproxy proxy → point → backend; the HTTP/2 faults aimed at it; what it leaves
behind when closed."""

from __future__ import annotations

import os

import grpc
import pytest

from chaos.faults import (
    Certificate,
    Goaway,
    HeadersThenNothing,
    Nemesis,
    RstStream,
    TrailersOnly,
    WithholdPingAcks,
)
from chaos.history import History
from chaos.toxiproxy_server.control import ToxiproxyServer
from fleet.client import ROUND_ROBIN, channel
from fleet.controller import Fleet, FleetError
from fleet.procs.waiting import wait_until
from fleet.protos.greeter_pb2 import HelloRequest
from fleet.protos.greeter_pb2_grpc import GreeterStub


@pytest.fixture(scope="module")
def proxies():
    with ToxiproxyServer() as server:
        yield server


@pytest.fixture(scope="module")
def fleet(proxies):
    with Fleet(3, net="127.0.221.0/24", proxies=proxies.control(), http2=True) as running:
        yield running


def _served_by(fleet, calls: int = 30, client: grpc.Channel | None = None) -> list[str]:
    """Who served each of ``calls`` sequential RPCs (on ``client``, else a new channel)."""
    own = client is None
    client = client or channel(fleet.info(), service_config=ROUND_ROBIN)
    try:
        hello = GreeterStub(client).SayHello
        served = []
        for n in range(calls):
            _, call = hello.with_call(HelloRequest(name=f"r{n}"), timeout=5, wait_for_ready=True)
            served.append(dict(call.trailing_metadata())["x-backend-id"])
        return served
    finally:
        if own:
            client.close()


def test_the_greeter_is_served_through_the_points_to_every_backend(fleet):
    assert set(_served_by(fleet)) == {"b1", "b2", "b3"}
    for backend in fleet.backends:
        proxy = fleet.proxies.proxy(backend.proxy)
        # The proxy forwards to the point, the point to the backend.
        assert proxy["upstream"] == "{}:{}".format(*fleet.http2_point(backend.id).address)
        assert backend.to_json()["http2_point"] == proxy["upstream"]
        assert fleet[backend.id].http2.stats()["counters"].get("upstream_streams", 0) > 0


def test_the_point_presents_the_backends_own_certificate_and_follows_its_faults(fleet):
    from fleet.pki import RENEWED

    nemesis = Nemesis(fleet, History(), fleet.proxies)
    for kind in ("good", RENEWED):
        if kind != "good":
            nemesis.inject(Certificate("b1", kind))
        own = fleet.pki.server_cert("b1", fleet.backend("b1").ip, kind)
        assert os.stat(own.key).st_mode & 0o777 == 0o600
        assert fleet.served_certificate("b1") == _der(own.cert_pem())
    assert nemesis.undo_all() == []
    assert fleet.served_certificate("b1") == _der(
        fleet.pki.server_cert("b1", fleet.backend("b1").ip).cert_pem()
    )


def _der(pem: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def test_a_fault_on_a_point_is_recorded_with_the_points_events(fleet):
    history = History()
    nemesis = Nemesis(fleet, history, fleet.proxies)
    client = channel(fleet.info(), service_config=ROUND_ROBIN)
    try:
        assert set(_served_by(fleet, 6, client)) == {"b1", "b2", "b3"}  # connected to each
        goaway = nemesis.inject(Goaway("b2", grace_ms=100))
        assert goaway.in_force_ns is not None and goaway.end_ns is not None  # one-shot
        assert nemesis.active  # the connection events' collector, undone below
        assert "b2" in _served_by(fleet, 30, client)  # on a new connection to b2
    finally:
        client.close()
    assert nemesis.undo_all() == []
    seen = [e for e in history.events if e.kind == "http2:goaway_seen"]
    assert seen and all(e.target == "b2" for e in seen)
    assert seen[0].detail["by"] == "point" and seen[0].detail["code"] == "NO_ERROR"
    assert "last_stream_id" in seen[0].detail
    assert any(e.kind == "http2:open" and e.target == "b2" for e in history.events)


def test_trailers_only_reaches_the_client_and_reset_clears_a_fault_left_behind(fleet):
    nemesis = Nemesis(fleet, History(), fleet.proxies)
    nemesis.inject(TrailersOnly("b1", code="UNAVAILABLE", message="from the point"))
    client = channel(fleet.info(), service_config=ROUND_ROBIN)
    try:
        hello = GreeterStub(client).SayHello
        codes = set()
        for n in range(9):
            try:
                hello(HelloRequest(name=f"t{n}"), timeout=5, wait_for_ready=True)
                codes.add("OK")
            except grpc.RpcError as error:
                codes.add(error.code().name)
                assert error.details() == "from the point"
        assert codes == {"OK", "UNAVAILABLE"}
    finally:
        client.close()
    fleet.http2_point("b3").inject(HeadersThenNothing("b3").wire())  # by hand: no undo
    fleet.reset()
    assert all(fleet.http2_point(b).stats()["faults"] == [] for b in fleet.ids)
    nemesis.undo_all()


def test_unknown_codes_are_an_error_when_the_fault_is_built():
    with pytest.raises(ValueError, match="unknown HTTP/2 error code 'REFUSED'"):
        RstStream("b2", code="REFUSED")
    with pytest.raises(ValueError, match="unknown gRPC status 'BROKEN'"):
        TrailersOnly("b2", code="BROKEN")


def test_a_fault_on_a_fleet_without_points_names_the_backend_and_the_setting(proxies):
    with Fleet(2, net="127.0.222.0/24", proxies=proxies.control()) as plain:
        nemesis = Nemesis(plain, History(), plain.proxies)
        with pytest.raises(FleetError, match=r"backend b2 has no HTTP/2 point.*http2=True"):
            nemesis.inject(WithholdPingAcks("b2"))
        assert nemesis.active == []
        with pytest.raises(FleetError, match="backend b1 has no HTTP/2 point"):
            plain["b1"].http2  # noqa: B018  the property is what raises


def test_http2_needs_a_proxied_fleet():
    with pytest.raises(FleetError, match="http2=True needs a proxied fleet"):
        Fleet(2, http2=True)


def test_the_point_follows_a_restarted_backend(fleet):
    before = fleet.backend("b3").listen
    fleet.restart("b3")
    assert fleet.backend("b3").listen == before  # a restart keeps the backend's port
    assert "b3" in _served_by(fleet)
    # A backend replaced on a new port: repoint() moves the point, not only the proxy.
    fleet.kill("b3")
    new = fleet.replace("b3")
    assert new != before
    fleet.repoint("b3")
    assert fleet.backend("b3").point_upstream == new
    assert "b3" in _served_by(fleet)
    point = fleet.http2_point("b3")
    assert fleet.proxies.proxy(fleet.backend("b3").proxy)["upstream"] == "{}:{}".format(
        *point.address
    )


def test_closing_the_fleet_stops_the_point_process_and_its_ports(proxies):
    fleet = Fleet(2, net="127.0.222.0/24", proxies=proxies.control(), http2=True).start()
    server = fleet.point_server
    assert server is not None and server.pid is not None
    pid = server.pid
    addresses = [fleet.http2_point(b).address for b in fleet.ids]
    assert any(who.startswith("HTTP/2 point") for who, _, _ in fleet.processes())
    fleet.close()
    assert fleet.point_server is None
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 5, "the point process gone")
    for host, port in addresses:
        with pytest.raises(ConnectionRefusedError):
            __import__("socket").create_connection((host, port), timeout=1)


def test_a_goaway_with_no_connection_open_is_an_error_unless_asked_to_skip(fleet):
    # No client is connected to b3's point now (every channel above was closed and its
    # connections are gone once the point says so).
    point = fleet.http2_point("b3")
    wait_until(lambda: point.stats()["connections"] == 0, 10, "b3's point without connections")
    nemesis = Nemesis(fleet, History(), fleet.proxies)
    with pytest.raises(ValueError, match="no connection is open"):
        nemesis.inject(Goaway("b3"))
    skipped = nemesis.inject(Goaway("b3", if_open=True))  # the fuzzer's: another fault won
    assert skipped.in_force_ns is not None
    assert nemesis.undo_all() == []


def test_the_fuzzer_draws_http2_faults_only_with_points(fleet, proxies):
    from chaos.fuzz import kinds

    assert kinds.HTTP2 in kinds.capabilities(fleet)
    drawn = {k.name for k in kinds.available(kinds.capabilities(fleet))}
    assert {"goaway", "refused", "trailers_only"} <= drawn
    with Fleet(2, net="127.0.222.0/24", proxies=proxies.control()) as plain:
        assert kinds.HTTP2 not in kinds.capabilities(plain)
        assert not {"goaway", "refused", "trailers_only"} & {
            k.name for k in kinds.available(kinds.capabilities(plain))
        }
