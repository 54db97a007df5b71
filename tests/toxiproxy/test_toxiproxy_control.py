"""chaos.toxiproxy_server.control: choosing and starting servers, and proxy control through it."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from toxiproxy_testkit import LATE_S, connect, refused, round_trip, wait_for

from chaos.toxiproxy_server import control as toxiproxy_control
from chaos.toxiproxy_server.control import (
    ProxyControl,
    ServerStartError,
    ToxiproxyError,
    ToxiproxyServer,
    select_kind,
    toxiproxy_python,
)

ROOT = Path(toxiproxy_control.__file__).resolve().parent.parent


@pytest.fixture
def fake_binary():
    """A ``toxiproxy-server`` on a temporary PATH entry that runs the embedded server.

    It takes the reference's flags and cannot watch its parent, like the real binary.
    """
    with tempfile.TemporaryDirectory(prefix="gct-bin-") as folder:
        path = Path(folder) / "toxiproxy-server"
        path.write_text(
            f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" '
            f'-m chaos.toxiproxy_server "$@"\n'
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        yield path


def test_selection_order(fake_binary):
    assert select_kind(
        {"TOXIPROXY_URL": "http://127.0.0.1:1", "PATH": str(fake_binary.parent)}
    ) == ("url", "http://127.0.0.1:1")
    assert select_kind({"PATH": str(fake_binary.parent)}) == ("binary", str(fake_binary))
    assert select_kind({"PATH": "/nonexistent"}) == ("embedded", "")


def test_embedded_server_starts_on_a_free_port_and_stops(echo):
    with ToxiproxyServer("embedded") as server:
        assert (server.kind, server.host) == ("embedded", "127.0.0.1")
        assert server.port > 0 and server.pid
        control = server.control()
        assert "grpc-chaos" in control.version()
        listen = control.create("p", "127.0.0.1:0", echo.address)
        with connect(listen) as sock:
            assert round_trip(sock) < LATE_S
        process = server.process
    assert process.returncode == 0, "stopped with SIGTERM, exits cleanly"
    assert refused(listen)


def test_binary_server_is_started_on_a_free_port(fake_binary):
    with ToxiproxyServer("binary", binary=str(fake_binary)) as server:
        assert server.kind == "binary" and server.host == "127.0.0.1"
        assert server.control().proxies() == {}
        process = server.process
    assert process.poll() is not None


def test_url_server_is_used_and_never_stopped(toxiproxy_server):
    with ToxiproxyServer("url", url=toxiproxy_server.url) as server:
        assert server.pid is None and server.port == toxiproxy_server.port
    assert toxiproxy_server.control().version()  # still up


def test_url_server_that_does_not_answer_fails_clearly_and_at_once():
    # Bound but not listening: connections are refused, and no one else can take the port
    # while the test holds it.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(
            ServerStartError, match=f"no Toxiproxy server answers at http://127.0.0.1:{port}"
        ):
            ToxiproxyServer("url", url=f"http://127.0.0.1:{port}").start()
    # Refused is refused at once: waiting out the request timeout, or retrying until a
    # start timeout, would take at least that long.
    assert time.monotonic() - started < toxiproxy_control.URL_CHECK_TIMEOUT


_PARENT = """
import json, sys
from chaos.toxiproxy_server.control import ToxiproxyServer
server = ToxiproxyServer(sys.argv[1], binary=sys.argv[2] or None).start()
print(json.dumps({"pid": server.pid, "url": server.url}), flush=True)
sys.stdin.read()
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("kind", ["embedded", "binary"])
def test_servers_die_with_a_parent_killed_by_sigkill(kind, fake_binary):
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, kind, str(fake_binary)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    child = None
    try:
        line = toxiproxy_control._read_line(parent.stdout, time.monotonic() + 20)
        child = json.loads(line)["pid"]
        assert ProxyControl(json.loads(line)["url"]).version()
        parent.kill()
        parent.wait(5)
        wait_for(lambda: _gone(child), 10, f"the {kind} server (pid {child}) to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)
        for pipe in (parent.stdin, parent.stdout):
            pipe.close()
        if child and not _gone(child):
            os.kill(child, signal.SIGKILL)


# --------------------------------------------------------------------- ProxyControl


def test_proxy_control_operations(control, prefix, echo):
    name = prefix + "p"
    listen = control.create(name, "127.0.0.1:0", echo.address)
    assert listen.startswith("127.0.0.1:") and not listen.endswith(":0")
    assert control.proxies()[name]["listen"] == listen
    assert control.add_toxic(name, "latency", {"latency": 100}) == "latency_downstream"
    assert (
        control.add_toxic(
            name, "limit_data", {"bytes": 9}, stream="upstream", toxicity=0.5, name="lim"
        )
        == "lim"
    )
    toxic = control.update_toxic(name, "lim", toxicity=1.0)
    assert (toxic["toxicity"], toxic["attributes"]) == (1, {"bytes": 9})
    assert control.update_toxic(name, "lim", {"bytes": 10})["attributes"] == {"bytes": 10}
    assert [t["name"] for t in control.toxics(name)] == ["lim", "latency_downstream"]
    control.remove_toxic(name, "lim")
    control.disable(name)
    assert refused(listen)
    control.reset()
    assert control.proxy(name)["enabled"] is True and control.toxics(name) == []
    made = control.populate(
        [{"name": prefix + "q", "upstream": echo.address, "listen": "127.0.0.1:0"}]
    )
    assert [p["name"] for p in made] == [prefix + "q"]
    control.delete(name)
    assert name not in control.proxies()


def test_proxy_control_errors_carry_the_server_message(control, prefix, echo):
    name = prefix + "p"
    listen = control.create(name, "127.0.0.1:0", echo.address)
    cases = [
        (lambda: control.create(name, "127.0.0.1:0", echo.address), 409, "proxy already exists"),
        (
            lambda: control.create(prefix + "q", listen, echo.address),
            500,
            f"listen tcp {listen}: bind: address already in use",
        ),
        (lambda: control.delete(prefix + "none"), 404, "proxy not found"),
        (lambda: control.add_toxic(name, "bogus"), 400, "invalid toxic type"),
        (lambda: control.remove_toxic(name, "none"), 404, "toxic not found"),
        (
            lambda: control.populate([{"name": prefix + "r"}]),
            400,
            "missing required field: upstream at proxy 1",
        ),
    ]
    for call, status, message in cases:
        with pytest.raises(ToxiproxyError) as caught:
            call()
        assert (caught.value.status, caught.value.message) == (status, message)
        assert message in str(caught.value)


def test_two_servers_are_driven_from_one_process(control, prefix, echo):
    with ToxiproxyServer("embedded") as other:
        second = other.control()
        second.create("only-here", "127.0.0.1:0", echo.address)
        control.create(prefix + "only-there", "127.0.0.1:0", echo.address)
        assert "only-here" not in control.proxies()
        assert list(second.proxies()) == ["only-here"]
        with toxiproxy_python(other.url) as library:
            assert list(library.proxies()) == ["only-here"]
        assert prefix + "only-there" in control.proxies()
