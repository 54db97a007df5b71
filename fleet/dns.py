"""The fleet's DNS server: A records for the fleet name on loopback UDP, changeable at run time.

Clients reach the fleet as ``dns://127.0.0.1:<port>/greeter.example.com:<P>``; gRPC's
c-ares resolver sends its queries here::

    grpc channel (c-ares) --UDP--> DnsServer thread --> records: name -> [ip, ...]
                                        |
                                        +--> query log (DnsQuery: when, name, type, answer)

Answers:
    known name, A          NOERROR with one A record per ip (possibly none)
    known name, other type NOERROR, no answers (AAAA, TXT, SRV: c-ares asks these too,
                           and a fast empty answer keeps it from waiting on a timeout)
    unknown name           NXDOMAIN (set_nxdomain makes a known name unknown)

Scenarios read the log to see when a client re-resolved (``wait_for_query``).

Limits: UDP only, no TCP fallback, so a name holds at most MAX_RECORDS addresses (what
fits a plain 512-byte DNS answer). Loopback only. One question per query (the first).
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import logging
import os
import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSRecord

from fleet import ports

__all__ = ["DnsQuery", "DnsServer", "MAX_RECORDS"]

log = logging.getLogger(__name__)

# A plain DNS answer over UDP is at most 512 bytes: 12 header + the question (a name
# like greeter.example.com takes ~25) + 16 per compressed A record leaves room for 29.
MAX_RECORDS = 29
# Enough for hours of a busy scenario's re-resolutions while bounding memory.
QUERY_LOG_SIZE = 100_000
# Largest datagram read; real queries are well under 512 bytes.
_RECV_SIZE = 4096
# How long stop() waits for the serving thread; it wakes at once, this only bounds a bug.
_JOIN_TIMEOUT_S = 5.0
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


@dataclass(frozen=True)
class DnsQuery:
    """One query the server answered, in the framework's clock (time.monotonic_ns)."""

    t_ns: int
    name: str  # without the trailing dot, lower-case
    qtype: str  # "A", "AAAA", "TXT", "SRV", ...
    rcode: str  # "NOERROR", "NXDOMAIN", ...
    answers: tuple[str, ...]


class DnsServer:
    """A DNS server on a loopback UDP port, serving ``records`` from a daemon thread.

    Invariants: records and the query log change only under one lock; the socket is
    open exactly while ``running``; ``port`` is the bound port once started and is kept
    by ``stop`` so ``restart`` comes back at the same address.
    """

    def __init__(self, records: dict[str, list[str]] | None = None, host: str = "127.0.0.1",
                 port: int = 0, ttl: int = 1):
        self._host = _check_loopback(host)
        self._port = _check_port(port)
        self.ttl = _check_ttl(ttl)
        self._records: dict[str, list[str]] = {}
        self._log: collections.deque[DnsQuery] = collections.deque(maxlen=QUERY_LOG_SIZE)
        self._changed = threading.Condition()  # guards records and log; notified per query
        self._sock: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.RLock()  # start/stop/restart may come from any thread
        for name, ips in (records or {}).items():
            self.set_records(name, ips)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The UDP port: as given (0 = not yet chosen) until started, then the bound one."""
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> DnsServer:
        """Bind (port 0 picks a free one) and serve in a daemon thread; returns self."""
        with self._lifecycle:
            if self.running:
                raise RuntimeError(f"DNS server {self.address} is already running")
            self._sock = _bind_udp(self.host, self.port)
            self._port = self._sock.getsockname()[1]
            self._wake = socket.socketpair()
            self._thread = threading.Thread(target=self._serve, args=(self._sock, self._wake[0]),
                                            name=f"dns-{self.address}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; later queries get ICMP port unreachable.

        Idempotent. Returns once the serving thread has ended.
        """
        with self._lifecycle:
            if not self.running:
                return
            self._wake[1].send(b"x")
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.error("DNS server %s: serving thread did not stop within %s s",
                          self.address, _JOIN_TIMEOUT_S)
            for sock in (self._sock, *self._wake):
                sock.close()
            self._sock = self._wake = self._thread = None

    def restart(self) -> None:
        """Stop if running, then serve again on the same port.

        Raises OSError (EADDRINUSE) naming the port and, when found, the pid that took it.
        """
        with self._lifecycle:
            if self.port == 0:
                raise RuntimeError("DNS server was never started, so it has no port to restart on")
            self.stop()
            self.start()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- records ----------------------------------------------------------------------

    def set_records(self, name: str, ips: list[str]) -> None:
        """Answer ``name`` with exactly ``ips``, in order, duplicates dropped (an empty
        list = NOERROR with no answers)."""
        name = _normalize_name(name)
        ips = _check_ips(ips, name)
        with self._changed:
            self._records[name] = ips

    def add_record(self, name: str, ip: str) -> None:
        """Add ``ip`` to ``name`` (a no-op if present; makes an NXDOMAIN name known)."""
        name, ip = _normalize_name(name), _check_ipv4(ip)
        with self._changed:
            ips = self._records.setdefault(name, [])
            if ip not in ips:
                _check_count(len(ips) + 1, name)
                ips.append(ip)

    def remove_record(self, name: str, ip: str) -> None:
        """Remove ``ip`` from ``name``; ValueError if it is not there (likely a wrong name or ip)."""
        name, ip = _normalize_name(name), _check_ipv4(ip)
        with self._changed:
            ips = self._records.get(name)
            if ips is None:
                raise ValueError(f"cannot remove {ip}: {name} has no records (NXDOMAIN)")
            if ip not in ips:
                raise ValueError(f"{ip} is not a record of {name} (records: {', '.join(ips) or 'none'})")
            ips.remove(ip)

    def set_nxdomain(self, name: str) -> None:
        """Answer NXDOMAIN for ``name`` until records are set or added again."""
        name = _normalize_name(name)
        with self._changed:
            self._records.pop(name, None)

    def records(self, name: str) -> list[str]:
        """The addresses served for ``name`` (empty for both no-records and NXDOMAIN)."""
        name = _normalize_name(name)
        with self._changed:
            return list(self._records.get(name, ()))

    # -- the query log ----------------------------------------------------------------

    def queries(self, name: str | None = None, since_ns: int = 0) -> list[DnsQuery]:
        """Logged queries received at or after ``since_ns``, for ``name`` if given, oldest first."""
        wanted = None if name is None else _normalize_name(name)
        with self._changed:
            recent = self._since(since_ns)
        return [q for q in recent if wanted is None or q.name == wanted]

    def wait_for_query(self, name: str, since_ns: int, timeout: float, qtype: str = "A") -> DnsQuery:
        """The first ``qtype`` query for ``name`` received at or after ``since_ns``.

        Waits for it up to ``timeout`` seconds; raises TimeoutError saying what did arrive.
        """
        name, qtype = _normalize_name(name), qtype.upper()

        def first_match() -> DnsQuery | None:
            return next((q for q in self._since(since_ns) if q.name == name and q.qtype == qtype), None)

        with self._changed:
            found = self._changed.wait_for(first_match, timeout)
            if found is not None:
                return found
            seen = [f"{q.qtype} {q.name}" for q in self._since(since_ns)]
        raise TimeoutError(f"no {qtype} query for {name} reached DNS server {self.address} within "
                           f"{timeout} s (since t={since_ns} ns); queries in that time: "
                           f"{seen[-10:] if seen else 'none'}{' (last 10)' if len(seen) > 10 else ''}")

    def _since(self, since_ns: int) -> list[DnsQuery]:
        """Queries at or after since_ns, oldest first; walks back from the newest so a
        long log costs only the recent part. Caller holds the lock."""
        recent = []
        for query in reversed(self._log):
            if query.t_ns < since_ns:
                break
            recent.append(query)
        recent.reverse()
        return recent

    # -- serving ----------------------------------------------------------------------

    def _serve(self, sock: socket.socket, wake: socket.socket) -> None:
        """Answer datagrams until a byte arrives on ``wake`` (sent by stop)."""
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if wake in ready:
                    return
                try:
                    self._answer_one(sock)
                except Exception:  # one bad datagram must not silence the fleet's DNS
                    log.exception("DNS server %s: failed to answer a query", self.address)

    def _answer_one(self, sock: socket.socket) -> None:
        try:
            data, peer = sock.recvfrom(_RECV_SIZE)
        except OSError as error:  # e.g. an ICMP error queued for an earlier reply
            log.debug("DNS server %s: recvfrom: %s", self.address, error)
            return
        t_ns = time.monotonic_ns()
        try:
            request = DNSRecord.parse(data)
        except DNSError as error:
            log.warning("DNS server %s: dropped a malformed datagram from %s: %s",
                        self.address, peer, error)
            return
        reply, query = self._reply(request, t_ns)
        # Log before answering: a client that got its answer must find its query logged.
        if query is not None:
            with self._changed:
                self._log.append(query)
                self._changed.notify_all()
        try:
            sock.sendto(reply.pack(), peer)
        except OSError as error:
            log.warning("DNS server %s: could not answer %s: %s", self.address, peer, error)

    def _reply(self, request: DNSRecord, t_ns: int) -> tuple[DNSRecord, DnsQuery | None]:
        """The answer to ``request`` and its log entry (None if it asked nothing)."""
        reply = request.reply()
        if request.header.opcode != 0 or not request.questions:  # only standard queries
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR
            return reply, None
        question = request.questions[0]
        name = str(question.qname).rstrip(".").lower()
        qtype = QTYPE.get(question.qtype)  # "TYPE65" for types dnslib has no name for
        with self._changed:
            ips = self._records.get(name)
            ips = None if ips is None else list(ips)
        if ips is None:
            reply.header.rcode = RCODE.NXDOMAIN
        answers = tuple(ips) if ips is not None and qtype == "A" else ()
        for ip in answers:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=self.ttl))
        return reply, DnsQuery(t_ns, name, qtype, RCODE.get(reply.header.rcode), answers)


# -- sockets --------------------------------------------------------------------------


def _bind_udp(host: str, port: int) -> socket.socket:
    """A UDP socket bound to (host, port), with an error naming who holds a taken port.

    No SO_REUSEADDR: on Linux it would let two UDP sockets share the port silently.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno != errno.EADDRINUSE:
            raise
        owners = ports.pids_listening(host, port, protocol="udp")
        owner = owners[0] if owners else None
        holder = ("another socket (owner not found)" if owner is None
                  else f"pid {owner}{' (this process)' if owner == os.getpid() else ''}")
        raise OSError(errno.EADDRINUSE, f"UDP port {port} on {host} is taken by {holder}; "
                      f"the DNS server cannot serve there") from None
    return sock


def _check_loopback(host: str) -> str:
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"DNS host {host!r} must be an IPv4 loopback address such as 127.0.0.1") from None
    if not address.is_loopback:
        raise ValueError(f"DNS host {host} is not loopback: the fleet DNS server binds only "
                         f"127.0.0.0/8 so it never answers anyone else")
    return host


def _check_port(port: int) -> int:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"DNS port {port!r} must be an int in 0..65535 (0 = pick a free port)")
    return port


def _check_ttl(ttl: int) -> int:
    if not isinstance(ttl, int) or not 0 <= ttl <= 2**31 - 1:
        raise ValueError(f"TTL {ttl!r} must be an int of seconds in 0..2147483647")
    return ttl


def _normalize_name(name: str) -> str:
    """Lower-case, no trailing dot; ValueError unless a valid DNS name."""
    if not isinstance(name, str):
        raise ValueError(f"DNS name {name!r} must be a str")
    normal = name.lower().rstrip(".") if name != "." else ""
    labels = normal.split(".")
    if not normal or len(normal) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{name!r} is not a DNS name (labels of letters, digits, '-', '_', "
                         f"1-63 characters each, 253 in all)")
    return normal


def _check_ipv4(ip: str) -> str:
    try:
        return str(ipaddress.IPv4Address(ip))
    except ValueError:
        raise ValueError(f"{ip!r} is not an IPv4 address (the server answers A records only)") from None


def _check_ips(ips: list[str], name: str) -> list[str]:
    if isinstance(ips, (str, bytes)) or not hasattr(ips, "__iter__"):
        raise ValueError(f"ips for {name} must be a list of IPv4 strings, got {ips!r}")
    checked = list(dict.fromkeys(_check_ipv4(ip) for ip in ips))  # unique, in order
    _check_count(len(checked), name)
    return checked


def _check_count(count: int, name: str) -> None:
    if count > MAX_RECORDS:
        raise ValueError(f"{count} addresses for {name}: at most {MAX_RECORDS} fit a UDP DNS answer "
                         f"and this server does not serve TCP")
