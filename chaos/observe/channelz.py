"""What the client sent to each backend, from gRPC's own per-subchannel accounting (channelz).

A history records each RPC once, with the backend that answered it. It cannot see the
attempts in between: a retry policy that replays a failed attempt on another backend
shows the client one OK RPC, while the failing backend got the first attempt. gRPC counts
every attempt per subchannel (``callsStarted``; the health-check stream is one call per
connection), so sampling those counters over time shows where attempts went::

    AttemptSampler(channel_id, addresses -> backend ids).start()
        every SAMPLE_S: subchannel counters -> Sample(t_ns, backend, started, succeeded,
                                                      failed, state)

Channels are found by id: :func:`track_new_channel` wraps a channel's creation and returns
the channelz id of the channel made inside it (creations are serialised by a lock, so a
concurrent one cannot be mistaken for it).

Limits: counts per subchannel, not per RPC; a sample every 25 ms; one query costs ~0.4 ms
(channelz returns the subchannel's trace too). Uses grpcio's channelz entry points
(``grpc._cython.cygrpc.channelz_*``, the ones grpcio-channelz serves): they return
channelz JSON.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from grpc._cython import cygrpc

SAMPLE_S = 0.025  # resolution of the attempt timeline; ~40 queries/s per subchannel
_creation = threading.Lock()


@dataclass(frozen=True, slots=True)
class Sample:
    """One subchannel's counters at ``t_ns`` (history clock)."""

    t_ns: int
    backend: str
    started: int
    succeeded: int
    failed: int
    state: str
    sockets: tuple[int, ...] = ()  # the subchannel's open connections (channelz socket ids)


def top_channel_ids() -> set[int]:
    ids, start = set(), 0
    for _ in range(10_000):  # pages of channels; bounded
        page = json.loads(cygrpc.channelz_get_top_channels(start))
        channels = page.get("channel", [])
        ids |= {int(c["ref"]["channelId"]) for c in channels}
        if page.get("end", True) or not channels:
            return ids
        start = max(ids) + 1
    return ids


@contextmanager
def track_new_channel() -> Iterator[Callable[[], int | None]]:
    """``with track_new_channel() as channel_id: make the channel`` — then
    ``channel_id()`` is the channelz id of the one top channel made in the block (None if
    none or several were)."""
    with _creation:
        before = top_channel_ids()
        found: list[int | None] = [None]
        yield lambda: found[0]
        new = top_channel_ids() - before
        found[0] = next(iter(new)) if len(new) == 1 else None


def subchannel_counts(channel_id: int) -> dict[str, Sample]:
    """Per subchannel address ("127.0.0.12:41234") its counters now (backend = address)."""
    now = time.monotonic_ns()
    channel = json.loads(cygrpc.channelz_get_channel(channel_id))["channel"]
    counts: dict[str, Sample] = {}
    for ref in channel.get("subchannelRef", []):
        subchannel = json.loads(cygrpc.channelz_get_subchannel(int(ref["subchannelId"])))
        data = subchannel["subchannel"]["data"]
        address = data.get("target", "").removeprefix("ipv4:")
        sockets = tuple(int(s["socketId"]) for s in subchannel["subchannel"].get("socketRef", []))
        sample = Sample(
            now,
            address,
            int(data.get("callsStarted", 0)),
            int(data.get("callsSucceeded", 0)),
            int(data.get("callsFailed", 0)),
            data.get("state", {}).get("state", ""),
            sockets,
        )
        previous = counts.get(address)
        if previous is not None:  # a second subchannel for the address (after a re-resolution)
            sample = Sample(
                now,
                address,
                previous.started + sample.started,
                previous.succeeded + sample.succeeded,
                previous.failed + sample.failed,
                previous.state or sample.state,
                previous.sockets + sample.sockets,
            )
        counts[address] = sample
    return counts


class AttemptSampler:
    """Samples one channel's per-backend attempt counters on a daemon thread.

    ``channel`` is the channelz id of a channel of this process, or a function returning
    its counters by address (a client driver's channel: chaos/clients/remote.py)."""

    def __init__(
        self,
        channel: int | Callable[[], dict[str, Sample]],
        backends: Mapping[str, str],
        interval_s: float = SAMPLE_S,
    ):
        self.counts = channel if callable(channel) else (lambda: subchannel_counts(channel))
        self.backends = backends  # published address -> backend id (a live mapping is kept)
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AttemptSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="chaos-channelz", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None
            self._sample()

    def mark(self) -> None:
        """Take a sample now (e.g. at an instant a check counts from)."""
        self._sample()

    def _run(self) -> None:
        # Event.wait is the sampling period (a timed tick), returning at once on stop().
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        try:
            counts = self.counts()
        except (ValueError, KeyError) as exc:  # the channel is gone (closed): nothing to add
            self.error = exc
            return
        for address, sample in counts.items():
            backend = self.backends.get(address)
            if backend is not None:
                self.samples.append(
                    Sample(
                        sample.t_ns,
                        backend,
                        sample.started,
                        sample.succeeded,
                        sample.failed,
                        sample.state,
                        sample.sockets,
                    )
                )

    def of(self, backend: str) -> list[Sample]:
        return [s for s in self.samples if s.backend == backend]
