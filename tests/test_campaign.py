"""The zero-flake campaign (chaos/gate/campaign.py) counts every run's outcomes with the gate's
runner and exits as every command does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST = "test_round_robin_is_exact_on_a_warm_channel"


def _campaign(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.gate.campaign", "--out", str(tmp_path / "out"), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_each_run_is_counted_and_a_green_campaign_exits_0(tmp_path):
    done = _campaign(tmp_path, "--runs", "2", "--", "-k", FAST)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("run  1: pass 1, fail 0, error 0, inconclusive 0")
    assert lines[2].startswith("run  2: pass 1, fail 0, error 0, inconclusive 0")
    assert lines[-1].startswith("campaign: 2 runs: pass 2, fail 0, error 0, inconclusive 0")
    # The gate's layout: each run's log, records and junit, and its artifacts.
    for number in (1, 2):
        assert (tmp_path / "out" / "pytest" / f"recommended.{number}.jsonl").is_file()
        assert (tmp_path / "out" / "artifacts" / f"repeat-{number}").is_dir()


def test_a_failing_scenario_fails_the_campaign(tmp_path):
    done = _campaign(tmp_path, "--runs", "1", "--profile", "pick_first", "--", "-k", FAST)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fail 1" in done.stdout and "runs with a failure: [1]" in done.stdout


def test_a_run_that_selects_nothing_is_an_error_not_a_pass(tmp_path):
    done = _campaign(tmp_path, "--runs", "1", "--", "-k", "no_such_scenario_anywhere")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error 1" in done.stdout and "pytest exit 5" in done.stdout


def test_usage_errors_exit_4_and_name_the_problem(tmp_path):
    done = _campaign(tmp_path, "--runs", "1", "--", "--chaos-profile", "naive")
    assert done.returncode == 4
    assert "--chaos-profile is the campaign's to set" in done.stderr
    done = _campaign(tmp_path, "--runs", "0")
    assert done.returncode == 4 and "--runs must be at least 1" in done.stderr
    assert not (tmp_path / "out").exists()
