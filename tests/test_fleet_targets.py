"""A fleet of a target's own server: started, made ready and stopped as its file says, and
every way a server command can go wrong is one clear error with nothing left running."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from chaos import targets as target
from fleet.controller import Fleet, FleetError, Unsupported
from tests.helpers import descendants

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "examples" / "common" / "inventory_server.py"
PROTOS = ROOT / "examples" / "common" / "protos"

RPC = f"""
[rpc]
method = "shop.v1.Inventory/GetItem"
request = {{ sku = "sku-{{rpc}}" }}
protos = ["{PROTOS}/shop/v1/inventory.proto"]
import_paths = ["{PROTOS}"]
[rpc.expect]
name = "Item sku-{{rpc}}"
[health]
service = "shop.v1.Inventory"
[identity]
header = "x-backend-id"
"""

# A gRPC server with the health service (SERVING) that ignores SIGTERM, as a server that
# forgot to handle it behaves.
DEAF = """
import signal, sys
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
signal.signal(signal.SIGTERM, signal.SIG_IGN)
host, port, cert, key = sys.argv[1:5]
server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
servicer = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
server.add_secure_port(f"{host}:{port}", creds)
server.start()
server.wait_for_termination()
"""


# The Inventory RPC over TLS, and no health service at all.
NO_HEALTH = f"""
import sys
from concurrent import futures
import grpc
sys.path.insert(0, {str(PROTOS)!r})
messages, services = grpc.protos_and_services("shop/v1/inventory.proto")
class Inventory(services.InventoryServicer):
    def GetItem(self, request, context):
        return messages.Item(sku=request.sku, name=f"Item {{request.sku}}")
host, port, cert, key = sys.argv[1:5]
server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
services.add_InventoryServicer_to_server(Inventory(), server)
creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
server.add_secure_port(f"{{host}}:{{port}}", creds)
server.start()
server.wait_for_termination()
"""


def _target(tmp_path: Path, server: str, rpc: str = RPC) -> target.Target:
    path = tmp_path / "grpc-chaos.toml"
    path.write_text(textwrap.dedent(server) + rpc)
    return target.load(path)


@pytest.fixture
def nothing_left():
    before = descendants(os.getpid())
    yield
    left = {
        pid
        for pid in descendants(os.getpid()) - before
        if "reaper" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    }
    assert not left, f"processes left running: {left}"


def test_a_targets_server_serves_its_rpc_through_the_fleet(tmp_path, nothing_left):
    service = _target(
        tmp_path,
        f"""
        [server]
        command = ["{sys.executable}", "{SERVER}", "--listen", "{{host}}:{{port}}",
                   "--cert", "{{cert}}", "--key", "{{key}}", "--id", "{{id}}"]
        ready = "rpc"
        """,
    )
    with Fleet(2, service=service) as fleet:
        backend = fleet.backend("b2")
        with fleet.direct_channel(backend) as channel:
            data = channel.unary_unary(service.rpc.path)(service.rpc.request_bytes(7), timeout=5)
        assert service.rpc.check_response(data, 7) is None
        stopped = fleet.terminate("b2")
        assert not stopped.forced and stopped.returncode == 0  # it drains and exits 0
        fleet.restart("b2")
        assert fleet.backend("b2").alive()


def test_a_command_that_exits_at_once_is_one_line_naming_it(tmp_path, nothing_left):
    service = _target(
        tmp_path,
        f"""
        [server]
        command = ["{sys.executable}", "-c", "import sys; print('no config'); sys.exit(3)",
                   "{{port}}"]
        """,
    )
    with pytest.raises(FleetError) as error:
        Fleet(1, service=service).start()
    text = str(error.value)
    assert "exited with exit code 3 before it was ready" in text and "no config" in text
    assert "\n" not in text


def test_a_server_that_never_becomes_ready_is_stopped_and_named(tmp_path, nothing_left):
    service = _target(
        tmp_path,
        f"""
        [server]
        command = ["{sys.executable}", "-c", "import time; time.sleep(60)", "{{port}}"]
        ready = "health"
        start_timeout_s = 1.5
        """,
    )
    with pytest.raises(
        FleetError,
        match=r"not ready \(health probe answering\) within its "
        r"start timeout \(waited ",
    ) as error:
        Fleet(1, service=service).start()
    # the target's 1.5 s, not the fleet's default (30 s and more): a wide margin for a busy
    # machine, far from the default
    waited = float(str(error.value).split("(waited ")[1].split(" s)")[0])
    assert waited < 10, str(error.value)


def test_a_method_not_in_the_protos_is_refused_when_the_file_is_read(tmp_path):
    with pytest.raises(
        target.TargetError,
        match=r"'shop.v1.Inventory/GetItems' is not in .*"
        r"did you mean 'shop.v1.Inventory/GetItem'",
    ):
        _target(tmp_path, '[server]\ncommand = ["true"]\n', RPC.replace('/GetItem"', '/GetItems"'))


def test_a_method_the_server_does_not_serve_is_named(tmp_path, nothing_left):
    # The team's proto has a method this build of the server does not implement yet.
    proto = tmp_path / "protos" / "shop" / "v1" / "inventory.proto"
    proto.parent.mkdir(parents=True)
    proto.write_text(
        (PROTOS / "shop" / "v1" / "inventory.proto")
        .read_text()
        .replace(
            "rpc GetItem (GetItemRequest) returns (Item);",
            "rpc GetItem (GetItemRequest) returns (Item);\n  "
            "rpc Reserve (GetItemRequest) returns (Item);",
        )
    )
    service = _target(
        tmp_path,
        f"""
        [server]
        command = ["{sys.executable}", "{SERVER}", "--listen", "{{host}}:{{port}}",
                   "--cert", "{{cert}}", "--key", "{{key}}"]
        ready = "rpc"
        """,
        RPC.replace('/GetItem"', '/Reserve"').replace(str(PROTOS), str(proto.parents[2])),
    )
    with pytest.raises(
        FleetError,
        match=r"it does not serve shop.v1.Inventory/Reserve: "
        r"UNIMPLEMENTED",
    ):
        Fleet(1, service=service).start()


def test_a_health_service_name_the_server_does_not_serve_is_one_error_naming_the_key(
    tmp_path, nothing_left
):
    # [health] service names a service, but the server has no health service: every
    # scenario that watches health would fail for the target file's reason.
    script = tmp_path / "no_health.py"
    script.write_text(NO_HEALTH)
    service = _target(
        tmp_path,
        f"""
        [server]
        command = ["{sys.executable}", "{script}", "{{host}}", "{{port}}", "{{cert}}", "{{key}}"]
        ready = "rpc"
        start_timeout_s = 20
        """,
        RPC.replace('header = "x-backend-id"', 'header = ""'),
    )
    with pytest.raises(FleetError) as error:
        Fleet(1, service=service).start()
    text = str(error.value)
    assert "[health] service = 'shop.v1.Inventory'" in text and "UNIMPLEMENTED" in text
    assert "remove [health] service" in text and "\n" not in text


def test_a_server_that_ignores_its_stop_signal_is_killed_after_its_grace_and_said_so(
    tmp_path, nothing_left
):
    script = tmp_path / "deaf.py"
    script.write_text(DEAF)
    service = _target(
        tmp_path,
        f"""
        [server]
        command = ["{sys.executable}", "{script}", "{{host}}", "{{port}}", "{{cert}}", "{{key}}"]
        ready = "health"
        stop_grace_s = 1
        """,
        RPC.replace('service = "shop.v1.Inventory"', 'service = ""'),
    )
    with Fleet(1, service=service) as fleet:
        stopped = fleet.terminate("b1")
        assert stopped.forced and stopped.returncode == -signal.SIGKILL
        assert stopped.describe("SIGTERM", 1) == (
            "still running 1 s after SIGTERM: killed (SIGKILL); a server should drain and "
            "exit within its grace"
        )
        assert not fleet.backend("b1").alive()


def test_what_only_the_control_service_can_do_is_unsupported_with_the_reason(tmp_path):
    service = _target(
        tmp_path,
        f"""
        [server]
        command = ["{sys.executable}", "{SERVER}", "--listen", "{{host}}:{{port}}",
                   "--cert", "{{cert}}", "--key", "{{key}}"]
        """,
    )
    with Fleet(1, service=service) as fleet:
        with pytest.raises(Unsupported, match="needs grpc-chaos's Control service"):
            fleet.set_health("b1", "NOT_SERVING")
        with pytest.raises(Unsupported, match="Control service"):
            fleet.app_fault("b1", "UNAVAILABLE")
        # a certificate fault without live swap: the backend restarts with the bad files
        pid = fleet.backend("b1").pid
        fleet.set_certificate("b1", "expired")
        assert fleet.backend("b1").pid != pid and fleet.backend("b1").cert_kind == "expired"
        fleet.reset()
        assert fleet.backend("b1").cert_kind == "good"
    with pytest.raises(Unsupported, match="without its health service"):
        Fleet(1, service=service, health=False)
