"""fleet.dns: answers over real UDP and TCP (dnslib client), truncation and EDNS0, TCP
framing and connection limits, run-time changes, outage and restart, the query log, and a
real gRPC channel (c-ares) resolving the fleet name through it."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from fleet.dns import EDNS_UDP_SIZE, MAX_RECORDS, MAX_TCP_CONNECTIONS, DnsServer
from fleet.pki import FLEET_NAME
from fleet.procs.waiting import wait_until
from fleet.protos import greeter_pb2, greeter_pb2_grpc
from tests.helpers import greeter_server, no_thread_leaks  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

# An answer on loopback takes well under a millisecond; this only bounds a busy machine.
ANSWER_TIMEOUT_S = 5.0
# How long to listen for an answer that must not come: any answer would arrive in
# microseconds, so a short wait is conclusive.
SILENCE_TIMEOUT_S = 0.2
FLEET_IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
# A fleet of 40: more addresses than fit a plain 512-byte UDP answer (29 do).
FORTY_IPS = [str(ipaddress.IPv4Address("127.0.3.1") + i) for i in range(40)]


@pytest.fixture
def dns():
    with DnsServer({FLEET_NAME: FLEET_IPS}) as server:
        yield server


def question(name: str, qtype: str = "A", edns: int | None = None, version: int = 0) -> DNSRecord:
    """A query as a resolver sends it; with an EDNS0 OPT record advertising ``edns`` bytes."""
    query = DNSRecord.question(name, qtype)
    if edns is not None:
        query.add_ar(EDNS0(udp_len=edns, version=version))
    return query


def ask(
    server: DnsServer,
    name: str,
    qtype: str = "A",
    timeout: float = ANSWER_TIMEOUT_S,
    *,
    tcp: bool = False,
    edns: int | None = None,
) -> DNSRecord:
    """One query over UDP (or TCP, on a connection of its own) to ``server``."""
    return DNSRecord.parse(
        question(name, qtype, edns).send(server.host, server.port, tcp=tcp, timeout=timeout)
    )


def frame(query: DNSRecord) -> bytes:
    """A query as it travels over TCP: a 2-byte length, then the message (RFC 1035 4.2.2)."""
    data = query.pack()
    return struct.pack("!H", len(data)) + data


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    """``count`` bytes from ``sock`` (its timeout bounds each read); EOFError if it closes."""
    data = bytearray()
    while len(data) < count:  # each pass reads >= 1 byte or ends: at most count passes
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


def read_reply(sock: socket.socket) -> DNSRecord:
    """The next length-prefixed reply on a TCP connection."""
    length = struct.unpack("!H", recv_exactly(sock, 2))[0]
    return DNSRecord.parse(recv_exactly(sock, length))


@contextlib.contextmanager
def tcp_connection(server: DnsServer) -> Iterator[socket.socket]:
    with socket.create_connection((server.host, server.port), timeout=ANSWER_TIMEOUT_S) as sock:
        yield sock


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closed ``sock`` (EOF or reset) within its timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


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


@pytest.mark.parametrize(
    "name, qtype", [("unknown.example.com", "A"), (f"_grpc_config.{FLEET_NAME}", "TXT")]
)
def test_unknown_names_are_nxdomain(dns, name, qtype):
    reply = ask(dns, name, qtype)
    assert (rcode(reply), reply.rr) == ("NXDOMAIN", [])


def test_names_are_case_insensitive(dns):
    reply = ask(dns, "GrEeTeR.Example.COM")
    assert a_records(reply) == FLEET_IPS
    assert (
        str(reply.rr[0].rname) == "GrEeTeR.Example.COM."
    )  # the question's case, as resolvers expect

    dns.set_records("GREETER.EXAMPLE.COM.", ["127.0.0.99"])
    assert a_records(ask(dns, FLEET_NAME)) == ["127.0.0.99"]
    assert dns.records("Greeter.Example.Com") == ["127.0.0.99"]
    assert {q.name for q in dns.queries()} == {FLEET_NAME}


def test_a_malformed_datagram_does_not_stop_the_server(dns):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00not dns", (dns.host, dns.port))
    assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS


# -- sizes: truncation, EDNS0, TCP ------------------------------------------------------


def test_forty_addresses_over_plain_udp_come_truncated_without_answers(dns):
    dns.set_records(FLEET_NAME, FORTY_IPS)
    reply = ask(dns, FLEET_NAME)
    assert (rcode(reply), reply.header.tc, reply.rr, reply.ar) == ("NOERROR", 1, [], [])
    assert [str(q.qname) for q in reply.questions] == [f"{FLEET_NAME}."]
    [query] = dns.queries()
    assert (query.transport, query.truncated, query.answers) == ("udp", True, ())


def test_forty_addresses_over_tcp_come_whole(dns):
    dns.set_records(FLEET_NAME, FORTY_IPS)
    reply = ask(dns, FLEET_NAME, tcp=True)
    assert (rcode(reply), reply.header.tc, a_records(reply)) == ("NOERROR", 0, FORTY_IPS)
    [query] = dns.queries()
    assert (query.transport, query.truncated, query.answers) == ("tcp", False, tuple(FORTY_IPS))


def test_forty_addresses_fit_udp_with_edns_4096_and_the_opt_record_comes_back(dns):
    dns.set_records(FLEET_NAME, FORTY_IPS)
    reply = ask(dns, FLEET_NAME, edns=4096)
    assert (reply.header.tc, a_records(reply)) == (0, FORTY_IPS)
    [opt] = reply.ar
    assert (opt.rtype, opt.rclass, opt.ttl) == (QTYPE.OPT, EDNS_UDP_SIZE, 0)  # version 0, rcode 0
    assert dns.queries()[0].truncated is False


# An answer for greeter.example.com takes 12 (header) + 25 (question) + 16 per address,
# + 11 with an OPT record: 29 addresses fill 512 bytes exactly with or without EDNS0.
@pytest.mark.parametrize(
    "count, edns, truncated",
    [
        (29, None, False),
        (30, None, True),  # no EDNS0: 512 bytes
        (29, 100, False),
        (30, 100, True),  # an EDNS0 size under 512 means 512
        (74, 1232, False),
        (75, 1232, True),  # the size the query advertises
        (253, 65000, False),
        (254, 65000, True),  # capped at 4096 whatever it advertises
    ],
)
def test_udp_answers_fit_the_clients_size_or_come_truncated(dns, count, edns, truncated):
    ips = [str(ipaddress.IPv4Address("127.0.4.1") + i) for i in range(count)]
    dns.set_records(FLEET_NAME, ips)
    reply = ask(dns, FLEET_NAME, edns=edns)
    assert reply.header.tc == truncated
    assert a_records(reply) == ([] if truncated else ips)
    assert len(reply.pack()) <= max(512, min(edns or 512, EDNS_UDP_SIZE))


def test_an_unknown_edns_version_is_badvers(dns):
    reply = DNSRecord.parse(
        question(FLEET_NAME, edns=1232, version=1).send(
            dns.host, dns.port, timeout=ANSWER_TIMEOUT_S
        )
    )
    [opt] = reply.ar
    # RFC 6891: BADVERS (16) = the OPT record's extended rcode 1 over the header's 0.
    assert (reply.header.rcode, opt.ttl >> 24, (opt.ttl >> 16) & 0xFF, reply.rr) == (0, 1, 0, [])
    assert dns.queries()[0].rcode == "BADVERS"


def test_the_most_addresses_fit_one_tcp_answer_for_the_longest_name(dns):
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    ips = [str(ipaddress.IPv4Address("127.1.0.0") + i) for i in range(MAX_RECORDS)]
    dns.set_records(longest, ips)
    reply = ask(dns, longest, tcp=True, edns=4096)
    assert a_records(reply) == ips and len(reply.pack()) <= 65535


def test_two_queries_on_one_tcp_connection_are_answered_in_order(dns):
    first, second = question(FLEET_NAME), question("unknown.example.com")
    with tcp_connection(dns) as sock:
        sock.sendall(frame(first) + frame(second))  # pipelined, in one segment
        replies = [read_reply(sock), read_reply(sock)]
        third = question(FLEET_NAME, "AAAA")
        sock.sendall(frame(third))  # and one more after the answers
        replies.append(read_reply(sock))
    assert [r.header.id for r in replies] == [first.header.id, second.header.id, third.header.id]
    assert [rcode(r) for r in replies] == ["NOERROR", "NXDOMAIN", "NOERROR"]
    assert a_records(replies[0]) == FLEET_IPS
    assert {q.transport for q in dns.queries()} == {"tcp"}


def test_a_query_split_across_reads_is_answered(dns):
    data = frame(question(FLEET_NAME))
    with tcp_connection(dns) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own segment
        for piece in (data[:1], data[1:2], data[2:9], data[9:]):
            sock.sendall(piece)
        assert a_records(read_reply(sock)) == FLEET_IPS


def test_a_stalled_partial_tcp_query_does_not_block_udp_or_other_connections(dns):
    data = frame(question(FLEET_NAME))
    with tcp_connection(dns) as stalled:
        stalled.sendall(data[:5])  # and then nothing
        assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS
        assert a_records(ask(dns, FLEET_NAME, tcp=True)) == FLEET_IPS
        stalled.sendall(data[5:])  # the stall ends: the query is answered after all
        assert a_records(read_reply(stalled)) == FLEET_IPS


def test_a_query_sent_before_the_client_half_closes_is_answered(dns):
    with tcp_connection(dns) as sock:
        sock.sendall(frame(question(FLEET_NAME)))
        sock.shutdown(socket.SHUT_WR)
        assert a_records(read_reply(sock)) == FLEET_IPS
        assert closed_by_server(sock)


def test_a_zero_length_tcp_message_closes_only_that_connection(dns):
    with tcp_connection(dns) as sock:
        sock.sendall(b"\x00\x00")
        assert closed_by_server(sock)
    assert a_records(ask(dns, FLEET_NAME, tcp=True)) == FLEET_IPS


IDLE_TIMEOUT_S = 0.3


@pytest.mark.parametrize("sent", [b"", b"\x00\x20\x12"], ids=["silent", "partial query"])
def test_an_idle_tcp_connection_is_closed_after_the_timeout(sent):
    with DnsServer({FLEET_NAME: FLEET_IPS}, tcp_idle_timeout=IDLE_TIMEOUT_S) as dns:
        with tcp_connection(dns) as sock:
            connected = time.monotonic()
            sock.sendall(sent)
            assert closed_by_server(sock)
            waited = time.monotonic() - connected
        assert IDLE_TIMEOUT_S <= waited < ANSWER_TIMEOUT_S  # never early; late only if stalled
        assert a_records(ask(dns, FLEET_NAME, tcp=True)) == FLEET_IPS


def test_tcp_connections_beyond_the_limit_are_closed_and_the_rest_served(dns):
    with contextlib.ExitStack() as stack:
        held = []
        for _ in range(MAX_TCP_CONNECTIONS):
            sock = stack.enter_context(tcp_connection(dns))
            sock.sendall(frame(question(FLEET_NAME)))
            read_reply(sock)  # answered, so the server holds this connection now
            held.append(sock)
        extra = stack.enter_context(tcp_connection(dns))
        assert closed_by_server(extra)
        held[0].sendall(frame(question(FLEET_NAME)))
        assert a_records(read_reply(held[0])) == FLEET_IPS
        assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS  # UDP unaffected
        held.pop().close()
        # The server notices the close on its own time; a new connection is served then.
        wait_until(
            lambda: _served_on_a_new_connection(dns),
            ANSWER_TIMEOUT_S,
            "a new TCP connection served after one of the held ones closed",
        )


def _served_on_a_new_connection(dns: DnsServer) -> bool:
    try:
        return a_records(ask(dns, FLEET_NAME, tcp=True)) == FLEET_IPS
    except (EOFError, ConnectionResetError, struct.error):
        return False


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


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s.remove_record(FLEET_NAME, "127.0.0.99"),
            "127.0.0.99 is not a record of greeter",
        ),
        (
            lambda s: s.remove_record("nobody.example.com", "127.0.0.11"),
            "nobody.example.com has no records \\(NXDOMAIN\\)",
        ),
        (lambda s: s.add_record(FLEET_NAME, "::1"), "'::1' is not an IPv4 address"),
        (lambda s: s.add_record(FLEET_NAME, "127.0.0.256"), "is not an IPv4 address"),
        (lambda s: s.set_records(FLEET_NAME, "127.0.0.1"), "must be a list of IPv4 strings"),
        (lambda s: s.set_records("bad name!", []), "is not a DNS name"),
        (
            lambda s: s.set_records(
                FLEET_NAME,
                [str(ipaddress.IPv4Address("127.1.0.0") + i) for i in range(MAX_RECORDS + 1)],
            ),
            f"{MAX_RECORDS + 1} addresses for {FLEET_NAME}: at most {MAX_RECORDS} fit one DNS answer",
        ),
    ],
)
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
    with tcp_connection(dns) as open_before:
        dns.stop()
        assert closed_by_server(open_before)
    assert not dns.running and dns.port == port

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((dns.host, port), timeout=ANSWER_TIMEOUT_S).close()

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
    assert a_records(ask(dns, FLEET_NAME, tcp=True)) == FLEET_IPS

    with tcp_connection(dns):  # a connection open across a restart does not hold the port
        dns.restart()  # restarting a running server stops it first
    assert dns.port == port
    assert a_records(ask(dns, FLEET_NAME)) == FLEET_IPS
    assert a_records(ask(dns, FLEET_NAME, tcp=True)) == FLEET_IPS


def test_restart_on_a_taken_port_names_the_holder(dns):
    dns.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((dns.host, dns.port))
        with pytest.raises(
            OSError, match=rf"UDP port {dns.port} on 127.0.0.1 is taken by pid {os.getpid()}"
        ):
            dns.restart()
    assert not dns.running


def test_restart_on_a_taken_tcp_port_names_the_holder_and_releases_udp(dns):
    dns.stop()
    with socket.socket() as squatter:
        squatter.bind((dns.host, dns.port))
        squatter.listen()
        with pytest.raises(
            OSError,
            match=rf"TCP port {dns.port} on 127.0.0.1 is taken by "
            rf"pid {os.getpid()}",
        ):
            dns.restart()
    assert not dns.running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((dns.host, dns.port))  # the UDP half was closed again, not leaked


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
        (FLEET_NAME, "A", "NOERROR"),
        (FLEET_NAME, "AAAA", "NOERROR"),
        ("unknown.example.com", "A", "NXDOMAIN"),
    ]
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
    with pytest.raises(
        TimeoutError,
        match=rf"no A query for {FLEET_NAME} reached DNS server "
        rf"{dns.address} within 0.1 s.*AAAA {FLEET_NAME}",
    ):
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
                greeter_pb2.HelloRequest(name="dns"),
                timeout=ANSWER_TIMEOUT_S * 2,
                wait_for_ready=True,
            )
    assert reply.message == "Hello dns"
    query = dns.wait_for_query(FLEET_NAME, since, timeout=ANSWER_TIMEOUT_S)
    assert query.answers == ("127.0.0.1",)


@contextlib.contextmanager
def listeners_on(ips: list[str], tries: int = 20) -> Iterator[tuple[int, dict[socket.socket, str]]]:
    """A plain TCP listener on each of ``ips``, all on one port (as a fleet's backends are);
    yields (port, {listener: ip}). A port taken on some address is given up for another."""
    for _ in range(tries):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind((ips[0], 0))
            port = first.getsockname()[1]
            bound = {first: ips[0]}
            try:
                for ip in ips[1:]:
                    sock = stack.enter_context(socket.socket())
                    sock.bind((ip, port))
                    bound[sock] = ip
            except OSError:
                continue
            for sock in bound:
                sock.listen()
            yield port, bound
            return
    raise RuntimeError(f"no port free on all of {ips[0]}..{ips[-1]} in {tries} tries")


def connected_addresses(bound: dict[socket.socket, str], count: int, timeout: float) -> set[str]:
    """The addresses of ``bound`` that received a connection, waiting until ``count`` did or
    ``timeout`` passed."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in bound:
            selector.register(sock, selectors.EVENT_READ)
        while len(seen) < count and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(remaining):
                connection, _ = key.fileobj.accept()
                connection.close()
                seen.add(bound[key.fileobj])
                selector.unregister(key.fileobj)
    return seen


def test_grpc_round_robin_reaches_all_forty_addresses_through_tcp(dns):
    """c-ares (grpcio's resolver) asks over UDP without EDNS0, gets TC=1 and asks again
    over TCP: what makes a 40-backend fleet reachable. Proof it used every address: a
    round_robin channel connects to each of them."""
    dns.set_records(FLEET_NAME, FORTY_IPS)
    since = time.monotonic_ns()
    with listeners_on(FORTY_IPS) as (port, bound):
        target = f"dns://{dns.address}/{FLEET_NAME}:{port}"
        options = [("grpc.service_config", '{"loadBalancingConfig": [{"round_robin": {}}]}')]
        with grpc.insecure_channel(target, options=options) as channel:
            channel.subscribe(lambda state: None, try_to_connect=True)
            seen = connected_addresses(bound, len(FORTY_IPS), ANSWER_TIMEOUT_S * 2)
    assert seen == set(FORTY_IPS)
    a_queries = [q for q in dns.queries(FLEET_NAME, since_ns=since) if q.qtype == "A"]
    assert [(q.transport, q.truncated, len(q.answers)) for q in a_queries[:2]] == [
        ("udp", True, 0),
        ("tcp", False, 40),
    ], f"c-ares asked: {a_queries}"
