"""One backend of a running fleet, as a handle: ``fleet["b2"].kill()``.

Every call goes through the :class:`~fleet.controller.Fleet` that owns the backend (which
keeps its bookkeeping: paused, killed, which certificate), so a handle is only a shorter way
to name the backend; it stays valid across restarts of the same backend id.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet.controller import Fleet
    from fleet.launch import Stopped
    from fleet.pki import CertFiles
    from fleet.points import Point


class BackendHandle:
    """Process faults and Control-service calls of one backend (the latter need the
    Control service: the built-in Greeter has it, a target file declares it)."""

    def __init__(self, fleet: Fleet, backend_id: str):
        fleet.backend(backend_id)  # a KeyError names the ids the fleet has
        self.fleet = fleet
        self.id = backend_id

    def __repr__(self) -> str:
        return f"<BackendHandle {self.id} of {self.fleet.name}>"

    @property
    def pid(self) -> int | None:
        return self.fleet.backend(self.id).pid

    @property
    def address(self) -> str:
        """Where DNS sends clients: the proxy's listen address, or the backend's own."""
        return self.fleet.backend(self.id).published

    def alive(self) -> bool:
        return self.fleet.backend(self.id).alive()

    @property
    def http2(self) -> Point:
        """Its HTTP/2 fault point (a fleet started with ``http2=True``; FleetError else)."""
        return self.fleet.http2_point(self.id)

    # process faults
    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.fleet.kill(self.id, sig)

    def terminate(self) -> Stopped:
        return self.fleet.terminate(self.id)

    def pause(self) -> None:
        self.fleet.pause(self.id)

    def resume(self) -> None:
        self.fleet.resume(self.id)

    def restart(self) -> None:
        self.fleet.restart(self.id)

    # Control-service calls
    def set_health(self, status: str, service: str | None = None) -> None:
        self.fleet.set_health(self.id, status, service)

    def set_certificate(self, kind: str = "good") -> CertFiles:
        return self.fleet.set_certificate(self.id, kind)

    def app_fault(
        self,
        code: str | None = None,
        *,
        fraction: float = 0.0,
        next_n: int = 0,
        delay_ms: int = 0,
        details: str = "",
    ) -> None:
        self.fleet.app_fault(
            self.id, code, fraction=fraction, next_n=next_n, delay_ms=delay_ms, details=details
        )

    def drain(self, wait_ms: int = 500, grace_ms: int = 1000) -> None:
        self.fleet.drain(self.id, wait_ms, grace_ms)

    def stats(self) -> dict:
        """Calls served, by status code, and in flight now."""
        return self.fleet.stats(self.id)
