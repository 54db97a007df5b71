"""Starting the HTTP/2 fault point process and driving its points from the caller's process.

::

    with Http2Server() as server:
        point = server.add_point(
            "b1", upstream=("127.0.0.1", 50051), server_name="greeter.example.com",
            cert=cert.cert, key=cert.key, ca=pki.ca_cert,
        )
        channel = grpc.secure_channel(point.target, credentials, options)  # + name override
        in_force_ns = point.inject(Http2Fault.rst_stream("REFUSED_STREAM", count=1))
        ...
        point.events()  # GOAWAYs, connections opened and closed, faults: on CLOCK_MONOTONIC

One process serves every point (its own CPU, away from the runner's GIL); it dies with the
process that started it (a lifeline pipe and PR_SET_PDEATHSIG, fleet/procs/lifeline.py),
so a killed runner leaves nothing behind. Create the server from a thread that outlives it
(normally the main thread): the kernel's death signal follows that thread.

Bad input raises ValueError naming it (an unknown point, fault kind or error code, a
GOAWAY with no open connection); a point process that stopped answering raises
:class:`Http2PointError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from os import PathLike
from pathlib import Path
from typing import Any

from fleet.procs import lifeline

from . import go_build
from .faults import KINDS, Http2Fault

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
# One control call: an injection waits at most 5 s for SETTINGS acknowledgements.
REQUEST_TIMEOUT_S = 30.0

PathArg = str | PathLike[str]


class Http2PointError(RuntimeError):
    """The point process could not be started, or stopped answering."""


def _child_env() -> dict[str, str]:
    # The child must import this checkout's chaos and fleet packages, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _read_line(fd: int, deadline: float, limit: int = 65536) -> str:
    """One line from a child's pipe, waiting at most until ``deadline``."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or len(data) > limit:
                raise TimeoutError("no ready line")
            if not selector.select(left):
                continue
            byte = os.read(fd, 1)  # byte by byte: nothing past the line
            if not byte:
                raise TimeoutError("the point process closed its stdout")
            data += byte
    return data.decode("utf-8", "replace")


# Which point process runs: "go" (the compiled one, relay_go/), "python" (python -m
# chaos.http2), or unset: the compiled one when this machine can build it, else Python's.
IMPLEMENTATION_ENV = "GRPC_CHAOS_HTTP2_POINT"
IMPLEMENTATIONS = ("go", "python")


def choose_implementation(requested: str | None = None) -> str:
    """The point process to run: ``requested``, else $GRPC_CHAOS_HTTP2_POINT, else "go"
    when its toolchain is here (go_build.missing), else "python". Both serve the same
    control API and relay alike (tests/test_http2_point.py runs every test on each)."""
    choice = requested or os.environ.get(IMPLEMENTATION_ENV) or ""
    if choice and choice not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown HTTP/2 point implementation {choice!r} (known: {', '.join(IMPLEMENTATIONS)})"
        )
    if choice:
        return choice
    return "python" if go_build.missing() else "go"


class Http2Server:
    """The point process, as a context manager (module docstring). ``implementation``
    picks the process (:func:`choose_implementation`)."""

    def __init__(
        self,
        start_timeout: float = START_TIMEOUT_S,
        log_level: str = "warning",
        implementation: str | None = None,
    ):
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.implementation = choose_implementation(implementation)
        self.process: subprocess.Popen | None = None
        self.control: tuple[str, int] | None = None
        self._socket: socket.socket | None = None
        self._file: Any = None
        self._lock = threading.Lock()
        self._points: dict[str, Http2Point] = {}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def __enter__(self) -> Http2Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Http2Server:
        if self.implementation == "go":
            try:
                program = [str(go_build.build())]
            except go_build.BuildError as err:
                raise Http2PointError(str(err)) from None
        else:
            program = [sys.executable, "-m", "chaos.http2"]
        command = [*program, "--parent-pid", str(os.getpid()), "--log-level", self.log_level]
        self.process = lifeline.spawn(command, env=_child_env())
        assert self.process.stdout is not None
        try:
            line = _read_line(self.process.stdout.fileno(), time.monotonic() + self.start_timeout)
            host, _, port = json.loads(line)["control"].rpartition(":")
            self.control = (host, int(port))
            self._socket = socket.create_connection(self.control, timeout=REQUEST_TIMEOUT_S)
            self._file = self._socket.makefile("rwb")
        except (ValueError, KeyError, TimeoutError, OSError) as err:
            self.stop()
            raise Http2PointError(f"the HTTP/2 point process did not start: {err}") from None
        return self

    def stop(self) -> None:
        """Close every point and stop the process (SIGTERM, then SIGKILL); idempotent."""
        with self._lock:
            for closable in (self._file, self._socket):
                if closable is not None:
                    with contextlib.suppress(OSError):
                        closable.close()
            self._file = self._socket = None
        process, self.process = self.process, None
        if process is None:
            return
        lifeline.terminate(process, STOP_TIMEOUT_S)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._points.clear()

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        """One control request; ValueError for what the point process refused."""
        with self._lock:
            if self._file is None:
                raise Http2PointError("the HTTP/2 point process is not running")
            try:
                self._file.write(json.dumps({"op": op, **arguments}).encode() + b"\n")
                self._file.flush()
                line = self._file.readline()
            except OSError as err:
                raise Http2PointError(f"the HTTP/2 point process did not answer: {err}") from None
        if not line:
            raise Http2PointError("the HTTP/2 point process closed its control connection")
        answer = json.loads(line)
        if not answer.get("ok"):
            error = ValueError if answer.get("type") == "ValueError" else Http2PointError
            raise error(answer.get("error", "unknown error"))
        return answer

    def add_point(
        self,
        name: str,
        *,
        upstream: tuple[str, int],
        server_name: str,
        cert: PathArg,
        key: PathArg,
        ca: PathArg,
        client_ca: PathArg | None = None,
        client_cert: PathArg | None = None,
        client_key: PathArg | None = None,
    ) -> Http2Point:
        """A new point relaying to ``upstream``: it presents ``cert``/``key`` (requiring a
        client certificate signed by ``client_ca`` when given), and reaches the backend
        with TLS trusting ``ca`` for ``server_name`` (with ``client_cert``/``client_key``
        when given)."""

        def path(value: PathArg | None) -> str | None:
            return None if value is None else os.fspath(value)

        answer = self.call(
            "add",
            name=name,
            upstream=[upstream[0], int(upstream[1])],
            server_name=server_name,
            cert=path(cert),
            key=path(key),
            ca=path(ca),
            client_ca=path(client_ca),
            client_cert=path(client_cert),
            client_key=path(client_key),
        )
        host, port = answer["address"]
        point = Http2Point(self, name, (host, int(port)))
        self._points[name] = point
        return point

    def point(self, name: str) -> Http2Point:
        """The handle of an existing point; ValueError naming it when there is none."""
        if name not in self._points:
            raise ValueError(f"no HTTP/2 point named {name!r} (points: {sorted(self._points)})")
        return self._points[name]

    def points(self) -> list[str]:
        return list(self.call("points")["points"])


class Http2Point:
    """One point of an :class:`Http2Server`: dial ``target``; inject and clear faults;
    read its events."""

    def __init__(self, server: Http2Server, name: str, address: tuple[str, int]):
        self.server = server
        self.name = name
        self.address = address
        self.last_injection: dict[str, Any] = {}
        self._next_event = 0

    @property
    def target(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def set_upstream(self, upstream: tuple[str, int]) -> None:
        """Relay new connections to ``upstream`` (a backend restarted on another port);
        connections open now keep the backend they reached."""
        self.server.call("upstream", name=self.name, upstream=[upstream[0], int(upstream[1])])

    def set_certificate(self, cert: str | os.PathLike, key: str | os.PathLike) -> None:
        """Present ``cert`` (PEM chain, with ``key``) to new client connections; open ones
        keep theirs. What a fleet does when a certificate fault swaps its backend's: the
        client must meet that certificate, so the point presents one of the same kind."""
        self.server.call("certificate", name=self.name, cert=str(cert), key=str(key))

    def inject(self, fault: Http2Fault) -> int:
        """Put ``fault`` in force; returns the CLOCK_MONOTONIC ns instant it is (GOAWAYs:
        written on every connection; MAX_CONCURRENT_STREAMS: acknowledged by the clients).
        The full answer (connections reached, last-stream-ids) is in ``last_injection``."""
        if not isinstance(fault, Http2Fault):
            raise ValueError(f"not an Http2Fault: {fault!r}")
        self.last_injection = self.server.call("inject", name=self.name, fault=fault.to_json())
        return int(self.last_injection["in_force_ns"])

    def clear(self, fault: Http2Fault | str) -> int:
        """End a fault (or every fault of a kind); returns the instant it ended. Clearing a
        fault that is not active is a no-op."""
        kind = fault.kind if isinstance(fault, Http2Fault) else fault
        if kind not in KINDS:
            raise ValueError(f"unknown HTTP/2 fault kind {kind!r} (known: {', '.join(KINDS)})")
        return int(self.server.call("clear", name=self.name, kind=kind)["cleared_ns"])

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Every event from index ``since``: connection ``open``/``close`` (``by`` client,
        server or point), ``goaway`` (``by``, ``code``, ``last_stream_id``, ``debug``),
        ``fault`` in force/cleared; each with ``t_ns`` (CLOCK_MONOTONIC)."""
        return list(self.server.call("events", name=self.name, since=since)["events"])

    def new_events(self) -> list[dict[str, Any]]:
        """The events since the last call of this method."""
        answer = self.server.call("events", name=self.name, since=self._next_event)
        self._next_event = int(answer["next"])
        return list(answer["events"])

    def stats(self) -> dict[str, Any]:
        return self.server.call("stats", name=self.name)

    def close(self) -> None:
        """Remove the point: stop listening, close every connection through it."""
        self.server.call("remove", name=self.name)
        self.server._points.pop(self.name, None)
