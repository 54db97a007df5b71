"""The ``go`` client driver: grpc-go 1.33 (Debian's packages) behind proto/driver.proto.

:func:`command` returns how to run it, building it first when the binary is missing or
older than its sources: ``make`` in chaos/clients/drivers/go (its Makefile says how —
offline, GOPATH mode over /usr/share/gocode) into go/build/, or, where the package is
installed read-only, into ``$XDG_CACHE_HOME/grpc-chaos/drivers/go``. A file lock keeps two
processes from building at once; the first build takes a minute (grpc-go is compiled).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from pathlib import Path

from chaos.clients.builtin import DriverCommand
from chaos.clients.driver import DriverError

SOURCE = Path(__file__).resolve().parent / "go"
BINARY = "grpc-chaos-go-driver"
# The spec in a checkout; an installed package carries a copy next to this module.
PROTOS = (
    Path(__file__).resolve().parents[3] / "proto" / "driver.proto",
    Path(__file__).resolve().parent / "driver.proto",
)
GRPC_GO = Path("/usr/share/gocode/src/google.golang.org/grpc")
PACKAGES = "golang-go golang-google-grpc-dev golang-goprotobuf-dev protobuf-compiler"
# grpc-go 1.33 honours a retryPolicy only with this (its internal/envconfig).
ENV = {"GRPC_GO_RETRY": "on"}
BUILD_TIMEOUT_S = 900.0  # a cold build compiles grpc-go and its dependencies
OUTPUT_TAIL = 40  # lines of the build's output kept for the error message


def command() -> DriverCommand:
    """The go driver's command, built first when it needs building."""
    return DriverCommand("go", [str(build())], dict(ENV))


def build() -> Path:
    """The driver binary, (re)built when missing or older than its sources."""
    proto = _proto()
    build_dir = _build_dir()
    binary = build_dir / BINARY
    if _fresh(binary, proto):
        return binary
    _check_tools()
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not _fresh(binary, proto):  # another process may have built it meanwhile
            _make(build_dir, proto)
    return binary


def _proto() -> Path:
    for path in PROTOS:
        if path.is_file():
            return path
    raise DriverError(
        "client driver 'go': no driver.proto to build it from (looked at "
        + ", ".join(str(p) for p in PROTOS)
        + ")"
    )


def _build_dir() -> Path:
    local = SOURCE / "build"
    if os.access(local if local.exists() else SOURCE, os.W_OK):
        return local
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "grpc-chaos" / "drivers" / "go"


def _fresh(binary: Path, proto: Path) -> bool:
    sources = [*SOURCE.glob("*.go"), SOURCE / "Makefile", proto]
    try:
        built = binary.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(source.stat().st_mtime <= built for source in sources)


def _check_tools() -> None:
    missing = [tool for tool in ("go", "protoc", "protoc-gen-go", "make") if not shutil.which(tool)]
    if not GRPC_GO.is_dir():
        missing.append(f"grpc-go's sources ({GRPC_GO})")
    if missing:
        raise DriverError(
            f"client driver 'go' cannot be built: {', '.join(missing)} missing; install the "
            f"Debian packages {PACKAGES}" + (" make" if "make" in missing else "")
        )


def _make(build_dir: Path, proto: Path) -> None:
    argv = ["make", "-C", str(SOURCE), f"BUILD={build_dir}", f"PROTO={proto}"]
    # A session of its own, so that stopping it stops go's compilers too, not only make.
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=BUILD_TIMEOUT_S)
    except BaseException as exc:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise DriverError(
                f"client driver 'go': {' '.join(argv)} did not finish in {BUILD_TIMEOUT_S:.0f} s"
            ) from None
        raise
    if process.returncode != 0:
        tail = "\n    ".join(output.decode(errors="replace").splitlines()[-OUTPUT_TAIL:])
        raise DriverError(
            f"client driver 'go': the build failed ({' '.join(argv)} exited with "
            f"{process.returncode}):\n    {tail}"
        )
