"""What the fleet needs of a service it starts that is not its built-in Greeter.

The fleet runs either its own Greeter (fleet/server.py) or a team's server from a command.
For the latter it is given a :class:`ServiceSpec`; grpc-chaos's target files
(``chaos.targets.Target``) are one implementation, but anything with these attributes will
do — the fleet never imports grpc-chaos. Structural types only: nothing here runs.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import grpc


class ServerCommand(Protocol):
    """How one backend process is started, known to be ready and stopped."""

    command: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    ready: str  # "health" (the health service answers SERVING) or "rpc" (the RPC answers)
    start_timeout_s: float
    stop_signal: signal.Signals
    stop_grace_s: float
    control: bool  # serves grpc-chaos's Control service (health flips, app faults, ...)
    mtls: bool  # requires client certificates ({client_ca} in the command)

    def argv(self, values: Mapping[str, object]) -> list[str]:
        """The command with its placeholders ({host}, {port}, {cert}, ...) filled in."""
        ...


class ProbeRpc(Protocol):
    """The RPC a readiness probe sends (``ready = "rpc"``) and checks the answer of."""

    method: str
    deadline_s: float

    @property
    def path(self) -> str:
        """The HTTP/2 path of the method: ``/package.Service/Method``."""
        ...

    @property
    def needs_resolve(self) -> bool:
        """Whether its message types are still to be learnt from the server's reflection."""
        ...

    def resolve(self, channel: grpc.Channel) -> None: ...

    def request_bytes(self, number: int) -> bytes: ...

    def check_response(self, data: bytes, number: int) -> str | None:
        """None when the answer is right, else what is wrong with it."""
        ...


class ServiceSpec(Protocol):
    """A service under test the fleet starts from a command, one process per backend."""

    name: str
    builtin: bool  # True: the fleet runs its own Greeter instead (the other fields unused)
    server: ServerCommand
    rpc: ProbeRpc | None
    health_service: str  # the service name clients ask the health service about
