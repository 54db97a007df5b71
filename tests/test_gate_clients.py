"""``grpc-chaos gate --client``: one column per (profile, client), every verdict named with
its client's implementation and version, two clients' cells and figures never mixed.

The real runs reuse tests/test_gate.py's helpers (a gate child process each; "nothing left
running" checked by the environment mark its descendants inherit — the client drivers
too). They are kept to one fast scenario: ``--client inprocess,python`` (grpcio in the
runner and grpcio in a driver process: the same library, told apart by the client's name),
and two driver commands that exit at once (no implementation to name: the column falls
back to the client's name). The aggregation, the baseline and the usage checks are
exercised on records shaped as the plugin writes them (chaos/run/results.py).
"""

from __future__ import annotations

import re
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import grpc
import pytest

from chaos.gate import aggregate, baseline, results_file, summary_md
from chaos.gate.cli import load_clients
from chaos.outcomes import Exit, UsageError
from tests.chromium import Chromium, open_page
from tests.test_gate import KILL_UNDER_LOAD, gate, results, run_dir

SCENARIO = f"test_kill::{KILL_UNDER_LOAD}"
GRPCIO = f"grpcio {grpc.__version__}"
# Both clients are grpcio of this venv: each heading adds the client's name to tell them apart.
INPROCESS_COLUMN = f"recommended · {GRPCIO} (inprocess)"
PYTHON_COLUMN = f"recommended · {GRPCIO} (python)"


# ---------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def two_clients(tmp_path_factory):
    """recommended under the in-process client and the python driver, on kill under load."""
    output = tmp_path_factory.mktemp("gate-clients") / "runs"
    result = gate("--client", "inprocess,python", "-k", KILL_UNDER_LOAD, "--output", str(output))
    return result, run_dir(result)


def test_two_clients_run_one_pytest_each_and_name_every_verdict(two_clients):
    result, directory = two_clients
    assert result.returncode == Exit.PASS, result.stdout + result.stderr
    assert "clients inprocess, python;" in result.stdout
    for column in (INPROCESS_COLUMN, PYTHON_COLUMN):
        assert re.search(
            rf"^PASS  {re.escape(SCENARIO)} \[{re.escape(column)}\]  ", result.stdout, re.M
        ), result.stdout
    assert "grpc-chaos gate: PASS — 2 passed" in result.stdout

    doc = results(directory)
    run = doc["run"]
    assert run["clients"] == [
        {"name": name, "implementation": "grpcio", "version": grpc.__version__, "given": name}
        for name in ("inprocess", "python")
    ]
    # One pytest child per client, each in a folder of its own (its records, below, say
    # which client it was told to run).
    assert [(r["client"], r["profile"], r["log"]) for r in run["pytest_runs"]] == [
        ("inprocess", "recommended", "pytest/inprocess/recommended.1.log"),
        ("python", "recommended", "pytest/python/recommended.1.log"),
    ]
    assert all((directory / r["results"]).is_file() for r in run["pytest_runs"])

    by_client = {r["client"]["name"]: r for r in doc["results"]}
    assert sorted(by_client) == ["inprocess", "python"]
    for name, record in by_client.items():
        assert record["client"] == {
            "name": name,
            "implementation": "grpcio",
            "version": grpc.__version__,
        }
        assert record["outcome"] == "pass" and record["scenario"] == SCENARIO
        assert Path(record["artifacts"]).parts[:3] == ("artifacts", "repeat-1", name)

    assert [(m["client"]["name"], m["column"], m["label"]) for m in doc["matrix"]] == [
        ("inprocess", INPROCESS_COLUMN, "pass"),
        ("python", PYTHON_COLUMN, "pass"),
    ]
    # Each client's figures are its own records' figures: never one median of both.
    for entry in doc["figures"]:
        record = by_client[entry["client"]["name"]]
        [verdict] = [v for v in record["verdicts"] if v["name"] == entry["check"]]
        assert entry["values"] == [verdict["figure"]], entry
        assert entry["column"] in (INPROCESS_COLUMN, PYTHON_COLUMN)
    assert len(doc["figures"]) == 2 * len(by_client["inprocess"]["verdicts"])


def test_junit_and_summary_name_each_client(two_clients):
    _, directory = two_clients
    suites = ElementTree.parse(directory / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [
        f"{INPROCESS_COLUMN} repeat 1",
        f"{PYTHON_COLUMN} repeat 1",
    ]
    for suite, name in zip(suites, ("inprocess", "python"), strict=True):
        [case] = suite.findall("testcase")
        assert case.get("name") == f"{KILL_UNDER_LOAD} [{GRPCIO} ({name})]"
        for holder in (suite, case):
            properties = {p.get("name"): p.get("value") for p in holder.iter("property")}
            assert properties["chaos_client"] == name
            assert properties["chaos_client_implementation"] == "grpcio"
            assert properties["chaos_client_version"] == grpc.__version__

    summary = (directory / "summary.md").read_text()
    assert f" · clients: inprocess ({GRPCIO}), python ({GRPCIO}) · " in summary
    assert f"| scenario | {INPROCESS_COLUMN} | {PYTHON_COLUMN} |" in summary
    assert f"| `{SCENARIO}` | pass | pass |" in summary


def test_report_shows_both_columns_in_chromium_every_plot_an_image(two_clients, tmp_path):
    _, directory = two_clients
    singletons = set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*"))
    with Chromium() as browser:
        page, found = open_page(browser, directory / "report.html")
        headings = page.evaluate("[...document.querySelectorAll('th')].map(t => t.textContent)")
        parts = page.evaluate(
            "[...document.querySelectorAll('article h3[id]')].map(h => h.textContent)"
        )
        judged = page.evaluate("document.querySelector('header p').textContent")
        page.close()
    assert found["console_errors"] == [] and found["requests"] == []
    assert len(found["images"]) == 2  # one plot per scenario x column
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in found["images"])
    assert [i["alt"].rsplit("[", 1)[1] for i in found["images"]] == [
        f"{INPROCESS_COLUMN}]",
        f"{PYTHON_COLUMN}]",
    ]
    assert headings[:3] == ["scenario", INPROCESS_COLUMN, PYTHON_COLUMN]
    assert [p.split("]")[0] for p in parts] == [f"[{INPROCESS_COLUMN}", f"[{PYTHON_COLUMN}"]
    assert f"clients: inprocess ({GRPCIO}), python ({GRPCIO})" in judged
    assert browser.alive() == [] and not browser.profile.exists()
    assert set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*")) <= singletons


def test_a_driver_command_that_does_not_start_is_a_column_named_after_it(tmp_path):
    """A value that is no shipped name is a driver command, passed through to the plugin:
    one that exits at once errs in its scenarios (exit 1, not a usage error), and with no
    implementation to name its column is headed by the client's name."""
    result = gate(
        "--client",
        "/bin/false,/bin/sh -c 'exit 3'",
        "-k",
        KILL_UNDER_LOAD,
        "--output",
        str(tmp_path / "runs"),
    )
    assert result.returncode == Exit.FAIL, result.stdout + result.stderr
    doc = results(run_dir(result))
    assert [(c["name"], c["given"], c["implementation"]) for c in doc["run"]["clients"]] == [
        ("false", "/bin/false", None),
        ("sh", "/bin/sh -c 'exit 3'", None),
    ]
    assert [(m["column"], m["outcome"]) for m in doc["matrix"]] == [
        ("recommended · false", "error"),
        ("recommended · sh", "error"),
    ]
    assert "exited before it was ready (it exited with 3)" in doc["matrix"][1]["reason"]
    summary = (run_dir(result) / "summary.md").read_text()
    assert "| scenario | recommended · false | recommended · sh |" in summary


# ---------------------------------------------------------------------------- usage


@pytest.mark.parametrize(
    "args, message",
    [
        (["--client", ""], "--client '': an empty client; give inprocess, python, go, node, java"),
        (["--client", "python,"], "--client 'python,': an empty client"),
        (
            ["--client", "pyhton"],
            "--client 'pyhton': not a shipped client (inprocess, python, go, node, java) and no "
            "program 'pyhton' to run as a client driver (did you mean 'python'?)",
        ),
        (["--client", "./drv 'unclosed"], '--client "./drv \'unclosed": not a command line'),
        (
            ["--client", "/bin/false,/usr/bin/false"],
            "--client: two clients are named 'false' ('/bin/false', '/usr/bin/false')",
        ),
        (["--", "--chaos-client", "go"], "give --client C instead"),
    ],
)
def test_bad_client_is_one_line_naming_it_exit_4(tmp_path, args, message):
    output = tmp_path / "runs"
    result = gate("-k", KILL_UNDER_LOAD, "--output", str(output), *args)
    assert result.returncode == Exit.USAGE, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grpc-chaos gate: error: "), result.stderr
    assert message in lines[0]
    assert not output.exists() or not any(output.iterdir())


def test_clients_are_split_like_profiles_and_named_as_their_records_name_them():
    clients = load_clients(["inprocess,python", "python", "/bin/sh -c 'exec true'"])
    assert [(c.name, c.given) for c in clients] == [
        ("inprocess", "inprocess"),
        ("python", "python"),
        ("sh", "/bin/sh -c 'exec true'"),
    ]
    with pytest.raises(UsageError, match="an empty client"):
        load_clients([" , "])


def test_a_shipped_driver_that_is_not_installed_is_a_usage_error_before_anything_runs(
    monkeypatch,
):
    from chaos.clients import builtin
    from chaos.clients.driver import DriverError

    def missing():
        raise DriverError("the go client driver needs Go (go) on PATH\ninstall it")

    monkeypatch.setitem(builtin.NAMES, "go", missing)
    with pytest.raises(UsageError) as caught:
        load_clients(["inprocess,go"])
    assert str(caught.value) == (
        "--client go: the go client driver needs Go (go) on PATH; install it"
    )


# ---------------------------------------------------------------------------- aggregation


def _record(client: dict | None, outcome="pass", figure=0.0, profile="recommended") -> dict:
    passed = outcome == "pass"
    verdict = {
        "name": "recovery_time",
        "outcome": outcome,
        "passed": passed,
        "figure": figure,
        "unit": "ms",
        "bound": 1000,
        "comparison": "<=",
    }
    record = {
        "scenario": SCENARIO,
        "profile": {"name": profile, "source": "", "sha256": "0" * 64},
        "outcome": outcome,
        "reason": "",
        "decisive": None if passed else verdict,
        "verdicts": [verdict],
        "repeat": 1,
    }
    if client is not None:  # a record written before clients existed has none
        record["client"] = client
    return record


GO = {"name": "go", "implementation": "grpc-go", "version": "1.33.3"}
NODE = {"name": "node", "implementation": "grpc-js", "version": "1.12.0"}
INPROCESS = {"name": "inprocess", "implementation": "grpcio", "version": "1.85.1"}


def test_one_client_keys_and_heads_columns_as_before_clients_existed():
    old, new = _record(None), _record(INPROCESS)
    for records in ([old], [new]):
        assert list(aggregate.cells(records)) == [(SCENARIO, "recommended")]
        assert [c.label for c in aggregate.columns(records, ["recommended"])] == ["recommended"]
    # One client other than the in-process one: still headed by the profile alone.
    [column] = aggregate.columns([_record(GO)], ["recommended"], ["go"])
    assert (column.id, column.label) == ("recommended@go", "recommended")
    run = {"profiles": [{"name": "recommended", "sha256": "0" * 64}], "clients": [INPROCESS]}
    assert summary_md.clients_part(run) == ""
    assert summary_md.clients_part({**run, "clients": [GO]}) == " · client: go (grpc-go 1.33.3)"


def test_two_clients_are_two_cells_and_two_figures_never_one():
    records = [_record(GO, "fail", 4000.0), _record(NODE, "pass", 10.0)]
    cells = aggregate.cells(records)
    assert {key: cell.outcome for key, cell in cells.items()} == {
        (SCENARIO, "recommended@go"): "fail",
        (SCENARIO, "recommended@node"): "pass",
    }
    figures = aggregate.figures(records)
    assert sorted((f.client, f.values) for f in figures.values()) == [
        ("go", (4000.0,)),
        ("node", (10.0,)),
    ]
    labels = [c.label for c in aggregate.columns(records, ["recommended", "naive"])]
    assert labels == [
        "recommended · grpc-go 1.33.3",
        "recommended · grpc-js 1.12.0",
        "naive · grpc-go 1.33.3",
        "naive · grpc-js 1.12.0",
    ]
    doc = results_file.document({"id": "r", "profiles": [], "clients": [GO, NODE]}, records)
    assert [(m["client"], m["column"], m["outcome"]) for m in doc["matrix"]] == [
        (GO, "recommended · grpc-go 1.33.3", "fail"),
        (NODE, "recommended · grpc-js 1.12.0", "pass"),
    ]


def test_a_client_is_compared_with_the_same_client_of_the_baseline_only():
    before = aggregate.figures([_record(INPROCESS, figure=100.0), _record(GO, figure=100.0)])
    now = aggregate.figures(
        [
            _record(INPROCESS, figure=110.0),
            _record(GO, figure=900.0),  # regressed against go's 100 ms
            _record(NODE, figure=100.0),  # no node in the baseline: new, not inprocess's
        ]
    )
    status = {c.figures.client: c.status for c in baseline.compare(now, before)}
    assert status == {"inprocess": "same", "go": "regressed", "node": "new"}
    # A baseline from before clients existed is the in-process client's.
    old = aggregate.figures([_record(None, figure=100.0)])
    status = {c.figures.client: c.status for c in baseline.compare(now, old)}
    assert status == {"inprocess": "same", "go": "new", "node": "new"}


def test_python_go_and_node_are_three_columns_named_by_implementation(tmp_path):
    """The three shipped drivers side by side on the original design's client (round_robin
    over TLS, nothing else): one column per implementation, in the report as in Chromium."""
    output = tmp_path / "runs"
    result = gate(
        "--client", "python,go,node", "--profile", "naive",
        "-k", "test_round_robin_is_exact_on_a_warm_channel", "--output", str(output),
    )  # fmt: skip
    assert result.returncode == Exit.PASS, result.stdout + result.stderr
    directory = run_dir(result)
    clients = {c["name"]: c for c in results(directory)["run"]["clients"]}
    assert [clients[n]["implementation"] for n in ("python", "go", "node")] == [
        "grpcio",
        "grpc-go",
        "grpc-js",
    ]
    columns = [f"naive · {c['implementation']} {c['version']}" for c in clients.values()]
    with Chromium() as browser:
        page, found = open_page(browser, directory / "report.html")
        headings = page.evaluate("[...document.querySelectorAll('th')].map(t => t.textContent)")
        page.close()
    assert found["console_errors"] == [] and found["requests"] == []
    assert headings[1:4] == columns
    assert len(found["images"]) == 3 and all(i["complete"] for i in found["images"])
