"""The point's h2 connections (chaos/http2/relay.py, h2conn.py) in memory, frame by frame:
races between the two hops that a relay must survive."""

from __future__ import annotations

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ResponseReceived, StreamEnded, TrailersReceived

from chaos.http2.relay import client_connection

REQUEST = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/s/M"),
           (b":authority", b"x"), (b"content-type", b"application/grpc")]  # fmt: skip
RESPONSE = [(b":status", b"200"), (b"content-type", b"application/grpc")]
TRAILERS = [(b"grpc-status", b"0")]


def _exchange(point, backend) -> list:
    """Deliver what each side has to send; the point's events."""
    backend.receive_data(point.data_to_send())
    return point.receive_data(backend.data_to_send())


def test_trailers_crossing_the_points_reset_cost_only_that_stream():
    """The point resets a stream (its client cancelled it) while the backend, which has
    not seen the reset yet, sends that stream's trailers; a stream opened meanwhile makes
    h2 forget the reset one. The late trailers must be a stream error (ignored, answered
    RST_STREAM), not a connection error: once they were "Max inbound streams is 0" and the
    whole connection, every RPC on it, was lost (seen with grpc-go cancelling starved
    streams at their deadline)."""
    point = client_connection()
    backend = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    backend.initiate_connection()
    _exchange(point, backend)
    point.send_headers(1, REQUEST, end_stream=True)
    _exchange(point, backend)
    backend.send_headers(1, RESPONSE)
    assert any(isinstance(e, ResponseReceived) for e in _exchange(point, backend))
    point.reset_stream(1, ErrorCodes.CANCEL)  # not yet delivered to the backend
    point.send_headers(3, REQUEST, end_stream=True)  # h2 drops closed stream 1 here
    backend.send_headers(1, TRAILERS, end_stream=True)  # crossed the reset on the wire
    late = point.receive_data(backend.data_to_send())
    assert not [e for e in late if isinstance(e, TrailersReceived | StreamEnded)]
    # The connection goes on: stream 3 is answered.
    backend.receive_data(point.data_to_send())
    backend.send_headers(3, RESPONSE)
    backend.send_headers(3, TRAILERS, end_stream=True)
    events = point.receive_data(backend.data_to_send())
    assert any(isinstance(e, StreamEnded) and e.stream_id == 3 for e in events)
