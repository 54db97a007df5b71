"""The java driver's build (chaos/clients/drivers/java_build.py): it leaves nothing behind
in /tmp, and its class archive follows the JVM flags it is made for."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from chaos.clients.drivers import compiled, java_build

PERF_DIR = Path("/tmp") / f"hsperfdata_{getpass.getuser()}"


def _state(path: Path) -> float | None:
    """When ``path`` last changed (a JVM with perf data adds and removes a file there), or
    None when it does not exist."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


@pytest.fixture
def build_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "java-build"
    monkeypatch.setattr(compiled, "build_dir", lambda source, name: directory)
    return directory


def test_a_build_leaves_no_jvm_perf_data_folder_in_tmp(build_dir):
    before = _state(PERF_DIR)
    archive = java_build.build()
    assert archive.is_file() and archive.parent == build_dir
    assert _state(PERF_DIR) == before, f"javac, jar or java wrote {PERF_DIR}"


def test_the_class_archive_is_made_again_when_the_jvm_flags_change(build_dir, monkeypatch):
    archive = java_build.build()
    first = archive.stat().st_mtime_ns
    assert java_build.build().stat().st_mtime_ns == first  # nothing changed: not rebuilt
    monkeypatch.setattr(java_build, "JVM_FLAGS", [*java_build.JVM_FLAGS, "-Xss2m"])
    os.utime(archive, ns=(first - 10**9, first - 10**9))  # mtimes a second apart, at least
    rebuilt = java_build.build()
    assert rebuilt.stat().st_mtime_ns > first - 10**9
    assert "-Xss2m" in (build_dir / "archive-key").read_text()
    again = rebuilt.stat().st_mtime_ns
    assert java_build.build().stat().st_mtime_ns == again
