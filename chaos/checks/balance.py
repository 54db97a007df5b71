"""Load balance across backends: exact round robin, and a chi-square test under load.

Exact (as gRPC's own round_robin tests check, on a warm channel): the OK RPCs, by start,
fall into rounds of len(backends); every round holds each backend once, in the order
of the first round.

    b2 b3 b1 | b2 b3 b1 | b2 b1 b3   <- round 3 breaks the rotation
    round 1    round 2    round 3

Under concurrent load the picks interleave, so the statistical check asks only whether
the counts per backend are plausible draws from a uniform split.

Where servers age connections out (max connection age), a backend loses its picks while
its connection is re-established, so no split is uniform: there the share check asks
whether one backend got at least a required fraction of an even share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from chaos.checks.chi2 import chi2_sf
from chaos.checks.selection import anchor, as_history, count_text, describe_window, in_window
from chaos.checks.verdict import Verdict, explain, not_judged
from chaos.history import Event, History, Rpc

# Cochran's rule: the chi-square approximation is trusted when every expected count is
# at least 5; below that the p-value is not worth a release decision.
MIN_EXPECTED = 5.0
# A broken rotation is put down to a stall only when the stall came within this long before
# the bad round (a keepalive ping timeout of 500 ms, plus the ping's wait).
RESTART_LOOKBACK_NS = 1_000_000_000


# Connection events that take a backend out of the client's picker: a GOAWAY (from the
# server, the point, or the client itself) or a close. An "open" only follows one of them.
_GONE = ("http2:goaway_seen", "http2:close")
# How long after a connection event a client may take to serve from that backend again
# before its rotation is judged anyway: gRPC's first reconnection attempt is immediate and
# a loopback TLS handshake takes milliseconds; 2 s is the default recovery bound.
DEFAULT_SETTLE_MS = 2000.0
# And at least this long: the picker can change once more when the old connection (the one
# that carried the health-check stream) closes; seen up to 75 ms after it (docstring).
DEFAULT_QUIET_MS = 250.0


def balance_exact(
    history: History | Iterable[Rpc | Event],
    backends: Sequence[str] | None = None,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    min_rounds: int = 1,
    settle_ms: float = DEFAULT_SETTLE_MS,
    quiet_ms: float = DEFAULT_QUIET_MS,
) -> Verdict:
    """Exact round robin over the OK RPCs that started in the window, sorted by start.

    `backends` defaults to those seen in OK RPCs. Failed RPCs are left out (they are
    the business of errors()); an OK RPC with no backend id, or one served by a backend
    not listed, breaks its round. A trailing partial round must follow the rotation
    too. figure = the number of complete rounds that follow the rotation, up to the
    first bad one. Fails on a bad round (the headline names it); with fewer than
    `min_rounds` complete rounds and none bad it is *not judged*.

    Connection events (the HTTP/2 points' GOAWAYs and closes, in the history as
    ``http2:*`` notes): a backend whose connection goes away leaves the client's picker
    until it reconnects, and the rebuilt picker starts its rotation anywhere. So each event
    opens a window that ends when that backend serves an RPC that started after it, and
    no sooner than ``quiet_ms`` after the event (the close of a connection that carried the
    health-check stream restarts that stream, and the picker may change once more: seen up
    to 75 ms after the close, over 19 runs against a server aging connections every
    second), and no later than ``settle_ms`` (a client that has not come back by then is
    judged). The RPCs in flight in a window are left out, and the stretches between
    windows are judged apart, each with the order of its own first round. The verdict says
    how many RPCs it left out. Without connection events the whole window is one stretch.
    """
    h = as_history(history)
    window = in_window(h.rpcs, start_ns, end_ns)
    ok = [r for r in window if r.ok]
    names = _backend_names(backends, ok)
    n = len(names)
    where = describe_window(h, start_ns, end_ns)
    skipped = f" ({len(window) - len(ok)} failed RPCs left out)" if len(ok) < len(window) else ""
    gaps = _connection_gaps(
        h, ok, start_ns, end_ns, int(quiet_ms * 1e6), int(max(settle_ms, quiet_ms) * 1e6)
    )
    stretches, left_out = _stretches(ok, gaps, n)
    left = _left_out_text(left_out, gaps, ok)
    rounds = 0
    order: list = []
    for number, stretch in enumerate(stretches):
        order = [r.backend for r in stretch[:n]]
        bad = _first_bad_round(stretch, names, order)
        if bad is None:
            rounds += len(stretch) // n if n else 0
            continue
        good_rounds = rounds + bad
        which = (
            f" (stretch {number + 1} of {len(stretches)} between connection events)" if gaps else ""
        )
        paragraph = (
            f"Round robin broke {where}{skipped}{which}: "
            f"{_bad_round_text(stretch, names, order, bad)}{left}"
        )
        round_rpcs = stretch[bad * n : (bad + 1) * n]
        highlight = [r.id for r in round_rpcs]
        explanation = explain(paragraph, h, round_rpcs[0].start_ns, highlight)
        # What a stall could bend: round_robin restarts its rotation when a subchannel
        # changes state, e.g. a keepalive ping timing out while the machine stalled in the
        # second before the round.
        culprits = ((round_rpcs[0].start_ns - RESTART_LOOKBACK_NS, round_rpcs[-1].end_ns),)
        got = " ".join(str(r.backend) for r in round_rpcs)
        shown = f"round {bad + 1} of {-(-len(stretch) // n)}{which} out of rotation ({got})"
        data = _data(order, good_rounds, names, left_out, gaps)
        return Verdict(
            "balance_exact",
            False,
            good_rounds,
            "rounds",
            min_rounds,
            explanation,
            ">=",
            data,
            culprits=culprits,
            shown=shown,
        )
    passed = rounds >= min_rounds
    if not n:
        paragraph = f"No OK RPC started {where}{skipped}, so there is no round to check."
    elif gaps:
        paragraph = (
            f"{len(ok)} OK RPCs started {where}{skipped} over {n} backends: {rounds} complete "
            f"rounds in {len(stretches)} stretch(es) between connection events, each stretch "
            f"keeping the order of its first round.{left}"
        )
    else:
        tail = f", and {len(ok) % n} more in that order" if len(ok) % n else ""
        paragraph = (
            f"{len(ok)} OK RPCs started {where}{skipped} over {n} backends: {rounds} complete rounds, "
            f"each in the order {' '.join(map(str, order))}{tail}."
        )
    around = ok[0].start_ns if ok else anchor(h, start_ns)[0]
    if not passed:
        # Every round seen kept the rotation: there were just too few to tell.
        paragraph += f" At least {min_rounds} complete rounds were needed."
        return not_judged(
            "balance_exact",
            f"{rounds} complete round(s) of OK RPCs"
            + (f" ({len(left_out)} RPCs left out around connection events)" if left_out else "")
            + f"; {min_rounds} needed",
            explain(paragraph, h, around),
            unit="rounds",
            bound=min_rounds,
            comparison=">=",
            figure=rounds,
        )
    return Verdict(
        "balance_exact",
        passed,
        rounds,
        "rounds",
        min_rounds,
        explain(paragraph, h, around),
        ">=",
        _data(order, rounds, names, left_out, gaps),
    )


def _data(order: list, rounds: int, names: list[str], left_out: list[Rpc], gaps: list) -> dict:
    data = {"order": order, "rounds": rounds, "backends": names}
    if gaps:
        data["left_out_rpcs"] = len(left_out)
        data["connection_events"] = len(gaps)
    return data


def _connection_gaps(
    h: History,
    ok: list[Rpc],
    start_ns: int | None,
    end_ns: int | None,
    quiet_ns: int,
    settle_ns: int,
) -> list[tuple[int, int, Event]]:
    """(from, to, event) for each GOAWAY or close in the window: until its backend serves
    an RPC that started after it, and at least ``quiet_ns`` (the client's own follow-ups:
    a health-check stream that lived on the old connection is restarted when it closes),
    but at most ``settle_ns``."""
    lo = start_ns if start_ns is not None else (ok[0].start_ns if ok else 0)
    hi = end_ns if end_ns is not None else (ok[-1].end_ns if ok else 0)
    gaps = []
    for event in h.events:
        if event.kind not in _GONE or not lo - settle_ns <= event.start_ns <= hi:
            continue
        back = next(
            (r.start_ns for r in ok if r.backend == event.target and r.start_ns > event.start_ns),
            event.start_ns + settle_ns,
        )
        until = min(max(back, event.start_ns + quiet_ns), event.start_ns + settle_ns)
        gaps.append((event.start_ns, until, event))
    return gaps


def _stretches(
    ok: list[Rpc], gaps: list[tuple[int, int, Event]], n: int
) -> tuple[list[list[Rpc]], list[Rpc]]:
    """The OK RPCs split where a gap touched them: (stretches, left out). A stretch that a
    gap ends keeps only its complete rounds (the rest is left out); the last keeps all."""
    stretches: list[list[Rpc]] = []
    left_out: list[Rpc] = []
    current: list[Rpc] = []

    def cut() -> None:
        whole = len(current) - len(current) % n if n else 0
        if whole:
            stretches.append(current[:whole])
        left_out.extend(current[whole:])
        current.clear()

    for rpc in ok:
        if any(rpc.start_ns < to and rpc.end_ns > since for since, to, _ in gaps):
            if current:
                cut()
            left_out.append(rpc)
        else:
            current.append(rpc)
    if current or not stretches:
        stretches.append(list(current))
    return stretches, left_out


def _left_out_text(left_out: list[Rpc], gaps: list[tuple[int, int, Event]], ok: list[Rpc]) -> str:
    if not gaps:
        return ""
    t0 = ok[0].start_ns if ok else gaps[0][0]
    shown = ", ".join(_gap_text(event, t0) for _, _, event in gaps[:5])
    more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
    return (
        f" {len(left_out)} OK RPC(s) were left out: in flight while a backend's connection"
        f" went away and it was not yet back in the rotation ({len(gaps)} connection"
        f" event(s): {shown}{more})."
    )


def _gap_text(event: Event, t0: int) -> str:
    at = f"{(event.start_ns - t0) / 1e9:+.3f} s"
    if event.kind == "http2:goaway_seen":
        return f"GOAWAY {event.detail.get('code')} by the {event.detail.get('by')} on {event.target} at {at}"
    return f"{event.target}'s connection closed by the {event.detail.get('by')} at {at}"


def balance_chi2(
    history: History | Iterable[Rpc | Event],
    backends: Sequence[str] | None = None,
    alpha: float = 0.001,
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    min_expected: float = MIN_EXPECTED,
) -> Verdict:
    """Chi-square goodness of fit of OK RPCs per backend against a uniform split.

    Counts the OK RPCs that started in the window, per backend in `backends` (default:
    those seen). figure = the p-value; passes when p >= alpha. Fails also when a listed
    backend got no RPC, when an OK RPC went to a backend not listed, or when there is too
    little data (expected count per backend < `min_expected`). OK RPCs with no backend
    id are left out and counted in the explanation.
    """
    h = as_history(history)
    ok = [r for r in in_window(h.rpcs, start_ns, end_ns) if r.ok]
    names = _backend_names(backends, ok)
    counts = Counter({b: 0 for b in names})
    counts.update(r.backend for r in ok if r.backend is not None and r.backend in counts)
    unexpected = Counter(r.backend for r in ok if r.backend is not None and r.backend not in counts)
    unattributed = sum(1 for r in ok if r.backend is None)
    total = sum(counts.values())
    expected = total / len(names) if names else 0.0
    statistic = sum((c - expected) ** 2 / expected for c in counts.values()) if expected else None
    p = None
    if statistic is not None and expected >= min_expected:
        p = chi2_sf(statistic, len(names) - 1) if len(names) > 1 else 1.0
    problems = _chi2_problems(names, counts, unexpected, expected, min_expected, p, alpha)
    paragraph = (
        f"{total} OK RPCs started {describe_window(h, start_ns, end_ns)} on {len(names)} backends "
        f"({', '.join(f'{b} {counts[b]}' for b in names) or 'none listed'}; expected {expected:.1f} each)"
        + (
            f", chi-square {statistic:.3f} on {len(names) - 1} degrees of freedom"
            if statistic is not None
            else ""
        )
        + (f"; {unattributed} OK RPCs had no backend id and were left out" if unattributed else "")
        + (
            f". Fails: {'; '.join(problems)}."
            if problems
            else f". Plausibly uniform: p = {p:.4g} >= alpha {alpha:g}."
        )
    )
    around = ok[0].start_ns if ok else anchor(h, start_ns)[0]
    data = {
        "counts": dict(counts),
        "unexpected": dict(unexpected),
        "chi2": statistic,
        "df": len(names) - 1,
    }
    starved = expected > 0 and any(counts[b] == 0 for b in names)
    if problems and p is None and not unexpected and not starved:
        # No p-value and nothing wrong seen: too few RPCs for the test to say anything.
        return not_judged(
            "balance_chi2",
            "; ".join(problems),
            explain(paragraph, h, around),
            unit="p",
            bound=alpha,
            comparison=">=",
        )
    # A failure the p-value does not show (a backend with none, a stranger) is named.
    shown = "; ".join(problems) if problems and (p is None or p >= alpha) else ""
    return Verdict(
        "balance_chi2",
        not problems,
        p,
        "p",
        alpha,
        explain(paragraph, h, around),
        ">=",
        data,
        shown=shown,
    )


def _backend_names(backends: Sequence[str] | None, ok: list[Rpc]) -> list[str]:
    if backends is None:
        return sorted({r.backend for r in ok if r.backend is not None})
    names = list(backends)
    if not names:
        raise ValueError(
            "backends is empty: list the backends to check, or pass None for those seen"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"backends must be distinct, got {names}")
    return names


def _first_bad_round(ok: list[Rpc], names: list[str], order: list) -> int | None:
    """The index of the first round that breaks the rotation, None if none does."""
    n = len(names)
    if len(order) == n:
        first_is_whole = Counter(order) == Counter(names)
    else:  # fewer OK RPCs than backends: a partial first round, listed and distinct
        first_is_whole = set(order) <= set(names) and len(set(order)) == len(order)
    if not first_is_whole:
        return 0
    for i in range(n, len(ok)):
        if ok[i].backend != order[i % n]:
            return i // n
    return None


def _bad_round_text(ok: list[Rpc], names: list[str], order: list, bad: int) -> str:
    n = len(names)
    got = [r.backend for r in ok[bad * n : (bad + 1) * n]]
    seq = " ".join(str(b) for b in got)
    counts = Counter(got)
    missing = [b for b in names if counts[b] == 0]
    doubled = [b for b, c in counts.items() if c > 1]
    strangers = [str(b) for b in counts if b not in names]
    faults = [
        *([f"missing {', '.join(missing)}"] if missing and len(got) == n else []),
        *([f"{', '.join(map(str, doubled))} more than once"] if doubled else []),
        *([f"unlisted backend {', '.join(strangers)}"] if strangers else []),
    ]
    first = ok[bad * n]
    last = ok[min(len(ok), (bad + 1) * n) - 1]
    what = (
        "; ".join(faults)
        if faults
        else f"a different order from round 1 ({' '.join(map(str, order))})"
    )
    return (
        f"round {bad + 1} of {-(-len(ok) // n)} (RPCs #{first.id}..#{last.id}) "
        f"went to {seq}: {what}."
        + (f" The {bad} rounds before it followed the rotation." if bad else "")
    )


def _chi2_problems(
    names: list[str],
    counts: Counter,
    unexpected: Counter,
    expected: float,
    min_expected: float,
    p: float | None,
    alpha: float,
) -> list[str]:
    problems = []
    if not names:
        problems.append("no backend to check (none listed, no OK RPC seen)")
    zero = [b for b in names if counts[b] == 0]
    if zero and expected > 0:
        problems.append(f"{', '.join(zero)} got no RPC")
    if unexpected:
        problems.append(f"OK RPCs went to backends not listed: {count_text(unexpected)}")
    if names and expected < min_expected:
        problems.append(
            f"too few RPCs for a chi-square test (expected {expected:.1f} per backend, need {min_expected:g})"
        )
    if p is not None and p < alpha:
        problems.append(f"p = {p:.4g} < alpha {alpha:g}, the split is not uniform")
    return problems


def share(
    history: History | Iterable[Rpc | Event],
    backend: str,
    backends: Sequence[str],
    min_share: float,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Verdict:
    """``backend``'s OK RPCs started in the window as a fraction of an even share (the OK
    RPCs on ``backends``, divided by their number). figure = that fraction; passes when it
    is at least ``min_share`` (a requirement). Not judged with no OK RPC in the window."""
    h = as_history(history)
    ok = [r for r in in_window(h.rpcs, start_ns, end_ns) if r.ok and r.backend in backends]
    counts = Counter({b: 0 for b in backends})
    counts.update(r.backend for r in ok if r.backend is not None)  # (ok: on backends only)
    even = len(ok) / len(backends) if backends else 0.0
    figure = counts[backend] / even if even else None
    passed = figure is not None and figure >= min_share
    paragraph = (
        f"{len(ok)} OK RPCs started {describe_window(h, start_ns, end_ns)} on "
        f"{len(backends)} backends ({', '.join(f'{b} {counts[b]}' for b in backends)}); "
        + (
            f"{backend} got {counts[backend]}, {figure:.3f} of an even share of {even:.1f}, "
            f"{'at least' if passed else 'under'} the required {min_share:g}."
            if figure is not None
            else "no RPC to share out."
        )
    )
    around = ok[0].start_ns if ok else anchor(h, start_ns)[0]
    if figure is None:
        return not_judged(
            "share",
            "no OK RPC in the window to share out",
            explain(paragraph, h, around),
            unit="of an even share",
            bound=min_share,
            comparison=">=",
        )
    return Verdict(
        "share",
        passed,
        figure,
        "of an even share",
        min_share,
        explain(paragraph, h, around),
        ">=",
        {"counts": dict(counts)},
    )
