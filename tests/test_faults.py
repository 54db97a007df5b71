"""Faults through the nemesis: each applies, is recorded as an event, and reverts."""

from __future__ import annotations

import grpc
import pytest

from chaos.faults import (
    AppError,
    Certificate,
    DnsEmpty,
    DnsNxdomain,
    DnsOutage,
    DnsRemove,
    Drain,
    Health,
    Kill,
    Latency,
    Nemesis,
    Pause,
    Restart,
    SlowHandler,
    Terminate,
)
from chaos.history import History
from fleet import client
from fleet.controller import Fleet, _proc_state
from fleet.pki import FLEET_NAME
from fleet.procs.waiting import wait_until
from fleet.protos import greeter_pb2, greeter_pb2_grpc


@pytest.fixture(scope="module")
def fleet():
    with Fleet(3, net="127.0.205.0/24") as fleet:
        yield fleet


@pytest.fixture
def nemesis(fleet):
    fleet.reset()
    nemesis = Nemesis(fleet, History())
    yield nemesis
    assert nemesis.undo_all() == []


# An RPC expected to end at once (answer or failure) gets this long on a busy machine; the
# tests that expect DEADLINE_EXCEEDED pass their own, shorter deadline.
RPC_TIMEOUT_S = 10.0


def _hello(fleet, backend_id, timeout=RPC_TIMEOUT_S):
    creds = client.credentials(fleet.info())
    with grpc.secure_channel(
        fleet.backend(backend_id).published,
        creds,
        options=[
            ("grpc.ssl_target_name_override", FLEET_NAME),
            ("grpc.use_local_subchannel_pool", 1),
        ],
    ) as channel:
        return (
            greeter_pb2_grpc.GreeterStub(channel)
            .SayHello(greeter_pb2.HelloRequest(name="f"), timeout=timeout)
            .message
        )


def _code(fleet, backend_id, timeout=RPC_TIMEOUT_S):
    try:
        _hello(fleet, backend_id, timeout)
        return "OK"
    except grpc.RpcError as exc:
        return exc.code().name


def test_kill_is_an_event_and_undo_restarts(nemesis, fleet):
    pid = fleet.backend("b1").pid
    active = nemesis.inject(Kill("b1"))
    assert _proc_state(pid) in ("", "Z") and not fleet.backend("b1").alive()
    event = nemesis.history.events[0]
    assert (event.kind, event.target, event.end_ns) == ("kill", "b1", None)
    nemesis.undo(active)
    assert fleet.backend("b1").alive() and _hello(fleet, "b1") == "Hello f"
    assert active.end_ns is not None and active.end_ns >= active.start_ns


@pytest.mark.parametrize("fault", [Terminate("b2"), Drain("b2", wait_ms=0, grace_ms=100)])
def test_graceful_stops_exit_and_undo_restarts(nemesis, fleet, fault):
    with nemesis.during(fault):
        # A drain is in force once the backend is NOT_SERVING; the process exits after its
        # wait and grace (here 0.1 s): wait for that, with a deadline for a busy machine.
        wait_until(lambda: not fleet.backend("b2").alive(), 10, "b2 to exit")
    assert _hello(fleet, "b2") == "Hello f"


def test_pause_hangs_until_undone(nemesis, fleet):
    with nemesis.during(Pause("b3")):
        assert _code(fleet, "b3", timeout=0.3) == "DEADLINE_EXCEEDED"
    assert _hello(fleet, "b3") == "Hello f"


def test_restart_is_instant_and_gives_a_new_process(nemesis, fleet):
    pid = fleet.backend("b1").pid
    active = nemesis.inject(Restart("b1"))
    assert fleet.backend("b1").pid != pid and fleet.backend("b1").alive()
    assert active.end_ns is not None and nemesis.active == []


def test_health_certificate_and_app_faults_revert(nemesis, fleet):
    with nemesis.during(AppError("b1", "INTERNAL")):
        assert _code(fleet, "b1") == "INTERNAL"
    assert _code(fleet, "b1") == "OK"
    # A 3 s handler cannot answer within 1 s; once reverted, a fresh connection and one
    # call get 2 s (loose on a busy machine), which a handler still slow could not meet.
    with nemesis.during(SlowHandler("b1", 3000)):
        assert _code(fleet, "b1", timeout=1.0) == "DEADLINE_EXCEEDED"
    assert _code(fleet, "b1", timeout=2.0) == "OK"
    with nemesis.during(Certificate("b2", "expired")):
        assert _code(fleet, "b2") == "UNAVAILABLE"
    assert _code(fleet, "b2") == "OK"
    with nemesis.during(Health("b3")):
        pass
    assert [e.kind for e in nemesis.history.events] == [
        "app:error",
        "app:delay",
        "certificate",
        "health",
    ]
    assert all(e.end_ns is not None for e in nemesis.history.events)


def test_dns_faults_change_the_records_and_revert(nemesis, fleet):
    published = fleet.dns.records(FLEET_NAME)
    with nemesis.during(DnsRemove("b2")):
        assert fleet.dns.records(FLEET_NAME) == [published[0], published[2]]
    with nemesis.during(DnsEmpty()):
        assert fleet.dns.records(FLEET_NAME) == []
    with nemesis.during(DnsNxdomain()):
        assert fleet.dns.records(FLEET_NAME) == []
    with nemesis.during(DnsOutage()):
        assert not fleet.dns.running
    assert fleet.dns.running and fleet.dns.records(FLEET_NAME) == published


def test_during_reverts_when_the_body_fails(nemesis, fleet):
    with pytest.raises(ZeroDivisionError), nemesis.during(AppError("b1", "INTERNAL")):
        raise ZeroDivisionError("the body fails")
    assert _code(fleet, "b1") == "OK" and nemesis.active == []


def test_undo_all_reverts_newest_first_and_reports_errors(nemesis, fleet):
    nemesis.inject(Health("b1"))
    nemesis.inject(Kill("b1"))  # must be restarted before its health can be reset
    assert nemesis.undo_all() == []
    assert fleet.backend("b1").alive() and nemesis.active == []


def test_network_faults_need_a_proxied_fleet(nemesis):
    with pytest.raises(RuntimeError, match="need a proxied fleet"):
        nemesis.inject(Latency("b1", 100))
    assert nemesis.active == [] and nemesis.history.events[0].end_ns is not None


def test_a_fault_describes_itself():
    assert str(Latency("b2", 200, 10)) == (
        "toxic:latency(b2, type=latency, attributes={'latency': 200, 'jitter': 10}, "
        "stream=downstream, toxicity=1.0)"
    )
    assert str(DnsOutage()) == "dns:outage(fleet)"
