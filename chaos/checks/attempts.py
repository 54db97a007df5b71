"""Attempts: what the client sent to a backend, first attempts and retries alike.

An RPC that a retry policy replays shows as one OK RPC in the history; the backend that
failed its first attempt is invisible there. These checks read gRPC's per-subchannel
attempt counters over time (chaos/observe/channelz.py samples them)::

    fault in force at after_ns                T: attempts stop for quiet_ms
    ----|--a--a-a--a---a--a-----a---------------|..............................|
        |<---------------- figure ------------->|<--------- quiet_ms --------->|

"Ejected" means the client stopped sending the backend attempts for a while; outlier
detection ejects for a growing time and then probes again, so the check asks for one
quiet period of ``quiet_ms``, not for silence forever.
"""

from __future__ import annotations

from collections.abc import Sequence

from chaos.checks.verdict import Verdict, ms, not_judged
from chaos.observe.channelz import Sample

BUCKET_NS = 250_000_000  # the explanation counts attempts per quarter second


def ejection_time(
    samples: Sequence[Sample], backend: str, after_ns: int, bound_ms: float, quiet_ms: float
) -> Verdict:
    """Time from ``after_ns`` until ``backend`` got no attempt for ``quiet_ms``.

    figure = T - after_ns, T being the first sample at or after ``after_ns`` from which the
    backend's attempt counter stays the same for at least ``quiet_ms`` (samples are taken
    every ~25 ms, so T is at most one sample late). Fails when there is no such T in the
    samples, or over ``bound_ms``.
    """
    own = sorted((s for s in samples if s.backend == backend), key=lambda s: s.t_ns)
    later = [s for s in own if s.t_ns >= after_ns]
    quiet_ns = int(quiet_ms * 1e6)
    start = None
    for i, sample in enumerate(later):
        if start is None or sample.started != later[start].started:
            start = i
        if sample.t_ns - later[start].t_ns >= quiet_ns:
            t_ns = later[start].t_ns
            figure = ms(t_ns - after_ns)
            passed = figure <= bound_ms
            text = (
                f"{backend} got no attempt (first or retry) for {quiet_ms:g} ms from "
                f"{figure:.0f} ms after the fault on: ejected "
                f"{'within' if passed else 'later than'} the bound of {bound_ms:g} ms. "
                + _timeline(later, after_ns)
            )
            return Verdict(
                "ejection_time", passed, figure, "ms", bound_ms, text, span=(after_ns, t_ns)
            )
    sent = later[-1].started - later[0].started if later else 0
    seconds = (later[-1].t_ns - after_ns) / 1e9 if later else 0.0
    text = (
        f"{backend} kept getting attempts: {sent} in the {seconds:.1f} s after the fault, "
        f"never a quiet {quiet_ms:g} ms — the client went on sending it first attempts "
        f"(and retries) although it failed every call. " + _timeline(later, after_ns)
    )
    if seconds * 1000 < bound_ms + quiet_ms:
        # Sampled for less than the bound and its quiet period: an ejection due later
        # could not have been seen yet.
        return not_judged(
            "ejection_time",
            f"attempt counters sampled for {seconds * 1000:.0f} ms "
            f"after the fault; {bound_ms + quiet_ms:g} ms needed",
            text,
            bound=bound_ms,
        )
    return Verdict(
        "ejection_time",
        False,
        None,
        "ms",
        bound_ms,
        text,
        shown=f"never a quiet {quiet_ms:g} ms within the {seconds:.1f} s observed "
        f"({sent} attempts)",
    )


COUNTERS = {
    "started": "attempt(s)",
    "failed": "failed attempt(s)",
    "succeeded": "successful attempt(s)",
}


def attempts(
    samples: Sequence[Sample],
    backend: str,
    start_ns: int,
    end_ns: int | None = None,
    budget: int = 0,
    counter: str = "started",
    *,
    at_least: int | None = None,
) -> Verdict:
    """The attempts (first attempts and retries) the client sent ``backend`` between
    ``start_ns`` and ``end_ns`` (None: the last sample), against ``budget`` — all of them
    (``counter="started"``), or those that ``"failed"`` or ``"succeeded"``.

    figure = the rise of the backend's counter from the last sample at or before
    ``start_ns`` to the last sample at or before ``end_ns``. Fails without a sample at or
    before ``start_ns`` (nothing to count from). With ``at_least`` the bound is a floor
    instead: passes when the figure reaches it (e.g. "b2's attempts did fail").
    """
    if counter not in COUNTERS:
        raise ValueError(f"counter {counter!r} is not one of {', '.join(COUNTERS)}")
    what = COUNTERS[counter]
    own = sorted((s for s in samples if s.backend == backend), key=lambda s: s.t_ns)
    before = [s for s in own if s.t_ns <= start_ns]
    until = [s for s in own if end_ns is None or s.t_ns <= end_ns]
    name = "attempts" if counter == "started" else f"{counter}_attempts"
    if not before or not until:
        return not_judged(
            name,
            f"no attempt counter of {backend} sampled before the window",
            f"No attempt counter of {backend} was sampled before the window: "
            f"nothing to count from ({len(own)} samples in all).",
            unit="attempts",
            bound=budget,
        )
    sent = getattr(until[-1], counter) - getattr(before[-1], counter)
    ended = 0
    if counter == "failed":
        # Each connection that ended in the window ended its health-check stream (when the
        # client health-checks), which gRPC counts as a failed call: those are not the
        # client's attempts failing (a server ageing connections out ends several).
        window = [s for s in own if before[-1].t_ns <= s.t_ns <= until[-1].t_ns]
        seen = {socket for s in window for socket in s.sockets}
        ended = len(seen - set(until[-1].sockets))
        sent = max(0, sent - ended)
    if at_least is not None:
        passed, bound, comparison = sent >= at_least, at_least, ">="
        against = f"{'at least' if passed else 'under'} the floor of {at_least}"
    else:
        passed, bound, comparison = sent <= budget, budget, "<="
        against = f"{'within' if passed else 'over'} the budget of {budget}"
    discounted = (
        f", not counting the {ended} health-check stream(s) of connections that ended meanwhile"
        if ended
        else ""
    )
    text = (
        f"{backend} had {sent} {what} (first attempts and retries, from gRPC's "
        f"per-subchannel counters{discounted}) in the window of "
        f"{(until[-1].t_ns - start_ns) / 1e6:.0f} ms, {against}; its subchannel was "
        f"{until[-1].state} at the end."
    )
    culprits: tuple[tuple[int, int], ...] = ()
    if not passed and at_least is None:
        window_samples = [s for s in own if before[-1].t_ns <= s.t_ns <= until[-1].t_ns]
        culprits = ((start_ns, until[-1].t_ns),)
        if counter == "failed":
            culprits = _failures(window_samples) or culprits
    return Verdict(name, passed, sent, "attempts", bound, text, comparison, culprits=culprits)


def _failures(samples: list[Sample]) -> tuple[tuple[int, int], ...]:
    """Where each failed attempt lived, as closely as the samples tell (what a stall of the
    machine must cover to explain it): from the last sample before the attempts started
    counter reached its value at the failure, to the sample that saw the failure. With
    attempts in parallel the failed one may have started earlier still: the interval is
    then too short, never too long, so a stall never excuses more than it covered."""
    lived = []
    for previous, sample in zip(samples, samples[1:], strict=False):
        if sample.failed <= previous.failed:
            continue
        began = [s.t_ns for s in samples if s.t_ns <= previous.t_ns and s.started < sample.started]
        lived.append((began[-1] if began else previous.t_ns, sample.t_ns))
    return tuple(lived)


def _timeline(samples: list[Sample], after_ns: int) -> str:
    if len(samples) < 2:
        return "(no attempt counters sampled after the fault)"
    buckets: dict[int, int] = {}
    for previous, sample in zip(samples, samples[1:], strict=False):
        index = (sample.t_ns - after_ns) // BUCKET_NS
        buckets[index] = buckets.get(index, 0) + sample.started - previous.started
    shown = [f"{i * BUCKET_NS / 1e6:+.0f} ms: {buckets[i]}" for i in sorted(buckets)[:24]]
    return "Attempts per quarter second after the fault: " + ", ".join(shown) + "."
