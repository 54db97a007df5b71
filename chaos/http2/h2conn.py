"""h2's connection state machine, adapted to a relay that must drain gracefully.

h2 (python-hyper) moves a connection to CLOSED as soon as a GOAWAY is sent *or received*,
and from then on refuses every frame: it cannot finish the streams a GOAWAY lets finish.
A relay must (a server's max-connection-age GOAWAY, the point's own graceful GOAWAY), so
:class:`RelayConnection` overrides two frame handlers and adds two senders:

* a received GOAWAY gives the usual ``ConnectionTerminated`` event and nothing else: the
  connection stays open for the streams at or below its last-stream-id, and the relay
  decides what to do (it forwards it);
* a received PING gives ``PingReceived`` but is *not* acknowledged automatically: the relay
  forwards PINGs end to end and their ACKs back (see docs/http2.md, "Who answers PINGs");
* :meth:`send_goaway` and :meth:`send_ping_ack` put those frames on the wire without
  touching the state machine.

Its HPACK encoder and decoder are hpack's own, subclassed to reuse the blocks a gRPC
connection repeats (hpack_cache.py: the same output, less CPU).

These use h2's private frame handlers (``_receive_goaway_frame``, ``_receive_ping_frame``,
``_prepare_for_sending``), stable since h2 3.x; constraints.txt pins the tested version and
tests/test_http2_point.py exercises every one of them.
"""

from __future__ import annotations

from typing import Any

from h2.connection import ConnectionInputs, H2Connection, _error_code_from_int
from h2.events import ConnectionTerminated, Event, PingAckReceived, PingReceived
from hyperframe.frame import Frame, GoAwayFrame, PingFrame

from .hpack_cache import CachingDecoder, CachingEncoder


class RelayConnection(H2Connection):
    """An :class:`h2.connection.H2Connection` that survives GOAWAY and leaves PINGs to the
    relay (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # HPACK contexts that reuse repeated blocks (hpack_cache.py); set before any frame.
        max_header_list_size = self.decoder.max_header_list_size
        self.encoder = CachingEncoder()
        self.decoder = CachingDecoder(max_header_list_size)

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[Event]]:
        event = ConnectionTerminated()
        event.error_code = _error_code_from_int(frame.error_code)
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]

    def _receive_ping_frame(self, frame: PingFrame) -> tuple[list[Frame], list[Event]]:
        events = self.state_machine.process_input(ConnectionInputs.RECV_PING)
        if "ACK" in frame.flags:
            events.append(PingAckReceived(ping_data=frame.opaque_data))
        else:
            events.append(PingReceived(ping_data=frame.opaque_data))
        return [], events

    def send_goaway(self, code: int, last_stream_id: int, debug: bytes = b"") -> None:
        """Queue a GOAWAY without closing the state machine: streams at or below
        ``last_stream_id`` go on."""
        frame = GoAwayFrame(
            stream_id=0, last_stream_id=last_stream_id, error_code=code, additional_data=debug
        )
        self._prepare_for_sending([frame])

    def send_ping_ack(self, opaque_data: bytes) -> None:
        frame = PingFrame(0)
        frame.flags.add("ACK")
        frame.opaque_data = opaque_data
        self._prepare_for_sending([frame])
