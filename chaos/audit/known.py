"""Why a setting may show no effect: a known dead setting of an implementation, or a value
that restates the default. Only facts verified in this project are listed (the source of
each is named)."""

from __future__ import annotations

from typing import Any

from chaos.profiles import channel_args

# (setting, implementation as the records name it) -> why it has no effect there.
DEAD: dict[tuple[str, str], str] = {
    ("grpc.keepalive_timeout_ms", "grpcio"): (
        "known dead in grpcio: it has no effect; the ping deadline is "
        "grpc.http2.ping_timeout_ms (docs/grpc-facts.md)"
    ),
}
# Service-config values that are gRPC's default (gRPC service config documentation).
_DEFAULT_VALUES: dict[str, Any] = {"waitForReady": False}


def explain(name: str, value: Any, implementation: str | None) -> str | None:
    """Why ``name`` = ``value`` shows no effect, when it is a known case; else None."""
    if implementation and (name, implementation) in DEAD:
        return DEAD[(name, implementation)]
    arg = channel_args.CHANNEL_ARGS.get(name)
    if arg is not None and arg.default is not None and value == arg.default:
        return f"restates gRPC's default ({name} = {arg.default!r})"
    if name in _DEFAULT_VALUES and value == _DEFAULT_VALUES[name]:
        return f"restates gRPC's default ({name}: {value!r})"
    return None
