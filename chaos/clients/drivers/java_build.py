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

import os
import shutil
from pathlib import Path

from chaos.clients.builtin import DriverCommand
from chaos.clients.driver import DriverError
from chaos.clients.drivers import compiled

SOURCE = Path(__file__).resolve().parent / "java"
JAR = "grpc-chaos-java-driver.jar"
ARCHIVE = "grpc-chaos-java-driver.jsa"  # its start's classes (AppCDS), made by the build
MAIN_CLASS = "grpcchaos.driver.Main"
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
    proto = compiled.protocol_file("java")
    directory = compiled.build_dir(SOURCE, "java")
    key = _archive_key(directory)
    sources = [*SOURCE.glob("src/**/*.java"), SOURCE / "Makefile", proto, key]
    argv = [
        "make",
        "-C",
        str(SOURCE),
        f"BUILD={directory}",
        f"PROTO={proto}",
        f"JAVA_LIB={JAVA_LIB}",
        f"RUN_CLASSPATH={_classpath(directory)}",
        f"JVM_FLAGS={' '.join(JVM_FLAGS)}",
    ]
    return compiled.build_once(
        directory / ARCHIVE,
        sources,
        directory,
        lambda: compiled.run_make("java", argv, BUILD_TIMEOUT_S),
    )


def _archive_key(directory: Path) -> Path:
    """The file that says what the class archive is for — the JVM flags and the class path
    the driver runs with — rewritten only when they change, so that a change (and only a
    change) makes the archive older than one of its sources: the JVM ignores an archive
    made for other flags, and each start would be slow again."""
    key = directory / "archive-key"
    text = f"{' '.join(JVM_FLAGS)}\n{_classpath(directory)}\n"
    try:
        if key.read_text() == text:
            return key
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    partial = key.with_name(f"{key.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(key)  # a reader sees the old text or the new, never half of it
    return key


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
