"""A failed verdict names the settings that answer it, with the profile's own values."""

import json

import pytest

from chaos import profiles
from chaos.verdicts import advice
from chaos.verdicts.requirements import DEFAULTS


def test_unset_options_show_grpc_s_default_and_set_ones_their_value():
    naive = advice.explain(profiles.load("naive"), ["grpc.max_reconnect_backoff_ms"])
    assert "grpc.max_reconnect_backoff_ms: unset: gRPC's default 120000 ms" in naive
    recommended = advice.explain(profiles.load("recommended"), ["grpc.max_reconnect_backoff_ms"])
    assert "grpc.max_reconnect_backoff_ms: 1000 ms" in recommended
    assert 'This profile says why: "restarts after long outages' in recommended


def test_service_config_settings_are_read_whatever_their_spelling():
    legacy = profiles.parse(
        {"name": "legacy", "service_config": {"loadBalancingPolicy": "round_robin"}}
    )
    text = advice.explain(
        legacy,
        ["round_robin", "healthCheckConfig", "retryPolicy", "outlierDetection", "waitForReady"],
    )
    assert "round_robin: set: round_robin (legacy loadBalancingPolicy)" in text
    assert "healthCheckConfig: not set" in text and "retryPolicy: not set" in text
    assert "outlierDetection: not set" in text and "waitForReady: not set" in text
    recommended = advice.explain(profiles.load("recommended"), ["outlierDetection"])
    assert '"maxEjectionPercent": 33' in recommended


# Service-config knobs: whether a profile sets each, read here apart from advice.py's readers.
_SERVICE_CONFIG_SET = {
    "round_robin": lambda p: p.declared_policy.name == "round_robin",
    "healthCheckConfig": lambda p: "healthCheckConfig" in (p.service_config or {}),
    "retryPolicy": lambda p: "retryPolicy" in json.dumps(p.service_config or {}),
    "waitForReady": lambda p: '"waitForReady": true' in json.dumps(p.service_config or {}),
    "outlierDetection": lambda p: "outlier_detection" in json.dumps(p.service_config or {}),
}


@pytest.mark.parametrize("name", ["naive", "recommended", "pick_first", "outlier"])
def test_each_knob_says_whether_the_profile_sets_it_in_its_first_words(name):
    # "What to change" ranks the settings a profile leaves unset above those it already
    # has by these words (chaos/gate/settings_view.py): every reader must keep to them.
    profile = profiles.load(name)
    for key, knob in advice.CATALOGUE.items():
        status = advice.status_of(knob.read(profile))
        if key.startswith("server."):
            expected = advice.SERVER
        elif key in _SERVICE_CONFIG_SET:
            expected = advice.SET if _SERVICE_CONFIG_SET[key](profile) else advice.NOT_SET
        else:
            expected = advice.SET if key in profile.channel_options else advice.NOT_SET
        assert status == expected, f"{name}: {key} reads {knob.read(profile)!r}"


def test_a_policy_other_than_round_robin_reads_as_not_set():
    pick_first = advice.explain(profiles.load("pick_first"), ["round_robin"])
    assert "round_robin: not set: the policy is pick_first" in pick_first


def test_the_bound_says_where_it_comes_from():
    text = advice.explain(profiles.load("naive"), [], DEFAULTS, "drain_ms")
    assert text.startswith("Bound: drain_ms = 50 ms (grpc-chaos default)")
    assert "--chaos-requirements" in text


def test_an_unknown_setting_is_a_programming_error_that_names_the_known_ones():
    with pytest.raises(KeyError, match="healthCheckConfig"):
        advice.explain(profiles.load("naive"), ["healthCheck"])


def test_a_failure_of_committed_rpcs_is_answered_by_the_server_not_the_retry_policy():
    from chaos.checks import errors
    from chaos.history import History, Rpc
    from chaos.scenario import _answers_for_committed

    def failure(committed: int) -> object:
        history = History()
        for n in range(1, 4):
            headers = 1_000 if n <= committed else None
            history.record(Rpc(n, 0, 50_000, None, "UNAVAILABLE", "Socket closed", headers))
        return errors(history)

    assert _answers_for_committed(("retryPolicy",), failure(3)) == ("server.late_headers",)
    assert _answers_for_committed(("retryPolicy",), failure(1)) == (
        "server.late_headers",
        "retryPolicy",
    )
    assert _answers_for_committed(("retryPolicy",), failure(0)) == ("retryPolicy",)
    text = advice.explain(profiles.load("recommended"), ("server.late_headers",))
    assert "sends its response headers with the answer" in text and "retryPolicy" not in text
