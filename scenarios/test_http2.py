"""HTTP/2: protocol events on a backend's connections — GOAWAYs, RST_STREAM, withheld PING
ACKs, a stream limit, committed-then-silent responses, Trailers-Only answers — injected by
the HTTP/2 fault point in front of each backend (client → proxy → point → backend,
docs/http2.md).

gRPC's rules are precise: a stream above a GOAWAY's last-stream-id was never processed and
is retried transparently; a refused stream or a Trailers-Only UNAVAILABLE is replayed only
by a retry policy; a keepalive ping without ACK must close the connection; a call whose
response headers arrived is committed and no retry policy may replay it. The point
presents the backend's own certificate (and follows a certificate fault), so TLS is as the
client would meet it without the point.
"""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.checks.verdict import Verdict, explain, ms
from chaos.faults import (
    Goaway,
    GoawayBelowInFlight,
    HeadersThenNothing,
    MaxConcurrentStreams,
    RstStream,
    StarveFlowControl,
    TooManyPings,
    TrailersOnly,
    WithholdPingAcks,
)
from chaos.faults.http2 import record_events

pytestmark = pytest.mark.http2
chaos_fleet = {"http2": True}

RETRIES = ("retryPolicy",)
KEEPALIVE = ("grpc.keepalive_time_ms", "grpc.http2.ping_timeout_ms", "retryPolicy")
# Streams the point answers itself (refused, Trailers-Only) before the property is judged:
# enough that a client without a retry policy fails some every time.
HIT_STREAMS = 30
# The stream limit: one stream for the health-check Watch, one for RPCs (see the scenario).
STREAM_LIMIT = 2
# Committed-then-silent RPCs: a handful is the property, more only waits longer.
MUTED = 5
# Their deadline (the scenario's own, shorter than the load's 2 s so the scenario is short)
# and how late after it the client may end them: a busy machine's scheduling, not a bound
# on the client's resilience.
MUTED_DEADLINE_S = 1.0
DEADLINE_MARGIN_MS = 500
# Flow-control starvation: responses larger than the window the point grants the backend
# for one stream (256 KiB), so that each stalls once its window is spent; 3 in flight at
# most, so that the stalled ones never spend the connection's window (1 MiB) too. Their
# deadline is the scenario's own (short, so that the stalls end within the scenario), and
# the starvation lasts long enough that an RPC stalled at its start outlives a deadline
# that is not enforced by a full second.
LARGE_BYTES = 384 * 1024
STARVED_DEADLINE_S = 1.0
STARVED_FOR_S = STARVED_DEADLINE_S + DEADLINE_MARGIN_MS / 1000 + 1.0
# What gRPC maps a server's RST_STREAM to (PROTOCOL-HTTP2.md, "Errors").
RESET_STATUS = {"CANCEL": "CANCELLED", "INTERNAL_ERROR": "INTERNAL"}
# The load's deadline while a backend accepts no stream: RPCs a client puts there wait for
# it, and a shorter one keeps such a client's scenario short.
NO_STREAM_DEADLINE_S = 1.0


def _hits(chaos, backend: str, counter: str) -> int:
    return int(chaos.fleet.http2_point(backend).stats()["counters"].get(counter, 0))


def test_graceful_goaway_under_load_loses_no_rpc(chaos):
    """Property: a graceful GOAWAY (NO_ERROR, last-stream-id = the highest stream, the
    connection closed 1 s later — a server's graceful restart or max connection age) on
    every connection to the busiest backend, with RPCs in flight on it, costs no RPC: the
    ones in flight finish on the old connection, new ones go on a new connection, and the
    backend serves again within the recovery bound.

    Bound: error_budget (0) failed RPCs — a GOAWAY that lets its streams finish breaks
    nothing, under any profile; recovery_ms (2000 ms) until the backend answers an RPC
    started after the GOAWAY — the client connects again at once (it was told, nothing
    failed), measured in milliseconds.
    """
    _goaway_under_load(chaos, lambda b: Goaway(b, grace_ms=1000))


@pytest.mark.detects(naive="errors")
def test_too_many_pings_goaway_under_load_loses_no_rpc(chaos):
    """Property: a GOAWAY ENHANCE_YOUR_CALM "too_many_pings" with the connection closed at
    once (what a gRPC server's keepalive enforcement sends a client that pings too often)
    on every connection to the busiest backend, RPCs held in flight on it, costs no RPC:
    the ones cut had no answer yet, so the retry policy replays them on another backend,
    and the client connects to that backend again within the recovery bound.

    Bound: error_budget (0) failed RPCs — the cut RPCs are not committed (the backends send
    their headers with the answer); recovery_ms (2000 ms) until the backend answers an RPC
    started after the GOAWAY. A client without a retry policy (naive) fails the cut ones.
    """
    _goaway_under_load(chaos, TooManyPings)


def _goaway_under_load(chaos, goaway_on) -> None:
    """16 in flight, the busiest backend's handlers held 20 ms (RPCs always in flight on
    it, none committed), ``goaway_on(backend)`` injected there: no RPC may fail, and the
    backend must serve an RPC started after it within the recovery bound."""
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(300, timeout=10)
    target = chaos.history.busiest(warm)
    chaos.hold_rpcs_on(target, delay_ms=20)
    goaway = chaos.nemesis.inject(goaway_on(target))
    load.wait_for(1500, timeout=20)
    chaos.settle(load)
    need = chaos.requirements
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget), answers=RETRIES
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=target, after_ns=goaway.in_force_ns, bound_ms=need.recovery_ms
        ),
        answers=("grpc.initial_reconnect_backoff_ms",),
    )


@pytest.mark.needs("control")
def test_goaway_below_streams_in_flight_is_retried_transparently(chaos):
    """Property: a GOAWAY whose last-stream-id is below the streams in flight on the
    busiest backend (held there first, so some always are) costs no RPC: those streams
    were not processed, and gRPC retries them on a new connection on its own — without a
    retry policy.

    Bound: error_budget (0) failed RPCs, under every profile: the transparent retry is
    gRPC's rule (gRFC A6), not a setting.
    """
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(300, timeout=10)
    target = chaos.history.busiest(warm)
    chaos.hold_rpcs_on(target, delay_ms=500, at_least=3)
    chaos.nemesis.inject(GoawayBelowInFlight(target))
    load.wait_for(1000, timeout=20)
    chaos.settle(load)
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=chaos.requirements.error_budget),
        answers=RETRIES,
    )


def _answered_by_the_point(chaos, fault, counter: str) -> None:
    """One RPC at a time (a retry then always goes to the next backend of the rotation;
    with many in flight one could meet the fault five times in a row), the fault on the
    busiest backend until it hit HIT_STREAMS streams, then no RPC may have failed."""
    load = chaos.load(concurrency=1)
    warm = chaos.warm_up(load)
    load.wait_for(30, timeout=10)
    target = chaos.history.busiest(warm)
    before = _hits(chaos, target, counter)
    active = chaos.nemesis.inject(fault(target))
    # The client's retries bring the hits: with backoffs of seconds they never come.
    load.wait_until(
        lambda: _hits(chaos, target, counter) >= before + HIT_STREAMS,
        15,
        f"{HIT_STREAMS} streams to {target} answered by the point",
        progress=lambda: f"{_hits(chaos, target, counter) - before} answered",
        answers=("retryPolicy", "outlierDetection"),
    )
    chaos.nemesis.undo(active)
    chaos.settle(load)
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=chaos.requirements.error_budget),
        answers=RETRIES,
    )


@pytest.mark.detects(naive="errors")
def test_refused_streams_are_replayed_by_the_retry_policy(chaos):
    """Property: while the busiest backend's streams are refused (RST_STREAM
    REFUSED_STREAM: never processed), no RPC fails: each refused one is replayed on
    another backend.

    Bound: error_budget (0) failed RPCs over 30 refused streams. gRFC A6 allows a
    transparent retry of a refused stream, but grpcio 1.85 does not make one (measured:
    UNAVAILABLE without a retry policy, docs/http2.md): only a retry policy on UNAVAILABLE
    saves them — a client without one (naive) fails a third of its RPCs.
    """
    _answered_by_the_point(
        chaos, lambda b: RstStream(b, code="REFUSED_STREAM"), "streams_rst_stream"
    )


@pytest.mark.detects(naive="errors")
def test_trailers_only_unavailable_is_replayed_elsewhere(chaos):
    """Property: while the busiest backend answers every call with a Trailers-Only
    UNAVAILABLE (one HEADERS frame, no message: not processed, not committed), no RPC
    fails: each is replayed on another backend.

    Bound: error_budget (0) failed RPCs over 30 such answers: a retry policy on
    UNAVAILABLE replays them; a client without one (naive) fails a third of its RPCs.
    """
    _answered_by_the_point(
        chaos,
        lambda b: TrailersOnly(b, code="UNAVAILABLE", message="from the HTTP/2 point"),
        "streams_trailers_only",
    )


@pytest.mark.detects(naive="ejection_time", pick_first="ejection_time")
def test_a_backend_resetting_every_stream_internal_error_is_ejected(chaos):
    """Property: when the busiest backend resets every new stream with RST_STREAM
    INTERNAL_ERROR (its HTTP/2 layer, or a proxy in front of it, broken while its health
    still says SERVING), each RPC reset there fails INTERNAL — the status gRPC maps
    INTERNAL_ERROR to, which the caller's error handling sees — and the client ejects the
    backend within the ejection bound.

    Bound: failure_reason — 0 RPCs failed with another status; ejection_ms (1500 ms) from the
    resets starting to the backend getting no attempt for 500 ms, as when the application
    fails every call (the app family): outlier detection ejects it at the end of a 0.5 s
    interval in which it failed half of at least 10 calls. Health checking cannot see it
    (the Watch stream was opened before), nor keepalive (PINGs are answered). A client
    without outlier detection (naive, pick_first) keeps sending it a share of every RPC.
    """
    _resetting_backend_is_ejected(chaos, "INTERNAL_ERROR")


@pytest.mark.detects(naive="ejection_time", pick_first="ejection_time")
def test_a_backend_resetting_every_stream_cancel_is_ejected(chaos):
    """Property: as with INTERNAL_ERROR, for RST_STREAM CANCEL (a server, or a proxy,
    cancelling every call it receives): each RPC reset there fails CANCELLED, and the
    client ejects the backend within the ejection bound.

    Bound: failure_reason — 0 RPCs failed with another status; ejection_ms (1500 ms).
    """
    _resetting_backend_is_ejected(chaos, "CANCEL")


def _resetting_backend_is_ejected(chaos, code: str) -> None:
    """8 in flight; every new stream to the busiest backend reset with ``code`` until the
    ejection bound and a quiet period passed: the ejection, then the mapped status."""
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    sampler = chaos.attempts(load)
    resets = chaos.nemesis.inject(RstStream(target, code=code))
    chaos.expect_ejected(
        load, sampler, target, resets.in_force_ns, answers=("outlierDetection", "round_robin")
    )
    chaos.nemesis.undo(resets)
    chaos.settle(load)
    # Every RPC that failed since, failed with the status gRPC maps the code to (a deadline
    # a stalled machine caused is left to the judge, through each failure's lifetime).
    failed = [r for r in chaos.history.window(resets.in_force_ns) if not r.ok]
    chaos.expect(
        checks.failure_reason(
            chaos.history,
            failed,
            RESET_STATUS[code],
            {},
            origin_ns=resets.in_force_ns,
            origin_name=f"the {code} resets",
        )
    )


def _first_close(chaos, backend: str, after_ns: int):
    """The first connection to ``backend`` the point saw close after ``after_ns`` (its
    events copied into the history as they are read), or None."""
    record_events(chaos.history, chaos.fleet)
    closes = [
        e
        for e in chaos.history.events
        if e.kind == "http2:close" and e.target == backend and e.start_ns >= after_ns
    ]
    return min(closes, key=lambda e: e.start_ns) if closes else None


@pytest.mark.detects(naive="keepalive_close")
def test_withheld_ping_acks_close_the_connection_within_the_hang_bound(chaos):
    """Property: when the busiest backend's PING ACKs stop coming back (everything else
    still flows — what a dead peer looks like to keepalive, and only to it), the client
    closes its connection to it within the hang detection bound, and no RPC fails.

    Bound: hang_detection_ms (2500 ms) from the ACKs being withheld to the point seeing the
    connection close — a keepalive ping at least every second under load, + the 500 ms
    ping timeout, + 1 s of margin (measured under 1.5 s here; grpcio 1.85 closes on
    grpc.http2.ping_timeout_ms, not on grpc.keepalive_timeout_ms). error_budget (0): the
    RPCs on the closed connection had no answer yet, so a retry policy replays them. A
    client without keepalive (naive) never closes it: it would never notice a peer that
    stopped answering either.
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    need = chaos.requirements
    withheld = chaos.nemesis.inject(WithholdPingAcks(target))
    closed = None

    def seen_closed() -> bool:
        nonlocal closed
        closed = _first_close(chaos, target, withheld.in_force_ns)
        return closed is not None

    chaos.wait_for(
        load, seen_closed, need.hang_detection_ms / 1000 + 1, f"a connection to {target} closed"
    )
    chaos.nemesis.undo(withheld)
    chaos.settle(load)
    bound = need.hang_detection_ms
    took = None if closed is None else ms(closed.start_ns - withheld.in_force_ns)
    passed = took is not None and took <= bound
    what = (
        f"{target}'s connection closed by the {closed.detail.get('by')} {took:.0f} ms after "
        f"its PING ACKs were withheld"
        if closed is not None and took is not None
        else f"no connection to {target} closed within {bound + 1000:.0f} ms of its PING "
        f"ACKs being withheld: the client never noticed"
    )
    chaos.expect(
        Verdict(
            "keepalive_close",
            passed,
            took,
            "ms",
            bound,
            explain(
                f"{what} (bound {bound:.0f} ms).",
                chaos.history,
                closed.start_ns if closed else withheld.in_force_ns,
            ),
            span=(withheld.in_force_ns, closed.start_ns) if closed else None,
            shown="" if took is not None else "never",
        ),
        answers=KEEPALIVE[:2],
        requirement="hang_detection_ms",
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget), answers=KEEPALIVE
    )


def test_a_stream_limit_queues_rpcs_without_failing_them(chaos):
    """Property: when the busiest backend lowers SETTINGS_MAX_CONCURRENT_STREAMS to 2
    under 16 RPCs in flight, no RPC fails: the client queues the RPCs above the limit and
    sends them as streams end.

    Bound: error_budget (0) failed RPCs over 1000 RPCs, under every profile: queueing at
    the limit is the HTTP/2 rule, not a setting.

    Staging: 2, not 1. A client with client-side health checking keeps a Watch stream open
    on every connection for good, and it holds one slot: with a limit of 1 every RPC the
    client sends that backend waits for its deadline (measured under the recommended
    profile: 160 DEADLINE_EXCEEDED of ~450 RPCs; naive, without health checking, passes).
    A server that allows one stream starves such clients; that is the server's to avoid.
    """
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(300, timeout=10)
    target = chaos.history.busiest(warm)
    chaos.nemesis.inject(MaxConcurrentStreams(target, STREAM_LIMIT))
    load.wait_for(1000, timeout=20)
    chaos.settle(load)
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=chaos.requirements.error_budget)
    )


def test_rpcs_committed_by_headers_then_silence_end_at_their_deadline(chaos):
    """Property: RPCs to which the busiest backend's response headers arrive and then
    nothing (no message, no trailers) are committed: they end at their deadline, exactly
    those and no other RPC fails, and no retry policy replays them (gRFC A6) — a client
    that did would turn some of them into OK.

    Bound: the 5 committed RPCs (the point counts the streams it muted after their
    headers) fail, all DEADLINE_EXCEEDED, and nothing else fails; each ends within its
    1 s deadline + 500 ms (the scenario's own deadline, short to keep the scenario short;
    the margin is the machine's scheduling). Only the server can answer this: headers sent
    with the answer, not before (server.late_headers).
    """
    load = chaos.load(concurrency=8, deadline_s=MUTED_DEADLINE_S)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    target = chaos.history.busiest(warm)
    before = _hits(chaos, target, "responses_muted")
    muting = chaos.nemesis.inject(HeadersThenNothing(target, count=MUTED))
    load.wait_until(
        lambda: _hits(chaos, target, "responses_muted") >= before + MUTED,
        10,
        f"{MUTED} responses of {target} muted after their headers",
        progress=lambda: f"{_hits(chaos, target, 'responses_muted') - before} muted",
    )
    chaos.nemesis.undo(muting)
    chaos.settle(load)
    muted = _hits(chaos, target, "responses_muted") - before
    failed = [r for r in chaos.history.window(warm) if not r.ok]
    late = [r for r in failed if r.code != "DEADLINE_EXCEEDED"]
    passed = len(failed) == muted and not late
    if len(failed) < muted:
        what = f"only {len(failed)} of {muted} committed RPCs failed: the others were replayed"
    elif late:
        what = f"{len(late)} failed RPC(s) ended {late[0].code}, not at their deadline"
    else:
        what = f"{len(failed)} RPC(s) failed for {muted} committed by headers then silence"
    chaos.expect(
        Verdict(
            "committed",
            passed,
            len(failed),
            "RPCs",
            muted,
            explain(
                f"{what}. Each of the {muted} streams got {target}'s response headers and "
                f"then nothing: committed, so no retry policy may replay it and only its "
                f"deadline ends it.",
                chaos.history,
                muting.in_force_ns,
                [r.id for r in failed],
            ),
            comparison="==",
            # More failures than committed RPCs may be a stalled machine's; fewer never are.
            culprits=tuple((r.start_ns, r.end_ns) for r in failed) if len(failed) > muted else (),
            data={"committed": muted, "failed": len(failed)},
            shown="" if passed else what,
        ),
        answers=("server.late_headers",),
    )
    chaos.expect(_ended_by_deadline(failed, MUTED_DEADLINE_S), answers=("server.late_headers",))


def _ended_by_deadline(rpcs, deadline_s: float) -> Verdict:
    """Every one of ``rpcs`` (failed ones too) ended within ``deadline_s`` + the margin."""
    return checks.latency(
        rpcs, percentile=100, bound_ms=deadline_s * 1000 + DEADLINE_MARGIN_MS, only_ok=False
    )


@pytest.mark.needs("payload")
def test_a_response_stalled_by_flow_control_ends_at_its_deadline(chaos):
    """Property: when the busiest backend's large responses stall mid-way for want of
    flow-control credit (the stream's window never reopens: what a peer that stopped
    reading, or a proxy that stopped forwarding, looks like to gRPC), each RPC still ends by
    its deadline — DEADLINE_EXCEEDED, not later. Keepalive cannot see such a stall (PINGs
    are answered, the connection is alive); only the client's deadline ends the RPC.

    Bound: every RPC started during the 2.5 s of starvation ends within its 1 s deadline +
    500 ms (the scenario's own deadline; the margin is the machine's scheduling), and the
    ones that failed failed DEADLINE_EXCEEDED. A client that enforces no deadline on a
    stream that has started answering (or sets none) waits until the starvation ends: it
    fails (tests/test_detection.py plants one).
    """
    load = chaos.load(concurrency=3, deadline_s=STARVED_DEADLINE_S, payload_bytes=LARGE_BYTES)
    warm = chaos.warm_up(load)
    load.wait_for(30, timeout=20)
    target = chaos.history.busiest(warm)
    before = _hits(chaos, target, "responses_starved")
    starving = chaos.nemesis.inject(StarveFlowControl(target))
    load.wait_until(
        lambda: _hits(chaos, target, "responses_starved") > before,
        10,
        f"a large response of {target} stalled for flow-control credit",
    )
    done = starving.in_force_ns + int(STARVED_FOR_S * 1e9)
    load.wait_until(lambda: chaos.history.now() >= done, STARVED_FOR_S + 5, "the starvation lasted")
    cleared = chaos.nemesis.undo(starving).end_ns
    chaos.settle(load)
    started = [r for r in chaos.history.rpcs if starving.in_force_ns <= r.start_ns < cleared]
    failed = [r for r in started if not r.ok]
    chaos.expect(_ended_by_deadline(started, STARVED_DEADLINE_S))
    chaos.expect(
        checks.failure_reason(
            chaos.history,
            failed,
            "DEADLINE_EXCEEDED",
            {},
            origin_ns=starving.in_force_ns,
            origin_name="the starvation",
        )
    )


@pytest.mark.detects(naive="errors")
def test_a_backend_accepting_no_stream_gets_no_rpc_on_its_new_connections(chaos):
    """Property: when the busiest backend advertises SETTINGS_MAX_CONCURRENT_STREAMS 0 (it
    accepts no stream: an overloaded server, or a proxy shedding load) and its connections
    are then replaced (a graceful GOAWAY), no RPC fails: a client that health-checks never
    counts the new connections ready — their Watch stream cannot open — so it sends that
    backend nothing, and the RPCs go to the others.

    Bound: error_budget (0) failed RPCs among the 300 started from the GOAWAY on. A
    client without health checking (naive) counts a connection ready once it is open, and
    every RPC it puts there waits for a stream that never comes, until its deadline (1 s
    here, the scenario's own, so that a client that waits still makes 300 RPCs in seconds).
    """
    load = chaos.load(concurrency=8, deadline_s=NO_STREAM_DEADLINE_S)
    warm = chaos.warm_up(load)
    load.wait_for(300, timeout=10)
    target = chaos.history.busiest(warm)
    chaos.nemesis.inject(MaxConcurrentStreams(target, 0))
    renewed = chaos.nemesis.inject(Goaway(target, grace_ms=1000))
    load.wait_for(300, timeout=30)
    chaos.settle(load)
    chaos.expect(
        checks.errors(
            chaos.history, start_ns=renewed.in_force_ns, budget=chaos.requirements.error_budget
        ),
        answers=("healthCheckConfig",),
    )
