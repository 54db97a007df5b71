"""What every test of the framework keeps: a failed verdict's headline states a figure
that breaks its bound.

A reader takes "FAIL balance_exact: 10 rounds (bound >= 1 rounds)" for a pass. So every
Verdict made while a test runs (in this process: checks, the judge, the oracle, scenarios
run in-process) is collected, and when the test ends each red or inconclusive one must
state what broke the bound: a figure on the wrong side of it, or a ``shown`` text that
says it in words ("never within the 7.0 s observed"). Verdicts that were not judged say
why instead, and passes say what held.
"""

from __future__ import annotations

import pytest

from chaos.checks.verdict import Verdict


@pytest.fixture(autouse=True)
def failed_headlines_state_the_failure(monkeypatch):
    made: list[Verdict] = []
    original = Verdict.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Verdict, "__init__", recording)
    yield made
    misleading = [
        v.headline for v in made if v.outcome in ("fail", "inconclusive") and not v.breaks_bound()
    ]
    assert not misleading, (
        "failed verdicts whose headline does not state what broke the "
        "bound: " + "; ".join(misleading)
    )
