"""The settings of a profile the audit mutates, and each one's mutation.

A setting is named as the advice catalogue (chaos/verdicts/advice.py CATALOGUE) names it —
the key scenarios write in ``answers=`` — so the scenarios it answers are found by that
name. Settings and mutations::

    each channel option                  removed (the implementation's default)
    round_robin / loadBalancingConfig    the policy replaced by pick_first, gRPC's default
                                         (inside a wrapper such as outlier detection, only
                                         the child; else loadBalancingConfig dropped)
    outlierDetection                     the outlier_detection_experimental entry unwrapped
                                         to its child policy
    healthCheckConfig, retryThrottling   removed
    retryPolicy, hedgingPolicy,          removed from that methodConfig (one setting per
    timeout, waitForReady                methodConfig that has it)

A setting no advice key names is still mutated when some scenarios exercise it by a related
key (RELATED); else it is *not covered*.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from chaos.profiles import lb_policies
from chaos.profiles.model import Profile

OUTLIER = "outlier_detection_experimental"
# Settings that answer no check by their own name, and the advice keys whose scenarios
# exercise them — why each: the same mechanism is what those checks measure.
RELATED: dict[str, tuple[str, ...]] = {
    # gRPC's documented keepalive ping deadline: the checks that time a hung backend out.
    "grpc.keepalive_timeout_ms": ("grpc.keepalive_time_ms", "grpc.http2.ping_timeout_ms"),
    # Retries on/off, the retry budget, hedging: what the retry scenarios measure.
    "grpc.enable_retries": ("retryPolicy",),
    "retryThrottling": ("retryPolicy",),
    "hedgingPolicy": ("retryPolicy",),
    "grpc.max_connection_age_ms": ("server.max_connection_age",),
    # The policy by channel option: what the round_robin checks measure.
    "grpc.lb_policy_name": ("round_robin",),
    # grpc-core's minimum connect timeout: the reconnect checks.
    "grpc.min_reconnect_backoff_ms": (
        "grpc.initial_reconnect_backoff_ms",
        "grpc.max_reconnect_backoff_ms",
    ),
}
_METHOD_FIELDS = ("retryPolicy", "hedgingPolicy", "timeout", "waitForReady")


@dataclass(frozen=True)
class Setting:
    """One setting: ``id`` unique in the profile (``methodConfig[1].retryPolicy``,
    ``channel_options.grpc.keepalive_time_ms``), ``name`` the advice key, ``value`` as the
    profile has it, ``mutation`` in words, and ``mutate`` the profile data without it."""

    id: str
    name: str
    value: Any
    mutation: str
    mutate: Callable[[dict], dict]

    @property
    def keys(self) -> tuple[str, ...]:
        """The advice keys whose scenarios exercise this setting."""
        return (self.name, *RELATED.get(self.name, ()))

    @property
    def label(self) -> str:
        """The name with where it is when the name alone is ambiguous (method configs)."""
        if self.id.startswith("methodConfig["):
            return f"{self.name} ({self.id.rsplit('.', 1)[0]})"
        return self.name

    def value_text(self) -> str:
        text = json.dumps(self.value, separators=(",", ":"))
        return text if len(text) <= 60 else text[:57] + "..."


def _edit(change: Callable[[dict], None]) -> Callable[[dict], dict]:
    """A mutation: a deep copy of the profile data, changed; never the original."""

    def mutate(data: dict) -> dict:
        copied = copy.deepcopy(data)
        change(copied)
        return copied

    return mutate


def _service(data: dict) -> dict:
    return data.setdefault("service_config", {}) or {}


def enumerate_settings(profile: Profile) -> list[Setting]:
    """Every setting of ``profile`` the audit can mutate, in a stable order (load
    balancing, health, method configs, throttling, then channel options)."""
    config = dict(profile.service_config or {})
    found: list[Setting] = []
    found += _policy_settings(profile, config)
    if "healthCheckConfig" in config:
        found.append(
            Setting(
                "healthCheckConfig",
                "healthCheckConfig",
                config["healthCheckConfig"],
                "healthCheckConfig removed (no client-side health checking)",
                _edit(lambda d: _service(d).pop("healthCheckConfig")),
            )
        )
    for index, method in enumerate(config.get("methodConfig") or []):
        for name in _METHOD_FIELDS:
            if isinstance(method, dict) and name in method:
                found.append(
                    Setting(
                        f"methodConfig[{index}].{name}",
                        name,
                        method[name],
                        f"{name} removed from methodConfig[{index}]",
                        _edit(partial(_drop_method_field, index, name)),
                    )
                )
    if "retryThrottling" in config:
        found.append(
            Setting(
                "retryThrottling",
                "retryThrottling",
                config["retryThrottling"],
                "retryThrottling removed",
                _edit(lambda d: _service(d).pop("retryThrottling")),
            )
        )
    for option, value in profile.channel_options.items():
        found.append(
            Setting(
                f"channel_options.{option}",
                option,
                value,
                f"{option} removed (the implementation's default)",
                _edit(partial(_drop_option, option)),
            )
        )
    return found


def _policy_settings(profile: Profile, config: dict) -> list[Setting]:
    """The load-balancing policy (when not gRPC's default) and outlier detection."""
    found = []
    declared = profile.declared_policy
    entries = config.get("loadBalancingConfig")
    chosen = lb_policies.chosen_index(entries)
    outer = next(iter(entries[chosen])) if chosen is not None and entries else None
    if declared.source in ("loadBalancingConfig", "loadBalancingPolicy") and declared.name not in (
        None,
        "pick_first",
    ):
        name = "round_robin" if declared.name == "round_robin" else "loadBalancingConfig"
        if declared.wrappers and outer == declared.wrappers[0] and len(declared.wrappers) == 1:
            mutation = f"{declared.name} replaced by pick_first under {outer}"
            mutate = _edit(lambda d: _replace_child(d, outer))
        else:
            mutation = f"{declared.source} dropped: pick_first, gRPC's default"
            mutate = _edit(_drop_policy)
        found.append(Setting(declared.source, name, declared.name, mutation, mutate))
    if outer == OUTLIER and entries is not None and chosen is not None:
        child = entries[chosen][OUTLIER].get("childPolicy")
        found.append(
            Setting(
                "loadBalancingConfig.outlier_detection_experimental",
                "outlierDetection",
                {k: v for k, v in entries[chosen][OUTLIER].items() if k != "childPolicy"},
                "outlier_detection_experimental unwrapped to its childPolicy",
                _edit(
                    lambda d: _service(d).__setitem__("loadBalancingConfig", copy.deepcopy(child))
                ),
            )
        )
    return found


def _drop_method_field(index: int, name: str, data: dict) -> None:
    _service(data)["methodConfig"][index].pop(name)


def _drop_option(name: str, data: dict) -> None:
    data["channel_options"].pop(name)


def _drop_policy(data: dict) -> None:
    for key in ("loadBalancingConfig", "loadBalancingPolicy"):
        _service(data).pop(key, None)


def _replace_child(data: dict, wrapper: str) -> None:
    entries = _service(data)["loadBalancingConfig"]
    chosen = lb_policies.chosen_index(entries)
    assert chosen is not None
    entries[chosen][wrapper]["childPolicy"] = [{"pick_first": {}}]


def select(settings: list[Setting], only: list[str]) -> list[Setting]:
    """The settings named by ``--only`` (by name or id); an unknown one is a ValueError
    naming what the profile has."""
    if not only:
        return settings
    known = {s.name for s in settings} | {s.id for s in settings}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(
            f"--only {', '.join(unknown)}: not a setting of this profile; it has "
            + ", ".join(dict.fromkeys(s.name for s in settings))
        )
    return [s for s in settings if s.name in only or s.id in only]
