"""The oracle: the invariants every client must keep under any schedule, judged on the
history with the model of which backend could serve when (chaos/fuzz/model.py).

Every rule is a Verdict (figure, bound, explanation, and the intervals a runner stall
could have bent), so chaos.verdicts.judge turns a miss the machine explains into *inconclusive*:

  safety
    in_flight_succeeds  an RPC in flight when a backend went down (a break, a hang, a
                        drain) succeeds, if some backend could serve throughout its life —
                        what a retry policy buys (a hang: keepalive first). Not held: an RPC
                        that started in another fault's blind window, or in flight at a break
                        while that backend's replies were being split (it may be committed).
    rpc_succeeds        an RPC started outside every blind window, while some backend could
                        serve throughout its life, succeeds.
                        Both: a failure answered by a backend that was failing calls of its
                        own (app_error) is the fleet's, not the client's, and is allowed.
    routed_away         no RPC starts on a backend known down (in force + its detection
                        bound) until PICK_LAG_MS before its revert begins, while another
                        backend could serve it; with none, an RPC it answered still counts
                        if it ended before the revert (else it may have waited, rightly,
                        for the first backend back). Breaks, hangs and drains only: a
                        backend failing every call is re-admitted by outlier detection by
                        design, a share judged from attempt counters (scenarios/test_app).
    fails_fast          an RPC started while every backend was known down by a break or a
                        drain, for at least fail_fast_ms more, ends within fail_fast_ms.
    deadline_kept       no RPC outlives its deadline by more than DEADLINE_MARGIN_MS.
    answers_correct     no answer is wrong (DATA_LOSS).
  liveness
    recovers            after the last fault is cleared the client serves again within
                        recovery_ms;
    rejoins             (clients observed to spread RPCs) every backend that was out of
                        service serves again within recovery_ms of its last fault's end —
                        except one whose DNS record was removed (it is learnt again only at
                        the next re-resolution, which nothing here triggers).

Times are measured from the fault's ``in_force_ns`` (detection) and ``end_ns`` (recovery),
never from the schedule's plan. RPCs that ended before the warm-up mark are not judged.

A rule whose situation happened but whose history holds too little evidence — nothing in
flight at a break, no RPC while a backend was known down, the load idle (or ended) when a
recovery was due — is *not judged*: counted and shown by the campaign, never a pass, never
a fail. A rule whose situation never happened (no fleet-wide outage for fails_fast) holds
vacuously and says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from chaos.checks import recovery_time
from chaos.checks.verdict import Verdict, explain, ms, not_judged
from chaos.fuzz.kinds import BREAK, DETECTION, DRAIN, EJECT, FLAKY, HANG, UNPUBLISHED, WEATHER
from chaos.fuzz.model import FOREVER, Service, Window, idle_gaps, windows
from chaos.history import MARK, History, Rpc
from chaos.verdicts.requirements import DEFAULTS, Requirements

# A deadline is enforced by gRPC's own timer; on a loaded 2-core machine the answer reaches
# the load loop tens of ms late. A quarter second is "small" next to deadlines of seconds
# and far above that noise.
DEADLINE_MARGIN_MS = 250
# An RPC in flight when its backend hung is replayed once keepalive notices (at most
# hang_detection_ms); it can be held to succeed only if its deadline leaves that much.
HANG_REPLAY_MARGIN_MS = 250
LISTED = 3  # failing RPCs an explanation names one by one
# An RPC's start is stamped in the load's loop before the call is made; gRPC picks its
# backend a little later (the loop and the core hand it over): ms on an idle machine, up to
# tens of ms here under load (RPCs take 10-30 ms at 16 in flight, load average 2-4). So an
# RPC started this shortly before a revert began may have been picked after it.
PICK_LAG_MS = 50

# The order in which rules are reported: the first that failed names the failure.
RULES = (
    "in_flight_succeeds",
    "rpc_succeeds",
    "routed_away",
    "fails_fast",
    "recovers",
    "rejoins",
    "deadline_kept",
    "answers_correct",
    "serves_at_baseline",
)


@dataclass(frozen=True)
class Context:
    """What the oracle knows besides the history."""

    backends: tuple[str, ...]
    requirements: Requirements = DEFAULTS
    deadline_ms: float = 3000
    spreads: bool = True  # the client was observed to spread RPCs (client_shape)
    since_ns: int | None = None  # the warm-up mark: RPCs ended before it are not judged


def judge_history(history: History, context: Context) -> list[Verdict]:
    """Every rule's verdict for this history (pure: reads, never waits or writes)."""
    events = history.events
    since = context.since_ns if context.since_ns is not None else _warm_mark(events)
    rpcs = [r for r in history.rpcs if since is None or r.end_ns >= since]
    need = context.requirements
    faults = windows(events, need)
    service = Service(list(context.backends), faults, int(need.recovery_ms * 1e6))
    rules = _Rules(history, rpcs, service, context, idle_gaps(events))
    return [
        *rules.safety(),
        rules.routed_away(),
        rules.fails_fast(),
        rules.deadline_kept(),
        rules.answers_correct(),
        *rules.liveness(),
    ]


def _warm_mark(events) -> int | None:
    return next(
        (e.start_ns for e in events if e.kind == MARK and e.detail.get("label") == "warm"), None
    )


class _Rules:
    def __init__(
        self,
        history: History,
        rpcs: list[Rpc],
        service: Service,
        context: Context,
        gaps: list[tuple[int, int]],
    ):
        self.h = history
        self.rpcs = rpcs
        self.s = service
        self.c = context
        self.gaps = gaps
        self.down = service.down()

    # ------------------------------------------------------------------ safety

    def safety(self) -> list[Verdict]:
        in_flight: list[tuple[Rpc, Window]] = []
        started: list[Rpc] = []
        for r in self.rpcs:
            if r.ok or r.code == "DATA_LOSS":  # a wrong answer is answers_correct's
                continue
            if self.s.app_faulted(r.backend, r.start_ns, r.end_ns):
                continue  # the backend failed it itself (app_error): the fleet's failure
            if any(s <= r.start_ns < e for s, e in (w.blind for w in self.down)):
                continue  # sent before the client could know
            if not self.s.servers_throughout(r.start_ns, r.end_ns):
                continue  # no backend could have served it all along
            broke = [w for w in self.down if w.caught(r.start_ns, r.end_ns)]
            if broke:
                if all(self._excused_in_flight(w) for w in broke):
                    continue
                in_flight.append((r, next(w for w in broke if not self._excused_in_flight(w))))
            else:
                started.append(r)
        return [self._in_flight_verdict(in_flight), self._started_verdict(started)]

    def _held_to_succeed(self, r: Rpc) -> bool:
        """Whether rpc_succeeds would judge ``r`` (started outside every blind window, a
        backend could serve throughout, in flight at no down fault)."""
        return (
            not any(s <= r.start_ns < e for s, e in (w.blind for w in self.down))
            and bool(self.s.servers_throughout(r.start_ns, r.end_ns))
            and not any(w.caught(r.start_ns, r.end_ns) for w in self.down)
        )

    def _excused_in_flight(self, w: Window) -> bool:
        if w.dirty:
            return True  # replies were being split: it may have been committed
        if w.family == HANG:
            need = self.c.requirements.hang_detection_ms + HANG_REPLAY_MARGIN_MS
            return self.c.deadline_ms < need  # no time left to replay it
        return False

    def _in_flight_verdict(self, found: list[tuple[Rpc, Window]]) -> Verdict:
        name = "in_flight_succeeds"
        caught = sum(1 for r in self.rpcs if any(w.caught(r.start_ns, r.end_ns) for w in self.down))
        if not found and self.down and not caught:
            return not_judged(
                name,
                f"no RPC was in flight when any of the {len(self.down)} down fault(s) began",
                "Nothing was in flight when a backend "
                "went down (the load was idle then): nothing to replay.",
                unit="rpcs",
                bound=0,
            )
        if not found:
            text = (
                f"Every RPC in flight when a backend went down, while another could "
                f"serve, succeeded ({len(self.down)} down fault(s) in the history)."
            )
            return Verdict(name, True, 0, "rpcs", 0, text)
        window = found[0][1]
        lines = [self._describe(r, w) for r, w in found[:LISTED]]
        paragraph = (
            f"{len(found)} RPC(s) in flight when a backend went down failed although "
            f"another backend could serve all along: a client must replay them "
            f"elsewhere (a retry policy on UNAVAILABLE; for a hang, keepalive with a "
            f"ping timeout first). " + " ".join(lines) + self._codes(r for r, _ in found)
        )
        return Verdict(
            name,
            False,
            len(found),
            "rpcs",
            0,
            explain(paragraph, self.h, window.in_force_ns, [r.id for r, _ in found[:LISTED]]),
            culprits=tuple((r.start_ns, r.end_ns) for r, _ in found),
        )

    def _started_verdict(self, found: list[Rpc]) -> Verdict:
        name = "rpc_succeeds"
        if not found and not any(self._held_to_succeed(r) for r in self.rpcs):
            return not_judged(
                name,
                "no RPC started outside the blind windows while a backend could serve throughout",
                "No RPC was in a position the rule judges.",
                unit="rpcs",
                bound=0,
            )
        if not found:
            text = (
                "Every RPC started outside the blind windows while a backend could serve "
                "throughout succeeded."
            )
            return Verdict(name, True, 0, "rpcs", 0, text)
        first = found[0]
        paragraph = (
            f"{len(found)} RPC(s) failed that started after every detection bound "
            f"had passed, while some backend could serve throughout their life. "
            f"The first: {self._rpc_text(first)}; then: {self.s.state_at(first.start_ns)}."
            + self._codes(found)
        )
        return Verdict(
            name,
            False,
            len(found),
            "rpcs",
            0,
            explain(paragraph, self.h, first.start_ns, [r.id for r in found[:LISTED]]),
            culprits=tuple((r.start_ns, r.end_ns) for r in found),
        )

    def routed_away(self) -> Verdict:
        name = "routed_away"
        hits: list[tuple[Rpc, Window]] = []
        lag = int(PICK_LAG_MS * 1e6)
        judged = 0  # windows in which RPCs were started: what the rule has seen
        for w in self.down:
            start, end = w.known_down
            # Not for a backend failing every call: outlier detection re-admits an ejected
            # backend after its ejection time to learn whether it recovered (nothing else
            # says so), so it gets first attempts again by design, and an RPC is named by
            # the backend of its *last* attempt — whether it got fewer attempts is a share
            # of gRPC's attempt counters, judged by scenarios/test_app.py. (Found by a
            # 10-minute campaign under recommended: one RPC on the failing backend, 3.3 s
            # in, after its first 1 s ejection ended.)
            if w.target is None or w.family == EJECT or start >= end - lag:
                continue
            judged += any(start <= r.start_ns < end - lag for r in self.rpcs)
            hits += [
                (r, w)
                for r in self.rpcs
                if r.backend == w.target
                and start <= r.start_ns < end - lag
                and self._sent_there_while_down(r, w, end)
            ]
        if not hits and not judged:
            windows_seen = [
                w
                for w in self.down
                if w.target is not None
                and w.family != EJECT
                and w.known_down[0] < w.known_down[1] - lag
            ]
            if windows_seen:
                return not_judged(
                    name,
                    f"no RPC started while a backend was known down "
                    f"({len(windows_seen)} such window(s); the load was idle)",
                    "The client sent nothing while a backend was known down.",
                    unit="rpcs",
                    bound=0,
                )
        if not hits:
            return Verdict(
                name,
                True,
                0,
                "rpcs",
                0,
                "No RPC started on a backend known to be down (each fault in force "
                "for longer than its detection bound).",
            )
        hits.sort(key=lambda hit: hit[0].start_ns)
        r, w = hits[0]
        bound = ms(w.detection_ns)
        paragraph = (
            f"{len(hits)} RPC(s) started on a backend the client should have known "
            f"to be down. The first: {self._rpc_text(r)}, "
            f"{ms(r.start_ns - w.in_force_ns):.0f} ms after {w.describe()} was in force "
            f"— over the {bound:g} ms bound ({_bound_name(w)})."
        )
        return Verdict(
            name,
            False,
            len(hits),
            "rpcs",
            0,
            explain(paragraph, self.h, r.start_ns, [h.id for h, _ in hits[:LISTED]]),
            culprits=tuple((w.in_force_ns, r.end_ns) for r, w in hits),
            # Each RPC came this long past the fault's detection bound: a client (or a
            # backend sending the news) stalled that long in between may have learnt late.
            late=tuple(
                (w.in_force_ns, r.start_ns, ms(r.start_ns - w.known_down[0])) for r, w in hits
            ),
        )

    def _sent_there_while_down(self, r: Rpc, w: Window, revert_ns: int) -> bool:
        """Whether an RPC answered by a backend that was known down when it started was
        sent there while it was down (not for want of a better one):

        * another backend could serve it all along — it should have gone there;
        * else: if it also ended before the revert began (a client that queues or retries
          RPCs while no backend can serve may rightly send them to the first one back)."""
        if self.s.servers_throughout(r.start_ns, r.end_ns):
            return True
        return r.end_ns < revert_ns

    def fails_fast(self) -> Verdict:
        name = "fails_fast"
        need = self.c.requirements.fail_fast_ms
        periods = self._all_known_down()
        slow = [
            r
            for r in self.rpcs
            if any(s <= r.start_ns and r.start_ns + need * 1e6 <= e for s, e in periods)
            and ms(r.latency_ns) > need
        ]
        if not slow:
            judged = sum(1 for r in self.rpcs if any(s <= r.start_ns < e for s, e in periods))
            if periods and not judged:
                return not_judged(
                    name,
                    "no RPC started while every backend was known down",
                    "The fleet was down as a whole, but the client sent nothing "
                    "then (the load was idle).",
                    unit="rpcs",
                    bound=0,
                )
            text = (
                f"{judged} RPC(s) started while every backend was known down; none took "
                f"longer than fail_fast_ms ({need:g} ms)."
                if periods
                else "The fleet was never down as a whole (by breaks or drains) long enough "
                "to judge fail-fast."
            )
            return Verdict(name, True, 0, "rpcs", 0, text)
        first = slow[0]
        paragraph = (
            f"{len(slow)} RPC(s) started while every backend was known down took "
            f"longer than fail_fast_ms ({need:g} ms) instead of failing at once "
            f"(waiting for a backend, or in retries). The first: {self._rpc_text(first)}"
            f", {ms(first.latency_ns):.0f} ms."
        )
        return Verdict(
            name,
            False,
            len(slow),
            "rpcs",
            0,
            explain(paragraph, self.h, first.start_ns, [r.id for r in slow[:LISTED]]),
            culprits=tuple((r.start_ns, r.end_ns) for r in slow),
        )

    def _all_known_down(self) -> list[tuple[int, int]]:
        """Intervals in which every backend was known down by a break or a drain."""
        per_backend = []
        for b in self.s.backends:
            spans = sorted(
                w.known_down
                for w in self.down
                if w.target == b
                and w.family in (BREAK, DRAIN)
                and w.known_down[0] < w.known_down[1]
            )
            if not spans:
                return []
            per_backend.append(_union(spans))
        common = per_backend[0]
        for spans in per_backend[1:]:
            common = _intersect(common, spans)
        return common

    def deadline_kept(self) -> Verdict:
        name = "deadline_kept"
        limit = self.c.deadline_ms + DEADLINE_MARGIN_MS
        late = [r for r in self.rpcs if ms(r.latency_ns) > limit]
        if not self.rpcs:
            return not_judged(name, "no RPC in the history", "No RPC to time.", bound=limit)
        if not late:
            longest = max((ms(r.latency_ns) for r in self.rpcs), default=0.0)
            return Verdict(
                name,
                True,
                round(longest, 3),
                "ms",
                limit,
                f"The slowest RPC took {longest:.0f} ms: no RPC outlived its "
                f"{self.c.deadline_ms:g} ms deadline by more than "
                f"{DEADLINE_MARGIN_MS} ms.",
            )
        worst = max(late, key=lambda r: r.latency_ns)
        paragraph = (
            f"{len(late)} RPC(s) outlived their {self.c.deadline_ms:g} ms deadline by "
            f"more than {DEADLINE_MARGIN_MS} ms; the worst: {self._rpc_text(worst)}, "
            f"{ms(worst.latency_ns):.0f} ms."
        )
        return Verdict(
            name,
            False,
            round(ms(worst.latency_ns), 3),
            "ms",
            limit,
            explain(paragraph, self.h, worst.end_ns, [worst.id]),
            culprits=tuple((r.start_ns, r.end_ns) for r in late),
        )

    def answers_correct(self) -> Verdict:
        name = "answers_correct"
        wrong = [r for r in self.rpcs if r.code == "DATA_LOSS"]
        if not any(r.ok for r in self.rpcs) and not wrong:
            return not_judged(
                name, "no answer in the history", "No RPC was answered.", unit="rpcs", bound=0
            )
        if not wrong:
            return Verdict(name, True, 0, "rpcs", 0, "Every answer was the right one.")
        paragraph = (
            f"{len(wrong)} answer(s) were wrong (DATA_LOSS). The first: {self._rpc_text(wrong[0])}."
        )
        # Bytes are never bent by a stall: no culprits.
        return Verdict(
            name,
            False,
            len(wrong),
            "rpcs",
            0,
            explain(paragraph, self.h, wrong[0].start_ns, [wrong[0].id]),
        )

    # ------------------------------------------------------------------ liveness

    def liveness(self) -> list[Verdict]:
        bound = self.c.requirements.recovery_ms
        if any(w.end_ns == FOREVER for w in self.s.faults):
            return [
                not_judged(
                    "recovers",
                    "a fault was never reverted",
                    "A fault was never reverted: there is no recovery to time.",
                    bound=bound,
                )
            ]
        due = _due(self.s, self.gaps, self.c.spreads)
        # An idle gap is the schedule's pause, not the client's: RPCs are evidence only
        # where the load was running (recovery_time's rule; else *not judged*).
        return [
            _renamed(
                recovery_time(self.h, backend, after, bound, idle=self.gaps),
                "recovers" if backend is None else "rejoins",
            )
            for backend, after in due.items()
        ]

    # ------------------------------------------------------------------ wording

    def _rpc_text(self, r: Rpc) -> str:
        origin = self.c.since_ns or (self.rpcs[0].start_ns if self.rpcs else 0)
        where = f"on {r.backend}" if r.backend else "with no backend"
        details = f', "{r.details[:80]}"' if r.details else ""
        return (
            f"#{r.id} ({r.code} {where}{details}, started {ms(r.start_ns - origin):+.0f} ms "
            f"after the warm-up, lasted {ms(r.latency_ns):.0f} ms)"
        )

    def _describe(self, r: Rpc, w: Window) -> str:
        others = [b for b in self.s.servers_throughout(r.start_ns, r.end_ns) if b != w.target]
        gap = ms(w.start_ns - r.start_ns)
        when = (
            f"{gap:.0f} ms after it was sent"
            if gap >= 0
            else f"it was sent {-gap:.0f} ms later, before the fault was in force"
        )
        return (
            f"{self._rpc_text(r)} was in flight when {w.describe()} began ({when}); "
            f"{', '.join(others) or 'another backend'} could serve throughout."
        )

    @staticmethod
    def _codes(rpcs) -> str:
        codes = Counter(r.code for r in rpcs)
        return " Codes: " + ", ".join(f"{c} {n}" for c, n in codes.most_common()) + "."


def liveness_targets(history: History, context: Context) -> dict[str | None, int]:
    """Who must serve again, and from when: None (any backend) from the last revert, and —
    for a client that spreads — each backend that was out of service from its own last
    fault's end (each moved past an idle gap it falls in). Empty without faults, or with
    one never reverted."""
    events = history.events
    service = Service(list(context.backends), windows(events, context.requirements), 0)
    if any(w.end_ns == FOREVER for w in service.faults):
        return {}
    return _due(service, idle_gaps(events), context.spreads)


def _due(service: Service, gaps: list[tuple[int, int]], spreads: bool) -> dict[str | None, int]:
    if not service.faults:
        return {}
    due: dict[str | None, int] = {None: _after_idle(max(w.end_ns for w in service.faults), gaps)}
    if spreads:
        for b in service.backends:
            own = [w for w in service.faults if w.target == b and w.state not in (WEATHER, FLAKY)]
            if own and not any(w.state == UNPUBLISHED for w in own):
                due[b] = _after_idle(max(w.end_ns for w in own), gaps)
    return due


def _after_idle(t_ns: int, gaps: list[tuple[int, int]]) -> int:
    """``t_ns``, or the end of the idle gap it falls in (no RPC is sent before)."""
    for start, end in gaps:
        if start <= t_ns < end:
            return end
    return t_ns


def _bound_name(w: Window) -> str:
    assert w.family is not None  # only DOWN windows have a detection bound to name
    return DETECTION[w.family]


def _renamed(verdict: Verdict, name: str) -> Verdict:
    return replace(verdict, name=name)


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return sorted(out)


def failed_rule(verdicts: list[Verdict]) -> str | None:
    """The name of the first rule (in RULES order) that failed, or None (inconclusive and
    not-judged rules never count)."""
    failed = {v.name for v in verdicts if v.failed}
    return next((name for name in RULES if name in failed), None)
