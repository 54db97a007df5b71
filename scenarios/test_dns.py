"""DNS: records removed and added under a running client, and the DNS server down.

gRPC does not poll DNS: the channel re-resolves only when a connection breaks (or a server
ends it with GOAWAY, e.g. at its max connection age), and then at most once per
``grpc.dns_min_time_between_resolutions_ms`` (30 s by default). The fleet's DNS server logs
every query with its time, so each scenario can show when the client asked again.
"""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.checks import Verdict
from chaos.checks.verdict import explain
from chaos.faults import CutConnections, DnsOutage, DnsRemove, Nemesis

pytestmark = pytest.mark.dns

# The module's fleet: servers end every connection at this age (GOAWAY), so clients
# reconnect — and may re-resolve — every half second.
MAX_AGE_MS = 500
chaos_fleet = {"max_connection_age_ms": MAX_AGE_MS}

# The bounds are requirements (chaos/verdicts/requirements.py): dns_reresolution_ms (1500 ms) for
# the client to ask DNS again after a broken connection — it may, at most once per
# grpc.dns_min_time_between_resolutions_ms (1000 ms in the recommended profile, 30 s by
# default), so 0-1000 ms plus margin; dns_apply_ms (250 ms) from that answer to the last
# RPC started on a removed address (measured: sub-millisecond on loopback); dns_join_ms
# (2000 ms) for an added record to get traffic — the next GOAWAY within the max connection
# age (+10 % jitter, 550 ms), the re-resolution it asks for within the interval, then a
# handshake and a first RPC (measured ~900 ms); fail_fast_ms (1000 ms) for a new channel
# whose name cannot be resolved (measured 0-3 ms).
DNS = ("grpc.dns_min_time_between_resolutions_ms",)
# During an outage every connection is replaced (max age 550 ms) and the re-resolution the
# GOAWAY asks for fails (within the recommended interval, 1000 ms): after this long both
# have happened.
OUTAGE_WINDOW_MS = int(MAX_AGE_MS * 1.1) + 1000 + 50
CALLS = 3


# ------------------------------------------------------------------------------ helpers


def wait_for_query(fleet, since_ns: int, timeout_s: float):
    """The first A query for the fleet name at or after ``since_ns``, or None if none came
    within ``timeout_s`` (the verdict then says so)."""
    try:
        return fleet.dns.wait_for_query(fleet.name, since_ns, timeout_s)
    except TimeoutError:
        return None


def reresolution_time(history, fleet, query, after_ns: int, bound_ms: float, cause: str) -> Verdict:
    """Time from ``after_ns`` (``cause``) to the client's next A query for the fleet name."""
    if query is None:
        paragraph = (
            f"The client did not re-resolve {fleet.name} within {bound_ms:g} ms after "
            f"{cause}: the DNS server received no A query for it."
        )
        return Verdict(
            "reresolution_time",
            False,
            None,
            "ms",
            bound_ms,
            explain(paragraph, history, after_ns),
            shown=f"no A query within the {bound_ms:g} ms waited",
        )
    figure = (query.t_ns - after_ns) / 1e6
    passed = figure <= bound_ms
    answer = (
        "truncated over UDP (the client asked again over TCP)"
        if query.truncated
        else ", ".join(query.answers) or "empty"
    )
    paragraph = (
        f"The client re-resolved {fleet.name} {figure:.3f} ms after {cause}, "
        f"{'within' if passed else 'over'} the bound of {bound_ms:g} ms; the answer "
        f"was {answer}."
    )
    return Verdict(
        "reresolution_time",
        passed,
        figure,
        "ms",
        bound_ms,
        explain(paragraph, history, query.t_ns),
        span=(after_ns, query.t_ns),
    )


def no_queries(history, fleet, start_ns: int, end_ns: int, what: str) -> Verdict:
    """No A query for the fleet name reached the DNS server in [start_ns, end_ns)."""
    queries = [
        q
        for q in fleet.dns.queries(fleet.name, since_ns=start_ns)
        if q.qtype == "A" and q.t_ns < end_ns
    ]
    times = ", ".join(f"+{(q.t_ns - start_ns) / 1e6:.3f} ms" for q in queries)
    paragraph = (
        f"{len(queries)} A queries for {fleet.name} in the "
        f"{(end_ns - start_ns) / 1e6:.3f} ms {what}"
        + (f", at {times}." if queries else ": the client did not re-resolve.")
    )
    return Verdict(
        "dns_queries",
        not queries,
        len(queries),
        "queries",
        0,
        explain(paragraph, history, start_ns),
    )


# How each implementation's failed RPCs name a DNS server that does not answer: c-ares in
# grpcio, Go's net package in grpc-go, Node's dns module in grpc-js, the java driver's
# resolver in grpc-java (through their drivers).
DNS_DOWN = {
    "grpcio": "Could not contact DNS servers",
    "grpc-go": "dns: A record lookup error",
    "grpc-js": "Name resolution failed for target",
    "grpc-java": "Unable to resolve host",
}


# ------------------------------------------------------------------------------ scenarios


# Its premise is a server that never ends connections itself (only the built-in Greeter can
# be started so): then nothing but a broken connection makes the client ask DNS again.
@pytest.mark.needs("variants")
@pytest.mark.detects(
    naive="reresolution_time", pick_first="reresolution_time", outlier="reresolution_time"
)
def test_removed_record_is_dropped_once_a_broken_connection_makes_the_client_re_resolve(chaos):
    """Property: removing the busiest backend's DNS record changes nothing by itself — the
    client does not ask DNS again and keeps sending it RPCs; when that backend's
    connections break, the client re-resolves (a query in the DNS log), and from the answer
    on it starts no RPC on the removed address; no RPC fails.

    Bound: the re-resolution comes within dns_reresolution_ms (1500 ms) of the break — the
    client re-resolves on a broken connection, but at most once per
    grpc.dns_min_time_between_resolutions_ms (1000 ms in the recommended profile, 30 s by
    default, so a default client keeps the stale address for up to 30 s); 500 ms of margin
    for a busy machine. The removed address gets no new RPC later than dns_apply_ms (250 ms)
    after the answer (the update is sub-millisecond on loopback). 0 failed RPCs: RPCs in
    flight on the cut connections are retried (the removed backend's handlers are held just
    before the cut, so none of them is answered — committed — yet).
    """
    # A fleet whose servers never end connections themselves (no max connection age), so
    # nothing but the cut can make the client re-resolve.
    fleet = chaos.extra_fleet()
    nemesis = Nemesis(fleet, chaos.history, chaos.proxies)
    try:
        load = chaos.load(concurrency=8, fleet=fleet)
        warm = chaos.warm_up(load)
        load.wait_for(200, timeout=10)
        target = chaos.history.busiest(warm)
        removed = nemesis.inject(DnsRemove(target))
        load.wait_until(
            lambda: chaos.history.count_ok(target, removed.in_force_ns) >= 50,
            10,
            f"{target} still served after its record was removed",
        )
        seen = chaos.history.mark(f"{target} still served")
        chaos.expect(
            no_queries(
                chaos.history,
                fleet,
                removed.in_force_ns,
                seen,
                f"after {target}'s record was removed while it kept serving",
            )
        )
        held = chaos.hold_rpcs_on(target, 1000, at_least=2, fleet=fleet, nemesis=nemesis)
        cut = nemesis.inject(CutConnections(target))
        nemesis.undo(held)
        need = chaos.requirements
        query = wait_for_query(fleet, cut.start_ns, need.dns_reresolution_ms / 1000)
        chaos.expect(
            reresolution_time(
                chaos.history,
                fleet,
                query,
                cut.in_force_ns,
                need.dns_reresolution_ms,
                f"{target}'s connections broke",
            ),
            answers=DNS,
        )
        load.wait_for(300, timeout=10)
        chaos.expect(
            checks.drain_time(
                chaos.history, backend=target, after_ns=query.t_ns, bound_ms=need.dns_apply_ms
            ),
        )
        chaos.expect(
            checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
            answers=("retryPolicy",),
        )
    finally:
        nemesis.undo_all()


@pytest.mark.detects(naive="recovery_time", pick_first="recovery_time", outlier="recovery_time")
def test_added_record_gets_traffic_when_servers_set_a_max_connection_age(chaos):
    """Property: with b3's record missing, a client spreads over b1 and b2 only; once b3 is
    published again it gets RPCs within 2000 ms — the servers' max connection age (500 ms)
    ends connections with GOAWAY, which makes the client re-resolve — and no RPC fails.

    Bound: dns_join_ms (2000 ms) = the next GOAWAY within 550 ms (max age + 10% jitter), the
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
    chaos.expect(checks.no_traffic_to(chaos.history, backend="b3", start_ns=warm))
    added = chaos.nemesis.undo(removed)
    need = chaos.requirements
    # The recovery_time verdict below says what happened if b3 never served.
    chaos.wait_for(
        load,
        lambda: chaos.history.served_since("b3", added.end_ns),
        need.dns_join_ms / 1000 + 2,
        "b3 serving after its record was added",
    )
    chaos.check(
        reresolution_time(
            chaos.history,
            chaos.fleet,
            wait_for_query(chaos.fleet, added.end_ns, 0),
            added.end_ns,
            need.dns_join_ms,
            "b3's record was added",
        )
    )
    chaos.expect(
        checks.recovery_time(
            chaos.history, backend="b3", after_ns=added.end_ns, bound_ms=need.dns_join_ms
        ),
        answers=DNS + ("round_robin",),
    )
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
    )


def test_dns_outage_leaves_a_running_channel_working_and_fails_a_new_one_fast(chaos):
    """Property: while the DNS server is down, a running client keeps serving from every
    backend it used — its connections are replaced (max connection age 500 ms) and the
    re-resolutions that follow fail, and it keeps the addresses it had — with no failed
    RPC; a new client, which has no address yet, fails its RPCs at once with UNAVAILABLE
    naming the DNS failure instead of waiting for its deadline.

    Bound: the outage lasts until every backend served RPCs that started 1600 ms into it
    (the max age with its jitter, 550 ms, plus the 1000 ms re-resolution interval: by then
    every connection was replaced and a re-resolution failed); 0 failed RPCs on the running
    client; each new-client RPC fails within fail_fast_ms (1000 ms) (measured 0-3 ms; deadline 5 s).
    """
    load = chaos.load(concurrency=8)
    warm = chaos.warm_up(load)
    load.wait_for(100, timeout=10)
    used = sorted({r.backend for r in chaos.history.window(warm) if r.ok and r.backend})
    with chaos.nemesis.during(DnsOutage()) as outage:
        with chaos.channel() as channel:
            call = chaos.caller(channel)
            for _ in range(CALLS):
                call(tolerate=True, timeout=5.0)
            fresh = call.records
        settled = outage.start_ns + OUTAGE_WINDOW_MS * 1_000_000
        load.wait_until(
            lambda: all(chaos.history.served_since(b, settled) for b in used),
            10,
            f"{', '.join(used)} serving {OUTAGE_WINDOW_MS} ms into the outage",
        )
    chaos.expect(
        checks.failure_reason(
            chaos.history, fresh, "UNAVAILABLE", DNS_DOWN, origin_name="the first call"
        )
    )
    chaos.expect(
        checks.latency(
            fresh,
            percentile=100,
            bound_ms=chaos.requirements.fail_fast_ms,
            only_ok=False,
            min_rpcs=CALLS,
        ),
        answers=("waitForReady",),
    )
    fresh_ids = {r.id for r in fresh}
    running = [r for r in chaos.history.rpcs if r.id not in fresh_ids]
    chaos.expect(
        checks.errors(running, start_ns=warm, budget=chaos.requirements.error_budget),
    )
