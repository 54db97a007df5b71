"""The load generator: the target's RPC from a grpc.aio channel, every one recorded in the history.

::

    scenario thread                       load thread (its own asyncio loop)
    ---------------                       -------------------------------------------
    Load(...).start()  ----------------->  channel = make_channel()   (a profile's channel)
    inject faults, wait on conditions      closed loop: N workers, each awaiting one RPC
                                           open loop:   one RPC launched every 1/R s
                                           each RPC -> Rpc(id, start, end, backend, code)
    load.stop() ------------------------>  no new RPCs; in-flight ones finish (deadline);
                                           channel closed; thread joined

The RPC is the target's (chaos/targets/: any unary method, request from JSON, a correct
answer's fields) or the built-in Greeter's SayHello (:class:`GreeterRpc`). The backend id
comes from the identity key of the response metadata (headers or trailers; the fleet's
backends send ``x-backend-id`` in the trailers, in the answer's batch, and with a failure),
so failed calls that a backend answered are attributed too; for a server that names
nothing, an attributor (chaos/observe/attribution.py) names it from gRPC's own accounting. A
wrong answer (not the echo; a field not as expected) is recorded as DATA_LOSS (faults such
as slicer must never alter bytes).

The load loop also measures its own lag (a tick every ``LAG_TICK_S``; how late it ran) into
a StallMonitor when given one: RPC times are stamped by this loop, so when it could not run,
what it measured includes its own absence (chaos/verdicts/judge.py).

Limits: one channel per Load (one client). After a failed RPC a closed-loop worker pauses
``failure_pause_s`` (1 ms) so that a fleet that fails fast does not spin a core and flood
the history; open-loop launches are never delayed, and are skipped (counted in
``skipped``) when ``max_in_flight`` RPCs are already outstanding.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import grpc
import grpc.aio

from chaos.history import RPC_TAG, History, Rpc
from chaos.observe.channelz import track_new_channel
from chaos.outcomes import StagingTimeout
from fleet.procs.waiting import wait_until
from fleet.protos import greeter_pb2

BACKEND_ID_KEY = "x-backend-id"
IDLE = "load:idle"  # the history event of a gap in which a load starts no RPC
# The load loop's own lag is sampled every 10 ms: fine enough for bounds of 50 ms and up.
LAG_TICK_S = 0.01


class Load:
    """Background RPC load: closed loop (``concurrency`` in flight) or open loop
    (``rate`` RPC/s). Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        make_channel: Callable[[], grpc.aio.Channel],
        history: History,
        *,
        concurrency: int = 8,
        rate: float | None = None,
        deadline_s: float = 2.0,
        payload_bytes: int = 0,
        max_in_flight: int = 1024,
        failure_pause_s: float = 0.001,
        stalls=None,
        rpc=None,
        identity_key: str | None = BACKEND_ID_KEY,
        attribution=None,
        tag: bool = False,
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency {concurrency} must be at least 1")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate {rate} must be > 0 RPC/s")
        if deadline_s <= 0:
            raise ValueError(f"deadline {deadline_s} s must be > 0")
        self.make_channel = make_channel
        self.history = history
        self.concurrency = concurrency
        self.rate = rate
        self.deadline_s = deadline_s
        if rpc is not None and payload_bytes:
            raise ValueError("payload_bytes pads the built-in Greeter's requests only")
        # What to call: a target's RpcSpec, or the built-in Greeter's SayHello.
        self.rpc = rpc or GreeterRpc(payload_bytes)
        self.identity_key = identity_key
        # Each RPC carries its history id as request metadata (RPC_TAG): the fleet's HTTP/2
        # points report the ones they saw committed and then lost.
        self.tag = tag
        # Names the backend of an RPC whose answer does not (chaos/observe/attribution.py): told of
        # each call right before it is made and right after it ended, in the load's loop.
        self.attribution = attribution
        self.max_in_flight = max_in_flight
        self.failure_pause_s = failure_pause_s
        self.stalls = stalls  # a chaos.observe.stall.StallMonitor, or None
        self.channelz_id: int | None = None  # the channel's id in channelz, once started
        self.completed = 0
        self.skipped = 0
        self._ids: set[int] = set()  # this load's RPCs, to tell them from other clients'

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ control

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Load:
        if self._thread is not None:
            raise RuntimeError("this Load was started already; make a new one")
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self._raise_if_failed()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop launching, let in-flight RPCs end (bounded by their deadline), join."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout if timeout is not None else self.deadline_s + 10)
        if self._thread.is_alive():
            raise RuntimeError("the load thread did not stop within its deadline")
        self._raise_if_failed()

    def owns(self, rpc) -> bool:
        """Whether ``rpc`` (a history record) was sent by this load."""
        return rpc.id in self._ids

    def wait_for(self, count: int, timeout: float, answers: tuple[str, ...] = ()) -> None:
        """Wait until ``count`` more RPCs have completed (any outcome), with a deadline.

        RPCs end as fast as the client ends them (a client whose RPCs hang ends them at
        their deadline): running out is a StagingTimeout saying how many did."""
        before = self.completed
        target = before + count
        self.wait_until(
            lambda: self.completed >= target,
            timeout,
            f"{count} more RPCs completed",
            progress=lambda: f"{self.completed - before} of {count} completed",
            answers=answers,
        )

    def wait_until(
        self,
        condition: Callable[[], object],
        timeout: float,
        what: str,
        *,
        progress: Callable[[], str] | None = None,
        answers: tuple[str, ...] = (),
    ):
        """Wait for a condition while the load runs; fails early if the load thread died.

        The condition is one the client's behaviour brings about while the load runs, so
        running out raises StagingTimeout (a TimeoutError) with ``progress()`` — how far it
        got — and the settings that ``answers`` it: a scenario that lets it escape fails
        with a *staging* verdict, not a bare timeout (chaos/outcomes.py)."""
        started = time.monotonic_ns()
        try:
            value = wait_until(lambda: self._error or condition(), timeout, what)
        except TimeoutError:
            self._raise_if_failed()
            raise StagingTimeout(
                what,
                timeout,
                started,
                time.monotonic_ns(),
                progress() if progress else "",
                tuple(answers),
            ) from None
        self._raise_if_failed()
        return value

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the load generator failed: {self._error!r}") from self._error

    # ------------------------------------------------------------------ the loop thread

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced in the scenario thread by _raise_if_failed
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        with track_new_channel() as channelz_id:
            channel = self.make_channel()
        self.channelz_id = channelz_id()
        lag = asyncio.ensure_future(self._measure_lag()) if self.stalls is not None else None
        try:
            # Bytes in, bytes out: the target's RpcSpec (or GreeterRpc) does the messages.
            call = channel.unary_unary(self.rpc.path)
            self._ready.set()
            if self.rate is None:
                await asyncio.gather(*(self._worker(call) for _ in range(self.concurrency)))
            else:
                await self._open_loop(call)
        finally:
            if lag is not None:
                lag.cancel()
            await channel.close()

    async def _measure_lag(self) -> None:
        tick_ns = int(LAG_TICK_S * 1e9)
        while not self._stop.is_set():
            asked = time.monotonic_ns()
            await asyncio.sleep(LAG_TICK_S)  # the tick itself: its lateness is the measurement
            ran = time.monotonic_ns()
            late = ran - asked - tick_ns
            self.stalls.record(ran - late, ran, "load-loop")

    async def _worker(self, call) -> None:
        while not self._stop.is_set():
            if not await self._one(call):
                await asyncio.sleep(self.failure_pause_s)

    async def _open_loop(self, call) -> None:
        assert self.rate is not None  # run() opens the loop only at a set rate
        interval_ns = int(1e9 / self.rate)
        next_ns = time.monotonic_ns()
        tasks: set[asyncio.Task] = set()
        while not self._stop.is_set():
            if len(tasks) < self.max_in_flight:
                task = asyncio.ensure_future(self._one(call))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                self.skipped += 1
            next_ns += interval_ns
            await asyncio.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9))
        if tasks:
            await asyncio.wait(tasks)

    async def _one(self, call) -> bool:
        rid = self.history.next_id()
        request = self.rpc.request_bytes(rid)
        if self.attribution is not None:
            self.attribution.starting(rid)  # nothing may be awaited between this and the call
        tagged = ((RPC_TAG, str(rid)),) if self.tag else None
        start = time.monotonic_ns()
        pending = call(request, timeout=self.deadline_s, metadata=tagged)
        details = ""
        try:
            data = await pending
            # The id may come in the headers or in the trailers (the fleet's backends send
            # it in the trailers, with the answer, in one batch).
            metadata = tuple(await pending.initial_metadata() or ()) + tuple(
                await pending.trailing_metadata() or ()
            )
            code, details = checked_answer(self.rpc, rid, data)
        except grpc.aio.AioRpcError as exc:
            # A failure a backend answered comes Trailers-Only: its id is in the trailers.
            metadata = tuple(exc.initial_metadata() or ()) + tuple(exc.trailing_metadata() or ())
            code, details = exc.code().name, exc.details() or ""
        except asyncio.CancelledError:
            if self.attribution is not None:
                self.attribution.completed(rid, "CANCELLED")  # nothing stale is kept
            raise
        end = time.monotonic_ns()
        self._ids.add(rid)
        attributed = None
        if self.attribution is not None:
            attributed = self.attribution.completed(rid, code)  # every RPC: it keeps count
        record_rpc(
            self.history, rid, start, end, metadata, self.identity_key, code, details, attributed
        )
        self.completed += 1
        return code == "OK"


def checked_answer(rpc, rpc_id: int, data: bytes) -> tuple[str, str]:
    """(code, details) of an RPC that got an answer: OK, or DATA_LOSS when the answer is
    not what the service under test must say (the target's [rpc.expect])."""
    wrong = rpc.check_response(data, rpc_id)
    return ("DATA_LOSS", f"wrong answer: {wrong}") if wrong else ("OK", "")


def record_rpc(
    history: History,
    rpc_id: int,
    start_ns: int,
    end_ns: int,
    metadata,
    identity_key: str | None,
    code: str,
    details: str,
    attributed: str | None = None,
    headers_ns: int | None = None,
) -> Rpc:
    """The one place an RPC the client sent becomes a history record: its backend is the
    one its answer names (headers or trailers, under ``identity_key``), else the one
    ``attributed`` from gRPC's own accounting (None: unattributed, never guessed).
    ``headers_ns``: when its response headers arrived, where the client can tell."""
    named = backend_of(metadata, identity_key)
    record = Rpc(
        rpc_id,
        start_ns,
        end_ns,
        named if named is not None else attributed,
        code,
        details,
        headers_ns,
    )
    history.record(record)
    return record


def backend_of(metadata, key: str | None = BACKEND_ID_KEY) -> str | None:
    """The backend id an answer names under ``key`` (headers or trailers), or None."""
    if not key:
        return None
    for name, value in metadata or ():
        if name == key:
            return value
    return None


class GreeterRpc:
    """The built-in Greeter's RPC in the shape of a target's RpcSpec (chaos/targets/):
    SayHello named ``r<rpc id>`` (+ ``payload_bytes`` of padding, to make requests and
    replies of a chosen size), answered correctly only by the exact echo."""

    method = "greeter.Greeter/SayHello"
    path = "/greeter.Greeter/SayHello"
    needs_resolve = False

    def __init__(self, payload_bytes: int = 0, deadline_s: float = 2.0):
        self.padding = "x" * payload_bytes
        self.deadline_s = deadline_s

    def request_bytes(self, rpc_id: int) -> bytes:
        request = greeter_pb2.HelloRequest(name=f"r{rpc_id}{self.padding}")
        return request.SerializeToString()

    def check_response(self, data: bytes, rpc_id: int) -> str | None:
        message = greeter_pb2.HelloReply.FromString(data).message
        expected = f"Hello r{rpc_id}{self.padding}"
        return None if message == expected else f"reply {message[:60]!r} is not the echo"
