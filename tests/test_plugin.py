"""The pytest plugin end to end, through real pytest runs (pytester, in subprocesses)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest

pytest_plugins = ["pytester"]

PASSING = """
import pytest
from chaos import checks

@pytest.mark.balance
def test_spread_{n}(chaos):
    load = chaos.load(concurrency=4)
    warm = chaos.warm_up(load)
    load.wait_for(100, timeout=20)
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
"""

DRAIN = """
import pytest
from chaos import checks
from chaos.faults import Health

@pytest.mark.health
def test_drain(chaos):
    load = chaos.load(concurrency=8)
    chaos.warm_up(load)
    flip = chaos.nemesis.inject(Health("b2"))
    load.wait_for(600, timeout=20)
    chaos.expect(checks.drain_time(chaos.history, backend="b2", after_ns=flip.in_force_ns,
                                   bound_ms=chaos.requirements.drain_ms),
                 answers=("healthCheckConfig",), requirement="drain_ms")

def test_after(chaos):
    pass
"""


def _run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def test_a_failed_scenario_prints_its_verdict_and_artifacts(pytester):
    pytester.makepyfile(test_drain=DRAIN)
    artifacts = pytester.path / "out"
    result = _run(
        pytester,
        "--chaos-profile",
        "naive",
        f"--chaos-artifacts={artifacts}",
        "-x",
        "--junitxml=report.xml",
    )
    result.assert_outcomes(failed=1)  # -x: test_after never runs
    output = result.stdout.str()
    assert "FAIL drain_time" in output and "b2 kept getting new RPCs" in output
    assert "healthCheckConfig: not set" in output  # the setting that answers it
    assert f"artifacts: {artifacts / 'naive'}" in output
    run = next((artifacts / "naive").iterdir())
    verdicts = json.loads((run / "verdicts.json").read_text())
    assert verdicts[0]["name"] == "drain_time" and verdicts[0]["passed"] is False
    assert (run / "history.jsonl").read_text().count('"type":"rpc"') >= 600
    assert json.loads((run / "summary.json").read_text())["profile"] == "naive"
    case = ElementTree.parse(pytester.path / "report.xml").find(".//testcase")
    assert "FAIL drain_time" in case.find("failure").get("message")


def test_the_same_scenario_passes_with_the_recommended_profile(pytester):
    pytester.makepyfile(test_drain=DRAIN)
    _run(pytester, "--chaos-profile", "recommended", "-k", "not after").assert_outcomes(
        passed=1, deselected=1
    )


def test_xdist_runs_fleets_side_by_side_without_clashes(pytester):
    pytester.makepyfile(**{f"test_m{n}": PASSING.format(n=n) for n in range(4)})
    _run(pytester, "-n", "2").assert_outcomes(passed=4)


def test_markers_select_fault_families(pytester):
    pytester.makepyfile(test_a=PASSING.format(n=1), test_drain=DRAIN)
    _run(pytester, "-m", "balance").assert_outcomes(passed=1, deselected=2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--chaos-profile", "nope"], "no profile 'nope'"),
        (["--chaos-fleet-size", "1"], "--chaos-fleet-size 1 is not within 2..200"),
        (["--chaos-fleet-size", "201"], "--chaos-fleet-size 201 is not within 2..200"),
        (["--chaos-reruns", "-1"], "--chaos-reruns must be 0 or more"),
        (["--chaos-client", "'unclosed"], '--chaos-client "\'unclosed": No closing quotation'),
    ],
)
def test_bad_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile(test_a=PASSING.format(n=1))
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_header_only_when_chaos_scenarios_run(pytester):
    pytester.makepyfile(test_plain="def test_nothing():\n    pass\n")
    result = _run(pytester, "--chaos-profile", "outlier")
    result.assert_outcomes(passed=1)
    assert "grpc-chaos:" not in result.stdout.str()  # pytest still lists the plugin itself
    pytester.makepyfile(test_a=PASSING.format(n=1))
    result = _run(pytester, "--chaos-profile", "outlier", "test_a.py")
    assert "grpc-chaos: target greeter (built-in Greeter); profile outlier" in result.stdout.str()


def test_options_are_namespaced_so_a_project_may_define_its_own(pytester):
    # e.g. pytest-profiling defines --profile; a conftest of the project may too.
    pytester.makeconftest(
        "def pytest_addoption(parser):\n"
        "    parser.addoption('--profile', action='store_true')\n"
        "    parser.addoption('--fleet-size', default=1)\n"
    )
    pytester.makepyfile(test_plain="def test_nothing():\n    pass\n")
    _run(pytester, "--profile").assert_outcomes(passed=1)


STALLED = """
import os, subprocess, time
import pytest
from chaos.checks import Verdict

def test_stalled_once(chaos, request):
    # A real stall of this whole process (SIGSTOP from outside, 400 ms), inside the span of
    # a time verdict that misses its 100 ms bound by 50 ms: the stall explains the miss.
    # The span ends once the stall was seen, so all of it lies inside however late the
    # stop came on a busy machine.
    start = time.monotonic_ns()
    if request.node._chaos_attempt == 1:
        subprocess.run(["sh", "-c", f"kill -STOP {os.getpid()}; sleep 0.4; kill -CONT {os.getpid()}"],
                       check=True)
        chaos.wait_until(lambda: chaos.stalls.worst(start) is not None, 5, "the stall seen")
    end = time.monotonic_ns()
    chaos.expect(Verdict("failover_time", False, 150.0, "ms", 100, "made to miss", span=(start, end))
                 if request.node._chaos_attempt == 1 else
                 Verdict("failover_time", True, 5.0, "ms", 100, "within"))
"""

ALWAYS_STALLED = STALLED.replace("if request.node._chaos_attempt == 1:", "if True:").replace(
    "if request.node._chaos_attempt == 1 else", "if True else"
)

NOT_STALLED = """
import time
from chaos.checks import Verdict

def test_missed(chaos):
    start = time.monotonic_ns()
    chaos.expect(Verdict("failover_time", False, 1150.0, "ms", 100, "missed by a second",
                         span=(start, start + 1_150_000_000)))
"""


def test_an_inconclusive_scenario_is_rerun_and_passes_when_the_runner_keeps_up(pytester):
    pytester.makepyfile(test_stall=STALLED)
    result = _run(pytester, "--junitxml=report.xml")
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert "RERUN test_stall.py::test_stalled_once: inconclusive" in output
    assert "runner stalled" in output
    assert "rerun after an inconclusive verdict: test_stalled_once (1x)" in output


def test_a_scenario_that_stays_inconclusive_fails_the_run_and_says_so(pytester):
    pytester.makepyfile(test_stall=ALWAYS_STALLED)
    result = _run(pytester, "--chaos-reruns", "1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert output.count("RERUN test_stall.py::test_stalled_once") == 1
    assert (
        "INCONCLUSIVE test_stall.py::test_stalled_once: [profile recommended] "
        "INCONCLUSIVE failover_time: 150 ms (bound <= 100 ms)" in output
    )
    assert "is not a pass" in output


def test_a_miss_the_stall_does_not_explain_is_a_plain_failure(pytester):
    pytester.makepyfile(test_miss=NOT_STALLED)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    assert "RERUN" not in result.stdout.str()
    assert "FAIL failover_time: 1150 ms (bound <= 100 ms)" in result.stdout.str()


NOT_JUDGED = """
from chaos import checks

def test_idle_window(chaos):
    load = chaos.load(concurrency=2)
    chaos.warm_up(load)
    load.stop()
    # No RPC starts after the load stopped: nothing to judge errors on, either way.
    chaos.expect(checks.errors(chaos.history, start_ns=chaos.history.now()))
"""


def test_a_check_with_too_little_evidence_is_not_judged_rerun_and_never_a_pass(pytester):
    pytester.makepyfile(test_idle=NOT_JUDGED)
    result = _run(pytester, "--chaos-reruns", "1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert output.count("RERUN test_idle.py::test_idle_window") == 1
    assert (
        "INCONCLUSIVE test_idle.py::test_idle_window: [profile recommended] NOT JUDGED "
        "errors: 0 RPC(s) started in the window; 1 needed" in output
    )


STAGING = """
def test_unstaged(chaos):
    load = chaos.load(concurrency=2)
    chaos.warm_up(load)
    load.wait_until(lambda: False, 1, "30 calls refused by b1",
                    progress=lambda: "5 refused", answers=("retryPolicy",))
"""


def test_a_situation_the_client_never_lets_happen_is_a_staging_verdict_not_a_timeout(pytester):
    pytester.makepyfile(test_staging=STAGING)
    result = _run(pytester, "--chaos-profile", "naive")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "FAIL staging: 30 calls refused by b1 not reached within 1.0 s — got 5 refused" in output
    assert "retryPolicy: not set" in output  # the settings that answer it
    assert "TimeoutError" not in output and "Traceback" not in output


SETTLE_TWICE = """
def test_settle_twice(chaos):
    load = chaos.load(concurrency=4)
    chaos.warm_up(load)
    chaos.settle(load, "first")
    chaos.settle(load, "second")  # drew a second id no RPC has: it must not wait for it
"""


def test_a_scenario_may_settle_its_load_more_than_once(pytester):
    pytester.makepyfile(test_settle=SETTLE_TWICE)
    _run(pytester).assert_outcomes(passed=1)


SPREAD = """
from chaos import checks

def test_needs_spread(chaos):
    chaos.require_spread("per-backend latency")
    load = chaos.load(concurrency=2)
    chaos.warm_up(load)
"""


def test_not_applicable_is_listed_with_its_reason_and_never_passes_silently(pytester):
    pytester.makepyfile(test_spread=SPREAD)
    result = _run(pytester, "--chaos-profile", "pick_first", "-rN")
    result.assert_outcomes(skipped=1)
    output = result.stdout.str()
    assert "grpc-chaos: scenarios that did not run" in output
    assert (
        "NOT APPLICABLE test_spread.py::test_needs_spread: per-backend latency needs a "
        "client that spreads RPCs over the backends; this client sends every RPC to one "
        "backend"
    ) in output


def test_a_client_that_never_reaches_a_healthy_backend_is_one_preflight_verdict(pytester):
    profile = pytester.path / "wrong-health.json"
    profile.write_text(
        json.dumps(
            {
                "name": "wrong-health",
                "service_config": {
                    "loadBalancingConfig": [{"round_robin": {}}],
                    "healthCheckConfig": {"serviceName": "greeter.Greeterr"},
                },
            }
        )
    )
    pytester.makepyfile(**{f"test_m{n}": PASSING.format(n=n) for n in range(3)})
    result = _run(pytester, "--chaos-profile", str(profile))
    result.assert_outcomes(errors=1)  # the first scenario; the run stops there
    output = result.stdout.str()
    assert "grpc-chaos: preflight failed" in output
    assert "'greeter.Greeterr'" in output and "NOT_FOUND (unknown service) (3 of 3)" in output
    assert "the profile is what keeps this client out" in output


def test_hostile_profile_names_stay_inside_the_artifacts_directory(pytester):
    pytester.makepyfile(test_a=PASSING.format(n=1))
    for name in ("../x", "a/../../b"):  # each a whole run; more names: test_artifact_paths
        profile = pytester.path / "p.json"
        profile.write_text(
            json.dumps(
                {"name": name, "service_config": {"loadBalancingConfig": [{"round_robin": {}}]}}
            )
        )
        artifacts = pytester.path / "out"
        _run(
            pytester, "--chaos-profile", str(profile), f"--chaos-artifacts={artifacts}"
        ).assert_outcomes(passed=1)
        written = [p for p in pytester.path.rglob("summary.json")]
        assert written and all(artifacts in p.parents for p in written), written
    assert not (pytester.path.parent / "x").exists()


def test_a_driver_names_itself_and_what_it_cannot_honour_and_its_verdicts_carry_it(pytester):
    pytester.makepyfile(test_a=PASSING.format(n=1))
    results = pytester.path / "results.jsonl"
    result = _run(
        pytester, "--chaos-client", "go", "--chaos-profile", "recommended-go",
        "--chaos-results", str(results),
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "grpc-chaos: client under test: grpc-go 1.33" in out
    assert "not honoured: grpc.keepalive_time_ms" not in out  # at grpc-go's floor: honoured
    record = json.loads(results.read_text().splitlines()[0])
    assert record["client"]["name"] == "go" and record["client"]["implementation"] == "grpc-go"


def test_a_profile_the_driver_cannot_run_is_one_preflight_verdict_naming_why(pytester):
    pytester.makepyfile(test_a=PASSING.format(n=1))
    result = _run(pytester, "--chaos-client", "go", "--chaos-profile", "recommended")
    out = result.stdout.str()
    assert "not honoured: loadBalancingConfig outlier_detection_experimental" in out
    assert "the client under test could not start" in out
    assert "no supported policies found" in out
    assert result.ret != 0
