"""Make a child process die with its parent, even when the parent is killed with SIGKILL.

Two independent mechanisms, because each has a hole the other covers:

* ``prctl(PR_SET_PDEATHSIG)``: the kernel signals the child when its parent *thread* exits.
  It is set by the child itself at start-up, so there is a window between fork and prctl
  in which the parent may already be gone; :func:`die_with_parent` closes it by comparing
  ``getppid()`` with the pid the parent passed in.
* a lifeline pipe on stdin: the parent keeps the write end open and never writes. When the
  parent dies for any reason the kernel closes it, the child's read returns EOF, and the
  child exits. This also holds when the spawning thread ends before the parent process.

Parents use :func:`spawn` (stdin is the lifeline, stdout a pipe for the ready line).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

_PR_SET_PDEATHSIG = 1


# The signal whose KeyboardInterrupt raise_interrupt raised: kept so that a raise Python
# dropped can be raised again (check_interrupt).
_pending: int | None = None


def raise_interrupt(signum, _frame) -> None:
    """A signal handler that makes SIGTERM (or an ignored SIGINT) stop a command the way
    Ctrl-C does, so its ``except KeyboardInterrupt`` stops its children and keeps what was
    written (the gate, the fuzzer, the campaign).

    Python runs a handler wherever the main thread is, and drops the exception it raises
    where none can propagate: the at-fork hooks ``subprocess`` runs around a fork with
    ``preexec_fn`` (logging's lock release: "Exception ignored in ... _releaseLock"), a
    ``__del__``. A Ctrl-C that lands there would be lost — seen: the gate, interrupted
    while it started a pytest, ran every repeat to the end. So the signal is remembered,
    and the loops that wait on children call :func:`check_interrupt`.
    """
    global _pending
    _pending = signum
    raise KeyboardInterrupt(f"signal {signum}")


def check_interrupt() -> None:
    """Raise KeyboardInterrupt again if :func:`raise_interrupt` ran (its raise may have
    been dropped); a no-op otherwise. Call it where a command waits, at each turn."""
    if _pending is not None:
        raise KeyboardInterrupt(f"signal {_pending}")


@contextmanager
def interrupts() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise KeyboardInterrupt (via
    :func:`raise_interrupt`), also where SIGINT came in ignored: a background job of a
    non-interactive shell, nohup — Python leaves an inherited SIG_IGN alone, and neither
    the command nor the children that inherit it would ever stop. Afterwards the previous
    handlers, and no pending interrupt (an in-process caller may run the next command)."""
    global _pending
    _pending = None
    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _pending = None


def set_pdeathsig(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent thread exits.

    Meant for ``preexec_fn`` of a child that must not outlive its parent. A no-op where
    ``prctl`` does not exist (not Linux); the stdin lifeline still covers that case.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the stdin lifeline still works
        pass


def die_with_parent(parent_pid: int, on_parent_death: Callable[[], None] | None = None) -> None:
    """Arrange for this process to end when ``parent_pid`` ends.

    ``on_parent_death`` runs (from a daemon thread) when the lifeline pipe on stdin reaches
    EOF; it should stop quickly. Whatever it does, the process exits right after it.
    """
    set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass  # the parent never writes; tolerate it anyway
        except OSError:
            pass
        if on_parent_death is not None:
            try:
                on_parent_death()
            finally:
                os._exit(0)
        os._exit(0)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def terminate(process: subprocess.Popen, grace_s: float, group: bool = False) -> None:
    """Stop a child: SIGTERM (to its process group with ``group``: a child that runs in a
    session of its own with workers), then SIGKILL if it has not exited within ``grace_s``;
    returns once it is reaped. A child already gone is only reaped."""
    if process.poll() is None:
        _signal(process, signal.SIGTERM, group)
        try:
            process.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL, group)
    process.wait()


def _signal(process: subprocess.Popen, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except ProcessLookupError:
        pass  # it exited meanwhile: wait() reaps it


def spawn(
    argv: Sequence[str], *, env: dict[str, str] | None = None, stderr=None
) -> subprocess.Popen:
    """Start ``argv`` with a lifeline on stdin and its stdout piped (text, line-buffered).

    The child is expected to call :func:`die_with_parent` with ``os.getpid()`` of this
    process (passed on its command line). It starts in its own process group so that a
    Ctrl-C in the terminal reaches only the parent, which then stops its children in order.
    """
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        text=True,
        bufsize=1,
        start_new_session=True,
        close_fds=True,
    )
