"""What the gate prints while it runs: one line per finished scenario, and on a terminal
an elapsed/ETA bar under them (a plain line log when not a TTY, or with --quiet)::

    FAIL  test_kill::test_kill_under_load_loses_no_rpc [naive]  errors: 10 rpcs (bound <= 0
          rpcs)  5.4 s                                          (one line on the screen)
    PASS  test_health::test_graceful_drain_loses_no_rpc [naive]  drain_time: 3.1 ms (bound
          <= 50 ms)  3.1 s
    [########------------]  12/45  elapsed 0:41  ETA 1:52

A line shows the verdict that decided: the failed one, or for a pass the figure closest
to its bound. The ETA is the mean time per finished scenario times the ones left.
"""

from __future__ import annotations

import time
from typing import TextIO

from chaos.gate import aggregate
from chaos.outcomes import Outcome

WORDS = {
    Outcome.PASS: "PASS",
    Outcome.FAIL: "FAIL",
    Outcome.INCONCLUSIVE: "INCONCLUSIVE",
    Outcome.ERROR: "ERROR",
    Outcome.NOT_APPLICABLE: "N/A",
    Outcome.SKIPPED: "SKIP",
}
_BAR_WIDTH = 24
_CLEAR = "\r\033[K"


def line(record: dict, tag: str = "") -> str:
    """The progress line of one finished scenario."""
    word = WORDS.get(record["outcome"], record["outcome"].upper())
    verdict = aggregate.decisive(record)
    judged = (Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE)
    if verdict is not None and record["outcome"] in judged:
        detail = aggregate.describe(verdict)
    else:
        detail = aggregate.reason_of(record)
    reruns = f", {record['attempts'] - 1} rerun(s)" if record.get("attempts", 1) > 1 else ""
    return (
        f"{word:<5} {record['scenario']}{tag}  {detail}  "
        f"{record.get('duration_s', 0):.1f} s{reruns}"
    )


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class Progress:
    """Prints progress lines to ``stream``; with ``bar`` also the elapsed/ETA bar."""

    def __init__(self, stream: TextIO, bar: bool):
        self.stream = stream
        self.bar = bar
        self.started = time.monotonic()
        self.done = 0
        self.total: int | None = None
        self._drawn = False

    def say(self, text: str) -> None:
        self._erase()
        self.stream.write(text + "\n")
        self.tick()

    def finished(self, record: dict, tag: str = "") -> None:
        self.done += 1
        self.say(line(record, tag))

    def expect(self, total: int) -> None:
        """The number of scenario results the whole gate will report."""
        self.total = total

    def tick(self) -> None:
        """Redraw the bar (elapsed time moves on between results)."""
        if self.bar:
            self.stream.write(_CLEAR + self._bar())
            self._drawn = True
        self.stream.flush()

    def close(self) -> None:
        self._erase()
        self.stream.flush()

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(_CLEAR)
            self._drawn = False

    def _bar(self) -> str:
        elapsed = time.monotonic() - self.started
        if not self.total:
            return f"[{'?' * _BAR_WIDTH}]  {self.done}/?  elapsed {_clock(elapsed)}"
        share = min(1.0, self.done / self.total)
        filled = int(share * _BAR_WIDTH)
        eta = f"  ETA {_clock(elapsed / self.done * (self.total - self.done))}" if self.done else ""
        return (
            f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}]  {self.done}/{self.total}  "
            f"elapsed {_clock(elapsed)}{eta}"
        )
