"""The compiled HTTP/2 point: relay_go/ (Go, over golang.org/x/net/http2's Framer and
HPACK), the same control API and relay as the Python point in a process that spends a
fraction of its CPU per RPC (docs/http2.md, "Cost").

:func:`build` returns the binary, building it first when it is missing or older than its
sources: ``make`` in relay_go/ (offline, GOPATH mode over /usr/share/gocode, where Debian's
golang-golang-x-net-dev and golang-golang-x-sys-dev put their sources) into relay_go/build/,
or, where the package is installed read-only, into ``$XDG_CACHE_HOME/grpc-chaos/http2``. A
file lock keeps two processes from building at once; a cold build takes a few seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fleet.procs import build as builds

SOURCE = Path(__file__).resolve().parent / "relay_go"
BINARY = "grpc-chaos-http2-point"
GOCODE = Path("/usr/share/gocode/src/golang.org/x")
NEEDS = (GOCODE / "net" / "http2", GOCODE / "net" / "http2" / "hpack", GOCODE / "sys" / "unix")
PACKAGES = "golang-go golang-golang-x-net-dev golang-golang-x-sys-dev"
BUILD_TIMEOUT_S = 300.0


class BuildError(RuntimeError):
    """The compiled point could not be built."""


def missing() -> list[str]:
    """What the build needs and this machine lacks (empty: it can be built)."""
    lacking = [tool for tool in ("go", "make") if not shutil.which(tool)]
    lacking += [f"{path}" for path in NEEDS if not path.is_dir()]
    if not SOURCE.is_dir():
        lacking.append(f"its sources ({SOURCE})")
    return lacking


def build() -> Path:
    """The point's binary, (re)built when missing or older than its sources."""
    directory = builds.build_dir(SOURCE, "http2")
    binary = directory / BINARY
    sources = [*SOURCE.glob("*.go"), SOURCE / "Makefile"]
    if not builds.fresh(binary, sources):
        lacking = missing()
        if lacking:
            raise BuildError(
                f"the compiled HTTP/2 point cannot be built: {', '.join(lacking)} missing; "
                f"install the Debian packages {PACKAGES} make"
            )
    argv = ["make", "-C", str(SOURCE), f"BUILD={directory}"]
    return builds.build_once(
        binary,
        sources,
        directory,
        lambda: builds.run_make("the compiled HTTP/2 point", argv, BUILD_TIMEOUT_S, BuildError),
    )
