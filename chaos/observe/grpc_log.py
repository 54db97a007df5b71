"""gRPC's own ERROR log, as evidence a scenario reads.

Some of what a client lives through shows nowhere but in gRPC's log: a server refusing the
client's keepalive answers with GOAWAY ENHANCE_YOUR_CALM "too_many_pings", which grpc-core
logs at ERROR level (naming the peer) and neither channelz nor the application sees.
``GRPC_VERBOSITY=NONE`` — common in CI to quiet logs — hides it, and a scenario that reads
the log would then pass for want of evidence: a false green.

grpc reads GRPC_VERBOSITY once, when it is first imported. So the pytest plugin calls
:func:`enable` at its own import, before anything imports grpc: NONE is raised to ERROR
(errors only, the least that keeps the evidence), for this process and the ones it starts.
A scenario that reads the log calls :func:`unavailable` and refuses to judge when gRPC
started before that could be done.
"""

from __future__ import annotations

import os
import sys

VARIABLE = "GRPC_VERBOSITY"
HIDES_ERRORS = frozenset({"NONE"})  # the one level of grpc's that drops ERROR lines

# What grpc starts with in this process, once known: (level, whether it was raised here).
_started_with: tuple[str, bool] | None = None


def enable() -> None:
    """Make sure grpc, when it starts in this process, logs ERROR lines (see the module)."""
    global _started_with
    level = os.environ.get(VARIABLE, "").strip().upper()
    if "grpc" in sys.modules:  # too late to change what it reads: note what it read
        _started_with = (level, False)
        return
    if level in HIDES_ERRORS:
        os.environ[VARIABLE] = "ERROR"
        _started_with = ("ERROR", True)
    else:
        _started_with = (level, False)


def unavailable() -> str | None:
    """Why gRPC's ERROR lines cannot be read in this process, or None when they can."""
    level = _started_with[0] if _started_with else os.environ.get(VARIABLE, "").strip().upper()
    if level in HIDES_ERRORS:
        return (
            f"gRPC's log is off in this process ({VARIABLE}={level} when grpc started), "
            f"and what this scenario judges shows only there; grpc-chaos turns it on "
            f"(ERROR) when its plugin loads before grpc is imported — unset {VARIABLE} "
            f"or import grpc after the plugin"
        )
    return None


def raised_from() -> str | None:
    """The level the plugin raised to ERROR (for the run's header), or None."""
    return "NONE" if _started_with and _started_with[1] else None
