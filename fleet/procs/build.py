"""Programs grpc-chaos compiles on the user's machine (the go and java client drivers, the
compiled HTTP/2 point): where a build goes, whether it is current, one build at a time,
and ``make`` run with its output kept.

    build_dir(SOURCE, "drivers/go")   SOURCE/build, or $XDG_CACHE_HOME/grpc-chaos/drivers/go
                                      where the installed package is read-only
    build_once(built, sources, d, make)
                                      make() under a file lock in d, unless ``built`` is
                                      newer than every source (checked again once the lock is
                                      held: another process may have built it meanwhile)
    run_make(what, argv, timeout, error)
                                      make in a session of its own (stopping it stops the
                                      compilers too); a failure or a timeout raises ``error``
                                      with the tail of the build's output
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

OUTPUT_TAIL = 40  # lines of the build's output kept for the error message


def build_dir(source: Path, name: str) -> Path:
    """Where ``source``'s build goes: its own build/ folder when it can be written, else
    ``name`` under the user's cache."""
    local = source / "build"
    if os.access(local if local.exists() else source, os.W_OK):
        return local
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "grpc-chaos" / name


def fresh(built: Path, sources: Iterable[Path]) -> bool:
    try:
        when = built.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(source.stat().st_mtime <= when for source in sources)


def build_once(built: Path, sources: list[Path], directory: Path, make: Callable[[], None]) -> Path:
    """``built``, made by ``make()`` first unless it is newer than every source."""
    if fresh(built, sources):
        return built
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not fresh(built, sources):  # another process may have built it meanwhile
            make()
    return built


def run_make(what: str, argv: list[str], timeout_s: float, error: type[Exception]) -> None:
    """Run a build; ``error`` (with ``what`` and the tail of its output) when it fails or
    does not finish within ``timeout_s``."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except BaseException as exc:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise error(f"{what}: {' '.join(argv)} did not finish in {timeout_s:g} s") from None
        raise
    if process.returncode != 0:
        tail = "\n    ".join(output.decode(errors="replace").splitlines()[-OUTPUT_TAIL:])
        raise error(
            f"{what}: the build failed ({' '.join(argv)} exited with "
            f"{process.returncode}):\n    {tail}"
        )
