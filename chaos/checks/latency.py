"""Latency percentiles, per backend and overall, and a check of one against a bound.

Percentiles use the nearest-rank method: the p-th percentile of n sorted latencies is
the one at rank ceil(p/100 * n) (the smallest for p = 0). It is always a latency that
was observed, never an interpolation, so a verdict can point at the RPC behind it; on
small samples it reads high, the safe side for a bound on tail latency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction

from chaos.checks.selection import anchor, as_history, describe_rpc, describe_window, in_window
from chaos.checks.verdict import Verdict, explain, ms, not_judged
from chaos.history import NO_BACKEND, Event, History, Rpc

OVERALL = "overall"  # the key of the all-backends row in percentiles()
DEFAULT_PS = (50, 90, 99, 99.9)


def nearest_rank(n: int, p: float) -> int:
    """The 0-based index of the p-th percentile among n sorted values (n >= 1)."""
    if not 0 <= p <= 100:
        raise ValueError(f"a percentile is between 0 and 100, got {p}")
    # Exact arithmetic: in floats 99.9 / 100 * 1000 is 999.0000000000001, one rank too far.
    return max(math.ceil(Fraction(str(p)) * n / 100), 1) - 1


def percentiles(
    rpcs: History | Iterable[Rpc | Event], ps: Iterable[float] = DEFAULT_PS
) -> dict[str, dict[float, float | None]]:
    """Latency percentiles in ms of the RPCs given, per backend and under "overall".

    No filtering: pass only the RPCs you mean (e.g. the OK ones of a window). RPCs with
    no backend are grouped under "(none)". With no RPC, "overall" maps each p to None.
    """
    ps = tuple(ps)
    # Events carry no latency; a plain list is taken as it is (no History to build).
    chosen = rpcs.rpcs if isinstance(rpcs, History) else [r for r in rpcs if isinstance(r, Rpc)]
    groups: dict[str, list[int]] = {OVERALL: [r.latency_ns for r in chosen]}
    for r in chosen:
        groups.setdefault(r.backend or NO_BACKEND, []).append(r.latency_ns)
    result = {}
    for name in [OVERALL, *sorted(k for k in groups if k != OVERALL)]:
        values = sorted(groups[name])
        result[name] = {p: ms(values[nearest_rank(len(values), p)]) if values else None for p in ps}
    return result


def latency(
    history: History | Iterable[Rpc | Event],
    backend: str | None = None,
    percentile: float = 99,
    bound_ms: float | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    only_ok: bool = True,
    *,
    at_least: bool = False,
    min_rpcs: int = 1,
    counted_from_ns: int | None = None,
) -> Verdict:
    """The `percentile` latency (nearest rank, ms) of the RPCs that started in the window.

    `backend` None means all backends; `only_ok` leaves out failed RPCs (a fast
    UNAVAILABLE would flatter the figure, a deadline would dominate it). Passes when the
    figure <= `bound_ms` (required) and at least `min_rpcs` RPCs were measured; with
    fewer the verdict is *not judged* (figure None), unless min_rpcs=0 accepts an empty
    window.

    `at_least=True` turns the bound into a floor (figure >= bound_ms): a scenario uses it
    to show that an injected latency is really in force.

    `counted_from_ns` (a fault's in-force instant) counts each RPC's latency from the later
    of its start and that instant: an RPC the scenario itself held on the victim before
    the fault (Scenario.hold_rpcs_on) waited for the scenario, not for the client, until
    the fault struck — what the client owes is its replay from then. RPCs started after it
    are counted from their start, as without it.
    """
    if bound_ms is None:
        raise TypeError(
            "latency() needs bound_ms: the highest acceptable latency at that percentile, in ms"
        )
    nearest_rank(1, percentile)  # validates the percentile even when there is nothing to rank
    h = as_history(history)
    chosen = _select(h, backend, start_ns, end_ns, only_ok)
    what = (
        f"{'OK ' if only_ok else ''}RPCs{f' on {backend}' if backend else ''} "
        f"that started {describe_window(h, start_ns, end_ns)}"
    )
    origin, origin_name = anchor(h, start_ns)
    comparison = ">=" if at_least else "<="
    if not chosen or len(chosen) < min_rpcs:
        enough = len(chosen) >= min_rpcs
        need = "" if enough else f" (at least {min_rpcs} needed)"
        paragraph = f"{len(chosen)} {what}: no latency to measure{need}."
        if enough:  # min_rpcs=0: an empty window was declared acceptable
            return Verdict(
                "latency", True, None, "ms", bound_ms, explain(paragraph, h, origin), comparison
            )
        return not_judged(
            "latency",
            f"{len(chosen)} {what}; at least {min_rpcs} needed",
            explain(paragraph, h, origin),
            bound=bound_ms,
            comparison=comparison,
        )
    counted, counted_text = chosen, ""
    if counted_from_ns is not None:
        # The same RPCs, their clocks started no earlier than the instant given.
        counted = [replace(r, start_ns=max(r.start_ns, counted_from_ns)) for r in chosen]
        counted_text = (
            f" (each counted from the later of its start and "
            f"{ms(counted_from_ns - origin):+.3f} ms, the fault in force: time "
            f"held by the scenario before it is not the client's)"
        )
    original = {r.id: r for r in chosen}
    by_latency = sorted(counted, key=lambda r: (r.latency_ns, r.start_ns, r.id))
    decisive = by_latency[nearest_rank(len(by_latency), percentile)]
    figure = ms(decisive.latency_ns)
    passed = figure >= bound_ms if at_least else figure <= bound_ms
    table = percentiles(counted, DEFAULT_PS)
    spread = ", ".join(f"p{p:g} {v:.3f}" for p, v in table[OVERALL].items())
    paragraph = (
        f"p{percentile:g} latency of the {len(chosen)} {what}{counted_text} is "
        f"{figure:.3f} ms, {_against(figure, bound_ms, at_least)}: "
        f"it is the latency of {describe_rpc(original[decisive.id], origin, origin_name)}. "
        f"Spread: {spread}, max {ms(by_latency[-1].latency_ns):.3f} ms."
    )
    # JSON-native for artifacts: percentile keys as strings ("99.9").
    data = {"percentiles": {b: {f"{p:g}": v for p, v in row.items()} for b, row in table.items()}}
    explanation = explain(paragraph, h, decisive.start_ns, [decisive.id])
    # A floor (at_least) is never bent by a stall: a stall only makes RPCs slower.
    span = None if at_least else (decisive.start_ns, decisive.end_ns)
    return Verdict(
        "latency", passed, figure, "ms", bound_ms, explanation, comparison, data, span=span
    )


def _select(
    h: History, backend: str | None, start_ns: int | None, end_ns: int | None, only_ok: bool
) -> list[Rpc]:
    return [
        r
        for r in in_window(h.rpcs, start_ns, end_ns)
        if (backend is None or r.backend == backend) and (r.ok or not only_ok)
    ]


def _against(figure: float, bound_ms: float, at_least: bool) -> str:
    if at_least:
        return f"{'at least' if figure >= bound_ms else 'under'} the floor of {bound_ms:g} ms"
    return f"{'within' if figure <= bound_ms else 'over'} the bound of {bound_ms:g} ms"
