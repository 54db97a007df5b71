"""Dying with the parent process (the ``--parent-watch`` extension).

Two independent mechanisms, so a parent killed with SIGKILL leaves nothing behind:

* ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel sends SIGTERM when the parent dies.
  Linux only, and it fires when the parent *thread* that started us ends, so a parent
  should start the server from a thread that outlives it (normally its main thread).
* end of file on stdin: the parent keeps the write end of a pipe; when the parent process
  is gone (however it ended) the pipe closes and the server stops. Without a pipe on
  stdin (e.g. /dev/null) the server stops at once, so only use the flag with one.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading

log = logging.getLogger("toxiproxy")

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent dies (best effort, Linux only)."""
    if not sys.platform.startswith("linux"):
        log.warning("--parent-watch: no PR_SET_PDEATHSIG here; relying on stdin EOF")
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        log.warning("--parent-watch: prctl failed: %s", os.strerror(ctypes.get_errno()))


def on_stdin_eof(callback) -> threading.Thread:
    """Call ``callback`` (from a thread) once stdin reaches end of file."""

    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass  # whatever the parent writes is ignored; only EOF matters
        except OSError:
            pass
        callback()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
