"""Hang: a backend stops answering but keeps its connections open.

Nothing breaks — no FIN, no RST, no refused connect — so round robin keeps sending it RPCs
and health checking (a stream on the same hung connection) sees nothing. Only a keepalive
ping with a deadline (``grpc.http2.ping_timeout_ms``, docs/grpc-facts.md) notices, closes the
connection and so fails the RPCs stuck on it with UNAVAILABLE; the backend never sent their
headers, so they are not committed and a retry policy replays them on another backend.
Without keepalive they wait for their own deadline: DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import time

import pytest

from chaos import checks
from chaos.faults import Blackhole, Pause

pytestmark = pytest.mark.hang

KEEPALIVE = (
    "grpc.keepalive_time_ms",
    "grpc.http2.ping_timeout_ms",
    "grpc.http2.max_pings_without_data",
    "retryPolicy",
)
BACKOFF = ("grpc.initial_reconnect_backoff_ms", "grpc.max_reconnect_backoff_ms", "outlierDetection")

# Open-loop load: RPCs keep being sent at this rate whatever is stuck, so the hang always
# has RPCs to catch and the survivors keep answering (a third of it goes to the victim).
RATE = 600
# The RPC deadline must outlast hang detection (hang_detection_ms, 2.5 s by default) with
# room to spare, or a stuck RPC fails before keepalive can replay it: 3 s, not the load's
# default 2 s (measured: an RPC replayed 1.94 s after it was sent, at load average 5 —
# 60 ms short of a 2 s deadline). A stricter hang_detection_ms keeps it.
DEADLINE_S = 3.0
# A SlowHandler this long holds the RPCs that reach the victim before their headers, for
# far longer than it takes to inject the fault: at the fault, RPCs are in flight on it, and
# none is half answered (headers sent, message not) — a call that is, is committed and no
# retry policy could replay it.
HOLD_MS = 1000


def _warm_load(chaos):
    load = chaos.load(
        rate=RATE, deadline_s=max(DEADLINE_S, chaos.requirements.hang_detection_ms / 1000 + 0.5)
    )
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    return load, warm


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_sigstop_is_out_within_keepalive_bound_and_sigcont_brings_it_back(chaos):
    """Property: when the busiest backend is frozen with SIGSTOP while RPCs are in flight
    on it, no RPC fails, during the freeze or after SIGCONT: every RPC stuck on it is
    replayed on a survivor within the hang detection bound of the freeze (of being sent,
    for one sent after it), no RPC sent after that went to it, and after SIGCONT it serves
    again within the recovery bound.

    Bound: hang_detection_ms (2500 ms) — keepalive closes the hung connection at most 1.5 s
    after the hang began (pings at least 1 s apart in grpc-core, + the 500 ms ping timeout;
    under 1 s is the usual case, not the worst: docs/grpc-facts.md), + 1 s of margin for
    the replay; measured 0.57-1.94 s. error_budget (0): the backend sends headers only with its
    answer, so a stuck RPC is not committed and the retry policy replays it. recovery_ms
    (2000 ms) to come back: on SIGCONT the pending handshake completes; at worst the next
    reconnect attempt is a max reconnect backoff (1 s recommended, +20 % jitter) away, or an
    outlier ejection for the replayed failures ends (measured 0.01-0.98 s).

    Without keepalive (naive, pick_first, outlier) the frozen backend stays READY and
    every RPC sent to it ends in DEADLINE_EXCEEDED: they fail the errors check.

    After SIGCONT the failed RPCs are judged first (error_budget, the whole scenario), then
    the recovery: a backend that comes back READY but never answers (a server whose own
    event loop froze: examples/common/inventory_server.py, Health) fails every RPC sent to
    it at its deadline, and those failures, not the recovery that follows from them, are
    what a user must read first.
    """
    load, warm = _warm_load(chaos)
    target = chaos.history.busiest(warm)
    hold = chaos.hold_rpcs_on(target, HOLD_MS, at_least=3)
    hang = chaos.nemesis.inject(Pause(target))
    settled = chaos.settle(load)
    need = chaos.requirements
    chaos.expect_silent_fault_hidden(warm, KEEPALIVE, hang if hold is not None else None)
    load.wait_for(300, timeout=10)
    resume = chaos.history.mark("SIGCONT")
    chaos.nemesis.undo(hang)
    chaos.nemesis.undo(hold)
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since(target, resume),
        need.recovery_ms / 1000 + 5,
        f"{target} serving again",
    )
    # The end of the scenario: the load stops and every RPC it sent ends (answered, or
    # failed at its deadline), so the errors check sees the whole scenario, also the RPCs
    # still waiting on the backend at this point.
    load.stop()
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=KEEPALIVE,
    )
    # RPCs sent to the frozen backend would be answered now, after SIGCONT, as its own.
    chaos.expect(
        checks.no_traffic_to(chaos.history, backend=target, start_ns=settled, end_ns=resume),
        answers=KEEPALIVE,
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=target, after_ns=resume, bound_ms=need.recovery_ms
        ),
        answers=BACKOFF,
    )


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_blackholed_backend_is_out_within_keepalive_bound_and_comes_back(chaos):
    """Property: when the busiest backend's proxy swallows every byte sent to it (a
    timeout toxic with no timeout, on requests and pings), no RPC fails: every RPC sent
    into the blackhole is replayed on a survivor within the hang detection bound of being
    sent, and once the toxic is removed the backend serves again within the recovery bound.

    Bound: hang_detection_ms (2500 ms) — as for SIGSTOP: at most 1 s to the next ping +
    500 ms ping timeout, + 1 s of margin (measured 0.57-1.04 s). error_budget (0): the
    swallowed requests never reached the backend, so nothing is committed and the retry
    policy replays them (replies of RPCs sent before still come back: only the request
    direction is cut). recovery_ms (2000 ms) to come back: removing the toxic closes the
    connection the client was handshaking on, and the next attempt is at most a max
    reconnect backoff (1 s + 20 % jitter) away (measured 0.02-1.21 s).

    Without keepalive (naive, pick_first, outlier) the connection stays READY and every
    RPC sent into it ends in DEADLINE_EXCEEDED: they fail the errors check.
    """
    load, warm = _warm_load(chaos)
    target = chaos.history.busiest(warm)
    hole = chaos.nemesis.inject(Blackhole(target))
    chaos.settle(load)
    need = chaos.requirements
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, codes="DEADLINE_EXCEEDED"), answers=KEEPALIVE
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=KEEPALIVE,
    )
    load.wait_for(300, timeout=10)
    removed = chaos.nemesis.undo(hole).end_ns
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since(target, removed),
        need.recovery_ms / 1000 + 5,
        f"{target} serving again",
    )
    # Any RPC still in the blackhole at its removal ended after it: now all are recorded.
    chaos.expect(
        checks.latency(
            chaos.history, percentile=100, bound_ms=need.hang_detection_ms, start_ns=warm
        ),
        answers=KEEPALIVE,
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=target, after_ns=removed, bound_ms=need.recovery_ms
        ),
        answers=BACKOFF,
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=KEEPALIVE,
    )


# Before the hang the client is quiet this long, so that no ping it sent while busy is
# still unanswered when the backend freezes: gRPC sends a BDP ping after reading data, at
# most one a second, and such a ping — not keepalive — would catch the hang (measured: a
# client with keepalive every 20 s noticed a hang 0.6 s after traffic stopped, never after
# 2 s of quiet).
QUIET_S = 2.0
IDLE_CALLS = 6  # two rounds of the rotation: the hung backend's turn comes twice
IDLE_DEADLINE_S = 2.0


@pytest.mark.detects(naive="attempts")
def test_backend_hung_while_the_client_is_idle_is_out_before_its_next_rpc(chaos):
    """Property: a backend that hangs (SIGSTOP) while the client is idle is taken out of
    the rotation by the client on its own: after the hang detection bound of idling, the
    client's next RPCs give the hung backend no attempt at all, and none fails.

    Bound: hang_detection_ms (2500 ms) of idling — keepalive pings idle connections
    (grpc.keepalive_time_ms, with grpc.keepalive_permit_without_calls or the health-check
    stream counting as a call) at least 1 s apart, and the 500 ms ping timeout closes the
    hung one: ~1.5 s at worst. Then 0 attempts to it (gRPC's per-subchannel counters) and
    error_budget (0) failed RPCs over two rounds of the rotation (2 s deadline each).

    Staging: the client is quiet for 2 s before the hang (so no ping sent while busy is
    pending), then idle through the bound. Under steady load a hang is caught by the pings
    sent while data flows whatever the keepalive setting; only idle shows it: a client that
    pings every 20 s still has the hung connection READY and sends it the next RPC, which
    waits for its deadline.
    """
    need = chaos.requirements
    with chaos.channel() as channel:
        call = chaos.caller(channel)
        chaos.spread_calls(call)
        for _ in range(IDLE_CALLS):
            call()
        sampler = chaos.attempts(channel)
        target = "b2"
        chaos.history.mark("client quiet")
        time.sleep(QUIET_S)  # the quiet period is the staging itself, not a wait
        hang = chaos.nemesis.inject(Pause(target))
        idle_until = hang.in_force_ns + int(need.hang_detection_ms * 1e6)
        time.sleep(max(0.0, (idle_until - time.monotonic_ns()) / 1e9))  # idling, as above
        resumed = chaos.history.mark("client sends again")
        sampler.mark()
        for _ in range(IDLE_CALLS):
            call(tolerate=True, timeout=IDLE_DEADLINE_S)
        sampler.mark()
        chaos.expect(
            checks.attempts(sampler.samples, target, start_ns=resumed),
            answers=KEEPALIVE[:-1] + ("grpc.keepalive_permit_without_calls",),
            requirement="hang_detection_ms",
        )
    chaos.expect(
        checks.errors(chaos.history, start_ns=resumed, budget=need.error_budget),
        answers=KEEPALIVE,
    )
