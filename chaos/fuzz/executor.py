"""Runs one schedule against a running fleet and judges it with the oracle.

::

    fleet at baseline --> ShapedLoad, the profile's client (a new channel per run)
      --> warm-up: every backend answered (a client that uses one backend: it answered);
          ranks #1, #2, ... from the warm-up's OK RPCs per backend; mark "warm" = t0
      --> scheduler: inject and revert each fault at t0 + its offsets (chaos.faults through
          the Nemesis: each an event, in force when confirmed), while the load runs in its
          own thread
      --> tail: until the client serves again after the last revert, and every backend
          that was out of service has served again (or recovery_ms + a margin)
      --> stop the load, undo what is left, reset the fleet (~30-250 ms)
      --> the oracle's verdicts (chaos/fuzz/oracle.py), each judged against the runner's
          stalls (chaos/verdicts/judge.py): pass, fail, or inconclusive (rerun it)

Offsets are the plan; the history holds what happened (a restart under load may start the
next action late), and the oracle reads only the history.

The scheduler runs in the calling thread, not a thread of its own: a backend restarted by
a revert is spawned with PR_SET_PDEATHSIG (fleet/procs/lifeline.py), which follows the *thread*
that spawned it — a backend restarted from a short-lived thread dies with that thread.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

from chaos.checks.verdict import Verdict
from chaos.clients.config import channel_config
from chaos.clients.remote import RemoteLoad
from chaos.faults import Active, Fault, Nemesis
from chaos.fuzz import kinds, oracle
from chaos.fuzz.load_shape import ShapedLoad
from chaos.fuzz.model import REVERT
from chaos.fuzz.schedule import ALL, Schedule
from chaos.history import History
from chaos.load import GreeterRpc
from chaos.outcomes import Outcome
from chaos.verdicts.judge import judge
from chaos.verdicts.requirements import DEFAULTS, Requirements
from fleet.procs.lifeline import check_interrupt

# A fresh channel answers within ~10-100 ms on loopback (docs/grpc-facts.md); a busy machine, or a
# fleet just reset, is given far more. A client that never answers is a baseline failure.
WARM_UP_S = 10.0
# After the liveness bound an RPC started right at it must still be seen to end.
TAIL_MARGIN_S = 0.5

# A run's outcome (chaos/outcomes.py): pass, fail, inconclusive, or error (could not run).
PASS, FAIL, INCONCLUSIVE, ERROR = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE, Outcome.ERROR
# An inconclusive run (the runner stalled) is run again this many times before its
# outcome is taken as inconclusive: by the campaign (which then rejects the example) and
# by a replay (which then counts it inconclusive, never as reproduced nor as passed).
RERUNS = 2


@dataclass
class Run:
    """One execution of a schedule: its outcome, verdicts and history."""

    schedule: Schedule
    outcome: str
    verdicts: list[Verdict]
    history: History
    ranks: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reset_ms: float = 0.0
    since_ns: int | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent in each step

    @property
    def failed(self) -> bool:
        return self.outcome == FAIL

    @property
    def rule(self) -> str | None:
        """The first rule that failed (oracle.RULES order), None unless failed."""
        return oracle.failed_rule(self.verdicts) if self.failed else None

    @property
    def not_judged(self) -> list[str]:
        """The rules this run's history held too little evidence to judge."""
        return [v.name for v in self.verdicts if v.not_judged]

    def headline(self) -> str:
        bad = [v.headline for v in self.verdicts if not v.passed and not v.not_judged]
        if self.problems:
            bad += [f"ERROR {p}" for p in self.problems]
        return "; ".join(bad) or "every rule held"

    def ranks_text(self) -> str:
        return ", ".join(f"#{r} = {b}" for r, b in sorted(self.ranks.items()))


class Executor:
    """Runs schedules on one running fleet with one profile's client.

    ``spreads``: whether the client was observed to spread RPCs over the backends (the
    preflight says; chaos/observe/client_shape.py). ``stalls``: the runner's stall monitor.
    """

    def __init__(
        self,
        fleet,
        profile,
        *,
        requirements: Requirements = DEFAULTS,
        stalls=None,
        spreads: bool = True,
        target=None,
        client=None,
    ):
        self.fleet = fleet
        self.client = client  # a client driver (chaos/clients/), or None: in-process
        self.profile = profile
        self.requirements = requirements
        self.stalls = stalls
        self.spreads = spreads
        self.target = target

    # ------------------------------------------------------------------ one run

    def run(self, schedule: Schedule, history: History | None = None) -> Run:
        """Run ``schedule`` once (recording into ``history``, a new one by default), reset
        the fleet, judge."""
        check_interrupt()  # a Ctrl-C dropped during the last example (fleet.procs.lifeline)
        started = time.monotonic()
        history = history if history is not None else History()
        nemesis = Nemesis(self.fleet, history, self.fleet.proxies)
        load = self._load(schedule, history)
        run = Run(schedule, ERROR, [], history)
        clock = _Phases(run.phases)
        try:
            load.start()
            warm = self._warm_up(load, history, run)
            clock.lap("warm-up")
            if warm is not None:
                run.since_ns = warm
                self._play(schedule, nemesis, load, history, run, clock)
        finally:
            self._clean_up(load, nemesis, run, clock)
        if run.since_ns is not None and not run.problems:
            self._judge(run)
            clock.lap("oracle")
        elif not run.problems and not run.verdicts:
            run.problems.append("the run was stopped before it judged anything")
        run.seconds = time.monotonic() - started
        return run

    def judged(self, schedule: Schedule, on_rerun=None) -> Run:
        """Run ``schedule`` until it is judged pass or fail, at most ``1 + RERUNS`` times:
        an inconclusive run says nothing about the client, so it is run again, as a
        scenario is. ``on_rerun(run)`` is told of each inconclusive run that is rerun. The
        last run is returned, inconclusive if every one was."""
        run = self.run(schedule)
        for _ in range(RERUNS):
            if run.outcome != INCONCLUSIVE:
                break
            if on_rerun is not None:
                on_rerun(run)
            run = self.run(schedule)
        return run

    def _load(self, schedule: Schedule, history: History) -> ShapedLoad | RemoteLoad:
        info = self.fleet.info()
        options = {"rpc": GreeterRpc()}
        if self.target is not None and not self.target.builtin:
            options = {"rpc": self.target.rpc, "identity_key": self.target.identity_header}
        if self.client is not None:
            config = channel_config(self.profile, info, self.client.capabilities)
            return RemoteLoad(
                lambda: self.client.open_channel(config),
                history,
                concurrency=schedule.load.concurrency or 1,
                rate=schedule.load.rate,
                deadline_s=schedule.load.deadline_ms / 1000,
                stalls=self.stalls,
                **options,
            )
        load = ShapedLoad(
            lambda: self.profile.channel(info, aio=True),
            history,
            concurrency=schedule.load.concurrency or 1,
            rate=schedule.load.rate,
            deadline_s=schedule.load.deadline_ms / 1000,
            stalls=self.stalls,
            **options,
        )
        if load.identity_key is None:
            from chaos.observe.attribution import Attribution
            from chaos.scenario import PublishedIds

            load.attribution = Attribution(lambda: load.channelz_id, PublishedIds(self.fleet))
        return load

    def _warm_up(self, load: ShapedLoad | RemoteLoad, history: History, run: Run) -> int | None:
        """Wait until the client is warm; set the ranks; mark "warm" and return it. A client
        that does not get there is a baseline failure (a verdict, not an error)."""
        since = history.now()
        wanted = set(self.fleet.ids) if self.spreads else None

        def served():
            ok = Counter(r.backend for r in history.window(since) if r.ok and r.backend)
            return ok if ok and (wanted is None or wanted <= set(ok)) else None

        try:
            counts = load.wait_until(served, WARM_UP_S, "the client warm")
        except TimeoutError:
            seen = Counter(r.code for r in history.window(since))
            run.verdicts = [
                Verdict(
                    "serves_at_baseline",
                    False,
                    None,
                    "s",
                    WARM_UP_S,
                    f"The client did not get {'every backend' if self.spreads else 'a backend'} "
                    f"to answer within {WARM_UP_S:g} s of a healthy fleet, before any fault "
                    f"(RPCs: {', '.join(f'{c} {n}' for c, n in seen.most_common()) or 'none'}).",
                )
            ]
            run.outcome = FAIL
            return None
        order = sorted(self.fleet.ids, key=lambda b: (-counts.get(b, 0), self.fleet.ids.index(b)))
        run.ranks = {rank: backend for rank, backend in enumerate(order, 1)}
        return history.mark("warm")

    def _play(
        self,
        schedule: Schedule,
        nemesis: Nemesis,
        load: ShapedLoad | RemoteLoad,
        history: History,
        run: Run,
        clock: _Phases,
    ) -> None:
        t0 = history.now()
        load.set_idle(
            [(t0 + a * 1_000_000, t0 + (a + d) * 1_000_000) for a, d in schedule.load.idle], history
        )
        scheduler = _Scheduler(self._actions(schedule, run.ranks, t0), nemesis)
        scheduler.run()
        run.problems += scheduler.problems
        clock.lap("schedule")
        if not run.problems:
            self._tail(load, history)
            clock.lap("tail")

    def _actions(self, schedule: Schedule, ranks: dict[int, str], t0: int) -> list[_Action]:
        actions = []
        for spec in schedule.faults:
            kind = kinds.get(spec.kind)
            backends: list[str | None]
            if kind.fleet_wide:
                backends = [None]
            elif spec.target == ALL:
                backends = list(ranks.values())
            else:
                assert isinstance(spec.target, int)  # a rank: the schedule was validated
                backends = [ranks[spec.target]]
            for backend in backends:
                fault = kind.make(backend, spec.params)
                at = t0 + spec.at_ms * 1_000_000
                actions.append(_Action(at, 1, fault))
                if not kind.instant:
                    actions.append(_Action(at + spec.for_ms * 1_000_000, 0, fault))
        # Reverts before injects at the same instant: a backend is free before it is reused.
        actions.sort(key=lambda a: (a.due_ns, a.order))
        return actions

    def _tail(self, load: ShapedLoad | RemoteLoad, history: History) -> None:
        """Let the load run until liveness is decided (the oracle's own targets), at most
        recovery_ms + TAIL_MARGIN_S after the last of them."""
        context = oracle.Context(tuple(self.fleet.ids), self.requirements, spreads=self.spreads)
        due = oracle.liveness_targets(history, context)
        if not due:
            return
        wait_s = (
            max(0, max(due.values()) - history.now()) / 1e9
            + self.requirements.recovery_ms / 1000
            + TAIL_MARGIN_S
        )

        def recovered() -> bool:
            ok = [r for r in history.window(min(due.values())) if r.ok]
            return all(
                any(r.start_ns >= t and backend in (None, r.backend) for r in ok)
                for backend, t in due.items()
            )

        # On a timeout, the liveness verdicts say what did not come back.
        with contextlib.suppress(TimeoutError):
            load.wait_until(recovered, wait_s, "the client serving again")

    def _clean_up(
        self, load: ShapedLoad | RemoteLoad, nemesis: Nemesis, run: Run, clock: _Phases
    ) -> None:
        try:
            load.stop()
        except Exception as exc:  # the load thread died: nothing it measured can be judged
            run.problems.append(f"the load failed: {exc}")
        clock.lap("stop")
        run.problems += [f"undo failed: {e!r}" for e in nemesis.undo_all()]
        self.fleet.reset()  # a fleet that cannot be reset ends the campaign: let it raise
        run.reset_ms = clock.lap("reset") * 1000

    def _judge(self, run: Run) -> None:
        context = oracle.Context(
            tuple(self.fleet.ids),
            self.requirements,
            deadline_ms=run.schedule.load.deadline_ms,
            spreads=self.spreads,
            since_ns=run.since_ns,
        )
        run.verdicts = [judge(v, self.stalls) for v in oracle.judge_history(run.history, context)]
        # A rule not judged (too little evidence) decides nothing: the run is judged by
        # the others, and the campaign counts it.
        if any(v.failed for v in run.verdicts):
            run.outcome = FAIL
        elif any(v.inconclusive for v in run.verdicts):
            run.outcome = INCONCLUSIVE
        else:
            run.outcome = PASS


class _Phases:
    """Seconds spent in each step of a run (for the benchmark and progress lines)."""

    def __init__(self, into: dict[str, float]):
        self.into = into
        self.last = time.monotonic()

    def lap(self, name: str) -> float:
        now = time.monotonic()
        took = now - self.last
        self.into[name] = self.into.get(name, 0.0) + took
        self.last = now
        return took


@dataclass
class _Action:
    due_ns: int
    order: int  # 0 revert, 1 inject
    fault: Fault  # one per backend for a target of "all"


class _Scheduler:
    """Injects and reverts faults at their instants, one after the other (each action
    bounded by the fleet's own deadlines); after a failed injection it injects nothing more
    but still reverts what it injected."""

    def __init__(self, actions: list[_Action], nemesis: Nemesis):
        self.actions = actions
        self.nemesis = nemesis
        self.problems: list[str] = []
        self._injected: dict[int, Active] = {}

    def run(self) -> None:
        for action in self.actions:
            # Waiting for the planned instant is the schedule itself, not a wait for a
            # condition (as Nemesis.timed); Ctrl-C interrupts it, and the run's clean-up
            # undoes what was injected.
            delay = (action.due_ns - time.monotonic_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            try:
                if action.order == 1:
                    if not self.problems:
                        self._injected[id(action.fault)] = self.nemesis.inject(action.fault)
                else:
                    self._revert(self._injected.get(id(action.fault)))
            except Exception as exc:
                self.problems.append(
                    f"{'injecting' if action.order else 'reverting'} {action.fault}: {exc}"
                )

    def _revert(self, active: Active | None) -> None:
        if active is None:
            return
        history = self.nemesis.history
        # The backend may serve again before the revert returns (a restart answers before
        # its readiness is confirmed): the oracle's "known down" ends here (model.REVERT).
        history.note(
            REVERT,
            active.fault.backend,
            history.now(),
            of=active.event.kind,
            began_ns=active.start_ns,
        )
        self.nemesis.undo(active)
