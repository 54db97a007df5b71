""" "What to change" by setting (chaos/gate/settings_view.py) in results.json, summary.md,
report.html and the gate's last lines.

The aggregation is exercised on records shaped as the plugin writes them
(chaos/run/results.py: ``{**verdict.to_dict(), "outcome", "headline"}``, through JSON), each
failed verdict's advice written by chaos/verdicts/advice.py ``explain`` for a shipped
profile — the text the gate really reads. One real gate run (naive, three kill/health
scenarios, ~20 s) checks the terminal, summary.md, results.json and report.html opened
in headless Chromium; tests/test_gate.py's ``gate`` asserts nothing it started is left.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from chaos import profiles
from chaos.checks import Verdict
from chaos.gate import aggregate, report_html, results_file, settings_view, summary_md
from chaos.outcomes import Exit
from chaos.verdicts import advice
from chaos.verdicts.requirements import DEFAULTS
from tests.chromium import Chromium, open_page
from tests.test_gate import KILL_UNDER_LOAD, gate, results, run_dir

KILL = f"test_kill::{KILL_UNDER_LOAD}"
DRAIN = "test_health::test_not_serving_drains_the_backend_and_serving_brings_it_back"
GRACEFUL = "test_health::test_graceful_drain_loses_no_rpc"
HANG = "test_hang::test_hang_is_noticed"
RESET = "test_network::test_reset_is_retried"
HEALTH = ("healthCheckConfig", "round_robin")
GO = {"name": "go", "implementation": "grpc-go", "version": "1.33.3"}


# ---------------------------------------------------------------------------- records


def _verdict(
    profile: str,
    check: str,
    figure: float | None,
    bound: float,
    unit: str,
    answers=(),
    requirement: str | None = None,
    **state,
) -> Verdict:
    """A failed (or, with ``passed=True``, inconclusive=..., not_judged=..., a passed or
    unsettled) verdict with the advice chaos/scenario.py ``expect`` gives it."""
    verdict = Verdict(check, state.pop("passed", False), figure, unit, bound, "timeline", **state)
    if verdict.passed or verdict.not_judged:
        return verdict
    explained = advice.explain(profiles.load(profile), answers, DEFAULTS, requirement)
    return replace(verdict, advice=explained)


def _record(
    scenario: str,
    verdicts: list[Verdict],
    outcome: str,
    profile: str = "naive",
    client: dict | None = None,
    repeat: int = 1,
    decisive: int | None = -1,
    reason: str = "",
) -> dict:
    """A record as the gate reads it back: the plugin's shape, through JSON."""
    shaped = [{**v.to_dict(), "outcome": v.outcome, "headline": v.headline} for v in verdicts]
    record = {
        "schema": 1,
        "scenario": scenario,
        "profile": {"name": profile, "source": f"{profile}.json", "sha256": "0" * 64},
        "outcome": outcome,
        "reason": reason or (shaped[decisive]["headline"] if decisive is not None else ""),
        "decisive": None if decisive is None else shaped[decisive],
        "verdicts": shaped,
        "property": "Property: ...",
        "bound": "Bound: ...",
        "artifacts": None,
        "repeat": repeat,
    }
    if client is not None:
        record["client"] = client
    return json.loads(json.dumps(record, default=str))


def _errors(profile="naive", figure=6.0, answers=("retryPolicy",)) -> Verdict:
    return _verdict(profile, "errors", figure, 0, "rpcs", answers, "error_budget")


def _drain(profile="naive", figure=437.0) -> Verdict:
    return _verdict(profile, "drain_time", figure, 50, "ms", HEALTH, "drain_ms")


def naive_records() -> list[dict]:
    """naive: retryPolicy answers 3 failures, healthCheckConfig and round_robin 2 each,
    the keepalive settings 1; one failure with no setting named, one error with no
    verdict; and what is not a failure — a pass (with a failing figure recorded by
    check()), an inconclusive and a not-judged verdict."""
    keepalive = ("grpc.keepalive_time_ms", "grpc.http2.ping_timeout_ms", "retryPolicy")
    return [
        _record(KILL, [_errors()], "fail"),
        _record(DRAIN, [_drain()], "fail"),
        _record(
            GRACEFUL,
            [_drain(figure=499.0), _errors(figure=2.0, answers=("healthCheckConfig",))],
            "fail",
            decisive=0,
        ),
        _record(
            HANG, [_verdict("naive", "errors", 40, 0, "rpcs", keepalive, "error_budget")], "fail"
        ),
        _record(RESET, [_errors(figure=3.0)], "fail"),
        _record(
            "test_app::test_no_setting",
            [_verdict("naive", "errors", 2, 0, "rpcs", (), "error_budget")],
            "fail",
        ),
        _record(
            "test_dns::test_fixture_broke",
            [],
            "error",
            decisive=None,
            reason="RuntimeError: the fleet did not start",
        ),
        _record(
            "test_claims::test_expected_failure",
            [_verdict("naive", "errors", 1, 0, "rpcs", ("retryPolicy",), "error_budget")],
            "pass",
            decisive=None,
        ),
        _record(
            "test_kill::test_stalled",
            [
                _verdict(
                    "naive",
                    "failover_time",
                    3000,
                    1000,
                    "ms",
                    ("retryPolicy",),
                    "failover_ms",
                    inconclusive=True,
                    stall_ms=2500.0,
                )
            ],
            "inconclusive",
        ),
        _record(
            "test_kill::test_too_little",
            [_verdict("naive", "recovery_time", None, 2000, "ms", not_judged="no load after")],
            "inconclusive",
        ),
    ]


# ---------------------------------------------------------------------------- ranking


def test_the_advice_is_read_as_written_each_setting_with_its_line():
    text = advice.explain(
        profiles.load("naive"), ("retryPolicy", "healthCheckConfig"), DEFAULTS, "error_budget"
    )
    named = settings_view.settings_of(text)
    assert [name for name, _ in named] == ["retryPolicy", "healthCheckConfig"]
    for name, says in named:
        assert f"  - {name}: {says}" in text.splitlines()
    assert named[0][1].startswith("not set (no retryPolicy applies to ")
    # An advice that names no setting (only where its bound comes from) names none.
    assert (
        settings_view.settings_of(advice.explain(profiles.load("naive"), (), DEFAULTS, "drain_ms"))
        == []
    )
    assert settings_view.settings_of("") == []


def test_settings_are_ranked_by_the_failures_they_answer_each_once():
    [change] = settings_view.by_column(naive_records())
    assert change.column == "naive"
    ranked = [(s.name, s.count, s.status) for s in change.settings]
    # What naive leaves unset first (ties by name), then what it has already: round_robin
    # answers as many failures as healthCheckConfig, but naive has it — health checking
    # is the change to make.
    assert ranked == [
        ("retryPolicy", 3, advice.NOT_SET),
        ("healthCheckConfig", 2, advice.NOT_SET),
        ("grpc.http2.ping_timeout_ms", 1, advice.NOT_SET),
        ("grpc.keepalive_time_ms", 1, advice.NOT_SET),
        ("round_robin", 2, advice.SET),
    ]
    retry = change.settings[0]
    assert [f.line() for f in retry.failures] == [
        "test_hang::test_hang_is_noticed — errors: 40 rpcs (bound <= 0 rpcs)",
        f"{KILL} — errors: 6 rpcs (bound <= 0 rpcs)",
        "test_network::test_reset_is_retried — errors: 3 rpcs (bound <= 0 rpcs)",
    ]
    assert retry.says.startswith("not set (no retryPolicy applies to /greeter.Greeter/SayHello)")
    # A scenario's failure is the check it failed on: graceful drain failed on drain_time,
    # its errors verdict after it is not a failure of its own.
    health = change.settings[1]
    assert [(f.scenario, f.check) for f in health.failures] == [
        (GRACEFUL, "drain_time"),
        (DRAIN, "drain_time"),
    ]
    # Nothing hidden: the failure whose advice names no setting and the error with no
    # verdict are listed once; the pass, the inconclusive and the not-judged are not.
    assert [(f.scenario, f.check, f.text) for f in change.unanswered] == [
        ("test_app::test_no_setting", "errors", "errors: 2 rpcs (bound <= 0 rpcs)"),
        ("test_dns::test_fixture_broke", None, "RuntimeError: the fleet did not start"),
    ]
    assert change.failures == 7
    everywhere = {f.scenario for s in change.settings for f in s.failures}
    everywhere |= {f.scenario for f in change.unanswered}
    assert not any(
        name in everywhere
        for name in (
            "test_claims::test_expected_failure",
            "test_kill::test_stalled",
            "test_kill::test_too_little",
        )
    )


def test_a_failure_in_several_repeats_is_one_and_a_flaky_cell_counts_each_check():
    records = [
        _record(KILL, [_errors(figure=6.0)], "fail", repeat=1),
        _record(KILL, [_errors(figure=2.0)], "fail", repeat=2),
        _record(KILL, [_errors()], "pass", decisive=None, repeat=3),
        _record(DRAIN, [_drain()], "fail", repeat=1),
        _record(DRAIN, [_errors(answers=("healthCheckConfig", "retryPolicy"))], "fail", repeat=2),
        _record(DRAIN, [], "pass", decisive=None, repeat=3),
    ]
    [change] = settings_view.by_column(records)
    assert [(s.name, s.count) for s in change.settings] == [
        ("healthCheckConfig", 2),
        ("retryPolicy", 2),
        ("round_robin", 1),  # naive has it: after the unset ones
    ]
    kill = next(f for f in change.settings[1].failures if f.scenario == KILL)
    # The first repeat's figure, and how many of the scenario's repeats failed on it.
    assert kill.line() == f"{KILL} — errors: 6 rpcs (bound <= 0 rpcs) (2/3 repeats)"
    assert change.failures == 3


def test_each_column_is_ranked_apart_profiles_and_clients():
    records = [
        *naive_records(),
        _record(KILL, [_errors("recommended", 1.0, ("retryPolicy",))], "fail", "recommended"),
        _record(DRAIN, [_drain()], "fail", client=GO),
        _record(KILL, [_errors()], "pass", client=GO, decisive=None),
    ]
    columns = aggregate.columns(records, ["recommended", "naive"], ["inprocess", "go"])
    changes = settings_view.by_column(records, columns)
    assert [c.column for c in changes] == ["recommended", "naive", "naive@go"]
    recommended, naive, go = changes
    # recommended's advice reads recommended's retry policy: its own text, its own count.
    assert [(s.name, s.count) for s in recommended.settings] == [("retryPolicy", 1)]
    assert recommended.settings[0].says.startswith("set: ")
    assert naive.settings[0].says.startswith("not set")
    assert [(s.name, s.count) for s in naive.settings][:1] == [("retryPolicy", 3)]
    assert [(s.name, s.count) for s in go.settings] == [
        ("healthCheckConfig", 1),
        ("round_robin", 1),
    ]
    labels = {c.id: c.label for c in columns}
    assert settings_view.terminal_lines(changes, labels) == [
        f"What to change ({labels['recommended']}): already set: retryPolicy — 1 failure",
        f"What to change ({labels['naive']}): retryPolicy — 3 failures; healthCheckConfig — 2; "
        "grpc.http2.ping_timeout_ms — 1; grpc.keepalive_time_ms — 1; already set: "
        "round_robin — 2; answered by no client setting — 2",
        f"What to change ({labels['naive@go']}): healthCheckConfig — 1 failure; already set: "
        "round_robin — 1",
    ]
    assert settings_view.terminal_lines(changes[1:2], labels, top=2)[0].endswith(
        "healthCheckConfig — 2; 3 more setting(s) in report.html; answered by no client setting — 2"
    )


def test_no_failure_means_no_section():
    records = [_record(KILL, [_errors()], "pass", decisive=None)]
    assert settings_view.by_column(records) == []
    run = _run_doc(records)
    assert "What to change" not in summary_md.render(run, records, None)
    assert results_file.document(run["run"], records)["what_to_change"] == []


# ---------------------------------------------------------------------------- the views


def _run_doc(records: list[dict]) -> dict:
    meta = {
        "id": "20261206T000000Z-abcdef",
        "verdict": "FAIL",
        "counts_text": "7 failed",
        "duration_s": 1.0,
        "started": "2026-12-06T00:00:00.000000Z",
        "profiles": [{"name": "naive", "source": "naive.json", "sha256": "0" * 64}],
        "requirements": {"source": "defaults"},
        "target": {"name": "greeter"},
    }
    return results_file.document(meta, records)


def test_summary_md_ranks_the_settings_above_each_failure():
    records = naive_records()
    text = summary_md.render(_run_doc(records), records, None)
    ranked = text.index("### What to change (naive), by setting")
    assert ranked < text.index("### What answers the failures")
    section = text[ranked : text.index("### What answers the failures")]
    assert "7 failure(s)" in section
    items = re.findall(r"^(\d+)\. \*\*(\S+)\*\* — (\d+) failures? \(([^:)]+)", section, re.M)
    unset, already = "not set in this profile", "already set in this profile"
    assert items == [
        ("1", "retryPolicy", "3", unset),
        ("2", "healthCheckConfig", "2", unset),
        ("3", "grpc.http2.ping_timeout_ms", "1", unset),
        ("4", "grpc.keepalive_time_ms", "1", unset),
        ("5", "round_robin", "2", already),
    ]
    # The advice's text once per setting here; the per-failure detail repeats it below.
    assert (
        section.count("retryPolicy: not set") == 0 and section.count("not set (no retryPolicy") == 1
    )
    assert f"    - `{KILL}` — errors: 6 rpcs (bound <= 0 rpcs)" in section
    assert "- **answered by no client setting** — 2" in section
    assert "    - `test_dns::test_fixture_broke` — RuntimeError: the fleet did not start" in section
    detail = text[text.index("### What answers the failures") :]
    # Every failure still has its advice there (and the inconclusive one its own).
    assert detail.count("retryPolicy: not set") == 4


def test_results_json_keeps_the_ranking_per_column():
    records = naive_records()
    [entry] = _run_doc(records)["what_to_change"]
    assert (entry["profile"], entry["column"], entry["failures"]) == ("naive", "naive", 7)
    assert entry["client"]["name"] == "inprocess"
    assert [(s["name"], s["count"]) for s in entry["settings"]][:2] == [
        ("retryPolicy", 3),
        ("healthCheckConfig", 2),
    ]
    assert entry["settings"][0]["failures"][1] == {
        "scenario": KILL,
        "check": "errors",
        "text": "errors: 6 rpcs (bound <= 0 rpcs)",
        "outcome": "fail",
        "failed": 1,
        "runs": 1,
    }
    assert [f["check"] for f in entry["unanswered"]] == ["errors", None]
    json.dumps(entry)  # JSON-native as it is


def test_report_html_ranks_the_settings_above_each_failure(tmp_path):
    records = naive_records()
    page = report_html.render(results_file.Run(tmp_path, _run_doc(records)))
    changes = page.split("<h2>What to change</h2>", 1)[1].split("<h2>", 1)[0]
    ranked, detail = changes.split('<h3 id="each-failure">', 1)
    found = re.findall(r'data-setting="([^"]*)" data-count="(\d+)"', ranked)
    assert found == [
        ("retryPolicy", "3"),
        ("healthCheckConfig", "2"),
        ("grpc.http2.ping_timeout_ms", "1"),
        ("grpc.keepalive_time_ms", "1"),
        ("round_robin", "2"),
        ("", "2"),
    ]
    statuses = re.findall(
        r'data-status="([^"]*)"><h3>[^<]*<span[^>]*>[^<]*</span></h3>'
        r'<p class="status">([^<]*)</p>',
        ranked,
    )
    assert [s for s, _ in statuses] == [advice.NOT_SET] * 4 + [advice.SET]
    assert statuses[-1][1].startswith("already set in this profile")
    assert ranked.count("retryPolicy: not set (no retryPolicy") == 1
    assert f'href="#{report_html._anchor(KILL, "naive")}"' in ranked
    assert "answered by no client setting" in ranked
    # Below, every failure as before with its whole advice (and the 2 inconclusive ones).
    assert detail.count('<div class="advice">') == 7 + 2
    assert detail.count("retryPolicy: not set") == 3 + 1


# ---------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def naive_run(tmp_path_factory):
    """naive on kill under load and two health drains: each fails on its known check."""
    output = tmp_path_factory.mktemp("gate-settings") / "runs"
    selection = f"{KILL_UNDER_LOAD} or test_not_serving_drains or test_graceful_drain_loses_no_rpc"
    result = gate("--profile", "naive", "-k", selection, "--output", str(output), "--quiet")
    return result, run_dir(result)


def _decisive_checks(directory: Path) -> dict[str, tuple]:
    return {
        r["scenario"]: (r["outcome"], (r["decisive"] or {}).get("name"))
        for r in results(directory)["results"]
    }


def test_a_naive_gate_says_what_to_change_by_setting_everywhere(naive_run):
    result, directory = naive_run
    assert result.returncode == Exit.FAIL, result.stdout + result.stderr
    assert _decisive_checks(directory) == {
        KILL: ("fail", "errors"),
        DRAIN: ("fail", "drain_time"),
        GRACEFUL: ("fail", "drain_time"),
    }
    lines = result.stdout.splitlines()
    verdict = lines.index("grpc-chaos gate: FAIL — 3 failed")
    assert lines[verdict + 1] == (
        "  What to change (naive): healthCheckConfig — 2 failures; retryPolicy — 1; already set: "
        "round_robin — 2"
    )
    assert lines[verdict + 2].startswith("  report: ")

    [entry] = results(directory)["what_to_change"]
    assert [(s["name"], s["count"], s["status"]) for s in entry["settings"]] == [
        ("healthCheckConfig", 2, advice.NOT_SET),
        ("retryPolicy", 1, advice.NOT_SET),
        ("round_robin", 2, advice.SET),
    ]
    summary = (directory / "summary.md").read_text()
    assert summary.index("### What to change (naive), by setting") < summary.index(
        "### What answers the failures"
    )
    assert re.search(
        rf"^2\. \*\*retryPolicy\*\* — 1 failure \(not set in this profile\): not set .*\n"
        rf"    - `{re.escape(KILL)}` — "
        r"errors: \d+ rpcs \(bound <= 0 rpcs\)$",
        summary,
        re.M,
    ), summary


def test_the_ranked_section_shows_in_chromium_above_each_failure(naive_run):
    _, directory = naive_run
    singletons = set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*"))
    with Chromium() as browser:
        page, found = open_page(browser, directory / "report.html")
        shown = json.loads(
            page.evaluate(
                """JSON.stringify({
                settings: [...document.querySelectorAll('.by-setting .setting')].map(d => ({
                  name: d.dataset.setting, count: d.dataset.count,
                  heading: d.querySelector('h3').innerText,
                  status: (d.querySelector('.status') || {}).innerText || '',
                  items: [...d.querySelectorAll('li')].map(li => li.innerText),
                  height: d.getBoundingClientRect().height})),
                detail: [...document.querySelectorAll('.advice:not(.setting)')].map(d =>
                  d.compareDocumentPosition(document.querySelector('.by-setting'))
                  & Node.DOCUMENT_POSITION_PRECEDING ? 'below' : 'above'),
                scenarios: document.querySelectorAll('article').length})"""
            )
        )
        page.close()
    assert found["console_errors"] == [] and found["requests"] == []
    assert [(s["name"], s["count"]) for s in shown["settings"]] == [
        ("healthCheckConfig", "2"),
        ("retryPolicy", "1"),
        ("round_robin", "2"),
    ]
    health, retry, policy = shown["settings"]
    assert health["heading"] == "1. healthCheckConfig — 2 failures"
    assert retry["heading"] == "2. retryPolicy — 1 failure"
    assert policy["status"].startswith("already set in this profile")
    assert sorted(i.split(" — ")[0] for i in health["items"]) == [GRACEFUL, DRAIN]
    assert all(" — drain_time: " in i and "(bound <= 50 ms)" in i for i in health["items"])
    [item] = retry["items"]
    assert re.fullmatch(rf"{re.escape(KILL)} — errors: \d+ rpcs \(bound <= 0 rpcs\)", item), item
    assert all(s["height"] > 0 for s in shown["settings"])  # laid out, not hidden
    # The per-failure detail is still there, below the ranking; every scenario too.
    assert shown["detail"] == ["below"] * 3
    assert shown["scenarios"] == 3
    assert browser.alive() == []
    assert set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*")) <= singletons
