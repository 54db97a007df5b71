"""The fleet DNS server's serving thread: UDP datagrams and TCP connections on one port,
from one selector loop (fleet/dns.py owns the records, the answers and the query log).

    selector --UDP datagram--> server._answer(data, "udp") --> one reply datagram
             --TCP accept----> _TcpConnection (2-byte length framing, RFC 7766): queries
                               answered in order, partial reads kept, idle ones closed
             --wake byte-----> stop

Bounded: at most MAX_TCP_CONNECTIONS connections, one partial query and one unsent answer
each; a connection that completes no query within the idle timeout is closed.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import struct
import time

from fleet import ports

log = logging.getLogger("fleet.dns")

# Largest datagram read: the largest EDNS query this server invites. Real queries are
# well under 512 bytes; a longer one is truncated by the kernel and then malformed.
RECV_SIZE = 4096
# A fleet's clients are a few channels, each with at most one TCP query in flight per
# name; 64 is far above that and bounds what a runaway client can hold (64 x ~128 KiB).
MAX_TCP_CONNECTIONS = 64
# Port 0 lets the kernel pick a UDP port; its TCP twin may be taken, so pick again, a
# bounded number of times (each try fails only when another socket holds that TCP port).
PORT_TRIES = 20
# The largest DNS message (RFC 1035: TCP's 2-byte length).
MAX_MESSAGE = 65535


class ServingLoop:
    """One selector over the UDP socket, the TCP listener, every TCP connection and a wake
    pipe: answers datagrams, accepts and serves connections, closes idle ones.

    Owns its sockets; ``run`` (the serving thread) closes the TCP connections when it
    returns, ``close`` (after the thread ended) the rest.
    """

    def __init__(self, server, udp: socket.socket, tcp: socket.socket):
        self._server = server
        self._udp, self._tcp = udp, tcp
        self._wake_reader, self._wake_writer = socket.socketpair()
        for sock in (udp, tcp):
            sock.setblocking(False)
        self._connections: dict[socket.socket, _TcpConnection] = {}
        self._selector: selectors.BaseSelector | None = None  # while run() runs

    def wake(self) -> None:
        """Make ``run`` return (from any thread)."""
        self._wake_writer.send(b"x")

    def close(self) -> None:
        for sock in (self._udp, self._tcp, self._wake_reader, self._wake_writer):
            sock.close()

    def run(self) -> None:
        """Serve until woken."""
        with selectors.DefaultSelector() as selector:
            self._selector = selector
            for sock in (self._udp, self._tcp, self._wake_reader):
                selector.register(sock, selectors.EVENT_READ)
            try:
                while self._serve_ready(selector.select(self._next_timeout())):
                    self._close_idle()
            finally:
                for connection in list(self._connections.values()):
                    self._drop(connection)

    def _serve_ready(self, events) -> bool:
        """Handle what the selector reported; False when woken to stop."""
        for key, mask in events:
            if key.fileobj is self._wake_reader:
                return False
            try:
                if key.fileobj is self._udp:
                    self._answer_datagram()
                elif key.fileobj is self._tcp:
                    self._accept()
                else:
                    self._serve_connection(self._connections[key.fileobj], mask)
            except Exception:  # one bad query must not silence the fleet's DNS
                log.exception(
                    "DNS server %s: failed to serve %s", self._server.address, key.fileobj
                )
                if key.fileobj in self._connections:
                    self._drop(self._connections[key.fileobj])
        return True

    # -- UDP --

    def _answer_datagram(self) -> None:
        try:
            data, peer = self._udp.recvfrom(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:  # e.g. an ICMP error queued for an earlier reply
            log.debug("DNS server %s: recvfrom: %s", self._server.address, error)
            return
        reply = self._server._answer(data, "udp")
        if reply is None:
            return
        try:
            self._udp.sendto(reply, peer)
        except OSError as error:
            log.warning("DNS server %s: could not answer %s: %s", self._server.address, peer, error)

    # -- TCP --

    def _accept(self) -> None:
        # One accept per readiness event: a flood is taken in turn with everything else.
        try:
            sock, peer = self._tcp.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        if len(self._connections) >= MAX_TCP_CONNECTIONS:
            log.warning(
                "DNS server %s: closed a TCP connection from %s: %d are open, the most "
                "it serves at once",
                self._server.address,
                peer,
                MAX_TCP_CONNECTIONS,
            )
            sock.close()
            return
        sock.setblocking(False)
        connection = _TcpConnection(sock, self._server.tcp_idle_timeout)
        self._connections[sock] = connection
        self._serving_selector().register(sock, selectors.EVENT_READ)

    def _serve_connection(self, connection: _TcpConnection, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            connection.flush()
        elif mask & selectors.EVENT_READ:
            connection.receive()
        while not connection.pending_output and (frame := connection.next_query()) is not None:
            reply = self._server._answer(frame, "tcp")
            if reply is None:  # not DNS: nothing sensible can follow on this stream
                connection.done = True
                break
            connection.send(reply)
        if connection.done:
            self._drop(connection)
        else:
            events = selectors.EVENT_WRITE if connection.pending_output else selectors.EVENT_READ
            self._serving_selector().modify(connection.sock, events)

    def _drop(self, connection: _TcpConnection) -> None:
        self._serving_selector().unregister(connection.sock)
        connection.sock.close()
        del self._connections[connection.sock]

    def _serving_selector(self) -> selectors.BaseSelector:
        """The selector of ``run``: connections exist only while it runs."""
        assert self._selector is not None, "connections are served only while run() runs"
        return self._selector

    def _next_timeout(self) -> float | None:
        """Seconds until the first connection's idle deadline (None: no connection)."""
        if not self._connections:
            return None
        first = min(c.deadline for c in self._connections.values())
        return max(0.0, first - time.monotonic())

    def _close_idle(self) -> None:
        now = time.monotonic()
        for connection in [c for c in self._connections.values() if c.deadline <= now]:
            log.debug("DNS server %s: closed an idle TCP connection", self._server.address)
            self._drop(connection)


class _TcpConnection:
    """One client's TCP stream: length-prefixed queries in, length-prefixed answers out.

    Bounded: ``inbox`` never holds more than one whole message (the loop takes every
    complete query before reading again), ``outbox`` at most one answer (the loop answers
    the next query only once it is sent). ``deadline`` moves on each answered query.

    So the client's EOF (a close, or a half-close after its last query) is read only once
    every query before it has been answered and sent: EOF means done.
    """

    def __init__(self, sock: socket.socket, idle_timeout: float):
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.idle_timeout = idle_timeout
        self.deadline = time.monotonic() + idle_timeout
        self.done = False  # EOF, a framing error or a failed send: close it

    @property
    def pending_output(self) -> bool:
        return bool(self.outbox)

    def receive(self) -> None:
        room = 2 + MAX_MESSAGE - len(self.inbox)  # > 0: a whole message is taken at once
        try:
            data = self.sock.recv(room)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.done = True
            return
        self.done = not data
        self.inbox += data

    def next_query(self) -> bytes | None:
        """The next complete query (its length prefix removed), or None."""
        length = self._frame_length()
        if length is None:
            return None
        if length == 0:  # no DNS message is empty: the stream is not DNS
            self.done = True
            return None
        query = bytes(self.inbox[2 : 2 + length])
        del self.inbox[: 2 + length]
        self.deadline = time.monotonic() + self.idle_timeout
        return query

    def _frame_length(self) -> int | None:
        """The length of the complete message at the head of ``inbox``, None if incomplete."""
        if len(self.inbox) < 2:
            return None
        length = struct.unpack_from("!H", self.inbox)[0]
        return length if len(self.inbox) >= 2 + length else None

    def send(self, reply: bytes) -> None:
        self.outbox += struct.pack("!H", len(reply)) + reply
        self.flush()

    def flush(self) -> None:
        try:
            sent = self.sock.send(self.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client went away; nothing to deliver to
            self.done = True
            return
        del self.outbox[:sent]


# -- sockets --------------------------------------------------------------------------


def bind_both(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP socket and a listening TCP socket on the same (host, port).

    Port 0: the kernel picks a free UDP port; when its TCP twin is taken, both are
    released and another is picked, at most PORT_TRIES times.
    """
    if port:
        udp = _bind(host, port, socket.SOCK_DGRAM)
        try:
            return udp, _bind(host, port, socket.SOCK_STREAM)
        except BaseException:
            udp.close()
            raise
    for _ in range(PORT_TRIES):
        udp = _bind(host, 0, socket.SOCK_DGRAM)
        try:
            return udp, _bind(host, udp.getsockname()[1], socket.SOCK_STREAM)
        except OSError as error:
            udp.close()
            if error.errno != errno.EADDRINUSE:
                raise
    raise OSError(
        errno.EADDRINUSE,
        f"no port on {host} was free for both UDP and TCP in "
        f"{PORT_TRIES} tries; the DNS server needs one port for both (free some "
        f"ports on {host})",
    )


def _bind(host: str, port: int, kind: int) -> socket.socket:
    """A UDP socket bound to, or a TCP socket listening on, (host, port); an error names
    who holds a taken port.

    SO_REUSEADDR for TCP only: it lets a restart bind while connections this server closed
    linger in TIME_WAIT, but never lets two listeners share a port. On Linux it would let
    two UDP sockets share the port silently.
    """
    sock = socket.socket(socket.AF_INET, kind)
    protocol = "udp" if kind == socket.SOCK_DGRAM else "tcp"
    try:
        if protocol == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if protocol == "tcp":
            sock.listen(MAX_TCP_CONNECTIONS)
    except OSError as error:
        sock.close()
        if error.errno != errno.EADDRINUSE:
            raise
        owners = ports.pids_listening(host, port, protocol=protocol)
        owner = owners[0] if owners else None
        holder = (
            "another socket (owner not found)"
            if owner is None
            else f"pid {owner}{' (this process)' if owner == os.getpid() else ''}"
        )
        raise OSError(
            errno.EADDRINUSE,
            f"{protocol.upper()} port {port} on {host} is taken by "
            f"{holder}; the DNS server cannot serve there",
        ) from None
    return sock
