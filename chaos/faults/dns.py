"""DNS faults on the fleet's DNS server: records removed or added, the server down."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault


@dataclass(frozen=True)
class DnsRemove(Fault):
    """The backend's address is no longer published; clients notice when they re-resolve."""

    backend: str
    kind = "dns:remove"

    def apply(self, nemesis) -> None:
        fleet = nemesis.fleet
        fleet.dns.remove_record(fleet.name, fleet.backend(self.backend).ip)

    def revert(self, nemesis) -> None:
        _publish_all(nemesis.fleet)


@dataclass(frozen=True)
class DnsEmpty(Fault):
    """The name resolves to no address at all (NOERROR, empty answer)."""

    backend: None = None
    kind = "dns:empty"

    def apply(self, nemesis) -> None:
        nemesis.fleet.dns.set_records(nemesis.fleet.name, [])

    def revert(self, nemesis) -> None:
        _publish_all(nemesis.fleet)


@dataclass(frozen=True)
class DnsNxdomain(Fault):
    """The name does not exist (NXDOMAIN)."""

    backend: None = None
    kind = "dns:nxdomain"

    def apply(self, nemesis) -> None:
        nemesis.fleet.dns.set_nxdomain(nemesis.fleet.name)

    def revert(self, nemesis) -> None:
        _publish_all(nemesis.fleet)


@dataclass(frozen=True)
class DnsOutage(Fault):
    """The DNS server is down: queries go unanswered (the port is closed)."""

    backend: None = None
    kind = "dns:outage"

    def apply(self, nemesis) -> None:
        nemesis.fleet.dns.stop()

    def revert(self, nemesis) -> None:
        if not nemesis.fleet.dns.running:
            nemesis.fleet.dns.restart()


def _publish_all(fleet) -> None:
    fleet.dns.set_records(fleet.name, [b.ip for b in fleet.backends])
