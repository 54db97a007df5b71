"""Client-visible errors in a window: a count against a budget, or a ratio against a cap.

A window holds the RPCs that *started* in it, so an RPC in flight when a fault struck
belongs to the window that was open when it was sent, whenever it failed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from chaos.checks.selection import (
    anchor,
    as_history,
    committed,
    count_text,
    describe_rpc,
    describe_window,
    in_window,
)
from chaos.checks.verdict import Verdict, explain, not_judged
from chaos.history import Event, History, Rpc

FIRST_FAILURES = 5  # how many failures an explanation lists one by one


def errors(
    history: History | Iterable[Rpc | Event],
    start_ns: int | None = None,
    end_ns: int | None = None,
    codes: Iterable[str] | str | None = None,
    budget: int = 0,
    *,
    min_rpcs: int = 1,
    unanswered: bool = False,
) -> Verdict:
    """The number of non-OK RPCs that started in [start_ns, end_ns), against `budget`.

    `codes` restricts the count to those status codes (e.g. {"UNAVAILABLE"}); None
    counts every non-OK code. `unanswered` counts only the failures no backend answered
    (no backend id: the client failed them itself, or the connection died). Passes when the
    count <= budget; with fewer than `min_rpcs` RPCs started in the window it is *not
    judged* (an idle window shows no errors and proves nothing; pass min_rpcs=0 to accept
    it).
    """
    tally = _tally(as_history(history), start_ns, end_ns, codes, unanswered)
    figure = len(tally.failed)
    passed = tally.busy_enough(min_rpcs) and figure <= budget
    verdict = "within" if figure <= budget else "over"
    return tally.verdict(
        "errors", passed, figure, "rpcs", budget, min_rpcs, f"{verdict} the budget of {budget}"
    )


def error_rate(
    history: History | Iterable[Rpc | Event],
    start_ns: int | None = None,
    end_ns: int | None = None,
    codes: Iterable[str] | str | None = None,
    *,
    max_ratio: float,
    min_rpcs: int = 1,
) -> Verdict:
    """The fraction of RPCs started in the window that failed (see errors()), against `max_ratio`.

    Passes when the ratio <= max_ratio; with fewer than `min_rpcs` RPCs started in the
    window it is *not judged*; an empty window has no ratio (figure None) and passes only
    if min_rpcs=0.
    """
    tally = _tally(as_history(history), start_ns, end_ns, codes)
    figure = len(tally.failed) / len(tally.window) if tally.window else None
    passed = tally.busy_enough(min_rpcs) and (figure is None or figure <= max_ratio)
    verdict = "within" if figure is None or figure <= max_ratio else "over"
    return tally.verdict(
        "error_rate",
        passed,
        figure,
        "ratio",
        max_ratio,
        min_rpcs,
        f"{verdict} the cap of {max_ratio:g}",
    )


@dataclass(frozen=True)
class _Tally:
    """The RPCs of one window, and those of them counted as failures."""

    history: History
    start_ns: int | None
    end_ns: int | None
    codes: frozenset[str] | None
    window: list[Rpc]
    failed: list[Rpc]
    unanswered: bool = False

    def busy_enough(self, min_rpcs: int) -> bool:
        return len(self.window) >= min_rpcs

    def verdict(
        self,
        name: str,
        passed: bool,
        figure: float | None,
        unit: str,
        bound: float,
        min_rpcs: int,
        against: str,
    ) -> Verdict:
        by_code = Counter(r.code for r in self.failed)
        data = {"rpcs": len(self.window), "failed": len(self.failed), "by_code": dict(by_code)}
        sealed = committed(self.history, self.failed)
        if sealed:
            data["committed"] = len(sealed)
        origin, origin_name = anchor(self.history, self.start_ns)
        around = (
            self.failed[0].start_ns
            if self.failed
            else (self.window[0].start_ns if self.window else origin)
        )
        highlight = [r.id for r in self.failed[:FIRST_FAILURES]]
        paragraph = self._paragraph(by_code, min_rpcs, against, origin, origin_name)
        paragraph += _committed_text(self.failed, sealed)
        culprits = tuple((r.start_ns, r.end_ns) for r in self.failed)
        if not self.busy_enough(min_rpcs):
            # An idle window shows no errors and proves nothing, either way.
            return not_judged(
                name,
                f"{len(self.window)} RPC(s) started in the window; {min_rpcs} needed",
                explain(paragraph, self.history, around, highlight),
                unit=unit,
                bound=bound,
                figure=figure,
            )
        shown = ""
        if sealed and not passed:
            which = "all" if len(sealed) == len(self.failed) else f"{len(sealed)}"
            shown = f"{len(self.failed)} rpcs, {which} committed by early response headers"
        return Verdict(
            name,
            passed,
            figure,
            unit,
            bound,
            explain(paragraph, self.history, around, highlight),
            data=data,
            culprits=culprits,
            shown=shown,
        )

    def _paragraph(
        self, by_code: Counter, min_rpcs: int, against: str, origin: int, origin_name: str
    ) -> str:
        where = describe_window(self.history, self.start_ns, self.end_ns)
        which = "failed" if self.codes is None else f"failed with {' or '.join(sorted(self.codes))}"
        if self.unanswered:
            which += " without an answer from any backend"
        text = f"{len(self.failed)} of the {len(self.window)} RPCs that started {where} {which}, {against}"
        if not self.busy_enough(min_rpcs):
            text += f"; but at least {min_rpcs} RPCs were needed for the window to prove anything"
        if self.failed:
            firsts = "; ".join(
                describe_rpc(r, origin, origin_name) for r in self.failed[:FIRST_FAILURES]
            )
            text += f". By code: {count_text(by_code)}. First failures: {firsts}"
        return text + "."


def _committed_text(failed: list[Rpc], sealed: dict[int, int]) -> str:
    """What the committed failures mean: no retry could have saved them."""
    if not sealed:
        return ""
    first = next(r for r in failed if r.id in sealed)
    after = (sealed[first.id] - first.start_ns) / 1e6
    every = "All" if len(sealed) == len(failed) else f"{len(sealed)} of the {len(failed)}"
    return (
        f" {every} failed RPC(s) were committed: #{first.id} got its response headers"
        f" {after:.1f} ms after it started, before the answer — no retry policy can replay"
        f" a committed RPC, so the server's early headers, not the client's settings, lost"
        f" it: send headers with the answer (examples/early-headers)."
    )


def _tally(
    history: History,
    start_ns: int | None,
    end_ns: int | None,
    codes: Iterable[str] | str | None,
    unanswered: bool = False,
) -> _Tally:
    # A single code given as a string would otherwise be iterated letter by letter.
    wanted = None if codes is None else frozenset([codes] if isinstance(codes, str) else codes)
    window = in_window(history.rpcs, start_ns, end_ns)
    failed = [
        r
        for r in window
        if not r.ok
        and (wanted is None or r.code in wanted)
        and not (unanswered and r.backend is not None)
    ]
    return _Tally(history, start_ns, end_ns, wanted, window, failed, unanswered)
