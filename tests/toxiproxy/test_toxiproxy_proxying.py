"""Proxies on real sockets: binding, enable/disable, closing, upstream failures, load."""

from __future__ import annotations

import asyncio
import selectors
import socket
import time

from toxiproxy_testkit import (
    LATE_S,
    WAIT_S,
    connect,
    read_until_closed,
    recv_exact,
    refused,
    round_trip,
    split,
    wait_for,
)


def test_disable_refuses_connections_and_enable_rebinds_the_same_port(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.disable(name)
    assert refused(listen)
    assert control.proxy(name)["listen"] == listen
    control.enable(name)
    assert control.proxy(name)["listen"] == listen
    with connect(listen) as sock:
        assert round_trip(sock, b"back") < LATE_S


def test_disable_and_delete_close_open_connections(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    with connect(listen) as first:
        round_trip(first)
        control.disable(name)
        assert read_until_closed(first)[:2] == (b"", "eof")
    wait_for(lambda: echo.open_count == 0, WAIT_S, "the upstream side to be closed too")
    control.enable(name)
    with connect(listen) as second:
        round_trip(second)
        control.delete(name)
        assert read_until_closed(second)[:2] == (b"", "eof")
    assert refused(listen)


def test_changing_upstream_restarts_on_the_same_port(echo, make_proxy, control, api):
    name, listen = make_proxy("127.0.0.1:9")
    with connect(listen) as sock:  # nothing listens on port 9: closed at once
        assert read_until_closed(sock)[:2] == (b"", "eof")
    reply = api.post(f"/proxies/{name}", {"upstream": echo.address, "listen": listen})
    assert reply.status_code == 200 and reply.json()["listen"] == listen
    with connect(listen) as sock:
        assert round_trip(sock) < LATE_S
        api.post(f"/proxies/{name}", {"upstream": "127.0.0.1:9"})
        assert read_until_closed(sock)[:2] == (b"", "eof")


def test_unreachable_upstream_closes_the_client_at_once(make_proxy):
    with socket.socket() as probe:  # a port that is certainly closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    _, listen = make_proxy(f"127.0.0.1:{closed_port}")
    with connect(listen) as sock:
        start = time.monotonic()
        data, how, ended = read_until_closed(sock)
    assert (data, how) == (b"", "eof")
    assert ended - start < LATE_S  # at once; a proxy that keeps it open fails above


def test_half_close_is_not_preserved(echo, make_proxy):
    _, listen = make_proxy(echo.address)
    with connect(listen) as sock:
        round_trip(sock)
        start = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        data, how, ended = read_until_closed(sock)
    assert (data, how) == (b"", "eof") and ended - start < LATE_S
    wait_for(lambda: echo.open_count == 0, WAIT_S, "the upstream connection to close")


def test_upstream_closing_closes_the_client(sink, make_proxy):
    _, listen = make_proxy(sink.address)
    with connect(listen) as sock:
        sock.sendall(b"x")
        wait_for(lambda: sink.peers and sink.peers[0].received, WAIT_S, "data at the upstream")
        sink.close()  # closes its sockets
        assert read_until_closed(sock)[:2] == (b"", "eof")


def test_a_thousand_concurrent_connections_are_served_and_closed(echo, make_proxy):
    _, listen = make_proxy(echo.address)
    host, port = split(listen)

    async def client(number: int) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        message = b"client %04d\n" % number
        writer.write(message)
        try:
            return await reader.readexactly(len(message))
        finally:
            writer.close()
            await writer.wait_closed()

    async def everyone():
        return await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(1000))), 30)

    replies = asyncio.run(everyone())
    assert replies == [b"client %04d\n" % n for n in range(1000)]
    assert len(echo.peers) == 1000
    wait_for(lambda: echo.open_count == 0, 10, "every upstream connection to close")


def test_bulk_data_in_both_directions(echo, make_proxy):
    _, listen = make_proxy(echo.address)
    payload = bytes(range(256)) * 8192  # 2 MiB, written while the echo streams back
    received = bytearray()
    with connect(listen) as sock, selectors.DefaultSelector() as selector:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        sent = 0
        deadline = time.monotonic() + 20
        while len(received) < len(payload) and time.monotonic() < deadline:
            for _, events in selector.select(timeout=1.0):
                if events & selectors.EVENT_WRITE:
                    sent += sock.send(payload[sent : sent + 65536])
                    if sent == len(payload):
                        selector.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    received += sock.recv(262144)
    assert bytes(received) == payload


def test_listen_address_with_port_0_is_resolved(echo, make_proxy):
    _, listen = make_proxy(echo.address, listen="localhost:0")
    host, port = split(listen)
    assert host == "127.0.0.1" and port > 0
    with connect(listen) as sock:
        assert recv_exact(sock, 0) == b""
