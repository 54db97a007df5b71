"""DNS: records removed and added under a running client, and the DNS server down.

gRPC does not poll DNS: the channel re-resolves only when a connection breaks (or a server
ends it with GOAWAY, e.g. at its max connection age), and then at most once per
``grpc.dns_min_time_between_resolutions_ms`` (30 s by default). The fleet's DNS server logs
every query with its time, so each scenario can show when the client asked again.
"""

from __future__ import annotations

import time

import pytest

from chaos import checks
from chaos.checks import Verdict
from chaos.checks.selection import describe_rpc
from chaos.checks.verdict import explain
from chaos.faults import CutConnections, DnsOutage, DnsRemove, Nemesis
from chaos.history import Rpc
from proto import greeter_pb2, greeter_pb2_grpc

pytestmark = pytest.mark.dns

# The module's fleet: servers end every connection at this age (GOAWAY), so clients
# reconnect — and may re-resolve — every half second.
MAX_AGE_MS = 500
chaos_fleet = {"max_connection_age_ms": MAX_AGE_MS}

# grpc.dns_min_time_between_resolutions_ms of the recommended profile: a re-resolution is
# due at most this long after the previous one.
MIN_RESOLUTION_INTERVAL_MS = 1000
# A broken connection makes the client re-resolve within the interval above; 500 ms of
# margin for a busy 2-core machine (the figure is 0-1000 ms depending on when the channel
# last resolved).
REQUERY_BOUND_MS = MIN_RESOLUTION_INTERVAL_MS + 500
# From the DNS answer to the last RPC started on the removed address: the resolver hands
# the new list to the balancer in well under a millisecond on loopback (measured: the
# last RPC starts before the query is even logged); 250 ms is margin for a busy machine.
APPLY_BOUND_MS = 250
# An added record is picked up at the next re-resolution: the next GOAWAY comes within the
# max connection age (+10% jitter, 550 ms), the re-resolution it asks for within the
# interval above (1000 ms), then a handshake and the first RPC (~10 ms). Measured ~900 ms;
# 1 s of margin for a busy machine.
JOIN_BOUND_MS = MIN_RESOLUTION_INTERVAL_MS + 1000
# During an outage every connection is replaced (max age 550 ms) and the re-resolution
# the GOAWAY asks for fails (within the interval): after this long both have happened.
OUTAGE_WINDOW_MS = int(MAX_AGE_MS * 1.1) + MIN_RESOLUTION_INTERVAL_MS + 50
# A new channel whose name cannot be resolved fails its RPCs at once (measured 0-3 ms):
# 1 s is margin on a busy machine, far from the 5 s deadline a hang would reach.
FAIL_FAST_MS = 1000
CALLS = 3


# ------------------------------------------------------------------------------ helpers


def wait_for_query(fleet, since_ns: int, timeout_s: float):
    """The first A query for the fleet name at or after ``since_ns``, or None if none came
    within ``timeout_s`` (the verdict then says so)."""
    try:
        return fleet.dns.wait_for_query(fleet.name, since_ns, timeout_s)
    except TimeoutError:
        return None


def reresolution_time(history, fleet, query, after_ns: int, bound_ms: float,
                      cause: str) -> Verdict:
    """Time from ``after_ns`` (``cause``) to the client's next A query for the fleet name."""
    if query is None:
        paragraph = (f"The client did not re-resolve {fleet.name} within {bound_ms:g} ms after "
                     f"{cause}: the DNS server received no A query for it.")
        return Verdict("reresolution_time", False, None, "ms", bound_ms,
                       explain(paragraph, history, after_ns))
    figure = (query.t_ns - after_ns) / 1e6
    passed = figure <= bound_ms
    paragraph = (f"The client re-resolved {fleet.name} {figure:.3f} ms after {cause}, "
                 f"{'within' if passed else 'over'} the bound of {bound_ms:g} ms; the answer "
                 f"was {', '.join(query.answers) or 'empty'}.")
    return Verdict("reresolution_time", passed, figure, "ms", bound_ms,
                   explain(paragraph, history, query.t_ns))


def no_queries(history, fleet, start_ns: int, end_ns: int, what: str) -> Verdict:
    """No A query for the fleet name reached the DNS server in [start_ns, end_ns)."""
    queries = [q for q in fleet.dns.queries(fleet.name, since_ns=start_ns)
               if q.qtype == "A" and q.t_ns < end_ns]
    times = ", ".join(f"+{(q.t_ns - start_ns) / 1e6:.3f} ms" for q in queries)
    paragraph = (f"{len(queries)} A queries for {fleet.name} in the "
                 f"{(end_ns - start_ns) / 1e6:.3f} ms {what}"
                 + (f", at {times}." if queries else ": the client did not re-resolve."))
    return Verdict("dns_queries", not queries, len(queries), "queries", 0,
                   explain(paragraph, history, start_ns))



def new_client_calls(chaos, channel, count: int) -> list[Rpc]:
    """``count`` SayHello calls on ``channel`` (failures tolerated), recorded in the history;
    returns their records so checks can tell them from the running load's."""
    stub = greeter_pb2_grpc.GreeterStub(channel)
    records = []
    for _ in range(count):
        rid = chaos.history.next_id()
        start = time.monotonic_ns()
        future = stub.SayHello.future(greeter_pb2.HelloRequest(name=f"r{rid}"), timeout=5.0)
        error = future.exception()
        backend = None if error is not None else dict(future.initial_metadata() or ()).get(
            "x-backend-id")
        code = "OK" if error is None else error.code().name
        details = "" if error is None else error.details() or ""
        rpc = Rpc(rid, start, time.monotonic_ns(), backend, code, details)
        chaos.history.record(rpc)
        records.append(rpc)
    return records


def failed_with(history, rpcs: list[Rpc], code: str, reason: str) -> Verdict:
    """Every one of ``rpcs`` failed with ``code`` and details containing ``reason``."""
    wrong = [r for r in rpcs if r.code != code or reason not in r.details]
    origin = rpcs[0].start_ns if rpcs else history.now()
    paragraph = (f"{len(rpcs) - len(wrong)} of the {len(rpcs)} RPCs failed with {code} "
                 f"naming \"{reason}\"")
    if wrong:
        paragraph += "; not so: " + "; ".join(describe_rpc(r, origin, "the first call")
                                             for r in wrong[:3])
    return Verdict("failure_reason", bool(rpcs) and not wrong, len(wrong), "rpcs", 0,
                   explain(paragraph + ".", history, origin, [r.id for r in wrong[:3]]))


# ------------------------------------------------------------------------------ scenarios


@pytest.mark.detects(naive="reresolution_time", pick_first="reresolution_time",
                      outlier="reresolution_time")
def test_removed_record_is_dropped_once_a_broken_connection_makes_the_client_re_resolve(chaos):
    """Property: removing the busiest backend's DNS record changes nothing by itself — the
    client does not ask DNS again and keeps sending it RPCs; when that backend's
    connections break, the client re-resolves (a query in the DNS log), and from the answer
    on it starts no RPC on the removed address; no RPC fails.

    Bound: the re-resolution comes within 1500 ms of the break — the client re-resolves on
    a broken connection, but at most once per grpc.dns_min_time_between_resolutions_ms
    (1000 ms in the recommended profile, 30 s by default, so a default client keeps the
    stale address for up to 30 s); 500 ms of margin for a busy machine. The removed address
    gets no new RPC later than 250 ms after the answer (the update is sub-millisecond on
    loopback). 0 failed RPCs: RPCs in flight on the cut connections are retried (the
    removed backend's handlers are held just before the cut, so none of them is answered
    — committed — yet).
    """
    # A fleet whose servers never end connections themselves (no max connection age), so
    # nothing but the cut can make the client re-resolve.
    fleet = chaos.extra_fleet()
    nemesis = Nemesis(fleet, chaos.history, chaos.proxies)
    try:
        load = chaos.load(concurrency=8, fleet=fleet)
        warm = chaos.warm_up(load)
        load.wait_for(200, timeout=10)
        target = chaos.busiest(warm)
        removed = nemesis.inject(DnsRemove(target))
        load.wait_until(lambda: chaos.count_ok(target, removed.start_ns) >= 50, 10,
                        f"{target} still served after its record was removed")
        seen = chaos.history.mark(f"{target} still served")
        chaos.expect(no_queries(chaos.history, fleet, removed.start_ns, seen,
                                f"after {target}'s record was removed while it kept serving"))
        held = chaos.hold_rpcs_on(target, 1000, at_least=2, fleet=fleet, nemesis=nemesis)
        cut = nemesis.inject(CutConnections(target))
        nemesis.undo(held)
        query = wait_for_query(fleet, cut.start_ns, REQUERY_BOUND_MS / 1000)
        chaos.expect(reresolution_time(chaos.history, fleet, query, cut.start_ns,
                                       REQUERY_BOUND_MS, f"{target}'s connections broke"))
        load.wait_for(300, timeout=10)
        chaos.expect(checks.drain_time(chaos.history, target=target, after_ns=query.t_ns,
                                       bound_ms=APPLY_BOUND_MS))
        chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))
    finally:
        nemesis.undo_all()


@pytest.mark.detects(naive="recovery_time", pick_first="recovery_time", outlier="recovery_time")
def test_added_record_gets_traffic_when_servers_set_a_max_connection_age(chaos):
    """Property: with b3's record missing, a client spreads over b1 and b2 only; once b3 is
    published again it gets RPCs within 2000 ms — the servers' max connection age (500 ms)
    ends connections with GOAWAY, which makes the client re-resolve — and no RPC fails.

    Bound: 2000 ms = the next GOAWAY within 550 ms (max age + 10% jitter), the
    re-resolution it triggers within grpc.dns_min_time_between_resolutions_ms (1000 ms in
    the recommended profile) of the previous one, a handshake and a first RPC in ~10 ms
    (measured ~900 ms in all), and 1 s of margin for a busy machine. A client with the
    default 30 s interval, or pick_first (which stays on its one backend), never gets
    there.
    """
    removed = chaos.nemesis.inject(DnsRemove("b3"))
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load, backends=["b1", "b2"])
    load.wait_for(100, timeout=10)
    chaos.expect(checks.no_traffic_to(chaos.history, target="b3", start_ns=warm))
    added = chaos.nemesis.undo(removed)
    try:
        load.wait_until(lambda: chaos.served_since("b3", added.end_ns), JOIN_BOUND_MS / 1000,
                        "b3 serving after its record was added")
    except TimeoutError:
        pass  # recovery_time below fails with what the history shows
    chaos.check(reresolution_time(chaos.history, chaos.fleet,
                                  wait_for_query(chaos.fleet, added.end_ns, 0),
                                  added.end_ns, JOIN_BOUND_MS, "b3's record was added"))
    chaos.expect(checks.recovery_time(chaos.history, target="b3", after_ns=added.end_ns,
                                      bound_ms=JOIN_BOUND_MS))
    chaos.expect(checks.errors(chaos.history, start_ns=warm, budget=0))


def test_dns_outage_leaves_a_running_channel_working_and_fails_a_new_one_fast(chaos):
    """Property: while the DNS server is down, a running client keeps serving from every
    backend it used — its connections are replaced (max connection age 500 ms) and the
    re-resolutions that follow fail, and it keeps the addresses it had — with no failed
    RPC; a new client, which has no address yet, fails its RPCs at once with UNAVAILABLE
    naming the DNS failure instead of waiting for its deadline.

    Bound: the outage lasts until every backend served RPCs that started 1600 ms into it
    (the max age with its jitter, 550 ms, plus the 1000 ms re-resolution interval: by then
    every connection was replaced and a re-resolution failed); 0 failed RPCs on the running
    client; each new-client RPC fails within 1000 ms (measured 0-3 ms; deadline 5 s).
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(100, timeout=10)
    used = sorted({r.backend for r in chaos.history.window(warm) if r.ok and r.backend})
    with chaos.nemesis.during(DnsOutage()) as outage:
        with chaos.channel() as channel:
            fresh = new_client_calls(chaos, channel, CALLS)
        settled = outage.start_ns + OUTAGE_WINDOW_MS * 1_000_000
        load.wait_until(lambda: all(chaos.served_since(b, settled) for b in used), 10,
                        f"{', '.join(used)} serving {OUTAGE_WINDOW_MS} ms into the outage")
    chaos.expect(failed_with(chaos.history, fresh, "UNAVAILABLE", "Could not contact DNS servers"))
    chaos.expect(checks.latency(fresh, percentile=100, bound_ms=FAIL_FAST_MS, only_ok=False,
                                min_rpcs=CALLS))
    fresh_ids = {r.id for r in fresh}
    running = [r for r in chaos.history.rpcs if r.id not in fresh_ids]
    chaos.expect(checks.errors(running, start_ns=warm, budget=0))
