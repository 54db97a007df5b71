"""The resilience matrix generator: JUnit XML in, Markdown table out."""

import json
from pathlib import Path

import pytest

from chaos import matrix

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="scenarios.test_kill" name="test_kill_under_load_loses_no_rpc" time="2.1">
  <failure message="chaos.scenario.ScenarioFailed: [profile naive] FAIL errors: 4 rpcs (bound &lt;= 0 rpcs)&#10;  4 RPCs failed | details">trace</failure>
</testcase>
<testcase classname="scenarios.test_health" name="test_drain" time="1.0"/>
<testcase classname="scenarios.test_kill" name="test_spread" time="0.1">
  <skipped type="pytest.skip" message="pick_first sends everything to one backend"/>
</testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def junit(tmp_path) -> Path:
    path = tmp_path / "naive.xml"
    path.write_text(JUNIT)
    return path


def test_cells_carry_the_failed_verdict_headline(junit):
    cells = matrix.parse_junit(junit)
    assert str(cells["test_kill::test_kill_under_load_loses_no_rpc"]) == (
        "FAIL: errors: 4 rpcs (bound <= 0 rpcs)")
    assert str(cells["test_health::test_drain"]) == "pass"
    assert str(cells["test_kill::test_spread"]) == (
        "skip: pick_first sends everything to one backend")


def test_table_has_a_row_per_scenario_and_a_column_per_profile(junit):
    cells = matrix.parse_junit(junit)
    text = matrix.table({"naive": cells, "recommended": {"test_health::test_drain":
                                                         matrix.Cell("pass")}})
    lines = text.splitlines()
    assert lines[0] == "| scenario | naive | recommended |"
    assert len(lines) == 2 + 3
    assert "| `test_health::test_drain` | pass | pass |" in lines
    assert "| `test_kill::test_spread` | skip: pick_first sends everything to one backend | — |" \
        in lines


def test_a_cell_that_differs_between_runs_is_flaky_never_pass():
    fail = matrix.Cell("FAIL", "errors: 1 rpcs (bound <= 0 rpcs)")
    assert str(matrix.combine([matrix.Cell("pass"), fail, matrix.Cell("pass")])) == (
        "flaky (1/3): FAIL: errors: 1 rpcs (bound <= 0 rpcs)")
    assert matrix.combine([fail, fail, fail]) == fail
    assert matrix.combine([matrix.Cell("pass")] * 3) == matrix.Cell("pass")
    inconclusive = matrix.Cell("INCONCLUSIVE", "latency: 102 ms")
    assert str(matrix.combine([fail, inconclusive, fail])).startswith("flaky (3/3): FAIL")


def test_inconclusive_and_not_applicable_cells_are_named():
    junit = """<testsuites><testsuite>
<testcase classname="scenarios.test_latency" name="test_a"><failure message="chaos.outcomes.ScenarioInconclusive: [profile recommended] INCONCLUSIVE latency: 102 ms (bound &lt;= 100 ms) — runner stalled 180 ms">x</failure></testcase>
<testcase classname="scenarios.test_latency" name="test_b"><skipped message="not applicable: per-backend latency needs a client that spreads RPCs"/></testcase>
</testsuite></testsuites>"""
    cells = {}
    import xml.etree.ElementTree as ElementTree
    for case in ElementTree.fromstring(junit).iter("testcase"):
        cells[case.get("name")] = matrix._cell(case)
    assert cells["test_a"].outcome == "INCONCLUSIVE"
    assert cells["test_a"].reason.startswith("latency: 102 ms")
    assert str(cells["test_b"]) == "n/a: per-backend latency needs a client that spreads RPCs"


def test_readme_table_is_replaced_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{matrix.BEGIN}\nold\n{matrix.END}\noutro\n")
    matrix.update_readme(readme, "new table")
    assert readme.read_text() == f"intro\n{matrix.BEGIN}\nnew table\n{matrix.END}\noutro\n"


def test_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="markers"):
        matrix.update_readme(readme, "table")


def test_report_aggregates_verdict_figures_over_runs(tmp_path, capsys):
    from chaos import report

    for run, figure in (("run1", 4.0), ("run2", 9.0), ("run3", 6.0)):
        folder = tmp_path / run / "recommended" / "scenarios_test_health.py_test_drain"
        folder.mkdir(parents=True)
        (folder / "verdicts.json").write_text(json.dumps([{
            "name": "drain_time", "passed": figure < 8, "figure": figure, "unit": "ms",
            "bound": 8, "comparison": "<=", "explanation": "", "data": {}}]))
    assert report.main([str(tmp_path / r) for r in ("run1", "run2", "run3")]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[:4] == ["recommended", "test_drain", "drain_time", "2/3"]
    assert line[4:7] == ["4", "6", "9"]


def test_report_names_a_missing_directory(tmp_path, capsys):
    from chaos import report

    assert report.main([str(tmp_path / "nope")]) == 2
    assert "no artifacts directory" in capsys.readouterr().err
