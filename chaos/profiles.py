"""Client profiles: a gRPC client's resilience settings as data.

A profile is a JSON file::

    {"name": "recommended", "description": "...",
     "service_config": {...} | null,          # gRPC service config (null = none: pick_first)
     "channel_options": {"grpc.keepalive_time_ms": 500, ...},
     "client_cert": false,                     # optional: present the fleet's client cert
     "why": {"grpc.keepalive_time_ms": "the fault this setting answers", ...}}

The shipped profiles live beside this module (``chaos/profiles/*.json``): ``pick_first``
(the gRPC default), ``naive`` (round_robin and TLS only), ``recommended`` (what survives
every scenario) and ``outlier``. A user's own profile is given by its file path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from fleet import client

PROFILE_DIR = Path(__file__).with_name("profiles")
# gRPC's connection backoff spec: initial 1 s, multiplier 1.6, jitter 0.2, max 120 s.
GRPC_DEFAULT_MAX_RECONNECT_BACKOFF_MS = 120_000
RECONNECT_JITTER = 0.2
_KEYS = {"name", "description", "service_config", "channel_options", "client_cert", "why"}


class ProfileError(ValueError):
    """A profile that cannot be found or read; the message says which and why."""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    service_config: Mapping[str, Any] | None = None
    channel_options: Mapping[str, Any] = field(default_factory=dict)
    client_cert: bool = False
    why: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def policy(self) -> str:
        """The top load-balancing policy name ('pick_first' when there is none)."""
        configs = (self.service_config or {}).get("loadBalancingConfig") or []
        return next(iter(configs[0]), "pick_first") if configs else "pick_first"

    @property
    def max_reconnect_backoff_ms(self) -> int:
        """The longest wait between reconnection attempts (gRPC's default is 120 s)."""
        return int(self.channel_options.get("grpc.max_reconnect_backoff_ms",
                                            GRPC_DEFAULT_MAX_RECONNECT_BACKOFF_MS))

    @property
    def health_checking(self) -> bool:
        return bool((self.service_config or {}).get("healthCheckConfig"))

    def options(self) -> list[tuple[str, Any]]:
        """Channel arguments for grpc (service config included)."""
        return client.channel_options(self.service_config, list(self.channel_options.items()))

    def channel(self, fleet: Mapping[str, Any], aio: bool = False):
        """A channel to ``fleet`` (``Fleet.info()``-shaped) configured by this profile.

        The fleet's client certificate is presented when the profile asks for it or the
        fleet requires it (``"mtls": true``)."""
        return client.channel(fleet, service_config=self.service_config,
                              options=list(self.channel_options.items()),
                              client_cert=self.client_cert or bool(fleet.get("mtls")),
                              aio=aio)


def shipped() -> list[str]:
    """Names of the profiles that come with grpc-chaos."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or a profile file by path."""
    text = str(name_or_path)
    path = Path(text) if ("/" in text or text.endswith(".json")) else PROFILE_DIR / f"{text}.json"
    if not path.is_file():
        raise ProfileError(f"no profile {text!r}: not a file, and not one of the shipped "
                           f"profiles ({', '.join(shipped())})")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProfileError(f"profile {path}: not readable JSON: {exc}") from None
    return parse(data, source=str(path))


def parse(data: Any, source: str = "<data>") -> Profile:
    """Validate profile data; every problem is named with the file it came from."""
    if not isinstance(data, dict):
        raise ProfileError(f"profile {source}: expected a JSON object, got {type(data).__name__}")
    unknown = set(data) - _KEYS
    if unknown:
        raise ProfileError(f"profile {source}: unknown keys {sorted(unknown)}; "
                           f"allowed: {sorted(_KEYS)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise ProfileError(f"profile {source}: 'name' must be a non-empty string")
    config = data.get("service_config")
    if config is not None and not isinstance(config, dict):
        raise ProfileError(f"profile {source}: 'service_config' must be an object or null")
    options = data.get("channel_options") or {}
    if not isinstance(options, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, str)) and not isinstance(v, bool)
            for k, v in options.items()):
        raise ProfileError(f"profile {source}: 'channel_options' must map option names to "
                           f"integers or strings")
    return Profile(name=data["name"], description=data.get("description", ""),
                   service_config=config, channel_options=options,
                   client_cert=bool(data.get("client_cert", False)),
                   why=data.get("why") or {}, source=source)
