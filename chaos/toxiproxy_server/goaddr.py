"""Go ``net`` address handling as the reference server shows it to clients.

Listen addresses are parsed, resolved and bound the way Go's ``net.Listen("tcp", addr)``
does, and failures produce Go's error texts, which the API returns verbatim with a 500
(spec §2, §5.1) and which clients compare as strings:

    listen tcp 127.0.0.1:3310: bind: address already in use
    listen tcp: address bogus: missing port in address
    address bogus: missing port in address            (resolution only, e.g. on update)

Like Go, the listener sets SO_REUSEADDR, prefers IPv4 when a name has both families, and
binds a wildcard host ("", 0.0.0.0, ::) as a dual-stack IPv6 socket shown as ``[::]:port``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from dataclasses import dataclass

LISTEN_BACKLOG = 4096  # Go listens with the kernel's somaxconn; 4096 is the usual cap


class GoNetError(Exception):
    """An address or socket failure; ``str(err)`` is the text Go would print."""


@dataclass(frozen=True)
class TCPAddr:
    """A resolved TCP address; ``str()`` prints it like Go's ``TCPAddr.String``."""

    ip: str  # "" for the unspecified address
    port: int
    family: int = socket.AF_INET

    def __str__(self) -> str:
        return join_host_port(self.ip, str(self.port))

    @property
    def wildcard(self) -> bool:
        return self.ip in ("", "0.0.0.0", "::")


def join_host_port(host: str, port: str) -> str:
    """Go's ``net.JoinHostPort``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``, with its error texts."""

    def fail(why: str) -> GoNetError:
        return GoNetError(f"address {hostport}: {why}")

    last = hostport.rfind(":")
    if last < 0:
        raise fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != last:
            raise fail(
                "too many colons in address"
                if hostport[end + 1] == ":"
                else "missing port in address"
            )
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:last]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[j:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise fail("unexpected ']' in address")
    return host, hostport[last + 1 :]


def _parse_port(service: str) -> int | None:
    """Go's ``parsePort``: the number, or None when the service needs a name lookup."""
    if service == "":
        return 0
    sign, digits = 1, service
    if service[0] in "+-":
        sign, digits = (-1 if service[0] == "-" else 1), service[1:]
    if not digits.isascii() or not digits.isdigit():
        return None
    return sign * min(int(digits), 1 << 30)


def lookup_port(service: str) -> int:
    """Go's ``LookupPort("tcp", service)``."""
    port = _parse_port(service)
    if port is None:
        try:
            port = socket.getservbyname(service, "tcp")
        except (OSError, UnicodeError):
            raise GoNetError(f"lookup tcp/{service}: unknown port") from None
    if not 0 <= port <= 65535:
        raise GoNetError(f"address {service}: invalid port")
    return port


_DOTTED_QUAD = re.compile(
    r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    r"(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)


def _literal_ip(host: str) -> TCPAddr | None:
    """An IP literal as Go's ``ParseIP`` accepts it (no octal or short IPv4 forms)."""
    if _DOTTED_QUAD.fullmatch(host):
        return TCPAddr(host, 0, socket.AF_INET)
    address, _, zone = host.partition("%")
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return None
    if ip.ipv4_mapped is not None:  # Go prints ::ffff:a.b.c.d as a.b.c.d
        return TCPAddr(str(ip.ipv4_mapped), 0, socket.AF_INET)
    text = str(ip) + (f"%{zone}" if zone else "")
    return TCPAddr(text, 0, socket.AF_INET6)


async def resolve_tcp(hostport: str) -> TCPAddr:
    """Go's ``net.ResolveTCPAddr("tcp", hostport)``: IPv4 preferred for names."""
    if hostport == "":
        return TCPAddr("", 0)
    host, service = split_host_port(hostport)
    port = lookup_port(service)
    if host == "":
        return TCPAddr("", port)
    literal = _literal_ip(host)
    if literal is not None:
        return TCPAddr(literal.ip, port, literal.family)
    if re.fullmatch(r"[0-9.]+", host):
        # Go does not read "127.1" as an address but looks it up as a name (and fails);
        # the C resolver would accept it, so it is refused here the Go way.
        raise GoNetError(f"lookup {host}: no such host")
    return await _lookup(host, port)


async def _lookup(host: str, port: int) -> TCPAddr:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise GoNetError(f"lookup {host}: no such host") from None
    for family in (socket.AF_INET, socket.AF_INET6):
        for fam, _, _, _, sockaddr in infos:
            if fam == family:
                return TCPAddr(str(sockaddr[0]), port, fam)  # an IPv4/IPv6 host string
    raise GoNetError(f"lookup {host}: no such host")


def bound_address(sock: socket.socket) -> str:
    """What Go's ``listener.Addr().String()`` prints for a bound socket."""
    name = sock.getsockname()
    return join_host_port(name[0], str(name[1]))


def _bind(addr: TCPAddr) -> socket.socket:
    """Bind a listening socket for ``addr`` (raises OSError)."""
    family, host = addr.family, addr.ip
    if addr.wildcard and socket.has_ipv6:
        family, host = socket.AF_INET6, "::"
    elif addr.wildcard:
        family, host = socket.AF_INET, "0.0.0.0"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and addr.wildcard:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, addr.port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def strerror(err: OSError) -> str:
    """Go prints errno texts in lower case ("address already in use")."""
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


async def listen(hostport: str) -> tuple[socket.socket, str]:
    """Go's ``net.Listen("tcp", hostport)``: returns (socket, bound address text)."""
    try:
        addr = await resolve_tcp(hostport)
    except GoNetError as err:
        raise GoNetError(f"listen tcp: {err}") from None
    try:
        sock = _bind(addr)
    except OSError as err:
        raise GoNetError(f"listen tcp {addr}: bind: {strerror(err)}") from None
    if addr.wildcard and sock.family == socket.AF_INET6:
        return sock, join_host_port("::", str(sock.getsockname()[1]))
    return sock, bound_address(sock)
