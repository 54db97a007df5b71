"""Every shipped client driver keeps the driver protocol (proto/driver.proto) against a real
fleet: what it says of itself, one call at a time, closed- and open-loop load with idle
gaps, records on the history's clock, bad configuration named, and a clean exit when its
parent goes. A new driver is added to DRIVERS and must pass all of it."""

from __future__ import annotations

import json
import os
import time

import grpc
import pytest

from chaos.clients import builtin
from chaos.clients.driver import Driver, DriverError
from chaos.clients.remote import RemoteLoad, remote_caller, subchannel_counts
from chaos.history import History
from chaos.load import GreeterRpc
from fleet import client
from fleet.controller import Fleet
from fleet.procs.waiting import wait_until
from fleet.protos import driver_pb2

NET = "127.0.207.0/24"
# Every shipped driver, and a team's own: GRPC_CHAOS_DRIVER="./bin/my-driver" (docs/clients.md).
DRIVERS = list(builtin.NAMES) + [os.environ[k] for k in ("GRPC_CHAOS_DRIVER",) if k in os.environ]


@pytest.fixture(scope="module")
def fleet():
    with Fleet(3, net=NET) as fleet:
        yield fleet


@pytest.fixture(scope="module", params=DRIVERS)
def driver(request):
    command = builtin.resolve(request.param)
    assert command is not None
    with Driver(command.argv, command.name, env=command.env) as driver:
        yield driver


def config(fleet, service_config=client.ROUND_ROBIN, **settings) -> driver_pb2.ChannelConfig:
    info = fleet.info()
    return driver_pb2.ChannelConfig(
        target=info["target"],
        ca_file=info["ca"],
        service_config_json=json.dumps(service_config),
        settings=driver_pb2.Settings(**settings),
    )


def test_it_describes_itself_on_our_clock(driver):
    caps = driver.capabilities
    assert caps.protocol == 1 and caps.implementation and caps.version and caps.language
    assert "round_robin" in caps.lb_policies
    assert driver.describe.startswith(f"{caps.implementation} {caps.version}")


def test_one_call_at_a_time_is_answered_and_recorded_on_our_clock(driver, fleet):
    history = History()
    with driver.open_channel(config(fleet)) as channel:
        call = remote_caller(channel, history, GreeterRpc(), "x-backend-id")
        # A new channel's TLS handshakes finish one by one: until all three have, calls
        # go to those that are ready.
        wait_until(lambda: call() and len({r.backend for r in call.records}) == 3, 10, "3")
        before = time.monotonic_ns()
        served = [call() for _ in range(12)]
        after = time.monotonic_ns()
    assert sorted(served) == ["b1"] * 4 + ["b2"] * 4 + ["b3"] * 4  # round_robin over three
    records = call.records[-12:]
    assert [r.code for r in records] == ["OK"] * 12
    assert all(before <= r.start_ns < r.end_ns <= after for r in records)
    assert all(a.end_ns <= b.start_ns for a, b in zip(records, records[1:], strict=False))


def test_a_deadline_and_a_wrong_method_end_as_grpc_says(driver, fleet):
    history = History()
    with driver.open_channel(config(fleet)) as channel:
        for backend in ("b1", "b2", "b3"):
            fleet.pause(backend)  # SIGSTOP: connections accept bytes, nothing answers
        try:
            started = time.monotonic_ns()
            record = channel.call("/greeter.Greeter/SayHello", b"", 0.3, "x-backend-id")
        finally:
            for backend in ("b1", "b2", "b3"):
                fleet.resume(backend)
        missing = channel.call("/greeter.Greeter/NoSuchMethod", b"", 5.0, "x-backend-id")
    assert record.code == "DEADLINE_EXCEEDED" and record.backend == ""
    assert record.start_ns >= started and record.end_ns - record.start_ns >= 300_000_000
    assert missing.code == "UNIMPLEMENTED"
    assert history.rpcs == []  # the raw channel call records nothing itself


def test_closed_loop_load_records_every_rpc_once_in_order(driver, fleet):
    history = History()
    load = RemoteLoad(lambda: driver.open_channel(config(fleet)), history, concurrency=8)
    with load:
        load.wait_for(300, timeout=20)
    rpcs = history.rpcs
    assert len(rpcs) == load.completed >= 300
    assert {r.code for r in rpcs} == {"OK"}  # each answer checked against its request
    assert {r.backend for r in rpcs} == {"b1", "b2", "b3"}
    assert all(load.owns(r) for r in rpcs)
    assert len({r.id for r in rpcs}) == len(rpcs)


def test_open_loop_load_keeps_its_rate_and_sends_nothing_in_an_idle_gap(driver, fleet):
    history = History()
    load = RemoteLoad(lambda: driver.open_channel(config(fleet)), history, rate=200)
    now = time.monotonic_ns()
    gap = (now + 400_000_000, now + 900_000_000)
    load.idle = [gap]
    with load:
        wait_until(lambda: time.monotonic_ns() > now + 1_400_000_000, 10, "1.4 s of load")
    rpcs = history.rpcs
    in_gap = [r for r in rpcs if gap[0] <= r.start_ns < gap[1]]
    assert in_gap == []
    # 0.9 s outside the gap at 200/s: ~180 (a busy machine may start some late).
    assert 120 <= len(rpcs) <= 260, len(rpcs)


def test_idle_gaps_set_while_the_load_runs_hold_from_then_on(driver, fleet):
    history = History()
    load = RemoteLoad(lambda: driver.open_channel(config(fleet)), history, concurrency=4)
    with load:
        load.wait_for(50, timeout=10)
        now = time.monotonic_ns()
        gap = (now + 200_000_000, now + 700_000_000)
        load.set_idle([gap], history)
        wait_until(lambda: time.monotonic_ns() > gap[1] + 300_000_000, 10, "past the gap")
    starts = [r.start_ns for r in history.rpcs]
    assert not [s for s in starts if gap[0] <= s < gap[1]]
    assert [s for s in starts if s >= gap[1]] and [s for s in starts if now < s < gap[0]]
    assert [(e.start_ns, e.end_ns) for e in history.events if e.kind == "load:idle"] == [gap]


def test_a_load_of_large_messages_records_every_answer(driver, fleet):
    """384 KiB each way: the pool of requests StartLoad carries shrinks to stay under a
    driver's 4 MiB message limit, and batches of answers larger than that reach us."""
    history = History()
    load = RemoteLoad(
        lambda: driver.open_channel(config(fleet)),
        history,
        concurrency=4,
        rpc=GreeterRpc(384 * 1024),
    )
    with load:
        load.wait_for(40, timeout=30)
    assert len(history.rpcs) >= 40
    assert {r.code for r in history.rpcs} == {"OK"}  # each answer checked against its request


def test_a_record_is_as_the_backend_answered_when_it_fails(driver, fleet):
    history = History()
    fleet.kill("b2")
    try:
        load = RemoteLoad(
            lambda: driver.open_channel(config(fleet, service_config={})),
            history,
            concurrency=2,
            deadline_s=1.0,
        )
        with load:
            load.wait_for(20, timeout=20)
    finally:
        fleet.restart("b2")
    assert {r.backend for r in history.rpcs if r.ok} <= {"b1", "b3"}


def test_bad_configuration_is_refused_naming_the_problem(driver, fleet):
    bad = config(fleet)
    bad.ca_file = "/nonexistent/ca.pem"
    with pytest.raises(DriverError, match="INVALID_ARGUMENT"):
        driver.open_channel(bad)
    broken = config(fleet)
    broken.service_config_json = "{not json"
    with pytest.raises(DriverError, match="INVALID_ARGUMENT"):
        driver.open_channel(broken)
    assert driver.alive()  # a refused request does not take the driver down


def test_another_protocol_version_is_refused(driver):
    with pytest.raises(grpc.RpcError) as refused:
        driver.stub.Describe(driver_pb2.DescribeRequest(protocol=2), timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("name", DRIVERS)
def test_it_exits_when_its_parent_closes_the_lifeline(name):
    command = builtin.resolve(name)
    assert command is not None
    driver = Driver(command.argv, command.name, env=command.env).start()
    process = driver.process
    assert process is not None
    started = time.monotonic()
    process.stdin.close()  # what the kernel does when the runner dies
    process.wait(5)
    assert time.monotonic() - started < 5
    driver.close()


def test_its_batches_say_which_rpcs_are_still_in_flight(driver, fleet):
    """Heartbeat batches carry the oldest RPC in flight: RPCs hung on stopped backends keep
    the mark behind them until they end (what settle() waits on)."""
    history = History()
    load = RemoteLoad(
        lambda: driver.open_channel(config(fleet)), history, concurrency=2, deadline_s=1.0
    )
    with load:
        load.wait_for(20, timeout=10)
        for backend in ("b1", "b2", "b3"):
            fleet.pause(backend)
        try:
            paused = time.monotonic_ns()
            # The mark moves up to the hung RPCs' starts, and no further while they hang.
            wait_until(lambda: load.ended_before_ns > paused - 1_000_000_000, 5, "a heartbeat")
            assert load.ended_before_ns < paused + 100_000_000
        finally:
            for backend in ("b1", "b2", "b3"):
                fleet.resume(backend)
        later = time.monotonic_ns()
        wait_until(lambda: load.ended_before_ns >= later, 10, "the hung RPCs to end")
    assert any(r.start_ns < paused < r.end_ns for r in history.rpcs)  # some did hang


def test_subchannel_counters_count_every_attempt_per_backend(driver, fleet):
    """Subchannels (where the driver offers it): the attempts each backend got, as the
    attempt checks read them; a driver without it says UNIMPLEMENTED, never wrong counts."""
    with driver.open_channel(config(fleet)) as channel:
        call = remote_caller(channel, History(), GreeterRpc(), "x-backend-id")
        wait_until(lambda: call() and len({r.backend for r in call.records}) == 3, 10, "3")
        if not driver.capabilities.subchannels:
            with pytest.raises(DriverError, match="UNIMPLEMENTED"):
                driver.control("Subchannels", driver_pb2.ChannelRef(id=channel.id))
            return
        before = subchannel_counts(channel)()
        for _ in range(30):
            call()
        after = subchannel_counts(channel)()
    published = {b.published: b.id for b in fleet.backends}
    assert {published[a] for a in after} == {"b1", "b2", "b3"}
    succeeded = sum(after[a].succeeded - before[a].succeeded for a in after)
    assert succeeded == 30  # the health-check streams stay open: only the calls ended
    assert all(s.state == "READY" and s.sockets for s in after.values())
