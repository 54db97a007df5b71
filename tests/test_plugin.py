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
    chaos.expect(checks.drain_time(chaos.history, target="b2", after_ns=flip.start_ns,
                                   bound_ms=50))

def test_after(chaos):
    pass
"""


def _run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def test_a_failed_scenario_prints_its_verdict_and_artifacts(pytester):
    pytester.makepyfile(test_drain=DRAIN)
    artifacts = pytester.path / "out"
    result = _run(pytester, "--profile", "naive", f"--chaos-artifacts={artifacts}", "-x",
                  "--junitxml=report.xml")
    result.assert_outcomes(failed=1)  # -x: test_after never runs
    output = result.stdout.str()
    assert "FAIL drain_time" in output and "b2 kept getting new RPCs" in output
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
    _run(pytester, "--profile", "recommended", "-k", "not after").assert_outcomes(
        passed=1, deselected=1)


def test_xdist_runs_fleets_side_by_side_without_clashes(pytester):
    pytester.makepyfile(**{f"test_m{n}": PASSING.format(n=n) for n in range(4)})
    _run(pytester, "-n", "2").assert_outcomes(passed=4)


def test_markers_select_fault_families(pytester):
    pytester.makepyfile(test_a=PASSING.format(n=1), test_drain=DRAIN)
    _run(pytester, "-m", "balance").assert_outcomes(passed=1, deselected=2)


@pytest.mark.parametrize("args, message", [
    (["--profile", "nope"], "no profile 'nope'"),
    (["--fleet-size", "1"], "--fleet-size must be at least 2"),
])
def test_bad_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile(test_a=PASSING.format(n=1))
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_header_names_the_profile(pytester):
    pytester.makepyfile(test_a="def test_nothing():\n    pass\n")
    result = _run(pytester, "--profile", "outlier")
    assert "grpc-chaos: profile outlier" in result.stdout.str()
