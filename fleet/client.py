"""Build a gRPC channel to a fleet, as a production client would dial it.

The target is the fleet's DNS name through the fleet's DNS server
(``dns://127.0.0.1:<dns>/greeter.example.com:<P>``, resolved by gRPC's default c-ares
resolver), TLS trusts the fleet CA, and the client certificate is optional (mTLS). The
service config and channel options come from the caller (chaos/profiles.py turns a profile
into them).

``fleet`` is anything with the keys of ``python -m fleet up``'s JSON (``Fleet.info()``),
so the same call serves a fleet started here and one described by a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def credentials(fleet: Mapping[str, Any], client_cert: bool = False) -> grpc.ChannelCredentials:
    """TLS credentials trusting the fleet CA, with the fleet's client certificate if asked."""
    if client_cert:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(fleet["ca"]),
            private_key=_read(fleet["client_key"]),
            certificate_chain=_read(fleet["client_cert"]),
        )
    return grpc.ssl_channel_credentials(root_certificates=_read(fleet["ca"]))


def channel_options(
    service_config: Mapping | None = None, options: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """Channel arguments: the service config as JSON, then the caller's options.

    Every channel gets its own subchannel pool: by default gRPC shares connections between
    channels of one process, so a second "client" would silently reuse the first one's
    connections and its backoff state, which real separate clients never do.
    """
    merged: list[tuple[str, Any]] = [("grpc.use_local_subchannel_pool", 1)]
    if service_config is not None:
        merged.append(("grpc.service_config", json.dumps(service_config)))
    merged.extend(options)
    return merged


def channel(
    fleet: Mapping[str, Any],
    *,
    service_config: Mapping | None = None,
    options: Sequence[tuple[str, Any]] = (),
    client_cert: bool = False,
    aio: bool = False,
) -> grpc.Channel | grpc.aio.Channel:
    """A secure channel (sync, or grpc.aio with ``aio=True``) to the fleet's DNS target."""
    make = grpc.aio.secure_channel if aio else grpc.secure_channel
    return make(
        fleet["target"],
        credentials(fleet, client_cert),
        options=channel_options(service_config, options),
    )


ROUND_ROBIN: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
