"""The ``go`` client driver: grpc-go 1.33 (Debian's packages) behind proto/driver.proto.

:func:`command` returns how to run it, building it first when the binary is missing or
older than its sources: ``make`` in chaos/clients/drivers/go (its Makefile says how —
offline, GOPATH mode over /usr/share/gocode) into go/build/, or, where the package is
installed read-only, into ``$XDG_CACHE_HOME/grpc-chaos/drivers/go``. A file lock keeps two
processes from building at once; the first build takes a minute (grpc-go is compiled).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from chaos.clients.builtin import DriverCommand
from chaos.clients.driver import DriverError
from chaos.clients.drivers import compiled

SOURCE = Path(__file__).resolve().parent / "go"
BINARY = "grpc-chaos-go-driver"
GRPC_GO = Path("/usr/share/gocode/src/google.golang.org/grpc")
PACKAGES = "golang-go golang-google-grpc-dev golang-goprotobuf-dev protobuf-compiler"
# grpc-go 1.33 honours a retryPolicy only with this (its internal/envconfig).
ENV = {"GRPC_GO_RETRY": "on"}
BUILD_TIMEOUT_S = 900.0  # a cold build compiles grpc-go and its dependencies


def command() -> DriverCommand:
    """The go driver's command, built first when it needs building."""
    return DriverCommand("go", [str(build())], dict(ENV))


def build() -> Path:
    """The driver binary, (re)built when missing or older than its sources."""
    proto = compiled.protocol_file("go")
    directory = compiled.build_dir(SOURCE, "go")
    binary = directory / BINARY
    sources = [*SOURCE.glob("*.go"), SOURCE / "Makefile", proto]
    if not compiled.fresh(binary, sources):
        _check_tools()
    argv = ["make", "-C", str(SOURCE), f"BUILD={directory}", f"PROTO={proto}"]
    return compiled.build_once(
        binary, sources, directory, lambda: compiled.run_make("go", argv, BUILD_TIMEOUT_S)
    )


def _check_tools() -> None:
    missing = [tool for tool in ("go", "protoc", "protoc-gen-go", "make") if not shutil.which(tool)]
    if not GRPC_GO.is_dir():
        missing.append(f"grpc-go's sources ({GRPC_GO})")
    if missing:
        raise DriverError(
            f"client driver 'go' cannot be built: {', '.join(missing)} missing; install the "
            f"Debian packages {PACKAGES}" + (" make" if "make" in missing else "")
        )
