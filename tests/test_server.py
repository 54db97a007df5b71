"""The backend process (fleet/server.py): Greeter, health, control service, bad input, CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chaos.toxiproxy_server.control import _read_line
from fleet.controller import Fleet
from fleet.pki import FLEET_NAME, PKI
from fleet.protos import control_pb2, control_pb2_grpc, greeter_pb2, greeter_pb2_grpc
from fleet.server import MAX_NAME_BYTES


@pytest.fixture(scope="module")
def fleet():
    with Fleet(1, net="127.0.200.0/24") as fleet:
        yield fleet


@pytest.fixture
def backend(fleet):
    fleet.reset()
    return fleet.backend("b1")


def _secure(fleet, address, client=False):
    ca = fleet.pki.ca_cert.read_bytes()
    if client:
        creds = grpc.ssl_channel_credentials(ca, fleet.client.key_pem(), fleet.client.cert_pem())
    else:
        creds = grpc.ssl_channel_credentials(ca)
    return grpc.secure_channel(
        address,
        creds,
        options=[
            ("grpc.ssl_target_name_override", FLEET_NAME),
            ("grpc.use_local_subchannel_pool", 1),
        ],
    )


@pytest.fixture
def greeter(fleet, backend):
    with _secure(fleet, backend.published) as channel:
        yield greeter_pb2_grpc.GreeterStub(channel)


@pytest.fixture
def health(fleet, backend):
    with _secure(fleet, backend.published) as channel:
        yield health_pb2_grpc.HealthStub(channel)


def test_says_hello_with_backend_id_in_trailing_metadata(greeter):
    # In the trailers, so that headers, answer and trailers leave in one batch: until then
    # the call is not committed and stays retryable (fleet/server.py).
    reply, call = greeter.SayHello.with_call(greeter_pb2.HelloRequest(name="ann"), timeout=5)
    assert reply.message == "Hello ann"
    assert ("x-backend-id", "b1") in [(m.key, m.value) for m in call.trailing_metadata()]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("invalid", "name 'invalid' is rejected"),
        ("x" * (MAX_NAME_BYTES + 1), f"at most {MAX_NAME_BYTES}"),
    ],
)
def test_bad_names_are_invalid_argument(greeter, name, reason):
    with pytest.raises(grpc.RpcError) as failure:
        greeter.SayHello(greeter_pb2.HelloRequest(name=name), timeout=5)
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason in failure.value.details()


def test_longest_accepted_name_is_served(greeter):
    name = "é" * (MAX_NAME_BYTES // 2)  # two bytes each: exactly at the limit
    assert greeter.SayHello(greeter_pb2.HelloRequest(name=name), timeout=5).message.endswith(name)


def test_non_utf8_name_is_invalid_argument(fleet, backend):
    with _secure(fleet, backend.published) as channel:
        raw = channel.unary_unary("/greeter.Greeter/SayHello")
        with pytest.raises(grpc.RpcError) as failure:
            raw(b"\n\x02\xff\xfe", timeout=5)  # field 1, length 2, not UTF-8
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in failure.value.details()


def test_health_serving_then_flipped_per_service(fleet, backend, health):
    for service in ("", "greeter.Greeter"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    fleet.set_health("b1", "NOT_SERVING", service="greeter.Greeter")
    assert (
        health.Check(health_pb2.HealthCheckRequest(service="greeter.Greeter"), timeout=5).status
        == health_pb2.HealthCheckResponse.NOT_SERVING
    )
    assert (
        health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_health_watch_streams_the_flip(fleet, backend, health):
    stream = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
    fleet.set_health("b1", "NOT_SERVING")
    assert next(stream).status == health_pb2.HealthCheckResponse.NOT_SERVING
    stream.cancel()


def test_app_fault_next_n_then_serves_again(fleet, backend, greeter):
    fleet.app_fault("b1", "UNAVAILABLE", next_n=2, details="planned")
    codes = []
    for _ in range(3):
        try:
            greeter.SayHello(greeter_pb2.HelloRequest(name="n"), timeout=5)
            codes.append("OK")
        except grpc.RpcError as exc:
            codes.append(exc.code().name)
            assert exc.details() == "planned"
    assert codes == ["UNAVAILABLE", "UNAVAILABLE", "OK"]


def test_app_fault_every_call_and_counters(fleet, backend, greeter):
    before = fleet.stats("b1")
    fleet.app_fault("b1", "RESOURCE_EXHAUSTED")
    for _ in range(4):
        with pytest.raises(grpc.RpcError) as failure:
            greeter.SayHello(greeter_pb2.HelloRequest(name="n"), timeout=5)
        assert failure.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    after = fleet.stats("b1")
    assert after["calls"] - before["calls"] == 4
    assert (
        after["by_code"]["RESOURCE_EXHAUSTED"] - before["by_code"].get("RESOURCE_EXHAUSTED", 0) == 4
    )
    assert after["in_flight"] == 0


def test_app_fault_delay_slows_every_call(fleet, backend, greeter):
    fleet.app_fault("b1", delay_ms=200)
    started = time.monotonic()
    greeter.SayHello(greeter_pb2.HelloRequest(name="n"), timeout=5)
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    "fault, message",
    [
        (control_pb2.AppFault(code="NOPE"), "unknown status code 'NOPE'"),
        (control_pb2.AppFault(code="OK"), "OK is not a failure"),
        (control_pb2.AppFault(code="INTERNAL", fraction=1.5), "not within 0..1"),
    ],
)
def test_control_rejects_bad_faults(backend, fault, message):
    stub = control_pb2_grpc.ControlStub(backend.channel)
    with pytest.raises(grpc.RpcError) as failure:
        stub.SetAppFault(fault, timeout=5)
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in failure.value.details()


def test_control_rejects_bad_health_status_and_certificate(backend):
    stub = control_pb2_grpc.ControlStub(backend.channel)
    with pytest.raises(grpc.RpcError) as failure:
        stub.SetHealth(control_pb2.SetHealthRequest(status="SLEEPY"), timeout=5)
    assert "unknown status 'SLEEPY'" in failure.value.details()
    with pytest.raises(grpc.RpcError) as failure:
        stub.SetCertificate(
            control_pb2.SetCertificateRequest(
                cert_chain_pem=b"garbage", private_key_pem=b"garbage"
            ),
            timeout=5,
        )
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not PEM" in failure.value.details()


def test_control_port_is_loopback_and_not_the_serving_port(backend):
    assert backend.control.startswith("127.0.0.1:")
    assert backend.control != backend.published


def test_control_service_is_not_on_the_serving_port(fleet, backend):
    with _secure(fleet, backend.published) as channel, pytest.raises(grpc.RpcError) as failure:
        control_pb2_grpc.ControlStub(channel).GetStats(control_pb2.Empty(), timeout=5)
    assert failure.value.code() is grpc.StatusCode.UNIMPLEMENTED


# ------------------------------------------------------------------ separate processes


def _run(argv, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "fleet.server", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def _good_args(pki: PKI, listen: str) -> list[str]:
    cert = pki.server_cert("bx", listen.split(":")[0])
    return ["--id", "bx", "--listen", listen, "--cert", str(cert.cert), "--key", str(cert.key)]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--id", "b1"], "required"),
        (["--id", "b1", "--listen", "nowhere", "--cert", "c", "--key", "k"], "is not HOST:PORT"),
        (
            ["--id", "b1", "--listen", "127.0.0.1:1", "--cert", "/no/such.pem", "--key", "k"],
            "cannot read certificate /no/such.pem",
        ),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(argv, message):
    result = _run(argv)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_taken_port_names_the_holder(tmp_path):
    pki = PKI(tmp_path / "pki")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _run(_good_args(pki, f"127.0.0.1:{port}"))
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken by pid {os.getpid()}" in result.stderr


def test_control_must_be_loopback(tmp_path):
    pki = PKI(tmp_path / "pki")
    result = _run(_good_args(pki, "127.0.0.1:0") + ["--control", "10.1.2.3:0"])
    assert result.returncode == 2
    assert "must be on loopback" in result.stderr


def _start(argv) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fleet.server", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:  # ready ~100 ms after spawn (docs/grpc-facts.md); 30 s is for a busy machine
        line = _read_line(process.stdout, time.monotonic() + 30)
    except TimeoutError as err:
        process.kill()
        _, stderr = process.communicate(timeout=10)
        pytest.fail(f"backend did not start ({err}): {stderr}")
    return process, json.loads(line)


def test_ready_line_and_sigterm_exits_0(tmp_path):
    pki = PKI(tmp_path / "pki")
    process, info = _start(_good_args(pki, "127.0.0.1:0"))
    try:
        assert info["ready"] is True and info["id"] == "bx" and info["pid"] == process.pid
        assert info["address"].startswith("127.0.0.1:") and not info["address"].endswith(":0")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


def test_without_health_service_health_is_unimplemented(tmp_path):
    pki = PKI(tmp_path / "pki")
    process, info = _start(_good_args(pki, "127.0.0.1:0") + ["--no-health"])
    try:
        creds = grpc.ssl_channel_credentials(pki.ca_cert.read_bytes())
        with grpc.secure_channel(
            info["address"], creds, options=[("grpc.ssl_target_name_override", FLEET_NAME)]
        ) as channel:
            with pytest.raises(grpc.RpcError) as failure:
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            assert failure.value.code() is grpc.StatusCode.UNIMPLEMENTED
            reply = greeter_pb2_grpc.GreeterStub(channel).SayHello(
                greeter_pb2.HelloRequest(name="x"), timeout=5
            )
            assert reply.message == "Hello x"
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
