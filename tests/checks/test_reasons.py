"""failure_reason: the code, and the cause in any listed implementation's words."""

from __future__ import annotations

from chaos.checks import failure_reason

from .conftest import make_history

WORDINGS = {
    "grpcio": "CERTIFICATE_VERIFY_FAILED: certificate has expired",
    "grpc-go": "x509: certificate has expired or is not yet valid",
}


def test_each_implementations_wording_names_the_cause():
    history = make_history(
        [
            (0, None, "UNAVAILABLE", 2, "ssl: CERTIFICATE_VERIFY_FAILED: certificate has expired"),
            (5, None, "UNAVAILABLE", 2, "desc = x509: certificate has expired or is not yet valid"),
        ]
    )
    verdict = failure_reason(history, history.rpcs, "UNAVAILABLE", WORDINGS)
    assert verdict.passed and verdict.figure == 0


def test_a_message_that_names_no_cause_or_another_code_fails_and_shows_it():
    history = make_history(
        [
            (0, None, "UNAVAILABLE", 2, "Socket closed"),
            (5, None, "DEADLINE_EXCEEDED", 2, "x509: certificate has expired or is not yet valid"),
            (9, None, "UNAVAILABLE", 2, "CERTIFICATE_VERIFY_FAILED: certificate has expired"),
        ]
    )
    verdict = failure_reason(history, history.rpcs, "UNAVAILABLE", WORDINGS)
    assert not verdict.passed and verdict.figure == 2
    assert verdict.headline.startswith("FAIL failure_reason: 2 rpcs")
    assert "Socket closed" in verdict.explanation and len(verdict.culprits) == 2


def test_only_the_code_is_held_without_wordings_and_too_few_rpcs_is_not_judged():
    history = make_history([(0, None, "UNAVAILABLE", 2, "")])
    assert failure_reason(history, history.rpcs, "UNAVAILABLE", {}).passed
    short = failure_reason(history, history.rpcs, "UNAVAILABLE", {}, min_rpcs=3)
    assert short.not_judged and not short.passed
