"""Failover and recovery: how long until the client routes around a fault, and back.

    fault at after_ns          T (failover instant)
    ----|----x--x----x-----------|--ok--ok--ok--ok--ok-->   x: failed, or served by backend
        |<-------- figure ------>|

Only RPCs that *start* at or after the fault count: RPCs in flight when it struck are
the business of errors(), which sees them in a window that starts earlier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos.checks.selection import as_history, by_backend, count_text, describe_rpc
from chaos.checks.verdict import Verdict, explain, ms, not_judged
from chaos.history import Event, History, Rpc


def failover_time(
    history: History | Iterable[Rpc | Event],
    backend: str,
    after_ns: int,
    bound_ms: float,
) -> Verdict:
    """Time from the fault (`after_ns`) until every later RPC succeeds on a survivor.

    The failover instant T is the earliest of `after_ns` and the RPC start times such
    that every RPC starting at or after T is OK and not served by `backend`, and at least
    one such RPC exists. So T is `after_ns` when no RPC went wrong after the fault, and
    otherwise the start of the first RPC that started strictly after the last bad one
    (RPCs with the same start as the bad one are not "after" it). An OK RPC without a
    backend id counts as served by a survivor. figure = T - after_ns, in ms.

    Fails when no such T exists (no RPC after the fault, or none after the last bad
    one), or when the figure exceeds `bound_ms`.
    """
    h = as_history(history)
    later = [r for r in h.rpcs if r.start_ns >= after_ns]
    bad = [r for r in later if not r.ok or r.backend == backend]
    last_bad = bad[-1] if bad else None
    if not later:
        paragraph = (
            f"No RPC started at or after the fault on {backend}, so failover cannot be measured "
            f"({len(h.rpcs)} RPCs in the history)."
        )
        return not_judged(
            "failover_time",
            "no RPC started after the fault",
            explain(paragraph, h, after_ns),
            bound=bound_ms,
        )
    # The earliest candidate instant (the fault, or an RPC start) after which all is well.
    first_good = (
        later[0]
        if last_bad is None
        else next((r for r in later if r.start_ns > last_bad.start_ns), None)
    )
    if first_good is None:
        assert last_bad is not None  # first_good is later[0] otherwise
        observed = ms(later[-1].start_ns - after_ns)
        paragraph = (
            f"The client never failed over from {backend} within the {observed / 1000:.1f} s "
            f"observed: the last bad RPC, {describe_rpc(last_bad, after_ns, 'the fault')}, is also "
            f"the last RPC started. {_bad_summary(bad, backend)}."
        )
        explanation = explain(paragraph, h, last_bad.start_ns, [last_bad.id])
        if observed <= bound_ms:
            return not_judged(
                "failover_time",
                f"RPCs were started for only {observed:.0f} ms "
                f"after the fault, all bad; {bound_ms:g} ms needed to judge",
                explanation,
                bound=bound_ms,
            )
        return _verdict(
            "failover_time",
            False,
            None,
            bound_ms,
            explanation,
            shown=f"never within the {observed / 1000:.1f} s observed",
        )
    t_ns = after_ns if last_bad is None else first_good.start_ns
    figure = ms(t_ns - after_ns)
    passed = figure <= bound_ms
    paragraph = _failover_paragraph(
        backend, figure, bound_ms, passed, bad, after_ns, [r for r in later if r.start_ns >= t_ns]
    )
    highlight = [first_good.id] + ([last_bad.id] if last_bad else [])
    return _verdict(
        "failover_time",
        passed,
        figure,
        bound_ms,
        explain(paragraph, h, t_ns, highlight),
        span=(after_ns, t_ns),
    )


def _failover_paragraph(
    backend: str,
    figure: float,
    bound_ms: float,
    passed: bool,
    bad: list[Rpc],
    after_ns: int,
    survivors: list[Rpc],
) -> str:
    if bad:
        cause = (
            f"the last RPC that failed or went to {backend} was "
            f"{describe_rpc(bad[-1], after_ns, 'the fault')}; {_bad_summary(bad, backend)}"
        )
    else:
        cause = f"no RPC that started after the fault failed or went to {backend}"
    return (
        f"Failover from {backend} took {figure:.3f} ms, {'within' if passed else 'over'} the bound of "
        f"{bound_ms:g} ms: {cause}. From {figure:+.3f} ms on, all {len(survivors)} RPCs that started "
        f"succeeded on other backends ({count_text(by_backend(survivors))})."
    )


def recovery_time(
    history: History | Iterable[Rpc | Event],
    backend: str | None,
    after_ns: int,
    bound_ms: float,
    *,
    idle: Iterable[tuple[int, int]] = (),
) -> Verdict:
    """Time from the fault being cleared (`after_ns`) until `backend` serves again
    (`backend` None: until any backend does, for a fleet-wide outage).

    figure = start of the first OK RPC served by `backend` that started at or after
    `after_ns`, minus `after_ns`, in ms. Fails over `bound_ms`, or when there is none —
    but only on evidence: a miss is judged when the client kept sending through the bound,
    i.e. at least `evidence_rpcs()` RPCs (two rounds over the backends seen) started from
    `after_ns + bound_ms` on (until the late first one). With fewer — the load stopped, or
    was `idle` (intervals the load was paused on purpose, e.g. a fuzz schedule's idle gap)
    — the verdict is *not judged*: the client had no chance to show it was back.
    """
    h = as_history(history)
    later = [r for r in h.rpcs if r.start_ns >= after_ns]
    first = next((r for r in later if r.ok and (r.backend == backend or backend is None)), None)
    name = backend or "the fleet"
    due_ns = after_ns + int(bound_ms * 1e6)
    # A miss is judged only if the client was sending when the bound ran out.
    until = first.start_ns if first is not None else None
    witnesses = [
        r
        for r in later
        if r.start_ns >= due_ns
        and (until is None or r.start_ns < until)
        and not _in_any(r.start_ns, idle)
    ]
    if first is not None:
        figure = ms(first.start_ns - after_ns)
        passed = first.start_ns <= due_ns
        before = [r for r in later if r.start_ns < first.start_ns]
        paragraph = (
            f"{name} served again {figure:.3f} ms after the fault was cleared, "
            f"{'within' if passed else 'over'} the bound of {bound_ms:g} ms: the first OK RPC on "
            f"it was {describe_rpc(first, after_ns, 'the clear')}; {len(before)} RPCs started "
            f"before it ({count_text(by_backend(before))})"
            + ("." if passed else f", {len(witnesses)} of them after the bound had run out.")
        )
        explanation = explain(paragraph, h, first.start_ns, [first.id])
        span = (after_ns, first.start_ns)
        if passed:
            return _verdict("recovery_time", True, figure, bound_ms, explanation, span=span)
        shown = ""
    else:
        observed = ms((later[-1].start_ns if later else after_ns) - after_ns)
        paragraph = (
            f"{name} did not serve again within the {observed / 1000:.1f} s observed: none of the "
            f"{len(later)} RPCs that started after the fault was cleared succeeded on it (they went "
            f"to: {count_text(by_backend(later))}; codes: {count_text(Counter(r.code for r in later))})."
        )
        explanation = explain(paragraph, h, after_ns)
        shown = f"never within the {observed / 1000:.1f} s observed"
        figure, span = None, None
    needed = evidence_rpcs(h, backend)
    if len(witnesses) < needed:
        reason = (
            f"{len(witnesses)} RPC(s) started between the end of the bound and "
            f"{'the first RPC on ' + name if first is not None else 'the end of the history'}"
            f"; {needed} needed to judge that {name} was not serving"
        )
        return not_judged("recovery_time", reason, explanation, bound=bound_ms)
    return _verdict("recovery_time", False, figure, bound_ms, explanation, span=span, shown=shown)


def evidence_rpcs(history: History, backend: str | None) -> int:
    """How many RPCs a client must start after a bound ran out for "it did not come back
    in time" to be evidence: two rounds over the backends seen in the history (a client
    that spreads gives a backend that is back one RPC a round), or two RPCs when any
    backend will do."""
    if backend is None:
        return 2
    seen = {r.backend for r in history.rpcs if r.backend is not None} | {backend}
    return 2 * len(seen)


def _in_any(t_ns: int, intervals: Iterable[tuple[int, int]]) -> bool:
    return any(start <= t_ns < end for start, end in intervals)


def _bad_summary(bad: list[Rpc], backend: str) -> str:
    failed = Counter(r.code for r in bad if not r.ok)
    served = sum(1 for r in bad if r.ok)
    return (
        f"{len(bad)} RPCs started after the fault went wrong "
        f"(failed: {count_text(failed)}; OK but served by {backend}: {served})"
    )


def _verdict(
    name: str,
    passed: bool,
    figure: float | None,
    bound_ms: float,
    explanation: str,
    span: tuple[int, int] | None = None,
    shown: str = "",
) -> Verdict:
    return Verdict(name, passed, figure, "ms", bound_ms, explanation, span=span, shown=shown)
