"""The one outcome model: what a verdict, a scenario run, a cell of repeats, a fuzz example
and a whole command end as — and the exceptions that carry a scenario's outcome.

Outcomes (:class:`Outcome`; the strings are what results files hold):

    pass            the property holds
    fail            it does not: a verdict broke its bound (red)
    inconclusive    a verdict missed its bound while the runner or the machine stalled
                    enough to explain it (chaos/verdicts/judge.py): rerun; never a pass
    not judged      a verdict's history held too little evidence to decide either way
                    (a scenario reruns it like an inconclusive one; never a pass)
    not_applicable  the property presumes what this client or service does not have
    skipped         pytest skipped it for another reason (said, never a pass)
    error           the harness failed around the scenario (a fixture, the preflight)
    flaky           repeats of one scenario disagree (a cell, never one run)

How outcomes merge over repeats: :func:`merge`. How a command's counts become its exit
code (the gate, the fuzzer, the campaign): :class:`Exit` and :func:`exit_code`.

The exceptions a scenario ends with:

ScenarioFailed        a verdict did not pass: the property does not hold (red)
ScenarioInconclusive  a verdict missed its bound while the runner itself stalled enough
                      to explain it, or was not judged: rerun; never a pass
NotApplicable         the scenario's property presumes something this client or target
                      does not have (e.g. a client that spreads RPCs): said with what is
                      missing and how to provide it — never a silent pass
PreflightFailed       the client under test never reached a healthy backend at all: one
                      verdict for the whole run instead of a timeout in every scenario
StagingTimeout        a wait for what the client brings about (RPCs ending, calls
                      reaching a backend) ran out: the plugin turns it into a failed
                      *staging* verdict (what was awaited, how far it got, the
                      timeline, the settings that answer it) — never a bare timeout
UsageError            a usage or configuration error of a command: one line naming it
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from enum import IntEnum, StrEnum

from _pytest.outcomes import Skipped

NOT_APPLICABLE = "not applicable: "


class Outcome(StrEnum):
    """What a judged thing ended as; equal to the string results files hold."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NOT_JUDGED = "not judged"
    NOT_APPLICABLE = "not_applicable"
    SKIPPED = "skipped"
    ERROR = "error"
    FLAKY = "flaky"

    @property
    def bad(self) -> bool:
        """Whether it makes a command fail (exit 1): a red, an error, a disagreement."""
        return self in (Outcome.FAIL, Outcome.ERROR, Outcome.FLAKY)

    @property
    def counts_as_run(self) -> bool:
        """Whether the property was tried on this client (not applicable, skipped: no)."""
        return self not in (Outcome.NOT_APPLICABLE, Outcome.SKIPPED)


def merge(outcomes: Iterable[str]) -> Outcome:
    """One outcome from the same thing's repeats: theirs when every repeat ended the same
    way, else FLAKY — never a pass when any repeat did not pass."""
    distinct = list(dict.fromkeys(Outcome(outcome) for outcome in outcomes))
    if not distinct:
        raise ValueError("no outcome to merge")
    return distinct[0] if len(distinct) == 1 else Outcome.FLAKY


class Exit(IntEnum):
    """Exit codes of every grpc-chaos command (the gate, the fuzzer, the campaign)."""

    PASS = 0  # everything selected passed (not applicable ones listed, never counted)
    FAIL = 1  # a failure, an error, a flaky cell, or (when asked) a regression
    INCONCLUSIVE = 2  # nothing failed, but something stayed inconclusive (never a pass)
    USAGE = 4  # a usage or configuration error, named in one line; nothing was judged
    INTERRUPTED = 130  # Ctrl-C or SIGTERM: what was written is kept


def exit_code(
    counts: Mapping[str, int], *, regressed: bool = False, interrupted: bool = False
) -> Exit:
    """The exit code for outcome counts (keys: Outcome values; missing keys count 0)."""
    if interrupted:
        return Exit.INTERRUPTED
    if regressed or any(counts.get(outcome, 0) for outcome in Outcome if outcome.bad):
        return Exit.FAIL
    if counts.get(Outcome.INCONCLUSIVE, 0):
        return Exit.INCONCLUSIVE
    return Exit.PASS


class UsageError(Exception):
    """A usage or configuration error: the message is one line that names the problem and,
    where there is one, the fix. Commands print it and exit :attr:`Exit.USAGE`."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


class UsageParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError`: argparse's own exit status
    2 means *inconclusive* here, and a usage error is :attr:`Exit.USAGE` (4)."""

    def error(self, message: str):  # raises instead of exiting
        raise UsageError(f"{message} (see {self.prog} --help)")


class ScenarioFailed(AssertionError):
    """A verdict did not pass; the message is the verdict's explanation."""


class ScenarioInconclusive(Exception):
    """A verdict missed its bound while the runner stalled; the message says both."""

    def __init__(self, message: str, verdict=None):
        super().__init__(message)
        self.verdict = verdict


class PreflightFailed(Exception):
    """The client under test cannot use the fleet at all; the message says why."""


class NotApplicable(Skipped):
    """The scenario does not apply to this client or target; reported as a skip whose
    reason starts with "not applicable: " and is listed at the end of the run."""

    def __init__(self, reason: str):
        super().__init__(NOT_APPLICABLE + reason, allow_module_level=False)


class StagingTimeout(TimeoutError):
    """A scenario could not stage its situation because of what the client did: ``what``
    was awaited from ``start_ns`` to ``end_ns`` (the history's clock) and got as far as
    ``progress`` says. ``answers`` names the client settings that shape it (keys of
    chaos/verdicts/advice.py). A TimeoutError, so code that waits and copes keeps working; the
    plugin turns one a scenario lets escape into a failed verdict."""

    def __init__(
        self,
        what: str,
        timeout_s: float,
        start_ns: int,
        end_ns: int,
        progress: str = "",
        answers: tuple[str, ...] = (),
    ):
        super().__init__(
            f"{what} not reached within {timeout_s:g} s" + (f" ({progress})" if progress else "")
        )
        self.what = what
        self.timeout_s = timeout_s
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.progress = progress
        self.answers = answers
