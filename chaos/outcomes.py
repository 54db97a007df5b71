"""How a scenario ends when it does not pass: failed, inconclusive, or not applicable.

ScenarioFailed        a verdict did not pass: the property does not hold (red)
ScenarioInconclusive  a verdict missed its bound while the runner itself stalled enough
                      to explain it (chaos/verdicts/judge.py): rerun; never a pass
NotApplicable         the scenario's property presumes something this client or target
                      does not have (e.g. a client that spreads RPCs): said with what is
                      missing and how to provide it — never a silent pass
PreflightFailed       the client under test never reached a healthy backend at all: one
                      verdict for the whole run instead of a timeout in every scenario
StagingTimeout        a wait for what the client brings about (RPCs ending, calls
                      reaching a backend) ran out: the plugin turns it into a failed
                      *staging* verdict (what was awaited, how far it got, the
                      timeline, the settings that answer it) — never a bare timeout
"""

from __future__ import annotations

from _pytest.outcomes import Skipped

NOT_APPLICABLE = "not applicable: "


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
