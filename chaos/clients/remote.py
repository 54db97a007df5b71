"""A driver's client as the scenarios use a client: a caller for one RPC at a time, and a
:class:`chaos.load.Load` whose RPCs the driver sends and whose records land in the history.

::

    RemoteLoad.start()   OpenChannel, StartLoad(requests = a pool of POOL requests)
        thread:          Records stream -> each record: a history id, the answer checked
                         against the request it was sent for, record_rpc(...)
    RemoteLoad.stop()    StopLoad (returns once every RPC in flight has been recorded),
                         the stream ends, CloseChannel

The requests are a pool, not one per RPC: a driver sends thousands a second and the runner
cannot hand each over in time. Each pool request is built for an id of its own (the
Greeter echoes it, a target's [rpc.expect] may name it), and an answer is checked against
the request it was sent for. A record whose times are not on the history's clock, or that
ends before it starts, stops the load with a DriverError: no verdict is taken from a
broken history.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from chaos.clients.driver import (
    CLOCK_SLACK_NS,
    CONTROL_TIMEOUT_S,
    Driver,
    RemoteChannel,
    check_record,
)
from chaos.history import Event, History
from chaos.load import IDLE, Load, checked_answer, record_rpc
from chaos.observe.channelz import Sample
from fleet.protos import driver_pb2

POOL = 64  # requests a load sends in turn
# ...fewer when they are large: StartLoad carries the whole pool, and a driver's server
# accepts 4 MiB a message (gRPC's default) — this leaves room to spare.
POOL_BYTES = 2 * 1024 * 1024
# The pool's requests are built for ids far above any history id: the history's own ids
# count RPCs sent (Scenario.settle relies on it), and the pool is not sent yet.
POOL_BASE = 1_000_000_000


class RemoteRpcError(grpc.RpcError):
    """A failed RPC the driver reported, shaped like grpcio's (``code()``, ``details()``)."""

    def __init__(self, code: str, details: str):
        super().__init__(f"{code}: {details}")
        self._code = getattr(grpc.StatusCode, code, grpc.StatusCode.UNKNOWN)
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def metadata_of(record, key: str | None) -> tuple[tuple[str, str], ...]:
    """The identity the driver read, as the metadata record_rpc looks it up in."""
    return ((key, record.backend),) if key and record.backend else ()


class RemoteLoad(Load):
    """:class:`chaos.load.Load` run by a client driver (``make_channel`` returns a
    :class:`RemoteChannel`). The same interface; ``channelz_id`` stays None (the driver's
    channelz, if any, is not this process's)."""

    def __init__(self, make_channel, history: History, **kwargs):
        if kwargs.get("attribution") is not None:
            raise ValueError("a driver's load cannot be attributed from this process's channelz")
        super().__init__(make_channel, history, **kwargs)
        self.channel: RemoteChannel | None = None
        self._ref: driver_pb2.LoadRef | None = None
        self._pool_ids: list[int] = []
        # Every RPC this load started before this instant (history clock) has ended and is
        # in the history: the driver's batches say so (RecordBatch.in_flight_since_ns).
        self.ended_before_ns = 0
        self._seq = 0  # the last record's sequence number: 1, 2, ... in the order they ended
        self.idle: list[tuple[int, int]] = []  # gaps (history clock) with no RPC started

    @property
    def driver(self) -> Driver:
        assert self.channel is not None
        return self.channel.driver

    def set_idle(self, gaps_ns: list[tuple[int, int]], history: History | None = None) -> None:
        """Idle from start to end (history clock) for each gap, from now on; recorded in
        ``history`` as ``load:idle`` events (as chaos.fuzz.load_shape.ShapedLoad does)."""
        self.idle = sorted(gaps_ns)
        if history is not None:
            for start, end in self.idle:
                history.add_event(Event(IDLE, None, start, end, {}))
        if self._ref is not None:
            gaps = [driver_pb2.Gap(start_ns=a, end_ns=b) for a, b in self.idle]
            self.driver.control("SetIdle", driver_pb2.IdleGaps(load=self._ref.id, idle=gaps))

    def stop(self, timeout: float | None = None) -> None:
        if self._thread is None:
            return
        if not self._stop.is_set():
            self._stop.set()
            if self._ref is not None and self.channel is not None and self.driver.alive():
                try:
                    summary = self.driver.control(
                        "StopLoad", self._ref, timeout=self.deadline_s + CONTROL_TIMEOUT_S
                    )
                    self.skipped = summary.skipped
                except Exception as exc:  # surfaced by Load.stop below
                    self._error = self._error or exc
        super().stop(timeout)

    def _run(self) -> None:
        try:
            self.channel = self.make_channel()
            self._records()
        except BaseException as exc:  # surfaced in the scenario thread by _raise_if_failed
            self._error = exc
        finally:
            self._ready.set()
            if self.channel is not None:
                try:
                    self.channel.close()
                except Exception as exc:
                    self._error = self._error or exc

    def _records(self) -> None:
        assert self.channel is not None
        first = self.rpc.request_bytes(POOL_BASE)
        size = max(1, min(POOL, POOL_BYTES // max(1, len(first))))
        self._pool_ids = [POOL_BASE + i for i in range(size)]
        spec = driver_pb2.LoadSpec(
            channel=self.channel.id,
            method=self.rpc.path,
            requests=[first] + [self.rpc.request_bytes(i) for i in self._pool_ids[1:]],
            deadline_ms=max(1, round(self.deadline_s * 1000)),
            identity_key=self.identity_key or "",
            concurrency=self.concurrency,
            rate=self.rate or 0.0,
            max_in_flight=self.max_in_flight,
            failure_pause_us=round(self.failure_pause_s * 1e6),
            idle=[driver_pb2.Gap(start_ns=a, end_ns=b) for a, b in self.idle],
        )
        started = time.monotonic_ns()
        self._ref = self.driver.control("StartLoad", spec)
        stream = self.driver.stub.Records(self._ref)  # type: ignore[union-attr]
        self._ready.set()
        try:
            for batch in stream:
                now = time.monotonic_ns()
                for record in batch.records:
                    check_record(self.driver, record, started, now)
                    self._add(record)
                if not started - CLOCK_SLACK_NS <= batch.sent_ns <= now + CLOCK_SLACK_NS:
                    raise self.driver.failure(
                        f"sent a batch stamped {batch.sent_ns} ns, outside {started}..{now} "
                        "(CLOCK_MONOTONIC)"
                    )
                self.ended_before_ns = max(
                    self.ended_before_ns, batch.in_flight_since_ns or batch.sent_ns
                )
        except grpc.RpcError as err:
            if self.driver.exited():
                raise self.driver.failure("died while it ran a load") from None
            raise self.driver.failure(
                f"its record stream failed: {err.code().name} {err.details()}"
            ) from None
        if not self._stop.is_set():
            raise self.driver.failure("ended a load's record stream before it was stopped")

    def _add(self, record) -> None:
        if record.seq != self._seq + 1:
            raise self.driver.failure(
                f"sent record {record.seq} after record {self._seq}: records come once each, "
                "numbered 1, 2, ... in the order the RPCs ended"
            )
        self._seq = record.seq
        if record.request_index >= len(self._pool_ids):
            raise self.driver.failure(
                f"recorded request {record.request_index} of {len(self._pool_ids)}"
            )
        rid = self.history.next_id()
        if record.code == "OK":
            sent_as = self._pool_ids[record.request_index]
            code, details = checked_answer(self.rpc, sent_as, record.response)
        else:
            code, details = record.code, record.message
        record_rpc(
            self.history,
            rid,
            record.start_ns,
            record.end_ns,
            metadata_of(record, self.identity_key),
            self.identity_key,
            code,
            details,
            headers_ns=headers_of(record),
        )
        self._ids.add(rid)
        self.completed += 1


def headers_of(record) -> int | None:
    """When the RPC's response headers arrived, as its driver saw them (0: none, or the
    implementation cannot tell: None)."""
    return record.headers_ns or None


def subchannel_counts(channel: RemoteChannel) -> Callable[[], dict[str, Sample]]:
    """A function reading the channel's per-backend counters from its driver (the
    protocol's Subchannels), in the shape chaos.observe.channelz.AttemptSampler takes."""

    def counts() -> dict[str, Sample]:
        if channel.closed:
            raise KeyError("the channel is closed")  # the sampler stops adding samples
        reply = channel.driver.control("Subchannels", driver_pb2.ChannelRef(id=channel.id))
        return {
            s.address: Sample(
                reply.now_ns,
                s.address,
                s.calls_started,
                s.calls_succeeded,
                s.calls_failed,
                s.state,
                tuple(s.sockets),
            )
            for s in reply.subchannels
        }

    return counts


def remote_caller(channel: RemoteChannel, history: History, rpc, key: str | None):
    """One RPC at a time through a driver, as :meth:`chaos.scenario.Scenario.caller`
    makes for an in-process channel: ``call(tolerate=False, timeout=5.0)`` returns the
    answering backend (None for a failure when tolerated) and keeps ``call.records``."""
    records: list = []

    def call(tolerate: bool = False, timeout: float = 5.0) -> str | None:
        rid = history.next_id()
        record = channel.call(rpc.path, rpc.request_bytes(rid), timeout, key)
        if record.code == "OK":
            code, details = checked_answer(rpc, rid, record.response)
        else:
            code, details = record.code, record.message
        kept = record_rpc(
            history,
            rid,
            record.start_ns,
            record.end_ns,
            metadata_of(record, key),
            key,
            code,
            details,
            headers_ns=headers_of(record),
        )
        records.append(kept)
        if record.code != "OK" and not tolerate:
            raise RemoteRpcError(record.code, record.message)
        return kept.backend if code == "OK" else None

    call.records = records  # type: ignore[attr-defined]
    return call
