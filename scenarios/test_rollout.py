"""Rollout: what a release does to a fleet — restart every backend, scale in and out — and
what the servers must do for it to cost nothing: drain on their stop signal, tolerate the
clients' keepalive, age connections out, be ready before they say so.

These scenarios need nothing of the target but its command: the stop signal and grace are
the target's (SIGTERM and 10 s by default, as a scheduler sends them), and what is judged
is what a client sees, plus the server's health as a client reads it.
"""

from __future__ import annotations

import time

import pytest

from chaos import checks
from chaos.checks import Verdict
from chaos.faults import ScaleIn, ScaleOut, Terminate
from chaos.observe import grpc_log
from chaos.observe.server_watch import HealthWatch, ListenerWatch

pytestmark = pytest.mark.rollout

# The built-in Greeter is started as a production server would be: connections aged out
# (500 ms), so clients re-resolve DNS. A target's server runs as its command says.
chaos_fleet = {"max_connection_age_ms": 500}

GRACEFUL = ("server.graceful_shutdown", "healthCheckConfig", "retryPolicy")


def _stopped_gracefully(chaos, backend_id: str) -> Verdict:
    """The backend exited on its stop signal within its grace (not killed after it)."""
    fleet = chaos.fleet
    stop = fleet.backend(backend_id).last_stop
    name, grace = fleet.stop_signal.name, fleet.stop_grace_s
    text = f"{backend_id} {stop.describe(name, grace)}."
    return Verdict(
        "graceful_stop", not stop.forced, round(stop.seconds * 1000, 3), "ms", grace * 1000, text
    )


def test_rolling_restart_loses_no_rpc(chaos):
    """Property: restarting every backend in turn under load — its stop signal, then a new
    process on the same address, then the next once the new one serves — costs no
    client-visible error, and every backend exits within its grace.

    Bound: error_budget (0) failed RPCs from warm-up to the end; for a client that spreads
    RPCs, each backend serves again within recovery_ms (2000 ms) of its new process being
    ready (a restart is a short outage: the client reconnects at its next attempt); the
    stop within the target's grace (stop_grace_s, 10 s by default), or the server ignored
    its stop signal. A client that ignores health keeps sending to a stopping backend until
    its GOAWAY and may lose the RPCs that race it (the server drops calls it accepted but
    had not started when it stops): that shows here sometimes, and every time as
    drain_time in test_graceful_shutdown_drains.
    """
    need = chaos.requirements
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    for backend in list(chaos.fleet.ids):
        stop = chaos.nemesis.inject(Terminate(backend))
        chaos.expect(_stopped_gracefully(chaos, backend), answers=("server.graceful_shutdown",))
        back = chaos.nemesis.undo(stop).end_ns  # its replacement, on the same address
        if not chaos.shape.spreads:
            continue  # a client on one backend moved to another: it has no rotation to rejoin
        chaos.wait_for(
            load,
            lambda backend=backend, back=back: chaos.history.served_since(backend, back),
            need.recovery_ms / 1000 + 5,
            f"{backend} serving again",
        )
        chaos.expect(
            checks.recovery_time(
                chaos.history, backend=backend, after_ns=back, bound_ms=need.recovery_ms
            ),
            answers=("grpc.initial_reconnect_backoff_ms",),
        )
    load.wait_for(200, timeout=10)
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=GRACEFUL,
    )


def test_scale_in_loses_no_rpc(chaos):
    """Property: scaling in under load — the busiest backend's DNS record removed, then the
    backend stopped as a scheduler stops it — costs no client-visible error, and once it is
    gone no RPC goes to it.

    Bound: error_budget (0) failed RPCs; no RPC started on it after it exited (it is gone).
    The client learns of the removal at its next re-resolution, which the stop itself
    causes (the server's GOAWAY); a graceful stop lets RPCs in flight finish.
    """
    need = chaos.requirements
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    scale_in = chaos.nemesis.inject(ScaleIn(target))
    load.wait_for(500, timeout=20)
    chaos.expect(_stopped_gracefully(chaos, target), answers=("server.graceful_shutdown",))
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=GRACEFUL,
    )
    chaos.expect(checks.no_traffic_to(chaos.history, backend=target, start_ns=scale_in.in_force_ns))


def test_scaled_out_backend_gets_its_share(chaos):
    """Property: a backend added under load (started, then published in DNS) gets RPCs
    within the DNS-change bound, and then its share (at least min_share, 0.5, of an even
    share of the next 1,500 RPCs); no RPC fails.

    Bound: dns_join_ms (2000 ms) from its record being published — clients ask DNS again
    when a connection ends: the server's max connection age (500 ms for the built-in
    Greeter) ends one within that age, the re-resolution follows within the client's
    grpc.dns_min_time_between_resolutions_ms (1 s recommended, 30 s by default). A server
    that never ages connections out leaves clients on the old list until something
    breaks: the new backend gets nothing. Not applicable to a client that sends every RPC
    to one backend. The share is not judged by a test of a uniform split: with connections
    aged out every 500 ms each backend loses the picks made while it reconnects, unevenly
    on a busy machine (measured: 294 of 1,507 RPCs for the new backend against ~400 for
    each of the others at load average 8.7, p = 2e-5 under a chi-square test).
    """
    chaos.require_spread("a new backend's share")
    need = chaos.requirements
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    fault = ScaleOut()
    added = chaos.nemesis.inject(fault)
    new = fault.added[0]
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since(new, added.in_force_ns),
        need.dns_join_ms / 1000 + 2,
        f"{new} serving",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=new, after_ns=added.in_force_ns, bound_ms=need.dns_join_ms
        ),
        answers=("server.max_connection_age", "grpc.dns_min_time_between_resolutions_ms"),
    )
    joined = chaos.history.mark(f"{new} serving")
    load.wait_for(1500, timeout=20)
    chaos.expect(
        checks.share(chaos.history, new, chaos.fleet.ids, need.min_share, start_ns=joined),
        answers=("round_robin",),
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
    )


@pytest.mark.detects(naive="drain_time", pick_first="drain_time")
def test_graceful_shutdown_drains(chaos):
    """Property: when the busiest backend gets its stop signal under load, its health
    service says NOT_SERVING before its listener closes — early enough for clients to move
    away — the client stops sending it RPCs within the drain bound, RPCs in flight finish,
    and it exits within its grace.

    Bound: NOT_SERVING at least drain_ms (50 ms) before the listener closes (seen from
    outside: a Health.Watch stream straight to the backend, and connects probed every
    5 ms); the client's last RPC on it within drain_ms of NOT_SERVING; error_budget (0)
    failed RPCs; the exit within the target's grace. A server that exits at once, stops
    without a drain period, or never flips its health fails the notice: its clients learn
    of the shutdown from failures.
    """
    need = chaos.requirements
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    backend = chaos.fleet.backend(target)
    with chaos.fleet.direct_channel(backend) as channel:
        watch = HealthWatch(channel, chaos.fleet.health_services[-1])
        chaos.wait_until(lambda: watch.statuses or watch.error, 5, f"{target}'s health stream")
        listener = ListenerWatch(backend.listen, chaos.fleet.stop_grace_s + 10)
        try:
            stop = chaos.nemesis.inject(Terminate(target))
            closed = listener.wait(5)
        finally:
            listener.close()
            watch.close()
    not_serving = watch.first("NOT_SERVING", since_ns=stop.start_ns)
    if not_serving is not None:
        chaos.history.note("seen:NOT_SERVING", target, not_serving)
    if closed is not None:
        chaos.history.note("seen:listener closed", target, closed)
    load.wait_for(300, timeout=20)
    chaos.expect(
        checks.shutdown_notice(stop.start_ns, not_serving, closed, need.drain_ms),
        answers=("server.graceful_shutdown",),
    )
    assert not_serving is not None  # the notice above failed the scenario otherwise
    chaos.expect(
        checks.drain_time(
            chaos.history, backend=target, after_ns=not_serving, bound_ms=need.drain_ms
        ),
        answers=("healthCheckConfig", "round_robin"),
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=GRACEFUL,
    )
    chaos.expect(_stopped_gracefully(chaos, target), answers=("server.graceful_shutdown",))


# The keepalive scenario's idle phase. gRPC's default enforcement answers a client pinging
# once a second with GOAWAY too_many_pings ~3.3 s after a connection's last data (measured).
# A server that ages connections out may replace the connection at any moment of the phase,
# and the new one must then live 3.3 s idle: with any age of >= 3.3 s, some connection is
# idle that long within 3.3 + 3.3 s of the phase's start; 9 s leaves 2.4 s for reconnecting
# and a busy machine.
IDLE_S = 9.0


def test_keepalive_is_tolerated_through_idle_and_busy_phases(chaos, capfd):
    """Property: the servers' keepalive enforcement tolerates the client's keepalive pings
    through a busy phase, an idle phase and another busy phase: no server answers them with
    GOAWAY too_many_pings, and no RPC fails.

    Bound: 0 GOAWAY too_many_pings (gRPC logs each one it receives, naming the backend;
    the client then also halves how often it pings, slowing its hang detection), 0 failed
    RPCs. A grpc-core client pings at most once a second whatever its setting; gRPC's
    default server enforcement (no pings without calls, at most one every 5 minutes, 2
    strikes) closes an idle connection after ~3 s of such pings.
    """
    blind = grpc_log.unavailable()  # the GOAWAYs show only in gRPC's log: no log, no verdict
    if blind:
        pytest.fail(f"cannot judge keepalive enforcement: {blind}", pytrace=False)
    need = chaos.requirements
    with chaos.channel() as channel:
        call = chaos.caller(channel)
        chaos.spread_calls(call)
        busy = chaos.history.mark("busy")
        for _ in range(30):
            call()
        chaos.history.mark("idle")
        time.sleep(IDLE_S)  # the idle phase is the staging itself, not a wait
        chaos.history.mark("busy again")
        for _ in range(30):
            call(tolerate=True)
    goaways = [
        line
        for line in capfd.readouterr().err.splitlines()
        if "too_many_pings" in line and "ENHANCE_YOUR_CALM" in line
    ]
    named = {b.id for b in chaos.fleet.backends if any(b.published in line for line in goaways)}
    text = (
        f"{len(goaways)} GOAWAY too_many_pings received"
        + (
            f" from {', '.join(sorted(named))}: their keepalive enforcement refuses the "
            f"client's pings (gRPC's log: {goaways[0].strip()[-160:]})"
            if goaways
            else ": the servers tolerate the client's keepalive"
        )
        + "."
    )
    chaos.expect(
        Verdict("too_many_pings", not goaways, len(goaways), "goaways", 0, text),
        answers=("server.keepalive_enforcement", "grpc.keepalive_time_ms"),
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=busy, budget=need.error_budget),
        answers=("server.keepalive_enforcement",),
    )


def _probe_client(chaos):
    """A client of the scenario's own (like the claims' clients): round_robin that honours
    the health service and does NOT retry, so whatever a backend fails reaches it, and
    reconnects within 100 ms, so it is there as soon as the backend lets it in (gRPC's
    default 1 s backoff would let a backend's first second pass unseen)."""
    from chaos import profiles

    return profiles.parse(
        {
            "name": "readiness probe",
            "service_config": {
                "loadBalancingConfig": [{"round_robin": {}}],
                "healthCheckConfig": {"serviceName": chaos.fleet.health_services[-1]},
            },
            "channel_options": {
                "grpc.initial_reconnect_backoff_ms": 100,
                "grpc.max_reconnect_backoff_ms": 200,
            },
        }
    )


def test_restarted_backend_gets_no_rpc_before_it_can_answer(chaos):
    """Property (slow start): a backend restarted under load is sent no RPC before it can
    answer — judged by a client that honours the health service and does not retry (so
    nothing the backend fails is hidden): from its new process on, no RPC fails and none
    waits on it; the client under test meanwhile loses nothing.

    Bound: 0 failed RPCs on the probe client and no probe RPC slower than failover_ms
    (1000 ms) from the restart on; error_budget (0) for the client under test. A server that
    says SERVING (and accepts connections) before it can answer gets traffic it fails or
    holds; one that tells the truth is sent nothing until it is ready.
    """
    chaos.require_spread("a restarted backend's first RPCs")
    need = chaos.requirements
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    prober = _probe_client(chaos)
    probe = chaos.load(concurrency=8, profile=prober)
    chaos.warm_up(probe, profile=prober)
    target = "b2"
    stop = chaos.nemesis.inject(Terminate(target))
    # From the old process gone on: the new one may be sent RPCs as soon as it lets clients
    # in, before the restart has even returned (which waits for it to say SERVING).
    gone = stop.in_force_ns
    restart = chaos.nemesis.undo(stop)
    chaos.wait_for(
        probe,
        lambda: chaos.history.count_ok(target, restart.end_ns) >= 50,
        10,
        f"{target} answering again",
    )
    probe.wait_for(300, timeout=20)
    probe_rpcs = [r for r in chaos.history.window(gone) if probe.owns(r)]
    chaos.expect(checks.errors(probe_rpcs, budget=0), answers=("server.readiness",))
    chaos.expect(
        checks.latency(probe_rpcs, percentile=100, bound_ms=need.failover_ms),
        answers=("server.readiness",),
    )
    mine = [r for r in chaos.history.window(warm) if not probe.owns(r)]
    chaos.expect(checks.errors(mine, budget=need.error_budget), answers=GRACEFUL)
