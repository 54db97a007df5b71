"""Profile checking: every problem class named with its path and exact message (schema
layer), gRPC's own parser in its own words (a real grpcio channel in a child process),
the channel-argument table against the installed grpcio, and the command line."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc._cython.cygrpc
import pytest

from chaos import profiles
from chaos.profiles import channel_args, grpc_parser, lb_policies

ROUND_ROBIN = [{"round_robin": {}}]
RETRY = {
    "maxAttempts": 5,
    "initialBackoff": "0.01s",
    "maxBackoff": "0.2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
CLI_TIMEOUT_S = 60  # a few hundred ms idle; the margin is for a busy 2-core machine


def schema_problems(service_config=None, why=None, **options) -> list[str]:
    data = {"name": "t", "service_config": service_config, "channel_options": options}
    if why is not None:
        data["why"] = why
    return [str(p) for p in profiles.check(data, grpc=False)]


def retry(**changes) -> dict:
    return {
        "methodConfig": [
            {"name": [{"service": "greeter.Greeter"}], "retryPolicy": {**RETRY, **changes}}
        ]
    }


C = 'channel_options["grpc.{}"]'
M = "service_config.methodConfig[0]"
R = f"{M}.retryPolicy"
L = "service_config.loadBalancingConfig"
DURATION = (
    'expected a duration like "1.5s" (seconds with an "s" suffix, at most 9 digits after the point)'
)


@pytest.mark.parametrize(
    "options, expected",
    [
        (
            {"grpc.keepalive_time_msx": 20000},
            f"{C.format('keepalive_time_msx')}: unknown channel option (did you mean "
            f'"grpc.keepalive_time_ms"?): gRPC ignores it silently',
        ),
        (
            {"grpc.keepalive_time_ms": "20000"},
            f'{C.format("keepalive_time_ms")}: expected an integer, got "20000": write 20000 '
            f"without quotes",
        ),
        (
            {"grpc.keepalive_time_ms": 1.5},
            f"{C.format('keepalive_time_ms')}: expected an integer, got 1.5",
        ),
        (
            {"grpc.keepalive_time_ms": None},
            f"{C.format('keepalive_time_ms')}: expected an integer, got null",
        ),
        (
            {"grpc.keepalive_permit_without_calls": True},
            f"{C.format('keepalive_permit_without_calls')}: expected 0 or 1 (gRPC's booleans are "
            f"integers), got true: write 1",
        ),
        (
            {"grpc.keepalive_permit_without_calls": 2},
            f"{C.format('keepalive_permit_without_calls')}: must be at most 1, got 2",
        ),
        (
            {"grpc.max_reconnect_backoff_ms": -5},
            f"{C.format('max_reconnect_backoff_ms')}: must be at least 0 ms, got -5",
        ),
        (
            {"grpc.keepalive_time_ms": 2**31},
            f"{C.format('keepalive_time_ms')}: must be at most 2147483647 ms, got 2147483648",
        ),
        (
            {"grpc.initial_reconnect_backoff_ms": 10},
            f"{C.format('initial_reconnect_backoff_ms')}: warning: 10 ms is below gRPC's minimum: "
            f"gRPC uses 100 ms",
        ),
        (
            {"grpc.default_authority": 5},
            f"{C.format('default_authority')}: expected a string, got 5",
        ),
        (
            {"grpc.service_config": "{}"},
            f"{C.format('service_config')}: put the service config in the profile's "
            f'"service_config" (checked, and merged into the channel options for you)',
        ),
        (
            {"grpc.max_connection_age_ms": 1000},
            f"{C.format('max_connection_age_ms')}: a server option: a client channel ignores it",
        ),
        (
            {"grpc.lb_policy_name": "round_robbin"},
            f'{C.format("lb_policy_name")}: unknown policy "round_robbin" (did you mean '
            f'"round_robin"?); gRPC ignores it silently and uses pick_first',
        ),
    ],
)
def test_channel_option_problems(options, expected):
    assert schema_problems(**options) == [expected]


@pytest.mark.parametrize(
    "service_config, expected",
    [
        (
            {"healthCheckConfg": {"serviceName": "greeter.Greeter"}},
            [
                'service_config.healthCheckConfg: unknown key (did you mean "healthCheckConfig"?): gRPC '
                "ignores it silently, so this setting does nothing"
            ],
        ),
        (
            {"healthCheckConfig": {}},
            [
                "service_config.healthCheckConfig: no serviceName: gRPC does not health-check at all; "
                'use "" for the server\'s overall health'
            ],
        ),
        (
            {"loadBalancingPolicy": "nope"},
            [
                'service_config.loadBalancingPolicy: unknown policy "nope"; gRPC refuses the service '
                "config"
            ],
        ),
        (
            {"loadBalancingPolicy": "outlier_detection_experimental"},
            [
                'service_config.loadBalancingPolicy: "outlier_detection_experimental" needs a config: '
                'name it in loadBalancingConfig instead, e.g. [{"outlier_detection_experimental": '
                "{...}}]"
            ],
        ),
        (
            {"loadBalancingConfig": [{"nope": {}}]},
            [
                f"{L}: no policy in this list is one grpcio implements (nope): gRPC refuses the service "
                f"config",
                f'{L}[0]: unknown policy "nope": gRPC skips unknown policies silently',
            ],
        ),
        (
            {"loadBalancingConfig": [{"round_robbin": {}}, {"pick_first": {}}]},
            [
                f'{L}[0]: unknown policy "round_robbin" (did you mean "round_robin"?): gRPC skips '
                f"unknown policies silently"
            ],
        ),
        (
            {"loadBalancingConfig": [{"least_request_experimental": {}}, {"round_robin": {}}]},
            [
                f'{L}[0]: warning: grpcio does not implement "least_request_experimental" (other gRPC '
                f'implementations may): this client skips it and uses "round_robin"'
            ],
        ),
        (
            {"loadBalancingConfig": [{"round_robin": {}, "pick_first": {}}]},
            [
                f"{L}: no policy in this list is one grpcio implements (none named): gRPC refuses the "
                f"service config",
                f'{L}[0]: expected an object naming exactly one policy, like {{"round_robin": {{}}}}, '
                f"got 2 keys (pick_first, round_robin); list alternatives as separate entries",
            ],
        ),
        (
            {"loadBalancingConfig": {"round_robin": {}}},
            [
                f'{L}: expected a list of single-policy objects like [{{"round_robin": {{}}}}], got an '
                f"object"
            ],
        ),
        (
            {"loadBalancingConfig": [{"round_robin": {"x": 1}}]},
            [
                f"{L}[0].round_robin.x: unknown key: gRPC ignores it silently, so this setting does "
                f"nothing"
            ],
        ),
        (
            {"loadBalancingConfig": [{"ring_hash_experimental": {}}]},
            [
                f'{L}[0].ring_hash_experimental: "ring_hash_experimental" picks by a request hash that '
                f'only xDS sets: every RPC fails INTERNAL "hash attribute not present" (measured, '
                f"grpcio 1.85)"
            ],
        ),
        (
            {
                "loadBalancingConfig": [
                    {
                        "outlier_detection_experimental": {
                            "maxEjectionPercent": 101,
                            "interval": "10",
                            "failurePercentageEjection": {},
                            "childPolicy": [{"pick_first": {"shuffleAddressList": 1}}],
                        }
                    }
                ]
            },
            [
                f"{L}[0].outlier_detection_experimental.childPolicy[0].pick_first.shuffleAddressList: "
                f"expected true or false, got 1",
                f'{L}[0].outlier_detection_experimental.interval: {DURATION}, got "10"',
                f"{L}[0].outlier_detection_experimental.maxEjectionPercent: must be at most 100, got "
                f"101",
            ],
        ),
        (
            {
                "loadBalancingConfig": [
                    {"outlier_detection_experimental": {"childPolicy": ROUND_ROBIN}}
                ]
            },
            [
                f"{L}[0].outlier_detection_experimental: warning: neither successRateEjection nor "
                f"failurePercentageEjection: this outlier detection never ejects anything"
            ],
        ),
        (
            {"loadBalancingConfig": ROUND_ROBIN, "loadBalancingPolicy": "pick_first"},
            [
                "service_config.loadBalancingPolicy: warning: ignored: loadBalancingConfig takes "
                "precedence"
            ],
        ),
        (retry(maxAttempts="five"), [f'{R}.maxAttempts: expected an integer, got "five"']),
        (retry(maxAttempts=1), [f"{R}.maxAttempts: must be at least 2, got 1"]),
        (
            retry(maxAttempts=9),
            [f"{R}.maxAttempts: warning: 9 is above gRPC's cap: gRPC makes at most 5 attempts"],
        ),
        (
            retry(retryableStatusCodes=["unavailable"]),
            [
                f'{R}.retryableStatusCodes[0]: status code names are upper case: write "UNAVAILABLE", '
                f'not "unavailable"'
            ],
        ),
        (
            retry(retryableStatusCodes=[14]),
            [
                f"{R}.retryableStatusCodes[0]: grpcio reads status codes by name only: write "
                f'"UNAVAILABLE", not 14'
            ],
        ),
        (
            retry(retryableStatusCodes=["UNAVAILABEL"]),
            [
                f'{R}.retryableStatusCodes[0]: unknown status code "UNAVAILABEL" (did you mean '
                f'"UNAVAILABLE"?)'
            ],
        ),
        (retry(retryableStatusCodes=[]), [f"{R}.retryableStatusCodes: must not be empty"]),
        (
            retry(initialBackoff="0s", maxBackoff=".5s", backoffMultiplier=0),
            [
                f"{R}.backoffMultiplier: must be greater than 0, got 0",
                f'{R}.initialBackoff: must be greater than 0s, got "0s"',
                f'{R}.maxBackoff: {DURATION}, got ".5s"',
            ],
        ),
        (
            {"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 3}}]},
            [
                f"{R}.{field}: required, but missing"
                for field in (
                    "backoffMultiplier",
                    "initialBackoff",
                    "maxBackoff",
                    "retryableStatusCodes",
                )
            ],
        ),
        (
            {"methodConfig": [{"name": [{}], "timeout": "1.0000000001s", "waitForReady": "true"}]},
            [
                f'{M}.timeout: {DURATION}, got "1.0000000001s"',
                f'{M}.waitForReady: expected true or false, got "true"',
            ],
        ),
        (
            {"methodConfig": [{"name": [{"method": "SayHello"}]}]},
            [
                f'{M}.name[0]: method "SayHello" without a service: name the service too (gRPC refuses '
                f"it)"
            ],
        ),
        (
            {
                "methodConfig": [
                    {"name": [{"service": "s"}]},
                    {"name": [{"service": "s", "method": ""}]},
                ]
            },
            [
                "service_config.methodConfig[1].name[0]: duplicate name (s/*): already at "
                "service_config.methodConfig[0].name[0]"
            ],
        ),
        (
            {"methodConfig": [{"name": [{}]}, {"name": [{"service": ""}]}]},
            [
                "service_config.methodConfig[1].name[0]: duplicate name (the default {}): already at "
                "service_config.methodConfig[0].name[0]"
            ],
        ),
        (
            {"methodConfig": [{"timeout": "1s"}]},
            [
                f"{M}.name: missing or empty: this method config applies to no method (gRPC skips it); "
                f"use [{{}}] for every method"
            ],
        ),
        (
            {
                "methodConfig": [
                    {"name": [{}], "retryPolicy": RETRY, "hedgingPolicy": {"maxAttempts": 2}}
                ]
            },
            [
                f"{M}: has both retryPolicy and hedgingPolicy: a method config may have one of them",
                f"{M}.hedgingPolicy: warning: grpcio does not implement hedging: this client ignores "
                f"the policy",
            ],
        ),
        (
            {"retryThrottling": {"maxTokens": 2000, "tokenRatio": 0}},
            [
                "service_config.retryThrottling.maxTokens: must be at most 1000, got 2000",
                "service_config.retryThrottling.tokenRatio: must be greater than 0, got 0",
            ],
        ),
        (
            {"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1234}},
            [
                "service_config.retryThrottling.tokenRatio: warning: gRPC keeps 3 decimal places: "
                "0.1234 is used as 0.123"
            ],
        ),
    ],
)
def test_service_config_problems(service_config, expected):
    assert schema_problems(service_config) == expected


@pytest.mark.parametrize(
    "service_config",
    [
        {"loadBalancingPolicy": "round_robin"},
        {"loadBalancingPolicy": "ROUND_ROBIN"},
        {"loadBalancingConfig": ROUND_ROBIN, "healthCheckConfig": {"serviceName": ""}},
        # An empty name object is the default for every method; null method = the whole service.
        {
            "methodConfig": [
                {"name": [{}], "retryPolicy": {**RETRY, "maxAttempts": "3"}},
                {"name": [{"service": "s", "method": None}], "timeout": "1.5s"},
            ]
        },
    ],
)
def test_valid_spellings_have_no_problem(service_config):
    assert schema_problems(service_config) == []
    assert grpc_parser.check(service_config) == []


def test_a_stale_why_is_a_warning():
    assert schema_problems(
        {"loadBalancingConfig": ROUND_ROBIN}, why={"healthCheckConfig": "health flips"}
    ) == [
        'why.healthCheckConfig: warning: explains "healthCheckConfig", which is not in this profile'
    ]


@pytest.mark.parametrize("name", profiles.shipped())
def test_every_shipped_profile_is_valid_in_both_layers(name):
    problems = profiles.check(profiles.load(name, check=False))
    if name == "recommended-node":
        # grpc-js's outlier_detection, which grpcio skips for the round_robin after it.
        assert [(p.severity, p.path) for p in problems] == [
            ("warning", "service_config.loadBalancingConfig[0]")
        ]
        return
    assert problems == []


# The service-config examples of grpc-chaos issue 8, with gRPC's own reason for each.
GRPC_REASONS = [
    (
        {"loadBalancingPolicy": "nope"},
        "service_config.loadBalancingPolicy",
        'gRPC: unknown LB policy "nope"',
    ),
    (
        {"loadBalancingConfig": [{"nope": {}}]},
        "service_config.loadBalancingConfig",
        "gRPC: No known policies in list: nope",
    ),
    (retry(maxAttempts="five"), f"{R}.maxAttempts", "gRPC: failed to parse number"),
    (
        retry(retryableStatusCodes=["unavailable"]),
        f"{R}.retryableStatusCodes[0]",
        "gRPC: failed to parse status code",
    ),
]


@pytest.mark.parametrize("service_config, path, reason", GRPC_REASONS)
def test_grpcs_own_parser_names_the_problem_in_its_words(service_config, path, reason):
    found = {p.path: p.message for p in grpc_parser.check(service_config)}
    assert found.get(path) == reason, found


def test_grpc_ignores_a_misspelled_key_so_only_the_schema_layer_catches_it():
    config = {"loadBalancingConfig": ROUND_ROBIN, "healthCheckConfg": {"serviceName": "x"}}
    assert grpc_parser.check(config) == []
    assert [p.path for p in profiles.check({"name": "t", "service_config": config})] == [
        "service_config.healthCheckConfg"
    ]


def test_a_problem_both_layers_find_is_one_line_in_grpcs_words_then_the_schemas():
    problems = profiles.check({"name": "t", "service_config": retry(maxAttempts="five")})
    assert [str(p) for p in problems] == [
        f'{R}.maxAttempts: gRPC: failed to parse number (expected an integer, got "five")'
    ]
    assert problems[0].source == "grpc"


def test_nested_policy_errors_from_grpc_land_on_the_policy_grpc_chose():
    config = {
        "loadBalancingConfig": [
            {
                "outlier_detection_experimental": {
                    "childPolicy": [{"zz": {}}, {"pick_first": {"shuffleAddressList": 1}}],
                    "maxEjectionPercent": 101,
                }
            }
        ]
    }
    assert {(p.path, p.message) for p in grpc_parser.check(config)} == {
        (
            f"{L}[0].outlier_detection_experimental.childPolicy[1].pick_first.shuffleAddressList",
            "gRPC: is not a boolean",
        ),
        (f"{L}[0].outlier_detection_experimental.maxEjectionPercent", "gRPC: value must be <= 100"),
    }


def test_a_config_grpc_accepts_but_cannot_use_is_a_problem_in_grpcs_words():
    problems = grpc_parser.check({"loadBalancingConfig": [{"ring_hash_experimental": {}}]})
    assert [str(p) for p in problems] == [
        "service_config: gRPC: every RPC fails INTERNAL: hash attribute not present"
    ]


def test_the_policy_table_matches_the_installed_grpcio():
    """A name the table says grpcio implements is known to it; the others make gRPC refuse
    a list that holds nothing else."""
    names = sorted(lb_policies.POLICIES)
    answers = grpc_parser.check_many([{"loadBalancingConfig": [{name: {}}]} for name in names])
    for name, problems in zip(names, answers, strict=False):
        reasons = [p.message for p in problems]
        unknown = f"gRPC: No known policies in list: {name}"
        if lb_policies.POLICIES[name].in_grpcio:
            assert unknown not in reasons, name
        else:
            assert reasons == [unknown], name


def test_when_grpcs_parser_cannot_run_the_check_says_so(monkeypatch):
    monkeypatch.setattr(grpc_parser, "PROBE_PROCESS_TIMEOUT_S", 0.001)
    monkeypatch.setattr(grpc_parser, "_cache", {})
    [problem] = grpc_parser.check({"loadBalancingConfig": ROUND_ROBIN})
    assert problem.severity == profiles.WARNING
    assert str(problem) == (
        "service_config: warning: gRPC's own parser could not be run (no "
        "answer within 0.001 s): only the schema was checked"
    )


def test_every_channel_argument_in_the_table_is_in_the_installed_grpcio():
    binary = Path(grpc._cython.cygrpc.__file__).read_bytes()
    # NUL-terminated: a name must be a whole C string, not the start of a longer one.
    missing = [name for name in channel_args.CHANNEL_ARGS if name.encode() + b"\0" not in binary]
    assert not missing, f"not in {grpc._cython.cygrpc.__file__}: {missing}"
    in_binary = {m.decode() for m in re.findall(rb"\0(grpc\.[A-Za-z0-9_.-]+)\0", binary)}
    others = in_binary - set(channel_args.CHANNEL_ARGS)
    symbols = {n for n in others if n.startswith(("grpc._cython", "grpc.internal"))}
    print(
        f"\n{len(channel_args.CHANNEL_ARGS)} channel arguments in the table, all in the "
        f"binary; {len(others)} other grpc.* strings in it: {len(symbols)} Python symbols "
        f"and grpc.internal.*, the rest metrics, proto names, test-only and pointer-valued "
        f"arguments: {sorted(others - symbols)}"
    )


def test_a_whole_check_takes(capsys):
    """Prints the time of one whole check (both layers, a fresh gRPC parser process)."""
    grpc_parser._cache.clear()
    started = time.monotonic()
    assert profiles.check(profiles.load("recommended", check=False)) == []
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nwhole check of the recommended profile: {elapsed * 1000:.0f} ms")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.profiles", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


def test_cli_check_valid_profiles_exits_0(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps({"name": "seed", "service_config": {"loadBalancingPolicy": "round_robin"}})
    )
    result = run_cli("check", "recommended", str(seed))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "recommended: ok (policy round_robin (under outlier_detection_experimental), "
        "8 channel options)",
        f"{seed}: ok (policy round_robin (legacy loadBalancingPolicy), 0 channel options)",
    ]


def test_cli_check_prints_every_problem_prefixed_with_the_file_and_exits_4(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "name": "bad",
                "service_config": {"loadBalancingConfig": [{"nope": {}}]},
                "channel_options": {"grpc.keepalive_time_ms": "20000"},
            }
        )
    )
    result = run_cli("check", str(bad), "naive", str(tmp_path / "missing.json"))
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'missing.json'}: no profile '{tmp_path / 'missing.json'}': not a file, "
        "and not one of the shipped profiles (naive, outlier, pick_first, recommended, "
        "recommended-go, recommended-java, recommended-node)",
        f'{bad}: channel_options["grpc.keepalive_time_ms"]: expected an integer, got "20000": '
        f"write 20000 without quotes",
        f"{bad}: {L}: gRPC: No known policies in list: nope (no policy in this list is one "
        f"grpcio implements (nope): gRPC refuses the service config)",
        f'{bad}: {L}[0]: unknown policy "nope": gRPC skips unknown policies silently',
        "naive: ok (policy round_robin, 0 channel options)",
    ]


@pytest.mark.parametrize("args", [(), ("nope",), ("check",)])
def test_cli_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2 and "usage:" in result.stderr, result.stderr


def test_cli_list_names_each_shipped_profile_with_its_description():
    result = run_cli("list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == profiles.shipped()
    assert "round_robin over TLS" in lines[0]


def test_grpc_js_outlier_detection_durations_must_be_objects():
    """grpc-js 1.14 validates its outlier_detection durations as {seconds, nanos} objects
    and, given gRPC's "0.5s" strings, skips the whole policy without a word."""
    config = {
        "child_policy": [{"round_robin": {}}],
        "interval": "0.5s",
        "base_ejection_time": {"seconds": 1, "nanos": 0},
    }
    problems = profiles.check(
        profiles.parse(
            {
                "name": "t",
                "service_config": {
                    "loadBalancingConfig": [{"outlier_detection": config}, {"round_robin": {}}]
                },
            },
            check=False,
        )
    )
    errors = [p for p in problems if p.severity != "warning"]
    assert [p.path for p in errors] == [
        "service_config.loadBalancingConfig[0].outlier_detection.interval"
    ]
    assert "grpc-js reads this duration as an object" in errors[0].message
