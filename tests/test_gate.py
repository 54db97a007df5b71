"""The pre-release gate end to end: real ``grpc-chaos gate`` runs (a child process each)
on one or two scenarios, their exit codes, run directories, baseline, repeats, reports —
and the report opened in headless Chromium.

Each run here is a real pytest run with real fleets; they are kept few and small. Every
gate is started with a marker in its environment that its descendants inherit, so "nothing
left running" is checked by looking for that marker in /proc after it ended.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from chaos import profiles
from chaos.gate import aggregate, results_file
from chaos.outcomes import Exit
from chaos.run import results as records_module
from fleet.procs.waiting import wait_until
from tests.chromium import Chromium, open_page, screenshot

ROOT = Path(__file__).resolve().parent.parent
MARK = "GRPC_CHAOS_GATE_TEST_MARK"
# The longest gate here runs two pytest processes of one scenario each (~30 s); the rest
# of the limit is for a busy machine. A stuck gate fails the test instead of hanging CI.
GATE_TIMEOUT_S = 300
LONG_OUTAGE = "test_backend_back_after_a_long_outage_rejoins_within_the_recovery_bound"
KILL_UNDER_LOAD = "test_kill_under_load_loses_no_rpc"
RUN_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

# A client whose reconnect backoff is longer than recommended's (1000 ms cap): after a long
# outage it comes back at its next attempt, 3000 ms +-20 % away instead of 1000 ms +-20 %
# — at least twice as slow, so the regression is beyond the 50 % tolerance however the
# jitter falls. Every other setting is recommended's.
SLOW_BACKOFF = {
    "grpc.initial_reconnect_backoff_ms": 1000,
    "grpc.min_reconnect_backoff_ms": 1000,
    "grpc.max_reconnect_backoff_ms": 3000,
}
# Both runs of the regression are judged against this bound, so the slow client still
# passes (3.6 s at worst) and the two runs' figures are comparable (same bound).
SLACK_REQUIREMENTS = "[requirements]\nrecovery_ms = 5000\n"

PROBE = '''\
"""Scenarios for the gate's own tests: their outcome is set, not measured."""
import os

import pytest

from chaos.checks import Verdict
from chaos.outcomes import ScenarioInconclusive

pytestmark = pytest.mark.claims


def test_fails_on_the_second_repeat(chaos):
    """Property: none; fails on repeat 2 only (GRPC_CHAOS_REPEAT), which makes a flaky cell.

    Bound: the figure (1 on repeat 2, else 0) <= 0."""
    repeat = int(os.environ.get("GRPC_CHAOS_REPEAT", "1"))
    chaos.expect(Verdict("second_repeat", repeat != 2, int(repeat == 2), "faults", 0,
                         f"repeat {repeat}"))


def test_runner_stalled(chaos):
    """Property: none; ends inconclusive, as a scenario whose runner stalled does."""
    verdict = Verdict("latency", False, 250.0, "ms", 100, "inconclusive on purpose",
                      inconclusive=True, stall_ms=300.0)
    chaos.check(verdict)
    raise ScenarioInconclusive(f"[profile {chaos.profile.name}] {verdict}", verdict)
'''


# ---------------------------------------------------------------------------- helpers


def _marked(mark: str) -> list[int]:
    """Live processes whose environment carries the mark (zombies have none)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def start_gate(
    *args: str,
    env: dict | None = None,
    preexec_fn=None,
    launcher: tuple[str, ...] = ("-m", "chaos"),
) -> tuple[subprocess.Popen, str]:
    mark = uuid.uuid4().hex
    environment = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    environment.update({MARK: mark, **(env or {})})
    process = subprocess.Popen(
        [sys.executable, *launcher, "gate", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        preexec_fn=preexec_fn,
    )
    return process, mark


def finish(process: subprocess.Popen, mark: str) -> subprocess.CompletedProcess:
    try:
        out, err = process.communicate(timeout=GATE_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    wait_until(lambda: not _marked(mark), 30, "every process the gate started gone")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def gate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the gate to its end; asserts that nothing it started is left running."""
    return finish(*start_gate(*args, env=env))


def run_dir(result: subprocess.CompletedProcess) -> Path:
    found = re.search(r"^  results: (\S+)/results\.json", result.stdout, re.M)
    assert found, f"no run directory in the gate's output:\n{result.stdout}\n{result.stderr}"
    return Path(found.group(1))


def results(directory: Path) -> dict:
    return json.loads((directory / "results.json").read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gate")
    (path / "slack.toml").write_text(SLACK_REQUIREMENTS)
    source, data = profiles.read("recommended")
    data = {
        **data,
        "name": "slow_backoff",
        "channel_options": {**data["channel_options"], **SLOW_BACKOFF},
    }
    (path / "slow_backoff.json").write_text(json.dumps(data))
    (path / "test_gate_probe.py").write_text(PROBE)
    (path / "step-summary.md").write_text("earlier step\n")
    return path


@pytest.fixture(scope="module")
def passing(work):
    """recommended on the long-outage scenario, with the slack bound: the baseline."""
    result = gate(
        "--profile",
        "recommended",
        "--family",
        "kill",
        "-k",
        LONG_OUTAGE,
        "--requirements",
        str(work / "slack.toml"),
        "--output",
        str(work / "runs"),
        env={"GITHUB_STEP_SUMMARY": str(work / "step-summary.md")},
    )
    return result, run_dir(result)


@pytest.fixture(scope="module")
def failing(work):
    """naive and recommended on kill under load: naive fails, on its errors check."""
    result = gate(
        "--profile", "naive,recommended", "-k", KILL_UNDER_LOAD, "--output", str(work / "runs")
    )
    return result, run_dir(result)


# ---------------------------------------------------------------------------- a pass


def test_recommended_passes_and_writes_the_run_directory(passing, work):
    result, directory = passing
    assert result.returncode == Exit.PASS, result.stdout + result.stderr
    assert re.search(
        rf"^PASS  test_kill::{LONG_OUTAGE} \[recommended\]  recovery_time: "
        r"[\d.]+ ms \(bound <= 5000 ms\)",
        result.stdout,
        re.M,
    ), result.stdout
    assert "grpc-chaos gate: PASS — 1 passed" in result.stdout
    assert RUN_NAME.match(directory.name) and directory.parent == work / "runs"
    for name in (
        "results.json",
        "junit.xml",
        "summary.md",
        "report.html",
        "pytest/recommended.1.log",
        "pytest/recommended.1.jsonl",
        "pytest/recommended.1.xml",
    ):
        assert (directory / name).is_file(), name

    doc = results(directory)
    assert (doc["kind"], doc["version"], doc["records_schema"]) == (
        results_file.KIND,
        results_file.VERSION,
        records_module.SCHEMA,
    )
    run = doc["run"]
    assert run["verdict"] == "PASS" and run["exit_code"] == 0 and not run["interrupted"]
    assert ISO.match(run["started"]) and ISO.match(run["ended"]) and run["ended"] > run["started"]
    assert run["versions"]["grpcio"] and run["versions"]["grpc-chaos"]
    assert run["host"]["cpus"] and run["target"]["builtin"] is True
    assert run["requirements"]["source"] == str(work / "slack.toml")
    assert run["requirements"]["values"]["recovery_ms"] == 5000
    digest = records_module.profile_digest(profiles.load("recommended"))
    assert [(p["name"], p["sha256"]) for p in run["profiles"]] == [("recommended", digest)]

    [record] = doc["results"]
    assert (record["scenario"], record["outcome"], record["repeat"]) == (
        f"test_kill::{LONG_OUTAGE}",
        "pass",
        1,
    )
    recovery = next(v for v in record["verdicts"] if v["name"] == "recovery_time")
    assert recovery["unit"] == "ms" and recovery["bound"] == 5000 and recovery["figure"] > 0
    assert [m["label"] for m in doc["matrix"]] == ["pass"]
    assert any(
        f["check"] == "recovery_time" and f["median"] == recovery["figure"] for f in doc["figures"]
    )

    artifacts = directory / record["artifacts"]
    assert not Path(record["artifacts"]).is_absolute()
    assert artifacts.is_relative_to(directory / "artifacts" / "repeat-1" / "recommended")
    _assert_wall_clock_beside_monotonic(artifacts / "history.jsonl")
    assert (directory.parent / "latest").resolve() == directory or (
        directory.parent / "latest"
    ).resolve().name > directory.name  # a later run moved it

    summary = (directory / "summary.md").read_text()
    assert summary.startswith("## grpc-chaos gate: PASS — 1 passed")
    step = (work / "step-summary.md").read_text()
    assert step == "earlier step\n" + summary  # appended, nothing lost


def _assert_wall_clock_beside_monotonic(history: Path) -> None:
    lines = [json.loads(line) for line in history.read_text().splitlines()[:50]]
    rpcs = [line for line in lines if line["type"] == "rpc"]
    assert rpcs
    for rpc in rpcs:
        start, end = (
            datetime.fromisoformat(rpc[k].replace("Z", "+00:00"))
            for k in ("start_wall", "end_wall")
        )
        wall_us = (end - start).total_seconds() * 1e6
        assert abs(wall_us - (rpc["end_ns"] - rpc["start_ns"]) / 1e3) <= 1, rpc


# ---------------------------------------------------------------------------- failures


def test_naive_fails_and_the_report_names_the_setting_to_add(failing):
    result, directory = failing
    assert result.returncode == Exit.FAIL, result.stdout + result.stderr
    assert re.search(
        rf"^FAIL  test_kill::{KILL_UNDER_LOAD} \[naive\]  errors: \d+ rpcs "
        r"\(bound <= 0 rpcs\)",
        result.stdout,
        re.M,
    ), result.stdout
    assert re.search(rf"^PASS  test_kill::{KILL_UNDER_LOAD} \[recommended\]", result.stdout, re.M)
    doc = results(directory)
    cells = {(m["scenario"], m["profile"]): m["outcome"] for m in doc["matrix"]}
    assert cells == {
        (f"test_kill::{KILL_UNDER_LOAD}", "naive"): "fail",
        (f"test_kill::{KILL_UNDER_LOAD}", "recommended"): "pass",
    }
    naive = next(r for r in doc["results"] if r["profile"]["name"] == "naive")
    assert naive["decisive"]["name"] == "errors"
    assert "retryPolicy: not set" in naive["decisive"]["advice"]
    summary = (directory / "summary.md").read_text()
    assert "### What answers the failures" in summary and "retryPolicy: not set" in summary
    page = (directory / "report.html").read_text()
    changes = page.split("<h2>What to change</h2>", 1)[1].split("<h2>", 1)[0]
    assert "errors: " in changes and "retryPolicy: not set" in changes

    junit = (directory / "junit.xml").read_text()
    assert '<testsuite name="naive repeat 1"' in junit
    assert '<property name="chaos_profile" value="naive" />' in junit
    assert re.search(r'<property name="chaos_errors" value="fail \d+ rpcs bound &lt;= 0" />', junit)


def test_usage_error_from_pytest_itself_is_exit_4_and_keeps_no_run(work):
    result = gate(
        "-k", KILL_UNDER_LOAD, "--output", str(work / "usage-runs"), "--", "--no-such-pytest-option"
    )
    assert result.returncode == Exit.USAGE
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "--no-such-pytest-option" in result.stderr
    assert not any((work / "usage-runs").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--family", "kil"], "unknown family 'kil' (did you mean 'kill'?)"),
        (
            ["-m", "kill and hnag"],
            "unknown marker 'hnag' in -m 'kill and hnag' (did you mean 'hang'?)",
        ),
        (["--profile", "nope"], "no profile 'nope'"),
        (["--profile", "{work}/broken.json"], "profile {work}/broken.json: 1 problem(s): "),
        (["--target", "{work}/missing.toml"], "{work}/missing.toml: no such file"),
        (["--target", "{work}/bad-target.toml"], "server.comand"),
        (["--requirements", "{work}/bad.toml"], "unknown requirement 'recovery'"),
        (
            ["--output", "{work}/a-file/runs"],
            "cannot write run directories under {work}/a-file/runs",
        ),
        (["--baseline", "{work}/no-such-run"], "no run directory or results.json at"),
        (["--baseline", "latest", "--output", "{work}/empty"], "no run to compare with"),
        (["--fail-on-regression"], "--fail-on-regression needs --baseline"),
        (["--repeat", "0"], "--repeat 0: give 1 or more"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["-k", "no_scenario_is_called_this"], "no scenario matches the selection"),
    ],
)
def test_bad_input_is_one_line_naming_it_exit_4(work, args, message):
    (work / "broken.json").write_text(
        json.dumps({"name": "broken", "channel_options": {"grpc.keepalive_time_ms": "soon"}})
    )
    (work / "bad-target.toml").write_text('[server]\ncomand = ["x"]\n[rpc]\nmethod = "a.B/C"\n')
    (work / "bad.toml").write_text("[requirements]\nrecovery = 1\n")
    (work / "a-file").write_text("a file where a directory is wanted")
    args = [a.replace("{work}", str(work)) for a in args]
    output = [] if "--output" in args else ["--output", str(work / "bad-input-runs")]
    result = gate(*args, *output)
    assert result.returncode == Exit.USAGE, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grpc-chaos gate: error: "), result.stderr
    assert message.replace("{work}", str(work)) in lines[0]
    leftover = work / "bad-input-runs"
    assert not leftover.exists() or not any(leftover.iterdir())


# ---------------------------------------------------------------------------- baseline


def test_planted_regression_is_marked_even_within_its_bound_and_fails_when_asked(passing, work):
    _, baseline = passing
    result = gate(
        "--profile",
        str(work / "slow_backoff.json"),
        "--family",
        "kill",
        "-k",
        LONG_OUTAGE,
        "--requirements",
        str(work / "slack.toml"),
        "--output",
        str(work / "runs"),
        "--baseline",
        str(baseline),
        "--fail-on-regression",
    )
    assert result.returncode == Exit.FAIL, result.stdout + result.stderr
    assert "1 passed, 1 figure regressed" in result.stdout, result.stdout
    directory = run_dir(result)
    assert directory != baseline and (baseline / "results.json").is_file()  # both kept
    assert (work / "runs" / "latest").resolve() == directory
    doc = results(directory)
    assert [m["label"] for m in doc["matrix"]] == ["pass"]  # within its bound
    [recovery] = [f for f in doc["figures"] if f["check"] == "recovery_time"]
    before = next(f for f in results(baseline)["figures"] if f["check"] == "recovery_time")
    assert recovery["status"] == "regressed" and recovery["baseline"] == before["median"]
    assert recovery["median"] > 1.5 * before["median"]
    assert doc["run"]["baseline"]["run_id"] == baseline.name
    assert doc["run"]["counts"]["regressed"] == 1
    assert "regressed" in (directory / "summary.md").read_text()
    assert 'class="regressed"' in (directory / "report.html").read_text()


def test_regressed_figure_fails_the_gate_only_with_fail_on_regression():
    counts = aggregate.Tally(aggregate.Counter({aggregate.PASS: 1}), regressed=1)
    assert aggregate.exit_code(counts) == Exit.PASS
    assert aggregate.exit_code(counts, fail_on_regression=True) == Exit.FAIL


def test_baseline_of_another_schema_version_is_refused(passing, work):
    _, baseline = passing
    other = work / "other-version"
    other.mkdir()
    doc = results(baseline)
    doc["version"] = results_file.VERSION + 1
    (other / "results.json").write_text(json.dumps(doc))
    result = gate(
        "-k", LONG_OUTAGE, "--baseline", str(other), "--output", str(work / "bad-input-runs")
    )
    assert result.returncode == Exit.USAGE
    assert result.stderr.strip() == (
        f"grpc-chaos gate: error: baseline {other / 'results.json'}: results schema version "
        f"{results_file.VERSION + 1} (records {records_module.SCHEMA}); this grpc-chaos reads "
        f"version {results_file.VERSION} (records {records_module.SCHEMA}) — make the baseline "
        f"again with this grpc-chaos"
    )


# ---------------------------------------------------------------------------- repeats


def test_repeat_3_makes_a_cell_that_differs_flaky_and_fails(work):
    result = gate(
        str(work / "test_gate_probe.py"),
        "-k",
        "second_repeat",
        "--repeat",
        "3",
        "--output",
        str(work / "runs"),
    )
    assert result.returncode == Exit.FAIL, result.stdout + result.stderr
    directory = run_dir(result)
    doc = results(directory)
    assert sorted((r["repeat"], r["outcome"]) for r in doc["results"]) == [
        (1, "pass"),
        (2, "fail"),
        (3, "pass"),
    ]
    [cell] = doc["matrix"]
    assert (cell["outcome"], cell["label"], cell["failed"], cell["runs"]) == (
        "flaky",
        "flaky (1/3)",
        1,
        3,
    )
    assert "second_repeat: 1 faults (bound <= 0 faults)" in cell["reason"]
    assert "1 flaky" in result.stdout
    assert sorted(p.name for p in (directory / "pytest").glob("*.jsonl")) == [
        "recommended.1.jsonl",
        "recommended.2.jsonl",
        "recommended.3.jsonl",
    ]


def test_inconclusive_exits_2(work):
    result = gate(
        str(work / "test_gate_probe.py"),
        "-k",
        "runner_stalled",
        "--reruns",
        "0",
        "--output",
        str(work / "runs"),
    )
    assert result.returncode == Exit.INCONCLUSIVE, result.stdout + result.stderr
    assert "grpc-chaos gate: INCONCLUSIVE — 1 inconclusive" in result.stdout
    assert re.search(
        r"^INCONCLUSIVE test_gate_probe::test_runner_stalled \[recommended\]  "
        r"latency: 250 ms \(bound <= 100 ms\) — runner stalled 300 ms",
        result.stdout,
        re.M,
    ), result.stdout


def test_ctrl_c_stops_pytest_keeps_what_was_written_and_leaves_nothing(work):
    # Started with SIGINT ignored, as a background job of a non-interactive shell or nohup
    # starts it: the gate must still stop on it (Python would leave it ignored).
    process, mark = start_gate(
        str(work / "test_gate_probe.py"),
        "-k",
        "second_repeat",
        "--repeat",
        "3",
        "--output",
        str(work / "interrupted"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    first = work / "interrupted"
    try:
        # Once repeat 1 has its record, repeat 2's pytest is starting or running.
        wait_until(
            lambda: any(first.glob("*/pytest/recommended.2.log")),
            120,
            "the second repeat's pytest started",
        )
    finally:
        process.send_signal(signal.SIGINT)
    result = finish(process, mark)
    assert result.returncode == Exit.INTERRUPTED, result.stdout + result.stderr
    directory = run_dir(result)
    doc = results(directory)
    assert doc["run"]["interrupted"] is True and doc["run"]["verdict"] == "INTERRUPTED"
    assert [(r["repeat"], r["outcome"]) for r in doc["results"]][:1] == [(1, "pass")]
    assert (directory / "report.html").is_file() and (first / "latest").resolve() == directory


# `python -m chaos gate ...` with one at-fork hook: right after the gate's first fork once
# its Ctrl-C handler is in place (starting pytest), SIGINT arrives. The handler then runs
# inside the hook, where Python drops the KeyboardInterrupt it raises ("Exception ignored
# in ..."): on a busy machine a real Ctrl-C landed there, and the gate ran every repeat.
CTRL_C_WHILE_FORKING = """
import os, runpy, signal
def hit():
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):  # the gate's handlers
        if not hits:
            hits.append(1)
            signal.raise_signal(signal.SIGINT)
hits = []
os.register_at_fork(after_in_parent=hit)
runpy.run_module("chaos", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_dropped_while_pytest_starts_still_stops_the_gate(work):
    process, mark = start_gate(
        str(work / "test_gate_probe.py"),
        "-k",
        "second_repeat",
        "--repeat",
        "3",
        "--output",
        str(work / "dropped"),
        launcher=("-c", CTRL_C_WHILE_FORKING),
    )
    result = finish(process, mark)
    assert result.returncode == Exit.INTERRUPTED, result.stdout + result.stderr
    doc = results(run_dir(result))
    assert doc["run"]["interrupted"] is True and doc["run"]["verdict"] == "INTERRUPTED"
    # Stopped during the first pytest: no repeat after it ran.
    assert all(r["repeat"] == 1 for r in doc["results"]), doc["results"]


# ---------------------------------------------------------------------------- views


def test_matrix_and_report_are_views_of_the_run_directory(failing, capsys, tmp_path):
    from chaos.gate import matrix, report

    _, directory = failing
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{matrix.BEGIN}\nold\n{matrix.END}\nafter\n")
    assert matrix.main(["--run", str(directory), "--readme", str(readme)]) == 0
    table = capsys.readouterr().out.strip()
    assert table.splitlines()[0] == "| scenario | naive | recommended |"
    assert re.search(
        rf"^\| `test_kill::{KILL_UNDER_LOAD}` \| FAIL: errors: \d+ rpcs \(bound "
        r"<= 0 rpcs\) \| pass \|$",
        table,
        re.M,
    ), table
    assert readme.read_text() == f"before\n{matrix.BEGIN}\n{table}\n{matrix.END}\nafter\n"

    assert report.main([str(directory)]) == 0
    lines = capsys.readouterr().out.splitlines()
    errors = [line.split() for line in lines if " errors " in line]
    assert {(line[0], line[3]) for line in errors} == {("naive", "0/1"), ("recommended", "1/1")}


# ---------------------------------------------------------------------------- browser


def test_report_opens_in_chromium_with_no_error_and_every_plot_an_image(failing, tmp_path):
    _, directory = failing
    singletons = set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*"))
    with Chromium() as browser:
        page, found = open_page(browser, directory / "report.html")
        heading = page.evaluate("document.querySelector('header h1').textContent")
        shot = screenshot(page, tmp_path / "report.png")
        page.close()
    assert found["console_errors"] == []
    assert found["requests"] == []  # self-contained: nothing fetched beyond the file
    assert len(found["images"]) == 2  # one plot per scenario x profile
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in found["images"])
    assert heading.startswith("FAIL — 1 failed, 1 passed")
    assert shot.stat().st_size > 10_000
    assert browser.alive() == []
    # Nothing left in the temporary directory: Chromium's singleton socket directory too.
    assert not browser.profile.exists()
    assert set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*")) <= singletons


def test_the_browser_check_catches_a_broken_page(tmp_path):
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        '<!doctype html><img src="data:image/png;base64,AAAA">'
        '<img src="http://127.0.0.1:9/plot.png">'
        "<script>console.error('broken')</script>"
    )
    with Chromium() as browser:
        page, found = open_page(browser, page_file)
        page.close()
    assert any("broken" in error for error in found["console_errors"])
    assert found["requests"] == ["http://127.0.0.1:9/plot.png"]
    assert [i["width"] for i in found["images"]] == [0, 0]
