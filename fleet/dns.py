"""The fleet's DNS server: authoritative A records for the fleet name on loopback UDP and
TCP (one port for both), changeable at run time.

Clients reach the fleet as ``dns://127.0.0.1:<port>/greeter.example.com:<P>``; gRPC's
c-ares resolver sends its queries here::

    grpc channel (c-ares) --UDP query--------> +------------------+ --> records: name -> [ip]
          ^             <--TC=1 if too big---- |  serving thread  |
          +-- it asks again --TCP query------> |  (one selector,  | --> query log (DnsQuery:
                        <--whole answer------- |  one port)       |     when, name, type,
                                               +------------------+     answers, transport,
                                                                        truncated)

Answers:
    known name, A          NOERROR with one A record per ip (possibly none)
    known name, other type NOERROR, no answers (AAAA, TXT, SRV: c-ares asks these too,
                           and a fast empty answer keeps it from waiting on a timeout)
    unknown name           NXDOMAIN (set_nxdomain makes a known name unknown)
    EDNS version > 0       BADVERS (RFC 6891 6.1.3)

Sizes, as real servers do them: over UDP an answer must fit the client's size — 512
bytes (RFC 1035 4.2.1), or the payload size its EDNS0 OPT record advertises, capped at
EDNS_UDP_SIZE. One that does not is sent with TC=1 and no answer records (RFC 2181 9: no
partial RRsets), so the resolver asks again over TCP, where an answer may take 65535
bytes (MAX_RECORDS addresses). Queries with an OPT record get one back. grpcio's c-ares
(1.85) sends no OPT record, so it gets more than 29 addresses over TCP, after a TC=1
answer (tests/test_dns_server.py shows it).

TCP (RFC 1035 4.2.2, RFC 7766): each message has a 2-byte length prefix; a connection
carries any number of queries, answered in order; one that completes no query within
TCP_IDLE_TIMEOUT_S is closed, and at most MAX_TCP_CONNECTIONS are open at once (more are
closed as they arrive). Every buffer is bounded: a connection holds at most one partial
query and one unsent answer, and is not read while its answer waits to be sent.

Scenarios read the log to see when a client re-resolved (``wait_for_query``).

Limits: loopback only, IPv4 only, A records only. One question per query (the first).
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import logging
import re
import threading
import time

from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSError, DNSRecord

from fleet.dns_serving import MAX_MESSAGE, MAX_TCP_CONNECTIONS, ServingLoop, bind_both

__all__ = [
    "DnsQuery",
    "DnsServer",
    "EDNS_UDP_SIZE",
    "MAX_RECORDS",
    "MAX_TCP_CONNECTIONS",
    "TCP_IDLE_TIMEOUT_S",
]

log = logging.getLogger(__name__)

# A plain UDP answer is at most 512 bytes (RFC 1035 4.2.1); so is an EDNS0 size below it
# (RFC 6891 6.2.5).
UDP_PLAIN_SIZE = 512
# The largest UDP answer sent, whatever an EDNS0 query advertises, and the size this
# server advertises in its own OPT record: 4096 is what BIND and most resolvers offer; it
# fits loopback's MTU many times over.
EDNS_UDP_SIZE = 4096
# How many addresses fit the largest (TCP) answer for the longest name: 12 header bytes,
# the question (a 253-character name packs into 255 bytes, plus type and class), an OPT
# record (11), then 16 per A record (its name compressed to 2 bytes, type, class, TTL,
# length, 4 address bytes). = 4078.
MAX_RECORDS = (MAX_MESSAGE - 12 - (255 + 4) - 11) // 16
# RFC 7766 6.2.3: idle timeouts "of the order of seconds"; a resolver asks its one or two
# queries right after connecting, so 10 s only ever closes abandoned connections.
TCP_IDLE_TIMEOUT_S = 10.0
# Enough for hours of a busy scenario's re-resolutions while bounding memory.
QUERY_LOG_SIZE = 100_000
# How long stop() waits for the serving thread; it wakes at once, this only bounds a bug.
_JOIN_TIMEOUT_S = 5.0
# RFC 6891 6.1.3: BADVERS is extended RCODE 16, whose upper 8 bits (1) go in the OPT record.
_BADVERS_EXT_RCODE = 16 >> 4
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


@dataclasses.dataclass(frozen=True)
class DnsQuery:
    """One query the server answered, in the framework's clock (time.monotonic_ns).

    ``answers`` are the addresses the reply carried: empty when ``truncated`` (a UDP
    reply sent with TC=1 because the answer did not fit; the client asks again over TCP).
    """

    t_ns: int
    name: str  # without the trailing dot, lower-case
    qtype: str  # "A", "AAAA", "TXT", "SRV", ...
    rcode: str  # "NOERROR", "NXDOMAIN", ...
    answers: tuple[str, ...]
    transport: str = "udp"  # or "tcp"
    truncated: bool = False


class DnsServer:
    """A DNS server on one loopback port, UDP and TCP, serving ``records`` from a daemon
    thread.

    Invariants: records and the query log change only under one lock; the sockets are
    open exactly while ``running``; ``port`` is the bound port (the same for UDP and TCP)
    once started and is kept by ``stop`` so ``restart`` comes back at the same address.
    """

    def __init__(
        self,
        records: dict[str, list[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ttl: int = 1,
        tcp_idle_timeout: float = TCP_IDLE_TIMEOUT_S,
    ):
        self._host = _check_loopback(host)
        self._port = _check_port(port)
        self.ttl = _check_ttl(ttl)
        self.tcp_idle_timeout = _check_timeout(tcp_idle_timeout)
        self._records: dict[str, list[str]] = {}
        self._log: collections.deque[DnsQuery] = collections.deque(maxlen=QUERY_LOG_SIZE)
        self._changed = threading.Condition()  # guards records and log; notified per query
        self._loop: ServingLoop | None = None
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
        """The UDP and TCP port: as given (0 = not yet chosen) until started, then the bound one."""
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> DnsServer:
        """Bind UDP and TCP (port 0 picks one free for both) and serve in a daemon thread;
        returns self."""
        with self._lifecycle:
            if self.running:
                raise RuntimeError(f"DNS server {self.address} is already running")
            udp, tcp = bind_both(self.host, self.port)
            self._port = udp.getsockname()[1]
            self._loop = ServingLoop(self, udp, tcp)
            self._thread = threading.Thread(
                target=self._loop.run, name=f"dns-{self.address}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every socket: later UDP queries get ICMP port unreachable,
        TCP connections are refused, open ones are closed. An outage, as a dead server.

        Idempotent. Returns once the serving thread has ended.
        """
        with self._lifecycle:
            loop, thread = self._loop, self._thread
            if thread is None:  # not running
                return
            assert loop is not None  # start() sets both, stop() clears both
            loop.wake()
            thread.join(_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.error(
                    "DNS server %s: serving thread did not stop within %s s",
                    self.address,
                    _JOIN_TIMEOUT_S,
                )
            loop.close()
            self._loop = self._thread = None

    def restart(self) -> None:
        """Stop if running, then serve again on the same port (UDP and TCP).

        Raises OSError (EADDRINUSE) naming the port, the protocol and, when found, the pid
        that took it.
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
                raise ValueError(
                    f"{ip} is not a record of {name} (records: {', '.join(ips) or 'none'})"
                )
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

    def wait_for_query(
        self, name: str, since_ns: int, timeout: float, qtype: str = "A"
    ) -> DnsQuery:
        """The first ``qtype`` query for ``name`` received at or after ``since_ns``.

        Waits for it up to ``timeout`` seconds; raises TimeoutError saying what did arrive.
        """
        name, qtype = _normalize_name(name), qtype.upper()

        def first_match() -> DnsQuery | None:
            return next(
                (q for q in self._since(since_ns) if q.name == name and q.qtype == qtype), None
            )

        with self._changed:
            found = self._changed.wait_for(first_match, timeout)
            if found is not None:
                return found
            seen = [f"{q.qtype} {q.name}" for q in self._since(since_ns)]
        raise TimeoutError(
            f"no {qtype} query for {name} reached DNS server {self.address} within "
            f"{timeout} s (since t={since_ns} ns); queries in that time: "
            f"{seen[-10:] if seen else 'none'}{' (last 10)' if len(seen) > 10 else ''}"
        )

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

    # -- answering (called from the serving thread) -----------------------------------

    def _answer(self, data: bytes, transport: str) -> bytes | None:
        """The packed reply to the query in ``data`` ("udp": fitted to the client's size;
        "tcp": whole), logged before it is returned so a client that got its answer finds
        its query logged. None for a message that is not DNS (the caller drops it)."""
        t_ns = time.monotonic_ns()
        try:
            request = DNSRecord.parse(data)
        except DNSError as error:
            log.warning(
                "DNS server %s: dropped a malformed %s message: %s",
                self.address,
                transport.upper(),
                error,
            )
            return None
        reply, query, limit = self._reply(request, t_ns)
        packed, truncated = _fit(reply, limit if transport == "udp" else MAX_MESSAGE)
        if query is not None:
            query = dataclasses.replace(
                query,
                transport=transport,
                truncated=truncated,
                answers=() if truncated else query.answers,
            )
            with self._changed:
                self._log.append(query)
                self._changed.notify_all()
        return packed

    def _reply(self, request: DNSRecord, t_ns: int) -> tuple[DNSRecord, DnsQuery | None, int]:
        """The answer to ``request``, its log entry (None if it asked nothing) and the
        largest UDP reply the client accepts."""
        reply = request.reply()
        opts = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
        limit = UDP_PLAIN_SIZE
        if opts:
            # RFC 6891 6.2.5: a size below 512 means 512.
            limit = min(max(opts[0].rclass, UDP_PLAIN_SIZE), EDNS_UDP_SIZE)
        if request.header.opcode != 0 or not request.questions or len(opts) > 1:
            # Only standard queries; RFC 6891 6.1.1: more than one OPT record is FORMERR.
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR
            return reply, None, limit
        question = request.questions[0]
        name = str(question.qname).rstrip(".").lower()
        qtype = QTYPE.get(question.qtype)  # "TYPE65" for types dnslib has no name for
        if opts and _edns_version(opts[0]) != 0:
            reply.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE, ext_rcode=_BADVERS_EXT_RCODE))
            return reply, DnsQuery(t_ns, name, qtype, "BADVERS", ()), limit
        with self._changed:
            ips = self._records.get(name)
            ips = None if ips is None else list(ips)
        if ips is None:
            reply.header.rcode = RCODE.NXDOMAIN
        answers = tuple(ips) if ips is not None and qtype == "A" else ()
        for ip in answers:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=self.ttl))
        if opts:
            reply.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE))
        return reply, DnsQuery(t_ns, name, qtype, RCODE.get(reply.header.rcode), answers), limit


def _edns_version(opt: RR) -> int:
    # RFC 6891 6.1.3: the OPT record's TTL is extended RCODE (8 bits), VERSION (8), flags.
    return (opt.ttl >> 16) & 0xFF


def _fit(reply: DNSRecord, limit: int) -> tuple[bytes, bool]:
    """``reply`` packed, or, when that exceeds ``limit`` bytes, packed with TC=1 and no
    answer or authority records (RFC 2181 9), keeping the question and the OPT record."""
    packed = reply.pack()
    if len(packed) <= limit:
        return packed, False
    reply.rr, reply.auth = [], []
    reply.header.tc = 1
    return reply.pack(), True


def _check_loopback(host: str) -> str:
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(
            f"DNS host {host!r} must be an IPv4 loopback address such as 127.0.0.1"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"DNS host {host} is not loopback: the fleet DNS server binds only "
            f"127.0.0.0/8 so it never answers anyone else"
        )
    return host


def _check_port(port: int) -> int:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"DNS port {port!r} must be an int in 0..65535 (0 = pick a free port)")
    return port


def _check_ttl(ttl: int) -> int:
    if not isinstance(ttl, int) or not 0 <= ttl <= 2**31 - 1:
        raise ValueError(f"TTL {ttl!r} must be an int of seconds in 0..2147483647")
    return ttl


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"TCP idle timeout {timeout!r} must be a number of seconds above 0")
    return float(timeout)


def _normalize_name(name: str) -> str:
    """Lower-case, no trailing dot; ValueError unless a valid DNS name."""
    if not isinstance(name, str):
        raise ValueError(f"DNS name {name!r} must be a str")
    normal = name.lower().rstrip(".") if name != "." else ""
    labels = normal.split(".")
    if not normal or len(normal) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{name!r} is not a DNS name (labels of letters, digits, '-', '_', "
            f"1-63 characters each, 253 in all)"
        )
    return normal


def _check_ipv4(ip: str) -> str:
    try:
        return str(ipaddress.IPv4Address(ip))
    except ValueError:
        raise ValueError(
            f"{ip!r} is not an IPv4 address (the server answers A records only)"
        ) from None


def _check_ips(ips: list[str], name: str) -> list[str]:
    if isinstance(ips, (str, bytes)) or not hasattr(ips, "__iter__"):
        raise ValueError(f"ips for {name} must be a list of IPv4 strings, got {ips!r}")
    checked = list(dict.fromkeys(_check_ipv4(ip) for ip in ips))  # unique, in order
    _check_count(len(checked), name)
    return checked


def _check_count(count: int, name: str) -> None:
    if count > MAX_RECORDS:
        raise ValueError(
            f"{count} addresses for {name}: at most {MAX_RECORDS} fit one DNS "
            f"answer (65535 bytes over TCP)"
        )
