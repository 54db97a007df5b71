"""The service config, checked against the schema gRPC publishes
(grpc/service_config/service_config.proto in grpc/grpc-proto, in its proto3 JSON form)
and the rules grpc-core applies when it parses one.

What is checked, by field (camelCase JSON names)::

    loadBalancingConfig    lb_policies.check_list (first policy grpcio implements wins)
    loadBalancingPolicy    legacy policy name, any case, one that needs no config
    methodConfig[]         name[]{service, method}: method needs a service; {} = all methods;
                           a name appears once in the whole config; no name = applies to
                           nothing (an error: gRPC skips it silently)
                           waitForReady, timeout, maxRequestMessageBytes,
                           maxResponseMessageBytes, retryPolicy | hedgingPolicy (not both)
    retryThrottling        maxTokens in (0, 1000], tokenRatio > 0
    healthCheckConfig      serviceName (without it gRPC does not health-check at all)
    connectionScaling      maxConnectionsPerSubchannel

Decisions where gRPC is lenient:

- ``maxAttempts`` above 5 is a *warning*: gRPC (every implementation) uses 5.
- ``hedgingPolicy`` is checked, and warned about: grpcio does not implement hedging and
  ignores it (grpc-java does not).
- ``retryThrottling.maxTokens`` above 1000 is an error, as gRFC A6 and grpc-go have it,
  although grpc-core accepts it.
- Status codes: gRPC's names in upper case; grpcio also refuses the numbers proto3 JSON
  allows, so a number is an error naming the name to use.
- Unknown keys anywhere are errors with a "did you mean": gRPC ignores them silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos.history import STATUS_CODES
from chaos.profiles import json_fields as f
from chaos.profiles import lb_policies
from chaos.profiles.problems import (
    WARNING,
    Problem,
    did_you_mean,
    index_path,
    json_type,
    key_path,
    quote,
)

# service_config.proto, RetryPolicy and HedgingPolicy: "Any value greater than 5 will be
# treated as if it were 5."
MAX_ATTEMPTS_CAP = 5
# gRFC A6 (and grpc-go): retryThrottling.maxTokens must be in (0, 1000].
MAX_TOKENS_LIMIT = 1000
# service_config.proto, tokenRatio: "Up to 3 decimal places are supported."
TOKEN_RATIO_DECIMALS = 3


def status_code(value: Any, path: str) -> list[Problem]:
    if isinstance(value, str) and value in STATUS_CODES:
        return []
    if isinstance(value, str) and value.upper() in STATUS_CODES:
        return f.problem(
            path,
            f"status code names are upper case: write {quote(value.upper())}, not {quote(value)}",
        )
    if isinstance(value, int) and not isinstance(value, bool):
        name = next((n for n, code in STATUS_CODES.items() if code == value), None)
        fix = f"write {quote(name)}" if name else "no status code has this number"
        return f.problem(path, f"grpcio reads status codes by name only: {fix}, not {value}")
    return f.problem(
        path, f"unknown status code {quote(value)}{did_you_mean(str(value).upper(), STATUS_CODES)}"
    )


def _max_attempts(value: Any, path: str) -> list[Problem]:
    problems = f.integer(2)(value, path)
    if not problems and int(value) > MAX_ATTEMPTS_CAP:
        problems.append(
            Problem(
                path,
                f"{value} is above gRPC's cap: gRPC makes at most {MAX_ATTEMPTS_CAP} attempts",
                WARNING,
            )
        )
    return problems


_RETRY_POLICY = f.obj(
    {
        "maxAttempts": _max_attempts,
        "initialBackoff": f.duration(positive=True),
        "maxBackoff": f.duration(positive=True),
        "backoffMultiplier": f.number(greater_than=0),
        "retryableStatusCodes": f.list_of(status_code, non_empty=True),
        # gRFC A6 amendment; grpc-core reads it when grpc.experimental.enable_hedging is set.
        "perAttemptRecvTimeout": f.duration(positive=True),
    },
    required=[
        "maxAttempts",
        "initialBackoff",
        "maxBackoff",
        "backoffMultiplier",
        "retryableStatusCodes",
    ],
)


def _hedging_policy(value: Any, path: str) -> list[Problem]:
    check = f.obj(
        {
            "maxAttempts": _max_attempts,
            "hedgingDelay": f.duration(),
            "nonFatalStatusCodes": f.list_of(status_code),
        },
        required=["maxAttempts"],
    )
    return check(value, path) + [
        Problem(path, "grpcio does not implement hedging: this client ignores the policy", WARNING)
    ]


def _method_config_extra(config: Mapping[str, Any], path: str) -> list[Problem]:
    if "retryPolicy" in config and "hedgingPolicy" in config:
        return f.problem(
            path, "has both retryPolicy and hedgingPolicy: a method config may have one of them"
        )
    if not config.get("name"):
        return f.problem(
            key_path(path, "name"),
            "missing or empty: this method config "
            "applies to no method (gRPC skips it); "
            "use [{}] for every method",
        )
    return []


def _nullable_string(value: Any, path: str) -> list[Problem]:
    # service_config.proto, MethodConfig.Name: "value "", value `null`, and not present
    # are the same".
    return [] if value is None else f.string(value, path)


def _name(value: Any, path: str) -> list[Problem]:
    problems = f.obj({"service": _nullable_string, "method": _nullable_string})(value, path)
    if not problems and not value.get("service") and value.get("method"):
        problems += f.problem(
            path,
            f"method {quote(value['method'])} without a service: "
            f"name the service too (gRPC refuses it)",
        )
    return problems


_METHOD_CONFIG = f.obj(
    {
        "name": f.list_of(_name),
        "waitForReady": f.boolean,
        "timeout": f.duration(),
        "maxRequestMessageBytes": f.integer(),
        "maxResponseMessageBytes": f.integer(),
        "retryPolicy": _RETRY_POLICY,
        "hedgingPolicy": _hedging_policy,
    },
    extra=_method_config_extra,
)


def _method_names(configs: list, path: str) -> list[Problem]:
    """Each name (service/method pair; an empty one is the default for all) once."""
    seen: dict[tuple[str, str], str] = {}
    problems = []
    for i, config in enumerate(configs):
        names = config.get("name") if isinstance(config, dict) else None
        for j, name in enumerate(names if isinstance(names, list) else []):
            if not isinstance(name, dict):
                continue
            key = (name.get("service") or "", name.get("method") or "")
            here = index_path(key_path(index_path(path, i), "name"), j)
            if key in seen:
                what = "/".join(key) + ("" if key[1] else "*") if key[0] else "the default {}"
                problems += f.problem(here, f"duplicate name ({what}): already at {seen[key]}")
            seen.setdefault(key, here)
    return problems


def _method_configs(value: Any, path: str) -> list[Problem]:
    problems = f.list_of(_METHOD_CONFIG)(value, path)
    return problems + (_method_names(value, path) if isinstance(value, list) else [])


def _retry_throttling(value: Any, path: str) -> list[Problem]:
    problems = f.obj(
        {"maxTokens": f.integer(1, MAX_TOKENS_LIMIT), "tokenRatio": f.number(greater_than=0)},
        required=["maxTokens", "tokenRatio"],
    )(value, path)
    ratio = f.number_value(value.get("tokenRatio")) if isinstance(value, dict) else None
    if not problems and ratio is not None and ratio != round(ratio, TOKEN_RATIO_DECIMALS):
        problems.append(
            Problem(
                key_path(path, "tokenRatio"),
                f"gRPC keeps {TOKEN_RATIO_DECIMALS} decimal places: "
                f"{quote(value['tokenRatio'])} is used as "
                f"{round(ratio, TOKEN_RATIO_DECIMALS)}",
                WARNING,
            )
        )
    return problems


def _health_check_config(value: Any, path: str) -> list[Problem]:
    problems = f.obj({"serviceName": f.string})(value, path)
    if not problems and "serviceName" not in value:
        problems += f.problem(
            path,
            "no serviceName: gRPC does not health-check at all; "
            'use "" for the server\'s overall health',
        )
    return problems


def _connection_scaling(value: Any, path: str) -> list[Problem]:
    return f.obj({"maxConnectionsPerSubchannel": f.integer()})(value, path) + [
        Problem(
            path,
            "grpcio reads it only when the environment variable GRPC_EXPERIMENTAL_"
            "MAX_CONCURRENT_STREAMS_CONNECTION_SCALING is true",
            WARNING,
        )
    ]


def _legacy_policy(value: Any, path: str) -> list[Problem]:
    return lb_policies.check_name(value, path, "gRPC refuses the service config")


def _both_policies(config: Mapping[str, Any], path: str) -> list[Problem]:
    if "loadBalancingConfig" in config and "loadBalancingPolicy" in config:
        return [
            Problem(
                key_path(path, "loadBalancingPolicy"),
                "ignored: loadBalancingConfig takes precedence",
                WARNING,
            )
        ]
    return []


_SERVICE_CONFIG = f.obj(
    {
        "loadBalancingConfig": lb_policies.check_list,
        "loadBalancingPolicy": _legacy_policy,
        "methodConfig": _method_configs,
        "retryThrottling": _retry_throttling,
        "healthCheckConfig": _health_check_config,
        "connectionScaling": _connection_scaling,
    }
)


def check(config: Any, path: str = "service_config") -> list[Problem]:
    """Every problem of a service config (a JSON object), each with its path."""
    if not isinstance(config, dict):
        return f.problem(path, f"expected an object or null, got {json_type(config)}")
    return _SERVICE_CONFIG(config, path) + _both_policies(config, path)
