"""What the drivers compiled on the user's machine (go, java) share: the driver protocol's
spec to build from, and fleet/procs/build.py's helpers with a driver's words and errors:

    build_dir(SOURCE, "go")        SOURCE/build, or $XDG_CACHE_HOME/grpc-chaos/drivers/go
                                   where the installed package is read-only
    build_once(built, sources, d, make)
                                   make() under a file lock in d, unless ``built`` is newer
                                   than every source (checked again once the lock is held:
                                   another process may have built it meanwhile)
    run_make(name, argv, timeout)  make in a session of its own (stopping it stops the
                                   compilers too); a failure or a timeout is a DriverError
                                   with the tail of the build's output
"""

from __future__ import annotations

from pathlib import Path

from chaos.clients.driver import DriverError
from fleet.procs import build

HERE = Path(__file__).resolve().parent
# The spec in a checkout; an installed package carries a copy next to this module.
PROTOS = (HERE.parents[2] / "proto" / "driver.proto", HERE / "driver.proto")


def protocol_file(name: str) -> Path:
    """proto/driver.proto, in a checkout or an installed package."""
    for path in PROTOS:
        if path.is_file():
            return path
    raise DriverError(
        f"client driver {name!r}: no driver.proto to build it from (looked at "
        + ", ".join(str(p) for p in PROTOS)
        + ")"
    )


def build_dir(source: Path, name: str) -> Path:
    return build.build_dir(source, f"drivers/{name}")


fresh = build.fresh
build_once = build.build_once


def run_make(name: str, argv: list[str], timeout_s: float) -> None:
    build.run_make(f"client driver {name!r}", argv, timeout_s, DriverError)
