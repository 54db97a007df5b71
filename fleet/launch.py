"""How one backend process is started, known to be ready, and stopped — for any server.

A fleet runs N copies of one server command: the built-in Greeter (``python -m
fleet.server``) or the user's own (a target file's ``server.command``, chaos/targets/)::

    argv with placeholders filled ({host} {port} {cert} {key} {ca} {client_ca} {id}
    {workdir} {control})
      -> spawned through a trampoline that sets PR_SET_PDEATHSIG and execs the command,
         in its own process group (a server that forks workers is one backend), stdout
         and stderr to the backend's log
      -> ready when: "line"   it printed its JSON ready line (the built-in Greeter)
                     "health" its health service says SERVING for the target's service
                     "rpc"    the target's RPC answers correctly
         polled with a deadline; a process that exits meanwhile is an error that says so
      -> stopped with the target's stop signal, SIGKILL after its grace (and said so)

A command that does not exist, exits at once, never becomes ready or ignores its stop
signal is reported in one line naming the backend, the command and what happened, with
the tail of its log; nothing is left running (the caller reaps on error).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleet.procs.waiting import wait_until

# Sets PR_SET_PDEATHSIG on itself (it survives execve), checks that the parent is still the
# one that started it, and becomes the command: a server that knows nothing of grpc-chaos
# still dies with the runner, even on SIGKILL (the reaper covers the spawning thread's exit).
TRAMPOLINE = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('parent already gone')\n"
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as error:\n"
    "    sys.exit(f'cannot run {sys.argv[2]!r}: {error.strerror}')\n"
)
# One readiness probe answers in milliseconds on loopback; a stuck one must not eat the
# whole start deadline.
PROBE_TIMEOUT_S = 1.0


class LaunchError(Exception):
    """A backend process could not be started, made ready or stopped; names which and why."""


@dataclass(frozen=True)
class Stopped:
    """How a stop went: the exit status and whether the grace ran out (killed)."""

    returncode: int | None
    forced: bool
    seconds: float

    def describe(self, signal_name: str, grace_s: float) -> str:
        if self.forced:
            return (
                f"still running {grace_s:g} s after {signal_name}: killed (SIGKILL); a "
                f"server should drain and exit within its grace"
            )
        how = (
            f"signal {signal.Signals(-self.returncode).name}"
            if self.returncode and self.returncode < 0
            else f"exit code {self.returncode}"
        )
        return f"exited after {self.seconds:.2f} s ({how})"


def spawn(
    argv: list[str], log: Path, env: dict[str, str] | None, cwd: Path | None, pipe_stdout: bool
) -> subprocess.Popen:
    """Start ``argv`` through the trampoline, in its own session; stdout to a pipe (for a
    ready line) or, like stderr, to ``log``."""
    command = [sys.executable, "-c", TRAMPOLINE, str(os.getpid()), *argv]
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL if not pipe_stdout else subprocess.PIPE,
            stdout=subprocess.PIPE if pipe_stdout else out,
            stderr=out,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            text=pipe_stdout,
            bufsize=1 if pipe_stdout else -1,
            start_new_session=True,
            close_fds=True,
        )


class ReadyLine:
    """Reads a child's stdout on a thread; :meth:`wait` returns its JSON ready line or None."""

    def __init__(self, process: subprocess.Popen):
        if process.stdout is None:
            raise ValueError("ReadyLine reads a process started with stdout=subprocess.PIPE")
        self._stdout = process.stdout
        self._info: dict | None = None
        self._done = threading.Event()
        threading.Thread(target=self._read, daemon=True, name=f"ready-{process.pid}").start()

    def _read(self) -> None:
        try:
            for line in self._stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not ours (a stray print); the ready line is JSON
                if isinstance(message, dict) and message.get("ready"):
                    self._info = message
                    break
        except (OSError, ValueError):
            pass  # stdout closed under us: the fleet is being closed
        self._done.set()

    def wait(self, timeout: float) -> dict | None:
        self._done.wait(timeout)
        return self._info


def probe_health(channel: grpc.Channel, service: str) -> bool:
    """Whether the backend's health service says SERVING for ``service`` (False while it
    does not answer yet)."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=PROBE_TIMEOUT_S
        )
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED):
            raise LaunchError(
                f"its health service answers {error.code().name} for service {service!r}"
                + (
                    ' (it serves no health service: use ready = "rpc")'
                    if error.code() is grpc.StatusCode.UNIMPLEMENTED
                    else " (set health.service to a name it registers)"
                )
            ) from None
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def probe_health_known(channel: grpc.Channel, service: str) -> bool:
    """Whether the backend's health service knows ``service`` (any status); False while it
    says NOT_FOUND (a server registers its names as it starts). A server with no health
    service at all (UNIMPLEMENTED) is a LaunchError: a target that names a health service
    its server does not serve would fail every scenario that watches health, for a reason
    that is the target file's."""
    try:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=PROBE_TIMEOUT_S
        )
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.UNIMPLEMENTED:
            raise LaunchError(
                f"[health] service = {service!r}, but it serves no health service "
                f"(grpc.health.v1 Check: UNIMPLEMENTED): serve grpc.health.v1, or remove "
                f"[health] service from the target file"
            ) from None
        return False
    return True


def probe_listening(address: str) -> bool:
    """Whether something accepts TCP connections on ``address`` now."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def probe_rpc(channel: grpc.Channel, rpc) -> bool:
    """Whether the target's RPC answers correctly now (False while it cannot answer)."""
    call = channel.unary_unary(rpc.path)
    try:
        if rpc.needs_resolve:  # reflection: the types come from the server, once it answers
            rpc.resolve(channel)
        data = call(rpc.request_bytes(0), timeout=min(rpc.deadline_s, PROBE_TIMEOUT_S * 5))
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.UNIMPLEMENTED:
            raise LaunchError(
                f"it does not serve {rpc.method}: UNIMPLEMENTED ({error.details()})"
            ) from None
        return False
    problem = rpc.check_response(data, 0)
    if problem:
        raise LaunchError(f"its answer to {rpc.method} is wrong: {problem}")
    return True


def await_ready(process: subprocess.Popen, how: str, probe, deadline: float, log: Path) -> None:
    """Wait until ``probe()`` is true, the process dies, or the deadline passes."""
    waited_from = time.monotonic()

    def ready() -> bool:
        if process.poll() is not None:
            raise LaunchError(
                f"exited with {_status(process.returncode)} before it was "
                f"ready: {tail(log) or 'no output'}"
            )
        return probe()

    try:
        wait_until(ready, max(0.0, deadline - time.monotonic()), how)
    except TimeoutError:
        raise LaunchError(
            f"not ready ({how}) within its start timeout "
            f"(waited {time.monotonic() - waited_from:.1f} s): "
            f"{tail(log) or 'no output'}"
        ) from None


def stop(process: subprocess.Popen, sig: int, grace_s: float) -> Stopped:
    """Send ``sig`` to the process group and wait ``grace_s`` for it to exit; SIGKILL
    after that. Returns how it went."""
    started = time.monotonic()
    signal_group(process.pid, sig)
    if sig != signal.SIGKILL:
        signal_group(process.pid, signal.SIGCONT)  # a stopped process would never handle it
    try:
        process.wait(timeout=grace_s)
        return Stopped(process.returncode, False, time.monotonic() - started)
    except subprocess.TimeoutExpired:
        signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return Stopped(process.returncode, True, time.monotonic() - started)


def signal_group(pid: int, sig: int) -> None:
    """Signal the backend's process group (the server and any workers it forked)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # not a group leader any more: signal the process itself
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _status(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
