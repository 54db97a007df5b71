"""The oracle's model: from the faults recorded in a history, which backend can serve when.

Each fault event becomes a :class:`Window` on its backend, on the history's clock::

    fault:   start ......... in force .............................. revert ... end
    DOWN:    |<- going down ->|<-- detection bound -->|<-- known down -->|
    RPCs:    in flight: sent before in force, still running at start
                              |<--- blind window ---->|
    out of service:  start ..................................................... end + recovery_ms

* **in flight** — an RPC sent before the fault was in force and still running when it
  began: it was on its way, or sent to a backend already going down; a client that
  replays what a dying backend did not answer (a retry policy) loses none of them;
* **blind window** — [in force, in force + detection bound): the client may not know yet, so
  RPCs *started* in it are not held to succeed (breaks: failover_ms, hangs:
  hang_detection_ms, health: drain_ms — plus what a latency toxic on the backend's replies
  holds its health message back —, failing every call: ejection_ms of time with load — the
  client learns it only from calls, so an idle gap of the load lengthens the window);
* **known down** — [in force + detection bound, revert): no RPC may start on that backend
  (its revert — a restart, SERVING again — may serve before it has returned: the scheduler
  notes when each revert began);
* **out of service** — from its start until recovery_ms after it ends (the client needs
  that long to reconnect): the backend does not count as one that *could serve*. Faults
  that leave a backend usable (weather, a fraction of errors) never take it out; an
  untrusted certificate or a removed DNS record do (open connections may still serve, new
  ones cannot, so the oracle neither counts on it nor forbids it).

A break behind a slow_close toxic is silent — a hang (its bound is the longer one). A
break on a backend whose replies are being split (slicer, bandwidth, downstream) may catch
an RPC whose headers already arrived: committed, no retry policy may replay it, so RPCs in
flight then are not held to succeed.

Everything here is pure: events in, windows out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from chaos.fuzz import kinds
from chaos.fuzz.kinds import BREAK, DETECTION, DOWN, DRAIN, EJECT, HANG, UNPUBLISHED, UNTRUSTED
from chaos.history import Event
from chaos.load import IDLE as LOAD_IDLE
from chaos.verdicts.requirements import Requirements

FOREVER = 1 << 62  # the end of a fault never reverted
# The event of an idle gap of the load (chaos/fuzz/load_shape.py, chaos/clients/remote.py).
IDLE = LOAD_IDLE
# Noted by the scheduler just before it reverts a fault (detail: the fault's event kind and
# start): the backend may serve again from then on, before the revert has returned.
REVERT = "revert"
OUT_OF_SERVICE = (DOWN, UNTRUSTED, UNPUBLISHED)


@dataclass(frozen=True)
class Window:
    """One recorded fault as the oracle sees it."""

    kind: str  # the registry kind (kill, latency, ...)
    target: str | None  # backend id, None for the fleet
    start_ns: int
    in_force_ns: int
    end_ns: int  # FOREVER when never reverted
    state: str  # kinds.DOWN / FLAKY / WEATHER / UNTRUSTED / UNPUBLISHED
    family: str | None  # for DOWN: break, hang, drain, eject
    detection_ns: int  # the family's detection bound (0 when not DOWN)
    splits_replies: bool = False
    silences_breaks: bool = False
    dirty: bool = False  # a break that may have caught committed RPCs (replies split)
    reverting_ns: int | None = None  # when its revert began (None: at end_ns)
    reply_delay_ns: int = 0  # latency toxic on the replies: the most a message is held back

    @property
    def known_down_ns(self) -> int:
        return self.in_force_ns + self.detection_ns

    @property
    def known_down(self) -> tuple[int, int]:
        """[in force + detection bound, revert began): no RPC may start on it then."""
        until = self.end_ns if self.reverting_ns is None else min(self.reverting_ns, self.end_ns)
        return self.known_down_ns, until

    @property
    def blind(self) -> tuple[int, int]:
        return self.in_force_ns, self.known_down_ns

    def caught(self, start_ns: int, end_ns: int) -> bool:
        """Whether an RPC that ran from ``start_ns`` to ``end_ns`` was in flight when this
        fault began (sent before it was in force, still running at its start)."""
        return start_ns < self.in_force_ns and end_ns >= self.start_ns

    def describe(self) -> str:
        what = f"{self.kind} {self.target or 'fleet'}"
        return f"{what} ({self.state}{'/' + self.family if self.family else ''})"


def windows(events: list[Event], requirements: Requirements) -> list[Window]:
    """The fault windows of the recorded events (marks, idle gaps and events of unknown
    kinds are left out), in start order."""
    reverts = {
        (e.target, e.detail.get("of"), e.detail.get("began_ns")): e.start_ns
        for e in events
        if e.kind == REVERT
    }
    raw = []
    for event in events:
        kind = kinds.of_event(event.kind)
        if kind is None:
            continue
        effect = kind.effect_of(event.detail or {})
        in_force = event.in_force_ns if event.in_force_ns is not None else event.start_ns
        end = event.end_ns if event.end_ns is not None else FOREVER
        raw.append(
            Window(
                kind.name,
                event.target,
                event.start_ns,
                in_force,
                end,
                effect.state,
                effect.family,
                0,
                effect.splits_replies,
                effect.silences_breaks,
                reverting_ns=reverts.get((event.target, event.kind, event.start_ns)),
                reply_delay_ns=_reply_delay_ns(event),
            )
        )
    gaps = idle_gaps(events)
    return sorted((_refine(w, raw, requirements, gaps) for w in raw), key=lambda w: w.start_ns)


def _refine(
    window: Window,
    every: list[Window],
    requirements: Requirements,
    gaps: Sequence[tuple[int, int]] = (),
) -> Window:
    """Family modifiers from the other faults on the same backend, and the bound."""
    family = window.family
    dirty = False
    if window.state == DOWN and family == BREAK:
        if _on_at(every, window.target, window.start_ns, "silences_breaks"):
            family = HANG  # the close is held back: nothing tells the client
        dirty = _on_at(every, window.target, window.start_ns, "splits_replies")
    detection = 0
    if window.state == DOWN:
        assert family is not None  # a DOWN window always has its family (kinds.Effect)
        detection = int(getattr(requirements, DETECTION[family]) * 1e6)
        if family == EJECT:
            detection = _with_idle(window.in_force_ns, detection, gaps)
        if family == DRAIN:  # the health stream's message crosses the backend's link
            detection += max(
                (
                    w.reply_delay_ns
                    for w in every
                    if w.target == window.target
                    and w.start_ns <= window.in_force_ns + detection
                    and w.end_ns >= window.in_force_ns
                ),
                default=0,
            )
    return replace(window, family=family, detection_ns=detection, dirty=dirty)


def _reply_delay_ns(event: Event) -> int:
    """How long a latency toxic on a backend's replies holds a message back at most
    (latency + jitter): the time a drain's health message may take to reach the client,
    which the client cannot act on before (found by a 10-minute campaign under
    recommended: a drain seen 67 ms after it was in force behind 50 +- 50 ms of latency)."""
    detail = event.detail or {}
    if event.kind != "toxic:latency" or detail.get("stream", "downstream") != "downstream":
        return 0
    attributes = detail.get("attributes") or {}
    return int((attributes.get("latency", 0) + attributes.get("jitter", 0)) * 1e6)


def _with_idle(from_ns: int, bound_ns: int, gaps: Sequence[tuple[int, int]]) -> int:
    """The eject bound in time *with load*: a client learns that a backend fails every call
    only from its calls (outlier detection counts them per interval), so an idle gap of
    the load inside the blind window lengthens the window by the gap. Breaks, hangs and
    drains need no calls to be seen (a closed connection, keepalive pings, the health
    stream) and keep their bounds as they are."""
    length = bound_ns
    for _ in range(len(gaps) + 1):  # each pass can only take in more of the (few) gaps
        end = from_ns + length
        idle = sum(max(0, min(b, end) - max(a, from_ns)) for a, b in gaps)
        if bound_ns + idle == length:
            break
        length = bound_ns + idle
    return length


def _on_at(every: list[Window], target: str | None, t_ns: int, flag: str) -> bool:
    return any(
        getattr(w, flag) and w.target == target and w.start_ns <= t_ns <= w.end_ns for w in every
    )


def idle_gaps(events: list[Event]) -> list[tuple[int, int]]:
    """The load's idle gaps, (start, end) on the history's clock."""
    return sorted(
        (e.start_ns, e.end_ns if e.end_ns is not None else FOREVER)
        for e in events
        if e.kind == IDLE
    )


class Service:
    """Which backends could serve when: the out-of-service intervals of each backend."""

    def __init__(self, backends: list[str], faults: list[Window], recovery_ns: int):
        self.backends = list(backends)
        self.faults = faults
        self.out: dict[str, list[tuple[int, int]]] = {b: [] for b in self.backends}
        for w in faults:
            if w.state in OUT_OF_SERVICE and w.target in self.out:
                end = w.end_ns if w.end_ns == FOREVER else w.end_ns + recovery_ns
                self.out[w.target].append((w.start_ns, end))

    def serves_throughout(self, backend: str, start_ns: int, end_ns: int) -> bool:
        """Whether ``backend`` could serve at every instant of [start_ns, end_ns]."""
        return not any(s <= end_ns and start_ns < e for s, e in self.out[backend])

    def servers_throughout(self, start_ns: int, end_ns: int) -> list[str]:
        return [b for b in self.backends if self.serves_throughout(b, start_ns, end_ns)]

    def down(self) -> list[Window]:
        return [w for w in self.faults if w.state == DOWN]

    def app_faulted(self, backend: str | None, start_ns: int, end_ns: int) -> bool:
        """Whether ``backend`` was failing calls of its own (an app_error) during the
        interval: its failures are the fleet's, not the client's."""
        return backend is not None and any(
            w.kind == "app_error"
            and w.target == backend
            and w.start_ns <= end_ns
            and start_ns <= w.end_ns
            for w in self.faults
        )

    def state_at(self, t_ns: int) -> str:
        """E.g. "b1 serves; b2 down (kill, break); b3 serves" — for explanations."""
        parts = []
        for b in self.backends:
            on = [
                w
                for w in self.faults
                if w.target in (b, None)
                and w.start_ns <= t_ns < w.end_ns
                and w.kind != "dns_outage"
            ]
            if on:
                parts.append(
                    f"{b} "
                    + ", ".join(
                        f"{w.kind} ({w.state}{'/' + w.family if w.family else ''})" for w in on
                    )
                )
            elif not self.serves_throughout(b, t_ns, t_ns):
                parts.append(f"{b} recovering")
            else:
                parts.append(f"{b} serves")
        return "; ".join(parts)
