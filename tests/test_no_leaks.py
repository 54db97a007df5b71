"""A scenario run that is interrupted (Ctrl-C) or killed (SIGKILL) leaves nothing behind:
no backend, Toxiproxy or helper process, no fleet directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.controller import _proc_state
from fleet.waiting import wait_until
from tests.helpers import descendants as _children

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "scenarios/test_kill.py::test_kill_under_load_loses_no_rpc"


def _is_backend(pid: int) -> bool:
    try:
        return b"fleet.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_or_killed_run_leaves_nothing(sig, tmp_path):
    temp = tmp_path / "tmp"  # the run's TMPDIR: whatever it leaves there is its own
    temp.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", SCENARIO, "-p", "no:cacheprovider", "-q",
         f"--chaos-artifacts={tmp_path / 'artifacts'}"], cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(temp)})
    try:
        # Mid-scenario: the fleet's backends are up (three of them, plus Toxiproxy).
        wait_until(lambda: sum(map(_is_backend, _children(run.pid))) >= 3, 60,
                   "the scenario's fleet running")
        assert list(temp.glob("grpc-chaos-fleet-*")), "the fleet works in TMPDIR"
        started = _children(run.pid)
        run.send_signal(sig)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    wait_until(lambda: all(_proc_state(pid) in ("", "Z") for pid in started), 20,
               f"every process the run started gone after {signal.Signals(sig).name}")
    wait_until(lambda: not any(temp.iterdir()), 20, "its temporary files removed")
