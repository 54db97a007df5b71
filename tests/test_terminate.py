"""fleet.procs.lifeline.terminate: SIGTERM, then SIGKILL past the grace; the whole session
of a child that runs one (a driver's JVM or compilers); an exited child only reaped."""

from __future__ import annotations

import subprocess
import sys
import time

from fleet.procs.lifeline import terminate
from fleet.procs.waiting import wait_until

IGNORES_TERM = (
    "import os, signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "os.write(1, b'r')\nfor _ in range(600): time.sleep(0.1)\n"
)
WITH_WORKER = (
    "import os, subprocess, sys\n"
    "w = subprocess.Popen([sys.executable, '-c', 'import time\\nfor _ in range(600): time.sleep(0.1)'])\n"
    "os.write(1, str(w.pid).encode() + b'\\n')\nw.wait()\n"
)


def _start(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, **kwargs
    )


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_child_that_ignores_sigterm_is_killed_after_its_grace():
    child = _start(IGNORES_TERM)
    assert child.stdout is not None and child.stdout.read(1) == b"r"
    started = time.monotonic()
    terminate(child, 0.3)
    assert child.returncode == -9 and time.monotonic() - started >= 0.3
    child.stdout.close()


def test_a_session_is_stopped_whole():
    child = _start(WITH_WORKER, start_new_session=True)
    assert child.stdout is not None
    worker = int(child.stdout.readline())
    terminate(child, 5, group=True)
    assert child.returncode == -15
    wait_until(lambda: _gone(worker), 5, "the worker gone with its session")
    child.stdout.close()


def test_a_child_already_gone_is_only_reaped():
    child = _start("pass")
    wait_until(lambda: child.poll() is not None, 10, "the child's exit")
    terminate(child, 0.1)
    assert child.returncode == 0
