"""Faults staged inside a backend through its control service: health, certificates,
application errors and delays."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault


@dataclass(frozen=True)
class Health(Fault):
    """Set the backend's health (both "" and greeter.Greeter) to ``status``; back to SERVING."""

    backend: str
    status: str = "NOT_SERVING"
    kind = "health"

    def apply(self, nemesis) -> None:
        nemesis.fleet.set_health(self.backend, self.status)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.backend).alive():
            nemesis.fleet.set_health(self.backend, "SERVING")


@dataclass(frozen=True)
class Certificate(Fault):
    """Serve a certificate of ``kind_of_cert`` (fleet.pki.SERVER_KINDS) to new connections;
    reverted to the good one. Open connections keep the certificate they were made with."""

    backend: str
    cert: str = "other_ca"
    kind = "certificate"

    def apply(self, nemesis) -> None:
        nemesis.fleet.set_certificate(self.backend, self.cert)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.backend).alive():
            nemesis.fleet.set_certificate(self.backend, "good")


@dataclass(frozen=True)
class AppError(Fault):
    """SayHello fails with ``code`` (every call, a ``fraction``, or the ``next_n``)."""

    backend: str
    code: str = "UNAVAILABLE"
    fraction: float = 1.0
    next_n: int = 0
    kind = "app:error"

    def apply(self, nemesis) -> None:
        nemesis.fleet.app_fault(self.backend, self.code, fraction=self.fraction, next_n=self.next_n)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.backend).alive():
            nemesis.fleet.app_fault(self.backend)


@dataclass(frozen=True)
class SlowHandler(Fault):
    """SayHello answers ``delay_ms`` late (the handler is slow, not the network)."""

    backend: str
    delay_ms: int = 200
    kind = "app:delay"

    def apply(self, nemesis) -> None:
        nemesis.fleet.app_fault(self.backend, delay_ms=self.delay_ms)

    def revert(self, nemesis) -> None:
        if nemesis.fleet.backend(self.backend).alive():
            nemesis.fleet.app_fault(self.backend)
