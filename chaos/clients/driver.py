"""A client driver process, started from a command and spoken to over proto/driver.proto.

::

    Driver(["./my-driver"], name="mine").start()
        spawn (stdin: a lifeline pipe; own process group; the reaper kills it if we die)
        read one JSON line within START_TIMEOUT_S: {"driver": "grpc-chaos", "protocol": 1, "port": N}
        Describe(protocol=1)  -> Capabilities (its now_ns must be on our CLOCK_MONOTONIC)
    driver.open_channel(config) -> RemoteChannel   (one client)
        .call(method, request, deadline_s, identity_key) -> RpcRecord
    driver.close(): SIGTERM, then SIGKILL after STOP_GRACE_S; its stderr tail kept

Everything that can go wrong with a driver of a team's own — a command that does not exist,
exits, hangs at start, prints something else, speaks another protocol, answers on another
clock, dies mid-scenario — raises :class:`DriverError`: one message naming the driver and
what it did, with the tail of its stderr; nothing is left running.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence

import grpc

from fleet.procs import lifeline, reaper
from fleet.protos import driver_pb2, driver_pb2_grpc

PROTOCOL = 1
# A driver answers Describe within 2 s of its start (the protocol's promise); 10 s is what a
# busy machine may add before grpc-chaos calls it broken.
START_TIMEOUT_S = 10.0
STOP_GRACE_S = 3.0
CONTROL_TIMEOUT_S = 10.0  # one control call (not a Call, which has its own deadline)
# Largest message the runner takes from a driver (a batch of records, answers included).
RECORDS_MAX = 64 * 1024 * 1024
STDERR_TAIL = 40  # lines kept for the error message
# Its clock reading must fall between ours before and after asking, within this much
# (another clock — CLOCK_REALTIME, a boot-time clock, microseconds — is off by far more).
CLOCK_SLACK_NS = 50_000_000


class DriverError(RuntimeError):
    """The client driver misbehaved: the message names it and says how."""


class Driver:
    """One running driver process (a context manager)."""

    def __init__(
        self,
        command: Sequence[str],
        name: str,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ):
        if not command:
            raise DriverError(f"client driver {name!r}: an empty command")
        self.command = list(command)
        self.name = name
        self.env = env
        self.cwd = cwd
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen | None = None
        self.capabilities: driver_pb2.Capabilities | None = None
        self._channel: grpc.Channel | None = None
        self.stub: driver_pb2_grpc.ClientDriverStub | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL)
        self._stderr_thread: threading.Thread | None = None

    def __enter__(self) -> Driver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Driver {self.name} pid={self.process.pid if self.process else None}>"

    @property
    def describe(self) -> str:
        """ "grpc-go 1.33.3 (go driver)" — what every verdict taken through it names."""
        caps = self.capabilities
        if caps is None:
            return f"{self.name} driver"
        return f"{caps.implementation} {caps.version} ({self.name} driver)"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Driver:
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,  # the lifeline: EOF when we are gone
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            raise DriverError(
                f"client driver {self.name!r}: cannot run {self.command[0]!r}: {err.strerror}"
            ) from None
        reaper.register_pid(self.process.pid)
        self._stderr_thread = threading.Thread(
            target=self._read_stderr, name=f"driver-{self.name}-stderr", daemon=True
        )
        self._stderr_thread.start()
        try:
            port = self._ready_port()
            # Record batches carry each OK RPC's answer: a scenario with large messages
            # (hundreds of KiB) fills one beyond gRPC's default 4 MiB receive limit.
            self._channel = grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", RECORDS_MAX)]
            )
            self.stub = driver_pb2_grpc.ClientDriverStub(self._channel)
            self.capabilities = self._describe()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the driver (SIGTERM, then SIGKILL after STOP_GRACE_S); idempotent."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        process, self.process = self.process, None
        if process is None:
            return
        lifeline.terminate(process, STOP_GRACE_S, group=True)  # its own session: workers too
        if self._stderr_thread is not None:
            self._stderr_thread.join(STOP_GRACE_S)  # it ends at the EOF of the exit
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        reaper.unregister_pid(process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exited(self, within_s: float = 1.0) -> bool:
        """Whether it has exited, or does within ``within_s`` (a broken connection is seen
        a moment before the kernel reports the process gone)."""
        if self.process is None:
            return True
        try:
            self.process.wait(within_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def failure(self, what: str) -> DriverError:
        """A DriverError naming this driver, what went wrong, and what it printed."""
        status = ""
        if self.process is not None and self.process.poll() is not None:
            status = f" (it exited with {self.process.returncode})"
        tail = self.stderr_tail()
        return DriverError(
            f"client driver {self.name!r} ({' '.join(self.command)}): {what}{status}"
            + ("\n  its stderr, last lines:\n    " + tail.replace("\n", "\n    ") if tail else "")
        )

    # ------------------------------------------------------------------ start-up

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for raw in self.process.stderr:  # ends at EOF: the driver exited
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def _ready_port(self) -> int:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + self.start_timeout_s
        fd = self.process.stdout.fileno()
        line = b""
        while not line.endswith(b"\n") and len(line) < 4096:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.failure(
                    f"printed no ready line within {self.start_timeout_s:.0f} s"
                    + (f" (got {line[:200]!r})" if line else "")
                )
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                if self.process.poll() is not None:
                    raise self.failure("exited before it was ready")
                continue
            chunk = os.read(fd, 4096 - len(line))
            if not chunk:
                if self.exited():
                    raise self.failure("exited before it was ready")
                raise self.failure("closed its stdout before it was ready")
            line += chunk
        try:
            ready_line = json.loads(line.split(b"\n", 1)[0])
            if ready_line.get("driver") != "grpc-chaos":
                raise ValueError("not a grpc-chaos driver's ready line")
            protocol, port = ready_line.get("protocol"), ready_line.get("port")
        except (ValueError, AttributeError):
            raise self.failure(
                "its first line is not the ready line "
                f'{{"driver": "grpc-chaos", "protocol": 1, "port": N}}: {line[:200]!r}'
            ) from None
        if protocol != PROTOCOL:
            raise self.failure(f"speaks protocol {protocol!r}; grpc-chaos speaks {PROTOCOL}")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise self.failure(f"its ready line names no port: {line[:200]!r}")
        return port

    def _describe(self) -> driver_pb2.Capabilities:
        assert self.stub is not None
        before = time.monotonic_ns()
        try:
            caps = self.stub.Describe(
                driver_pb2.DescribeRequest(protocol=PROTOCOL),
                timeout=max(1.0, self.start_timeout_s),
                wait_for_ready=True,
            )
        except grpc.RpcError as err:
            raise self.failure(f"Describe failed: {err.code().name} {err.details()}") from None
        after = time.monotonic_ns()
        if caps.protocol != PROTOCOL:
            raise self.failure(
                f"Describe says protocol {caps.protocol}; grpc-chaos speaks {PROTOCOL}"
            )
        if not caps.implementation:
            raise self.failure("Describe names no implementation")
        if not before - CLOCK_SLACK_NS <= caps.now_ns <= after + CLOCK_SLACK_NS:
            raise self.failure(
                f"its clock reads {caps.now_ns} ns, ours (CLOCK_MONOTONIC) {before}..{after}: "
                "records must be stamped with CLOCK_MONOTONIC in ns"
            )
        return caps

    # ------------------------------------------------------------------ use

    def control(self, method: str, request, timeout: float = CONTROL_TIMEOUT_S):
        """One control call; a failure of the driver (not of the call's arguments) raises
        DriverError naming it."""
        if self.stub is None or not self.alive():
            raise self.failure(f"is not running (asked {method})")
        try:
            return getattr(self.stub, method)(request, timeout=timeout)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAVAILABLE and self.exited():
                raise self.failure(f"died during {method}") from None
            raise self.failure(f"{method} failed: {err.code().name} {err.details()}") from None

    def open_channel(self, config: driver_pb2.ChannelConfig) -> RemoteChannel:
        ref = self.control("OpenChannel", config)
        return RemoteChannel(self, ref.id)


class RemoteChannel:
    """One client in a driver process (a context manager, like a grpc.Channel)."""

    def __init__(self, driver: Driver, channel_id: int):
        self.driver = driver
        self.id = channel_id
        self.closed = False

    def __enter__(self) -> RemoteChannel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed and self.driver.alive():
            self.driver.control("CloseChannel", driver_pb2.ChannelRef(id=self.id), timeout=60)
        self.closed = True

    def call(
        self, method: str, request: bytes, deadline_s: float, identity_key: str | None
    ) -> driver_pb2.RpcRecord:
        """One RPC, ended; its record checked to be on our clock."""
        before = time.monotonic_ns()
        record = self.driver.control(
            "Call",
            driver_pb2.CallRequest(
                channel=self.id,
                method=method,
                request=request,
                deadline_ms=max(1, round(deadline_s * 1000)),
                identity_key=identity_key or "",
            ),
            timeout=deadline_s + CONTROL_TIMEOUT_S,
        )
        check_record(self.driver, record, before, time.monotonic_ns())
        return record


def check_record(driver: Driver, record, not_before_ns: int, not_after_ns: int) -> None:
    """A record's times must lie on our clock, in the window it was asked for, and end
    after they start: anything else is a broken driver, never a verdict's input."""
    if not (
        not_before_ns - CLOCK_SLACK_NS
        <= record.start_ns
        <= record.end_ns
        <= not_after_ns + CLOCK_SLACK_NS
    ):
        raise driver.failure(
            f"sent a record with start {record.start_ns} and end {record.end_ns} ns, outside "
            f"{not_before_ns}..{not_after_ns} (CLOCK_MONOTONIC) or ending before it starts"
        )
