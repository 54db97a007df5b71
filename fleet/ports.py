"""Who holds a TCP port: turns "address already in use" into an error that names the culprit."""

from __future__ import annotations

import ipaddress
import os
import socket


def _word(packed: bytes) -> str:
    # /proc/net/tcp* print each 32-bit word of an address in host (little-endian) order.
    return "%08X" % int.from_bytes(packed, "little")


def _wanted(host: str, port: int) -> set[str]:
    """How a listener on host:port (or on a wildcard) appears in /proc/net/tcp and tcp6.

    gRPC binds IPv4 addresses with dual-stack IPv6 sockets, so 127.0.0.11 shows up in tcp6
    as ::ffff:127.0.0.11.
    """
    ipv4, any4 = socket.inet_aton(host), bytes(4)
    mapped = "0" * 16 + _word(b"\0\0\xff\xff")
    return {
        f"{text}:{port:04X}" for text in (_word(ipv4), _word(any4), mapped + _word(ipv4), "0" * 32)
    }


def _listening_inodes(host: str, port: int, protocol: str) -> set[str]:
    wanted = _wanted(host, port)
    # A TCP socket must be listening (state 0A); a bound UDP socket has state 07 (CLOSE).
    state = "0A" if protocol == "tcp" else "07"
    inodes: set[str] = set()
    for table_path in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        try:
            with open(table_path) as table:
                next(table)
                for line in table:
                    fields = line.split()
                    if fields[1] in wanted and fields[3] == state:
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes


def pids_listening(host: str, port: int, protocol: str = "tcp") -> list[int]:
    """Pids whose sockets listen on (tcp) or are bound to (udp) host:port, IPv4 or
    v4-mapped, as far as /proc lets us see."""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return []
    inodes = _listening_inodes(host, port, protocol)
    if not inodes:
        return []
    targets = {f"socket:[{inode}]" for inode in inodes}
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in targets for fd in fds):
                pids.append(int(entry))
        except OSError:
            continue  # the process ended or is not ours to inspect
    return sorted(pids)


def describe_taken(host: str, port: int) -> str:
    """'port 50051 on 127.0.0.12 is taken by pid 4242' (or '... is taken')."""
    pids = pids_listening(host, port)
    owner = f" by pid {', '.join(map(str, pids))}" if pids else ""
    return f"port {port} on {host} is taken{owner}"
