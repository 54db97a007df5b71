"""The Profile object: a client's settings as data, a channel built from them, and small
read-only accessors that explain the settings in verdicts.

The accessors are for *explanations only* ("recovery 6.1 s > 2 s:
grpc.max_reconnect_backoff_ms is unset: gRPC's default 120000 ms"). Scenarios never
branch on them: a scenario observes what the client does, whatever the spelling of its
config, and its bounds are requirements, never derived from the profile under test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos.profiles import channel_args, lb_policies
from chaos.profiles.problems import ProfileError, did_you_mean


@dataclass(frozen=True)
class Setting:
    """A channel option as the client runs with it: ``value`` (gRPC's default when unset,
    None when no default is recorded), ``is_default``, and ``text`` for people, e.g.
    ``unset: gRPC's default 120000 ms`` or ``100 ms``."""

    value: Any
    is_default: bool
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    service_config: Mapping[str, Any] | None = None
    channel_options: Mapping[str, Any] = field(default_factory=dict)
    client_cert: bool = False
    why: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def data(self) -> dict[str, Any]:
        """The profile as the JSON data of a profile file."""
        return {
            "name": self.name,
            "description": self.description,
            "service_config": self.service_config,
            "channel_options": dict(self.channel_options),
            "client_cert": self.client_cert,
            "why": dict(self.why),
        }

    @property
    def declared_policy(self) -> lb_policies.DeclaredPolicy:
        """The load-balancing policy the settings declare, as gRPC selects it: from
        loadBalancingConfig (the first policy grpcio implements, descending into the
        childPolicy of wrappers such as outlier_detection_experimental), else the legacy
        loadBalancingPolicy, else grpc.lb_policy_name, else pick_first. For explanations
        only; ``str()`` reads e.g. "round_robin (under outlier_detection_experimental)"."""
        return lb_policies.declared(self.service_config, self.channel_options)

    @property
    def health_check_service(self) -> str | None:
        """The service name client-side health checking asks about (``""`` = the server's
        overall health), or None when the config asks for no health checking. For
        explanations only (gRPC health-checks under round_robin, not pick_first)."""
        config = (self.service_config or {}).get("healthCheckConfig")
        name = config.get("serviceName") if isinstance(config, dict) else None
        return name if isinstance(name, str) else None

    @property
    def health_checking(self) -> bool:
        return self.health_check_service is not None

    @property
    def outlier_detection(self) -> Mapping[str, Any] | None:
        """The outlier_detection_experimental config among the policies gRPC uses (top
        level or as a child), or None. For explanations only."""
        return next(
            (
                config
                for name, config in lb_policies.chosen_configs(self.service_config)
                if name == "outlier_detection_experimental"
            ),
            None,
        )

    def retry_policy(self, service: str, method: str) -> Mapping[str, Any] | None:
        """The retryPolicy gRPC applies to ``/service/method``: the most specific method
        config wins (service and method, then the service, then the default ``{}``).
        For explanations only."""
        best, best_rank = None, -1
        for config in (self.service_config or {}).get("methodConfig") or []:
            for name in config.get("name") or []:
                rank = _name_rank(name, service, method)
                if rank > best_rank:
                    best, best_rank = config, rank
        return best.get("retryPolicy") if best else None

    def setting(self, name: str) -> Setting:
        """The value a channel option has in this profile, or gRPC's default for it."""
        if name not in channel_args.CHANNEL_ARGS:
            raise ProfileError(
                f"unknown channel option {name!r}{did_you_mean(name, channel_args.CHANNEL_ARGS)}"
            )
        if name in self.channel_options:
            value = self.channel_options[name]
            return Setting(value, False, channel_args.describe(name, value))
        return Setting(
            channel_args.CHANNEL_ARGS[name].default, True, channel_args.describe(name, None)
        )

    def options(self) -> list[tuple[str, Any]]:
        """Channel arguments for grpc (service config included)."""
        from fleet import client

        return client.channel_options(self.service_config, list(self.channel_options.items()))

    def channel(self, fleet: Mapping[str, Any], aio: bool = False):
        """A channel to ``fleet`` (``Fleet.info()``-shaped) configured by this profile.

        The fleet's client certificate is presented when the profile asks for it or the
        fleet requires it (``"mtls": true``)."""
        from fleet import client

        return client.channel(
            fleet,
            service_config=self.service_config,
            options=list(self.channel_options.items()),
            client_cert=self.client_cert or bool(fleet.get("mtls")),
            aio=aio,
        )


def _name_rank(name: Any, service: str, method: str) -> int:
    """How specifically a method config name matches: 2 exact, 1 the service, 0 default,
    -1 not at all."""
    if not isinstance(name, dict):
        return -1
    named_service, named_method = name.get("service") or "", name.get("method") or ""
    if not named_service:
        return 0
    if named_service != service:
        return -1
    if not named_method:
        return 1
    return 2 if named_method == method else -1
