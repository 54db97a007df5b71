"""Which backend answered each RPC, told by the client alone (no ``x-backend-id``).

A grpcio client has no per-call peer. What it has is gRPC's own per-subchannel accounting
(channelz): an attempt bumps its subchannel's ``callsStarted`` when it is picked and
``callsFailed`` or ``callsSucceeded`` when it ends, before its completion reaches Python.
Those are totals, not per RPC. This module makes them per RPC by reading them between every
two starts of the client: asyncio runs callbacks first in, first out, so a callback queued
just before a call is made runs just before grpc.aio starts it, and the next one right
after::

    load loop (asyncio)                                   Attribution
    -------------------                                   -----------
    starting(rid) --- call_soon ------------------------> (ends the previous start's bracket)
    stub.SayHello(...): grpc.aio's task starts the call:
      grpc_call_start_batch -> LB pick -> callsStarted[s] += 1
                  (the next queued callback) -----------> read the likeliest subchannel: one
                                                          start more than explained -> first
                                                          attempt on s (verified later)
    every few starts ----------------------------------> checkpoint: read every subchannel
    completed(rid, code) ------------------------------> read s: callsFailed[s] unchanged
                                                          since the checkpoint before the
                                                          start -> no retry: answer s

The rule:

1. First attempt. After each start, subchannels are read, the likeliest first (the one
   picked after the last pick last time: round_robin's next, pick_first's same), until one
   counted a start that the starts given to it so far do not explain: that is the start's
   pick. A checkpoint, every subchannel read at once, ends each segment of starts (one
   start long after an anomaly, doubling to ``MAX_SPAN`` while all is clean). A segment's
   picks are verified when every start in it found exactly one unexplained start and the
   checkpoint finds none left over: an attempt gRPC started on its own threads (a retry, a
   health-check stream) would have been counted and left one over somewhere. A start that
   found no pick (the channel queued it, or nothing was ready), or more than one, or came
   while another RPC's queued pick was outstanding, is unknown, and so is its segment.
2. Last attempt (an RPC that was retried is answered by its last one): gRPC retries only
   after an attempt failed, and counts the failure on the attempt's subchannel before it
   retries. If the first attempt's subchannel counted no failure between the checkpoint
   before the start and the completion, the first attempt was the last. Otherwise it was
   the last only if nothing but the client's own starts was counted anywhere since its
   pick (a checkpoint at the completion says). Else unknown.
3. A failed RPC whose start found no pick, after which nothing unexplained was counted, was
   never sent: no backend (definitely, not "unknown").

Unknown is said, never guessed: :attr:`Attribution.outcomes` counts every answer by reason.

Why a bracket holds: grpc.aio starts a call in the first step of the task that
``UnaryUnaryCall.__init__`` creates, right behind the callback :meth:`starting` queued; and
while the channel has a ready picker the pick happens inside ``grpc_call_start_batch``
(measured here: 200 of 200 sequential starts). A task factory (e.g. eager tasks, which run
that step before the callback) breaks the order, so it is refused.

Limits:

* Cost, in the load's loop: ~2.3 subchannel reads per RPC under load (one after each
  start, one at each completion, a checkpoint every few starts), each ~0.3-0.6 ms of CPU
  here, so the client's RPC/s drops; ``bench/bench_attribution.py`` measures how much,
  and the agreement with the header.
* Unknowns cluster where gRPC starts attempts itself: retries around a fault, health-check
  streams on each new connection, and the RPCs started before the channel had connected.
* A failed RPC is attributed to the backend its last attempt was sent to, even when that
  backend never answered (a reset connection): the header names no backend there.
* It relies on the grpcio behaviour above (aio's call task; the pick inside start_batch) and
  on grpcio's channelz entry points (``grpc._cython.cygrpc.channelz_*``). A pick that is
  queued while an attempt gRPC started itself is counted in the same bracket, with no
  other pick outstanding, would be misread; that needs a channel with no ready picker,
  and the bench counts any disagreement with the header.
* Rule 2 holds for retries, which start only after a failure; hedged attempts (a
  ``hedgingPolicy``) start without one and would need it redone.
* One channel. Its subchannels are listed every ``LIST_EVERY_S`` and after a start that
  found no pick; a segment across a change of the list is unknown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from grpc._cython import cygrpc

# The list of a channel's subchannels changes only when the resolver or the LB policy
# replaces one (a restarted backend keeps its subchannel); listing costs a channel read
# (~0.6 ms here), so it is refreshed at this period (at a checkpoint) and after a missed pick.
LIST_EVERY_S = 0.25
# Starts between two checkpoints once all is clean: a checkpoint reads every subchannel
# (3 reads for 3 backends, ~0.4 ms each), so 8 costs under half a read per start, and an
# anomaly (a retry, a health-check stream) leaves at most 8 RPCs unknown; after one, the
# span starts again at 1 and doubles with each clean segment.
MAX_SPAN = 8

EXACT = "exact"
NEVER_SENT = "never sent (no pick, and no attempt started after it)"
NOT_STARTED = "not seen starting (starting() was not called for it)"
NO_PICK = "no pick while it was started (the channel queued it, or nothing was ready)"
AMBIGUOUS_START = "another attempt started while it was started"
PICK_PENDING = "another RPC's pick was still queued while it was started"
LIST_CHANGED = "the channel's subchannels changed while it was started"
DIRTY_SEGMENT = (
    "an attempt the client did not start (a retry, a health-check stream) was "
    "counted among the starts around it"
)
MAYBE_RETRIED = (
    "its subchannel counted a failure and other attempts started while it "
    "was in flight (it may have been retried)"
)
SUBCHANNEL_GONE = "its subchannel is gone from channelz"
UNKNOWN_ADDRESS = "its subchannel's address is not one of the backends"


class Counters(NamedTuple):
    address: str
    started: int
    failed: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every subchannel's counters at one instant (between two starts)."""

    started: dict[int, int]
    failed: dict[int, int]


@dataclass(slots=True)
class _Start:
    rid: int
    base: Checkpoint  # the checkpoint before it
    first: int | None = None  # the subchannel of its first attempt, once found
    why: str = ""  # why it was not found
    anomalies: int = 0  # anomalies counted when its pick was looked for
    verified: bool | None = None  # None until the checkpoint after it


class Attribution:
    """Attributes one channel's RPCs to backends; drive it from the load's asyncio loop.

    ``channel_id`` is the channel's channelz id, or a callable returning it (the load
    learns it only once it made the channel); ``backends`` maps a published address
    (``"127.0.0.12:41234"``) to a backend id. Call :meth:`starting` right before a call is
    made (nothing awaited in between) and :meth:`completed` once it ended, for every RPC.

    Invariant: ``_seen[s]`` is subchannel s's callsStarted as explained so far — its count
    at the last checkpoint plus the starts given to it since; a read above it is a start to
    explain, and a checkpoint that finds one unexplained dirties the segment it closes.
    """

    def __init__(self, channel_id: int | Callable[[], int | None], backends: Mapping[str, str]):
        self._channel_id = channel_id
        # Kept as given (not copied): a live mapping sees backends added later (scale-out).
        self.backends = backends
        self.outcomes: Counter[str] = Counter()  # reason -> RPCs answered for it
        self.answers: dict[int, str | None] = {}  # request id -> the backend it named
        self.reasons: dict[int, str] = {}  # request id -> reason, if not exact
        self.reads = 0  # subchannel reads (the cost)
        self._targets: dict[int, str] = {}  # subchannel id -> address
        self._listed_ns = 0
        self._base: Checkpoint | None = None
        self._seen: dict[int, int] = {}
        self._open: _Start | None = None  # started, its pick not looked for yet
        self._starts: dict[int, _Start] = {}  # request id -> its start, until completed
        self._segment: list[_Start] = []  # the starts since the last checkpoint
        self._clean = True  # no anomaly in the segment so far
        self._span = 1
        self._anomalies = 0
        self._unpicked: set[int] = set()  # in flight, their pick not seen
        self._previous: int | None = None  # the last subchannel found picked
        self._next: dict[int, int] = {}  # subchannel -> the one picked after it
        self._picks: Counter[int] = Counter()  # subchannel -> starts given to it
        self._loop_checked = False

    # ------------------------------------------------------------------ the two hooks

    def starting(self, rid: int) -> None:
        """The client is about to make call ``rid`` (in its asyncio loop, now)."""
        loop = asyncio.get_running_loop()
        if not self._loop_checked:
            if loop.get_task_factory() is not None:
                raise RuntimeError(
                    "attribution needs asyncio's default task factory: a custom "
                    "one (e.g. eager tasks) may start the call before the read "
                    "that brackets it; drop loop.set_task_factory()"
                )
            self._loop_checked = True
        loop.call_soon(self._before_start, rid)

    def completed(self, rid: int, code: str) -> str | None:
        """The backend that answered RPC ``rid`` (ended with status ``code``), or None:
        unknown, or never sent (see :attr:`reasons`)."""
        start = self._starts.pop(rid, None)
        try:
            if start is None:
                return self._answer(rid, None, NOT_STARTED)
            fresh = self._checkpoint() if start.verified is None else None
            return self._verdict(start, code, fresh)
        finally:
            self._unpicked.discard(rid)

    # ------------------------------------------------------------------ the rule

    def _verdict(self, start: _Start, code: str, fresh: Checkpoint | None) -> str | None:
        rid, subchannel = start.rid, start.first
        if subchannel is None:
            if start.why == NO_PICK and code != "OK" and self._clean_since(start, fresh):
                return self._answer(rid, None, NEVER_SENT)
            return self._answer(rid, None, start.why)
        if not start.verified:
            return self._answer(rid, None, DIRTY_SEGMENT)
        if code == "OK":  # a failed RPC's last attempt failed: only rule 2's second half
            failed = self._failed_now(subchannel, fresh)
            if failed is None:
                return self._answer(rid, None, SUBCHANNEL_GONE)
            if failed == start.base.failed.get(subchannel):
                return self._answer(rid, subchannel, EXACT)
        if self._clean_since(start, fresh):
            return self._answer(rid, subchannel, EXACT)
        return self._answer(rid, None, MAYBE_RETRIED)

    def _failed_now(self, subchannel: int, fresh: Checkpoint | None) -> int | None:
        if fresh is not None:
            return fresh.failed.get(subchannel)
        counters = self._read(subchannel)
        return None if counters is None else counters.failed

    def _clean_since(self, start: _Start, fresh: Checkpoint | None) -> bool:
        """No attempt but the client's own started since ``start``'s pick was looked for
        (a checkpoint now finds any that did)."""
        if fresh is None:
            self._checkpoint()
        return self._anomalies == start.anomalies

    def _answer(self, rid: int, subchannel: int | None, why: str) -> str | None:
        backend = None
        if subchannel is not None:
            backend = self.backends.get(self._targets.get(subchannel, ""))
            if backend is None:
                why = UNKNOWN_ADDRESS
        self.outcomes[why] += 1
        if why != EXACT:
            self.reasons[rid] = why
        self.answers[rid] = backend
        return backend

    # ------------------------------------------------------------------ brackets

    def _before_start(self, rid: int) -> None:
        # Runs right before the call's first step.
        if self._base is None or len(self._segment) >= self._span:
            self._checkpoint()
        elif self._open is not None:
            self._find_pick()  # the previous start's bracket ends here
        assert self._base is not None  # the first start made a checkpoint
        self._open = self._starts[rid] = _Start(rid, self._base)
        self._segment.append(self._open)
        asyncio.get_running_loop().call_soon(self._after_start)

    def _after_start(self) -> None:
        if self._open is not None:  # no later read ended the bracket yet
            self._find_pick()

    def _find_pick(self) -> None:
        """Read subchannels, the likeliest first, until one counted a start nothing
        explains: the open start's pick (verified at the next checkpoint)."""
        start, self._open = self._open, None
        assert start is not None  # called only while a start is open
        for subchannel in self._candidates():
            counters = self._read(subchannel)
            if counters is None:
                return self._unresolved(start, LIST_CHANGED)
            new = counters.started - self._seen[subchannel]
            self._seen[subchannel] = counters.started
            if new:
                return self._judge(start, {subchannel: new})
        self._judge(start, {})

    def _judge(self, start: _Start | None, new: dict[int, int]) -> None:
        """Give ``start`` (None: no start since the last read) the starts nothing explained
        yet, per subchannel (``new``, nonzero counts only)."""
        if start is None:
            if new:
                self._anomaly()
        elif not new:
            self._unpicked.add(start.rid)
            self._listed_ns = 0  # a pick on a subchannel not listed yet looks the same
            self._unresolved(start, NO_PICK)
        elif list(new.values()) != [1]:
            self._unresolved(start, AMBIGUOUS_START)
        elif self._unpicked:
            self._unresolved(start, PICK_PENDING)
        else:
            self._picked(start, next(iter(new)))

    def _candidates(self) -> list[int]:
        # The one picked after the last pick last time (round_robin: the next in its
        # order; pick_first: the same), then the least picked.
        guess = None if self._previous is None else self._next.get(self._previous)
        rest = sorted(self._targets, key=lambda s: (s == guess, self._picks[s]))
        return rest if guess not in self._targets else [guess] + rest[:-1]

    def _picked(self, start: _Start, subchannel: int) -> None:
        start.first, start.anomalies = subchannel, self._anomalies
        if self._previous is not None:
            self._next[self._previous] = subchannel
        self._previous = subchannel
        self._picks[subchannel] += 1

    def _unresolved(self, start: _Start, why: str) -> None:
        self._anomaly()
        start.why, start.anomalies = why, self._anomalies

    def _anomaly(self) -> None:
        self._clean = False
        self._anomalies += 1

    def _checkpoint(self) -> Checkpoint:
        """Read every subchannel at once (ending the open start's bracket, if any); the
        segment of starts since the last checkpoint is verified if every start in it found
        its pick and nothing else started."""
        start, self._open = self._open, None
        now = time.monotonic_ns()
        if self._base is None or now - self._listed_ns > LIST_EVERY_S * 1e9:
            self._list(now)
        started, failed = {}, {}
        for subchannel in list(self._targets):
            counters = self._read(subchannel)
            if counters is not None:
                started[subchannel], failed[subchannel] = counters.started, counters.failed
        if self._base is not None:
            self._judge(
                start,
                {
                    s: n - self._seen[s]
                    for s, n in started.items()
                    if s in self._seen and n != self._seen[s]
                },
            )
        for member in self._segment:
            member.verified = self._clean
        self._span = min(2 * self._span, MAX_SPAN) if self._clean else 1
        self._segment, self._clean, self._seen = [], True, dict(started)
        self._base = Checkpoint(started, failed)
        return self._base

    def _read(self, subchannel: int) -> Counters | None:
        self.reads += 1
        counters = _subchannel_counters(subchannel)
        if counters is None:  # gone: the LB policy dropped it
            del self._targets[subchannel]
            self._anomaly()
        return counters

    def _list(self, now: int) -> None:
        channel_id = self._channel_id() if callable(self._channel_id) else self._channel_id
        if channel_id is None:
            raise RuntimeError(
                "attribution needs the channel's channelz id; the load has not made its channel yet"
            )
        channel = json.loads(cygrpc.channelz_get_channel(channel_id))["channel"]
        listed = {int(ref["subchannelId"]) for ref in channel.get("subchannelRef", [])}
        if listed != self._targets.keys():
            if self._base is not None:
                self._anomaly()
            for subchannel in listed - self._targets.keys():
                counters = _subchannel_counters(subchannel)
                if counters is not None:
                    self._targets[subchannel] = counters.address
            for subchannel in self._targets.keys() - listed:
                del self._targets[subchannel]
        self._listed_ns = now


def _subchannel_counters(subchannel: int) -> Counters | None:
    """(address, callsStarted, callsFailed) of a subchannel; None if channelz has no such
    subchannel any more. The address drops channelz's ``ipv4:``/``ipv6:`` scheme."""
    try:
        data = json.loads(cygrpc.channelz_get_subchannel(subchannel))["subchannel"]["data"]
    except ValueError:
        return None
    target = data.get("target", "")
    address = target.split(":", 1)[1] if target.startswith(("ipv4:", "ipv6:")) else target
    return Counters(address, int(data.get("callsStarted", 0)), int(data.get("callsFailed", 0)))
