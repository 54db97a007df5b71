"""The audit's parts without a fleet: which settings a profile has and their mutations
(each a valid profile), the setting -> scenarios map read from ``answers=``, the
classification from results records, exit codes and the audit.json schema."""

from __future__ import annotations

import ast
import copy
import json

import pytest

from chaos import profiles
from chaos.audit import answers, classify, known, report, settings
from chaos.audit.cli import Audit, main, parser
from chaos.gate.selection import CATALOGUE
from chaos.outcomes import Exit

KILL_UNDER_LOAD = "test_kill::test_kill_under_load_loses_no_rpc"
PLANTED = {
    "name": "planted",
    "service_config": {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": ""},
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
                "timeout": "5s",
                "waitForReady": False,
            },
            {
                "name": [{"service": "no.Such", "method": "Thing"}],
                "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "0.1s"},
            },
        ],
    },
    "channel_options": {"grpc.keepalive_timeout_ms": 500, "grpc.enable_retries": 1},
}


@pytest.fixture(scope="module")
def catalogue() -> list[answers.Scenario]:
    return answers.scan(CATALOGUE)


def test_recommended_has_each_setting_named_as_the_advice_names_it():
    found = settings.enumerate_settings(profiles.load("recommended"))
    names = [s.name for s in found]
    assert names[:4] == ["round_robin", "outlierDetection", "healthCheckConfig", "retryPolicy"]
    assert "grpc.keepalive_time_ms" in names and "grpc.http2.ping_timeout_ms" in names
    assert len({s.id for s in found}) == len(found)


def test_every_mutation_is_a_valid_profile_without_its_setting():
    for source in (profiles.load("recommended").data(), PLANTED):
        profile = profiles.parse(source)
        found = settings.enumerate_settings(profile)
        original = copy.deepcopy(profile.data())
        mutated = [s.mutate(profile.data()) for s in found]
        assert profile.data() == original  # a mutation never changes the profile itself
        for setting, problems in zip(found, profiles.check_many(mutated), strict=True):
            assert not [p for p in problems if p.is_error], (setting.id, problems)
        by_id = dict(zip([s.id for s in found], mutated, strict=True))
        if "channel_options.grpc.keepalive_timeout_ms" in by_id:
            assert (
                "grpc.keepalive_timeout_ms"
                not in (by_id["channel_options.grpc.keepalive_timeout_ms"]["channel_options"])
            )


def test_policy_mutations():
    recommended = profiles.load("recommended")
    found = {s.name: s for s in settings.enumerate_settings(recommended)}
    lb = found["round_robin"].mutate(recommended.data())["service_config"]["loadBalancingConfig"]
    assert lb[0]["outlier_detection_experimental"]["childPolicy"] == [{"pick_first": {}}]
    od = found["outlierDetection"].mutate(recommended.data())["service_config"]
    assert od["loadBalancingConfig"] == [{"round_robin": {}}]
    plain = profiles.parse(PLANTED)
    rr = next(s for s in settings.enumerate_settings(plain) if s.name == "round_robin")
    assert "loadBalancingConfig" not in rr.mutate(plain.data())["service_config"]
    assert profiles.parse(rr.mutate(plain.data())).declared_policy.name == "pick_first"


def test_method_config_settings_are_one_each():
    found = settings.enumerate_settings(profiles.parse(PLANTED))
    ids = [s.id for s in found]
    for expected in (
        "methodConfig[0].retryPolicy",
        "methodConfig[0].timeout",
        "methodConfig[0].waitForReady",
        "methodConfig[1].hedgingPolicy",
        "retryThrottling",
        "healthCheckConfig",
    ):
        assert expected in ids
    assert next(s for s in found if s.id == "methodConfig[1].hedgingPolicy").keys == (
        "hedgingPolicy",
        "retryPolicy",
    )


def test_only_names_settings_by_name_or_id():
    found = settings.enumerate_settings(profiles.parse(PLANTED))
    assert [s.id for s in settings.select(found, ["retryPolicy"])] == [
        "methodConfig[0].retryPolicy"
    ]
    with pytest.raises(ValueError, match="retryPolicyy"):
        settings.select(found, ["retryPolicyy"])


def test_setting_to_scenarios_map(catalogue):
    retry = {s.name for s in answers.answering(catalogue, ["retryPolicy"])}
    assert KILL_UNDER_LOAD in retry
    health = {s.name for s in answers.answering(catalogue, ["healthCheckConfig"])}
    assert all(name.startswith(("test_health", "test_rollout", "test_http2")) for name in health)
    assert "test_http2::test_a_backend_accepting_no_stream_gets_no_rpc_on_its_new_connections" in (
        health
    )
    assert any(name.startswith("test_health") for name in health)
    # KEEPALIVE[:-1] + ("grpc.keepalive_permit_without_calls",): a slice and a sum resolved
    assert answers.answering(catalogue, ["grpc.keepalive_permit_without_calls"])
    # grpc.keepalive_timeout_ms answers no check by name: found through RELATED
    timeout = settings.Setting("x", "grpc.keepalive_timeout_ms", 1, "", lambda d: d)
    assert answers.answering(catalogue, timeout.keys)
    assert all(s.nodeid.startswith(str(CATALOGUE.resolve())) for s in catalogue)


def test_answers_expressions():
    names = {"A": ("a", "b", "c")}

    def keys(text: str):
        return answers.evaluate(ast.parse(text, mode="eval").body, names)

    assert keys('"x"') == ("x",)
    assert keys('A + ("d",)') == ("a", "b", "c", "d")
    assert keys("A[:-1]") == ("a", "b")
    assert keys("[A[1], 'z']") is None  # an index, not a slice: not resolved
    assert keys("f()") is None


def _record(scenario: str, outcome: str, check: str | None = None, advice: str = "") -> dict:
    decisive = None
    if check:
        decisive = {
            "name": check,
            "outcome": "fail",
            "figure": 6,
            "unit": "rpcs",
            "bound": 0,
            "comparison": "<=",
            "headline": f"FAIL {check}: 6 rpcs (bound <= 0 rpcs)",
            "advice": advice,
        }
    return {"scenario": scenario, "outcome": outcome, "decisive": decisive, "reason": ""}


RETRY_ADVICE = 'What answers this (the profile under test, "x"):\n  - retryPolicy: not set.\n'
RETRY = settings.Setting("methodConfig[0].retryPolicy", "retryPolicy", {}, "removed", dict)


def _results(*records: dict) -> dict:
    return {r["scenario"]: classify.result(r) for r in records}


def test_needed_names_the_scenario_check_and_figure():
    base = _results(_record("a", "pass"), _record("b", "pass"))
    mutated = _results(_record("a", "pass"), _record("b", "fail", "errors", RETRY_ADVICE))
    found = classify.classify(RETRY, ["a", "b"], base, mutated)
    assert found.verdict == classify.NEEDED
    assert found.why == "without it, b fails on errors: 6 rpcs (bound <= 0 rpcs)"


def test_no_effect_not_covered_and_inconclusive():
    base = _results(_record("a", "pass"), _record("n", "not_applicable"))
    passing = _results(_record("a", "pass"))
    assert classify.classify(RETRY, ["a", "n"], base, passing).verdict == classify.NO_EFFECT
    assert classify.classify(RETRY, [], {}, {}).verdict == classify.NOT_COVERED
    assert classify.classify(RETRY, ["n"], base, {}).verdict == classify.NOT_COVERED
    stalled = _results(_record("a", "inconclusive"))
    assert classify.classify(RETRY, ["a"], base, stalled).verdict == classify.INCONCLUSIVE
    errored = _results(_record("a", "error"))
    assert classify.classify(RETRY, ["a"], base, errored).verdict == classify.INCONCLUSIVE
    assert classify.classify(RETRY, ["a"], base, {}).verdict == classify.INCONCLUSIVE
    failing = _results(_record("a", "fail", "errors", RETRY_ADVICE))
    found = classify.classify(RETRY, ["a"], failing, failing)
    assert found.verdict == classify.INCONCLUSIVE
    assert found.why == "fails with the profile as given: a"


def test_no_effect_says_the_known_case():
    setting = settings.Setting("channel_options.x", "grpc.keepalive_timeout_ms", 500, "", dict)
    base = _results(_record("a", "pass"))
    found = classify.classify(setting, ["a"], base, base, "grpcio")
    assert "grpc.http2.ping_timeout_ms" in (found.known or "")
    assert known.explain("grpc.enable_retries", 1, "grpcio") == (
        "restates gRPC's default (grpc.enable_retries = 1)"
    )
    assert known.explain("waitForReady", False, None)
    assert known.explain("grpc.keepalive_time_ms", 500, "grpcio") is None


def _finding(verdict: str) -> classify.Finding:
    return classify.Finding(RETRY, verdict, "")


def test_exit_codes():
    needed, dead = _finding(classify.NEEDED), _finding(classify.NO_EFFECT)
    unsure, uncovered = _finding(classify.INCONCLUSIVE), _finding(classify.NOT_COVERED)
    assert classify.exit_code([needed, uncovered]) is Exit.PASS
    assert classify.exit_code([needed, dead, unsure]) is Exit.FAIL
    assert classify.exit_code([needed, unsure]) is Exit.INCONCLUSIVE
    assert classify.exit_code([needed], interrupted=True) is Exit.INTERRUPTED


def test_audit_json_schema_and_page(tmp_path):
    meta = {"verdict": "pass", "profile": {"name": "x"}, "client": {"name": "inprocess"}}
    meta["selection"] = "the catalogue"
    found = classify.Finding(
        RETRY, classify.NEEDED, "why", [{"scenario": "a", "baseline": None, "mutated": None}]
    )
    doc = report.document(meta, [found])
    assert doc["kind"] == "grpc-chaos audit" and doc["version"] == 1
    assert doc["counts"] == {"needed": 1, "not covered": 0, "no effect seen": 0, "inconclusive": 0}
    assert set(doc["settings"][0]) == {
        "id",
        "name",
        "label",
        "value",
        "keys",
        "mutation",
        "verdict",
        "why",
        "known",
        "duration_s",
        "stopped_early",
        "scenarios",
    }
    data, page = report.write(tmp_path, doc)
    assert json.loads(data.read_text()) == doc
    text = page.read_text()
    assert "<style>" in text and "http" not in text.split("</head>")[0].split("<style>")[0][20:]
    assert "retryPolicy" in text
    assert report.table([found])[1].split()[:2] == ["retryPolicy", "(methodConfig[0])"]


def test_usage_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "channel_options": {"grpc.keepalive_time_ms": -1}}))
    assert main(["--profile", str(bad)]) == Exit.USAGE
    assert "problem" in capsys.readouterr().err
    assert main(["--profile", "recommended", "--only", "retryPolicyy"]) == Exit.USAGE
    assert "not a setting of this profile" in capsys.readouterr().err
    assert main(["--profile", "recommended", "--scenarios", "no_such_scenario"]) == Exit.USAGE
    assert main([]) == Exit.USAGE
    assert not list(tmp_path.glob("*/audit.json"))


def test_restriction_selects_the_scenarios_each_setting_runs():
    args = parser().parse_args(
        [
            "--profile",
            "recommended",
            "--scenarios",
            "test_kill_under_load",
            "--only",
            "retryPolicy,grpc.keepalive_time_ms",
        ]
    )
    audit = Audit(args)
    by_name = {s.name: [x.name for x in audit.scenarios[s.id]] for s in audit.settings}
    assert by_name == {"retryPolicy": [KILL_UNDER_LOAD], "grpc.keepalive_time_ms": []}


def test_a_parametrized_scenario_is_one_result_its_worst():
    found = classify.results(
        [
            _record("test_tls::test_x[expired]", "pass"),
            _record("test_tls::test_x[other_ca]", "fail", "errors", RETRY_ADVICE),
            _record("test_tls::test_x[late]", "pass"),
            _record("test_tls::test_y[a]", "not_applicable"),
            _record("test_tls::test_y[b]", "pass"),
        ]
    )
    assert set(found) == {"test_tls::test_x", "test_tls::test_y"}
    assert found["test_tls::test_x"].check == "errors"  # type: ignore[union-attr]
    assert found["test_tls::test_y"].outcome == "pass"  # type: ignore[union-attr]


def test_a_scenarios_helper_is_read_for_its_answers(tmp_path):
    path = tmp_path / "test_family.py"
    path.write_text(
        "RETRIES = ('retryPolicy',)\n"
        "def _shared(chaos, extra):\n"
        "    chaos.expect(None, answers=RETRIES)\n"
        "    _deeper(chaos)\n"
        "def _deeper(chaos):\n"
        "    chaos.expect(None, answers=('healthCheckConfig',))\n"
        "def test_one(chaos):\n"
        "    _shared(chaos, 1)\n"
        "def test_two(chaos):\n"
        "    chaos.expect(None, answers=('round_robin',))\n"
    )
    found = {s.name: s.keys for s in answers.scan_file(path)}
    assert found == {
        "test_family::test_one": {"retryPolicy", "healthCheckConfig"},
        "test_family::test_two": {"round_robin"},
    }
