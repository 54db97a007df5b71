"""History: recording, events and marks, windows, JSON lines, summary, timeline, threads."""

from __future__ import annotations

import json
import threading

import pytest

from chaos.history import Event, History, Rpc

from .conftest import T0, FakeClock, at, make_history, rpc


def test_rpc_ok_and_latency():
    assert rpc(1, 0, "b1", dur_ms=2.5).latency_ns == 2_500_000
    assert rpc(1, 0, "b1").ok
    assert not rpc(1, 0, "b1", "UNAVAILABLE").ok
    assert not rpc(1, 0, None, "ok").ok  # codes are grpc names, matched exactly


def test_rpcs_come_back_sorted_by_start_then_id_whatever_the_recording_order():
    h = make_history([(5, "b1"), (1, "b2"), (3, "b3"), (1, "b1")], shuffle=7)
    assert [(r.start_ns, r.id) for r in h.rpcs] == [(at(1), 2), (at(1), 4), (at(3), 3), (at(5), 1)]


def test_reads_are_copies():
    h = make_history([(0, "b1")])
    h.rpcs.clear()
    h.events.append(Event("kill", "b1", at(0)))
    assert len(h.rpcs) == 1 and h.events == []


def test_queries_of_who_served_count_only_ok_rpcs_started_since():
    h = make_history(
        [(0, "b1"), (10, "b2"), (20, "b2", "UNAVAILABLE"), (30, "b3"), (40, "b2"), (50, None)]
    )
    assert h.served_by(at(10)) == {"b2", "b3"}
    assert h.served_since("b1", at(0)) and not h.served_since("b1", at(1))
    assert h.count_ok("b2", at(0)) == 2  # the UNAVAILABLE one is not an answer
    assert h.busiest(at(0)) == "b2"
    assert h.busiest(at(25)) == "b2"  # ties go to the lowest id: b2 (1) ties b3 (1)
    with pytest.raises(AssertionError, match="no backend has answered"):
        h.busiest(at(60))


def test_window_selects_by_start_half_open():
    h = make_history([(0, "b1", "OK", 50), (10, "b2"), (20, "b3"), (30, "b1")])
    assert [r.id for r in h.window(at(10), at(30))] == [2, 3]  # [10, 30): 30 excluded
    assert [r.id for r in h.window(at(5))] == [2, 3, 4]  # #1 started before, ended inside: out
    assert [r.id for r in h.window(end_ns=at(10))] == [1]
    assert [r.id for r in h.window()] == [1, 2, 3, 4]
    assert h.window(at(31), at(100)) == []


def test_begin_end_use_the_history_clock(clock):
    h = History(clock)
    handle = h.begin("kill", "b2", signal=9)
    assert h.events == [Event("kill", "b2", T0, None, {"signal": 9})]
    assert h.events[0].active
    clock.advance(250)
    ended = h.end(handle)
    assert ended == Event("kill", "b2", T0, at(250), {"signal": 9})
    assert h.events == [ended] and not ended.active


def test_end_twice_keeps_the_first_end(clock):
    h = History(clock)
    handle = h.begin("pause", "b1")
    clock.advance(10)
    first = h.end(handle)
    clock.advance(10)
    assert h.end(handle) == first
    assert h.events[0].end_ns == at(10)


@pytest.mark.parametrize("handle", [5, -1, "0", None])
def test_end_with_a_bad_handle_says_what_to_pass(handle):
    h = History()
    h.begin("kill", "b1")
    with pytest.raises(ValueError, match="begin\\(\\) returned"):
        h.end(handle)


def test_during_ends_the_event_even_when_the_body_raises(clock):
    h = History(clock)
    with pytest.raises(RuntimeError), h.during("toxic:latency", "b3", latency_ms=200):
        clock.advance(5)
        raise RuntimeError("scenario failed")
    assert h.events == [Event("toxic:latency", "b3", T0, at(5), {"latency_ms": 200})]


def test_mark_is_an_instant_event_and_can_be_found_by_label(clock):
    h = History(clock)
    clock.advance(3)
    t = h.mark("flip")
    clock.advance(4)
    h.mark("flip")  # the first of equal labels wins
    assert t == at(3)
    assert h.events[0] == Event("mark", None, at(3), at(3), {"label": "flip"})
    assert h.mark_ns("flip") == at(3)
    with pytest.raises(KeyError, match="marks are: flip"):
        h.mark_ns("kill")


def test_events_sorted_by_start_ties_keep_insertion_order():
    h = History()
    h.add_event(Event("b", None, at(2)))
    h.add_event(Event("a", None, at(1)))
    h.add_event(Event("c", None, at(1)))
    assert [e.kind for e in h.events] == ["a", "c", "b"]


@pytest.mark.parametrize("detail", [{"when": object()}, {"x": float("nan")}, {1j: 1}])
def test_event_detail_must_be_json_native(detail):
    with pytest.raises(TypeError, match="JSON-native"):
        History().add_event(Event("kill", "b1", at(0), None, detail))


def test_begin_rejects_non_json_detail_where_it_is_made():
    with pytest.raises(TypeError, match="'dns:remove'"):
        History().begin("dns:remove", addresses={"127.0.0.12"})  # a set is not JSON


def test_from_records_accepts_rpcs_and_events_and_names_anything_else():
    h = History.from_records([rpc(1, 0, "b1"), Event("kill", "b1", at(1))])
    assert len(h.rpcs) == 1 and len(h.events) == 1
    with pytest.raises(TypeError, match="not dict"):
        History.from_records([{"id": 1}])


# -- JSON lines -----------------------------------------------------------------------


def _tricky_history() -> History:
    h = make_history(
        [
            (0, "b1", "OK", 1.5),
            (0, None, "UNAVAILABLE", 3, "Socket closed — résumé ☃ 日本"),
            (2, "b2", "DEADLINE_EXCEEDED", 1000, 'quote " backslash \\ newline \n tab \t'),
            (4, "b3", "INTERNAL", 1, "lone surrogate \ud800 and emoji 🦄"),
        ],
        events=[
            (
                "kill",
                "b2",
                1,
                300,
                {"signal": 9, "nested": {"list": [1, 2.5, None, True], "ü": "ß"}},
            ),
            ("pause", "b3", 2, None),
            ("mark", None, 1, 1, {"label": "fault ⚡"}),
        ],
    )
    h.record(Rpc(99, 2**62, 2**62 + 1, "b1", "OK"))  # big ints stay exact
    return h


def test_jsonl_round_trips_exactly(tmp_path):
    h = _tricky_history()
    path = tmp_path / "history.jsonl"
    h.to_jsonl(path)
    back = History.from_jsonl(path)
    assert back.rpcs == h.rpcs
    assert back.events == h.events
    assert back.summary() == h.summary()
    # and again: writing what was read gives the same bytes
    again = tmp_path / "again.jsonl"
    back.to_jsonl(again)
    assert again.read_bytes() == path.read_bytes()


def test_jsonl_is_one_object_per_line_in_time_order(tmp_path):
    path = tmp_path / "h.jsonl"
    _tricky_history().to_jsonl(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert len(lines) == 8
    assert {o["type"] for o in objects} == {"rpc", "event"}
    starts = [o["start_ns"] for o in objects]
    assert starts == sorted(starts)
    assert objects[0] == {
        "type": "rpc",
        "id": 1,
        "start_ns": T0,
        "end_ns": at(1.5),
        "backend": "b1",
        "code": "OK",
        "details": "",
    }


def test_from_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = '{"type":"rpc","id":1,"start_ns":1,"end_ns":2,"backend":"b1","code":"OK","details":""}'
    path.write_text(f'{good}\n\n{{"type":"toxic"}}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:3: .*unknown record type 'toxic'"):
        History.from_jsonl(path)
    path.write_text('{"type":"rpc","id":1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not a history record"):
        History.from_jsonl(path)


def test_empty_history_round_trips(tmp_path):
    path = tmp_path / "empty.jsonl"
    History().to_jsonl(path)
    assert path.read_text() == ""
    back = History.from_jsonl(path)
    assert back.rpcs == [] and back.events == []


# -- summary --------------------------------------------------------------------------


def test_summary_counts_by_code_and_backend_and_spans_everything():
    h = make_history(
        [(0, "b1"), (1, "b2", "UNAVAILABLE"), (2, None, "UNAVAILABLE"), (3, "b1", "OK", 10)],
        events=[("kill", "b2", 1, 20), ("pause", "b1", 30, None)],
    )
    s = h.summary()
    assert s["rpcs"] == 4 and s["ok"] == 2 and s["errors"] == 2
    assert s["by_code"] == {"OK": 2, "UNAVAILABLE": 2}
    assert s["by_backend"] == {"(none)": 1, "b1": 2, "b2": 1}
    assert s["events_by_kind"] == {"kill": 1, "pause": 1}
    assert s["first_ns"] == T0 and s["last_ns"] == at(30)  # an active event counts at its start
    assert s["duration_ms"] == 30.0
    json.dumps(s)  # artifacts write it as JSON


def test_summary_of_an_empty_history():
    s = History().summary()
    assert s["rpcs"] == 0 and s["duration_ms"] == 0.0 and s["first_ns"] is None


# -- timeline -------------------------------------------------------------------------


def test_timeline_orders_rpcs_and_events_relative_to_the_point():
    h = make_history(
        [(-5, "b2", "OK", 1), (2, "b2", "UNAVAILABLE", 3, "Socket closed"), (4, "b1")],
        events=[("kill", "b2", 0, 8, {"signal": 9}), ("mark", None, 0, 0, {"label": "kill"})],
    )
    text = h.timeline(at(0), 10_000_000, 10_000_000, highlight=[2])
    lines = text.splitlines()
    assert "times in ms relative to it" in lines[0] and "6 of 6" in lines[0]
    body = [line.split() for line in lines[1:]]
    assert [b[0] if b[0] != ">>" else b[1] for b in body][:4] == [
        "-5.000",
        "+0.000",
        "+0.000",
        "+2.000",
    ]
    assert "begin kill b2" in lines[2] and '"signal": 9' in lines[2]
    assert "mark 'kill'" in lines[3]
    assert (
        lines[4].startswith(">>")
        and "rpc #2 b2 UNAVAILABLE" in lines[4]
        and '"Socket closed"' in lines[4]
    )
    assert "ends +5.000 (3.000 ms)" in lines[4]
    assert "end   kill b2 (lasted 8.000 ms)" in lines[6]


def test_timeline_limit_keeps_events_and_highlights_then_the_nearest_rpcs():
    rows = [(t, "b1") for t in range(-50, 51)]  # ids 1..101, id 51 at 0 ms
    h = make_history(rows, events=[("pause", "b3", -40, None)])
    text = h.timeline(at(0), 100_000_000, 100_000_000, limit=4, highlight=[1])
    lines = text.splitlines()[1:]
    assert len(lines) == 4
    assert "begin pause b3" in lines[1] and "(still active)" in lines[1]
    assert "rpc #1 " in lines[0] and lines[0].startswith(">>")  # highlighted though far
    assert {"rpc #50 ", "rpc #51 "} <= {
        line[line.index("rpc #") : line.index("rpc #") + 8] for line in lines[2:]
    }
    assert "4 of 102" in text.splitlines()[0]


def test_timeline_shows_rpcs_and_events_in_flight_across_the_interval():
    h = make_history([(-500, "b2", "DEADLINE_EXCEEDED", 505)], events=[("pause", "b2", -600, 600)])
    text = h.timeline(at(0), 10_000_000, 10_000_000)
    assert "rpc #1 b2 DEADLINE_EXCEEDED" in text and "-500.000" in text
    assert "begin pause b2" in text and "-600.000" in text
    assert "end   pause" not in text  # it ends after the interval


def test_timeline_of_a_quiet_interval_says_so():
    h = make_history([(0, "b1")])
    assert "nothing happened" in h.timeline(at(1000), 1_000_000, 1_000_000)


# -- threads --------------------------------------------------------------------------


def test_concurrent_record_keeps_every_rpc():
    h = History()
    threads_n, per_thread = 8, 5000
    barrier = threading.Barrier(threads_n)

    def write(k: int) -> None:
        barrier.wait()  # start together, to maximise interleaving
        for i in range(per_thread):
            rid = k * per_thread + i
            h.record(Rpc(rid, rid, rid + 1, f"b{k}", "OK"))
            if i % 500 == 0:
                _ = h.rpcs  # readers may run alongside writers

    threads = [threading.Thread(target=write, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ids = [r.id for r in h.rpcs]
    assert ids == list(range(threads_n * per_thread))


def test_concurrent_begin_end_pairs_every_handle_with_its_event():
    h = History(FakeClock())
    threads_n, per_thread = 6, 300
    mixed_up = []  # assertions inside threads would be lost: collect, then assert

    def churn(k: int) -> None:
        for i in range(per_thread):
            handle = h.begin("toxic", f"b{k}", i=i)
            ended = h.end(handle)
            if (ended.target, ended.detail) != (
                f"b{k}",
                {"i": i},
            ):  # its own event, not a neighbour's
                mixed_up.append((k, i, ended))

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    events = h.events
    assert mixed_up == []
    assert len(events) == threads_n * per_thread
    assert all(e.end_ns is not None for e in events)
    assert sorted((e.target, e.detail["i"]) for e in events) == sorted(
        (f"b{k}", i) for k in range(threads_n) for i in range(per_thread)
    )


def test_event_by_handle_shows_its_current_state(clock):
    h = History(clock)
    h.add_event(Event("mark", None, T0, T0, {"label": "x"}))
    handle = h.begin("kill", "b2")
    assert h.event(handle) == Event("kill", "b2", T0, None, {})
    clock.advance(7)
    h.end(handle)
    assert h.event(handle).end_ns == at(7)
    with pytest.raises(ValueError, match="begin\\(\\) returned"):
        h.event(True)


def test_a_source_adds_what_it_observed_before_every_read_of_the_events():
    history = History()
    seen = iter([[100], [], [200, 300]])

    def pull() -> None:  # as the HTTP/2 points' events are copied in
        for t_ns in next(seen):
            history.note("http2:close", "b1", t_ns, conn=1)

    assert not history.follows_sources
    history.add_source(pull)
    assert history.follows_sources
    assert [e.start_ns for e in history.events] == [100]
    assert [e.start_ns for e in history.events] == [100]
    assert [e.start_ns for e in history.events] == [100, 200, 300]


def test_a_source_that_fails_fails_the_read():
    history = History()

    def broken() -> None:
        raise ConnectionError("the point process is gone")

    history.add_source(broken)
    with pytest.raises(ConnectionError, match="gone"):
        history.events  # noqa: B018 - the read is what is tested
