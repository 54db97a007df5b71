"""The example servers keep the properties their READMEs claim (examples/check_examples.py):
the good ones every one — answering health-check streams through a reconnect wave
included, which grpcio-health-checking's stock servicer fails on a thread-pool server —
and a flawed one all but the property its flaw breaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_good_servers_keep_every_property_and_a_flawed_one_breaks_only_its_own():
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "check_examples.py"),
            str(EXAMPLES / "good"),
            str(EXAMPLES / "go-good"),
            str(EXAMPLES / "no-drain"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("good", "go-good", "no-drain"):
        assert any(line.startswith(f"ok   {name}:") for line in lines), result.stdout
    assert "health_streams=yes" in result.stdout and "drains=NO" in result.stdout
