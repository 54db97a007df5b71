"""Hang: a backend stops answering but keeps its connections open.

Nothing breaks — no FIN, no RST, no refused connect — so round robin keeps sending it RPCs
and health checking (a stream on the same hung connection) sees nothing. Only a keepalive
ping with a deadline (``grpc.http2.ping_timeout_ms``, DESIGN.md) notices, closes the
connection and so fails the RPCs stuck on it with UNAVAILABLE; the backend never sent their
headers, so they are not committed and a retry policy replays them on another backend.
Without keepalive they wait for their own deadline: DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Blackhole, Pause

pytestmark = pytest.mark.hang

# Open-loop load: RPCs keep being sent at this rate whatever is stuck, so the hang always
# has RPCs to catch and the survivors keep answering (a third of it goes to the victim).
RATE = 600
# The longest an RPC can be stuck on a hung backend before keepalive closes the connection:
# grpc-core sends a client's pings at least 1 s apart, whatever keepalive_time says (traced
# here: "Ping delayed ... minimum wait: 1000ms"), so a ping answered just before the hang
# puts the next one 1 s later, and its 500 ms timeout makes 1.5 s. 1 s of margin for the
# replay on a busy 2-core machine (measured up to 1.94 s at load average 5).
DETECTION_MS = 2500
# The RPC deadline must outlast detection with room to spare, or a stuck RPC fails before
# keepalive can replay it: 3 s, not the load's default 2 s (measured: an RPC replayed
# 1.94 s after it was sent, at load average 5 — 60 ms short of a 2 s deadline).
DEADLINE_S = 3.0
# The backend's subchannel reconnects with backoff 100 ms .. 1 s (+-20 % jitter): the next
# attempt after the fault ends is at most ~1.2 s away; TLS handshake and the first health
# check take milliseconds. A profile with outlier detection may also have ejected the
# backend for the failures keepalive caused (1 s, from at most 0.5 s after them, which is
# before the fault ends): that ends within ~1 s as well. The rest is margin (measured up
# to 1.21 s).
RECOVERY_MS = 2000
# A SlowHandler this long holds the RPCs that reach the victim before their headers, for
# far longer than it takes to inject the fault: at the fault, RPCs are in flight on it, and
# none is half answered (headers sent, message not) — a call that is, is committed and no
# retry policy could replay it.
HOLD_MS = 1000


def _settled(chaos, load) -> int:
    """Wait until every RPC sent so far (some of them into the fault) has ended — replayed
    after keepalive closed the connection, or failed at its deadline — and mark the instant.

    RPCs are sent into the fault first: 30 more RPCs end (on the survivors, a few ms at
    RATE) while round robin gives a third of the new ones to the hung backend. Both waits
    are bounded by the RPC deadline, whichever profile runs."""
    load.wait_for(30, timeout=load.deadline_s + 10)
    # Ids are drawn in order by every RPC of the history (here: the load's only), so every
    # id below this one is an RPC already sent.
    last = chaos.history.next_id()
    load.wait_until(lambda: sum(r.id < last for r in chaos.history.rpcs) >= last - 1,
                    load.deadline_s + 10, "the RPCs sent into the hang have ended")
    return chaos.history.mark("RPCs sent into the hang have ended")


def _warm_load(chaos):
    load = chaos.load(rate=RATE, deadline_s=DEADLINE_S)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    return load, warm



@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_sigstop_is_out_within_keepalive_bound_and_sigcont_brings_it_back(chaos):
    """Property: when the busiest backend is frozen with SIGSTOP while RPCs are in flight
    on it, no RPC fails: every RPC stuck on it is replayed on a survivor within 2.5 s of
    being sent (3 s deadline), no RPC sent after that went to it, and after SIGCONT it
    serves again within 2 s.

    Bound: 2500 ms — keepalive closes the hung connection at most 1.5 s after the hang
    began (pings at least 1 s apart in grpc-core, + the 500 ms ping timeout; DESIGN.md's
    "under 1 s" is the usual case, not the worst), + 1 s of margin for the replay on a busy
    machine; measured 0.57-1.94 s. Zero errors: the backend sends headers only with its
    answer, so a stuck RPC is not committed and the retry policy replays it. 2000 ms to
    come back: on SIGCONT the pending handshake completes; at worst the next reconnect
    attempt is max_reconnect_backoff 1 s + 20 % jitter away, or an outlier ejection for
    the replayed failures ends within ~1 s (measured 0.01-0.98 s).

    Without keepalive (naive, pick_first, outlier) the frozen backend stays READY and
    every RPC sent to it ends in DEADLINE_EXCEEDED: they fail the errors check.
    """
    load, warm = _warm_load(chaos)
    target = chaos.busiest(warm)
    hold = chaos.hold_rpcs_on(target, HOLD_MS, at_least=3)
    hang = chaos.nemesis.inject(Pause(target))
    settled = _settled(chaos, load)
    chaos.expect(checks.errors(chaos.history, start_ns=warm, codes="DEADLINE_EXCEEDED"))
    chaos.expect(checks.errors(chaos.history, start_ns=warm))
    chaos.expect(checks.latency(chaos.history, percentile=100, bound_ms=DETECTION_MS,
                                start_ns=warm))
    load.wait_for(300, timeout=10)
    resume = chaos.history.mark("SIGCONT")
    chaos.nemesis.undo(hang)
    chaos.nemesis.undo(hold)
    load.wait_until(lambda: chaos.served_since(target, resume), RECOVERY_MS / 1000 + 5,
                    f"{target} serving again")
    # RPCs sent to the frozen backend would be answered now, after SIGCONT, as its own.
    chaos.expect(checks.no_traffic_to(chaos.history, target=target, start_ns=settled,
                                      end_ns=resume))
    chaos.expect(checks.recovery_time(chaos.history, target=target, after_ns=resume,
                                      bound_ms=RECOVERY_MS))
    chaos.expect(checks.errors(chaos.history, start_ns=warm))


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_blackholed_backend_is_out_within_keepalive_bound_and_comes_back(chaos):
    """Property: when the busiest backend's proxy swallows every byte sent to it (a
    timeout toxic with no timeout, on requests and pings), no RPC fails: every RPC sent
    into the blackhole is replayed on a survivor within 2.5 s of being sent (3 s deadline),
    and once the toxic is removed the backend serves again within 2 s.

    Bound: 2500 ms — as for SIGSTOP: at most 1 s to the next ping + 500 ms ping timeout,
    + 1 s of margin (measured 0.57-1.04 s). Zero errors: the swallowed requests never
    reached the backend, so nothing is committed and the retry policy replays them (replies
    of RPCs sent before still come back: only the request direction is cut). 2000 ms to
    come back: removing the toxic closes the connection the client was handshaking on, and
    the next attempt is at most max_reconnect_backoff 1 s + 20 % jitter away (measured
    0.02-1.21 s).

    Without keepalive (naive, pick_first, outlier) the connection stays READY and every
    RPC sent into it ends in DEADLINE_EXCEEDED: they fail the errors check.
    """
    load, warm = _warm_load(chaos)
    target = chaos.busiest(warm)
    hole = chaos.nemesis.inject(Blackhole(target))
    _settled(chaos, load)
    chaos.expect(checks.errors(chaos.history, start_ns=warm, codes="DEADLINE_EXCEEDED"))
    chaos.expect(checks.errors(chaos.history, start_ns=warm))
    load.wait_for(300, timeout=10)
    removed = chaos.nemesis.undo(hole).end_ns
    load.wait_until(lambda: chaos.served_since(target, removed), RECOVERY_MS / 1000 + 5,
                    f"{target} serving again")
    # Any RPC still in the blackhole at its removal ended after it: now all are recorded.
    chaos.expect(checks.latency(chaos.history, percentile=100, bound_ms=DETECTION_MS,
                                start_ns=warm))
    chaos.expect(checks.recovery_time(chaos.history, target=target, after_ns=removed,
                                      bound_ms=RECOVERY_MS))
    chaos.expect(checks.errors(chaos.history, start_ns=warm))
