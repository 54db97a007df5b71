"""The profile file's own fields: the JSON object around the service config and the
channel options::

    {"name": "recommended", "description": "...",
     "service_config": {...} | null,          # gRPC service config (null = none: pick_first)
     "channel_options": {"grpc.keepalive_time_ms": 500, ...},
     "client_cert": false,                     # optional: present the fleet's client cert
     "why": {"grpc.keepalive_time_ms": "the fault this setting answers", ...}}

Each ``why`` key names a setting of the profile: a channel option, or a key found in the
service config (``retryPolicy``, ``healthCheckConfig``, a policy name...). One that names
nothing in the profile is a warning: the explanation is stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chaos.profiles.problems import WARNING, Problem, did_you_mean, json_type, key_path, quote

FIELDS = ("name", "description", "service_config", "channel_options", "client_cert", "why")


def check(data: Any) -> list[Problem]:
    """Every problem of the profile's own fields (not inside service_config or
    channel_options, which have their own checks)."""
    if not isinstance(data, dict):
        return [Problem("", f"expected a JSON object, got {json_type(data)}")]
    problems = [
        Problem(
            key_path("", key),
            f"unknown key{did_you_mean(key, FIELDS)}: a profile has {', '.join(FIELDS)}",
        )
        for key in data
        if key not in FIELDS
    ]
    if not isinstance(data.get("name"), str) or not data["name"]:
        problems.append(
            Problem("name", f"must be a non-empty string, got {quote(data.get('name'))}")
        )
    problems += _typed(data, "description", str, "a string")
    problems += _typed(data, "service_config", dict, "an object or null")
    problems += _typed(data, "channel_options", dict, "an object (option name -> value)")
    problems += _typed(data, "client_cert", bool, "true or false")
    problems += _typed(data, "why", dict, "an object (setting -> the fault it answers)")
    if not problems:
        problems += _why(data)
    return problems


def _typed(data: dict, key: str, kind: type, what: str) -> list[Problem]:
    value = data.get(key)
    if value is None or isinstance(value, kind):
        return []
    return [Problem(key, f"must be {what}, got {json_type(value)}")]


def _why(data: dict) -> list[Problem]:
    settings = set(data.get("channel_options") or {}) | set(_keys(data.get("service_config")))
    problems = []
    for key, reason in (data.get("why") or {}).items():
        path = key_path("why", key)
        if not isinstance(reason, str) or not reason.strip():
            problems.append(
                Problem(
                    path,
                    f"must be a sentence naming the fault this setting "
                    f"answers, got {quote(reason)}",
                )
            )
        elif key not in settings:
            problems.append(
                Problem(
                    path,
                    f"explains {quote(key)}, which is not in this "
                    f"profile{did_you_mean(key, settings)}",
                    WARNING,
                )
            )
    return problems


def _keys(value: Any) -> Iterator[str]:
    """Every object key at any depth of a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)
