"""Which client settings answer a failed check, and what the profile under test has for them.

A verdict like "drain_time: 540 ms (bound <= 50 ms)" tells a person that something is
wrong, not what to change. A scenario knows which settings answer each of its checks in
the situation it stages (``chaos.expect(verdict, answers=["healthCheckConfig"])``); this
module turns those names into text that shows the profile's actual value (or gRPC's
default when it sets none), what the setting does, and the profile's own ``why``::

    What answers this (the profile under test, "naive"):
      - healthCheckConfig: not set. Client-side health checking: a backend whose health
        service says NOT_SERVING gets no new RPC within milliseconds ...
    Bound: drain_ms = 50 ms (grpc-chaos default; set your own with --chaos-requirements).

This reads the profile only to explain; no scenario adapts to what it reads here.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaos.verdicts.requirements import DOCS as REQUIREMENT_DOCS
from chaos.verdicts.requirements import Requirements


@dataclass(frozen=True)
class Knob:
    """A client setting: how to read it from a profile, what it is for (a sentence), and
    the keys a profile's ``why`` may explain it under. ``read``'s text starts with "not
    set" or "unset" when the profile leaves the setting unset (:func:`status_of`)."""

    what: str
    read: Callable[[Any], str]
    why_keys: tuple[str, ...] = ()


def _service_config(profile) -> dict:
    return dict(profile.service_config or {})


def _compact(value) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= 160 else text[:157] + "..."


def _read_health(profile) -> str:
    name = profile.health_check_service
    return "not set" if name is None else f"set: serviceName {name!r}"


def _read_retry(profile) -> str:
    policy = profile.retry_policy(*METHOD)
    return (
        f"set: {_compact(policy)}"
        if policy
        else f"not set (no retryPolicy applies to /{METHOD[0]}/{METHOD[1]})"
    )


def _read_wait_for_ready(profile) -> str:
    waiting = [
        m.get("name")
        for m in _service_config(profile).get("methodConfig") or []
        if isinstance(m, dict) and m.get("waitForReady")
    ]
    return f"set for {_compact(waiting[0])}" if waiting else "not set (RPCs fail fast)"


def _read_outlier(profile) -> str:
    config = profile.outlier_detection
    if config is None:
        return "not set (no outlier_detection_experimental in loadBalancingConfig)"
    return f"set: {_compact({k: v for k, v in config.items() if k != 'childPolicy'})}"


def _read_policy(profile) -> str:
    policy = profile.declared_policy
    return f"set: {policy}" if policy.name == "round_robin" else f"not set: the policy is {policy}"


def _read_option(name: str) -> Callable[[Any], str]:
    def read(profile) -> str:
        return profile.setting(name).text

    return read


# The RPC the scenarios call (the method whose retry policy matters).
METHOD = ("greeter.Greeter", "SayHello")


_SERVER = "a setting of the server under test, not of the client"


def _server(profile) -> str:
    return _SERVER


# What a reader's text says of the profile, by its first words (every reader above keeps
# to them): "not set ..." / "unset: ..." when the profile leaves the setting to gRPC's
# default, the server's text for a server setting, anything else when the profile sets it.
NOT_SET, SET, SERVER = "not set", "set", "server"


def status_of(says: str) -> str:
    """Whether an advice item's text (``NAME: TEXT``, the TEXT) says the profile leaves
    the setting unset (:data:`NOT_SET`: a change to make), sets it already (:data:`SET`:
    its value, or a client implementation that ignores it, is the question) or that it is
    the server's (:data:`SERVER`)."""
    if says.startswith(("not set", "unset")):
        return NOT_SET
    if says.startswith(_SERVER):
        return SERVER
    return SET


CATALOGUE: dict[str, Knob] = {
    "server.graceful_shutdown": Knob(
        "On its stop signal the server sets its health service NOT_SERVING, keeps serving "
        "for a drain period (longer than its clients need to move away), then stops with a "
        "grace period (grpc: server.stop(grace)) so RPCs in flight finish",
        _server,
    ),
    "server.keepalive_enforcement": Knob(
        "The server permits its clients' keepalive pings: "
        "grpc.keepalive_permit_without_calls = 1, grpc.http2.min_ping_interval_without_data_ms "
        "at most the clients' ping interval (a grpc-core client pings at most once a second), "
        "and grpc.http2.max_ping_strikes = 0; gRPC's defaults (5 minutes, 2 strikes) answer an "
        "idle client's pings with GOAWAY too_many_pings",
        _server,
    ),
    "server.max_connection_age": Knob(
        "The server ends connections at an age (grpc.max_connection_age_ms, with "
        "grpc.max_connection_age_grace_ms): clients reconnect and ask DNS again, so a "
        "backend added to DNS gets its share within that age",
        _server,
    ),
    "server.health_truth": Knob(
        "The health service says NOT_SERVING when the service cannot answer (its "
        "dependencies checked), so health-checking clients stop sending it RPCs",
        _server,
    ),
    "server.readiness": Knob(
        "The server says SERVING (and accepts connections) only once it can answer: warm "
        "caches and open dependencies first",
        _server,
    ),
    "server.late_headers": Knob(
        "The server sends its response headers with the answer, not before: a call whose "
        "headers were sent is committed, and no client retry policy can replay it when the "
        "backend dies",
        _server,
    ),
    "round_robin": Knob(
        "A load-balancing policy that spreads RPCs over every address (round_robin): a "
        "dead, slow or draining backend then costs a share of the traffic, not all of it",
        _read_policy,
        ("loadBalancingConfig", "loadBalancingPolicy"),
    ),
    "healthCheckConfig": Knob(
        "Client-side health checking (with round_robin; pick_first ignores it): a backend "
        "whose health service says NOT_SERVING gets no new RPC within milliseconds",
        _read_health,
    ),
    "retryPolicy": Knob(
        "A methodConfig retryPolicy with UNAVAILABLE in retryableStatusCodes: RPCs that fail "
        "before any answer (a killed backend, a reset or cut connection, a failed handshake) "
        "are replayed on another backend, so the client sees no error",
        _read_retry,
    ),
    "waitForReady": Knob(
        "A methodConfig waitForReady: true makes an RPC wait (until its deadline) for a "
        "backend instead of failing at once when none can serve; leave it unset where "
        "callers must learn of an outage fast",
        _read_wait_for_ready,
    ),
    "outlierDetection": Knob(
        "Outlier detection (outlier_detection_experimental) around the policy: a backend whose calls keep "
        "failing is ejected, so it stops getting first attempts (retries alone keep sending "
        "it a share, each costing a failed attempt); maxEjectionPercent below 100 keeps the "
        "client from ejecting every backend",
        _read_outlier,
        ("outlier_detection_experimental",),
    ),
    "grpc.keepalive_time_ms": Knob(
        "How often the client pings a connection: the only way a hung backend (accepts "
        "bytes, answers nothing) is noticed, also while the client is idle",
        _read_option("grpc.keepalive_time_ms"),
    ),
    "grpc.http2.ping_timeout_ms": Knob(
        "How long a ping may go unanswered before the connection is closed (the ping "
        "deadline in this grpcio; grpc.keepalive_timeout_ms has no effect)",
        _read_option("grpc.http2.ping_timeout_ms"),
    ),
    "grpc.keepalive_permit_without_calls": Knob(
        "Keep pinging connections with no call in flight, so a backend that hangs while the "
        "client is idle is out before the next RPC is sent to it",
        _read_option("grpc.keepalive_permit_without_calls"),
    ),
    "grpc.http2.max_pings_without_data": Knob(
        "0 keeps pinging when no data flows (the default stops after 2 pings)",
        _read_option("grpc.http2.max_pings_without_data"),
    ),
    "grpc.initial_reconnect_backoff_ms": Knob(
        "The first wait before reconnecting to a backend that went away",
        _read_option("grpc.initial_reconnect_backoff_ms"),
    ),
    "grpc.min_reconnect_backoff_ms": Knob(
        "Despite its name, grpc-core's minimum connect timeout (default 20 s): a connection "
        "attempt, TLS handshake included, is abandoned after this long, so a small value "
        "fails handshakes on a busy machine",
        _read_option("grpc.min_reconnect_backoff_ms"),
    ),
    "grpc.max_reconnect_backoff_ms": Knob(
        "The longest wait between reconnection attempts: after a long outage a backend is "
        "back for the client only at its next attempt",
        _read_option("grpc.max_reconnect_backoff_ms"),
    ),
    "grpc.dns_min_time_between_resolutions_ms": Knob(
        "How often the client may ask DNS again when a connection breaks or ages out",
        _read_option("grpc.dns_min_time_between_resolutions_ms"),
    ),
    "grpc.enable_retries": Knob(
        "Retries on or off for the whole channel (a retryPolicy does nothing when off)",
        _read_option("grpc.enable_retries"),
    ),
}


def explain(
    profile, answers, requirements: Requirements | None = None, requirement: str | None = None
) -> str:
    """The text a failed verdict carries: each setting in ``answers`` with the profile's
    value and purpose (and the profile's own ``why`` for it), then the bound's origin."""
    unknown = [name for name in answers if name not in CATALOGUE]
    if unknown:
        raise KeyError(f"no advice for {unknown}; known settings: {', '.join(CATALOGUE)}")
    lines = []
    if answers:
        lines.append(
            f'What answers this (the profile under test, "{profile.name}", and the '
            f"server under test):"
        )
        for name in answers:
            knob = CATALOGUE[name]
            why = next(
                (profile.why[key] for key in (name, *knob.why_keys) if key in (profile.why or {})),
                None,
            )
            lines.append(
                f"  - {name}: {knob.read(profile)}. {knob.what}."
                + (f' This profile says why: "{why}"' if why else "")
            )
    if requirements is not None and requirement is not None:
        lines.append(
            f"Bound: {requirements.describe(requirement)} — "
            f"{REQUIREMENT_DOCS[requirement]} Set your own in a requirements file "
            f"(pytest --chaos-requirements FILE, grpc-chaos gate --requirements "
            f"FILE, or the target file's [requirements])."
        )
    return "\n".join(lines)


def unknown_answers(function) -> list[str]:
    """Problems with the ``answers=`` keys written as literals in ``function``'s source
    (a scenario): each unknown key, where it is, and the nearest known one. Checked when
    scenarios are collected, so that a typo fails at once rather than when the verdict
    it would explain fails. Keys computed at run time are not seen here."""
    try:
        lines, first = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return []
    tree = ast.parse(textwrap.dedent("".join(lines)))
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg != "answers":
                continue
            values = (
                keyword.value.elts
                if isinstance(keyword.value, ast.Tuple | ast.List)
                else [keyword.value]
            )
            for value in values:
                if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                    continue
                if value.value in CATALOGUE:
                    continue
                near = difflib.get_close_matches(value.value, CATALOGUE, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                where = f"{inspect.getsourcefile(function)}:{first + value.lineno - 1}"
                problems.append(f"{where}: answers= names {value.value!r}, no known setting{hint}")
    return problems
