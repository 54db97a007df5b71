"""The one outcome model (chaos/outcomes.py): how outcomes merge over repeats and which exit
code every command gives for its counts."""

from __future__ import annotations

import pytest

from chaos.gate import aggregate
from chaos.outcomes import Exit, Outcome, UsageError, UsageParser, exit_code, merge


def test_outcomes_are_the_strings_results_files_hold():
    assert [str(o) for o in Outcome] == [
        "pass", "fail", "inconclusive", "not judged", "not_applicable", "skipped", "error",
        "flaky",
    ]  # fmt: skip
    assert Outcome("not_applicable") is Outcome.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("repeats", "merged"),
    [
        (["pass"], Outcome.PASS),
        (["pass", "pass", "pass"], Outcome.PASS),
        (["fail", "fail"], Outcome.FAIL),
        (["inconclusive", "inconclusive"], Outcome.INCONCLUSIVE),
        (["pass", "fail"], Outcome.FLAKY),
        (["pass", "inconclusive"], Outcome.FLAKY),  # never a pass when one did not pass
        (["fail", "error"], Outcome.FLAKY),
    ],
)
def test_repeats_merge_to_theirs_when_they_agree_else_flaky(repeats, merged):
    assert merge(repeats) is merged


def test_merging_nothing_is_an_error():
    with pytest.raises(ValueError):
        merge([])


@pytest.mark.parametrize(
    ("counts", "code"),
    [
        ({}, Exit.PASS),
        ({"pass": 5, "not_applicable": 2, "skipped": 1}, Exit.PASS),
        ({"pass": 5, "fail": 1}, Exit.FAIL),
        ({"pass": 5, "error": 1}, Exit.FAIL),
        ({"pass": 5, "flaky": 1}, Exit.FAIL),
        ({"pass": 5, "inconclusive": 1}, Exit.INCONCLUSIVE),
        ({"fail": 1, "inconclusive": 3}, Exit.FAIL),  # a red outweighs an unknown
    ],
)
def test_counts_map_to_one_exit_code(counts, code):
    assert exit_code(counts) is code


def test_a_regression_fails_and_an_interruption_wins():
    assert exit_code({"pass": 3}, regressed=True) is Exit.FAIL
    assert exit_code({"fail": 3}, interrupted=True) is Exit.INTERRUPTED


def test_the_gate_aggregates_with_the_same_model():
    records = [
        {"scenario": "s", "profile": {"name": "p"}, "outcome": o, "repeat": i}
        for i, o in enumerate(["pass", "fail"], 1)
    ]
    cells = aggregate.cells(records)
    assert cells[("s", "p")].outcome is Outcome.FLAKY
    assert aggregate.exit_code(aggregate.tally(cells)) is Exit.FAIL


def test_a_usage_error_raises_instead_of_exiting_2():
    parser = UsageParser(prog="grpc-chaos thing")
    parser.add_argument("--runs", type=int)
    with pytest.raises(UsageError, match=r"--runs: invalid int value.*grpc-chaos thing --help"):
        parser.parse_args(["--runs", "many"])
