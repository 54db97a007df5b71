"""The fuzz oracle on hand-made histories (pure: no fleet, no clock).

Times are in ms from the warm-up mark (t=0); each test builds the RPCs and fault events
of one situation and checks that the one rule it is about passes or fails, and why.
"""

from __future__ import annotations

from chaos.checks.verdict import Verdict
from chaos.fuzz.model import IDLE, REVERT
from chaos.fuzz.oracle import Context, failed_rule, judge_history, liveness_targets
from chaos.history import Event, History, Rpc
from chaos.observe.stall import StallMonitor
from chaos.verdicts.judge import judge

MS = 1_000_000
BACKENDS = ("b1", "b2", "b3")


class Story:
    """A history told in ms: warm at 0, background OK traffic on every backend."""

    def __init__(
        self,
        until_ms: int = 6000,
        every_ms: int = 20,
        spreads: bool = True,
        deadline_ms: float = 3000,
    ):
        self.h = History(clock=lambda: 0)
        self.h.add_event(Event("mark", None, 0, 0, {"label": "warm"}))
        self.ids = iter(range(1, 10**6))
        self.spreads = spreads
        self.deadline_ms = deadline_ms
        self.background = (until_ms, every_ms)

    def rpc(self, start: float, end: float, backend: str | None, code: str = "OK") -> Rpc:
        record = Rpc(next(self.ids), int(start * MS), int(end * MS), backend, code)
        self.h.record(record)
        return record

    def fault(
        self,
        kind: str,
        target: str | None,
        start: float,
        in_force: float,
        end: float,
        revert: float | None = None,
        **detail,
    ) -> None:
        self.h.add_event(
            Event(kind, target, int(start * MS), int(end * MS), detail, int(in_force * MS))
        )
        if revert is not None:
            self.h.add_event(
                Event(
                    REVERT,
                    target,
                    int(revert * MS),
                    int(revert * MS),
                    {"of": kind, "began_ns": int(start * MS)},
                    int(revert * MS),
                )
            )

    def serve(
        self,
        backends=BACKENDS,
        start: float = 0,
        end: float | None = None,
        skip=lambda backend, t: False,
    ) -> None:
        """OK RPCs of 2 ms round robin over ``backends`` every ``every_ms``."""
        until, every = self.background
        t, i = start, 0
        while t < (until if end is None else end):
            backend = backends[i % len(backends)]
            if not skip(backend, t):
                self.rpc(t, t + 2, backend)
            t += every
            i += 1

    def verdicts(self) -> dict[str, Verdict]:
        context = Context(BACKENDS, deadline_ms=self.deadline_ms, spreads=self.spreads, since_ns=0)
        found: dict[str, Verdict] = {}
        for verdict in judge_history(self.h, context):
            # rejoins comes once per backend: keep a failed one if there is
            if verdict.name not in found or not verdict.passed:
                found[verdict.name] = verdict
        return found


def kill_b2(story: Story, end: float = 1500) -> None:
    story.fault("kill", "b2", 100, 110, end, revert=end - 200)
    story.serve(skip=lambda b, t: b == "b2" and 100 <= t < end + 100)


def test_an_rpc_in_flight_at_a_break_must_succeed():
    story = Story()
    kill_b2(story)
    story.rpc(95, 111, None, "UNAVAILABLE")  # sent just before the kill, lost with it
    verdicts = story.verdicts()
    failed = verdicts["in_flight_succeeds"]
    assert not failed.passed and failed.figure == 1
    assert "in flight when kill b2 (down/break) began" in failed.explanation
    assert "b1, b3 could serve throughout" in failed.explanation
    assert failed.culprits == ((95 * MS, 111 * MS),)
    assert failed_rule(list(verdicts.values())) == "in_flight_succeeds"


def test_an_rpc_sent_while_the_kill_was_under_way_counts_as_in_flight_too():
    story = Story()
    kill_b2(story)
    story.rpc(105, 112, None, "UNAVAILABLE")  # after the kill began, before it was in force
    assert not story.verdicts()["in_flight_succeeds"].passed


def test_the_same_rpc_replayed_elsewhere_passes():
    story = Story()
    kill_b2(story)
    story.rpc(95, 125, "b3")
    verdicts = story.verdicts()
    assert all(v.passed for v in verdicts.values()), [
        v.headline for v in verdicts.values() if not v.passed
    ]


def test_an_rpc_sent_in_the_blind_window_is_not_held_but_one_sent_after_it_is():
    story = Story()
    kill_b2(story, end=3000)
    story.rpc(600, 601, None, "UNAVAILABLE")  # within failover_ms (1000) of in force: not held
    assert story.verdicts()["rpc_succeeds"].passed
    story.rpc(1200, 1201, None, "UNAVAILABLE")  # after it, b1 and b3 serving: held
    failed = story.verdicts()["rpc_succeeds"]
    assert not failed.passed and failed.figure == 1
    assert "b2 kill (down/break)" in failed.explanation


def test_no_rpc_is_held_when_no_backend_could_serve_it():
    story = Story()
    for b in BACKENDS:
        story.fault("kill", b, 100, 110, 4000, revert=3800)
    story.rpc(1500, 1502, None, "UNAVAILABLE")
    verdicts = story.verdicts()
    # Held to nothing: no RPC the rules judge, so neither is a pass (nor a fail).
    assert verdicts["rpc_succeeds"].outcome == "not judged"
    assert verdicts["in_flight_succeeds"].outcome == "not judged"


def test_a_backend_failing_calls_of_its_own_is_the_fleets_failure_not_the_clients():
    story = Story()
    story.fault("app:error", "b2", 100, 105, 2000, revert=2000, code="INTERNAL", fraction=0.5)
    story.serve()
    story.rpc(1200, 1202, "b2", "INTERNAL")  # answered by the flaky backend: allowed
    assert story.verdicts()["rpc_succeeds"].passed
    story.rpc(1300, 1302, None, "UNAVAILABLE")  # the client failed it itself: not allowed
    assert not story.verdicts()["rpc_succeeds"].passed


def test_a_health_flip_must_drain_the_backend_within_drain_ms():
    story = Story()
    story.fault("health", "b2", 100, 104, 1000, revert=990, status="NOT_SERVING")
    story.serve(skip=lambda b, t: b == "b2" and 140 <= t < 1000)
    story.rpc(150, 152, "b2")  # 46 ms after in force: within the 50 ms drain bound
    assert story.verdicts()["routed_away"].passed
    story.rpc(160, 162, "b2")  # 56 ms after: over it
    failed = story.verdicts()["routed_away"]
    assert not failed.passed and failed.figure == 1
    assert (
        "56 ms after health b2 (down/drain) was in force — over the 50 ms bound (drain_ms)"
        in failed.explanation
    )
    assert failed.culprits == ((104 * MS, 162 * MS),)


def test_an_rpc_on_the_backend_as_its_revert_began_is_not_routed_to_it_while_down():
    story = Story()
    story.fault("health", "b2", 100, 104, 1000, revert=900, status="NOT_SERVING")
    story.serve(skip=lambda b, t: b == "b2" and 100 <= t < 900)
    story.rpc(905, 907, "b2")  # after the revert began, before it returned
    story.rpc(870, 907, "b2")  # started 30 ms before it: picked after it, maybe
    assert story.verdicts()["routed_away"].passed
    story.rpc(840, 842, "b2")  # 60 ms before it: picked while the backend was down
    assert not story.verdicts()["routed_away"].passed


def test_an_rpc_that_waited_out_a_whole_fleet_outage_may_go_to_the_first_backend_back():
    story = Story()
    for b in BACKENDS:
        story.fault("health", b, 100, 104, 1000, revert=900, status="NOT_SERVING")
    story.rpc(300, 950, "b2")  # started while all were down, served once b2 was back
    assert story.verdicts()["routed_away"].passed


def test_an_rpc_stuck_on_a_hung_backend_while_others_served_was_routed_there():
    story = Story()
    story.fault("pause", "b2", 100, 105, 4000, revert=3900)
    story.serve(skip=lambda b, t: b == "b2" and 100 <= t < 4000)
    story.rpc(2700, 3905, "b2")  # after the 2.5 s hang bound, answered only after SIGCONT
    failed = story.verdicts()["routed_away"]
    assert not failed.passed and "(hang_detection_ms)" in failed.explanation


def test_a_break_behind_slow_close_is_judged_as_a_hang():
    story = Story()
    story.fault(
        "toxic:slow_close",
        "b2",
        50,
        55,
        4000,
        revert=4000,
        type="slow_close",
        attributes={"delay": 5000},
        stream="downstream",
        toxicity=1.0,
    )
    kill_b2(story, end=3500)
    story.rpc(1500, 1501, None, "UNAVAILABLE")  # past failover_ms, within hang_detection_ms
    assert story.verdicts()["rpc_succeeds"].passed


def test_an_rpc_caught_by_a_break_while_replies_were_being_split_may_have_been_committed():
    story = Story()
    story.fault(
        "toxic:slicer",
        "b2",
        50,
        55,
        4000,
        revert=4000,
        type="slicer",
        attributes={"average_size": 16},
        stream="downstream",
        toxicity=1.0,
    )
    kill_b2(story)
    story.rpc(95, 111, None, "UNAVAILABLE")
    assert story.verdicts()["in_flight_succeeds"].passed


def test_a_whole_fleet_outage_must_fail_rpcs_fast():
    story = Story()
    for b in BACKENDS:
        story.fault("kill", b, 100, 110, 4000, revert=3800)
    story.rpc(1200, 1210, None, "UNAVAILABLE")  # known down (1110 ms on): fails in 10 ms
    assert story.verdicts()["fails_fast"].passed
    story.rpc(1300, 3290, None, "UNAVAILABLE")  # waited ~2 s: too long
    failed = story.verdicts()["fails_fast"]
    assert not failed.passed and failed.figure == 1
    story = Story()
    for b in BACKENDS:
        story.fault("pause", b, 100, 110, 4000, revert=3800)
    story.rpc(1300, 3290, None, "DEADLINE_EXCEEDED")  # hangs are not promised to fail fast
    assert story.verdicts()["fails_fast"].passed


def test_an_rpc_may_not_outlive_its_deadline_by_more_than_the_margin():
    story = Story()
    story.rpc(10, 3200, None, "DEADLINE_EXCEEDED")
    assert story.verdicts()["deadline_kept"].passed
    story.rpc(20, 3300, None, "DEADLINE_EXCEEDED")
    assert not story.verdicts()["deadline_kept"].passed


def test_a_wrong_answer_fails_and_is_never_put_down_to_a_stall():
    story = Story()
    story.rpc(10, 12, "b1", "DATA_LOSS")
    failed = story.verdicts()["answers_correct"]
    assert not failed.passed and failed.culprits == () and failed.span is None


def test_the_client_must_serve_again_and_every_backend_rejoin_within_recovery_ms():
    story = Story(until_ms=6000)
    story.fault("kill", "b2", 100, 110, 1500, revert=1300)
    story.serve(skip=lambda b, t: b == "b2" and t < 2000)
    verdicts = story.verdicts()
    assert verdicts["recovers"].passed and verdicts["rejoins"].passed
    late = Story(until_ms=6000)
    late.fault("kill", "b2", 100, 110, 1500, revert=1300)
    late.serve(skip=lambda b, t: b == "b2" and t < 4000)  # back 2.5 s after its restart
    assert not late.verdicts()["rejoins"].passed
    one = Story(until_ms=6000, spreads=False)  # a client that uses one backend
    one.fault("kill", "b2", 100, 110, 1500, revert=1300)
    one.serve(backends=("b1",))
    assert "rejoins" not in one.verdicts()


def test_liveness_is_measured_from_the_end_of_an_idle_gap_and_skips_dns_removed_backends():
    story = Story(until_ms=6000)
    story.fault("kill", "b2", 100, 110, 1500, revert=1300)
    story.fault("dns:remove", "b3", 100, 101, 1500, revert=1400)
    story.h.add_event(Event(IDLE, None, 1000 * MS, 3000 * MS, {}))
    story.serve(backends=("b1", "b2"), start=3000)
    due = liveness_targets(story.h, Context(BACKENDS, spreads=True))
    assert due == {None: 3000 * MS, "b2": 3000 * MS}
    verdicts = story.verdicts()
    assert verdicts["recovers"].passed and verdicts["rejoins"].passed


def test_a_rejoin_the_load_gave_no_chance_is_not_judged_never_failed():
    """The fuzzer's false red (seed 7, load ~5): a drain of b3 ended, 10 RPCs were sent in
    the next 10 ms (none to b3 yet), then an idle gap ran to the end of the run. "b3 did
    not serve again" was judged on that — 1 FAIL in 6 replays."""
    story = Story(until_ms=3000)
    story.fault("health", "b3", 500, 505, 2000, revert=1990, status="NOT_SERVING")
    story.serve(backends=("b1", "b2"), end=2010)
    story.h.add_event(Event(IDLE, None, 2010 * MS, 6000 * MS, {}))
    verdicts = story.verdicts()
    assert verdicts["rejoins"].outcome == "not judged"
    assert "rejoins" not in {failed_rule(list(verdicts.values()))}
    assert verdicts["rejoins"].headline.startswith("NOT JUDGED rejoins: 0 RPC(s) started")
    # The same drain with the load running through the bound, b3 never back: a red.
    judged = Story(until_ms=6000)
    judged.fault("health", "b3", 500, 505, 2000, revert=1990, status="NOT_SERVING")
    judged.serve(backends=("b1", "b2"))
    assert judged.verdicts()["rejoins"].failed


def test_rules_whose_situation_came_with_no_load_are_not_judged():
    # Every backend down for 2 s while the load was idle: fails_fast saw nothing.
    story = Story(until_ms=6000)
    for b in BACKENDS:
        story.fault("kill", b, 1000, 1010, 3000, revert=2900)
    story.h.add_event(Event(IDLE, None, 900 * MS, 3500 * MS, {}))
    story.serve(end=900)
    story.serve(start=3500)
    verdicts = story.verdicts()
    assert verdicts["fails_fast"].outcome == "not judged"
    assert verdicts["routed_away"].outcome == "not judged"
    assert verdicts["in_flight_succeeds"].outcome == "not judged"
    assert failed_rule(list(verdicts.values())) is None


def test_rpcs_that_ended_before_the_warm_up_are_not_judged():
    story = Story()
    story.rpc(-50, -10, None, "UNAVAILABLE")
    kill_b2(story)
    assert all(v.passed for v in story.verdicts().values())


def test_a_failure_every_culprit_of_which_lived_through_a_long_stall_is_inconclusive():
    story = Story()
    kill_b2(story)
    story.rpc(95, 400, None, "UNAVAILABLE")
    failed = story.verdicts()["in_flight_succeeds"]
    stalls = StallMonitor(clock=lambda: 0)
    assert judge(failed, stalls).outcome == "fail"
    stalls.record(100 * MS, 390 * MS, "ticker")  # the runner itself could not run
    assert judge(failed, stalls).outcome == "inconclusive"


def test_a_backend_failing_every_call_is_left_to_the_attempt_counters():
    """routed_away does not judge the eject family: outlier detection re-admits an ejected
    backend after its ejection time by design, and an RPC is named by its last attempt's
    backend (found under recommended: one RPC on the failing backend 3.3 s in)."""
    one = Story()
    one.fault("app:error", "b1", 100, 105, 4000, revert=3900, code="UNAVAILABLE", fraction=1.0)
    one.serve(backends=("b2", "b3"))
    one.rpc(2000, 2002, "b1", "UNAVAILABLE")
    assert one.verdicts()["routed_away"].passed
    drained = Story()  # a drain is judged: the health stream tells the client at once
    drained.fault("health", "b1", 100, 105, 4000, revert=3900, status="NOT_SERVING")
    drained.serve(backends=("b2", "b3"))
    drained.rpc(2000, 2002, "b1")
    assert not drained.verdicts()["routed_away"].passed


def test_an_idle_gap_lengthens_the_blind_window_of_a_backend_failing_every_call():
    """Outlier detection learns from calls: an idle gap of the load inside the blind window
    lengthens it by the gap (found by a 10-minute campaign under recommended: a 1 s idle
    gap 0.5 s into an app_error). A break is seen without calls and keeps its bound."""

    def story(rpc_at: float, kind: str = "app:error", **detail) -> Story:
        story = Story()
        story.fault(kind, "b1", 100, 105, 5000, revert=4900, **detail)
        story.h.add_event(Event(IDLE, None, 600 * MS, 1600 * MS, {}))
        story.serve(backends=("b2", "b3"))
        story.rpc(rpc_at, rpc_at + 2, None, "UNAVAILABLE")  # failed in the client itself
        return story

    failing = {"code": "INTERNAL", "fraction": 1.0}
    # 105 + 1500 + the 1000 ms gap = 2605: before it the client may still be counting
    assert story(2600, **failing).verdicts()["rpc_succeeds"].passed
    assert not story(2610, **failing).verdicts()["rpc_succeeds"].passed
    # a break: 105 + failover_ms (1000), the gap changes nothing
    assert not story(1200, "kill").verdicts()["rpc_succeeds"].passed


def test_a_drain_behind_latency_on_the_replies_has_that_much_longer_to_be_seen():
    """The health message crosses the backend's link: 50 +- 50 ms of latency on its replies
    lets the client see a drain up to 100 ms later (found by a 10-minute campaign under
    recommended: an RPC on a drained backend 67 ms after the drain was in force)."""

    def story(rpc_at: float, stream: str = "downstream") -> Story:
        story = Story()
        story.fault(
            "toxic:latency",
            "b1",
            0,
            2,
            5000,
            revert=4900,
            type="latency",
            attributes={"latency": 50, "jitter": 50},
            stream=stream,
        )
        story.fault("health", "b1", 100, 105, 3000, revert=2990, status="NOT_SERVING")
        story.serve(backends=("b2", "b3"))
        story.rpc(rpc_at, rpc_at + 2, "b1")
        return story

    assert story(250).verdicts()["routed_away"].passed  # 145 ms after: within 50 + 100
    assert not story(260).verdicts()["routed_away"].passed  # 155 ms after: over it
    assert not story(200, "upstream").verdicts()["routed_away"].passed  # requests only
