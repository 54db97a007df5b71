"""Target: what runs in each backend and how to call it, with the capabilities scenarios
ask of it."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.targets.client import ClientSpec
from chaos.targets.rpc import RpcSpec
from chaos.targets.server import ServerSpec
from chaos.verdicts.requirements import Requirements

PROCESS = "process"
CONTROL = "control"
MTLS = "mtls"

# What a scenario that needs a capability says on a target without it: what is missing,
# how to provide it (the scenario is reported "not applicable: <this>").
MISSING = {
    PROCESS: "needs backend processes grpc-chaos starts itself (kill, pause): give their "
    "command in server.command",
    CONTROL: "needs grpc-chaos's Control service (health flips, application faults, live "
    "certificate swap): serve proto/control.proto on {control} and set "
    "server.control = true",
    MTLS: "needs a server that requires client certificates (mTLS): verify them against "
    "{client_ca} and set server.mtls = true",
}


@dataclass(frozen=True)
class Target:
    """The service under test. ``source`` is the target file's path (as given) or
    "built-in Greeter"; ``identity_header`` is the response metadata key in which a backend
    names itself (None: the server says nothing, the framework attributes RPCs itself);
    ``requirements`` is None when the file has no ``[requirements]``."""

    name: str
    source: str
    server: ServerSpec
    rpc: RpcSpec
    health_service: str = ""
    identity_header: str | None = "x-backend-id"
    requirements: Requirements | None = None
    builtin: bool = False
    # The team's own client driver ([client]; chaos/targets/client.py), or None.
    client: ClientSpec | None = None

    @property
    def capabilities(self) -> frozenset[str]:
        """ "process" (always: grpc-chaos starts every backend), "control", "mtls"."""
        return frozenset(
            {PROCESS}
            | ({CONTROL} if self.server.control else set())
            | ({MTLS} if self.server.mtls else set())
        )

    def missing(self, capability: str) -> str:
        """The not-applicable reason for a capability this target lacks ("" when it has
        it): what is missing and how to provide it."""
        if capability not in MISSING:
            raise ValueError(f"unknown capability {capability!r}; known: {', '.join(MISSING)}")
        return "" if capability in self.capabilities else MISSING[capability]
