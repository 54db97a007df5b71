"""Small helpers shared by the framework's own tests: an in-process Greeter server and a
thread-leak check (import the fixture into a test module to use it)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest

from fleet.protos import greeter_pb2, greeter_pb2_grpc

# docs/grpc-facts.md: grpc servers set SO_REUSEPORT by default, so a port could be silently
# shared with a stale server; tests must never share ports.
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


class Greeter(greeter_pb2_grpc.GreeterServicer):
    """Answers ``Hello <name>``, like the service under test."""

    def SayHello(self, request, context):
        return greeter_pb2.HelloReply(message=f"Hello {request.name}")


@contextlib.contextmanager
def serving(
    register: Callable[[grpc.Server], None],
    credentials: grpc.ServerCredentials | None = None,
    host: str = "127.0.0.1",
) -> Iterator[int]:
    """A grpcio server on ``host`` (free port; TLS when credentials are given) with what
    ``register`` adds; yields the port.

    On exit the server is stopped without grace and its worker threads are joined, so a
    test leaves no thread or port behind.
    """
    executor = futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-server")
    server = grpc.server(executor, options=SERVER_OPTIONS)
    register(server)
    address = f"{host}:0"
    port = (
        server.add_insecure_port(address)
        if credentials is None
        else server.add_secure_port(address, credentials)
    )
    if port == 0:
        raise RuntimeError(f"gRPC could not bind a free port on {host}")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None).wait()
        executor.shutdown(wait=True)


def greeter_server(credentials: grpc.ServerCredentials | None = None, host: str = "127.0.0.1"):
    """Serve Greeter (``Hello <name>``) as :func:`serving` does; yields the port."""
    return serving(
        lambda server: greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server),
        credentials,
        host,
    )


# Threads a test started are given this long to end after it; they end within
# milliseconds, the margin is for a busy 2-core machine.
THREAD_END_TIMEOUT_S = 10.0


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    """Fail the test if a Python thread it started is still alive shortly after it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_END_TIMEOUT_S
    for thread in set(threading.enumerate()) - before:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [thread.name for thread in set(threading.enumerate()) - before]
    assert not left, f"threads still running {THREAD_END_TIMEOUT_S} s after the test: {left}"


def backend_of(call) -> str | None:
    """The ``x-backend-id`` an answer carries (the fleet's backends send it in the
    trailers, with the answer; a header works as well)."""
    metadata = tuple(call.initial_metadata() or ()) + tuple(call.trailing_metadata() or ())
    return dict(metadata).get("x-backend-id")


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    import os

    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
