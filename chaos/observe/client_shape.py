"""What the client does with several backends, observed — never read from its config.

Some properties presume a client that spreads RPCs over the backends (per-backend latency,
a backend rejoining the rotation); others hold for any client. Whether a client spreads is
a fact about its behaviour: round_robin spelled as ``loadBalancingConfig``, as the legacy
``loadBalancingPolicy``, or wrapped in outlier detection all spread; pick_first and a
config gRPC ignores do not. So it is observed while the client warms up::

    OK RPCs since the warm-up began, per backend
      every wanted backend answered            -> spreads
      >= SINGLE_MIN_RPCS OK RPCs, >= SINGLE_MIN_S since the first, all on one backend
                                               -> one backend
      as many, as long, on two or more backends (some backend never answers: its
      server is broken, which other checks judge)
                                               -> spreads
      neither before the deadline              -> the warm-up fails (it says what it saw)

A cold round_robin channel sends its first RPCs to whichever connection is ready first;
the others follow within milliseconds (tens on a busy machine), far inside the window.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

# One backend taking every RPC for this long and this many RPCs is a choice, not a
# connection still being made (a TLS handshake on loopback takes ~5-50 ms, a busy machine
# a few hundred).
SINGLE_MIN_RPCS = 100
SINGLE_MIN_S = 1.5


@dataclass(frozen=True)
class Shape:
    """A client's observed spread: ``spreads`` or not, with the evidence."""

    spreads: bool
    counts: tuple[tuple[str, int], ...]  # OK RPCs per backend in the observation
    seconds: float

    @property
    def rpcs(self) -> int:
        return sum(n for _, n in self.counts)

    def describe(self) -> str:
        spread = ", ".join(f"{b} {n}" for b, n in self.counts)
        if self.spreads:
            return f"spreads RPCs over the backends ({spread} OK RPCs in warm-up)"
        only = self.counts[0][0] if self.counts else "none"
        return (
            f"sends every RPC to one backend (all {self.rpcs} OK RPCs of its first "
            f"{self.seconds:.1f} s went to {only}; observed, not read from its config)"
        )


def observe(rpcs, since_ns: int, wanted: set[str], now_ns: int) -> Shape | None:
    """The shape the OK RPCs started since ``since_ns`` show, or None while undecided."""
    ok = [r for r in rpcs if r.ok and r.backend and r.start_ns >= since_ns]
    counts = Counter(r.backend for r in ok)
    ordered = tuple(sorted(counts.items()))
    if wanted and wanted <= set(counts):
        return Shape(True, ordered, (now_ns - since_ns) / 1e9)
    if counts and len(ok) >= SINGLE_MIN_RPCS:
        elapsed = (now_ns - ok[0].start_ns) / 1e9
        if elapsed >= SINGLE_MIN_S:
            return Shape(len(counts) > 1, ordered, elapsed)
    return None
