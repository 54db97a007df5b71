"""A client driver of a team's own that misbehaves is named, within 10 s, with what it did;
nothing is left running and no record of a broken one reaches a history.

Each bad driver here is a few lines of Python standing in for a team's program: one that
does not exist, exits, hangs at start, prints something else, speaks another protocol,
answers on another clock, sends records out of its window, or dies while a load runs."""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from chaos.clients import builtin
from chaos.clients.driver import Driver, DriverError
from chaos.clients.remote import RemoteLoad
from chaos.history import History
from fleet.procs.waiting import wait_until
from fleet.protos import driver_pb2


def script(tmp_path, body: str) -> list[str]:
    path = tmp_path / "driver.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too: it runs nothing and holds no port.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


def refused(command: list[str], match: str, timeout: float = 10.0) -> DriverError:
    driver = Driver(command, "mine", start_timeout_s=timeout)
    started = time.monotonic()
    with pytest.raises(DriverError, match=match) as raised:
        driver.start()
    assert time.monotonic() - started < timeout + 2
    return raised.value


def test_a_command_that_does_not_exist():
    error = refused(["/nonexistent/driver"], "cannot run '/nonexistent/driver'")
    assert "client driver 'mine'" in str(error)


def test_a_driver_that_exits_at_start_is_named_with_its_stderr(tmp_path):
    error = refused(
        script(tmp_path, "import sys; print('no TLS library', file=sys.stderr); sys.exit(3)"),
        "exited before it was ready",
    )
    assert "exited with 3" in str(error) and "no TLS library" in str(error)


def test_a_driver_that_hangs_at_start(tmp_path):
    command = script(tmp_path, "import time\nfor _ in range(600): time.sleep(0.1)\n")
    driver = Driver(command, "mine", start_timeout_s=1.0)
    with pytest.raises(DriverError, match="printed no ready line within 1 s"):
        driver.start()
    assert driver.process is None  # stopped, not left running


def test_a_driver_that_prints_something_else(tmp_path):
    refused(
        script(tmp_path, "print('listening on 5000', flush=True)\ninput()\n"),
        "its first line is not the ready line",
    )


def test_a_driver_that_speaks_another_protocol(tmp_path):
    refused(
        script(
            tmp_path,
            'print(\'{"driver": "grpc-chaos", "protocol": 2, "port": 1}\', flush=True)\ninput()\n',
        ),
        "speaks protocol 2; grpc-chaos speaks 1",
    )


def test_a_ready_line_naming_a_port_where_nothing_answers(tmp_path):
    # Port 9 (discard) on loopback: nothing listens there in a test run.
    refused(
        script(
            tmp_path,
            'print(\'{"driver": "grpc-chaos", "protocol": 1, "port": 9}\', flush=True)\ninput()\n',
        ),
        "Describe failed: (UNAVAILABLE|DEADLINE_EXCEEDED)",
        timeout=2.0,
    )


FAKE = """
import json, sys, time
from concurrent import futures
import grpc
sys.path.insert(0, {root!r})
from fleet.protos import driver_pb2, driver_pb2_grpc

class Fake(driver_pb2_grpc.ClientDriverServicer):
    def Describe(self, request, context):
        return driver_pb2.Capabilities(protocol=1, implementation="fake", version="0",
                                       now_ns={now})
    def OpenChannel(self, request, context):
        return driver_pb2.ChannelRef(id=1)
    def StartLoad(self, request, context):
        return driver_pb2.LoadRef(id=1)
    def Records(self, request, context):
        now = time.monotonic_ns()
        {records}
    def StopLoad(self, request, context):
        return driver_pb2.LoadSummary()
    def CloseChannel(self, request, context):
        return driver_pb2.Closed()

server = grpc.server(futures.ThreadPoolExecutor(4))
driver_pb2_grpc.add_ClientDriverServicer_to_server(Fake(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(json.dumps({{"driver": "grpc-chaos", "protocol": 1, "port": port}}), flush=True)
sys.stdin.read()
"""
ROOT = str(__import__("pathlib").Path(__file__).resolve().parent.parent)


def fake(tmp_path, now: str = "time.monotonic_ns()", records: str = "return") -> list[str]:
    return script(tmp_path, FAKE.format(root=ROOT, now=now, records=records))


def test_a_driver_on_another_clock(tmp_path):
    # CLOCK_REALTIME in ns: what a driver stamping with wall-clock time would send.
    error = refused(fake(tmp_path, now="time.time_ns()"), "its clock reads")
    assert "CLOCK_MONOTONIC" in str(error)


def run_load(command: list[str]) -> tuple[RemoteLoad, History]:
    history = History()
    driver = Driver(command, "mine").start()
    load = RemoteLoad(
        lambda: driver.open_channel(driver_pb2.ChannelConfig(target="dns:///x:1")), history
    )
    return load, history


def test_records_from_another_clock_stop_the_load_and_reach_no_history(tmp_path):
    records = (
        "yield driver_pb2.RecordBatch(records=[driver_pb2.RpcRecord("
        "start_ns=time.time_ns(), end_ns=time.time_ns(), code='OK', seq=1)], sent_ns=now)\n"
        "        time.sleep(30)"
    )
    load, history = run_load(fake(tmp_path, records=records))
    driver = None
    try:
        with pytest.raises(RuntimeError, match="sent a record with start"):
            load.start()
            driver = load.driver
            load.wait_for(1, timeout=5)
        assert history.rpcs == []
    finally:
        driver = driver or (load.channel.driver if load.channel else None)
        if driver is not None:
            driver.close()


def test_records_that_end_before_they_start(tmp_path):
    records = (
        "yield driver_pb2.RecordBatch(records=[driver_pb2.RpcRecord("
        "start_ns=now, end_ns=now - 1000, code='OK', seq=1)], sent_ns=now)\n"
        "        time.sleep(30)"
    )
    load, history = run_load(fake(tmp_path, records=records))
    try:
        with pytest.raises(RuntimeError, match="ending before it starts"):
            load.start()
            load.wait_for(1, timeout=5)
        assert history.rpcs == []
    finally:
        if load.channel is not None:
            load.channel.driver.close()


def test_records_out_of_order_or_twice(tmp_path):
    records = (
        "yield driver_pb2.RecordBatch(records=[driver_pb2.RpcRecord("
        "start_ns=now, end_ns=now, code='UNAVAILABLE', seq=s) for s in (1, 3)], sent_ns=now)\n"
        "        time.sleep(30)"
    )
    load, history = run_load(fake(tmp_path, records=records))
    try:
        with pytest.raises(RuntimeError, match="sent record 3 after record 1"):
            load.start()
            load.wait_for(2, timeout=5)
        assert [r.code for r in history.rpcs] == ["UNAVAILABLE"]  # the one before it only
    finally:
        if load.channel is not None:
            load.channel.driver.close()


def test_a_driver_that_dies_while_a_load_runs(tmp_path):
    command = builtin.resolve("python")
    assert command is not None
    history = History()
    driver = Driver(command.argv, "python", env=command.env).start()
    assert driver.process is not None
    pid = driver.process.pid
    try:
        load = RemoteLoad(
            lambda: driver.open_channel(driver_pb2.ChannelConfig(target="dns:///x:1")),
            history,
            deadline_s=0.2,
        )
        load.start()
        os.kill(pid, 9)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="died while it ran a load"):
            load.wait_until(lambda: False, 10, "never")
        assert time.monotonic() - started < 10
    finally:
        driver.close()
    wait_until(lambda: gone(pid), 5, "the driver gone")
