"""fleet.dns: answers over real UDP (dnslib client), run-time changes, outage and restart,
the query log, and a real gRPC channel resolving the fleet name through it."""

from __future__ import annotations

import os
import socket
import threading
import time

import grpc
import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from fleet.dns import MAX_RECORDS, DnsServer
from fleet.pki import FLEET_NAME
from proto import greeter_pb2, greeter_pb2_grpc
from tests.helpers import greeter_server, no_thread_leaks  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

# An answer on loopback takes well under a millisecond; this only bounds a busy machine.
ANSWER_TIMEOUT_S = 5.0
# How long to listen for an answer that must not come: any answer would arrive in
# microseconds, so a short wait is conclusive.
SILENCE_TIMEOUT_S = 0.2
FLEET_IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


@pytest.fixture
def dns():
    with DnsServer({FLEET_NAME: FLEET_IPS}) as server:
        yield server


def ask(server: DnsServer, name: str, qtype: str = "A", timeout: float = ANSWER_TIMEOUT_S) -> DNSRecord:
    """One query over UDP to ``server``, as any resolver would send it."""
    return DNSRecord.parse(DNSRecord.question(name, qtype).send(server.host, server.port, timeout=timeout))


def rcode(reply: DNSRecord) -> str:
    return RCODE.get(reply.header.rcode)


def a_records(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


# -- answers ----------------------------------------------------------------------------


def test_answers_a_records_for_the_fleet_name(dns):
    reply = ask(dns, FLEET_NAME)
    assert rcode(reply) == "NOERROR"
    assert a_records(reply) == FLEET_IPS
    assert {rr.ttl for rr in reply.rr} == {1}
    assert reply.header.aa == 1


@pytest.mark.parametrize("qtype", ["AAAA", "TXT", "SRV"])
def test_other_types_for_the_fleet_name_are_empty_noerror(dns, qtype):
    reply = ask(dns, FLEET_NAME, qtype)
    assert (rcode(reply), reply.rr) == ("NOERROR", [])


@pytest.mark.parametrize("name, qtype", [("unknown.example.com", "A"),
                                         (f"_grpc_config.{FLEET_NAME}", "TXT")])
def test_unknown_names_are_nxdomain(dns, name, qtype):
    reply = ask(dns, name, qtype)
    assert (rcode(reply), reply.rr) == ("NXDOMAIN", [])


def test_names_are_case_insensitive(dns):
    reply = ask(dns, "GrEeTeR.Example.COM")
    assert a_records(reply) == FLEET_IPS
    assert str(reply.rr[0].rname) == "GrEeTeR.Example.COM."  # the question's case, as resolvers expect

    dns.set_records("GREETER.EXAMPLE.COM.", ["127.0.0.99"])
    assert a_records(ask(dns, FLEET_NAME)) == ["127.0.0.99"]
    assert dns.records("Greeter.Example.Com") == ["127.0.0.99"]
    assert {q.name for q in dns.queries()} == {FLEET_NAME}


def test_a_malformed_datagram_does_not_stop_the_server(dns):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00not dns", (dns.host, dns.port))
    assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS


# -- changes at run time ----------------------------------------------------------------


def test_records_change_at_run_time(dns):
    dns.add_record(FLEET_NAME, "127.0.0.14")
    assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS + ["127.0.0.14"]

    dns.remove_record(FLEET_NAME, "127.0.0.12")
    assert a_records(ask(dns, FLEET_NAME)) == ["127.0.0.11", "127.0.0.13", "127.0.0.14"]

    dns.set_records(FLEET_NAME, [])
    reply = ask(dns, FLEET_NAME)
    assert (rcode(reply), reply.rr) == ("NOERROR", [])

    dns.set_nxdomain(FLEET_NAME)
    assert rcode(ask(dns, FLEET_NAME)) == "NXDOMAIN"
    assert dns.records(FLEET_NAME) == []

    dns.add_record(FLEET_NAME, "127.0.0.11")
    dns.add_record(FLEET_NAME, "127.0.0.11")  # adding twice keeps one
    reply = ask(dns, FLEET_NAME)
    assert (rcode(reply), a_records(reply)) == ("NOERROR", ["127.0.0.11"])


@pytest.mark.parametrize("change, message", [
    (lambda s: s.remove_record(FLEET_NAME, "127.0.0.99"), "127.0.0.99 is not a record of greeter"),
    (lambda s: s.remove_record("nobody.example.com", "127.0.0.11"), "nobody.example.com has no records \\(NXDOMAIN\\)"),
    (lambda s: s.add_record(FLEET_NAME, "::1"), "'::1' is not an IPv4 address"),
    (lambda s: s.add_record(FLEET_NAME, "127.0.0.256"), "is not an IPv4 address"),
    (lambda s: s.set_records(FLEET_NAME, "127.0.0.1"), "must be a list of IPv4 strings"),
    (lambda s: s.set_records("bad name!", []), "is not a DNS name"),
    (lambda s: s.set_records(FLEET_NAME, [f"127.0.1.{i}" for i in range(MAX_RECORDS + 1)]),
     f"at most {MAX_RECORDS}"),
])
def test_bad_changes_raise_clear_errors(change, message):
    server = DnsServer({FLEET_NAME: FLEET_IPS})  # never started: checks need no socket
    with pytest.raises(ValueError, match=message):
        change(server)


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "localhost", "::1"])
def test_refuses_to_bind_anything_but_ipv4_loopback(host):
    with pytest.raises(ValueError, match="loopback"):
        DnsServer(host=host)


# -- outage and restart -----------------------------------------------------------------


def test_a_stopped_server_answers_nothing(dns):
    port = dns.port
    dns.stop()
    assert not dns.running and dns.port == port

    with pytest.raises((TimeoutError, ConnectionRefusedError)):
        ask(dns, FLEET_NAME, timeout=SILENCE_TIMEOUT_S)
    # A connected socket receives the ICMP port unreachable: proof the port is closed.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(ANSWER_TIMEOUT_S)
        sock.connect((dns.host, port))
        sock.send(DNSRecord.question(FLEET_NAME).pack())
        with pytest.raises(ConnectionRefusedError):
            sock.recv(512)
    dns.stop()  # stopping twice is fine


def test_restart_serves_again_on_the_same_port(dns):
    port = dns.port
    dns.stop()
    dns.restart()
    assert dns.running and dns.port == port
    assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS

    dns.restart()  # restarting a running server stops it first
    assert dns.port == port
    assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS


def test_restart_on_a_taken_port_names_the_holder(dns):
    dns.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((dns.host, dns.port))
        with pytest.raises(OSError, match=rf"UDP port {dns.port} on 127.0.0.1 is taken by pid {os.getpid()}"):
            dns.restart()
    assert not dns.running


def test_start_twice_is_an_error(dns):
    with pytest.raises(RuntimeError, match="already running"):
        dns.start()


# -- the query log ----------------------------------------------------------------------


def test_query_log_is_timestamped_in_order_and_filterable(dns):
    before = time.monotonic_ns()
    ask(dns, FLEET_NAME)
    ask(dns, FLEET_NAME, "AAAA")
    middle = time.monotonic_ns()
    ask(dns, "unknown.example.com")
    after = time.monotonic_ns()

    log = dns.queries()
    assert [(q.name, q.qtype, q.rcode) for q in log] == [
        (FLEET_NAME, "A", "NOERROR"), (FLEET_NAME, "AAAA", "NOERROR"),
        ("unknown.example.com", "A", "NXDOMAIN")]
    assert log[0].answers == tuple(FLEET_IPS) and log[1].answers == ()
    stamps = [q.t_ns for q in log]
    assert before <= stamps[0] <= stamps[1] <= middle <= stamps[2] <= after
    assert dns.queries(FLEET_NAME) == log[:2]
    assert dns.queries(since_ns=middle) == log[2:]


def test_wait_for_query_returns_the_first_matching_query(dns):
    since = time.monotonic_ns()
    asker = threading.Thread(target=lambda: [ask(dns, FLEET_NAME, "AAAA"), ask(dns, FLEET_NAME)])
    asker.start()
    try:
        query = dns.wait_for_query(FLEET_NAME.upper(), since, timeout=ANSWER_TIMEOUT_S)
    finally:
        asker.join(ANSWER_TIMEOUT_S * 2)
    assert (query.qtype, query.answers) == ("A", tuple(FLEET_IPS))
    assert query.t_ns >= since
    assert dns.wait_for_query(FLEET_NAME, since, timeout=0, qtype="aaaa").qtype == "AAAA"


def test_wait_for_query_times_out_with_a_clear_error(dns):
    since = time.monotonic_ns()
    ask(dns, FLEET_NAME, "AAAA")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"no A query for {FLEET_NAME} reached DNS server "
                                           rf"{dns.address} within 0.1 s.*AAAA {FLEET_NAME}"):
        dns.wait_for_query(FLEET_NAME, since, timeout=0.1)
    assert time.monotonic() - started < ANSWER_TIMEOUT_S


# -- a real gRPC client -----------------------------------------------------------------


def test_grpc_channel_resolves_the_fleet_name_through_this_server(dns):
    """The default (c-ares) resolver, as every client of the fleet uses it."""
    dns.set_records(FLEET_NAME, ["127.0.0.1"])
    since = time.monotonic_ns()
    with greeter_server() as port:
        target = f"dns://{dns.address}/{FLEET_NAME}:{port}"
        with grpc.insecure_channel(target) as channel:
            reply = greeter_pb2_grpc.GreeterStub(channel).SayHello(
                greeter_pb2.HelloRequest(name="dns"), timeout=ANSWER_TIMEOUT_S * 2, wait_for_ready=True)
    assert reply.message == "Hello dns"
    query = dns.wait_for_query(FLEET_NAME, since, timeout=ANSWER_TIMEOUT_S)
    assert query.answers == ("127.0.0.1",)
