"""The fuzzer's command line on bad input: each mistake is one line that names it, exit 4,
and nothing is started (no fleet, no run directory)."""

from __future__ import annotations

import json

import pytest

from chaos.fuzz.cli import UsageError, main, parse_budget


@pytest.mark.parametrize(
    "text, seconds", [("90", 90), ("90s", 90), ("5m", 300), ("1.5h", 5400), (" 2m ", 120)]
)
def test_budgets_read_as_seconds(text, seconds):
    assert parse_budget(text) == seconds


def run(capsys, tmp_path, *argv):
    code = main([*argv, "--output", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--budget", "0"], "--budget 0: give a time above 0, e.g. 30s, 5m or 1h"),
        (["--budget", "0s"], "--budget 0s: give a time above 0"),
        (["--budget", "soon"], "--budget soon: not a time; give e.g. 30s, 5m or 1h"),
        ([], "give --budget (e.g. --budget 5m) to search, or --replay FILE"),
        (
            ["--budget", "1m", "--kinds", "kil"],
            "--kinds: unknown fault kind 'kil': did you mean 'kill'? known kinds: kill, ",
        ),
        (["--budget", "1m", "--profile", "nosuch"], "no profile 'nosuch'"),
        (["--budget", "1m", "--fleet-size", "1"], "--fleet-size 1 is not within 2..200"),
        (["--budget", "1m", "--max-faults", "0"], "--max-faults 0: give 1 or more"),
        (["--budget", "1m", "--bogus"], "unrecognized arguments: --bogus"),
        (["--budget", "1m", "--target", "/nonexistent/grpc-chaos.toml"], "grpc-chaos.toml"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_4(capsys, tmp_path, argv, message):
    code, err = run(capsys, tmp_path, *argv)
    assert code == 4
    assert err.startswith("grpc-chaos fuzz: error: ") and message in err, err
    assert err.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # nothing started, nothing kept


def test_a_corrupt_saved_schedule_is_named(capsys, tmp_path):
    path = tmp_path / "minimal.json"
    path.write_text('{"version": 1, "faults": [{"at_ms": 0, "kind": "kill",')
    code, err = run(capsys, tmp_path, "--replay", str(path))
    assert code == 4 and f"schedule {path}: not JSON: " in err and err.count("\n") == 1


def test_a_saved_schedule_with_an_unknown_kind_is_named(capsys, tmp_path):
    path = tmp_path / "minimal.json"
    path.write_text(
        json.dumps(
            {"version": 1, "faults": [{"at_ms": 0, "kind": "explode", "target": 1, "for_ms": 100}]}
        )
    )
    code, err = run(capsys, tmp_path, "--replay", str(path), "--times", "3")
    assert code == 4
    assert f"schedule {path}: faults[0].kind: unknown fault kind 'explode'" in err


def test_replay_and_budget_together_is_refused(capsys, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"version": 1, "faults": []}))
    code, err = run(capsys, tmp_path, "--replay", str(path), "--budget", "1m")
    assert code == 4 and "give one of them" in err
    code, err = run(capsys, tmp_path, "--replay", str(path), "--times", "0")
    assert code == 4 and "--times 0: give 1 or more" in err


def test_a_schedule_for_a_bigger_fleet_than_asked_is_refused(capsys, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"version": 1, "fleet_size": 5, "faults": []}))
    code, err = run(capsys, tmp_path, "--replay", str(path), "--fleet-size", "3")
    assert code == 4 and "written for 5 backends; --fleet-size 3 is too small" in err


def test_usage_errors_raise_a_named_exception_type():
    with pytest.raises(UsageError):
        parse_budget("-1m")


def test_the_console_script_dispatches_fuzz(capsys):
    from chaos.__main__ import main as console

    assert console(["fuzz", "--budget", "0"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("grpc-chaos fuzz: error: --budget 0: give a time above 0"), err
    assert console(["--help"]) == 0 and "fuzz" in capsys.readouterr().out
