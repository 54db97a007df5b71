"""Each toxic measured on real loopback sockets (spec §6, §7).

Times are measured against what the toxic promises, with tolerances that hold on a busy
2-core machine: a release is never early (the proxy waits at least the delay) and at
most a few ms late in the median. Round trips are compared with a direct baseline.
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import threading
import time

import pytest

from toxiproxy_testkit import (connect, median, read_until_closed, recv_exact, round_trip,
                               round_trips, stays_open, wait_for)

MS = 0.001


def test_data_passes_unchanged_without_toxics(echo, make_proxy):
    _, listen = make_proxy(echo.address)
    payload = os.urandom(1 << 20)
    with connect(listen) as sock:
        sock.sendall(payload)
        assert recv_exact(sock, len(payload), timeout=10) == payload


# ---------------------------------------------------------------------------- latency

def test_latency_delays_each_reply_by_100ms(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    baseline = median(round_trips(echo.address, 5))
    control.add_toxic(name, "latency", {"latency": 100})
    samples = round_trips(listen, 9)
    added = median(samples) - baseline
    assert 95 * MS <= added <= 105 * MS, f"added latency {added * 1000:.1f} ms"
    assert min(samples) >= 99.5 * MS, "a reply was released before its delay"


def test_latency_up_and_down_add_to_200ms(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "latency", {"latency": 100}, stream="upstream")
    control.add_toxic(name, "latency", {"latency": 100}, stream="downstream")
    assert 195 * MS <= median(round_trips(listen, 5)) <= 210 * MS


def test_two_latency_toxics_in_one_direction_add_up(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "latency", {"latency": 60}, name="first")
    control.add_toxic(name, "latency", {"latency": 60}, name="second")
    assert 119 * MS <= median(round_trips(listen, 5)) <= 130 * MS


def test_jitter_stays_within_its_bounds_and_varies(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "latency", {"latency": 100, "jitter": 30})
    samples = round_trips(listen, 16)
    assert min(samples) >= 69.5 * MS, f"below latency - jitter: {min(samples)}"
    assert max(samples) <= 140 * MS, f"above latency + jitter: {max(samples)}"
    assert max(samples) - min(samples) >= 10 * MS, "jitter did not vary the delay"


def test_latency_applies_to_open_connections_and_updates_merge(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    with connect(listen) as sock:
        assert round_trip(sock) < 50 * MS
        control.add_toxic(name, "latency", {"latency": 100, "jitter": 0})
        assert round_trip(sock) >= 99.5 * MS
        toxic = control.update_toxic(name, "latency_downstream", {"latency": 200})
        assert toxic["attributes"] == {"latency": 200, "jitter": 0}
        assert 199.5 * MS <= round_trip(sock) <= 215 * MS


def test_removing_latency_releases_what_it_held(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "latency", {"latency": 3000})
    with connect(listen) as sock:
        start = time.monotonic()
        sock.sendall(b"held")
        wait_for(lambda: echo.peers and echo.peers[0].received, 2, "the echo to get the data")
        control.remove_toxic(name, "latency_downstream")
        assert recv_exact(sock, 4) == b"held"
        assert time.monotonic() - start < 1.0, "data waited for the removed latency"


def test_removing_a_toxic_flushes_everything_queued_for_it(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "latency", {"latency": 3000})
    with connect(listen) as sock:
        start = time.monotonic()
        for number, letter in enumerate(b"abcdef", 1):  # six replies, six chunks queued
            sock.sendall(bytes([letter]))
            wait_for(lambda: len(echo.peers[0].received) == number if echo.peers else False,
                     2, "the echo to answer")
        control.remove_toxic(name, "latency_downstream")
        assert recv_exact(sock, 6) == b"abcdef"
        assert time.monotonic() - start < 2.0, "data waited for the removed latency"
        assert round_trip(sock) < 0.1, "not back to a plain pass-through"


_HARMLESS = [  # toxics that delay or cut data but keep every byte
    ("latency", {"latency": 3, "jitter": 2}), ("bandwidth", {"rate": 20_000}),
    ("slicer", {"average_size": 700, "size_variation": 300, "delay": 50}),
    ("noop", {}), ("slow_close", {"delay": 5}), ("limit_data", {"bytes": 1 << 40})]


def test_toxic_changes_while_data_flows_keep_every_byte_in_order(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    payload = b"".join(b"%08d" % i for i in range(200_000))  # 1.6 MB, every offset unique
    received = bytearray()
    rng = random.Random(7)
    with connect(listen) as sock:
        reader = threading.Thread(target=lambda: received.extend(
            recv_exact(sock, len(payload), timeout=30)), daemon=True)
        reader.start()
        writer = threading.Thread(target=_send_slowly, args=(sock, payload), daemon=True)
        writer.start()
        for step in range(400):  # add, update and remove while bytes stream both ways
            if not writer.is_alive():
                break
            existing = control.toxics(name)
            if existing and rng.random() < 0.4:
                victim = rng.choice(existing)["name"]
                if rng.random() < 0.5:
                    control.remove_toxic(name, victim)
                else:
                    control.update_toxic(name, victim, toxicity=rng.choice([0.0, 0.5, 1.0]))
            else:
                kind, attributes = rng.choice(_HARMLESS)
                control.add_toxic(name, kind, attributes, name=f"t{step}",
                                  stream=rng.choice(["upstream", "downstream"]))
        for toxic in control.toxics(name):
            control.remove_toxic(name, toxic["name"])
        writer.join(30)
        reader.join(30)
    assert step > 10, "too few changes met the data"
    assert len(received) == len(payload)
    assert bytes(received) == payload


def _send_slowly(sock: socket.socket, payload: bytes) -> None:
    """Many small writes (many chunks), paced over about a second so changes meet data."""
    for start in range(0, len(payload), 16384):
        sock.sendall(payload[start:start + 16384])
        time.sleep(0.01)  # pacing the traffic, not waiting for anything


# --------------------------------------------------------------------------- toxicity

def _first_replies(listen: str, count: int, timeout: float = 3.0) -> list[float]:
    """Open ``count`` connections, send one byte on each at once; reply times in s."""
    socks = [connect(listen) for _ in range(count)]
    try:
        with selectors.DefaultSelector() as selector:
            start = time.monotonic()
            for sock in socks:
                sock.setblocking(False)
                sock.send(b"x")
                selector.register(sock, selectors.EVENT_READ)
            times = []
            while len(times) < count and time.monotonic() - start < timeout:
                for key, _ in selector.select(timeout=0.5):
                    assert key.fileobj.recv(1) == b"x"
                    times.append(time.monotonic() - start)
                    selector.unregister(key.fileobj)
            assert len(times) == count, "some connections got no reply"
            return times
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("toxicity, delayed", [(0.0, False), (1.0, True)])
def test_toxicity_zero_never_and_one_always_applies(echo, make_proxy, control,
                                                    toxicity, delayed):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "latency", {"latency": 200}, toxicity=toxicity)
    times = _first_replies(listen, 8)
    assert all((t >= 199.5 * MS) == delayed for t in times), times


def test_toxicity_is_drawn_per_connection(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "latency", {"latency": 200}, toxicity=0.5)
    times = _first_replies(listen, 30)
    delayed = sum(t >= 199.5 * MS for t in times)
    # Chance of all or none out of 30 at p = 0.5 is 2e-9.
    assert 0 < delayed < 30, times
    assert all(t < 100 * MS or t >= 199.5 * MS for t in times)


# -------------------------------------------------------------------------- bandwidth

def test_bandwidth_limits_throughput_within_5_percent(sink, make_proxy, control):
    name, listen = make_proxy(sink.address)
    control.add_toxic(name, "bandwidth", {"rate": 500}, stream="upstream")  # 500 KB/s
    size = 300_000
    with connect(listen) as sock:
        start = time.monotonic()
        sock.sendall(os.urandom(size))
        wait_for(lambda: sink.peers and len(sink.peers[0].received) == size, 5,
                 "all bytes at the upstream")
        elapsed = sink.peers[0].last_at - start
    expected = size / 500_000
    assert abs(elapsed - expected) <= 0.05 * expected, f"{elapsed:.3f} s for {expected} s"


def test_bandwidth_rate_zero_stalls_until_removed(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "bandwidth", {"rate": 0})
    with connect(listen) as sock:
        sock.sendall(b"stalled")
        assert stays_open(sock, 0.3) == b""
        control.remove_toxic(name, "bandwidth_downstream")
        assert recv_exact(sock, 7) == b"stalled"


# ------------------------------------------------------------------------- slow_close

def _close_delay(sock: socket.socket) -> float:
    """Half-close our side; seconds until the proxy closes the connection."""
    start = time.monotonic()
    sock.shutdown(socket.SHUT_WR)
    _, how, ended = read_until_closed(sock)
    assert how == "eof"
    return ended - start


def test_slow_close_delays_the_close(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    with connect(listen) as sock:
        assert _close_delay(sock) < 50 * MS
    control.add_toxic(name, "slow_close", {"delay": 300})
    with connect(listen) as sock:
        round_trip(sock, b"data passes")
        assert 299.5 * MS <= _close_delay(sock) <= 340 * MS


# ---------------------------------------------------------------------------- timeout

def test_timeout_discards_data_and_closes_after_silence(sink, make_proxy, control):
    name, listen = make_proxy(sink.address)
    control.add_toxic(name, "timeout", {"timeout": 300}, stream="upstream")
    with connect(listen) as sock:
        for _ in range(3):  # traffic every 100 ms keeps restarting the countdown
            last = time.monotonic()  # before the send: the proxy cannot see it earlier
            sock.sendall(b"lost")
            time.sleep(0.1)
        _, how, ended = read_until_closed(sock)
    assert how == "eof"
    assert 299.5 * MS <= ended - last <= 360 * MS
    assert sink.peers and sink.peers[0].received == b""


def test_timeout_zero_discards_until_removed_then_closes(sink, make_proxy, control):
    name, listen = make_proxy(sink.address)
    control.add_toxic(name, "timeout", {"timeout": 0}, stream="upstream")
    with connect(listen) as sock:
        sock.sendall(b"lost")
        assert stays_open(sock, 0.4) == b""
        start = time.monotonic()
        control.remove_toxic(name, "timeout_upstream")
        _, how, ended = read_until_closed(sock)
    assert how == "eof" and ended - start < 0.2
    assert sink.peers[0].received == b""


# ------------------------------------------------------------------------- reset_peer

def test_reset_peer_resets_after_the_first_reply(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "reset_peer", {"timeout": 100})
    with connect(listen) as sock:
        start = time.monotonic()
        sock.sendall(b"x")
        data, how, ended = read_until_closed(sock)
    assert (data, how) == (b"", "reset")
    assert 99.5 * MS <= ended - start <= 150 * MS


def test_reset_peer_waits_for_data(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "reset_peer", {"timeout": 0})
    with connect(listen) as sock:
        assert stays_open(sock, 0.2) == b""


def test_reset_peer_added_to_an_open_connection_closes_with_fin(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    with connect(listen) as sock:
        round_trip(sock)
        control.add_toxic(name, "reset_peer", {"timeout": 0})
        sock.sendall(b"x")
        data, how, _ = read_until_closed(sock)
    assert (data, how) == (b"", "eof")


# ----------------------------------------------------------------------------- slicer

def test_slicer_cuts_replies_into_delayed_pieces(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "slicer", {"average_size": 8, "size_variation": 0,
                                       "delay": 20_000})
    payload = bytes(range(64))
    reads, times = [], []
    with connect(listen) as sock:
        sock.sendall(payload)
        received = bytearray()
        deadline = time.monotonic() + 3
        while len(received) < 64 and time.monotonic() < deadline:
            sock.settimeout(deadline - time.monotonic())
            piece = sock.recv(64)
            assert piece
            received += piece
            reads.append(len(piece))
            times.append(time.monotonic())
    assert bytes(received) == payload
    # 64 bytes at average 8 without variation are eight 8-byte pieces 20 ms apart; a busy
    # reader may get two pieces in one read, never a piece split differently.
    assert all(n % 8 == 0 for n in reads), reads
    assert len(reads) >= 4, reads
    assert times[-1] - times[0] >= 7 * 20 * MS * 0.9


# ------------------------------------------------------------------------- limit_data

def test_limit_data_downstream_passes_exact_bytes_then_closes(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "limit_data", {"bytes": 5})
    with connect(listen) as sock:
        sock.sendall(b"0123456789")
        data, how, _ = read_until_closed(sock)
    assert (data, how) == (b"01234", "eof")


def test_limit_data_upstream_counts_per_connection(sink, make_proxy, control):
    name, listen = make_proxy(sink.address)
    control.add_toxic(name, "limit_data", {"bytes": 5}, stream="upstream")
    for round_number in range(2):
        with connect(listen) as sock:
            sock.sendall(b"0123456789")
            _, how, _ = read_until_closed(sock)
        assert how == "eof"
        wait_for(lambda: len(sink.peers) > round_number
                 and sink.peers[round_number].ended_at, 2, "the upstream to be closed")
        assert sink.peers[round_number].received == b"01234"


def test_limit_data_zero_closes_on_first_data(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "limit_data", {"bytes": 0})
    with connect(listen) as sock:
        assert stays_open(sock, 0.2) == b""
        sock.sendall(b"x")
        data, how, _ = read_until_closed(sock)
    assert (data, how) == (b"", "eof")


def test_noop_passes_data(echo, make_proxy, control):
    name, listen = make_proxy(echo.address)
    control.add_toxic(name, "noop", {})
    with connect(listen) as sock:
        assert round_trip(sock, b"through noop") < 0.5
