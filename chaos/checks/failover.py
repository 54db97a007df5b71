"""Failover and recovery: how long until the client routes around a fault, and back.

    fault at after_ns          T (failover instant)
    ----|----x--x----x-----------|--ok--ok--ok--ok--ok-->   x: failed, or served by target
        |<-------- figure ------>|

Only RPCs that *start* at or after the fault count: RPCs in flight when it struck are
the business of errors(), which sees them in a window that starts earlier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos.checks.selection import as_history, by_backend, count_text, describe_rpc
from chaos.checks.verdict import Verdict, explain, ms
from chaos.history import Event, History, Rpc


def failover_time(
    history: History | Iterable[Rpc | Event],
    target: str,
    after_ns: int,
    bound_ms: float,
) -> Verdict:
    """Time from the fault (`after_ns`) until every later RPC succeeds on a survivor.

    The failover instant T is the earliest of `after_ns` and the RPC start times such
    that every RPC starting at or after T is OK and not served by `target`, and at least
    one such RPC exists. So T is `after_ns` when no RPC went wrong after the fault, and
    otherwise the start of the first RPC that started strictly after the last bad one
    (RPCs with the same start as the bad one are not "after" it). An OK RPC without a
    backend id counts as served by a survivor. figure = T - after_ns, in ms.

    Fails when no such T exists (no RPC after the fault, or none after the last bad
    one), or when the figure exceeds `bound_ms`.
    """
    h = as_history(history)
    later = [r for r in h.rpcs if r.start_ns >= after_ns]
    bad = [r for r in later if not r.ok or r.backend == target]
    last_bad = bad[-1] if bad else None
    if not later:
        paragraph = (
            f"No RPC started at or after the fault on {target}, so failover cannot be measured: "
            f"is the load running across the fault? ({len(h.rpcs)} RPCs in the history.)"
        )
        return _verdict("failover_time", False, None, bound_ms, explain(paragraph, h, after_ns))
    # The earliest candidate instant (the fault, or an RPC start) after which all is well.
    first_good = later[0] if last_bad is None else next((r for r in later if r.start_ns > last_bad.start_ns), None)
    if first_good is None:
        paragraph = (
            f"The client never failed over from {target}: the last bad RPC, "
            f"{describe_rpc(last_bad, after_ns, 'the fault')}, is also the last RPC started. "
            f"{_bad_summary(bad, target)}."
        )
        return _verdict("failover_time", False, None, bound_ms, explain(paragraph, h, last_bad.start_ns, [last_bad.id]))
    t_ns = after_ns if last_bad is None else first_good.start_ns
    figure = ms(t_ns - after_ns)
    passed = figure <= bound_ms
    paragraph = _failover_paragraph(target, figure, bound_ms, passed, bad, after_ns, [r for r in later if r.start_ns >= t_ns])
    highlight = [first_good.id] + ([last_bad.id] if last_bad else [])
    return _verdict("failover_time", passed, figure, bound_ms, explain(paragraph, h, t_ns, highlight),
                    span=(after_ns, t_ns))


def _failover_paragraph(
    target: str, figure: float, bound_ms: float, passed: bool, bad: list[Rpc], after_ns: int, survivors: list[Rpc]
) -> str:
    if bad:
        cause = (
            f"the last RPC that failed or went to {target} was {describe_rpc(bad[-1], after_ns, 'the fault')}; "
            f"{_bad_summary(bad, target)}"
        )
    else:
        cause = f"no RPC that started after the fault failed or went to {target}"
    return (
        f"Failover from {target} took {figure:.3f} ms, {'within' if passed else 'over'} the bound of "
        f"{bound_ms:g} ms: {cause}. From {figure:+.3f} ms on, all {len(survivors)} RPCs that started "
        f"succeeded on other backends ({count_text(by_backend(survivors))})."
    )


def recovery_time(
    history: History | Iterable[Rpc | Event],
    target: str | None,
    after_ns: int,
    bound_ms: float,
) -> Verdict:
    """Time from the fault being cleared (`after_ns`) until `target` serves again
    (`target` None: until any backend does, for a fleet-wide outage).

    figure = start of the first OK RPC served by `target` that started at or after
    `after_ns`, minus `after_ns`, in ms. Fails when there is none, or over `bound_ms`.
    """
    h = as_history(history)
    later = [r for r in h.rpcs if r.start_ns >= after_ns]
    first = next((r for r in later if r.ok and (r.backend == target or target is None)),
                 None)
    target = target or "the fleet"
    if first is None:
        paragraph = (
            f"{target} did not serve again: none of the {len(later)} RPCs that started after the fault "
            f"was cleared succeeded on it (they went to: {count_text(by_backend(later))}; "
            f"codes: {count_text(Counter(r.code for r in later))})."
        )
        return _verdict("recovery_time", False, None, bound_ms, explain(paragraph, h, after_ns))
    figure = ms(first.start_ns - after_ns)
    passed = figure <= bound_ms
    before = [r for r in later if r.start_ns < first.start_ns]
    paragraph = (
        f"{target} served again {figure:.3f} ms after the fault was cleared, "
        f"{'within' if passed else 'over'} the bound of {bound_ms:g} ms: the first OK RPC on it was "
        f"{describe_rpc(first, after_ns, 'the clear')}; {len(before)} RPCs started before it "
        f"({count_text(by_backend(before))})."
    )
    return _verdict("recovery_time", passed, figure, bound_ms, explain(paragraph, h, first.start_ns, [first.id]),
                    span=(after_ns, first.start_ns))


def _bad_summary(bad: list[Rpc], target: str) -> str:
    failed = Counter(r.code for r in bad if not r.ok)
    served = sum(1 for r in bad if r.ok)
    return (
        f"{len(bad)} RPCs started after the fault went wrong "
        f"(failed: {count_text(failed)}; OK but served by {target}: {served})"
    )


def _verdict(name: str, passed: bool, figure: float | None, bound_ms: float, explanation: str,
             span: tuple[int, int] | None = None) -> Verdict:
    return Verdict(name, passed, figure, "ms", bound_ms, explanation, span=span)
