"""Fuzz schedules as data: the JSON round trip, the readable form, and every kind of bad
schedule refused with one line that names where and why (chaos/fuzz/schedule.py)."""

from __future__ import annotations

import json

import pytest

from chaos.fuzz import kinds
from chaos.fuzz.schedule import FaultSpec, LoadSpec, Schedule, ScheduleError, problems

KILL = {"at_ms": 0, "kind": "kill", "target": 1, "for_ms": 100, "params": {}}


def doc(*faults, **top) -> dict:
    return {
        "version": 1,
        "fleet_size": 3,
        "load": {"concurrency": 16, "deadline_ms": 3000},
        "faults": list(faults),
        **top,
    }


def test_a_schedule_round_trips_through_json_exactly():
    schedule = Schedule(
        3,
        LoadSpec(None, 20.0, 3000, ((500, 1000),)),
        (
            FaultSpec(0, "kill", 1, 100),
            FaultSpec(
                200, "latency", "all", 1000, {"ms": 50, "jitter_ms": 10, "stream": "upstream"}
            ),
            FaultSpec(300, "restart", 2, 0),
            FaultSpec(100, "dns_outage", "all", 500),
        ),
        found={"profile": "naive", "rule": "in_flight_succeeds", "seed": 7},
    )
    again = Schedule.loads(schedule.dumps())
    assert again == schedule
    assert again.found == schedule.found
    assert again.to_json() == schedule.to_json()
    assert again.key() == schedule.key()


def test_the_text_form_names_every_fault_in_time_order():
    schedule = Schedule.from_json(
        doc(
            {"at_ms": 300, "kind": "restart", "target": 2, "for_ms": 0},
            dict(KILL),
            {
                "at_ms": 100,
                "kind": "health",
                "target": 3,
                "for_ms": 500,
                "params": {"status": "NOT_SERVING"},
            },
        )
    )
    lines = schedule.text().splitlines()
    assert lines[0] == "fleet of 3; load: 16 in flight, deadline 3000 ms"
    assert "kill #1 for 0.100 s" in lines[1]
    assert "health #3 for 0.500 s (status=NOT_SERVING)" in lines[2]
    assert "restart #2 (instant)" in lines[3]
    assert schedule.summary() == "3 faults: restart #2, kill #1, health #3"


def test_found_is_not_part_of_what_a_schedule_is():
    plain = Schedule.from_json(doc(dict(KILL)))
    assert plain.with_found(profile="naive").key() == plain.key()


def test_a_file_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"version": 1, "faults": [')
    with pytest.raises(ScheduleError, match=r"^schedule .*broken\.json: not JSON: "):
        Schedule.read(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ScheduleError, match=r"nope\.json: cannot read: No such file"):
        Schedule.read(tmp_path / "nope.json")


BAD = [
    (
        doc(dict(KILL, kind="kil")),
        "faults[0].kind: unknown fault kind 'kil': did you mean 'kill'? known kinds: kill, ",
    ),
    (doc(dict(KILL, kind=3)), "faults[0].kind: unknown fault kind 3"),
    (doc(dict(KILL, colour="red")), "faults[0]: unknown field 'colour'"),
    (doc({"kind": "kill", "target": 1}), "faults[0]: missing field 'at_ms'"),
    ({"version": 1}, "missing field 'faults'"),
    ({"version": 2, "faults": []}, "version: 2 is not a schedule version"),
    (doc(dict(KILL, target=4)), "faults[0]: target #4, but the fleet has 3 backends"),
    (doc(dict(KILL, target="b2")), "faults[0].target: 'b2' is not a rank"),
    (doc(dict(KILL, at_ms=-5)), "faults[0].at_ms: -5 is not a whole number from 0"),
    (doc(dict(KILL, for_ms=0)), "faults[0]: kill needs a duration"),
    (
        doc({"at_ms": 0, "kind": "restart", "target": 1, "for_ms": 100}),
        "faults[0]: restart is instant: for_ms must be 0",
    ),
    (
        doc({"at_ms": 0, "kind": "dns_outage", "target": 1, "for_ms": 100}),
        "faults[0]: dns_outage acts on the whole fleet",
    ),
    (
        doc(
            {
                "at_ms": 0,
                "kind": "latency",
                "target": 1,
                "for_ms": 100,
                "params": {"ms": 5000, "jitter_ms": 0, "stream": "downstream"},
            }
        ),
        "faults[0]: params.ms: 5000 is not one of 50, 10, 100, 200",
    ),
    (
        doc(
            {
                "at_ms": 0,
                "kind": "latency",
                "target": 1,
                "for_ms": 100,
                "params": {"ms": 50, "stream": "downstream"},
            }
        ),
        "faults[0]: params.jitter_ms: missing",
    ),
    (doc(dict(KILL, params={"signal": 9})), "faults[0]: params.signal: kill has no parameter"),
    (
        doc(
            dict(KILL, for_ms=1000),
            {
                "at_ms": 500,
                "kind": "health",
                "target": 1,
                "for_ms": 100,
                "params": {"status": "NOT_SERVING"},
            },
        ),
        "faults[1]: health #1 at +0.500 s overlaps kill #1 (busy until +2.500 s with its "
        "revert): both need the backend's process",
    ),
    (
        doc(
            dict(KILL, for_ms=1000, target="all"),
            {"at_ms": 500, "kind": "pause", "target": 2, "for_ms": 100},
        ),
        "faults[1]: pause #2 at +0.500 s overlaps kill all",
    ),
    (
        dict(
            doc(
                {
                    "at_ms": 0,
                    "kind": "app_delay",
                    "target": 1,
                    "for_ms": 500,
                    "params": {"delay_ms": 200},
                },
                {
                    "at_ms": 0,
                    "kind": "latency",
                    "target": 1,
                    "for_ms": 500,
                    "params": {"ms": 200, "jitter_ms": 50, "stream": "downstream"},
                },
                {
                    "at_ms": 0,
                    "kind": "latency",
                    "target": 1,
                    "for_ms": 500,
                    "params": {"ms": 200, "jitter_ms": 50, "stream": "upstream"},
                },
            ),
            load={"concurrency": 16, "deadline_ms": 1000},
        ),
        "faults[2]: latency #1 brings the added delay on that backend to 700 ms, over half "
        "the 1000 ms deadline (500 ms)",
    ),
    (dict(doc(), load={"concurrency": 4, "rate": 10}), "load: give exactly one of"),
    (dict(doc(), load={"rate": 0}), "load.rate: 0 is not a rate"),
    (
        dict(doc(), load={"concurrency": 4, "idle": [[0, 1000], [500, 1000]]}),
        "load: idle gaps at +0.000 s and +0.500 s overlap",
    ),
    (dict(doc(), found="naive"), "found: must be an object"),
    ([KILL], "expected an object, got list"),
]


@pytest.mark.parametrize(
    "data, message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)]
)
def test_a_bad_schedule_is_refused_in_one_line_that_names_it(data, message):
    with pytest.raises(ScheduleError) as caught:
        Schedule.from_json(data, source="sched.json")
    text = str(caught.value)
    assert text.startswith("sched.json: "), text
    assert message in text, text
    assert "\n" not in text


def test_problems_judge_each_fault_against_the_kept_ones_so_dropping_them_leaves_a_valid_one():
    faults = (
        FaultSpec(0, "kill", 1, 1000),
        FaultSpec(500, "health", 1, 100, {"status": "NOT_SERVING"}),
        FaultSpec(600, "pause", 1, 100),
        FaultSpec(700, "latency", 2, 100, {"ms": 50, "jitter_ms": 0, "stream": "downstream"}),
    )
    schedule = Schedule(3, LoadSpec(), faults)
    assert [i for i, _ in problems(schedule)] == [1, 2]
    kept = Schedule(3, LoadSpec(), (faults[0], faults[3]))
    assert problems(kept) == []


def test_every_kind_has_a_valid_default_and_a_known_event():
    for kind in kinds.REGISTRY.values():
        fault = FaultSpec(
            0,
            kind.name,
            "all" if kind.fleet_wide else 1,
            0 if kind.instant else 100,
            kind.defaults(),
        )
        assert problems(Schedule(3, LoadSpec(), (fault,))) == [], kind.name
        made = kind.make(None if kind.fleet_wide else "b1", kind.defaults())
        assert made.kind == kind.event, kind.name
        assert kinds.of_event(made.kind) is kind
        json.dumps(made.detail())  # recorded as an event: JSON-native
