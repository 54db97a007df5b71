"""The preflight: can the client under test use a healthy fleet at all, and how does it spread?

Run once per session before the first scenario, on a fleet of its own::

    fresh fleet --> load with the profile's client (4 in flight) for up to PREFLIGHT_S
        OK RPCs from every backend, or from one backend for long enough  -> passed, with
                                                     the client's observed shape
        no OK RPC at all                              -> failed: ONE verdict for the run,
              with a diagnosis: what the RPCs failed with; whether the fleet serves a
              client without the profile's settings; what each backend's health service
              answers for the service name the profile health-checks

A profile that health-checks a service the backends do not know (``greeter.Greeterr``)
makes every backend unhealthy — a total outage. Without a preflight that shows as a 15 s
warm-up timeout in every scenario; with it, as one verdict that says why.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chaos.history import History
from chaos.load import Load
from chaos.observe.attribution import Attribution
from chaos.observe.client_shape import Shape, observe
from fleet import client

# A fresh channel to local backends answers in ~10-100 ms; a client observed to use one
# backend needs client_shape.SINGLE_MIN_S (1.5 s). Ten seconds is ample on a busy machine.
PREFLIGHT_S = 10.0
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Preflight:
    passed: bool
    shape: Shape | None
    message: str


def run(profile, fleet, stalls=None, target=None, client=None) -> Preflight:
    """Drive the profile's client at ``fleet`` (running, at baseline, of ``target``: the
    built-in Greeter when None) and judge it; ``client`` is the driver under test (None:
    the in-process client)."""
    history = History()
    info = fleet.info()
    rpc = None if target is None or target.builtin else target.rpc
    if client is not None:
        from chaos.clients.config import channel_config
        from chaos.clients.remote import RemoteLoad

        config = channel_config(profile, info, client.capabilities)
        load_class: type[Load] = RemoteLoad
        make_channel = lambda: client.open_channel(config)  # noqa: E731
    else:
        load_class, make_channel = Load, lambda: profile.channel(info, aio=True)
    load = load_class(
        make_channel,
        history,
        concurrency=4,
        deadline_s=2.0,
        stalls=stalls,
        rpc=rpc,
        identity_key="x-backend-id" if rpc is None else target.identity_header,
    )
    if load.identity_key is None and client is None:  # no backend named: gRPC's accounting does
        load.attribution = Attribution(
            lambda: load.channelz_id, {b.published: b.id for b in fleet.backends}
        )
    since = history.now()
    wanted = set(fleet.ids)
    shape = None
    with load, contextlib.suppress(TimeoutError):
        shape = load.wait_until(
            lambda: observe(history.rpcs, since, wanted, history.now()),
            PREFLIGHT_S,
            "the client warm",
        )
    if shape is not None:
        return Preflight(True, shape, f"the client {shape.describe()}")
    return Preflight(False, None, _diagnose(profile, fleet, history, load.rpc))


def _diagnose(profile, fleet, history: History, rpc) -> str:
    rpcs = history.rpcs
    ok = Counter(r.backend for r in rpcs if r.ok)
    if ok:
        reached = ", ".join(f"{b} {n}" for b, n in sorted(ok.items()))
        return (
            f"in {PREFLIGHT_S:g} s the client under test got answers from only some of the "
            f"backends of a healthy fleet ({reached} OK RPCs; the fleet has "
            f"{', '.join(fleet.ids)}), and did not settle on one either. "
            f"{_failures(rpcs)}"
        )
    parts = [
        f"the client under test never got an RPC answered by a healthy fleet in "
        f"{PREFLIGHT_S:g} s ({len(rpcs)} RPCs). {_failures(rpcs)}"
    ]
    plain = _plain_client_works(fleet, rpc)
    parts.append(
        "A client without the profile's settings is served fine, so the fleet works "
        "and the profile is what keeps this client out."
        if plain is None
        else f"A client without the profile's settings fails too ({plain}): the fleet "
        f"itself does not serve."
    )
    service = (profile.service_config or {}).get("healthCheckConfig", {}).get("serviceName")
    if service is not None:
        answers = {b.id: _health(fleet, b, service) for b in fleet.backends}
        said = Counter(answers.values())
        parts.append(
            f"The profile health-checks service {service!r} "
            f"(healthCheckConfig.serviceName); the backends answer: "
            + ", ".join(f"{what} ({n} of {len(answers)})" for what, n in said.items())
            + "."
        )
        if all(a != "SERVING" for a in answers.values()):
            parts.append(
                "No backend says SERVING for that name, so the client counts every "
                "backend unhealthy: a total outage. Check the name against the "
                "service names the servers register with their health service."
            )
    return " ".join(parts)


def _failures(rpcs) -> str:
    failed = [r for r in rpcs if not r.ok]
    if not failed:
        return "No RPC failed either: none completed."
    codes = Counter(r.code for r in failed)
    sample = failed[-1]
    return (
        f"They failed with {', '.join(f'{c} {n}' for c, n in codes.most_common())}; "
        f"the last: {sample.code} {sample.details[:200]!r}."
    )


def _plain_client_works(fleet, rpc) -> str | None:
    """None when a client with no service config and no options gets a correct answer to
    the target's RPC, else why not."""
    with client.channel(fleet.info(), client_cert=bool(fleet.mtls)) as channel:
        try:
            data = channel.unary_unary(rpc.path)(
                rpc.request_bytes(0), timeout=PROBE_TIMEOUT_S, wait_for_ready=True
            )
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        wrong = rpc.check_response(data, 0)
        return None if wrong is None else f"a wrong answer: {wrong}"


def _health(fleet, backend, service: str) -> str:
    """What ``backend``'s health service answers for ``service``, asked directly over TLS."""
    with fleet.direct_channel(backend) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=PROBE_TIMEOUT_S
            )
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return "NOT_FOUND (unknown service)"
            return f"{exc.code().name}: {exc.details()}"
