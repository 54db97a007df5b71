"""The fleet controller (fleet/controller.py) driving real backend processes."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chaos.toxiproxy_server.control import _read_line
from fleet import client
from fleet.controller import Fleet, FleetError, _proc_state
from fleet.pki import FLEET_NAME
from fleet.procs.waiting import wait_until
from fleet.protos import greeter_pb2, greeter_pb2_grpc
from tests.helpers import backend_of

NET = "127.0.201.0/24"


@pytest.fixture(scope="module")
def fleet():
    with Fleet(3, net=NET) as fleet:
        yield fleet


@pytest.fixture
def fresh(fleet):
    fleet.reset()
    return fleet


def _round_robin(fleet):
    return client.channel(fleet.info(), service_config=client.ROUND_ROBIN)


def _hello(stub, timeout=5.0):
    reply, call = stub.SayHello.with_call(greeter_pb2.HelloRequest(name="c"), timeout=timeout)
    return backend_of(call)


def _served_by(stub) -> str | None:
    """The backend that answered, or None for an RPC that failed UNAVAILABLE."""
    try:
        return _hello(stub)
    except grpc.RpcError as failure:
        if failure.code() is not grpc.StatusCode.UNAVAILABLE:
            raise
        return None


def _direct(fleet, backend_id):
    """A channel to one backend's address only (no DNS, no load balancing)."""
    creds = client.credentials(fleet.info())
    return grpc.secure_channel(
        fleet.backend(backend_id).published,
        creds,
        options=[
            ("grpc.ssl_target_name_override", FLEET_NAME),
            ("grpc.use_local_subchannel_pool", 1),
        ],
    )


def _warm_round_robin(stub, ids, timeout=10.0):
    """Until the channel has connected to every backend in ``ids`` (bounded by a deadline)."""
    seen = set()
    wait_until(
        lambda: seen.add(_hello(stub)) or seen >= set(ids),
        timeout,
        f"round_robin reaching {sorted(ids)}",
    )


def test_backends_share_one_port_on_their_own_addresses(fleet):
    published = [b.published for b in fleet.backends]
    assert published == [f"127.0.201.{11 + i}:{fleet.port}" for i in range(3)]
    assert len({b.pid for b in fleet.backends}) == 3
    assert fleet.dns.records(FLEET_NAME) == ["127.0.201.11", "127.0.201.12", "127.0.201.13"]


def test_round_robin_over_dns_spreads_evenly_then_kill_moves_traffic(fresh):
    with _round_robin(fresh) as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        _warm_round_robin(stub, fresh.ids)
        counts = collections.Counter(_hello(stub) for _ in range(30))
        assert counts == {"b1": 10, "b2": 10, "b3": 10}
        fresh.kill("b2")
        assert not fresh.backend("b2").alive()
        # Once the channel has seen the connection break, b2 gets nothing more. Until then
        # an RPC may still be sent on the dead connection and fail UNAVAILABLE (this channel
        # has no retry policy): measured under load, "Stream removed (Socket closed)".
        wait_until(
            lambda: all(_served_by(stub) not in ("b2", None) for _ in range(3)), 10, "b2 out"
        )
        later = collections.Counter(_hello(stub) for _ in range(30))
        assert set(later) == {"b1", "b3"}


def test_pause_hangs_the_backend_and_resume_restores_it(fresh):
    fresh.pause("b1")
    assert _proc_state(fresh.backend("b1").pid) == "T"
    with _direct(fresh, "b1") as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            _hello(stub, timeout=0.5)
        assert failure.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(FleetError, match="b1 is paused"):
            fresh.set_health("b1", "SERVING")
        fresh.resume("b1")
        assert _hello(stub) == "b1"


def test_restart_reuses_address_and_certificate(fresh):
    before = fresh.backend("b3")
    address, pid = before.published, before.pid
    fresh.restart("b3")
    after = fresh.backend("b3")
    assert after.published == address and after.pid != pid and after.alive()
    with _direct(fresh, "b3") as channel:
        assert _hello(greeter_pb2_grpc.GreeterStub(channel)) == "b3"


def test_no_port_sharing_with_a_stale_backend(fresh):
    """A paused backend keeps its port; a second server on it must fail, not share it."""
    stale = fresh.backend("b1")
    fresh.pause("b1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleet.server",
            "--id",
            "b1",
            "--listen",
            stale.published,
            "--cert",
            str(stale.cert.cert),
            "--key",
            str(stale.cert.key),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    fresh.resume("b1")
    host, port = stale.published.split(":")
    assert result.returncode == 2
    assert f"port {port} on {host} is taken by pid {stale.pid}" in result.stderr


def test_set_health_is_seen_by_health_checks(fresh):
    with _direct(fresh, "b2") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        fresh.set_health("b2", "NOT_SERVING")
        for service in ("", "greeter.Greeter"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_certificate_swap_applies_to_new_connections_only(fresh):
    with _direct(fresh, "b1") as old:
        old_stub = greeter_pb2_grpc.GreeterStub(old)
        assert _hello(old_stub) == "b1"
        fresh.set_certificate("b1", "other_ca")
        with _direct(fresh, "b1") as new:
            with pytest.raises(grpc.RpcError) as failure:  # rejected at once; 10 s for load
                _hello(greeter_pb2_grpc.GreeterStub(new), timeout=10)
            assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
        assert _hello(old_stub) == "b1"  # the open connection keeps its certificate
    fresh.set_certificate("b1", "good")
    with _direct(fresh, "b1") as again:
        assert _hello(greeter_pb2_grpc.GreeterStub(again)) == "b1"


def test_drain_finishes_in_flight_rpcs_then_exits(fresh):
    fresh.app_fault("b3", delay_ms=300)
    with _direct(fresh, "b3") as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        in_flight = stub.SayHello.future(greeter_pb2.HelloRequest(name="slow"), timeout=10)
        wait_until(lambda: fresh.stats("b3")["in_flight"] == 1, 5, "the slow RPC in flight")
        fresh.drain("b3", wait_ms=0, grace_ms=2000)
        assert in_flight.result().message == "Hello slow"
    assert not fresh.backend("b3").alive()


def test_terminate_exits_cleanly(fresh):
    process = fresh.backend("b2").process
    fresh.terminate("b2")
    assert process.returncode == 0


def test_operations_on_a_dead_backend_say_so(fresh):
    fresh.kill("b1")
    with pytest.raises(FleetError, match="b1 is not running"):
        fresh.set_health("b1", "SERVING")
    with pytest.raises(FleetError, match="no backend 'b9'"):
        fresh.kill("b9")


def test_reset_restores_the_baseline(fresh):
    fresh.kill("b1")
    fresh.pause("b2")
    fresh.dns.set_records(FLEET_NAME, [])
    fresh.reset()
    assert all(b.alive() and not b.paused for b in fresh.backends)
    assert len(fresh.dns.records(FLEET_NAME)) == 3
    with _round_robin(fresh) as channel:
        _warm_round_robin(greeter_pb2_grpc.GreeterStub(channel), fresh.ids)


def test_bad_sizes_and_nets_are_refused():
    with pytest.raises(ValueError, match="not within 1..200"):
        Fleet(0)
    with pytest.raises(ValueError, match="not on loopback"):
        Fleet(1, net="10.0.0.0/24")


_ORPHAN = textwrap.dedent("""
    import json, sys, time
    from fleet.controller import Fleet
    fleet = Fleet(2, net="127.0.202.0/24").start()
    print(json.dumps({"pids": [b.pid for b in fleet.backends],
                      "workdir": str(fleet.workdir)}), flush=True)
    time.sleep(120)  # the test SIGKILLs this process long before
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_children_and_files_die_with_a_killed_parent(sig):
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:  # a 2-backend fleet starts in about a second; 30 s is for a busy machine
        info = json.loads(_read_line(parent.stdout, time.monotonic() + 30))
    finally:
        parent.send_signal(sig)
        parent.wait(timeout=10)
        parent.stdout.close()
    wait_until(
        lambda: not any(_proc_state(pid) not in ("", "Z") for pid in info["pids"]),
        10,
        "backends of the killed parent gone",
    )
    wait_until(lambda: not Path(info["workdir"]).exists(), 10, "its workdir removed")


def test_close_leaves_no_process_or_directory():
    fleet = Fleet(2, net="127.0.203.0/24").start()
    pids, workdir = [b.pid for b in fleet.backends], fleet.workdir
    fleet.close()
    assert all(_proc_state(pid) in ("", "Z") for pid in pids)
    assert not workdir.exists()
    fleet.close()  # twice is harmless
