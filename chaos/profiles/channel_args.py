"""The channel arguments gRPC defines, as this package's own table, and the check of a
profile's ``channel_options`` against it.

Names are the GRPC_ARG_* values of grpc's include/grpc/impl/channel_arg_names.h that the
installed grpcio contains, plus a few defined elsewhere in grpc-core that clients set
(marked). Left out on purpose: pointer-valued arguments that only C code can pass (socket
mutators, resource quotas, ...), test-only ones, and the ones this grpcio does not
contain (``grpc.http2.min_time_between_pings_ms`` has had no effect for years, the
Cronet and Objective-C ones). ``tests/test_profile_check.py`` checks that every name
here is a string in the installed grpcio's binary.

Kinds: ``int``; ``bool`` (gRPC's booleans are integers 0 or 1); ``str``. Defaults are
gRPC's, each with where it comes from. ``floor`` is a value gRPC raises lower ones to
(a warning: the setting does not do what it says); ``low``/``high`` bound valid values.
Server-side arguments in a client profile do nothing: an error, like an unknown name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaos.profiles import lb_policies
from chaos.profiles.problems import WARNING, Problem, did_you_mean, key_path, quote

INT_MAX = 2**31 - 1  # channel integers are C ints
INT_MIN = -(2**31)


@dataclass(frozen=True)
class ChannelArg:
    name: str
    kind: str  # "int", "bool" or "str"
    default: int | str | None = None
    default_text: str | None = None  # how to say the default when the number misleads
    unit: str = ""  # "ms", "bytes", "s" ...
    low: int = INT_MIN
    high: int = INT_MAX
    floor: int | None = None
    server_only: bool = False


def _int(
    name: str, default: int | None = None, unit: str = "", low: int = 0, **more: Any
) -> ChannelArg:
    return ChannelArg(name, "int", default, unit=unit, low=low, **more)


def _bool(name: str, default: int | None = None, **more: Any) -> ChannelArg:
    return ChannelArg(name, "bool", default, low=0, high=1, **more)


def _str(name: str, **more: Any) -> ChannelArg:
    return ChannelArg(name, "str", **more)


_TABLE = [
    # Keepalive (chttp2_transport.cc): a client pings only when keepalive_time_ms is set
    # (its default is INT_MAX = off); values under 1 ms are raised to 1 ms.
    _int(
        "grpc.keepalive_time_ms", INT_MAX, "ms", floor=1, default_text="off (INT_MAX) for clients"
    ),
    # 20 s when keepalive is on (chttp2 kDefaultKeepaliveTimeout); docs/grpc-facts.md: the ping
    # deadline in this grpcio is grpc.http2.ping_timeout_ms.
    _int("grpc.keepalive_timeout_ms", 20_000, "ms"),
    # Defined in chttp2's internal.h (GRPC_ARG_PING_TIMEOUT_MS): 1 minute when keepalive
    # is on, no deadline otherwise.
    _int("grpc.http2.ping_timeout_ms", 60_000, "ms"),
    _bool("grpc.keepalive_permit_without_calls", 0),
    # chttp2 g_default_max_pings_without_data; 0 = unlimited.
    _int("grpc.http2.max_pings_without_data", 2),
    _int("grpc.http2.max_ping_strikes", 2, server_only=True),
    _int("grpc.http2.min_ping_interval_without_data_ms", 300_000, "ms", server_only=True),
    # Reconnect backoff (subchannel.cc ParseArgsForBackoffValues): initial 1 s, max
    # 120 s, "min" is the minimum connect timeout (20 s); each is raised to at least 100 ms.
    _int("grpc.initial_reconnect_backoff_ms", 1_000, "ms", floor=100),
    _int("grpc.min_reconnect_backoff_ms", 20_000, "ms", floor=100),
    _int("grpc.max_reconnect_backoff_ms", 120_000, "ms", floor=100),
    # DNS resolver: re-resolve at most every 30 s (docs/grpc-facts.md).
    _int("grpc.dns_min_time_between_resolutions_ms", 30_000, "ms"),
    _int("grpc.dns_ares_query_timeout", 120_000, "ms"),
    _bool("grpc.dns_enable_srv_queries", 0),
    _bool("grpc.enable_retries", 1),
    _bool("grpc.experimental.enable_hedging", 0),
    _int("grpc.per_rpc_retry_buffer_size", 256 * 1024, "bytes"),
    # GRPC_DEFAULT_MAX_RECV_MESSAGE_LENGTH (4 MiB); -1 = unlimited, the send default.
    _int("grpc.max_receive_message_length", 4 * 1024 * 1024, "bytes", low=-1),
    _int("grpc.max_send_message_length", -1, "bytes", low=-1, default_text="unlimited (-1)"),
    # channel_arg_names.h: "The default value is 30 minutes and the min value is 1 second."
    _int("grpc.client_idle_timeout_ms", 30 * 60 * 1000, "ms", floor=1_000),
    _bool("grpc.use_local_subchannel_pool", 0),
    _bool("grpc.inhibit_health_checking", 0),
    _bool("grpc.service_config_disable_resolution", 0),
    _str("grpc.service_config"),
    _str("grpc.lb_policy_name", default="pick_first"),
    _int("grpc.lb.ring_hash.ring_size_cap", 4096),
    _int("grpc.priority_failover_timeout_ms", 10_000, "ms"),
    _int("grpc.grpclb_call_timeout_ms", 0, "ms", default_text="no deadline (0)"),
    _int("grpc.grpclb_fallback_timeout_ms", 10_000, "ms"),
    _int("grpc.happy_eyeballs_connection_attempt_delay_ms", 250, "ms"),
    _bool("grpc.enable_http_proxy", 1),
    _str("grpc.http_proxy"),
    _str("grpc.address_http_proxy"),
    _str("grpc.address_http_proxy_enabled_addresses"),
    _str("grpc.default_authority"),
    _str("grpc.ssl_target_name_override"),
    _str("grpc.primary_user_agent"),
    _str("grpc.secondary_user_agent"),
    _bool("grpc.surface_user_agent", 1),
    _bool("grpc.disable_client_authority_filter", 0),
    _str("grpc.http2_scheme"),
    _bool("grpc.enable_channelz", 1),
    _int("grpc.max_channel_trace_event_memory_per_node", unit="bytes"),
    _bool("grpc.census"),
    _bool("grpc.minimal_stack", 0),
    _bool("grpc.per_message_compression", 1),
    _bool("grpc.per_message_decompression", 1),
    # grpc/compression.h (GRPC_COMPRESSION_CHANNEL_*): none 0, deflate 1, gzip 2;
    # levels none 0 .. high 3.
    _int("grpc.default_compression_algorithm", 0, high=2),
    _int("grpc.default_compression_level", 0, high=3),
    _int("grpc.compression_enabled_algorithms_bitset"),
    # HTTP/2 transport.
    _int("grpc.http2.max_frame_size", 16_384, "bytes", low=16_384, high=16_777_215),
    _int("grpc.http2.lookahead_bytes", unit="bytes"),
    _int("grpc.http2.hpack_table_size.decoder", unit="bytes"),
    _int("grpc.http2.hpack_table_size.encoder", unit="bytes"),
    _int("grpc.http2.write_buffer_size", unit="bytes"),
    _int("grpc.http2.initial_sequence_number", low=1),
    _bool("grpc.http2.bdp_probe", 1),
    _bool("grpc.http2.true_binary", 1),
    _bool("grpc.experimental.http2.enable_preferred_frame_size", 0),
    # Defined in chttp2's internal.h (GRPC_ARG_SETTINGS_TIMEOUT).
    _int("grpc.http2.settings_timeout", unit="ms"),
    _int("grpc.max_concurrent_streams"),
    _int("grpc.max_metadata_size", 8 * 1024, "bytes"),
    _int("grpc.absolute_max_metadata_size", 16 * 1024, "bytes"),
    _int("grpc.tsi.max_frame_size", unit="bytes"),
    _bool("grpc.security_frame_allowed", 0),
    _int("grpc.dscp", low=0, high=63),
    _int("grpc.tcp_receive_buffer_size", unit="bytes", low=-1),
    _int("grpc.experimental.tcp_read_chunk_size", unit="bytes"),
    _int("grpc.experimental.tcp_min_read_chunk_size", unit="bytes"),
    _int("grpc.experimental.tcp_max_read_chunk_size", unit="bytes"),
    _bool("grpc.experimental.tcp_tx_zerocopy_enabled", 0),
    _int("grpc.experimental.tcp_tx_zerocopy_send_bytes_threshold", 16 * 1024, "bytes"),
    _int("grpc.experimental.tcp_tx_zerocopy_max_simultaneous_sends", 4),
    # Server side: a client channel ignores them.
    _int("grpc.max_connection_idle_ms", INT_MAX, "ms", server_only=True),
    _int("grpc.max_connection_age_ms", INT_MAX, "ms", server_only=True),
    _int("grpc.max_connection_age_grace_ms", INT_MAX, "ms", server_only=True),
    _int("grpc.server_handshake_timeout_ms", 120_000, "ms", server_only=True),
    _int("grpc.server_max_unrequested_time_in_server", unit="s", server_only=True),
    _bool("grpc.so_reuseport", 1, server_only=True),
    _bool("grpc.expand_wildcard_addrs", 0, server_only=True),
    _int("grpc.max_allowed_incoming_connections", server_only=True),
    _bool("grpc.server_call_metric_recording", 0, server_only=True),
    _int(
        "grpc.experimental.server_config_change_drain_grace_time_ms",
        10 * 60 * 1000,
        "ms",
        server_only=True,
    ),
]
CHANNEL_ARGS: dict[str, ChannelArg] = {arg.name: arg for arg in _TABLE}


def check(options: Mapping[str, Any], path: str = "channel_options") -> list[Problem]:
    """Every problem of a profile's channel options (name -> value)."""
    problems: list[Problem] = []
    for name, value in options.items():
        problems += check_option(name, value, key_path(path, name))
    return problems


def check_option(name: str, value: Any, path: str) -> list[Problem]:
    arg = CHANNEL_ARGS.get(name)
    if arg is None:
        return [
            Problem(
                path,
                f"unknown channel option{did_you_mean(name, CHANNEL_ARGS)}: "
                f"gRPC ignores it silently",
            )
        ]
    if name == "grpc.service_config":
        return [
            Problem(
                path,
                'put the service config in the profile\'s "service_config" '
                "(checked, and merged into the channel options for you)",
            )
        ]
    if arg.server_only:
        return [Problem(path, "a server option: a client channel ignores it")]
    problems = _type_problems(arg, value, path)
    if not problems and arg.kind != "str":
        problems = _range_problems(arg, value, path)
    if not problems and name == "grpc.lb_policy_name":
        problems = lb_policies.check_name(
            value, path, "gRPC ignores it silently and uses pick_first"
        )
    return problems


def _type_problems(arg: ChannelArg, value: Any, path: str) -> list[Problem]:
    if arg.kind == "str":
        ok = isinstance(value, str)
        want = "a string"
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "0 or 1 (gRPC's booleans are integers)" if arg.kind == "bool" else "an integer"
    if ok:
        return []
    hint = ""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        hint = f": write {value} without quotes"
    elif isinstance(value, bool) and arg.kind == "bool":
        hint = f": write {int(value)}"
    return [Problem(path, f"expected {want}, got {quote(value)}{hint}")]


def _range_problems(arg: ChannelArg, value: int, path: str) -> list[Problem]:
    unit = f" {arg.unit}" if arg.unit else ""
    if value < arg.low:
        return [Problem(path, f"must be at least {arg.low}{unit}, got {value}")]
    if value > arg.high:
        return [Problem(path, f"must be at most {arg.high}{unit}, got {value}")]
    if arg.floor is not None and value < arg.floor:
        return [
            Problem(
                path, f"{value}{unit} is below gRPC's minimum: gRPC uses {arg.floor}{unit}", WARNING
            )
        ]
    return []


def describe(name: str, value: Any | None) -> str:
    """A human text for an option's value, or for gRPC's default when ``value`` is None,
    e.g. ``unset: gRPC's default 120000 ms``."""
    arg = CHANNEL_ARGS[name]
    unit = f" {arg.unit}" if arg.unit else ""
    if value is None:
        if arg.default_text:
            return f"unset: gRPC's default {arg.default_text}"
        if arg.default is None:
            return "unset: gRPC's default (not recorded here)"
        return f"unset: gRPC's default {arg.default}{unit}"
    text = f"{value}{unit}"
    if isinstance(value, int) and arg.floor is not None and value < arg.floor:
        text += f", which gRPC raises to {arg.floor}{unit}"
    return text
