"""Staging: a scenario could not bring about the situation its property is about, because
of what the client did.

    warm-up ... wait for "30 calls refused by b1" (the client's retries bring them) ...
    ----|=====================================================|-->
      start                                        the wait ran out: 12 of 30

A client with retry backoffs of seconds, or one that ejects a failing backend for minutes,
never lets a scenario reach the point it checks. That is a verdict about the client like
any other — what was awaited, how far it got, the timeline, the settings that answer it —
not a harness timeout.
"""

from __future__ import annotations

from collections.abc import Iterable

from chaos.checks.selection import as_history
from chaos.checks.verdict import Verdict, explain, ms
from chaos.history import Event, History, Rpc


def staging(
    history: History | Iterable[Rpc | Event],
    what: str,
    start_ns: int,
    end_ns: int,
    progress: str = "",
) -> Verdict:
    """A failed verdict: ``what`` was awaited from ``start_ns`` to ``end_ns`` and not
    reached; ``progress`` says how far it got ("12 of 30 refused"). Its culprit is the wait
    itself, so a runner stall over half of it makes it inconclusive (chaos/verdicts/judge.py)."""
    h = as_history(history)
    waited = ms(end_ns - start_ns)
    got = f" — got {progress}" if progress else ""
    paragraph = (
        f"The scenario could not stage its situation: it waited {waited / 1000:.1f} s "
        f"for {what}{got}, while the load ran. What the client does decides this "
        f"(how fast it retries, whether it keeps sending to a backend that fails), "
        f"so the property could not be checked: the client fails it."
    )
    window = [r for r in h.rpcs if start_ns <= r.start_ns < end_ns]
    failed = sum(1 for r in window if not r.ok)
    paragraph += f" In that wait {len(window)} RPCs started, {failed} of them failed."
    shown = f"{what} not reached within {waited / 1000:.1f} s{got}"
    return Verdict(
        "staging",
        False,
        None,
        "s",
        None,
        explain(paragraph, h, end_ns),
        culprits=((start_ns, end_ns),),
        shown=shown,
    )
