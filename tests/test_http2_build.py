"""The compiled HTTP/2 point (chaos/http2/relay_go/, built by chaos/http2/go_build.py) and
the choice between it and Python's: its sources are formatted and vetted, it is built
into a directory of its own, a machine without its toolchain gets Python's point or a
clear error, and an unknown implementation is refused by name.

What each point does on the wire is tests/test_http2_point.py's, run on both."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from chaos.http2 import control, go_build
from chaos.http2.control import Http2PointError, Http2Server
from fleet.procs import build as builds

GO_ENV = {
    **os.environ,
    "GO111MODULE": "off",
    "GOPROXY": "off",
    "GOFLAGS": "",
    "GOPATH": "/usr/share/gocode",
}


@pytest.fixture
def build_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "http2-build"
    monkeypatch.setattr(builds, "build_dir", lambda source, name: directory)
    return directory


def test_the_sources_are_gofmt_formatted_and_go_vet_clean(tmp_path):
    unformatted = subprocess.run(
        ["gofmt", "-l", "."], cwd=go_build.SOURCE, capture_output=True, text=True, check=True
    )
    assert unformatted.stdout == "", f"gofmt would change: {unformatted.stdout}"
    vet = subprocess.run(
        ["go", "vet", "."],
        cwd=go_build.SOURCE,
        env={**GO_ENV, "GOCACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
    )
    assert vet.returncode == 0, vet.stdout + vet.stderr


def test_it_is_built_into_its_directory_once_until_a_source_changes(build_dir):
    binary = go_build.build()
    assert binary == build_dir / go_build.BINARY and os.access(binary, os.X_OK)
    first = binary.stat().st_mtime_ns
    assert go_build.build().stat().st_mtime_ns == first  # nothing changed: not rebuilt
    os.utime(binary, ns=(0, 0))  # older than its sources now
    assert go_build.build().stat().st_mtime_ns > 0
    assert not list(build_dir.glob("*.tmp"))


def test_without_its_toolchain_python_s_point_runs_and_go_s_is_a_clear_error(
    build_dir, monkeypatch
):
    monkeypatch.setattr(go_build, "NEEDS", (Path("/nonexistent/golang.org/x/net/http2"),))
    monkeypatch.delenv(control.IMPLEMENTATION_ENV, raising=False)
    assert control.choose_implementation() == "python"
    server = Http2Server(implementation="go")
    with pytest.raises(Http2PointError, match=r"golang-golang-x-net-dev.*") as failed:
        server.start()
    assert "/nonexistent/golang.org/x/net/http2" in str(failed.value)
    assert server.process is None


def test_the_implementation_is_chosen_by_argument_then_environment(monkeypatch):
    monkeypatch.setenv(control.IMPLEMENTATION_ENV, "python")
    assert control.choose_implementation() == "python"
    assert control.choose_implementation("go") == "go"
    monkeypatch.setenv(control.IMPLEMENTATION_ENV, "rust")
    with pytest.raises(ValueError, match=r"'rust' \(known: go, python\)"):
        control.choose_implementation()
    with pytest.raises(ValueError, match="'c'"):
        Http2Server(implementation="c")
