"""Client profiles: the shipped ones load and say why; bad profiles are named errors; the
accessors explain settings (policy, health service, channel option values, retry policy,
outlier detection) whatever the config's spelling."""

import json

import pytest

import chaos
from chaos import profiles

ROUND_ROBIN = {"loadBalancingConfig": [{"round_robin": {}}]}


def _profile(service_config=None, **options) -> profiles.Profile:
    return profiles.parse(
        {"name": "t", "service_config": service_config, "channel_options": options}, check=False
    )


def test_shipped_profiles_are_the_documented_ones():
    assert profiles.shipped() == [
        "naive",
        "outlier",
        "pick_first",
        "recommended",
        "recommended-go",
        "recommended-java",
        "recommended-node",
    ]


@pytest.mark.parametrize(
    "name, policy, health",
    [
        ("pick_first", "pick_first (gRPC's default: no policy declared)", None),
        ("naive", "round_robin", None),
        ("recommended", "round_robin (under outlier_detection_experimental)", ""),
        ("outlier", "round_robin (under outlier_detection_experimental)", None),
    ],
)
def test_each_profile_loads_with_its_declared_policy(name, policy, health):
    profile = profiles.load(name)
    assert profile.name == name and str(profile.declared_policy) == policy
    assert profile.health_check_service == health
    assert profile.health_checking is (health is not None)


def test_scenarios_cannot_branch_on_the_spelling_of_a_config():
    profile = profiles.load("recommended")
    assert not hasattr(profile, "policy") and not hasattr(profile, "max_reconnect_backoff_ms")


def test_every_recommended_setting_says_which_fault_it_answers():
    profile = profiles.load("recommended")
    settings = set(profile.channel_options) | set(profile.service_config) - {"methodConfig"}
    settings |= {"retryPolicy"}
    assert settings <= set(profile.why), settings - set(profile.why)
    assert all(len(reason) > 20 for reason in profile.why.values())


def test_options_carry_the_service_config_and_a_local_subchannel_pool():
    options = dict(profiles.load("recommended").options())
    assert json.loads(options["grpc.service_config"])["healthCheckConfig"] == {"serviceName": ""}
    assert options["grpc.use_local_subchannel_pool"] == 1
    assert options["grpc.http2.ping_timeout_ms"] == 500
    assert "grpc.service_config" not in dict(profiles.load("pick_first").options())


def test_a_user_profile_by_path(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "name": "mine",
                "service_config": ROUND_ROBIN,
                "channel_options": {"grpc.keepalive_time_ms": 1000},
            }
        )
    )
    profile = profiles.load(str(path))
    assert profile.name == "mine" and str(profile.declared_policy) == "round_robin"
    assert profile.source == str(path)


def test_the_legacy_load_balancing_policy_field_is_valid_and_read_as_round_robin(tmp_path):
    path = tmp_path / "seed.json"
    path.write_text(
        json.dumps({"name": "seed", "service_config": {"loadBalancingPolicy": "round_robin"}})
    )
    policy = profiles.load(str(path)).declared_policy
    assert (policy.name, policy.source) == ("round_robin", "loadBalancingPolicy")
    assert str(policy) == "round_robin (legacy loadBalancingPolicy)"


@pytest.mark.parametrize(
    "service_config, options, name, wrappers, source",
    [
        (None, {}, "pick_first", (), "default"),
        ({"loadBalancingPolicy": "ROUND_ROBIN"}, {}, "round_robin", (), "loadBalancingPolicy"),
        (None, {"grpc.lb_policy_name": "round_robin"}, "round_robin", (), "grpc.lb_policy_name"),
        # loadBalancingConfig wins over both other places.
        (
            {"loadBalancingConfig": [{"pick_first": {}}], "loadBalancingPolicy": "round_robin"},
            {"grpc.lb_policy_name": "round_robin"},
            "pick_first",
            (),
            "loadBalancingConfig",
        ),
        # The first policy grpcio implements wins; the others are skipped.
        (
            {
                "loadBalancingConfig": [
                    {"least_request_experimental": {}},
                    {"round_robin": {}},
                    {"pick_first": {}},
                ]
            },
            {},
            "round_robin",
            (),
            "loadBalancingConfig",
        ),
        (
            {
                "loadBalancingConfig": [
                    {
                        "outlier_detection_experimental": {
                            "childPolicy": [{"grpclb": {"childPolicy": [{"pick_first": {}}]}}]
                        }
                    }
                ]
            },
            {},
            "pick_first",
            ("outlier_detection_experimental", "grpclb"),
            "loadBalancingConfig",
        ),
        ({"loadBalancingConfig": [{"nope": {}}]}, {}, None, (), "invalid"),
    ],
)
def test_declared_policy_follows_grpcs_precedence(service_config, options, name, wrappers, source):
    policy = _profile(service_config, **options).declared_policy
    assert (policy.name, policy.wrappers, policy.source) == (name, wrappers, source)


def test_declared_policy_names_every_wrapper_innermost_first():
    policy = _profile(
        {
            "loadBalancingConfig": [
                {
                    "outlier_detection_experimental": {
                        "childPolicy": [{"grpclb": {"childPolicy": [{"pick_first": {}}]}}]
                    }
                }
            ]
        }
    ).declared_policy
    assert str(policy) == "pick_first (under grpclb, under outlier_detection_experimental)"


@pytest.mark.parametrize(
    "health_check_config, service",
    [
        ({"serviceName": "greeter.Greeter"}, "greeter.Greeter"),
        ({"serviceName": ""}, ""),
        ({}, None),
        (None, None),
    ],
)
def test_health_check_service(health_check_config, service):
    config = dict(ROUND_ROBIN)
    if health_check_config is not None:
        config["healthCheckConfig"] = health_check_config
    assert _profile(config).health_check_service == service


def test_setting_gives_the_value_or_grpcs_default_with_a_text():
    profile = profiles.load("recommended")
    assert profile.setting("grpc.max_reconnect_backoff_ms") == profiles.Setting(
        1000, False, "1000 ms"
    )
    default = profiles.load("naive").setting("grpc.max_reconnect_backoff_ms")
    assert default == profiles.Setting(120000, True, "unset: gRPC's default 120000 ms")
    assert str(profiles.load("naive").setting("grpc.keepalive_time_ms")) == (
        "unset: gRPC's default off (INT_MAX) for clients"
    )
    assert (
        str(
            _profile(**{"grpc.initial_reconnect_backoff_ms": 10}).setting(
                "grpc.initial_reconnect_backoff_ms"
            )
        )
        == "10 ms, which gRPC raises to 100 ms"
    )


def test_setting_of_an_unknown_option_is_a_named_error():
    with pytest.raises(profiles.ProfileError, match='did you mean "grpc.keepalive_time_ms"'):
        profiles.load("naive").setting("grpc.keepalive_time_msx")


def test_retry_policy_is_the_most_specific_method_configs():
    exact, service, default = ({"maxAttempts": n} for n in (4, 3, 2))
    profile = _profile(
        {
            "methodConfig": [
                {"name": [{}], "retryPolicy": default},
                {
                    "name": [{"service": "greeter.Greeter", "method": "SayHello"}],
                    "retryPolicy": exact,
                },
                {"name": [{"service": "greeter.Greeter"}], "retryPolicy": service},
            ]
        }
    )
    assert profile.retry_policy("greeter.Greeter", "SayHello") == exact
    assert profile.retry_policy("greeter.Greeter", "Other") == service
    assert profile.retry_policy("other.Service", "SayHello") == default
    assert profiles.load("naive").retry_policy("greeter.Greeter", "SayHello") is None
    assert profiles.load("recommended").retry_policy("greeter.Greeter", "SayHello")[
        "retryableStatusCodes"
    ] == ["UNAVAILABLE"]


def test_outlier_detection_is_the_config_of_the_policy_grpc_uses():
    assert profiles.load("recommended").outlier_detection["maxEjectionPercent"] == 33
    assert profiles.load("naive").outlier_detection is None
    skipped = _profile(
        {
            "loadBalancingConfig": [
                {"round_robin": {}},
                {"outlier_detection_experimental": {"childPolicy": []}},
            ]
        }
    )
    assert skipped.outlier_detection is None


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "expected a JSON object, got a list"),
        ({"name": ""}, 'name: must be a non-empty string, got ""'),
        (
            {"name": "x", "servce_config": {}},
            'servce_config: unknown key (did you mean "service_config"?)',
        ),
        (
            {"name": "x", "service_config": []},
            "service_config: must be an object or null, got a list",
        ),
        (
            {"name": "x", "channel_options": {"grpc.keepalive_time_ms": 1.5}},
            'channel_options["grpc.keepalive_time_ms"]: expected an integer, got 1.5',
        ),
    ],
)
def test_bad_profiles_name_the_problem(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(profiles.ProfileError) as error:
        profiles.load(str(path))
    assert message in str(error.value) and str(path) in str(error.value)


def test_load_lists_every_error_one_per_line_with_its_path(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "name": "bad",
                "service_config": {
                    "loadBalancingPolicy": "nope",
                    "healthCheckConfg": {"serviceName": "x"},
                },
                "channel_options": {"grpc.keepalive_time_msx": 1},
            }
        )
    )
    with pytest.raises(profiles.ProfileError) as error:
        profiles.load(str(path))
    lines = str(error.value).splitlines()
    assert lines[0] == f"profile {path}: 3 problems:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        'channel_options["grpc.keepalive_time_msx"]',
        "service_config.healthCheckConfg",
        "service_config.loadBalancingPolicy",
    ]


def test_load_without_check_accepts_settings_that_check_refuses(tmp_path):
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"name": "typo", "channel_options": {"grpc.nope": 1}}))
    assert profiles.load(str(path), check=False).channel_options == {"grpc.nope": 1}
    with pytest.raises(profiles.ProfileError, match="unknown channel option"):
        profiles.load(str(path))


def test_warnings_do_not_refuse_a_profile():
    data = {
        "name": "w",
        "service_config": {
            "methodConfig": [
                {
                    "name": [{}],
                    "retryPolicy": {
                        "maxAttempts": 9,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        },
    }
    assert [p.severity for p in profiles.check(data)] == [profiles.WARNING]
    assert profiles.parse(data).name == "w"


def test_unknown_name_lists_the_shipped_profiles():
    with pytest.raises(profiles.ProfileError, match="recommended"):
        profiles.load("nope")


def test_unreadable_json_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(profiles.ProfileError, match="not readable JSON"):
        profiles.load(str(path))


def test_the_chaos_exports_still_work():
    assert chaos.Profile is profiles.Profile
    assert chaos.load_profile("naive").name == "naive"
