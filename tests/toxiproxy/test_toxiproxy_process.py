"""The embedded server as a process: flags, -config, metrics, signals, our extensions."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from toxiproxy_testkit import connect, read_until_closed, round_trip, wait_for

import chaos.toxiproxy_server.__main__ as server_main
from chaos.toxiproxy_server import control as toxiproxy_control
from chaos.toxiproxy_server.control import ToxiproxyServer

ROOT = Path(toxiproxy_control.__file__).resolve().parent.parent


def run_server(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.toxiproxy_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("flag", ["-version", "--version", "-version=true"])
def test_version_flag(flag):
    done = run_server(flag)
    assert done.returncode == 0
    assert done.stdout.startswith("toxiproxy-server version 2.12.0-grpc-chaos")


def test_flags_follow_go_rules():
    done = run_server("-bogus")
    assert done.returncode == 2
    assert "flag provided but not defined: -bogus" in done.stderr
    assert "Usage of toxiproxy-server" in done.stderr
    assert run_server("-port").returncode == 2  # a value is needed
    assert run_server("-h").returncode == 0


def test_console_script_entry_point():
    scripts = importlib.metadata.entry_points(group="console_scripts", name="grpc-chaos-toxiproxy")
    assert [ep.load() for ep in scripts] == [server_main.main]


def test_not_importable_as_toxiproxy():
    import toxiproxy

    assert hasattr(toxiproxy, "Toxiproxy")  # that name is toxiproxy-python's
    assert "site-packages" in toxiproxy.__file__


def test_api_host_is_loopback_by_default():
    flags = server_main.flags.parse([])
    assert (flags["host"], flags["port"]) == ("127.0.0.1", "8474")


def test_config_file_is_loaded_before_listening(echo):
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="gct-") as config:
        json.dump(
            [
                {"name": "from-config", "upstream": echo.address, "listen": "127.0.0.1:0"},
                {"name": "off", "upstream": "x:1", "enabled": False},
            ],
            config,
        )
        config.flush()
        with ToxiproxyServer("embedded", args=("-config", config.name)) as server:
            proxies = server.control().proxies()
    assert sorted(proxies) == ["from-config", "off"]
    assert proxies["from-config"]["enabled"] and not proxies["off"]["enabled"]


def test_a_bad_config_file_is_only_logged():
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="gct-") as config:
        config.write("{not json")
        config.flush()
        with ToxiproxyServer("embedded", args=("-config", config.name)) as server:
            assert server.control().proxies() == {}
            output = server.output
        with ToxiproxyServer("embedded", args=("-config", config.name + "-missing")) as other:
            assert other.control().proxies() == {}
    assert "failed to populate" in output()


def test_proxy_metrics(echo):
    with ToxiproxyServer("embedded", args=("-proxy-metrics",)) as server:
        listen = server.control().create("m", "127.0.0.1:0", echo.address)
        with connect(listen) as sock:
            round_trip(sock, b"12345")
        url = server.url + "/metrics"
        labels = f'listener="{listen}",proxy="m",upstream="{echo.address}"'
        wanted = [
            f'toxiproxy_proxy_received_bytes_total{{direction="upstream",{labels}}} 5',
            f'toxiproxy_proxy_sent_bytes_total{{direction="upstream",{labels}}} 5',
        ]
        text = wait_for(lambda: _metrics_with(url, wanted), 5, "the link counters")
        reply = requests.post(url, timeout=10)  # every method is served
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE toxiproxy_proxy_received_bytes_total counter" in text
    assert "process_open_fds" not in text


def _metrics_with(url: str, lines: list[str]) -> str | None:
    text = requests.get(url, timeout=10).text
    return text if all(line in text.splitlines() for line in lines) else None


def test_metrics_route_exists_only_with_a_metrics_flag():
    with ToxiproxyServer("embedded") as server:
        reply = requests.get(server.url + "/metrics", timeout=10)
    assert (reply.status_code, reply.text) == (404, "404 page not found\n")


def test_runtime_metrics():
    with ToxiproxyServer("embedded", args=("-runtime-metrics",)) as server:
        text = requests.get(server.url + "/metrics", timeout=10).text
    assert "process_open_fds " in text and "process_resident_memory_bytes " in text
    assert "toxiproxy_proxy" not in text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly_closing_connections(echo, signum):
    with ToxiproxyServer("embedded") as server:
        listen = server.control().create("p", "127.0.0.1:0", echo.address)
        with connect(listen) as sock:
            round_trip(sock)
            os.kill(server.pid, signum)
            assert read_until_closed(sock, 5)[:2] == (b"", "eof")
        assert server.process.wait(5) == 0
        wait_for(lambda: echo.open_count == 0, 5, "the upstream side to be closed")


def test_parent_watch_stops_on_stdin_eof():
    with ToxiproxyServer("embedded") as server:
        server.process.stdin.close()
        assert server.process.wait(5) == 0


def test_ready_line_and_port_0():
    with ToxiproxyServer("embedded") as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port != 8474
        assert requests.get(server.url + "/version", timeout=10).status_code == 200


def test_api_bind_failure_exits_with_an_error():
    with socket_in_use() as port:
        done = run_server("-port", str(port))
    assert done.returncode == 1
    assert f"listen tcp 127.0.0.1:{port}: bind: address already in use" in done.stderr


class socket_in_use:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_lag_log_holds_a_stop_of_the_server_as_one_stall(tmp_path):
    """--lag-log: the event loop's lateness, on the history's clock, read as stalls."""
    import time

    from chaos.observe.proxy_lag import LagLog

    path = tmp_path / "lag.log"
    with ToxiproxyServer("embedded", args=("--lag-log", str(path))) as server:
        lag = LagLog(path, "proxy")
        stopped = time.monotonic_ns()
        server.process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.3)  # the fault itself: the loop cannot run for 300 ms
        finally:
            continuing = time.monotonic_ns()  # before SIGCONT: the loop may wake at once
            server.process.send_signal(signal.SIGCONT)
        found = wait_for(
            lambda: [s for s in lag.stalls(stopped, continuing) if s.ms >= 250], 5, "the stall"
        )
    assert found[0].start_ns <= stopped + 10_000_000 and found[0].end_ns >= continuing
    assert found[0].describe() == f"proxy stalled {found[0].ms:.0f} ms"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_lag_log_that_cannot_be_opened_stops_the_server_with_its_name():
    done = run_server("-port", "0", "--lag-log", "/nonexistent/dir/lag.log")
    assert done.returncode == 1
    assert "cannot open the lag log /nonexistent/dir/lag.log" in done.stderr
