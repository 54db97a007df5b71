"""Client profiles: the shipped ones are valid and say why; bad profiles are named errors."""

import json

import pytest

from chaos import profiles


def test_shipped_profiles_are_the_documented_four():
    assert profiles.shipped() == ["naive", "outlier", "pick_first", "recommended"]


@pytest.mark.parametrize("name, policy, health", [
    ("pick_first", "pick_first", False), ("naive", "round_robin", False),
    ("recommended", "outlier_detection_experimental", True),
    ("outlier", "outlier_detection_experimental", False),
])
def test_each_profile_loads_with_its_policy(name, policy, health):
    profile = profiles.load(name)
    assert profile.name == name and profile.policy == policy
    assert profile.health_checking is health


def test_every_recommended_setting_says_which_fault_it_answers():
    profile = profiles.load("recommended")
    settings = set(profile.channel_options) | set(profile.service_config) - {"methodConfig"}
    settings |= {"retryPolicy"}
    assert settings <= set(profile.why), settings - set(profile.why)
    assert all(len(reason) > 20 for reason in profile.why.values())


def test_options_carry_the_service_config_and_a_local_subchannel_pool():
    options = dict(profiles.load("recommended").options())
    assert json.loads(options["grpc.service_config"])["healthCheckConfig"] == {
        "serviceName": "greeter.Greeter"}
    assert options["grpc.use_local_subchannel_pool"] == 1
    assert options["grpc.http2.ping_timeout_ms"] == 500
    assert "grpc.service_config" not in dict(profiles.load("pick_first").options())


def test_a_user_profile_by_path(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "service_config": {
        "loadBalancingConfig": [{"round_robin": {}}]}, "channel_options": {
        "grpc.keepalive_time_ms": 1000}}))
    profile = profiles.load(str(path))
    assert profile.name == "mine" and profile.policy == "round_robin"
    assert profile.source == str(path)


@pytest.mark.parametrize("data, message", [
    ([], "expected a JSON object"),
    ({"name": ""}, "'name' must be a non-empty string"),
    ({"name": "x", "servce_config": {}}, "unknown keys ['servce_config']"),
    ({"name": "x", "service_config": []}, "'service_config' must be an object or null"),
    ({"name": "x", "channel_options": {"grpc.x": 1.5}}, "integers or strings"),
])
def test_bad_profiles_name_the_problem(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(profiles.ProfileError) as error:
        profiles.load(str(path))
    assert message in str(error.value) and str(path) in str(error.value)


def test_unknown_name_lists_the_shipped_profiles():
    with pytest.raises(profiles.ProfileError, match="recommended"):
        profiles.load("nope")


def test_unreadable_json_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(profiles.ProfileError, match="not readable JSON"):
        profiles.load(str(path))
