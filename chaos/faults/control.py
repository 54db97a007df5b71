"""Faults staged inside a backend through its control service: health, certificates,
application errors and delays."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault


@dataclass(frozen=True)
class Health(Fault):
    """Set the backend's health (both "" and greeter.Greeter) to ``status``; back to SERVING."""

    target: str
    status: str = "NOT_SERVING"
    kind = "health"

    def apply(self, nemesis) -> None:
        nemesis.fleet.set_health(self.target, self.status)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.target).alive():
            nemesis.fleet.set_health(self.target, "SERVING")


@dataclass(frozen=True)
class Certificate(Fault):
    """Serve a certificate of ``kind_of_cert`` (fleet.pki.SERVER_KINDS) to new connections;
    reverted to the good one. Open connections keep the certificate they were made with."""

    target: str
    cert: str = "other_ca"
    kind = "certificate"

    def apply(self, nemesis) -> None:
        nemesis.fleet.set_certificate(self.target, self.cert)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.target).alive():
            nemesis.fleet.set_certificate(self.target, "good")


@dataclass(frozen=True)
class AppError(Fault):
    """SayHello fails with ``code`` (every call, a ``fraction``, or the ``next_n``)."""

    target: str
    code: str = "UNAVAILABLE"
    fraction: float = 1.0
    next_n: int = 0
    kind = "app:error"

    def apply(self, nemesis) -> None:
        nemesis.fleet.app_fault(self.target, self.code, fraction=self.fraction, next_n=self.next_n)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.target).alive():
            nemesis.fleet.app_fault(self.target)


@dataclass(frozen=True)
class SlowHandler(Fault):
    """SayHello answers ``delay_ms`` late (the handler is slow, not the network)."""

    target: str
    delay_ms: int = 200
    kind = "app:delay"

    def apply(self, nemesis) -> None:
        nemesis.fleet.app_fault(self.target, delay_ms=self.delay_ms)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.target).alive():
            nemesis.fleet.app_fault(self.target)
