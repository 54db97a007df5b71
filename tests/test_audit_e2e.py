"""One real audit end to end (a child ``grpc-chaos audit``, real fleets): a tiny profile —
round_robin, a retry policy and grpc.keepalive_timeout_ms (dead in grpcio) — restricted to
two fast kill scenarios. retryPolicy is needed (the kill under load loses RPCs without
it), round_robin is needed, keepalive_timeout_ms is not covered by that selection (no kill
scenario answers keepalive); exit 0; audit.json and audit.html written; nothing left
running (every process the audit started carries a marker in its environment)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from chaos.outcomes import Exit
from fleet.procs.waiting import wait_until
from tests.test_gate import MARK, _marked

ROOT = Path(__file__).resolve().parent.parent
AUDIT_TIMEOUT_S = 300  # three pytest runs of one or two scenarios: ~10 s on this machine
TINY = {
    "name": "tiny",
    "service_config": {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    },
    "channel_options": {"grpc.keepalive_timeout_ms": 500},
}


def test_audit_of_a_tiny_profile(tmp_path):
    profile = tmp_path / "tiny.json"
    profile.write_text(json.dumps(TINY))
    mark = uuid.uuid4().hex
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos",
            "audit",
            "--profile",
            str(profile),
            "--scenarios",
            "test_kill_under_load,test_round_robin_spreads_then_kill",
            "--output",
            str(tmp_path / "runs"),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT_S,
        env={**os.environ, MARK: mark},
    )
    wait_until(lambda: not _marked(mark), 30, "every process the audit started gone")
    assert result.returncode == Exit.PASS, result.stdout + result.stderr
    run = (tmp_path / "runs" / "latest").resolve()
    doc = json.loads((run / "audit.json").read_text())
    assert doc["kind"] == "grpc-chaos audit" and doc["version"] == 1
    verdicts = {s["name"]: s for s in doc["settings"]}
    assert verdicts["retryPolicy"]["verdict"] == "needed"
    assert "test_kill_under_load_loses_no_rpc fails on errors" in verdicts["retryPolicy"]["why"]
    assert verdicts["round_robin"]["verdict"] == "needed"
    assert verdicts["grpc.keepalive_timeout_ms"]["verdict"] == "not covered"
    assert doc["counts"]["needed"] == 2 and doc["exit_code"] == 0
    assert "needed" in (run / "audit.html").read_text()
    assert len(list((run / "profiles").glob("*.json"))) == 3
    assert "[run 3/3]" in result.stdout and "ETA" in result.stdout


def test_an_interrupted_audit_keeps_what_it_wrote_and_leaves_nothing_running(tmp_path):
    """Ctrl-C (SIGINT) once the baseline's pytest child runs: exit 130, audit.json and
    audit.html written with what was learnt (nothing is called needed on no evidence), and
    every process the audit started gone."""
    profile = tmp_path / "tiny.json"
    profile.write_text(json.dumps(TINY))
    mark = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos", "audit", "--profile", str(profile),
         "--scenarios", "test_kill", "--output", str(tmp_path / "runs")],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, MARK: mark},
    )  # fmt: skip
    try:
        # The baseline has started when a pytest child carries the mark.
        wait_until(lambda: any(_is_pytest(pid) for pid in _marked(mark)), 60, "a pytest child")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    wait_until(lambda: not _marked(mark), 30, "every process the audit started gone")
    assert process.returncode == Exit.INTERRUPTED, out + err
    run = (tmp_path / "runs" / "latest").resolve()
    doc = json.loads((run / "audit.json").read_text())
    assert doc["counts"].get("needed", 0) == 0
    assert (run / "audit.html").is_file()
    assert "interrupted" in out


def _is_pytest(pid: int) -> bool:
    try:
        return b"-m\x00pytest\x00" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_a_profile_that_fails_its_check_is_one_line_and_exit_4(tmp_path, capsys):
    from chaos.__main__ import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "channel_options": {"grpc.keepalive_time_ms": "1s"}}))
    assert main(["audit", "--profile", str(bad), "--output", str(tmp_path / "runs")]) == 4
    err = capsys.readouterr().err
    assert 'grpc.keepalive_time_ms"]: expected an integer' in err
    assert not (tmp_path / "runs").exists()
