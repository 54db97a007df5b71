"""The ``python`` client driver: grpcio in a process of its own (protocol: proto/driver.proto).

    python -m chaos.clients.drivers.python_grpcio      # prints {"driver": ..., "port": N}

The parity reference for the other drivers: the same client grpc-chaos runs in-process
(a grpc.aio channel per client, C-core options by name), behind the driver protocol, so a
difference between this driver's verdicts and the in-process ones is the protocol's, not
the implementation's. Every channel lives on one asyncio loop thread; the driver service
is a thread-pool gRPC server on 127.0.0.1 (plaintext, port 0) that hands work to it.

Limits: response headers' arrival is not timed (grpc.aio gives no event for it); attempts
are not counted per RPC (channelz counts them per backend).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import grpc.aio

from chaos.observe.channelz import subchannel_counts, track_new_channel
from fleet.procs import lifeline
from fleet.protos import driver_pb2, driver_pb2_grpc

PROTOCOL = 1
# Portable settings (driver_pb2.Settings fields) and the C-core options they become.
OPTION_OF = {
    "keepalive_time_ms": "grpc.keepalive_time_ms",
    # grpc.keepalive_timeout_ms has no effect in grpcio; the ping deadline is this one.
    "keepalive_timeout_ms": "grpc.http2.ping_timeout_ms",
    "keepalive_without_calls": "grpc.keepalive_permit_without_calls",
    "initial_reconnect_backoff_ms": "grpc.initial_reconnect_backoff_ms",
    "max_reconnect_backoff_ms": "grpc.max_reconnect_backoff_ms",
    "min_connect_timeout_ms": "grpc.min_reconnect_backoff_ms",
    "dns_min_resolution_interval_ms": "grpc.dns_min_time_between_resolutions_ms",
    "max_receive_message_bytes": "grpc.max_receive_message_length",
    "max_send_message_bytes": "grpc.max_send_message_length",
    "retries": "grpc.enable_retries",
}
LB_POLICIES = [
    "pick_first",
    "round_robin",
    "outlier_detection_experimental",
    "weighted_round_robin",
]
BATCH_MAX = 512  # records per RecordBatch message
HEARTBEAT_S = 0.1  # a batch at least this often, empty if nothing ended (the protocol's)


def now_ns() -> int:
    return time.monotonic_ns()  # CLOCK_MONOTONIC on Linux: the history's clock


def _identity(metadata, key: str) -> str:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return ""


@dataclass
class LoadRun:
    spec: driver_pb2.LoadSpec
    channel: grpc.aio.Channel
    idle: tuple[tuple[int, int], ...] = ()  # (start_ns, end_ns): no RPC started inside
    records: queue.Queue = field(default_factory=queue.Queue)
    stop: asyncio.Event | None = None
    done: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    completed: int = 0
    skipped: int = 0
    seq: int = 0
    task: asyncio.Future | None = None
    # RPCs in flight: token -> start_ns. Starting one (clock read + insert) and taking a
    # batch's snapshot share this lock, so a snapshot never misses an RPC already started.
    in_flight: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> tuple[int, int]:
        """(sent_ns, in_flight_since_ns) of a batch formed now."""
        with self.lock:
            return now_ns(), min(self.in_flight.values(), default=0)


class Driver(driver_pb2_grpc.ClientDriverServicer):
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="channels", daemon=True)
        self.thread.start()
        self.lock = threading.Lock()
        self.channels: dict[int, grpc.aio.Channel] = {}
        self.loads: dict[int, LoadRun] = {}
        self.channelz_ids: dict[int, int | None] = {}
        self.next_id = 1

    def _run(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id - 1

    # -------------------------------------------------------------------- the service

    def Describe(self, request, context):
        if request.protocol != PROTOCOL:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"this driver speaks protocol {PROTOCOL}, not {request.protocol}",
            )
        return driver_pb2.Capabilities(
            protocol=PROTOCOL,
            implementation="grpcio",
            version=grpc.__version__,
            language="python",
            settings=sorted(OPTION_OF),
            options=["*"],  # any C-core channel argument, by its name
            lb_policies=LB_POLICIES,
            retries=True,
            health_check=True,
            subchannels=True,
            now_ns=now_ns(),
        )

    def OpenChannel(self, request, context):
        try:
            options = self._options(request)
            credentials = self._credentials(request)
        except (OSError, ValueError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))

        async def make():
            return grpc.aio.secure_channel(request.target, credentials, options=options)

        async def make_tracked():
            with track_new_channel() as channelz_id:
                channel = await make()
            return channel, channelz_id()

        channel_id = self._new_id()
        channel, channelz_id = self._run(make_tracked())
        with self.lock:
            self.channels[channel_id] = channel
            self.channelz_ids[channel_id] = channelz_id
        return driver_pb2.ChannelRef(id=channel_id)

    def Subchannels(self, request, context):
        self._channel(request.id, context)
        with self.lock:
            channelz_id = self.channelz_ids.get(request.id)
        if channelz_id is None:
            context.abort(grpc.StatusCode.INTERNAL, "that channel was not found in channelz")
        assert channelz_id is not None  # abort() raised
        counts = subchannel_counts(channelz_id)
        return driver_pb2.SubchannelList(
            now_ns=now_ns(),
            subchannels=[
                driver_pb2.Subchannel(
                    address=address,
                    calls_started=s.started,
                    calls_succeeded=s.succeeded,
                    calls_failed=s.failed,
                    state=s.state,
                    sockets=list(s.sockets),
                )
                for address, s in counts.items()
            ],
        )

    def CloseChannel(self, request, context):
        with self.lock:
            channel = self.channels.pop(request.id, None)
            loads = [run for run in self.loads.values() if run.channel is channel]
        for run in loads:
            self._stop_load(run)
        if channel is not None:
            self._run(channel.close(), timeout=30)
        return driver_pb2.Closed()

    def Call(self, request, context):
        channel = self._channel(request.channel, context)
        record = self._run(
            self._one(
                channel.unary_unary(request.method),
                request.request,
                request.deadline_ms,
                request.identity_key,
                0,
            )
        )
        return record

    def StartLoad(self, request, context):
        channel = self._channel(request.channel, context)
        if not request.requests:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a load needs at least one request")
        if request.rate <= 0 and request.concurrency < 1:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "concurrency must be at least 1")
        load_id = self._new_id()
        run = LoadRun(request, channel, idle=tuple((g.start_ns, g.end_ns) for g in request.idle))
        with self.lock:
            self.loads[load_id] = run

        async def start():
            run.stop = asyncio.Event()
            run.task = asyncio.ensure_future(self._load(run))

        self._run(start())
        return driver_pb2.LoadRef(id=load_id)

    def SetIdle(self, request, context):
        run = self._load_run(request.load, context)
        run.idle = tuple((g.start_ns, g.end_ns) for g in request.idle)  # one atomic swap
        return driver_pb2.LoadRef(id=request.load)

    def StopLoad(self, request, context):
        run = self._load_run(request.id, context)
        self._stop_load(run)
        return driver_pb2.LoadSummary(completed=run.completed, skipped=run.skipped)

    def Records(self, request, context):
        run = self._load_run(request.id, context)
        while context.is_active():
            # Snapshot first, then take what has ended: every RPC older than the snapshot's
            # oldest in flight queued its record before the snapshot.
            sent, since = run.snapshot()
            finished = run.done.is_set()
            batch: list[driver_pb2.RpcRecord] = []
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(run.records.get_nowait())
                except queue.Empty:
                    break
            yield driver_pb2.RecordBatch(records=batch, sent_ns=sent, in_flight_since_ns=since)
            if finished and run.records.empty():
                return
            if len(batch) < BATCH_MAX:
                run.wake.wait(HEARTBEAT_S)  # new records wake it; else a heartbeat
                run.wake.clear()

    # -------------------------------------------------------------------- internals

    def _load_run(self, load_id: int, context) -> LoadRun:
        with self.lock:
            run = self.loads.get(load_id)
        if run is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no load {load_id}")
        assert run is not None  # abort() raised
        return run

    def _channel(self, channel_id: int, context) -> grpc.aio.Channel:
        with self.lock:
            channel = self.channels.get(channel_id)
        if channel is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no channel {channel_id}")
        return channel

    @staticmethod
    def _credentials(config) -> grpc.ChannelCredentials:
        def read(path: str) -> bytes:
            with open(path, "rb") as file:
                return file.read()

        if bool(config.cert_file) != bool(config.key_file):
            raise ValueError("cert_file and key_file go together")
        return grpc.ssl_channel_credentials(
            root_certificates=read(config.ca_file) if config.ca_file else None,
            private_key=read(config.key_file) if config.key_file else None,
            certificate_chain=read(config.cert_file) if config.cert_file else None,
        )

    @staticmethod
    def _options(config) -> list[tuple[str, object]]:
        # Its own subchannel pool: separate clients never share connections.
        options: list[tuple[str, object]] = [("grpc.use_local_subchannel_pool", 1)]
        if config.service_config_json:
            json.loads(config.service_config_json)  # ValueError names a broken one
            options.append(("grpc.service_config", config.service_config_json))
        for name, option in OPTION_OF.items():
            if config.settings.HasField(name):
                value = getattr(config.settings, name)
                options.append((option, int(value)))
        for name, text in config.options.items():
            value = json.loads(text)
            if not isinstance(value, (int, str, bool)):
                raise ValueError(f"option {name}: {text!r} is not an integer or a string")
            options.append((name, int(value) if isinstance(value, bool) else value))
        return options

    def _stop_load(self, run: LoadRun) -> None:
        async def stop():
            if run.stop is not None:
                run.stop.set()
            if run.task is not None:
                await run.task

        self._run(stop())
        run.done.set()
        run.wake.set()

    async def _load(self, run: LoadRun) -> None:
        spec = run.spec
        call = run.channel.unary_unary(spec.method)
        counter = iter(range(1 << 62))
        pause = spec.failure_pause_us / 1e6
        stop = run.stop
        assert stop is not None  # set by StartLoad before this task starts

        async def one() -> bool:
            n = next(counter)
            if self._idle_left(run, now_ns()):
                return True
            index = n % len(spec.requests)
            with run.lock:
                started = now_ns()
                run.in_flight[n] = started
            try:
                record = await self._one(
                    call, spec.requests[index], spec.deadline_ms, spec.identity_key, index, started
                )
                run.seq += 1
                record.seq = run.seq
                run.completed += 1
                run.records.put(record)  # before it leaves in_flight: see LoadRun.snapshot
                run.wake.set()
            finally:
                with run.lock:
                    del run.in_flight[n]
            return record.code == "OK"

        async def worker():
            while not stop.is_set():
                left = self._idle_left(run, now_ns())
                if left:
                    await asyncio.sleep(min(left / 1e9, 0.02))
                elif not await one() and pause:
                    await asyncio.sleep(pause)

        if spec.rate <= 0:
            await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
            return
        interval = int(1e9 / spec.rate)
        next_ns = now_ns()
        tasks: set[asyncio.Task] = set()
        limit = spec.max_in_flight or 1024
        while not stop.is_set():
            if len(tasks) < limit:
                task = asyncio.ensure_future(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                run.skipped += 1
            next_ns += interval
            await asyncio.sleep(max(0.0, (next_ns - now_ns()) / 1e9))
        if tasks:
            await asyncio.wait(tasks)

    @staticmethod
    def _idle_left(run: LoadRun, at_ns: int) -> int:
        for start, end in run.idle:
            if start <= at_ns < end:
                return end - at_ns
        return 0

    @staticmethod
    async def _one(
        call, request: bytes, deadline_ms: int, key: str, index: int, start: int | None = None
    ):
        start = now_ns() if start is None else start
        pending = call(request, timeout=deadline_ms / 1000 if deadline_ms > 0 else None)
        response = b""
        try:
            response = await pending
            metadata = tuple(await pending.initial_metadata() or ()) + tuple(
                await pending.trailing_metadata() or ()
            )
            code, message = "OK", ""
        except grpc.aio.AioRpcError as exc:
            metadata = tuple(exc.initial_metadata() or ()) + tuple(exc.trailing_metadata() or ())
            code, message = exc.code().name, exc.details() or ""
        end = now_ns()
        return driver_pb2.RpcRecord(
            start_ns=start,
            end_ns=end,
            code=code,
            message=message,
            backend=_identity(metadata, key) if key else "",
            response=response,
            request_index=index,
        )


def main() -> int:
    lifeline.set_pdeathsig(signal.SIGTERM)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    driver_pb2_grpc.add_ClientDriverServicer_to_server(Driver(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def stdin_lifeline():
        # The parent holds our stdin open: EOF means it has gone.
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    threading.Thread(target=stdin_lifeline, name="lifeline", daemon=True).start()
    print(json.dumps({"driver": "grpc-chaos", "protocol": PROTOCOL, "port": port}), flush=True)
    stop.wait()
    server.stop(grace=None)
    os._exit(0)  # channel threads are daemons; nothing to flush


if __name__ == "__main__":
    sys.exit(main())
