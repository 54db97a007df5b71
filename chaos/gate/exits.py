"""The gate's exit codes (documented in docs/gate.md) and its one error.

0  PASS          every selected scenario passed (not applicable ones are listed, not failed)
1  FAIL          a scenario failed or errored, was flaky across repeats, or a figure
                 regressed against the baseline under --fail-on-regression
2  INCONCLUSIVE  nothing failed, but a scenario stayed inconclusive (the runner stalled)
4  USAGE         a usage or configuration error, named in one line; nothing was judged
130 INTERRUPTED  Ctrl-C or SIGTERM: the run directory keeps what was written
"""

from __future__ import annotations

PASS, FAIL, INCONCLUSIVE, USAGE, INTERRUPTED = 0, 1, 2, 4, 130


class GateError(Exception):
    """A usage or configuration error: the message is one line that names the problem and,
    where there is one, the fix. The gate prints it and exits USAGE (4)."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))
