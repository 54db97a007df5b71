"""Hand-made histories for the check tests.

    make_history([(start_ms, backend, code, dur_ms, details), ...], events=[...])

Times are written in ms from T0 and stored in ns, as the load generator would. T0 is
far from zero so that no check can get away with assuming the clock starts at 0.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import pytest

from chaos.history import Event, History, Rpc

T0 = 10**12  # ns: an arbitrary monotonic instant, as time.monotonic_ns() gives


def at(ms: float) -> int:
    """The instant `ms` after T0, in ns."""
    return T0 + round(ms * 1_000_000)


def rpc(
    id: int,
    start_ms: float,
    backend: str | None,
    code: str = "OK",
    dur_ms: float = 1.0,
    details: str = "",
) -> Rpc:
    return Rpc(id, at(start_ms), at(start_ms + dur_ms), backend, code, details)


def make_rpcs(rows: Iterable[Sequence]) -> list[Rpc]:
    """Rows (start_ms, backend[, code[, dur_ms[, details]]]) -> Rpc, ids 1, 2, ... in row order."""
    return [rpc(i, *row) for i, row in enumerate(rows, 1)]


def make_history(
    rows: Iterable[Sequence] = (), events: Iterable[Sequence] = (), shuffle: int | None = None
) -> History:
    """A History of make_rpcs(rows) and events (kind, target, start_ms, end_ms|None[, detail]).

    `shuffle` (a seed) records the RPCs in a random order, as concurrent writers would.
    """
    rpcs = make_rpcs(rows)
    if shuffle is not None:
        random.Random(shuffle).shuffle(rpcs)
    history = History()
    for r in rpcs:
        history.record(r)
    for kind, target, start_ms, end_ms, *detail in events:
        end = None if end_ms is None else at(end_ms)
        history.add_event(Event(kind, target, at(start_ms), end, detail[0] if detail else {}))
    return history


def round_robin(
    backends: Sequence[str], rounds: int, start_ms: float = 0.0, gap_ms: float = 1.0
) -> list[tuple]:
    """Rows of a perfect round robin: `rounds` times through `backends`, one RPC every gap."""
    picks = [b for _ in range(rounds) for b in backends]
    return [(start_ms + i * gap_ms, b) for i, b in enumerate(picks)]


class FakeClock:
    """A clock that only moves when told: begin/end/mark at known instants."""

    def __init__(self, t_ns: int = T0):
        self.t_ns = t_ns

    def __call__(self) -> int:
        return self.t_ns

    def advance(self, ms: float) -> int:
        self.t_ns += round(ms * 1_000_000)
        return self.t_ns


@pytest.fixture(name="make_history", scope="session")
def make_history_fixture():
    """The make_history builder (session-scoped so hypothesis tests may use it too)."""
    return make_history


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
