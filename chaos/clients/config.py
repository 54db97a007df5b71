"""A profile as a driver's channel configuration, and what the driver cannot honour of it.

Profiles name their channel options as gRPC's C core does (``grpc.keepalive_time_ms``):
that is what grpcio takes, and what a driver that lists ``"*"`` in its options (the python
driver) gets as is. Other implementations have their own APIs for the same settings, so for
them each option with a portable meaning becomes a field of the protocol's ``Settings``
(proto/driver.proto), which the driver maps to its API::

    grpc.keepalive_time_ms                 -> keepalive_time_ms
    grpc.http2.ping_timeout_ms             -> keepalive_timeout_ms (grpcio's ping deadline)
    grpc.keepalive_timeout_ms              -> keepalive_timeout_ms (where ping_timeout is unset)
    grpc.keepalive_permit_without_calls    -> keepalive_without_calls
    grpc.initial/max_reconnect_backoff_ms  -> initial/max_reconnect_backoff_ms
    grpc.min_reconnect_backoff_ms          -> min_connect_timeout_ms (what it is in C core)
    grpc.dns_min_time_between_resolutions_ms -> dns_min_resolution_interval_ms
    grpc.max_receive/send_message_length   -> max_receive/send_message_bytes
    grpc.enable_retries                    -> retries

What a driver does not list among its settings or options, and the service config's parts
it says it ignores or cannot run (an LB policy it lacks, retries it does not honour), are
:func:`unhonoured`: named before any fleet starts, with what the implementation does
instead — never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fleet.protos import driver_pb2

# C-core option -> portable setting (driver_pb2.Settings field).
PORTABLE = {
    "grpc.keepalive_time_ms": "keepalive_time_ms",
    "grpc.http2.ping_timeout_ms": "keepalive_timeout_ms",
    "grpc.keepalive_timeout_ms": "keepalive_timeout_ms",
    "grpc.keepalive_permit_without_calls": "keepalive_without_calls",
    "grpc.initial_reconnect_backoff_ms": "initial_reconnect_backoff_ms",
    "grpc.max_reconnect_backoff_ms": "max_reconnect_backoff_ms",
    "grpc.min_reconnect_backoff_ms": "min_connect_timeout_ms",
    "grpc.dns_min_time_between_resolutions_ms": "dns_min_resolution_interval_ms",
    "grpc.max_receive_message_length": "max_receive_message_bytes",
    "grpc.max_send_message_length": "max_send_message_bytes",
    "grpc.enable_retries": "retries",
}
BOOLEAN = {"keepalive_without_calls", "retries"}
# Options that only tune C core's own machinery: without C core there is nothing to set.
C_CORE_ONLY = {
    "grpc.http2.max_pings_without_data": "C core stops pinging after this many pings "
    "without data; other implementations have no such limit",
    "grpc.use_local_subchannel_pool": "C core shares connections between channels unless "
    "set; each driver channel is a client of its own",
}


def takes_any_option(caps: driver_pb2.Capabilities) -> bool:
    return "*" in caps.options


def channel_config(
    profile, fleet: Mapping[str, Any], caps: driver_pb2.Capabilities
) -> driver_pb2.ChannelConfig:
    """The ChannelConfig for a client of ``profile`` to ``fleet`` (Fleet.info()-shaped),
    in the terms ``caps`` says the driver takes."""
    config = driver_pb2.ChannelConfig(
        target=fleet["target"],
        ca_file=str(fleet["ca"]),
        service_config_json=json.dumps(profile.service_config)
        if profile.service_config is not None
        else "",
    )
    if profile.client_cert or fleet.get("mtls"):
        config.cert_file = str(fleet["client_cert"])
        config.key_file = str(fleet["client_key"])
    options = dict(profile.channel_options)
    if takes_any_option(caps):
        for name, value in options.items():
            config.options[name] = json.dumps(value)
        return config
    settings: dict[str, Any] = {}
    # The ping deadline grpcio honours wins over the option it ignores.
    for name in sorted(options, key=lambda n: n != "grpc.http2.ping_timeout_ms"):
        field = PORTABLE.get(name)
        if field is not None and field in caps.settings and field not in settings:
            value = options[name]
            settings[field] = bool(value) if field in BOOLEAN else int(value)
        elif name in caps.options:
            config.options[name] = json.dumps(options[name])
    config.settings.CopyFrom(driver_pb2.Settings(**settings))
    return config


def unhonoured(profile, caps: driver_pb2.Capabilities) -> list[str]:
    """What of ``profile`` the driver will not honour, each with what it does instead."""
    implementation = f"{caps.implementation} {caps.version}"
    found: list[str] = []
    if not takes_any_option(caps):
        for name, value in profile.channel_options.items():
            field = PORTABLE.get(name)
            if field is not None and field in caps.settings:
                floor = caps.minimums.get(field)
                if floor is not None and not isinstance(value, bool) and value < floor:
                    found.append(
                        f"{name}: {value} is below {implementation}'s floor for {field}; it "
                        f"uses {floor}"
                    )
                continue
            if name in caps.options:
                continue
            if name in C_CORE_ONLY:
                found.append(f"{name}: not a setting of {implementation} ({C_CORE_ONLY[name]})")
            elif field is not None:
                found.append(
                    f"{name}: {implementation} cannot set {field}; it keeps its own default"
                )
            else:
                found.append(f"{name}: not known to {implementation}; ignored")
    config = profile.service_config or {}
    top = [
        next(iter(e)) for e in config.get("loadBalancingConfig") or () if isinstance(e, dict) and e
    ]
    usable = [name for name in top if name in caps.lb_policies]
    for policy in _lb_policies(config):
        if policy in caps.lb_policies:
            continue
        if policy in top and not usable:
            then = "no policy of the list is: the channel cannot apply this service config"
        elif policy in top:
            then = f"the channel uses {usable[0]}, the first listed that it has"
        else:
            then = "the policy that wraps it cannot run"
        found.append(
            f"loadBalancingConfig {policy}: not in {implementation} "
            f"(it has {', '.join(caps.lb_policies)}); {then}"
        )
    if _has_retry_policy(config) and not caps.retries:
        found.append(
            f"retryPolicy: {implementation} does not retry here; every failed attempt is the "
            "RPC's failure" + (f" ({'; '.join(caps.notes)})" if caps.notes else "")
        )
    if "healthCheckConfig" in config and not caps.health_check:
        found.append(
            f"healthCheckConfig: {implementation} has no client-side health checking; a "
            "NOT_SERVING backend keeps getting RPCs"
        )
    for field in caps.ignored_fields:
        if field in config:
            found.append(f"{field}: ignored by {implementation}")
    return found


def _lb_policies(config: Mapping[str, Any]) -> list[str]:
    """Every policy named in loadBalancingConfig, children included."""
    names: list[str] = []

    def walk(entries):
        for entry in entries or ():
            if isinstance(entry, dict):
                for name, body in entry.items():
                    names.append(name)
                    if isinstance(body, dict):
                        walk(body.get("childPolicy"))

    walk(config.get("loadBalancingConfig"))
    return names


def _has_retry_policy(config: Mapping[str, Any]) -> bool:
    return any("retryPolicy" in m for m in config.get("methodConfig", ()) if isinstance(m, dict))
