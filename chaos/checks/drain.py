"""Draining: once a backend is marked unhealthy, the client stops *starting* RPCs on it.

    health flip at after_ns          last RPC started on backend
    ----|-----b2----b2--------b2--------|  b1  b3  b1  b3 ...
        |<---------- drain_time ------->|

RPCs started on the backend before the flip may finish after it: that is a drain, not
a leak, so only starts count. RPCs without a backend id cannot be attributed; the
explanation counts them so a reader can judge.
"""

from __future__ import annotations

from collections.abc import Iterable

from chaos.checks.selection import (
    anchor,
    as_history,
    by_backend,
    count_text,
    describe_rpc,
    describe_window,
    in_window,
)
from chaos.checks.verdict import Verdict, explain, ms, not_judged
from chaos.history import Event, History, Rpc


def drain_time(
    history: History | Iterable[Rpc | Event],
    backend: str,
    after_ns: int,
    bound_ms: float,
    *,
    min_rpcs: int = 1,
) -> Verdict:
    """Time from the health flip (`after_ns`) to the last RPC *started* on `backend`.

    Counts RPCs with backend == backend that started at or after `after_ns`, whatever
    their outcome. figure = last such start - after_ns in ms, 0 if there is none.
    Fails over `bound_ms`; *not judged* when fewer than `min_rpcs` RPCs (on any backend)
    started after the flip: with no traffic, a drain proves nothing.
    """
    h = as_history(history)
    later = [r for r in h.rpcs if r.start_ns >= after_ns]
    on_target = [r for r in later if r.backend == backend]
    unknown = sum(1 for r in later if r.backend is None)
    note = f" {unknown} of them had no backend id and could not be attributed." if unknown else ""
    if len(later) < min_rpcs:
        paragraph = (
            f"Only {len(later)} RPCs started after the health flip of {backend} "
            f"(at least {min_rpcs} needed): with no traffic, the drain cannot be seen. "
            f"Is the load running across the flip?"
        )
        return not_judged(
            "drain_time",
            f"{len(later)} RPC(s) started after the health flip; {min_rpcs} needed to see a drain",
            explain(paragraph, h, after_ns),
            bound=bound_ms,
        )
    if not on_target:
        paragraph = (
            f"No RPC started on {backend} after its health flip: drained at once "
            f"(0 ms, bound {bound_ms:g} ms). The {len(later)} RPCs started after the flip "
            f"went to: {count_text(by_backend(later))}.{note}"
        )
        return Verdict(
            "drain_time", bound_ms >= 0.0, 0.0, "ms", bound_ms, explain(paragraph, h, after_ns)
        )
    last = on_target[-1]
    figure = ms(last.start_ns - after_ns)
    passed = figure <= bound_ms
    paragraph = (
        f"{backend} kept getting new RPCs for {figure:.3f} ms after its health flip, "
        f"{'within' if passed else 'over'} the bound of {bound_ms:g} ms: {len(on_target)} of the "
        f"{len(later)} RPCs started after the flip went to it, the last being "
        f"{describe_rpc(last, after_ns, 'the flip')}.{note}"
    )
    return Verdict(
        "drain_time",
        passed,
        figure,
        "ms",
        bound_ms,
        explain(paragraph, h, last.start_ns, [last.id]),
        span=(after_ns, last.start_ns),
    )


def no_traffic_to(
    history: History | Iterable[Rpc | Event],
    backend: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    min_rpcs: int = 1,
    bound_from_ns: int | None = None,
) -> Verdict:
    """No RPC that started in [start_ns, end_ns) was served by `backend`.

    figure = the number that were (bound 0). *Not judged* when fewer than `min_rpcs` RPCs
    started in the window at all: an idle window says nothing about routing.
    ``bound_from_ns``: when ``start_ns`` is a time bound counted from that instant (a
    health flip in force + drain_ms), each RPC found came that much past the bound, and
    the judge may put it down to a stall between the two (Verdict.late).
    """
    h = as_history(history)
    window = in_window(h.rpcs, start_ns, end_ns)
    hits = [r for r in window if r.backend == backend]
    where = describe_window(h, start_ns, end_ns)
    origin, origin_name = anchor(h, start_ns)
    if len(window) < min_rpcs:
        paragraph = (
            f"Only {len(window)} RPCs started {where} (at least {min_rpcs} needed): "
            f"an idle window says nothing about traffic to {backend}."
        )
        return not_judged(
            "no_traffic_to",
            f"{len(window)} RPC(s) started in the window; {min_rpcs} needed",
            explain(paragraph, h, origin),
            unit="rpcs",
            bound=0,
            figure=len(hits),
        )
    if not hits:
        paragraph = (
            f"None of the {len(window)} RPCs that started {where} was served by {backend} "
            f"(they went to: {count_text(by_backend(window))})."
        )
        return Verdict("no_traffic_to", True, 0, "rpcs", 0, explain(paragraph, h, origin))
    first = hits[0]
    paragraph = (
        f"{len(hits)} of the {len(window)} RPCs that started {where} were served by {backend}; "
        f"the first was {describe_rpc(first, origin, origin_name)}, the last #{hits[-1].id}."
    )
    highlight = [r.id for r in hits[:10]]
    # What a stall could bend: how late each of these RPCs was picked, from the window start.
    culprits = tuple((origin, r.start_ns) for r in hits)
    late: tuple[tuple[int, int, float], ...] = ()
    if bound_from_ns is not None and start_ns is not None:
        late = tuple((bound_from_ns, r.start_ns, (r.start_ns - start_ns) / 1e6) for r in hits)
    return Verdict(
        "no_traffic_to",
        False,
        len(hits),
        "rpcs",
        0,
        explain(paragraph, h, first.start_ns, highlight),
        culprits=culprits,
        late=late,
    )
