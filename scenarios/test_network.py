"""Network: Toxiproxy toxics and proxy faults on the path to one backend.

Two kinds of failure, and one kind of harmless weather:

* the connection **breaks** (reset_peer, proxy down, limit_data): the client sees it at
  once, the RPCs in flight on it fail with UNAVAILABLE before any answer, and a retry
  policy replays them; reconnection then waits for the fault to go, within the
  reconnect backoff;
* the connection goes **silent** (the backend dies behind a slow_close): nothing tells the
  client, only a keepalive ping with a timeout does;
* **weather** (a bandwidth limit, a slicer): slower, cut into pieces, but nothing may fail
  and every reply must be the exact echo (the load records any other reply as DATA_LOSS).

Where RPCs must be in flight on the victim when the fault strikes, its handler holds them
(SlowHandler, before any header) for far longer than the injection takes: so at the fault
none is half answered. A call whose headers got through is committed, and no retry policy
can replay it: a fault in the reply direction that lands between an answer's headers and
its message costs that call even with retries (measured: 3 of 60 stalls of a busy
backend's replies, bandwidth 0, each cost one UNAVAILABLE).
"""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Bandwidth, Kill, LimitData, ProxyDown, ResetPeer, Slicer, SlowClose

pytestmark = pytest.mark.network

RATE = 600  # open-loop RPC/s: traffic reaches the victim whatever is stuck or broken
# A silent connection is found by keepalive (see test_hang.py): the RPC deadline must
# outlast hang_detection_ms so that keepalive, not the deadline, decides.
DEADLINE_S = 3.0
HOLD_MS = 1000  # RPCs held on the victim before their headers (module docstring)
RETRIES = ("retryPolicy",)
KEEPALIVE = ("grpc.keepalive_time_ms", "grpc.http2.ping_timeout_ms", "retryPolicy")
# Once the fault is gone the next reconnection attempt is at most a max reconnect backoff
# away; an outlier ejection for the RPCs the fault failed ends within ~1 s too.
BACKOFF = ("grpc.initial_reconnect_backoff_ms", "grpc.max_reconnect_backoff_ms", "outlierDetection")


def _warm_load(chaos, **options):
    load = chaos.load(rate=RATE, **options)
    warm = chaos.warm_up(load)
    load.wait_for(200, timeout=10)
    return load, warm


def _warm_load_closed(chaos, concurrency: int, **options):
    load = chaos.load(concurrency=concurrency, **options)
    warm = chaos.warm_up(load)
    load.wait_for(100, timeout=10)
    return load, warm


def _breaks_and_recovers(chaos, fault_on):
    """The shared course of the three breaking faults: hold RPCs on the busiest backend,
    break its connection, check failover, remove the fault, check recovery."""
    load, warm = _warm_load(chaos)
    target = chaos.history.busiest(warm)
    hold = chaos.hold_rpcs_on(target, HOLD_MS, at_least=3)
    fault = chaos.nemesis.inject(fault_on(target))
    if hold is not None:
        # The backend drops the held RPCs when its connection goes: the break has happened.
        chaos.wait_until(
            lambda: chaos.fleet.stats(target)["in_flight"] == 0, 5, f"{target}'s connection broken"
        )
    chaos.nemesis.undo(hold)
    load.wait_for(400, timeout=10)
    need = chaos.requirements
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=RETRIES,
    )
    chaos.expect(
        checks.failover_time(
            chaos.history, backend=target, after_ns=fault.in_force_ns, bound_ms=need.failover_ms
        ),
        answers=RETRIES,
    )
    # RPCs held on the target waited for the scenario until the break: their replay is
    # counted from it.
    chaos.expect(
        checks.latency(
            chaos.history,
            percentile=100,
            bound_ms=need.failover_ms,
            start_ns=warm,
            counted_from_ns=fault.in_force_ns if hold is not None else None,
        ),
        answers=RETRIES,
    )
    removed = chaos.nemesis.undo(fault).end_ns
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since(target, removed),
        need.recovery_ms / 1000 + 5,
        f"{target} serving again",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=target, after_ns=removed, bound_ms=need.recovery_ms
        ),
        answers=BACKOFF,
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=RETRIES,
    )


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_reset_peer_loses_no_rpc_and_the_backend_returns(chaos):
    """Property: when the busiest backend's proxy resets its connections (reset_peer on the
    request direction: the live connection is closed at its next bytes, every new one is
    reset at its first), no RPC fails, failover is within the failover bound, every RPC
    caught is replayed within it, and once the toxic is removed the backend serves again
    within the recovery bound.

    Bound: error_budget (0) — the RPCs caught were held before their headers, so the retry
    policy replays them; failover_ms (1000 ms) for failover and for the slowest RPC — the
    close is seen at once and a replay costs a 10-20 ms retry backoff (measured: failover
    0 ms, slowest RPC 30-300 ms, the high end with CPU burners); recovery_ms (2000 ms)
    back — a reconnect backoff capped at 1 s (+20 % jitter) puts the next attempt at most
    ~1.2 s away (measured 0.16-0.66 s).

    Without retries (naive, pick_first, outlier) the RPCs in flight fail with
    UNAVAILABLE.
    """
    _breaks_and_recovers(chaos, lambda target: ResetPeer(target))


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_proxy_down_and_up_loses_no_rpc_and_the_backend_returns(chaos):
    """Property: when the busiest backend's proxy goes down (its connections aborted, new
    ones refused) no RPC fails, failover is within the failover bound and every RPC caught
    is replayed within it; when the proxy is up again the backend serves again within the
    recovery bound.

    Bound: as for reset_peer — error_budget (0: the caught RPCs were not committed),
    failover_ms (1000 ms) for a break seen at once (measured: failover 0 ms, slowest RPC
    27-170 ms), recovery_ms (2000 ms) back (at most ~1.2 s, measured 0.03-0.75 s).

    Without retries (naive, pick_first, outlier) the RPCs in flight fail with
    UNAVAILABLE.
    """
    _breaks_and_recovers(chaos, lambda target: ProxyDown(target))


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_limit_data_cut_loses_no_rpc_and_the_backend_returns(chaos):
    """Property: when every connection to the busiest backend is closed after 200 bytes of
    requests (limit_data, request direction: the live connection is cut within a request
    or two, a new one within its TLS ClientHello), no RPC fails, failover is within the
    failover bound, every RPC caught is replayed within it, and once the limit is removed
    the backend serves again within the recovery bound.

    Bound: zero errors — a cut in the request direction never splits an answer, and the
    RPCs caught were held before their headers, so all are replayed; failover_ms and
    recovery_ms as for reset_peer (measured: failover 0 ms, slowest RPC 30-270 ms, back in
    0.07-0.78 s). 200 bytes is less than a ClientHello, so no new connection ever becomes
    READY while the limit holds.

    Without retries (naive, pick_first, outlier) the RPCs in flight fail with
    UNAVAILABLE.
    """
    _breaks_and_recovers(chaos, lambda target: LimitData(target, 200, stream="upstream"))


@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_death_behind_slow_close_is_caught_by_keepalive(chaos):
    """Property: when the busiest backend is killed (-9) behind a proxy that delays closing
    by 5 s (slow_close), so that its connection stays open and silent, no RPC fails: every
    RPC sent to it is replayed within 2.5 s (3 s deadline) of the kill (of being sent, for
    one sent after it) — by keepalive, not by the close — and once it is restarted it
    serves again within the recovery bound.

    Bound: hang_detection_ms (2500 ms) — at most 1 s to the next ping (grpc-core spaces a
    client's pings 1 s apart) + 500 ms ping timeout, + 1 s of margin (measured
    0.64-1.65 s), below the 3 s
    deadline and the 5 s the close is held back. Zero errors: the RPCs caught were held
    before their headers and the later ones never reached a backend, so the retry policy
    replays them. recovery_ms (2000 ms) back: the reconnect backoff puts the next attempt at most ~1.2 s
    after the restart (measured 0.02-0.96 s).

    Without keepalive (naive, pick_first, outlier) every RPC sent to the dead backend
    waits for its 3 s deadline (the close comes later): DEADLINE_EXCEEDED.
    """
    need = chaos.requirements
    load, warm = _warm_load(chaos, deadline_s=max(DEADLINE_S, need.hang_detection_ms / 1000 + 0.5))
    target = chaos.history.busiest(warm)
    chaos.nemesis.inject(SlowClose(target, 5000))
    hold = chaos.hold_rpcs_on(target, HOLD_MS, at_least=3)
    kill = chaos.nemesis.inject(Kill(target))
    chaos.settle(load, "the RPCs sent to the dead backend have ended")
    chaos.expect_silent_fault_hidden(warm, KEEPALIVE, kill if hold is not None else None)
    load.wait_for(300, timeout=10)
    restarted = chaos.nemesis.undo(kill).end_ns
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since(target, restarted),
        need.recovery_ms / 1000 + 5,
        f"{target} serving again",
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend=target, after_ns=restarted, bound_ms=need.recovery_ms
        ),
        answers=BACKOFF,
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=KEEPALIVE,
    )


# ---------------------------------------------------------------------------- weather

SLICER_PAYLOAD = 600  # name padding: requests and replies of ~0.6-0.7 KB
SLICER_CLIENTS = 4


def test_slicer_keeps_every_reply_byte_exact(chaos):
    """Property: with every chunk to and from the busiest backend cut into ~100-byte pieces
    ~100 µs apart (slicer on both directions; ~0.7 KB requests and replies: ~7 pieces
    each), every reply is still the exact echo, no RPC fails, and the sliced backend keeps
    serving at an ordinary pace (at least 100 RPCs, median within 100 ms).

    Bound: zero failed or altered replies — slicing changes where TCP segments end, never
    the bytes, and gRPC must reassemble frames across any segmentation; no failover, since
    nothing fails (so no recovery either: the backend never leaves). 100 ms for the
    median: each piece costs a timer tick of the proxy (its loop ticks in whole ms), ~7 ms
    per message and direction (measured median ~15-25 ms); the median, because on a busy
    machine the tail of a Python proxy cutting every message into pieces is scheduling
    noise (p99 reached 230 ms with CPU burners). 4 closed-loop clients keep at most 4
    messages (~30 ms) in front of a ping's answer, far below the 500 ms ping timeout: a
    deeper queue trips it and tears the connection down mid-answer, committed RPCs and all
    (measured: 600 RPC/s of ~1 KB messages in 16 pieces cost 2-3 UNAVAILABLE per run).
    """
    load, warm = _warm_load_closed(chaos, SLICER_CLIENTS, payload_bytes=SLICER_PAYLOAD)
    target = chaos.history.busiest(warm)
    chaos.nemesis.inject(
        Slicer(target, average_size=100, size_variation=50, delay_us=100, stream="downstream")
    )
    in_place = chaos.nemesis.inject(
        Slicer(target, average_size=100, size_variation=50, delay_us=100, stream="upstream")
    ).in_force_ns
    load.wait_until(
        lambda: chaos.history.count_ok(target, in_place) >= 100,
        10,
        f"100 RPCs answered by the sliced {target}",
    )
    chaos.expect(checks.errors(chaos.history, start_ns=warm))
    chaos.expect(
        checks.latency(
            chaos.history,
            backend=target,
            percentile=50,
            bound_ms=100,
            start_ns=in_place,
            min_rpcs=100,
        )
    )


BANDWIDTH_KBPS = 2
BANDWIDTH_PAYLOAD = 400
BANDWIDTH_CLIENTS = 8


@pytest.mark.needs("payload")
def test_bandwidth_limit_slows_only_that_backend_and_lifts(chaos):
    """Property: with b2's replies limited to 2 KB/s (~0.5 KB replies), its RPCs take at
    least 200 ms (p50), the other backends' p90 stays within the healthy latency bound, no
    RPC fails and every reply is exact; once the limit is lifted b2 is fast again (p90
    within it too). Not applicable to a client that sends every RPC to one backend.

    Bound: 200 ms is the floor the limit sets — the 400 bytes of payload alone take 200 ms
    at 2 KB/s (measured p50 ~275-300 ms with framing and TLS); healthy_latency_ms (100 ms)
    for unthrottled RPCs is ~30x their loopback p90 and half the floor, so the two cannot be
    confused (p90, not p99: with ~50 RPCs each in the window, one scheduling stall of a
    backend process on a busy machine, ~240 ms measured, would be the p99 on its own). No
    failover is expected (nor recovery: b2 never leaves): a slow link is not a failure,
    round robin keeps sending it its share. Each of 8 clients sends one RPC at a time, so at
    most one reply waits in front of a keepalive ping's answer (~270 ms < the 500 ms ping
    timeout); a deeper queue would trip the ping timeout and tear the connection down in the
    middle of answers.
    """
    chaos.require_spread("per-backend latency")
    loads = [
        chaos.load(concurrency=1, payload_bytes=BANDWIDTH_PAYLOAD) for _ in range(BANDWIDTH_CLIENTS)
    ]
    warm = chaos.warm_up(loads[0])
    chaos.wait_until(lambda: all(load.completed >= 6 for load in loads), 10, "every client warm")
    target = "b2"
    limit = chaos.nemesis.inject(Bandwidth(target, BANDWIDTH_KBPS))
    in_place = limit.in_force_ns  # the API answers once every link has it
    loads[0].wait_until(
        lambda: chaos.history.count_ok(target, in_place) >= 24,
        20,
        f"24 RPCs answered by the throttled {target}",
    )
    lifting = chaos.history.mark("lifting the limit")
    lifted = chaos.nemesis.undo(limit).end_ns
    loads[0].wait_until(
        lambda: chaos.history.count_ok(target, lifted) >= 24,
        10,
        f"24 RPCs answered by {target} after the limit",
    )
    chaos.expect(checks.errors(chaos.history, start_ns=warm))
    chaos.expect(
        checks.latency(
            chaos.history,
            backend=target,
            percentile=50,
            bound_ms=200,
            at_least=True,
            start_ns=in_place,
            end_ns=lifting,
        )
    )
    need = chaos.requirements
    for other in sorted(set(chaos.fleet.ids) - {target}):
        chaos.expect(
            checks.latency(
                chaos.history,
                backend=other,
                percentile=90,
                bound_ms=need.healthy_latency_ms,
                start_ns=in_place,
            ),
        )
    chaos.expect(
        checks.latency(
            chaos.history,
            backend=target,
            percentile=90,
            bound_ms=need.healthy_latency_ms,
            start_ns=lifted,
        ),
    )
