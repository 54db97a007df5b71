"""Frame races at the HTTP/2 point, staged frame by frame with a scripted backend and a
scripted client (h2 on both ends), on both point processes.

The race: a client cancels a stream (RST_STREAM) while the backend's trailers for it are
already on their way; the point resets the stream upstream, and the trailers arrive for a
stream it no longer relays. They must be dropped and the connection must go on — grpc-go
cancelling starved streams at their deadlines met a point that failed the whole upstream
connection here, beside CPU burners (docs/http2.md, "How frames are mapped").
"""

from __future__ import annotations

import queue
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    RequestReceived,
    ResponseReceived,
    StreamEnded,
    TrailersReceived,
)
from hyperframe.frame import HeadersFrame

from chaos.http2 import Http2Server
from fleet.pki import FLEET_NAME, PKI

TIMEOUT_S = 10.0
REQUEST = [
    (":method", "POST"),
    (":scheme", "https"),
    (":path", "/chaostest.Raw/Unary"),
    (":authority", FLEET_NAME),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]
RESPONSE = [(":status", "200"), ("content-type", "application/grpc")]
TRAILERS = [("grpc-status", "0")]


class ScriptedBackend:
    """One TLS h2 connection, served from a thread: stream 1 gets response headers; the
    next stream first gets stream 1's trailers (a raw frame: stream 1 was reset meanwhile,
    as by a backend whose answer crossed the reset), then a whole answer of its own.
    ``seen`` gets each event's class name with its stream id."""

    def __init__(self, pki: PKI):
        files = pki.server_cert("b1", "127.0.0.1")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(files.cert, files.key)
        context.set_alpn_protocols(["h2"])
        self.listener = context.wrap_socket(
            socket.create_server(("127.0.0.1", 0)), server_side=True
        )
        self.listener.settimeout(TIMEOUT_S)
        self.port = self.listener.getsockname()[1]
        self.seen: queue.Queue[tuple[str, int]] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        sock.settimeout(TIMEOUT_S)
        conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        with sock:
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for event in conn.receive_data(data):
                    sid = getattr(event, "stream_id", 0)
                    self.seen.put((type(event).__name__, sid))
                    if isinstance(event, RequestReceived) and sid == 1:
                        conn.send_headers(sid, RESPONSE)
                    elif isinstance(event, RequestReceived):
                        # Stream 1's trailers, sent as if they had crossed the reset: only
                        # now, after a newer stream opened (the point may have forgotten
                        # stream 1 by then, as h2 does).
                        sock.sendall(conn.data_to_send())
                        late = HeadersFrame(1, flags=["END_HEADERS", "END_STREAM"])
                        late.data = conn.encoder.encode(TRAILERS)
                        sock.sendall(late.serialize())
                        conn.send_headers(sid, RESPONSE)
                        conn.send_data(sid, b"\0\0\0\0\0")
                        conn.send_headers(sid, TRAILERS, end_stream=True)
                sock.sendall(conn.data_to_send())

    def close(self) -> None:
        self.listener.close()
        self.thread.join(TIMEOUT_S)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(params=["go", "python"])
def point_server(request) -> Iterator[Http2Server]:
    with Http2Server(implementation=request.param) as server:
        yield server


def _client(pki: PKI, address: tuple[str, int]) -> tuple[ssl.SSLSocket, H2Connection]:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(
        socket.create_connection(address, timeout=TIMEOUT_S), server_hostname=FLEET_NAME
    )
    conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _expect(seen: queue.Queue, name: str, sid: int) -> None:
    """Wait (bounded) until the backend saw ``name`` on stream ``sid``."""
    while True:
        event = seen.get(timeout=TIMEOUT_S)
        if event == (name, sid):
            return


def test_trailers_crossing_a_reset_are_dropped_and_the_connection_goes_on(pki, point_server):
    backend = ScriptedBackend(pki)
    try:
        point = point_server.add_point(
            "race",
            upstream=("127.0.0.1", backend.port),
            server_name=FLEET_NAME,
            cert=pki.server_cert("b1", "127.0.0.1").cert,
            key=pki.server_cert("b1", "127.0.0.1").key,
            ca=pki.ca_cert,
        )
        sock, conn = _client(pki, point.address)
        with sock:
            conn.send_headers(1, REQUEST)
            conn.send_data(1, b"\0\0\0\0\0", end_stream=True)
            sock.sendall(conn.data_to_send())
            _expect(backend.seen, "RequestReceived", 1)
            conn.reset_stream(1, ErrorCodes.CANCEL)  # the client's deadline
            sock.sendall(conn.data_to_send())
            _expect(backend.seen, "StreamReset", 1)  # ... and the late trailers are sent
            conn.send_headers(3, REQUEST)
            conn.send_data(3, b"\0\0\0\0\0", end_stream=True)
            sock.sendall(conn.data_to_send())
            answered = _read_until_ended(sock, conn, 3)
            # Read while the client's connection is still open: its own close is an event.
            closes = [e for e in point.events() if e["event"] in ("close", "goaway")]
        assert answered == ["ResponseReceived", "TrailersReceived", "StreamEnded"]
        assert closes == [], closes
    finally:
        backend.close()


def _read_until_ended(sock: ssl.SSLSocket, conn: H2Connection, sid: int) -> list[str]:
    """The events of stream ``sid`` the client gets, until it ends; a GOAWAY or a closed
    connection fails the test."""
    got: list[str] = []
    while "StreamEnded" not in got:
        data = sock.recv(65536)
        assert data, f"the point closed the connection (stream {sid} got {got})"
        for event in conn.receive_data(data):
            assert not isinstance(event, ConnectionTerminated), f"GOAWAY: {event}"
            if getattr(event, "stream_id", None) == sid and isinstance(
                event, ResponseReceived | TrailersReceived | StreamEnded
            ):
                got.append(type(event).__name__)
        sock.sendall(conn.data_to_send())
    return got
