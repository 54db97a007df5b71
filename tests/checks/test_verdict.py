"""Verdict, and the rules every check keeps (timeline in the explanation, input forms)."""

from __future__ import annotations

import json

import pytest

from chaos import checks
from chaos.checks import Verdict
from chaos.checks.selection import as_history, describe_window

from .conftest import at, make_history, round_robin


def test_verdict_is_truthy_when_passed():
    assert Verdict("x", True, 1.0, "ms", 2.0, "fine")
    assert not Verdict("x", False, 3.0, "ms", 2.0, "slow")


def test_verdict_text_has_a_headline_then_the_indented_explanation():
    v = Verdict(
        "failover_time", False, 612.5, "ms", 500.0, "Failover took 612.500 ms.\n\ntimeline ..."
    )
    assert str(v).splitlines() == [
        "FAIL failover_time: 612.5 ms (bound <= 500 ms)",
        "    Failover took 612.500 ms.",
        "",
        "    timeline ...",
    ]


def test_dimensionless_figures_are_named_first():
    assert (
        Verdict("balance_chi2", True, 0.0204, "p", 0.001, "", ">=").headline
        == "PASS balance_chi2: p 0.0204 (bound >= 0.001)"
    )
    assert (
        Verdict("error_rate", True, None, "ratio", 0.1, "").headline
        == "PASS error_rate: ratio n/a (bound <= 0.1)"
    )


def test_verdict_to_dict_is_json():
    v = Verdict("errors", False, 2, "rpcs", 0, "two", data={"by_code": {"UNAVAILABLE": 2}})
    assert json.loads(json.dumps(v.to_dict()))["data"] == {"by_code": {"UNAVAILABLE": 2}}


def test_as_history_takes_lists_and_refuses_strangers():
    h = make_history([(0, "b1")])
    assert as_history(h) is h
    assert as_history(h.rpcs + h.events).rpcs == h.rpcs
    with pytest.raises(TypeError, match="not str"):
        as_history(["b1"])


def test_windows_are_described_relative_to_the_history_start():
    h = make_history([(0, "b1"), (10, "b2")])
    assert describe_window(h, None, None) == "over the whole history"
    assert describe_window(h, at(5), None) == "from +5.000 ms to the end of the history"
    assert describe_window(h, None, at(7.5)) == "from the start to +7.500 ms of the history"


KILL = make_history(
    [
        (0, "b1"),
        (1, "b2"),
        (2, "b3"),
        (10, "b2", "UNAVAILABLE"),
        (11, "b1"),
        (12, "b3"),
        (30, "b2"),
        (31, "b1"),
    ],
    events=[("kill", "b2", 5, 20)],
)
EVERY_CHECK = {
    "failover_time": lambda h: checks.failover_time(h, "b2", at(5), bound_ms=1),
    "recovery_time": lambda h: checks.recovery_time(h, "b2", at(20), bound_ms=5),
    "drain_time": lambda h: checks.drain_time(h, "b2", at(5), bound_ms=1),
    "no_traffic_to": lambda h: checks.no_traffic_to(h, "b2", at(5), at(20)),
    "errors": lambda h: checks.errors(h),
    "error_rate": lambda h: checks.error_rate(h, max_ratio=0.5),
    "balance_exact": lambda h: checks.balance_exact(h, ["b1", "b2", "b3"]),
    "balance_chi2": lambda h: checks.balance_chi2(h, ["b1", "b2", "b3"], min_expected=1),
    "latency": lambda h: checks.latency(h, bound_ms=1),
}


@pytest.mark.parametrize("name", sorted(EVERY_CHECK))
def test_every_check_names_itself_and_explains_with_a_timeline(name):
    v = EVERY_CHECK[name](KILL)
    assert isinstance(v, Verdict) and v.name == name
    paragraph, timeline = v.explanation.split("\n\n", 1)
    assert len(paragraph) > 40
    assert timeline.startswith("timeline around") and "kill b2" in timeline
    assert str(v).startswith(("PASS", "FAIL", "NOT JUDGED"))


@pytest.mark.parametrize("name", sorted(EVERY_CHECK))
def test_every_check_gives_a_verdict_on_an_empty_history(name):
    v = EVERY_CHECK[name](make_history())
    assert isinstance(v, Verdict) and "timeline around" in v.explanation


@pytest.mark.parametrize("name", sorted(EVERY_CHECK))
def test_every_check_reads_the_history_without_changing_it(name):
    h = make_history(round_robin(["b1", "b2", "b3"], 3), events=[("kill", "b2", 5, 20)])
    before = (h.rpcs, h.events)
    EVERY_CHECK[name](h)
    EVERY_CHECK[name](h.rpcs[::-1] + h.events)
    assert (h.rpcs, h.events) == before


def test_checks_package_exports_its_public_api():
    assert set(checks.__all__) >= set(EVERY_CHECK) | {"Verdict", "percentiles"}
    assert all(hasattr(checks, name) for name in checks.__all__)
