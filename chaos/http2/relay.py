"""One relayed connection: a client's TLS connection to the point, paired with one TLS
connection of the point's to the backend, HTTP/2 frames passed both ways through h2.

Mapping (docs/http2.md says why):

* **streams 1:1**: a stream the client opens as id N is opened upstream as id N. Both are
  client-initiated (odd, increasing), so the ids stay valid on both hops, and GOAWAY
  last-stream-ids and RST_STREAMs need no translation. A stream the point answers itself
  (a fault) is simply skipped upstream, which HTTP/2 allows.
* **flow control end to end**: DATA received on one hop is acknowledged to its sender
  (``acknowledge_received_data``, which lets h2 send WINDOW_UPDATE) only once it has been
  handed to the other hop within that hop's window. So a slow reader on either side stops
  the writer on the other, and what the point holds is bounded by its receive windows
  (:data:`STREAM_WINDOW` a stream, :data:`CONNECTION_WINDOW` a connection, per direction).
* **PINGs end to end**: a PING from either side is sent on to the other and its ACK sent
  back, so a client's keepalive still proves the *backend* alive (a SIGSTOPped backend is
  detected as without the point).
* **GOAWAY**: the backend's is recorded and passed to the client with its code,
  last-stream-id and debug data; the client's is recorded and passed to the backend.
* **settings**: the backend's MAX_CONCURRENT_STREAMS is advertised to the client (unless a
  fault overrides it); everything else is per hop.
* **ends**: the backend closing (or being killed) closes the client's connection; the
  client closing closes the backend's. A backend that cannot be reached or handshaken
  closes the client's connection before any SETTINGS is sent.

Everything runs on the point's event loop; no call here blocks, and every wait is bounded
or cancelled when the connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from h2.config import H2Configuration
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    InformationalResponseReceived,
    PingAckReceived,
    PingReceived,
    RemoteSettingsChanged,
    RequestReceived,
    ResponseReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from hpack import NeverIndexedHeaderTuple

from chaos.history import RPC_TAG

from . import faults as kinds
from .h2conn import RelayConnection

if TYPE_CHECKING:
    from .point import Point

log = logging.getLogger("chaos.http2")

READ_SIZE = 256 * 1024
# Receive windows the point advertises on both hops. Big enough that a 4 MiB message flows
# in a few round trips; small enough that a starved response stalls early (the
# starve_flow_control fault) and that what one connection buffers stays bounded.
STREAM_WINDOW = 256 * 1024
CONNECTION_WINDOW = 1024 * 1024
_DEFAULT_WINDOW = 65535
# What the client may send as headers: the backend enforces its own (smaller) limit.
MAX_HEADER_LIST = 1 << 20
# Until the backend's SETTINGS says otherwise, the client may open this many streams.
UNLIMITED_STREAMS = 2**31 - 1
CONNECT_TIMEOUT_S = 20.0  # gRPC's own minimum connect timeout
_TAG = RPC_TAG.encode()
CLOSE_TIMEOUT_S = 2.0  # to hand what is written to the kernel before a socket is closed


def client_connection() -> RelayConnection:
    """The point's side of the connection to the backend (h2 client side)."""
    return _connection(
        client_side=True,
        settings={
            SettingCodes.ENABLE_PUSH: 0,
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            # No MAX_CONCURRENT_STREAMS (ENABLE_PUSH 0 already forbids the backend to open
            # streams): with 0, h2 took the backend's late trailers on a stream the point
            # had reset and forgotten for a new stream over the limit, and failed the whole
            # connection (tests/test_h2conn.py).
        },
    )


def server_connection(max_streams: int) -> RelayConnection:
    """The point's side of the client's connection (h2 server side)."""
    return _connection(
        client_side=False,
        settings={
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
        },
    )


def _connection(client_side: bool, settings: dict[SettingCodes, int]) -> RelayConnection:
    # No header validation or normalisation on either hop: the point relays, and the two
    # gRPC peers validate what they receive themselves (a malformed request is refused by
    # the backend, its RST_STREAM relayed). Validating here too cost the relay about a
    # tenth of its time per RPC (bench/bench_http2_point.py).
    conn = RelayConnection(
        H2Configuration(
            client_side=client_side,
            header_encoding=None,
            validate_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            normalize_inbound_headers=False,
        )
    )
    # Set before the first SETTINGS frame, so they hold from the start (h2's own defaults
    # would cap inbound streams at 100 until the peer acknowledged a change).
    conn.local_settings = Settings(client=client_side, initial_values=settings)
    conn.decoder.max_header_list_size = settings[SettingCodes.MAX_HEADER_LIST_SIZE]
    conn.initiate_connection()
    conn.increment_flow_control_window(CONNECTION_WINDOW - _DEFAULT_WINDOW)
    return conn


@dataclass
class _Direction:
    """Data waiting to go one way on one stream, and how that way ends."""

    buffer: bytearray = field(default_factory=bytearray)
    end: bool = False  # END_STREAM received: send it once the buffer is out
    trailers: list[Any] | None = None  # ...carried by these trailers
    done: bool = False  # the end has been sent


@dataclass
class _Stream:
    """A stream relayed to the backend. Streams the point answers itself (faults) have
    none: whatever the client sends on them is acknowledged and dropped."""

    sid: int
    mute: bool = False  # headers_then_nothing: nothing after the response headers
    rpc: str | None = None  # the client's RPC_TAG: its RPC's id in the history
    opened_ns: int = 0
    headers_ns: int | None = None  # response headers passed on (committed), not Trailers-Only
    up: _Direction = field(default_factory=_Direction)  # client -> backend
    down: _Direction = field(default_factory=_Direction)  # backend -> client
    withheld: int = 0  # response bytes not acknowledged to the backend (starvation)
    starved: bool = False  # its whole window withheld: counted once


class Relay:
    """One client connection and its backend connection (module docstring)."""

    def __init__(
        self,
        point: Point,
        conn_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ):
        self.point = point
        self.id = conn_id
        self._down_reader = reader
        self._down_writer = writer
        self._up_reader: asyncio.StreamReader | None = None
        self._up_writer: asyncio.StreamWriter | None = None
        self.down: RelayConnection | None = None
        self.up: RelayConnection | None = None
        self.streams: dict[int, _Stream] = {}
        self.highest_stream = 0
        # The last-stream-id of a GOAWAY the point sent the client (newer streams refused).
        self.goaway_last: int | None = None
        self.backend_max_streams = UNLIMITED_STREAMS
        self.closing = False
        self._stop = asyncio.Event()  # close() was called
        self._finished = asyncio.Event()  # both connections are closed
        self._close_reason = "closed by the point"
        self._settings_sent = 0
        self._settings_acked = 0
        self._settings_acked_event = asyncio.Event()
        self._grace: asyncio.TimerHandle | None = None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    # ---------------------------------------------------------------- lifetime

    async def run(self) -> None:
        """Connect upstream, relay until either side ends, close both. Never raises."""
        by, reason = "point", "closed"
        try:
            try:
                await self._connect_upstream()
            except (OSError, ssl.SSLError, TimeoutError) as err:
                self.point.record(
                    "close", conn=self.id, by="server", reason=f"backend unreachable: {err}"
                )
                return
            self.down = server_connection(
                self.point.advertised_max_streams(self.backend_max_streams)
            )
            self._settings_sent = 1  # the initial SETTINGS frame
            self.point.record("open", conn=self.id, peer=self.peer)
            self._flush()
            by, reason = await self._relay()
        except asyncio.CancelledError:
            by, reason = "point", "point closed"
            raise
        finally:
            if self.down is not None:  # reported before the sockets' closing is awaited
                for stream in self.streams.values():
                    self._lost(stream, f"connection closed by the {by}: {reason}")
            await self._shutdown()
            if self.down is not None:
                self.point.record("close", conn=self.id, by=by, reason=reason)
            self._finished.set()

    async def _connect_upstream(self) -> None:
        host, port = self.point.upstream
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=self.point.upstream_tls,
                server_hostname=self.point.server_name,
                ssl_handshake_timeout=CONNECT_TIMEOUT_S,
            ),
            CONNECT_TIMEOUT_S,
        )
        self._up_reader, self._up_writer = reader, writer
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            writer.close()
            raise ssl.SSLError("the backend did not negotiate ALPN h2")
        self.up = client_connection()

    async def _relay(self) -> tuple[str, str]:
        """Run both read loops; returns who ended the connection and why."""
        assert self._up_reader is not None
        down = asyncio.create_task(self._read(self._down_reader, downstream=True))
        up = asyncio.create_task(self._read(self._up_reader, downstream=False))
        closed = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({down, up, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (down, up, closed):
                task.cancel()
            await asyncio.gather(down, up, closed, return_exceptions=True)
        if closed in done:
            return "point", self._close_reason
        task = down if down in done else up
        if task.cancelled():
            return "point", "cancelled"
        error = task.exception()
        who = "client" if task is down else "server"
        if error is not None:
            return who, f"{type(error).__name__}: {error}"
        return who, "connection closed"

    def close(self, reason: str) -> None:
        """Close both connections now (from the point's loop)."""
        if not self._stop.is_set():
            self._close_reason = reason
            self._stop.set()

    async def wait_closed(self) -> None:
        await self._finished.wait()

    async def _shutdown(self) -> None:
        self.closing = True
        if self._grace is not None:
            self._grace.cancel()
        writers = [w for w in (self._down_writer, self._up_writer) if w is not None]
        await asyncio.gather(*(_close(writer) for writer in writers), return_exceptions=True)

    async def _read(self, reader: asyncio.StreamReader, downstream: bool) -> None:
        conn = self.down if downstream else self.up
        assert conn is not None
        handle = self._on_client_event if downstream else self._on_backend_event
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except ProtocolError:
                self._flush()  # h2 queued a GOAWAY naming the error
                raise
            for event in events:
                try:
                    handle(event)
                except StreamClosedError as err:
                    # The other hop closed the stream meanwhile (a reset crossing a frame).
                    self._drop(err.stream_id, reset_code=None)
                except H2Error as err:
                    sid = getattr(event, "stream_id", 0)
                    if not sid:
                        raise
                    log.warning("stream %d of connection %d reset: %s", sid, self.id, err)
                    self._drop(sid, reset_code=ErrorCodes.INTERNAL_ERROR)
            self._flush()
            await self._drain()

    def _flush(self) -> None:
        if self.down is not None:
            data = self.down.data_to_send()
            if data:
                self._down_writer.write(data)
        if self.up is not None and self._up_writer is not None:
            data = self.up.data_to_send()
            if data:
                self._up_writer.write(data)

    async def _drain(self) -> None:
        # Back-pressure at the socket: a peer that does not read stops us reading the other.
        await self._down_writer.drain()
        if self._up_writer is not None:
            await self._up_writer.drain()

    # ---------------------------------------------------------------- the client's frames

    def _on_client_event(self, event: Any) -> None:
        assert self.down is not None and self.up is not None
        if isinstance(event, RequestReceived):
            self._open(event.stream_id, event.headers, event.stream_ended is not None)
        elif isinstance(event, DataReceived):
            self._data(event, upward=True)
        elif isinstance(event, TrailersReceived):
            self._end(event.stream_id, upward=True, trailers=event.headers)
        elif isinstance(event, StreamEnded):
            self._end(event.stream_id, upward=True)
        elif isinstance(event, StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                self._release(stream)
                self._reset(self.up, event.stream_id, event.error_code)
        elif isinstance(event, WindowUpdated):
            self._pump_all(event.stream_id, upward=False)
        elif isinstance(event, PingReceived):
            self.point.count("client_pings")
            self.up.ping(event.ping_data)
        elif isinstance(event, PingAckReceived):
            self.up.send_ping_ack(event.ping_data)
        elif isinstance(event, SettingsAcknowledged):
            self._settings_acked += 1
            self._settings_acked_event.set()
        elif isinstance(event, ConnectionTerminated):
            self._goaway_event("client", event)
            self.up.send_goaway(
                int(event.error_code or 0), event.last_stream_id or 0, event.additional_data or b""
            )

    def _open(self, sid: int, headers: list[Any], ended: bool) -> None:
        assert self.down is not None and self.up is not None
        self.highest_stream = max(self.highest_stream, sid)
        if self.goaway_last is not None and sid > self.goaway_last:
            # After a GOAWAY: never processed, the client may retry it.
            self.down.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        fault = self.point.take_stream_fault()
        if fault is not None and fault.kind == kinds.RST_STREAM:
            self.down.reset_stream(sid, kinds.error_code(fault.code))
            return
        if fault is not None and fault.kind == kinds.TRAILERS_ONLY:
            self.down.send_headers(sid, trailers_only(fault.status, fault.message), end_stream=True)
            return
        rpc, headers = _tag_never_indexed(headers)
        try:
            self.up.send_headers(sid, headers, end_stream=ended)
        except H2Error as err:  # the backend's stream limit, or a connection it is closing
            log.debug("stream %d refused: %s", sid, err)
            self.down.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        stream = _Stream(
            sid,
            mute=fault is not None and fault.kind == kinds.HEADERS_THEN_NOTHING,
            rpc=rpc,
            opened_ns=now_ns(),
        )
        stream.up.done = ended
        self.streams[sid] = stream
        self.point.stream_opened(len(self.streams))

    # ---------------------------------------------------------------- the backend's frames

    def _on_backend_event(self, event: Any) -> None:
        assert self.down is not None and self.up is not None
        if isinstance(event, ResponseReceived | InformationalResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                return
            ended = getattr(event, "stream_ended", None) is not None and not stream.mute
            self.down.send_headers(event.stream_id, event.headers, end_stream=ended)
            if not ended and isinstance(event, ResponseReceived):
                stream.headers_ns = now_ns()
                self.point.count("responses_committed")
            if ended:
                stream.down.done = stream.down.end = True
                self._forget(stream)
            elif stream.mute:
                self.point.count("responses_muted")
        elif isinstance(event, DataReceived):
            self._data(event, upward=False)
        elif isinstance(event, TrailersReceived):
            self._end(event.stream_id, upward=False, trailers=event.headers)
        elif isinstance(event, StreamEnded):
            self._end(event.stream_id, upward=False)
        elif isinstance(event, StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                self._release(stream)
                self._reset(self.down, event.stream_id, event.error_code)
                self._lost(stream, f"reset by the server ({_code_name(event.error_code)})")
        elif isinstance(event, WindowUpdated):
            self._pump_all(event.stream_id, upward=True)
        elif isinstance(event, RemoteSettingsChanged):
            changed = event.changed_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
            if changed is not None:
                self.backend_max_streams = changed.new_value
                self.update_max_streams()
        elif isinstance(event, PingReceived):
            self.down.ping(event.ping_data)
        elif isinstance(event, PingAckReceived):
            if self.point.withhold_ping_acks:
                self.point.count("ping_acks_withheld")
            else:
                self.point.count("ping_acks_passed")
                self.down.send_ping_ack(event.ping_data)
        elif isinstance(event, ConnectionTerminated):
            self._goaway_event("server", event)
            last = event.last_stream_id or 0
            self.down.send_goaway(int(event.error_code or 0), last, event.additional_data or b"")
            self.goaway_last = last if self.goaway_last is None else min(last, self.goaway_last)
            # Streams above it were never processed: the client retries them on its own.
            for sid in [sid for sid in self.streams if sid > last]:
                self._release(self.streams.pop(sid))
            if event.error_code:  # an error GOAWAY ends every stream at once (gRPC's rule)
                for stream in self.streams.values():
                    self._lost(stream, f"GOAWAY {_code_name(event.error_code)} from the server")
                    stream.headers_ns = None  # reported once

    # ---------------------------------------------------------------- data and ends

    def _data(self, event: DataReceived, upward: bool) -> None:
        src = self.down if upward else self.up
        assert src is not None
        sid = event.stream_id
        data = event.data or b""
        padding = (event.flow_controlled_length or 0) - len(data)
        if padding:
            src.acknowledge_received_data(padding, sid)
        stream = self.streams.get(sid)
        if stream is None or (not upward and stream.mute):
            # Nobody will read it: give the window back at once.
            if data:
                src.acknowledge_received_data(len(data), sid)
            return
        direction = stream.up if upward else stream.down
        direction.buffer += data
        self._pump(stream, upward)

    def _end(self, sid: int, upward: bool, trailers: list[Any] | None = None) -> None:
        stream = self.streams.get(sid)
        if stream is None or (not upward and stream.mute):
            return
        direction = stream.up if upward else stream.down
        if direction.done or direction.end:
            return  # already ended with its headers
        direction.end = True
        direction.trailers = trailers
        self._pump(stream, upward)

    def _pump(self, stream: _Stream, upward: bool) -> None:
        """Send what waits in one direction of a stream, within the receiver's window."""
        src, dst = (self.down, self.up) if upward else (self.up, self.down)
        assert src is not None and dst is not None
        direction = stream.up if upward else stream.down
        sid = stream.sid
        buffer = direction.buffer
        while buffer:
            size = min(len(buffer), dst.local_flow_control_window(sid), dst.max_outbound_frame_size)
            if size <= 0:
                return  # the receiver's window is shut: a WINDOW_UPDATE resumes (_pump_all)
            dst.send_data(sid, bytes(buffer[:size]))
            del buffer[:size]
            if not upward and self.point.starving:
                stream.withheld += size  # no WINDOW_UPDATE to the backend
                if stream.withheld >= STREAM_WINDOW and not stream.starved:
                    stream.starved = True  # the backend has no credit left on it
                    self.point.count("responses_starved")
            else:
                src.acknowledge_received_data(size, sid)
        if direction.end and not direction.done:
            direction.done = True
            if direction.trailers is not None:
                dst.send_headers(sid, direction.trailers, end_stream=True)
            else:
                dst.end_stream(sid)
            self._forget(stream)

    def _pump_all(self, sid: int, upward: bool) -> None:
        targets = list(self.streams.values()) if sid == 0 else [self.streams.get(sid)]
        for stream in targets:
            if stream is None or (not upward and stream.mute):
                continue
            try:
                self._pump(stream, upward)
            except StreamClosedError:
                self._drop(stream.sid, reset_code=None)

    def release_withheld(self) -> None:
        """The starvation ended: acknowledge what was held back (WINDOW_UPDATEs go out)."""
        assert self.up is not None
        for stream in self.streams.values():
            if stream.withheld:
                self.up.acknowledge_received_data(stream.withheld, stream.sid)
                stream.withheld = 0
        self._flush()

    def _forget(self, stream: _Stream) -> None:
        """Both ends were sent on: the stream needs no more state here."""
        if stream.up.done and stream.down.done:
            self.streams.pop(stream.sid, None)
            self._release(stream)

    def _release(self, stream: _Stream) -> None:
        """Give back the connection-level window of bytes nobody will send on."""
        assert self.down is not None and self.up is not None
        if stream.up.buffer:
            self.down.acknowledge_received_data(len(stream.up.buffer), stream.sid)
            stream.up.buffer.clear()
        held = len(stream.down.buffer) + stream.withheld
        if held:
            self.up.acknowledge_received_data(held, stream.sid)
            stream.down.buffer.clear()
            stream.withheld = 0

    def _drop(self, sid: int, reset_code: int | None) -> None:
        stream = self.streams.pop(sid, None)
        if stream is None:
            return
        self._release(stream)
        if reset_code is not None:
            assert self.down is not None
            self._reset(self.down, sid, reset_code)
        assert self.up is not None
        self._reset(self.up, sid, ErrorCodes.CANCEL)

    @staticmethod
    def _reset(conn: RelayConnection, sid: int, code: int) -> None:
        with contextlib.suppress(H2Error):  # already closed on that hop
            conn.reset_stream(sid, code)

    def _lost(self, stream: _Stream, why: str) -> None:
        """A stream whose response headers reached the client ended without its trailers:
        a committed RPC lost (recorded only for an RPC the client tagged with RPC_TAG)."""
        if stream.headers_ns is None or stream.rpc is None or stream.down.done:
            return
        self.point.record(
            "committed",
            conn=self.id,
            stream=stream.sid,
            rpc=stream.rpc,
            opened_ns=stream.opened_ns,
            headers_ns=stream.headers_ns,
            why=why,
        )

    # ---------------------------------------------------------------- faults

    def _goaway_event(self, by: str, event: ConnectionTerminated) -> None:
        code = event.error_code
        self.point.record(
            "goaway",
            conn=self.id,
            by=by,
            code=code.name if isinstance(code, ErrorCodes) else int(code or 0),
            last_stream_id=event.last_stream_id,
            debug=(event.additional_data or b"").decode("utf-8", "replace"),
        )

    def goaway(self, code: int, last_stream_id: int | None, debug: bytes, grace_s: float) -> int:
        """Send the client a GOAWAY (graceful: streams at or below its last-stream-id go on)
        and close both connections after ``grace_s``. Streams above it are abandoned here
        (cancelled at the backend, never answered: the client retries them). Returns the
        last-stream-id sent."""
        assert self.down is not None
        last = self.highest_stream if last_stream_id is None else last_stream_id
        self.down.send_goaway(code, last, debug)
        self.goaway_last = last if self.goaway_last is None else min(last, self.goaway_last)
        for sid in [sid for sid in self.streams if sid > last]:
            self._release(self.streams.pop(sid))
            assert self.up is not None
            self._reset(self.up, sid, ErrorCodes.CANCEL)
        self._flush()
        self.point.record(
            "goaway",
            conn=self.id,
            by="point",
            code=ErrorCodes(code).name,
            last_stream_id=last,
            debug=debug.decode("utf-8", "replace"),
        )
        if self._grace is None:
            self._grace = asyncio.get_running_loop().call_later(
                grace_s, self.close, f"GOAWAY grace of {grace_s * 1000:g} ms over"
            )
        return last

    def in_flight(self) -> list[int]:
        """Ids of the streams relayed to the backend and not finished."""
        return sorted(self.streams)

    def update_max_streams(self) -> None:
        """Advertise the MAX_CONCURRENT_STREAMS in force (a fault's, or the backend's)."""
        if self.down is None or self.closing:
            return
        value = self.point.advertised_max_streams(self.backend_max_streams)
        if self.down.local_settings.max_concurrent_streams == value:
            return
        self.down.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: value})
        self._settings_sent += 1
        self._flush()

    async def settings_acknowledged(self, timeout: float) -> bool:
        """Whether the client acknowledged every SETTINGS sent so far, within ``timeout``."""
        target = self._settings_sent
        deadline = asyncio.get_running_loop().time() + timeout
        while self._settings_acked < target and not self._stop.is_set():
            self._settings_acked_event.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._settings_acked_event.wait(), left)
            except TimeoutError:
                return False
        return self._settings_acked >= target


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close a connection once what was written to it is out (a last GOAWAY, an answer).

    No TLS close_notify exchange: a gRPC peer never answers one before closing, so waiting
    for it would hold every close for the whole timeout; HTTP/2 has its own framing, so an
    EOF without close_notify truncates nothing a peer could mistake for complete.
    """
    transport = writer.transport
    try:
        if not transport.is_closing() and transport.get_write_buffer_size():
            transport.set_write_buffer_limits(high=0)  # drain() waits for an empty buffer
            await asyncio.wait_for(writer.drain(), CLOSE_TIMEOUT_S)
    except (Exception, asyncio.CancelledError):
        pass  # a peer gone or not reading: close anyway
    finally:
        transport.abort()


def _tag_never_indexed(headers: list[Any]) -> tuple[str | None, list[Any]]:
    """The request's RPC_TAG value (its RPC's id in the history), if it carries one, and
    the headers to send on, the tag marked never-indexed.

    Every RPC's tag is new, so indexing it would fill the backend hop's HPACK table with
    entries used once, each evicting one that repeats (measured: the encoder's table
    search became the point's largest cost per tagged RPC)."""
    for n, (name, value) in enumerate(headers):
        if name == _TAG:
            headers = list(headers)
            headers[n] = NeverIndexedHeaderTuple(name, value)
            return value.decode("ascii", "replace"), headers
    return None, headers


def _code_name(code: Any) -> str:
    return code.name if isinstance(code, ErrorCodes) else str(code)


def trailers_only(status: int, message: str) -> list[tuple[bytes, bytes]]:
    """A gRPC Trailers-Only response: one HEADERS frame with the status, END_STREAM set."""
    headers = [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", str(status).encode()),
    ]
    if message:
        # gRPC percent-encodes grpc-message (PROTOCOL-HTTP2.md): unreserved printable ASCII
        # stays as is.
        safe = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
        headers.append((b"grpc-message", quote(message, safe=safe).encode()))
    return headers


def now_ns() -> int:
    """The history's clock (CLOCK_MONOTONIC, shared by every process on the machine)."""
    return time.monotonic_ns()
