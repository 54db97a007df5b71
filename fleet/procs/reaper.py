"""A watchdog process that cleans up after its parent, even when the parent is SIGKILLed.

The parent registers what it creates (child pids, temporary directories) by writing lines to
the reaper's stdin, and unregisters them when it cleans up itself. When the parent dies, for
whatever reason, the kernel closes the pipe; the reaper reads EOF, kills every registered
pid that is still alive (SIGCONT first, so a paused child is not left stopped, then
SIGKILL), removes every registered path, and exits.

Protocol, one line each:  ``+pid N``, ``-pid N``, ``+path P``, ``-path P``.

In the parent, use :func:`register_pid`, :func:`unregister_pid`, :func:`register_path`,
:func:`unregister_path`; the reaper is started lazily, once per parent process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading

_lock = threading.Lock()
_reaper: subprocess.Popen | None = None
_owner_pid: int | None = None


def _send(line: str) -> None:
    global _reaper, _owner_pid
    with _lock:
        if _reaper is None or _owner_pid != os.getpid() or _reaper.poll() is not None:
            _reaper = subprocess.Popen(
                [sys.executable, "-m", "fleet.procs.reaper", str(os.getpid())],
                stdin=subprocess.PIPE,
                text=True,
                bufsize=1,
                start_new_session=True,
                close_fds=True,
            )
            _owner_pid = os.getpid()
        stdin = _reaper.stdin
        assert stdin is not None  # started with stdin=PIPE
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reaper is gone; the next call starts a new one


def register_pid(pid: int) -> None:
    _send(f"+pid {pid}")


def unregister_pid(pid: int) -> None:
    _send(f"-pid {pid}")


def register_path(path: os.PathLike | str) -> None:
    _send(f"+path {os.fspath(path)}")


def unregister_path(path: os.PathLike | str) -> None:
    _send(f"-path {os.fspath(path)}")


def _kill(pid: int) -> None:
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


def _watch() -> None:
    pids: set[int] = set()
    paths: set[str] = set()
    for line in sys.stdin:  # ends at EOF: the parent closed the pipe or died
        op, _, arg = line.rstrip("\n").partition(" ")
        if op == "+pid":
            pids.add(int(arg))
        elif op == "-pid":
            pids.discard(int(arg))
        elif op == "+path":
            paths.add(arg)
        elif op == "-path":
            paths.discard(arg)
    for pid in pids:
        _kill(pid)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle
    _watch()  # argv[1], the parent's pid, is there for ps readers
