"""Rollout faults: what a release does to a fleet — scale out, scale in.

    ScaleOut()       a new backend starts (ready), then DNS publishes it: clients must pick
                     it up (at their next re-resolution)
    ScaleIn("b3")    DNS stops publishing b3, then b3 is stopped the way a scheduler stops
                     it (its stop signal, SIGKILL after its grace): clients must move away
                     without losing an RPC

Rolling restarts are Terminate + Restart per backend (chaos/faults/process.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.faults.base import Fault


@dataclass(frozen=True)
class ScaleOut(Fault):
    """One more backend, published in DNS once it is ready. ``added`` names it once
    applied. Reverted by removing its record and the backend."""

    backend: None = None
    added: list = field(default_factory=list, compare=False)
    kind = "scale:out"

    def detail(self) -> dict:
        return {}

    def apply(self, nemesis) -> None:
        fleet = nemesis.fleet
        backend = fleet.add_backend()
        self.added.append(backend.id)
        fleet.dns.add_record(fleet.name, backend.ip)

    def revert(self, nemesis) -> None:
        fleet = nemesis.fleet
        for backend_id in self.added:
            ip = fleet.backend(backend_id).ip
            if ip in fleet.dns.records(fleet.name):
                fleet.dns.remove_record(fleet.name, ip)
            fleet.remove_backend(backend_id)


@dataclass(frozen=True)
class ScaleIn(Fault):
    """The backend's DNS record is removed, then it is stopped gracefully. In force once
    it has exited. Reverted by starting it again and publishing it."""

    backend: str
    kind = "scale:in"

    def apply(self, nemesis) -> None:
        fleet = nemesis.fleet
        fleet.dns.remove_record(fleet.name, fleet.backend(self.backend).ip)
        fleet.terminate(self.backend)

    def revert(self, nemesis) -> None:
        fleet = nemesis.fleet
        if not fleet.backend(self.backend).alive():
            fleet.restart(self.backend)
        fleet.dns.set_records(fleet.name, [b.ip for b in fleet.backends])
