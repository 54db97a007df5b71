"""The matrix and the figures report as views of run directories (chaos/gate/aggregate.py,
chaos/gate/matrix.py, chaos/gate/report.py), on run directories written here from records shaped
as the plugin writes them (chaos/run/results.py). tests/test_gate.py reads real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.gate import aggregate, matrix, report, results_file
from chaos.gate.aggregate import Cell, combine


def verdict(name, figure, bound, passed=None, unit="ms", comparison="<="):
    passed = (
        (figure <= bound if comparison == "<=" else figure >= bound) if passed is None else passed
    )
    return {
        "name": name,
        "passed": passed,
        "figure": figure,
        "unit": unit,
        "bound": bound,
        "comparison": comparison,
        "explanation": "",
        "advice": "",
        "data": {},
        "span": None,
        "culprits": [],
        "inconclusive": False,
        "stall_ms": None,
        "outcome": "pass" if passed else "fail",
    }


def record(scenario, profile, outcome, verdicts=(), repeat=1, reason=""):
    decisive = next((v for v in verdicts if v["outcome"] != "pass"), None)
    return {
        "schema": 1,
        "nodeid": f"scenarios/{scenario.replace('::', '.py::')}",
        "scenario": scenario,
        "family": "kill",
        "profile": {"name": profile, "source": f"{profile}.json", "sha256": "0" * 64},
        "target": None,
        "outcome": outcome,
        "reason": reason,
        "decisive": decisive,
        "verdicts": list(verdicts),
        "property": "",
        "bound": "",
        "attempts": 1,
        "duration_s": 1.0,
        "started": "",
        "ended": "",
        "artifacts": None,
        "repeat": repeat,
    }


def write_run(directory: Path, records: list[dict], profiles: list[str]) -> Path:
    directory.mkdir(parents=True)
    run = {
        "id": directory.name,
        "profiles": [{"name": p, "source": "", "sha256": "0" * 64} for p in profiles],
    }
    results_file.write(directory, results_file.document(run, records))
    return directory


KILL = "test_kill::test_kill_under_load_loses_no_rpc"
DRAIN = "test_health::test_drain"
SPREAD = "test_latency::test_spread"


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(
        tmp_path / "run1",
        [
            record(KILL, "naive", "fail", [verdict("errors", 4, 0, unit="rpcs")]),
            record(DRAIN, "naive", "pass", [verdict("drain_time", 3.0, 50)]),
            record(
                SPREAD,
                "naive",
                "not_applicable",
                reason="not applicable: per-backend latency needs a client that spreads RPCs",
            ),
            record(KILL, "recommended", "pass", [verdict("errors", 0, 0, unit="rpcs")]),
        ],
        ["naive", "recommended"],
    )


def test_cells_carry_the_failed_verdict_and_the_reason_a_scenario_does_not_apply(run):
    cells = aggregate.cells(results_file.read(run).records)
    assert str(cells[(KILL, "naive")]) == "FAIL: errors: 4 rpcs (bound <= 0 rpcs)"
    assert str(cells[(DRAIN, "naive")]) == "pass"
    assert (
        str(cells[(SPREAD, "naive")]) == "n/a: per-backend latency needs a client that spreads RPCs"
    )


def test_table_has_a_row_per_scenario_and_a_column_per_profile(run):
    lines = matrix.of_runs([results_file.read(run)]).splitlines()
    assert lines[0] == "| scenario | naive | recommended |"
    assert len(lines) == 2 + 3
    assert f"| `{KILL}` | FAIL: errors: 4 rpcs (bound <= 0 rpcs) | pass |" in lines
    assert f"| `{DRAIN}` | pass | — |" in lines


def test_a_cell_that_differs_between_runs_is_flaky_never_pass():
    fail = Cell("fail", "errors: 1 rpcs (bound <= 0 rpcs)", failed=1, check="errors")
    passed = Cell("pass")
    assert (
        str(combine([passed, fail, passed]))
        == "flaky (1/3): FAIL: errors: 1 rpcs (bound <= 0 rpcs)"
    )
    assert combine([fail, fail, fail]) == Cell("fail", fail.reason, 3, 3, "errors")
    assert combine([passed] * 3) == Cell("pass", "", 0, 3)
    inconclusive = Cell("inconclusive", "latency: 102 ms", failed=1, check="latency")
    assert str(combine([fail, inconclusive, fail])).startswith("flaky (3/3): FAIL")
    # The same check failing with different counts is one failure, not a flaky cell.
    other_count = Cell("fail", "errors: 3 rpcs (bound <= 0 rpcs)", failed=1, check="errors")
    assert combine([fail, other_count]).outcome == "fail"


def test_repeats_across_run_directories_add_up(tmp_path):
    first = write_run(
        tmp_path / "a",
        [record(KILL, "naive", "pass", [verdict("errors", 0, 0, unit="rpcs")])],
        ["naive"],
    )
    second = write_run(
        tmp_path / "b",
        [record(KILL, "naive", "fail", [verdict("errors", 2, 0, unit="rpcs")])],
        ["naive"],
    )
    table = matrix.of_runs([results_file.read(first), results_file.read(second)])
    assert f"| `{KILL}` | flaky (1/2): FAIL: errors: 2 rpcs (bound <= 0 rpcs) |" in table


def test_figures_are_aggregated_per_bound_never_across_bounds(tmp_path, capsys):
    runs = [
        write_run(
            tmp_path / f"run{n}",
            [
                record(
                    "test_latency::test_latency",
                    "recommended",
                    "pass" if n < 2 else "fail",
                    [verdict("latency", figure, 100), verdict("latency", figure + 10, 200)],
                )
            ],
            ["recommended"],
        )
        for n, figure in enumerate((40.0, 90.0, 190.0))
    ]
    assert report.main([str(r) for r in runs]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [line[2:] for line in lines] == [
        ["latency", "2/3", "40", "90", "190", "<=", "100", "ms"],
        ["latency", "3/3", "50", "100", "200", "<=", "200", "ms"],
    ]


def test_readme_table_is_replaced_between_markers(tmp_path, run, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{matrix.BEGIN}\nold\n{matrix.END}\noutro\n")
    assert matrix.main(["--run", str(run), "--readme", str(readme)]) == 0
    table = capsys.readouterr().out.strip()
    assert readme.read_text() == f"intro\n{matrix.BEGIN}\n{table}\n{matrix.END}\noutro\n"


def test_readme_without_markers_is_refused(tmp_path, run, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("no markers")
    assert matrix.main(["--run", str(run), "--readme", str(readme)]) == 4
    assert "markers" in capsys.readouterr().err
    assert readme.read_text() == "no markers"


def test_report_names_a_missing_run_and_refuses_another_schema(tmp_path, run, capsys):
    assert report.main([str(tmp_path / "nope")]) == 4
    assert f"no run directory or results.json at {tmp_path / 'nope'}" in capsys.readouterr().err
    doc = json.loads((run / "results.json").read_text())
    doc["version"] = 99
    (run / "results.json").write_text(json.dumps(doc))
    assert report.main([str(run)]) == 4
    assert "results schema version 99" in capsys.readouterr().err


def test_an_interrupted_gate_stops_the_matrix_and_the_detection_proofs(tmp_path, monkeypatch):
    # The gate catches Ctrl-C / SIGTERM to stop its pytest and keep what was written; run
    # in this process (the matrix, tests/test_detection.py) the interrupt must go on, or a
    # Ctrl-C would only end one cell and the next would start.
    from chaos.gate.cli import Gate

    def interrupted_run(self):
        self.directory = tmp_path / "run"
        self.interrupted = True
        return 130

    monkeypatch.setattr(Gate, "run", interrupted_run)
    with pytest.raises(KeyboardInterrupt, match="the gate was interrupted"):
        matrix.run_profile("recommended", [], tmp_path)
