"""``python -m fleet up``: a fleet for people and other tools, driven only through its JSON."""

from __future__ import annotations

import collections
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from chaos.toxiproxy_server.control import ProxyControl
from fleet import client, ports
from fleet.controller import _proc_state
from fleet.procs.waiting import wait_until
from fleet.protos import greeter_pb2, greeter_pb2_grpc
from tests.helpers import backend_of


class FleetUp:
    """A running ``python -m fleet up`` and the JSON it printed."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fleet", "up", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        line = self.process.stdout.readline()
        if not line:
            self.stop(signal.SIGKILL)
            pytest.fail(f"fleet up printed nothing: {self.process.stderr.read()}")
        self.info = json.loads(line)
        self.pids = [b["pid"] for b in self.info["backends"]]
        self.workdir = Path(self.info["ca"]).parent.parent

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=20)
        self.process.stdout.close()
        self.process.stderr.close()
        return code

    def stderr_event(self, timeout: float) -> dict:
        """The next JSON event line fleet up writes on stderr (other lines are skipped),
        waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        skipped = []
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stderr, selectors.EVENT_READ)
            # Each pass reads one line or ends at the deadline.
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    break
                line = self.process.stderr.readline()
                if not line:
                    break  # fleet up closed stderr: it exited
                try:
                    return json.loads(line)
                except ValueError:
                    skipped.append(line.rstrip())
        pytest.fail(f"no JSON line on fleet up's stderr within {timeout} s; other lines: {skipped}")

    def assert_nothing_left(self) -> None:
        wait_until(
            lambda: all(_proc_state(pid) in ("", "Z") for pid in self.pids),
            10,
            "every backend of fleet up gone",
        )
        wait_until(lambda: not self.workdir.exists(), 10, "fleet up's workdir removed")


def _hello(stub) -> str:
    _, call = stub.SayHello.with_call(greeter_pb2.HelloRequest(name="up"), timeout=5)
    return backend_of(call)


def _try_hello(stub) -> str | None:
    try:
        return _hello(stub)
    except grpc.RpcError:
        return None


@pytest.fixture
def fleet_up():
    fleets = []

    def start(*args):
        fleets.append(FleetUp(*args))
        return fleets[-1]

    yield start
    for up in fleets:
        up.stop(signal.SIGKILL)


def test_json_alone_drives_round_robin_and_survives_kill(fleet_up):
    up = fleet_up("--size", "3")
    info = up.info
    assert set(info) >= {
        "target",
        "authority",
        "ca",
        "client_cert",
        "client_key",
        "dns",
        "backends",
        "toxiproxy",
    }
    assert all(b["proxy"] and b["upstream"] != b["address"] for b in info["backends"])
    assert all(Path(info[k]).is_absolute() for k in ("ca", "client_cert", "client_key"))
    with client.channel(info, service_config=client.ROUND_ROBIN) as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        seen: set[str] = set()
        wait_until(lambda: seen.add(_hello(stub)) or len(seen) == 3, 10, "3 backends seen")
        counts = collections.Counter(_hello(stub) for _ in range(30))
        assert counts == {"b1": 10, "b2": 10, "b3": 10}

        victim = info["backends"][0]
        subprocess.run(["kill", "-9", str(victim["pid"])], check=True)
        # After a short while every RPC succeeds, on the other two.
        wait_until(
            lambda: all(_try_hello(stub) not in (None, victim["id"]) for _ in range(6)),
            10,
            "all RPCs OK on the survivors",
        )
        assert set(collections.Counter(_hello(stub) for _ in range(20))) == {"b2", "b3"}
    assert up.stop(signal.SIGTERM) == 0
    up.assert_nothing_left()


def test_mtls_refuses_a_client_without_certificate(fleet_up):
    up = fleet_up("--size", "1", "--mtls")
    with client.channel(up.info, service_config=client.ROUND_ROBIN) as channel:
        with pytest.raises(grpc.RpcError) as failure:
            _hello(greeter_pb2_grpc.GreeterStub(channel))
        assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
    with client.channel(up.info, service_config=client.ROUND_ROBIN, client_cert=True) as channel:
        assert _hello(greeter_pb2_grpc.GreeterStub(channel)) == "b1"
    assert up.stop(signal.SIGINT) == 0
    up.assert_nothing_left()


def test_a_backend_killed_by_hand_is_reaped_and_reported_and_the_fleet_stays_up(fleet_up):
    up = fleet_up("--size", "2", "--no-proxies")
    victim = up.info["backends"][1]
    os.kill(victim["pid"], signal.SIGKILL)

    event = up.stderr_event(timeout=10)
    assert event == {
        "event": "backend-exited",
        "id": "b2",
        "pid": victim["pid"],
        "signal": "SIGKILL",
    }
    assert _proc_state(victim["pid"]) == ""  # reaped before reported: no zombie left
    assert up.process.poll() is None
    with client.channel(up.info, service_config=client.ROUND_ROBIN) as channel:
        assert _hello(greeter_pb2_grpc.GreeterStub(channel)) == "b1"

    assert up.stop(signal.SIGINT) == 0
    up.assert_nothing_left()


def test_a_backend_that_exits_is_reported_with_its_code_and_log_tail_and_close_is_not(fleet_up):
    up = fleet_up("--size", "2", "--no-proxies")
    victim = up.info["backends"][0]
    with open(up.workdir / "b1.log", "a") as log:  # as if the backend had written it
        log.write("first line\nlast words of b1\n")
    os.kill(victim["pid"], signal.SIGTERM)  # a graceful stop the fleet did not ask for

    event = up.stderr_event(timeout=10)
    assert event == {
        "event": "backend-exited",
        "id": "b1",
        "pid": victim["pid"],
        "exit_code": 0,
        "log_tail": "first line | last words of b1",
    }
    assert _proc_state(victim["pid"]) == ""

    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=20) == 0
    rest = up.process.stderr.read()
    assert "backend-exited" not in rest, f"fleet up reported its own close as a death: {rest}"
    up.stop()
    up.assert_nothing_left()


def test_forty_backends(fleet_up):
    up = fleet_up("--size", "40")
    backends = up.info["backends"]
    assert [b["id"] for b in backends] == [f"b{i}" for i in range(1, 41)]
    assert len({b["address"] for b in backends}) == len({b["pid"] for b in backends}) == 40
    assert all(_proc_state(b["pid"]) not in ("", "Z") for b in backends)
    assert up.stop(signal.SIGINT) == 0
    up.assert_nothing_left()


def test_sigkill_of_fleet_up_leaves_nothing(fleet_up):
    up = fleet_up("--size", "2")
    toxiproxy_pid = _toxiproxy_pid(up.info["toxiproxy"])
    up.stop(signal.SIGKILL)
    up.pids.append(toxiproxy_pid)
    up.assert_nothing_left()


def _toxiproxy_pid(url: str) -> int:
    port = int(url.rsplit(":", 1)[1])
    pids = ports.pids_listening("127.0.0.1", port)
    assert len(pids) == 1, f"who serves {url}: {pids}"
    return pids[0]


def test_a_toxic_on_a_backends_proxy_slows_only_that_backend(fleet_up):
    up = fleet_up("--size", "2")
    control = ProxyControl(up.info["toxiproxy"])
    slow = up.info["backends"][0]
    control.add_toxic(slow["proxy"], "latency", {"latency": 300})
    with client.channel(up.info, service_config=client.ROUND_ROBIN) as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        times: dict[str, list[float]] = {"b1": [], "b2": []}
        wait_until(
            lambda: _timed_hello(stub, times) and all(len(t) >= 2 for t in times.values()),
            20,
            "two RPCs answered by each backend",
        )
    assert min(times[slow["id"]]) >= 0.3
    assert max(times["b2"]) < 0.3
    assert up.stop(signal.SIGTERM) == 0
    up.assert_nothing_left()


def _timed_hello(stub, times) -> bool:
    started = time.monotonic()
    backend = _hello(stub)
    times[backend].append(time.monotonic() - started)
    return True


def test_without_proxies_backends_listen_on_the_published_addresses(fleet_up):
    up = fleet_up("--size", "1", "--no-proxies")
    assert "toxiproxy" not in up.info and "proxy" not in up.info["backends"][0]
    with client.channel(up.info, service_config=client.ROUND_ROBIN) as channel:
        assert _hello(greeter_pb2_grpc.GreeterStub(channel)) == "b1"


@pytest.mark.parametrize(
    "args, message",
    [
        (["up", "--size", "0"], "size 0 is not within 1..200"),
        (["up", "--size", "x"], "'x' is not a whole number"),
        (["down"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert message in result.stderr
