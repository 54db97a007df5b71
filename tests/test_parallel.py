"""Scenarios run in parallel (pytest-xdist): each worker has a fleet of its own on its own
addresses, its own Toxiproxy and its own monitor, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

SCENARIO = """
from chaos import checks

def test_spread_{n}(chaos):
    load = chaos.load(concurrency=4)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=20)
    watched = chaos.stalls.starvation.watching()
    assert any(w.startswith("backend b1 (pid") for w in watched), watched
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
    chaos.expect(checks.latency(chaos.history, percentile=50, bound_ms=1000, start_ns=warm))
"""


def _ours(marker: str) -> list[str]:
    """Command lines of the processes whose command line names ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if marker in cmdline:
            found.append(cmdline)
    return found


def test_two_workers_each_run_a_fleet_and_leave_nothing(pytester, monkeypatch, tmp_path):
    temp = tmp_path / "tmp"  # each fleet's directory, so each backend's certificate path
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    for n in range(4):
        pytester.makepyfile(**{f"test_m{n}": SCENARIO.format(n=n)})
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--chaos-fleet-size", "2", timeout=300
    )
    result.assert_outcomes(passed=4)
    output = result.stdout.str()
    # Each worker's stalls and CPU waits, in the controller's summary.
    for worker in ("gw0", "gw1"):
        assert f"grpc-chaos [{worker}]: runner stalls this run:" in output
        assert f"grpc-chaos [{worker}]: CPU waits of the runner, proxy and backends" in output
    assert _ours(str(temp)) == []
    assert not any(temp.glob("grpc-chaos-fleet-*"))
