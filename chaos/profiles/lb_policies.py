"""Load-balancing policies: which ones exist, which this grpcio implements, their configs,
and which one a service config selects.

gRPC reads a policy from three places, first match wins (grpc-core's client channel):

    service config "loadBalancingConfig"   list of {"<policy>": {config}}; the FIRST
        |                                  entry this grpcio implements is used, the
        |                                  entries it does not know are skipped silently
    service config "loadBalancingPolicy"   legacy: a policy name (any case) that needs no
        |                                  config, e.g. "round_robin"
    channel option "grpc.lb_policy_name"   a name, as above (ignored silently if unknown)
        |
    pick_first                             gRPC's default

Policy names are the JSON names of grpc/service_config/service_config.proto
(grpc/grpc-proto). Which of them grpcio implements was measured against grpcio 1.85 (an
unknown name makes gRPC refuse a list holding nothing else: "No known policies in list");
``tests/test_profile_check.py`` re-measures it against the installed grpcio.

Usable here means usable by a client that resolves plain DNS: the xDS policies and
priority/weighted_target need addresses that only an xDS resolver provides (measured:
priority_experimental fails every RPC with "empty address list"), ring_hash needs a
request hash only xDS sets (measured: every RPC fails INTERNAL "hash attribute not
present", also with requestHashHeader), rls needs a route lookup server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaos.profiles import json_fields as f
from chaos.profiles.problems import (
    WARNING,
    Problem,
    did_you_mean,
    index_path,
    json_type,
    key_path,
    quote,
)

Check = Callable[[Any, str], list[Problem]]

NEEDS_XDS = "needs the addresses an xDS resolver provides; a DNS-resolved client cannot use it"
# ring_hash: the lower and upper bounds gRPC accepts for minRingSize and maxRingSize
# (grpc-core's ring_hash config parser: "must be in the range [1, 8388608]").
RING_SIZE_MAX = 8_388_608


@dataclass(frozen=True)
class PolicyInfo:
    """What this package knows about one policy name."""

    in_grpcio: bool  # grpcio (grpc-core) implements it
    check: Check | None = None  # its config's check (None: not checked here)
    child_field: str | None = None  # the field holding its child policy list (wrappers)
    needs_config: bool = False  # gRPC refuses it in loadBalancingPolicy (no config)
    unusable: str | None = None  # why a DNS-resolved client cannot use it


def check_list(value: Any, path: str) -> list[Problem]:
    """Check a loadBalancingConfig-shaped list (also used for every ``childPolicy``)."""
    if not isinstance(value, list):
        return f.problem(
            path,
            "expected a list of single-policy objects like "
            f'[{{"round_robin": {{}}}}], got {json_type(value)}',
        )
    if not value:
        return f.problem(path, "empty: gRPC refuses a policy list without a policy it knows")
    chosen = chosen_index(value)
    problems: list[Problem] = []
    for i, entry in enumerate(value):
        problems += _check_entry(entry, index_path(path, i), value, chosen, i == chosen)
    if chosen is None:
        names = " ".join(next(iter(e)) for e in value if isinstance(e, dict) and len(e) == 1)
        problems.append(
            Problem(
                path,
                f"no policy in this list is one grpcio implements "
                f"({names or 'none named'}): gRPC refuses the service "
                f"config",
            )
        )
    return problems


def _check_entry(
    entry: Any, path: str, entries: list, chosen: int | None, is_chosen: bool
) -> list[Problem]:
    if not isinstance(entry, dict) or len(entry) != 1:
        what = (
            f"{len(entry)} keys ({', '.join(sorted(entry))})"
            if isinstance(entry, dict)
            else json_type(entry)
        )
        return f.problem(
            path,
            f"expected an object naming exactly one policy, like "
            f'{{"round_robin": {{}}}}, got {what}; list alternatives as '
            f"separate entries",
        )
    name, config = next(iter(entry.items()))
    info = POLICIES.get(name)
    problems: list[Problem] = []
    if info is None:
        problems.append(
            Problem(
                path,
                f"unknown policy {quote(name)}"
                f"{did_you_mean(name, POLICIES)}: gRPC skips unknown "
                f"policies silently",
            )
        )
    elif not info.in_grpcio and chosen is not None:
        fallback = next(iter(entries[chosen]))
        problems.append(
            Problem(
                path,
                f"grpcio does not implement {quote(name)} (other gRPC "
                f"implementations may): this client skips it and uses "
                f"{quote(fallback)}",
                WARNING,
            )
        )
    if not isinstance(config, dict):
        problems += f.problem(
            key_path(path, name),
            f"expected an object (the policy's config; {{}} for none), got {json_type(config)}",
        )
    elif info is not None and info.check is not None:
        problems += info.check(config, key_path(path, name))
    if is_chosen and info is not None and info.unusable:
        problems.append(Problem(key_path(path, name), f"{quote(name)} {info.unusable}"))
    return problems


def chosen_index(entries: Any) -> int | None:
    """The index of the entry gRPC uses: the first well-formed one this grpcio implements."""
    if not isinstance(entries, list):
        return None
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and len(entry) == 1:
            name, config = next(iter(entry.items()))
            if name in POLICIES and POLICIES[name].in_grpcio and isinstance(config, dict):
                return i
    return None


def check_name(value: Any, path: str, where: str) -> list[Problem]:
    """Check a bare policy name (legacy ``loadBalancingPolicy``, ``grpc.lb_policy_name``);
    gRPC lower-cases it first."""
    if not isinstance(value, str):
        return f.problem(path, f"expected a policy name (a string), got {quote(value)}")
    name = value.lower()
    info = POLICIES.get(name)
    if info is None or not info.in_grpcio:
        known = [n for n, i in POLICIES.items() if i.in_grpcio and not i.needs_config]
        return f.problem(path, f"unknown policy {quote(value)}{did_you_mean(name, known)}; {where}")
    if info.needs_config:
        return f.problem(
            path,
            f"{quote(name)} needs a config: name it in loadBalancingConfig "
            f"instead, e.g. [{{{quote(name)}: {{...}}}}]",
        )
    if info.unusable:
        return f.problem(path, f"{quote(name)} {info.unusable}")
    return []


@dataclass(frozen=True)
class DeclaredPolicy:
    """The policy a profile's settings declare, for explanations only (never to decide
    what a scenario does: a scenario observes what the client does).

    ``name`` is the policy that picks backends (e.g. ``round_robin``), ``wrappers`` the
    policies around it, outermost first (e.g. ``("outlier_detection_experimental",)``),
    ``source`` where it was declared: ``loadBalancingConfig``, ``loadBalancingPolicy``
    (legacy), ``grpc.lb_policy_name``, ``default`` (nothing declared: pick_first) or
    ``invalid`` (no usable policy; ``name`` is None). ``str()`` gives a sentence part,
    e.g. ``round_robin (under outlier_detection_experimental)``.
    """

    name: str | None
    wrappers: tuple[str, ...] = ()
    source: str = "loadBalancingConfig"

    def __str__(self) -> str:
        if self.name is None:
            return "no usable policy (the service config's policy is invalid)"
        notes = [f"under {p}" for p in reversed(self.wrappers)]
        notes += {
            "loadBalancingPolicy": ["legacy loadBalancingPolicy"],
            "grpc.lb_policy_name": ["from grpc.lb_policy_name"],
            "default": ["gRPC's default: no policy declared"],
        }.get(self.source, [])
        return f"{self.name} ({', '.join(notes)})" if notes else self.name


def declared(
    service_config: Mapping[str, Any] | None, channel_options: Mapping[str, Any]
) -> DeclaredPolicy:
    """Which policy gRPC's precedence (module docstring) selects for these settings."""
    config = service_config or {}
    if "loadBalancingConfig" in config:
        return _declared_in_list(config["loadBalancingConfig"], ())
    for source, value in (
        ("loadBalancingPolicy", config.get("loadBalancingPolicy")),
        ("grpc.lb_policy_name", channel_options.get("grpc.lb_policy_name")),
    ):
        if isinstance(value, str) and value:
            valid = not check_name(value, "", "")
            return DeclaredPolicy(
                value.lower() if valid else None, (), source if valid else "invalid"
            )
    return DeclaredPolicy("pick_first", (), "default")


def _declared_in_list(entries: Any, wrappers: tuple[str, ...]) -> DeclaredPolicy:
    chosen = chosen_index(entries)
    if chosen is None:
        return DeclaredPolicy(None, wrappers, "invalid")
    name, config = next(iter(entries[chosen].items()))
    child_field = POLICIES[name].child_field
    if child_field and child_field in config:
        return _declared_in_list(config[child_field], wrappers + (name,))
    return DeclaredPolicy(name, wrappers)


def chosen_configs(service_config: Mapping[str, Any] | None) -> list[tuple[str, dict]]:
    """The (name, config) pairs gRPC uses, outermost first, following child policies."""
    chain: list[tuple[str, dict]] = []
    entries: Any = (service_config or {}).get("loadBalancingConfig")
    while (chosen := chosen_index(entries)) is not None:
        name, config = next(iter(entries[chosen].items()))
        chain.append((name, config))
        entries = config.get(POLICIES[name].child_field or "")
    return chain


def _outlier_extra(config: Mapping[str, Any], path: str) -> list[Problem]:
    if "successRateEjection" in config or "failurePercentageEjection" in config:
        return []
    return [
        Problem(
            path,
            "neither successRateEjection nor failurePercentageEjection: this "
            "outlier detection never ejects anything",
            WARNING,
        )
    ]


def _ring_extra(config: Mapping[str, Any], path: str) -> list[Problem]:
    low = f.integer_value(config.get("minRingSize"))
    high = f.integer_value(config.get("maxRingSize"))
    if low is not None and high is not None and high < low:
        return f.problem(
            key_path(path, "maxRingSize"),
            f"must not be smaller than minRingSize ({low}), got {high}",
        )
    return []


_PERCENT = f.integer(0, 100)
_EJECTION_COMMON = {
    "enforcementPercentage": _PERCENT,
    "minimumHosts": f.integer(),
    "requestVolume": f.integer(),
}
_OUTLIER = f.obj(
    {
        "interval": f.duration(),
        "baseEjectionTime": f.duration(),
        "maxEjectionTime": f.duration(),
        "maxEjectionPercent": _PERCENT,
        "successRateEjection": f.obj({"stdevFactor": f.integer(), **_EJECTION_COMMON}),
        "failurePercentageEjection": f.obj({"threshold": _PERCENT, **_EJECTION_COMMON}),
        "childPolicy": check_list,
    },
    required=["childPolicy"],
    extra=_outlier_extra,
)


# grpc-js's outlier detection: its own name and snake_case fields (load-balancer-outlier-
# detection.ts in @grpc/grpc-js 1.14), the same policy as outlier_detection_experimental.
# Its durations are {"seconds": N, "nanos": N} objects, not proto3 JSON's "0.5s" strings:
# a string fails its validation, and grpc-js then skips the whole policy without a word
# (found by the node driver: a profile with "interval": "0.5s" never ejected a backend).
def _js_duration(value: Any, path: str) -> list[Problem]:
    if isinstance(value, str):
        return f.problem(
            path,
            f"grpc-js reads this duration as an object, e.g. "
            f'{{"seconds": 0, "nanos": 500000000}}, not {quote(value)}: with a string it '
            "rejects the policy and silently uses the next one listed",
        )
    if (
        not isinstance(value, dict)
        or set(value) != {"seconds", "nanos"}
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
        or not (value["seconds"] >= 0 and 0 <= value["nanos"] <= 999_999_999)
    ):
        return f.problem(
            path, f'expected {{"seconds": N, "nanos": 0..999999999}}, got {json_type(value)}'
        )
    return []


_EJECTION_COMMON_JS = {
    "enforcement_percentage": _PERCENT,
    "minimum_hosts": f.integer(),
    "request_volume": f.integer(),
}
_OUTLIER_JS = f.obj(
    {
        "interval": _js_duration,
        "base_ejection_time": _js_duration,
        "max_ejection_time": _js_duration,
        "max_ejection_percent": _PERCENT,
        "success_rate_ejection": f.obj({"stdev_factor": f.integer(), **_EJECTION_COMMON_JS}),
        "failure_percentage_ejection": f.obj({"threshold": _PERCENT, **_EJECTION_COMMON_JS}),
        "child_policy": check_list,
    },
    required=["child_policy"],
)

POLICIES: dict[str, PolicyInfo] = {
    # Implemented by grpcio and usable with DNS resolution.
    "pick_first": PolicyInfo(True, f.obj({"shuffleAddressList": f.boolean})),
    "round_robin": PolicyInfo(True, f.obj({})),
    "weighted_round_robin": PolicyInfo(
        True,
        f.obj(
            {
                "enableOobLoadReport": f.boolean,
                "oobReportingPeriod": f.duration(),
                "blackoutPeriod": f.duration(),
                "weightExpirationPeriod": f.duration(),
                "weightUpdatePeriod": f.duration(),
                "errorUtilizationPenalty": f.number(at_least=0),
            }
        ),
    ),
    "outlier_detection_experimental": PolicyInfo(True, _OUTLIER, "childPolicy", needs_config=True),
    "grpclb": PolicyInfo(
        True,
        f.obj(
            {
                "childPolicy": check_list,
                "serviceName": f.string,
                "initialFallbackTimeout": f.duration(),
            }
        ),
        "childPolicy",
    ),
    # Implemented by grpcio, not usable by a DNS-resolved client (module docstring).
    "ring_hash_experimental": PolicyInfo(
        True,
        f.obj(
            {
                "minRingSize": f.integer(1, RING_SIZE_MAX),
                "maxRingSize": f.integer(1, RING_SIZE_MAX),
                "requestHashHeader": f.string,
            },
            extra=_ring_extra,
        ),
        unusable="picks by a request hash that only xDS sets: every RPC fails INTERNAL "
        '"hash attribute not present" (measured, grpcio 1.85)',
    ),
    "priority_experimental": PolicyInfo(True, needs_config=True, unusable=NEEDS_XDS),
    "weighted_target_experimental": PolicyInfo(True, needs_config=True, unusable=NEEDS_XDS),
    "rls_experimental": PolicyInfo(
        True, needs_config=True, unusable="needs a route lookup (RLS) server"
    ),
    "xds_cluster_manager_experimental": PolicyInfo(True, needs_config=True, unusable=NEEDS_XDS),
    "cds_experimental": PolicyInfo(True, needs_config=True, unusable=NEEDS_XDS),
    "xds_cluster_impl_experimental": PolicyInfo(True, needs_config=True, unusable=NEEDS_XDS),
    "xds_override_host_experimental": PolicyInfo(True, needs_config=True, unusable=NEEDS_XDS),
    "xds_wrr_locality_experimental": PolicyInfo(True, needs_config=True, unusable=NEEDS_XDS),
    # grpc-js's name for outlier detection (not in the published schema).
    "outlier_detection": PolicyInfo(False, _OUTLIER_JS, "child_policy", needs_config=True),
    # In the published schema, not implemented by grpcio (grpc-java / grpc-go have some).
    "least_request_experimental": PolicyInfo(False, f.obj({"choiceCount": f.integer(2)})),
    "random_subsetting_experimental": PolicyInfo(
        False, f.obj({"subsetSize": f.integer(1), "childPolicy": check_list})
    ),
    "override_host_experimental": PolicyInfo(False),
    "xds_cluster_resolver_experimental": PolicyInfo(False),
    "lrs_experimental": PolicyInfo(False),
    "eds_experimental": PolicyInfo(False),
    "xds_experimental": PolicyInfo(False),
    "xds": PolicyInfo(False),
}

GRPCIO_POLICIES = sorted(name for name, info in POLICIES.items() if info.in_grpcio)
