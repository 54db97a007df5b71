"""The fault kinds a schedule may name: each a chaos.faults fault, its parameters, and what
it does to a backend's ability to serve (the oracle's model, docs/fuzzing.md).

    name         chaos.faults          effect on the target backend        detection bound
    ----------   -------------------   ---------------------------------   -----------------
    kill         Kill                  down (break)                        failover_ms
    restart      Restart (instant)     down (break) while it restarts      failover_ms
    terminate    Terminate             down (break) once it has exited     failover_ms
    proxy_down   ProxyDown             down (break)                        failover_ms
    cut          CutConnections (inst) down (break) for an instant         failover_ms
    reset_peer   ResetPeer toxic       down (break)                        failover_ms
    limit_data   LimitData toxic       down (break)                        failover_ms
    pause        Pause (SIGSTOP)       down (hang)                         hang_detection_ms
    blackhole    Blackhole toxic       down (hang)                         hang_detection_ms
    health       Health                down (drain): says NOT_SERVING      drain_ms
    drain        Drain                 down (drain), then exits            drain_ms
    app_error    AppError              fraction 1: down (eject)            ejection_ms
                                       fraction < 1: flaky (answers some)  -
    app_delay    SlowHandler           weather (slower)                    -
    latency      Latency toxic         weather                             -
    bandwidth    Bandwidth toxic       weather (splits replies downstream) -
    slicer       Slicer toxic          weather (splits replies downstream) -
    slow_close   SlowClose toxic       weather; a break behind it is silent: a hang
    certificate  Certificate           untrusted: no new connection        -
    dns_remove   DnsRemove             unpublished                         -
    dns_outage   DnsOutage (fleet)     weather for a running client        -
    goaway       Goaway (HTTP/2, inst) weather: streams finish, new ones   -
                                       on a new connection
    refused      RstStream             down (eject): every new stream      -
                 REFUSED_STREAM        refused, never processed
    trailers_only TrailersOnly         down (eject): every new stream      -
                 UNAVAILABLE           answered Trailers-Only UNAVAILABLE

The HTTP/2 kinds need the fleet's HTTP/2 points (``grpc-chaos fuzz`` starts them; a
scenario module or run with them: ``--chaos-http2``).

Kinds are grouped in classes (break, hang, drain, app, network weather, trust and DNS); the
strategy draws a class, then a kind in it, so that no class is drowned by the number of
kinds in another. The first class and its first kind are the simplest: a failure that any
break explains shrinks to a kill.

Parameters are drawn from small ladders (``Param``): a value off the ladder is refused in a
schedule, so a shrunk schedule never sits between two values where a failure is a coin toss.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaos import faults
from fleet.pki import SERVER_KINDS

# Effects (what the backend can still do) -----------------------------------------------
DOWN = "down"  # cannot serve: RPCs sent to it fail or hang, or it says so
FLAKY = "flaky"  # serves, but answers some calls with an error of its own
WEATHER = "weather"  # serves (slower, in pieces): nothing may fail
UNTRUSTED = "untrusted"  # serves its open connections; a new one fails its handshake
UNPUBLISHED = "unpublished"  # DNS no longer names it; a client drops it when it re-resolves

# Families of DOWN, each with its detection bound (chaos/verdicts/requirements.py) ---------------
BREAK, HANG, DRAIN, EJECT = "break", "hang", "drain", "eject"
DETECTION = {
    BREAK: "failover_ms",
    HANG: "hang_detection_ms",
    DRAIN: "drain_ms",
    EJECT: "ejection_ms",
}

# Capabilities a kind needs of the fleet (a target without them cannot have it) ---------
PROCESS, CONTROL, PROXY, DNS, HTTP2 = "process", "control", "proxy", "dns", "http2"

# How long a kind may keep its target busy after its planned end: a kill, terminate or
# drain is reverted by a restart (a backend answers ~100 ms after spawn, docs/grpc-facts.md; up to
# ~1 s on a busy machine), a terminate takes the server's drain (300 ms) and grace (1 s) to
# be in force. Faults on one backend that need the same thing may not overlap within it.
RESTART_SLACK_MS = 1500
CONTROL_SLACK_MS = 100


@dataclass(frozen=True)
class Param:
    """One parameter: its ladder of allowed values, simplest first."""

    name: str
    values: tuple

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or value not in self.values:
            shown = ", ".join(repr(v) for v in self.values)
            return f"{value!r} is not one of {shown}"
        return None


@dataclass(frozen=True)
class Effect:
    """What a fault does to its backend, as the oracle sees it."""

    state: str
    family: str | None = None  # for DOWN
    splits_replies: bool = False  # a reply may reach the client in pieces (committed early)
    silences_breaks: bool = False  # a break behind it is not seen: it is a hang


@dataclass(frozen=True)
class Kind:
    """A fault kind: ``make(backend_id, params)`` builds the chaos.faults fault (backend id
    None for a fleet-wide kind); ``event`` is the kind its Event carries in the history."""

    name: str
    group: str
    event: str
    # (backend id, params) -> the fault; the id is a str, None only for a fleet-wide kind, so
    # each kind's own builder takes what it gets (a per-backend kind never sees None).
    make: Callable[..., faults.Fault]
    effect: Effect | Callable[[dict], Effect]
    about: str
    params: tuple[Param, ...] = ()
    instant: bool = False
    fleet_wide: bool = False
    slots: tuple[str, ...] = ()  # what it holds on its target while in force
    needs: frozenset = frozenset()
    slack_ms: int = CONTROL_SLACK_MS

    def effect_of(self, detail: dict) -> Effect:
        """The effect of one recorded fault (its event detail holds the parameters)."""
        return self.effect(detail) if callable(self.effect) else self.effect

    def defaults(self) -> dict:
        return {p.name: p.values[0] for p in self.params}


def _app_error_effect(detail: dict) -> Effect:
    # Failing every call: the client must stop sending it calls (eject). Failing some: the
    # backend's own answers, which callers may see; the client must not add failures.
    if float(detail.get("fraction", 1.0)) >= 1.0:
        return Effect(DOWN, EJECT)
    return Effect(FLAKY)


def _toxic_effect(splitting: bool = False, silencing: bool = False):
    def effect(detail: dict) -> Effect:
        downstream = detail.get("stream", "downstream") == "downstream"
        return Effect(WEATHER, splits_replies=splitting and downstream, silences_breaks=silencing)

    return effect


STREAMS = ("downstream", "upstream")

_KINDS = (
    # -- break: the connection dies and the client is told at once ------------------------
    Kind(
        "kill",
        "break",
        "kill",
        lambda b, p: faults.Kill(b),
        Effect(DOWN, BREAK),
        "kill -9; reverted by a restart",
        slots=("process",),
        needs=frozenset({PROCESS}),
        slack_ms=RESTART_SLACK_MS,
    ),
    Kind(
        "proxy_down",
        "break",
        "proxy:down",
        lambda b, p: faults.ProxyDown(b),
        Effect(DOWN, BREAK),
        "its proxy stops listening and closes every connection",
        slots=("proxy",),
        needs=frozenset({PROXY}),
    ),
    Kind(
        "reset_peer",
        "break",
        "toxic:reset_peer",
        lambda b, p: faults.ResetPeer(b),
        Effect(DOWN, BREAK),
        "every connection reset (RST) at its next request bytes",
        needs=frozenset({PROXY}),
    ),
    Kind(
        "limit_data",
        "break",
        "toxic:limit_data",
        lambda b, p: faults.LimitData(b, p["bytes"], stream="upstream"),
        Effect(DOWN, BREAK),
        "every connection closed after so many request bytes (200 is less than a TLS "
        "ClientHello: no new connection gets through)",
        params=(Param("bytes", (200, 100, 0)),),
        needs=frozenset({PROXY}),
    ),
    Kind(
        "restart",
        "break",
        "restart",
        lambda b, p: faults.Restart(b),
        Effect(DOWN, BREAK),
        "kill -9 and start again at once",
        instant=True,
        slots=("process",),
        needs=frozenset({PROCESS}),
        slack_ms=RESTART_SLACK_MS,
    ),
    Kind(
        "terminate",
        "break",
        "terminate",
        lambda b, p: faults.Terminate(b),
        Effect(DOWN, BREAK),
        "stopped as a scheduler stops it (SIGTERM, its graceful shutdown); reverted by a restart",
        slots=("process",),
        needs=frozenset({PROCESS}),
        slack_ms=RESTART_SLACK_MS,
    ),
    Kind(
        "cut",
        "break",
        "proxy:cut",
        lambda b, p: faults.CutConnections(b),
        Effect(DOWN, BREAK),
        "every open connection closed at once (clients reconnect)",
        instant=True,
        slots=("proxy",),
        needs=frozenset({PROXY}),
    ),
    # -- hang: the connection stays open and silent -----------------------------------------
    Kind(
        "pause",
        "hang",
        "pause",
        lambda b, p: faults.Pause(b),
        Effect(DOWN, HANG),
        "SIGSTOP: hangs with its connections open; SIGCONT to revert",
        slots=("process",),
        needs=frozenset({PROCESS}),
    ),
    Kind(
        "blackhole",
        "hang",
        "toxic:timeout",
        lambda b, p: faults.Blackhole(b),
        Effect(DOWN, HANG),
        "every request byte and ping swallowed by its proxy",
        needs=frozenset({PROXY}),
    ),
    # -- drain: the backend says it should not be used ------------------------------------
    Kind(
        "health",
        "drain",
        "health",
        lambda b, p: faults.Health(b, p["status"]),
        Effect(DOWN, DRAIN),
        "its health service says so; SERVING to revert",
        params=(Param("status", ("NOT_SERVING", "SERVICE_UNKNOWN")),),
        slots=("health",),
        needs=frozenset({CONTROL}),
    ),
    Kind(
        "drain",
        "drain",
        "drain",
        lambda b, p: faults.Drain(b, p["wait_ms"], p["grace_ms"]),
        Effect(DOWN, DRAIN),
        "graceful drain: NOT_SERVING, wait, stop with grace; reverted by a restart",
        params=(Param("wait_ms", (500, 200, 1000)), Param("grace_ms", (1000, 500))),
        slots=("process", "health"),
        needs=frozenset({PROCESS, CONTROL}),
        slack_ms=RESTART_SLACK_MS,
    ),
    # -- application: the process and network are fine, its answers are not ---------------
    Kind(
        "app_error",
        "app",
        "app:error",
        lambda b, p: faults.AppError(b, p["code"], fraction=p["fraction"]),
        _app_error_effect,
        "SayHello fails with this code (every call, or a fraction)",
        params=(
            Param("code", ("UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED")),
            Param("fraction", (1.0, 0.5, 0.25)),
        ),
        slots=("app",),
        needs=frozenset({CONTROL}),
    ),
    Kind(
        "app_delay",
        "app",
        "app:delay",
        lambda b, p: faults.SlowHandler(b, p["delay_ms"]),
        Effect(WEATHER),
        "SayHello answers this much later",
        params=(Param("delay_ms", (50, 20, 100, 200, 400)),),
        slots=("app",),
        needs=frozenset({CONTROL}),
    ),
    # -- network weather: slower, in pieces, closing late — nothing may fail -----------------
    Kind(
        "latency",
        "weather",
        "toxic:latency",
        lambda b, p: faults.Latency(b, p["ms"], p["jitter_ms"], p["stream"]),
        _toxic_effect(),
        "every chunk delayed",
        params=(
            Param("ms", (50, 10, 100, 200)),
            Param("jitter_ms", (0, 10, 50)),
            Param("stream", STREAMS),
        ),
        needs=frozenset({PROXY}),
    ),
    Kind(
        "bandwidth",
        "weather",
        "toxic:bandwidth",
        lambda b, p: faults.Bandwidth(b, p["kb_per_s"], p["stream"]),
        _toxic_effect(splitting=True),
        "throughput limited (KB/s)",
        params=(Param("kb_per_s", (256, 64, 1024)), Param("stream", STREAMS)),
        needs=frozenset({PROXY}),
    ),
    Kind(
        "slicer",
        "weather",
        "toxic:slicer",
        lambda b, p: faults.Slicer(
            b, p["average_size"], p["average_size"] // 2, p["delay_us"], p["stream"]
        ),
        _toxic_effect(splitting=True),
        "chunks cut into pieces sent apart (bytes unchanged)",
        params=(
            Param("average_size", (64, 16, 256)),
            Param("delay_us", (100, 0, 500)),
            Param("stream", STREAMS),
        ),
        needs=frozenset({PROXY}),
    ),
    Kind(
        "slow_close",
        "weather",
        "toxic:slow_close",
        lambda b, p: faults.SlowClose(b, p["delay_ms"]),
        _toxic_effect(silencing=True),
        "closing delayed: a backend that dies behind it goes silent instead",
        params=(Param("delay_ms", (5000, 1000)),),
        needs=frozenset({PROXY}),
    ),
    # -- trust and naming ----------------------------------------------------------------
    Kind(
        "certificate",
        "trust",
        "certificate",
        lambda b, p: faults.Certificate(b, p["cert"]),
        Effect(UNTRUSTED),
        "serves a certificate no client may trust to new connections",
        params=(Param("cert", tuple(k for k in SERVER_KINDS if k != "good")),),
        slots=("cert",),
        needs=frozenset({CONTROL}),
    ),
    Kind(
        "dns_remove",
        "trust",
        "dns:remove",
        lambda b, p: faults.DnsRemove(b),
        Effect(UNPUBLISHED),
        "its address no longer published in DNS",
        slots=("dns_records",),
        needs=frozenset({DNS}),
    ),
    Kind(
        "dns_outage",
        "trust",
        "dns:outage",
        lambda b, p: faults.DnsOutage(),
        Effect(WEATHER),
        "the DNS server is down (a running client keeps its addresses)",
        fleet_wide=True,
        slots=("dns_server",),
        needs=frozenset({DNS}),
    ),
    # -- gRPC's own protocol, at the backend's HTTP/2 point --------------------------------
    Kind(
        "goaway",
        "protocol",
        "http2:goaway",
        lambda b, p: faults.Goaway(b, grace_ms=p["grace_ms"], if_open=True),
        Effect(WEATHER),
        "a graceful GOAWAY (NO_ERROR) on its open connections, closed after the grace: "
        "streams in flight finish, new RPCs go on a new connection (the grace exceeds every "
        "handler delay and latency drawn, so no stream is cut)",
        params=(Param("grace_ms", (1000, 2000)),),
        instant=True,
        needs=frozenset({HTTP2}),
    ),
    Kind(
        "refused",
        "protocol",
        "http2:rst_stream",
        lambda b, p: faults.RstStream(b, "REFUSED_STREAM"),
        Effect(DOWN, EJECT),
        "every new stream reset REFUSED_STREAM (never processed): a retry policy replays it",
        slots=("streams",),
        needs=frozenset({HTTP2}),
    ),
    Kind(
        "trailers_only",
        "protocol",
        "http2:trailers_only",
        lambda b, p: faults.TrailersOnly(b, "UNAVAILABLE", "from the HTTP/2 point"),
        Effect(DOWN, EJECT),
        "every new stream answered Trailers-Only UNAVAILABLE (not processed, not committed)",
        slots=("streams",),
        needs=frozenset({HTTP2}),
    ),
)

REGISTRY: dict[str, Kind] = {k.name: k for k in _KINDS}
BY_EVENT: dict[str, Kind] = {k.event: k for k in _KINDS}
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(k.group for k in _KINDS))
# Slots that belong to the fleet, not to one backend (a DnsRemove's revert publishes every
# record again, so two may not overlap even on different backends).
FLEET_SLOTS = frozenset({"dns_records", "dns_server"})


class UnknownKind(ValueError):
    """A fault kind that is not in the registry; the message names the known ones."""


def get(name: str) -> Kind:
    """The kind called ``name``; UnknownKind with the nearest names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        near = difflib.get_close_matches(str(name), REGISTRY, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise UnknownKind(
            f"unknown fault kind {name!r}: {hint}known kinds: {', '.join(REGISTRY)}"
        ) from None


def available(
    capabilities: set[str] | frozenset[str], only: tuple[str, ...] | None = None
) -> tuple[Kind, ...]:
    """The kinds a fleet with these capabilities can have (``only``: just these names, each
    checked), in registry order."""
    names = set(REGISTRY) if only is None else {get(n).name for n in only}
    return tuple(k for k in _KINDS if k.name in names and k.needs <= set(capabilities))


def of_event(kind: str) -> Kind | None:
    """The registry kind of a recorded event kind ("toxic:latency" -> latency), or None."""
    return BY_EVENT.get(kind)


def capabilities(fleet) -> frozenset[str]:
    """What a fleet offers faults: its backends' processes and DNS always, the Control
    service when its backends serve it, proxies when it is proxied, HTTP/2 faults when it
    has HTTP/2 points."""
    found = {PROCESS, DNS}
    if fleet.has_control:
        found.add(CONTROL)
    if fleet.proxies is not None:
        found.add(PROXY)
    if getattr(fleet, "http2", False):
        found.add(HTTP2)
    return frozenset(found)
