"""A failed verdict names the settings that answer it, with the profile's own values."""

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
    assert "round_robin: round_robin (legacy loadBalancingPolicy)" in text
    assert "healthCheckConfig: not set" in text and "retryPolicy: not set" in text
    assert "outlierDetection: not set" in text and "waitForReady: not set" in text
    recommended = advice.explain(profiles.load("recommended"), ["outlierDetection"])
    assert '"maxEjectionPercent": 33' in recommended


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
