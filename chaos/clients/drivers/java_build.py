"""The ``java`` client driver: grpc-java 1.41 (Debian's packages) behind proto/driver.proto.

:func:`command` returns how to run it, building it first when its jar is missing or older
than its sources: ``make`` in chaos/clients/drivers/java (its Makefile says how — protoc with
grpc_java_plugin, then javac against the jars in /usr/share/java; offline, no Maven) into
java/build/, or, where the package is installed read-only, into
``$XDG_CACHE_HOME/grpc-chaos/drivers/java``. A file lock keeps two processes from building at
once; a build takes a few seconds.

It runs on the JVM with flags for a quick start (the protocol wants Describe answered within
2 s of start): C1 only, the serial GC, and a class archive of what a start loads (AppCDS,
made by the build: the driver drives itself once, over loopback), which halves the start.
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

SOURCE = Path(__file__).resolve().parent / "java"
JAR = "grpc-chaos-java-driver.jar"
ARCHIVE = "grpc-chaos-java-driver.jsa"  # its start's classes (AppCDS), made by the build
MAIN_CLASS = "grpcchaos.driver.Main"
# The spec in a checkout; an installed package carries a copy next to this module.
PROTOS = (
    Path(__file__).resolve().parents[3] / "proto" / "driver.proto",
    Path(__file__).resolve().parent / "driver.proto",
)
JAVA_LIB = Path("/usr/share/java")
# The jars it runs with (javac needs a subset of them, and jsr305's annotations), and the
# Debian package each comes from.
RUNTIME_JARS = {
    "grpc-api": "libgrpc-java",
    "grpc-context": "libgrpc-java",
    "grpc-core": "libgrpc-java",
    "grpc-netty": "libgrpc-java",
    "grpc-stub": "libgrpc-java",
    "grpc-protobuf": "libgrpc-java",
    "grpc-protobuf-lite": "libgrpc-java",
    "guava": "libguava-java",
    "gson": "libgoogle-gson-java",  # grpc-core's JsonParser
    "perfmark-api": "libperfmark-java",
    "protobuf": "libprotobuf-java",
    "netty-buffer": "libnetty-java",
    "netty-codec": "libnetty-java",
    "netty-codec-http": "libnetty-java",
    "netty-codec-http2": "libnetty-java",
    "netty-codec-socks": "libnetty-java",
    "netty-common": "libnetty-java",
    "netty-handler": "libnetty-java",
    "netty-handler-proxy": "libnetty-java",
    "netty-resolver": "libnetty-java",
    "netty-transport": "libnetty-java",
}
BUILD_JARS = {"jsr305": "libjsr305-java"}
TOOLS = {
    "java": "openjdk-17-jdk-headless",
    "javac": "openjdk-17-jdk-headless",
    "jar": "openjdk-17-jdk-headless",
    "protoc": "protobuf-compiler",
    "grpc_java_plugin": "protobuf-compiler-grpc-java-plugin",
    "make": "make",
}
# C1 only (no C2 compiler threads competing with the driver for two cores at start) and
# the serial GC; the class archive is made with the same flags and class path.
# -UsePerfData: no /tmp/hsperfdata_USER folder left behind by every driver run.
JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData"]
# The JVM's own messages (e.g. an archive it cannot use) to stderr: stdout is the ready line's.
LOG_FLAGS = ["-Xlog:disable", "-Xlog:all=warning:stderr"]
BUILD_TIMEOUT_S = 600.0
OUTPUT_TAIL = 40  # lines of the build's output kept for the error message


def command() -> DriverCommand:
    """The java driver's command, built first when it needs building."""
    archive = build()
    java = shutil.which("java")
    if java is None:  # build() checked it; a PATH changed since is still named
        raise DriverError(_missing(["java"]))
    argv = [java, *JVM_FLAGS, *LOG_FLAGS, f"-XX:SharedArchiveFile={archive}"]
    return DriverCommand("java", [*argv, "-cp", _classpath(archive.parent), MAIN_CLASS], {})


def _classpath(build_dir: Path) -> str:
    jars = [build_dir / JAR, *(JAVA_LIB / f"{name}.jar" for name in RUNTIME_JARS)]
    return ":".join(str(jar) for jar in jars)


def build() -> Path:
    """The driver's class archive (its jar beside it), (re)built when missing or older than
    its sources."""
    _check_tools()
    proto = _proto()
    build_dir = _build_dir()
    archive = build_dir / ARCHIVE
    if _fresh(archive, proto):
        return archive
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not _fresh(archive, proto):  # another process may have built it meanwhile
            _make(build_dir, proto)
    return archive


def _proto() -> Path:
    for path in PROTOS:
        if path.is_file():
            return path
    raise DriverError(
        "client driver 'java': no driver.proto to build it from (looked at "
        + ", ".join(str(p) for p in PROTOS)
        + ")"
    )


def _build_dir() -> Path:
    local = SOURCE / "build"
    if os.access(local if local.exists() else SOURCE, os.W_OK):
        return local
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "grpc-chaos" / "drivers" / "java"


def _fresh(built_file: Path, proto: Path) -> bool:
    sources = [*SOURCE.glob("src/**/*.java"), SOURCE / "Makefile", proto]
    try:
        built = built_file.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(source.stat().st_mtime <= built for source in sources)


def _missing(missing: list[str]) -> str:
    packages = sorted(
        {TOOLS.get(m) or RUNTIME_JARS.get(m) or BUILD_JARS.get(m) or m for m in missing}
    )
    return (
        f"client driver 'java' cannot be built or run: {', '.join(missing)} missing; install "
        f"the Debian packages {' '.join(packages)}"
    )


def _check_tools() -> None:
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    missing += [
        name for name in (*RUNTIME_JARS, *BUILD_JARS) if not (JAVA_LIB / f"{name}.jar").is_file()
    ]
    if missing:
        raise DriverError(_missing(missing))


def _make(build_dir: Path, proto: Path) -> None:
    argv = [
        "make",
        "-C",
        str(SOURCE),
        f"BUILD={build_dir}",
        f"PROTO={proto}",
        f"JAVA_LIB={JAVA_LIB}",
        f"RUN_CLASSPATH={_classpath(build_dir)}",
        f"JVM_FLAGS={' '.join(JVM_FLAGS)}",
    ]
    # A session of its own, so that stopping it stops javac too, not only make.
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
                f"client driver 'java': {' '.join(argv)} did not finish in {BUILD_TIMEOUT_S:.0f} s"
            ) from None
        raise
    if process.returncode != 0:
        tail = "\n    ".join(output.decode(errors="replace").splitlines()[-OUTPUT_TAIL:])
        raise DriverError(
            f"client driver 'java': the build failed ({' '.join(argv)} exited with "
            f"{process.returncode}):\n    {tail}"
        )
