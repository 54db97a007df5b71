"""A scenario run that is interrupted (Ctrl-C), stopped (SIGTERM) or killed (SIGKILL)
leaves nothing behind: no backend, Toxiproxy or helper process, no fleet directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.controller import _proc_state
from fleet.procs.waiting import wait_until
from tests.helpers import descendants as _children

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "scenarios/test_kill.py::test_kill_under_load_loses_no_rpc"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _is_backend(pid: int) -> bool:
    return b"fleet.server" in _cmdline(pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_or_killed_run_leaves_nothing(sig, tmp_path):
    temp = tmp_path / "tmp"  # the run's TMPDIR: whatever it leaves there is its own
    temp.mkdir()
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            SCENARIO,
            "-p",
            "no:cacheprovider",
            "-q",
            f"--chaos-artifacts={tmp_path / 'artifacts'}",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        # Mid-scenario: the fleet's backends are up (three of them, plus Toxiproxy).
        wait_until(
            lambda: sum(map(_is_backend, _children(run.pid))) >= 3,
            60,
            "the scenario's fleet running",
        )
        assert list(temp.glob("grpc-chaos-fleet-*")), "the fleet works in TMPDIR"
        started = _children(run.pid)
        run.send_signal(sig)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    wait_until(
        lambda: all(_proc_state(pid) in ("", "Z") for pid in started),
        20,
        f"every process the run started gone after {signal.Signals(sig).name}",
    )
    wait_until(lambda: not any(temp.iterdir()), 20, "its temporary files removed")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_stopped_or_killed_campaign_leaves_nothing(sig, tmp_path):
    """The zero-flake campaign (chaos/gate/campaign.py) runs CPU burners and a pytest beside
    them: stopped (SIGTERM, or Ctrl-C even when it was started as a background job, with
    SIGINT ignored) or killed -9, none of them — burners, pytest, its fleet — survives."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    # SIGINT ignored at start, as in a non-interactive shell's background job.
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, runpy, sys; "
            "signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "sys.argv = ['chaos.gate.campaign', '--runs', '3', '--burners', '2', '--out', sys.argv[1],"
            " '--', '-k', 'test_kill_under_load_loses_no_rpc']; "
            "runpy.run_module('chaos.gate.campaign', run_name='__main__')",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        wait_until(
            lambda: sum(map(_is_backend, _children(run.pid))) >= 3,
            60,
            "the campaign's first run with its fleet up",
        )
        started = _children(run.pid)
        burners = [pid for pid in started if b"while True" in _cmdline(pid)]
        assert len(burners) == 2
        run.send_signal(sig)
        output = run.communicate(timeout=60)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    if sig != signal.SIGKILL:
        assert run.returncode == 130 and "campaign: stopped during run 1" in output
    wait_until(
        lambda: all(_proc_state(pid) in ("", "Z") for pid in started),
        30,
        f"every process the campaign started gone after {signal.Signals(sig).name}",
    )
    wait_until(lambda: not any(temp.iterdir()), 20, "its temporary files removed")
