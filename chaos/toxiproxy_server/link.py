"""One proxied connection: the client's socket, the upstream's, and a link each way.

    client ─► Side ─data_received─► Link "upstream" ──────write──► Side ─► upstream server
    client ◄─ Side ◄──────write──── Link "downstream" ◄─data_received─ Side ◄─ upstream server

A link copies one direction. Without toxics it is the direct path: each read is written
to the other socket at once, in the same callback (no task, no extra copy), and the source is
paused while the destination's write buffer is full. With toxics the reads go through a
Pipeline (pipeline.py) and its writer task. When a link's source ends (EOF or error) its
chain drains and its destination is closed - fully, not shut down, so half-close is not
preserved (spec §5.2) - which ends the other link's source, and that link closes the
first socket in turn. Stopping the proxy aborts both sockets at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from . import goaddr
from .pipeline import Pipeline
from .stream import DOWNSTREAM, UPSTREAM

log = logging.getLogger("toxiproxy.proxy")

WRITE_HIGH_WATER = 256 * 1024  # bytes buffered for a socket before its source pauses
WRITE_LOW_WATER = 64 * 1024
_LINGER_ZERO = struct.pack("ii", 1, 0)  # close() sends RST instead of FIN


class Side(asyncio.Protocol):
    """One socket of a connection, forwarding its events to the links it belongs to."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.source_of: Link | None = None  # the link that reads this socket
        self.dest_of: Link | None = None  # the link that writes this socket
        self.early: list[bytes] = []  # bytes read before the links existed
        self.eof = False
        self.lost = False
        self.reading = True

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        # (uvloop binds this method once per connection: dispatch here, don't rebind.)
        link = self.source_of
        if link is not None:
            link.feed(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        if self.source_of is not None:
            self.source_of.source_ended()
        else:
            self.eof = True
        return True  # keep the socket open for the other direction; the link closes it

    def connection_lost(self, exc) -> None:
        self.lost = True
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.dest_of is not None:
            self.dest_of.dest_paused()

    def resume_writing(self) -> None:
        if self.dest_of is not None:
            self.dest_of.dest_resumed()

    def set_reading(self, wanted: bool) -> None:
        transport = self.transport
        assert transport is not None  # connection_made came first: it calls this
        if wanted == self.reading or self.lost or transport.is_closing():
            return
        self.reading = wanted
        if wanted:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def set_linger_zero(self) -> None:
        assert self.transport is not None  # only sides of a connection with links
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)


class Link:
    """One direction of one connection: source socket -> (toxic chain) -> destination."""

    def __init__(self, conn: Connection, direction: str, source: Side, dest: Side):
        self.conn = conn
        self.direction = direction
        self.source, self.dest = source, dest
        source.source_of = self
        dest.dest_of = self
        # Links are made once both sockets are connected.
        assert dest.transport is not None
        self.dest_transport: asyncio.Transport = dest.transport
        self.pipeline: Pipeline | None = None
        self.received = 0
        self.sent = 0
        self.source_done = False
        self.dest_lost = dest.lost  # it may have closed while the connection was set up
        self.dest_blocked = False
        self._writable: asyncio.Future | None = None
        self.labels = (direction, conn.proxy.name, conn.proxy.listen, conn.proxy.upstream)

    def start(self, chain: list) -> None:
        """Begin with the proxy's chain for this direction (index 0 is the hidden noop).

        Both links of a connection are made and started in one callback, so no socket
        event can reach a link that has not started.
        """
        if len(chain) > 1:
            self.pipeline = Pipeline(self, chain)
        early, self.source.early = self.source.early, []
        for data in early:
            self.feed(data)
        if self.source.eof or self.source.lost:
            self.source_ended()
        self.update_reading()

    # ---- the data path

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.pipeline is None:
            if not self.dest_lost:
                self.dest_transport.write(data)
                self.sent += len(data)
        else:
            self.pipeline.feed(data)

    def write(self, data: bytes) -> None:
        """Write what the chain released (the pipeline's writer)."""
        if not self.dest_lost:
            self.dest_transport.write(data)
            self.sent += len(data)

    def source_ended(self) -> None:
        if self.source_done:
            return
        self.source_done = True
        self.conn.proxy.count_received(self.labels, self.received)
        if self.pipeline is None:
            self.output_ended()
        else:
            self.pipeline.end_of_input()

    def output_ended(self) -> None:
        """Everything this link will ever write is written: close the destination."""
        if not self.dest_lost:
            self.conn.proxy.count_sent(self.labels, self.sent)
            self.dest_transport.close()

    # ---- flow control

    def update_reading(self) -> None:
        if self.source_done:
            return
        pipeline = self.pipeline
        blocked = self.dest_blocked if pipeline is None else pipeline.head.full()
        self.source.set_reading(not blocked)

    def dest_paused(self) -> None:
        self.dest_blocked = True
        self.update_reading()

    def dest_resumed(self) -> None:
        self.dest_blocked = False
        self._wake_writer()
        self.update_reading()

    async def writable(self) -> None:
        """Wait until the destination takes data again (for the pipeline's writer)."""
        if self.dest_blocked and not self.dest_lost:
            self._writable = asyncio.get_running_loop().create_future()
            await self._writable

    def _wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # ---- lifecycle

    def dest_gone(self) -> None:
        """The destination socket closed: nothing more can be delivered."""
        self.dest_lost = True
        self._wake_writer()
        self.stop_pipeline()

    def stop_pipeline(self) -> None:
        if self.pipeline is not None:
            self.pipeline.cancel()
            self.pipeline = None

    def pipeline_done(self, pipeline: Pipeline) -> None:
        """The chain lost its last toxic and drained: back to the direct path."""
        if self.pipeline is pipeline:
            self.pipeline = None
            self.update_reading()

    # ---- chain changes (called by the proxy's ToxicCollection, one at a time)

    async def add_toxic(self, wrapper, previous, noop) -> None:
        if self.pipeline is None:
            if not (self.dest_lost or self.source_done or self.conn.finished):
                self.pipeline = Pipeline(self, [noop, wrapper])
            return
        await self._change(Pipeline.add, wrapper, previous)

    async def update_toxic(self, index: int, wrapper) -> None:
        await self._change(Pipeline.update, index, wrapper)

    async def remove_toxic(self, index: int, wrapper, previous) -> None:
        await self._change(Pipeline.remove, index, wrapper, previous)

    async def _change(self, operation, *args) -> None:
        pipeline = self.pipeline
        if pipeline is None or pipeline.dead:
            return
        pipeline.busy += 1
        try:
            await operation(pipeline, *args)
        finally:
            pipeline.busy -= 1
            pipeline.changed()


def upstream_address(upstream: str) -> tuple[str, int]:
    """Host and port to dial for an upstream string, with Go's parsing rules.

    The string is parsed at each dial, never at API time (spec §3.1); an empty host means
    this machine, as for Go's dialer.
    """
    host, service = goaddr.split_host_port(upstream)
    return host or "localhost", goaddr.lookup_port(service)


class Connection:
    """An accepted client, its upstream socket, and the two links between them."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.client = Side(self)
        self.upstream: Side | None = None
        self.links: tuple[Link, ...] = ()
        self.dial: asyncio.Task | None = None
        self.finished = False

    def side_made(self, side: Side) -> None:
        if side is self.client:
            side.set_reading(False)  # nothing is read until the upstream answers
            self.proxy.connections.add(self)
            self.dial = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        dialed: list[Side] = []

        def side() -> Side:
            dialed.append(Side(self))
            return dialed[0]

        try:
            host, port = upstream_address(self.proxy.upstream)
            await loop.create_connection(side, host, port)
        except (OSError, goaddr.GoNetError) as err:
            log.warning(
                "proxy %s: unable to open connection to upstream %s: %s",
                self.proxy.name,
                self.proxy.upstream,
                err,
            )
            assert self.client.transport is not None  # connected: it started the dial
            self.client.transport.close()  # the client just sees EOF (spec §5.2)
            return
        except asyncio.CancelledError:  # the client left or the proxy stopped
            if dialed and dialed[0].transport is not None and not dialed[0].lost:
                dialed[0].transport.abort()
            raise
        upstream = dialed[0]
        assert upstream.transport is not None  # create_connection returned: it is connected
        if self.client.lost or self.finished:
            upstream.transport.abort()
            return
        self.upstream = upstream
        self._start_links(upstream)

    def _start_links(self, upstream: Side) -> None:
        up = Link(self, UPSTREAM, self.client, upstream)
        down = Link(self, DOWNSTREAM, upstream, self.client)
        self.links = (up, down)
        self.proxy.toxics.start_links(self, up, down)
        if all(s.lost for s in self.sides()):  # both closed while the links were made
            self._finish()

    def sides(self) -> tuple[Side, ...]:
        return (self.client,) if self.upstream is None else (self.client, self.upstream)

    def side_lost(self, side: Side) -> None:
        if not self.links:  # still dialing; an upstream lost this early is seen at start
            if side is self.client:
                if self.dial is not None and not self.dial.done():
                    self.dial.cancel()
                self._finish()
            return
        source_of, dest_of = side.source_of, side.dest_of
        assert source_of is not None and dest_of is not None  # each side is in both links
        source_of.source_ended()
        dest_of.dest_gone()
        if all(s.lost for s in self.sides()):
            self._finish()

    def abort(self) -> None:
        """Close both sockets now (the proxy stops); peers see EOF, or RST with linger 0."""
        if self.dial is not None and not self.dial.done():
            self.dial.cancel()
        for side in self.sides():
            if side.transport is not None and not side.lost:
                side.transport.abort()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.proxy.connections.discard(self)
        for link in self.links:
            link.stop_pipeline()
            self.proxy.toxics.forget(link)
