"""Attempt checks on gRPC's per-subchannel counters (samples as chaos/observe/channelz.py takes them)."""

from chaos.checks import attempts, ejection_time
from chaos.observe.channelz import Sample

MS = 1_000_000


def _series(backend, counts, every_ms=25, failed=None):
    return [
        Sample(i * every_ms * MS, backend, c, 0, (failed or [0] * len(counts))[i], "READY")
        for i, c in enumerate(counts)
    ]


def test_ejection_is_the_start_of_the_first_quiet_period():
    # attempts rise for 400 ms after the fault (at 0), then stay put for 600 ms
    samples = _series("b2", list(range(0, 17)) + [16] * 24)
    verdict = ejection_time(samples, "b2", after_ns=0, bound_ms=1500, quiet_ms=500)
    assert verdict.passed and verdict.figure == 400
    assert verdict.span == (0, 400 * MS)
    late = ejection_time(samples, "b2", after_ns=0, bound_ms=300, quiet_ms=500)
    assert not late.passed and late.figure == 400


def test_never_quiet_is_a_failure_with_the_attempts_per_quarter_second():
    samples = _series("b2", list(range(0, 80)))
    verdict = ejection_time(samples, "b2", after_ns=0, bound_ms=1500, quiet_ms=500)
    assert not verdict.passed and verdict.figure is None
    assert "kept getting attempts: 79 in the 2.0 s" in verdict.explanation
    assert "+0 ms: 9, +250 ms: 10, +500 ms: 10" in verdict.explanation


def test_a_quiet_period_shorter_than_asked_does_not_count():
    samples = _series("b2", [0] * 10 + list(range(1, 31)))  # quiet 225 ms, then busy
    assert not ejection_time(samples, "b2", 0, 1500, quiet_ms=500).passed


def test_attempts_counts_the_rise_in_the_window_against_a_budget_or_a_floor():
    samples = _series("b2", [5, 5, 5, 7, 9], failed=[0, 0, 1, 3, 4])
    assert attempts(samples, "b2", start_ns=50 * MS).figure == 4
    assert not attempts(samples, "b2", start_ns=50 * MS).passed
    assert attempts(samples, "b2", start_ns=0, end_ns=50 * MS).passed
    failed = attempts(samples, "b2", start_ns=0, counter="failed", at_least=2)
    assert failed.passed and failed.figure == 4 and failed.comparison == ">="
    assert failed.name == "failed_attempts"


def test_attempts_without_a_sample_before_the_window_proves_nothing():
    verdict = attempts(_series("b2", [1, 2]), "b2", start_ns=-1)
    assert not verdict.passed and "nothing to count from" in verdict.explanation


def test_each_failed_attempt_is_a_culprit_over_its_own_life_not_the_whole_window():
    # One RPC at a time: started counts 1 at 25 ms, 2 at 100 ms (that one fails, seen at
    # 375 ms), 3 at 400 ms. A stall must cover 75-375 ms to explain it, not the whole
    # second (found at load 13.7: a 250 ms deadline missed by one of b1's RPCs was judged
    # against the 1 s window and stayed a red).
    started = [0, 1, 1, 1, 2] + [2] * 11 + [3] * 25
    failed = [0] * 15 + [1] * 26
    samples = _series("b1", started, failed=failed)
    verdict = attempts(samples, "b1", start_ns=0, counter="failed")
    assert not verdict.passed and verdict.figure == 1
    assert verdict.culprits == ((75 * MS, 375 * MS),)
    # Counting all attempts against a budget keeps the window.
    sent = attempts(samples, "b1", start_ns=0, counter="started", budget=0)
    assert sent.culprits == ((0, 1000 * MS),)
