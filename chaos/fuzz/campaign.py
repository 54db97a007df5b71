"""The search: Hypothesis draws schedules, the executor runs them, the oracle judges; the
first failure is shrunk to the smallest schedule that fails *the same rule*.

::

    budget, seed, example database
      -> @given(schedules()) test: run the schedule (rerun it while inconclusive)
           pass                          -> next example
           fails rule R (the first fail)  -> R is the failure being shrunk from now on
           fails R again (while shrinking) -> interesting: Hypothesis keeps the smaller one
           fails another rule             -> noted ("also seen"), not interesting
           inconclusive / error           -> rejected (no information), counted
      -> budget spent, or Hypothesis done shrinking
      -> Result: the first failing schedule, the smallest one (with its run), counts, times

The example database (Hypothesis's) keeps the failing examples under a key made of the
profile's settings, the fleet size and the kinds: the next campaign with the same key
replays them first. Time is the budget, not a number of examples; when it runs out while
shrinking, the smallest schedule seen so far is the answer (it is said so).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, reject
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from chaos.fuzz import kinds as kinds_module
from chaos.fuzz.executor import ERROR, FAIL, INCONCLUSIVE, Executor, Run
from chaos.fuzz.schedule import ALL, LoadSpec, Schedule
from chaos.fuzz.strategy import complexity

# This many executor errors in a row (a fault that could not be applied, a load that
# died) means the fleet itself is broken: stop instead of spinning.
MAX_ERRORS_IN_A_ROW = 5
STRATEGY_VERSION = b"grpc-chaos-fuzz/1"


class BudgetSpent(BaseException):
    """Raised inside the Hypothesis test when the time is up: a BaseException, so that
    Hypothesis stops the run instead of treating it as a failure."""


class FleetBroken(Exception):
    """Examples keep erroring: the fleet cannot run schedules; the message says the last."""


class _Found(Exception):
    """The schedule failed the rule being shrunk (what Hypothesis shrinks on)."""


@dataclass
class Finding:
    """A failing schedule, its run, and when (seconds into the campaign) it was seen."""

    schedule: Schedule
    run: Run
    at_s: float


@dataclass
class Result:
    examples: int = 0
    passed: int = 0
    failures: int = 0
    inconclusive: int = 0
    errors: int = 0
    # Rules a judged run's history held too little evidence for (rule -> runs): counted
    # and shown, never a pass, never a fail (chaos/fuzz/oracle.py).
    not_judged: Counter = field(default_factory=Counter)
    shrink_steps: int = 0
    rule: str | None = None
    first: Finding | None = None
    minimal: Finding | None = None
    also: dict[str, Finding] = field(default_factory=dict)  # other rules seen failing
    stopped: str = "budget"  # budget | shrunk | interrupted | exhausted | broken
    seconds: float = 0.0
    run_seconds: list[float] = field(default_factory=list)
    seed: int = 0
    last_error: str = ""

    @property
    def examples_per_minute(self) -> float:
        return 60 * self.examples / self.seconds if self.seconds else 0.0


class Campaign:
    """One search under one profile. ``progress`` gets one line per example and event."""

    def __init__(
        self,
        executor: Executor,
        strategy,
        *,
        budget_s: float,
        seed: int | None = None,
        database: Path | None = None,
        key: bytes = b"",
        progress: Callable[[str], None] = print,
    ):
        if not budget_s > 0:
            raise ValueError(f"budget {budget_s!r} s: give a time above 0")
        self.executor = executor
        self.strategy = strategy
        self.budget_s = budget_s
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.database = database
        self.key = key
        self.say = progress
        self.result = Result(seed=self.seed)
        self._started = 0.0
        self._errors_in_a_row = 0

    # ------------------------------------------------------------------ the search

    def run(self) -> Result:
        self._started = time.monotonic()
        test = self._test()
        try:
            try:
                test()
                self.result.stopped = "exhausted"  # Hypothesis found nothing in its limits
            except (_Found, Flaky):  # Flaky: its last replay passed; ours are measured apart
                self.result.stopped = "shrunk"
                self._polish()
        except BudgetSpent:
            self.result.stopped = "budget"
        except KeyboardInterrupt:
            self.result.stopped = "interrupted"
        except FleetBroken as exc:
            self.result.stopped = "broken"
            self.result.last_error = str(exc)
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def _polish(self) -> None:
        """After Hypothesis: try the smallest schedule with one thing less — each fault
        dropped, a fault on every backend on #1 only, the idle gap dropped, the simplest
        load — and keep any that still fails the same rule, until none does (Hypothesis's
        shrinker can leave a fault it could have deleted; each try is one run)."""
        tried: set[str] = set()
        improved = True
        while improved:
            improved = False
            assert self.result.minimal is not None  # polished only once something failed
            for candidate in simpler(self.result.minimal.schedule):
                if candidate.key() in tried:
                    continue
                tried.add(candidate.key())
                if self._evaluate(candidate):
                    improved = True
                    break

    def _test(self):
        settings = Settings(
            max_examples=10**9,
            deadline=None,
            database=self._database(),
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )

        @settings
        @given(self.strategy)
        def fuzz(schedule: Schedule) -> None:
            verdict = self._evaluate(schedule)
            if verdict is None:
                reject()  # inconclusive or not run: it says nothing either way
            if verdict:
                raise _Found(self.result.rule)

        fuzz._hypothesis_internal_database_key = self.key  # as hypothesis.find() does
        return hypothesis_seed(self.seed)(fuzz)

    def _database(self):
        return DirectoryBasedExampleDatabase(str(self.database)) if self.database else None

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _evaluate(self, schedule: Schedule) -> bool | None:
        """Run the schedule; True when it fails the rule being shrunk (or is the first
        failure), None when it could not be judged."""
        if self.elapsed() >= self.budget_s:
            raise BudgetSpent()
        run = self._run(schedule)
        r = self.result
        r.examples += 1
        r.run_seconds.append(run.seconds)
        shrinking = r.rule is not None
        if shrinking:
            r.shrink_steps += 1
        if run.outcome in (INCONCLUSIVE, ERROR):
            self._not_judged(run)
            return None
        self._errors_in_a_row = 0
        r.not_judged.update(run.not_judged)
        if run.outcome != FAIL:
            r.passed += 1
            unjudged = f" (not judged: {', '.join(run.not_judged)})" if run.not_judged else ""
            self._line(run, "pass" + unjudged)
            return False
        r.failures += 1
        if r.rule is None:
            self._line(run, f"FAIL {run.rule}")
            r.rule = run.rule
            r.first = r.minimal = Finding(schedule, run, self.elapsed())
            self.say(
                f"  first failure after {self.elapsed():.1f} s ({r.examples} examples): "
                f"{run.headline()}\n"
                + _indent(schedule.text(), 4)
                + f"\n    ranks: {run.ranks_text()}\n  shrinking it (rule {r.rule})"
            )
            return True
        assert run.rule is not None and r.minimal is not None  # a failed run, not the first
        if run.rule != r.rule:
            r.also.setdefault(run.rule, Finding(schedule, run, self.elapsed()))
            self._line(run, f"fails {run.rule} instead (not the rule being shrunk)")
            return False
        if complexity(schedule) < complexity(r.minimal.schedule):
            r.minimal = Finding(schedule, run, self.elapsed())
            self._line(run, f"FAIL {run.rule}: smaller")
        else:
            self._line(run, f"FAIL {run.rule}")
        return True

    def _run(self, schedule: Schedule) -> Run:
        # An inconclusive run is run again (Executor.judged); one that stays so is
        # rejected by the caller: it says nothing either way.
        return self.executor.judged(schedule, on_rerun=self._rerun)

    def _rerun(self, run: Run) -> None:
        self.result.inconclusive += 1
        self._line(run, "inconclusive (the runner stalled): run again")

    def _not_judged(self, run: Run) -> None:
        r = self.result
        if run.outcome == INCONCLUSIVE:
            r.inconclusive += 1
            self._line(run, "inconclusive again: skipped")
            return
        r.errors += 1
        r.last_error = "; ".join(run.problems)
        self._errors_in_a_row += 1
        self._line(run, f"error: {r.last_error}")
        if self._errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
            raise FleetBroken(
                f"{MAX_ERRORS_IN_A_ROW} examples in a row could not run; the last: {r.last_error}"
            )

    def _line(self, run: Run, what: str) -> None:
        r = self.result
        phase = f"shrink step {r.shrink_steps}" if r.rule else f"example {r.examples}"
        best = f" | smallest: {r.minimal.schedule.summary()}" if r.minimal else ""
        self.say(
            f"[{self.elapsed():6.1f}s] {phase}: {what} — {run.schedule.summary()} "
            f"({run.seconds:.1f} s) | examples {r.examples}, failures {r.failures}, "
            f"shrink steps {r.shrink_steps}{best}"
        )


def simpler(schedule: Schedule):
    """Schedules with one thing less than ``schedule``, the biggest cut first."""
    faults = sorted(
        schedule.faults, key=lambda f: complexity(replace(schedule, faults=(f,))), reverse=True
    )
    for fault in faults:
        yield replace(schedule, faults=tuple(f for f in schedule.faults if f is not fault))
    for fault in faults:
        if fault.target == ALL and not kinds_module.get(fault.kind).fleet_wide:
            yield replace(
                schedule,
                faults=tuple(replace(f, target=1) if f is fault else f for f in schedule.faults),
            )
    if schedule.load.idle:
        yield replace(schedule, load=replace(schedule.load, idle=()))
    if schedule.load != LoadSpec(deadline_ms=schedule.load.deadline_ms, idle=schedule.load.idle):
        yield replace(
            schedule, load=LoadSpec(deadline_ms=schedule.load.deadline_ms, idle=schedule.load.idle)
        )


def database_key(
    profile, fleet_size: int, kind_names: list[str], max_faults: int, target_name: str
) -> bytes:
    """The example database key: the profile's settings (not its file name), the fleet
    size, the kinds drawn from, the schedule size and the target — a change in any of them
    is another search."""
    data = json.dumps(
        {
            "profile": profile.data(),
            "size": fleet_size,
            "kinds": sorted(kind_names),
            "max_faults": max_faults,
            "target": target_name,
        },
        sort_keys=True,
    )
    return STRATEGY_VERSION + b":" + hashlib.sha256(data.encode()).hexdigest().encode()


def _indent(text: str, by: int) -> str:
    return "\n".join(" " * by + line for line in text.splitlines())
