"""Process faults: kill -9, SIGTERM, SIGSTOP hang, graceful drain, restart."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault


@dataclass(frozen=True)
class Kill(Fault):
    """kill -9: in-flight RPCs fail, the address refuses (or, proxied, closes at once).
    Reverted by restarting the backend on the same address with the same certificate."""

    backend: str
    kind = "kill"

    def apply(self, nemesis) -> None:
        nemesis.fleet.kill(self.backend)

    def revert(self, nemesis) -> None:
        nemesis.fleet.restart(self.backend)


@dataclass(frozen=True)
class Terminate(Kill):
    """Stopped as a scheduler stops a backend in a rollout: the backend's stop signal
    (SIGTERM by default), SIGKILL if it is still running after its grace. In force once it
    has exited (``fleet.backend(id).last_stop`` says how). Reverted by a restart."""

    kind = "terminate"

    def apply(self, nemesis) -> None:
        nemesis.fleet.terminate(self.backend)


@dataclass(frozen=True)
class Pause(Fault):
    """SIGSTOP: the process hangs with its connections open; only keepalive notices."""

    backend: str
    kind = "pause"

    def apply(self, nemesis) -> None:
        nemesis.fleet.pause(self.backend)

    def revert(self, nemesis) -> None:
        nemesis.fleet.resume(self.backend)


@dataclass(frozen=True)
class Drain(Fault):
    """Graceful drain: NOT_SERVING, ``wait_ms`` for clients to move away, stop with
    ``grace_ms`` for in-flight RPCs; the process exits. In force once the backend confirmed
    NOT_SERVING (it exits later: ``fleet.wait_exit``). Reverted by a restart."""

    backend: str
    wait_ms: int = 500
    grace_ms: int = 1000
    kind = "drain"

    def apply(self, nemesis) -> None:
        nemesis.fleet.drain(self.backend, self.wait_ms, self.grace_ms, wait=False)

    def revert(self, nemesis) -> None:
        nemesis.fleet.restart(self.backend)


@dataclass(frozen=True)
class Restart(Fault):
    """Kill and start again at once (same address, same certificate); nothing to revert."""

    backend: str
    kind = "restart"
    instant = True

    def apply(self, nemesis) -> None:
        nemesis.fleet.restart(self.backend)
