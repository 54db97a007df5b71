"""The CPU waits of the processes a verdict depends on, measured on real starved processes.

A child is starved for real: pinned to one CPU next to two busy loops, at the idle
scheduling class, so each time it wakes it waits for the CPU. Its waits are read from
/proc by the same code the plugin runs (chaos/observe/starvation.py), and judged as a scenario's
verdicts are (chaos/verdicts/judge.py).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from chaos.checks import Verdict
from chaos.observe.stall import RUN_QUEUE, StallMonitor
from chaos.observe.starvation import (
    SchedstatFiles,
    Stalls,
    StarvationMonitor,
    Watched,
    _one_wait,
    group_members,
    threads,
)
from chaos.verdicts.judge import judge
from fleet.procs.waiting import wait_until

pytest_plugins = ["pytester"]

MS = 1_000_000
CPU = max(os.sched_getaffinity(0))
B2 = "backend b2"

BURNER = (
    f"import os\nos.sched_setaffinity(0, {{{CPU}}})\nos.write(1, b'r')\nwhile True:\n    pass\n"
)
BURNERS = 3
# Wakes every millisecond and says so; at the idle class, on the CPU of three busy loops,
# it waits for the CPU each time it wakes (3-90 ms measured here).
VICTIM = (
    f"import os, time\nos.sched_setaffinity(0, {{{CPU}}})\n"
    "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nos.write(1, b'r')\n"
    "while True:\n    time.sleep(0.001)\n    os.write(1, b'.')\n"
)
# Blocked reading its stdin: never runnable, so never waiting for a CPU.
SLEEPER = "import os, sys\nos.write(1, b'r')\nsys.stdin.read()\n"
# Four threads hashing at once on one CPU: runnable together (hashlib lets go of the GIL
# while it hashes; 32 MB take ~40 ms, so the GIL is held a tiny part of the time — with
# 8 MB, on a machine busy with other work, threads waiting for the GIL (asleep, not
# runnable) made the sum fall below the elapsed time once in a CI run).
HASHERS = (
    f"import hashlib, os, threading\nos.sched_setaffinity(0, {{{CPU}}})\n"
    "data = b'x' * (32 << 20)\n"
    "def work():\n    while True:\n        hashlib.sha256(data).digest()\n"
    "        os.write(1, b'.')\n"
    "for _ in range(4):\n    threading.Thread(target=work, daemon=True).start()\n"
    "os.write(1, b'r')\nthreading.Event().wait()\n"
)
# Waits of the starved child that the measurement collects (each >= MIN_STALL_NS).
WAITS = 8


class Children:
    """``python -c CODE`` children, each returned once it said it runs; all killed on close."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, code: str) -> subprocess.Popen:
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.started.append(child)
        assert _read(child, 1, 10) == 1, "the child did not start"
        return child

    def close(self) -> None:
        for child in self.started:
            child.kill()
            child.wait(10)
            child.stdin.close()
            child.stdout.close()
        self.started = []


@pytest.fixture
def spawn():
    children = Children()
    yield children.start
    children.close()


def _read(child: subprocess.Popen, count: int, timeout: float) -> int:
    """Read up to ``count`` bytes the child writes (each one a sign of progress), waiting
    at most ``timeout`` s; returns how many came."""
    got, deadline = 0, time.monotonic() + timeout
    while got < count and (left := deadline - time.monotonic()) > 0:
        if select.select([child.stdout], [], [], left)[0]:
            data = os.read(child.stdout.fileno(), count - got)
            if not data:
                break
            got += len(data)
    return got


def _asleep(child: subprocess.Popen) -> bool:
    with open(f"/proc/{child.pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "S"


@dataclass
class Measured:
    """A child starved of CPU watched as b2, a sleeping one as b1 (by another monitor),
    both sampled over the same [start_ns, end_ns]."""

    starved: StarvationMonitor
    sleeping: StarvationMonitor
    start_ns: int
    end_ns: int

    @property
    def span(self) -> tuple[int, int]:
        return self.start_ns, self.end_ns


@pytest.fixture(scope="module")
def measured():
    """Starve a child for real (VICTIM next to BURNERS busy loops) until WAITS of its waits
    are recorded, sampling as the monitor's ticks do (after every few wake-ups); the
    burners run only that long."""
    children = Children()
    try:
        sleeper = children.start(SLEEPER)
        wait_until(lambda: _asleep(sleeper), 10, "the sleeper blocked in its read")
        for _ in range(BURNERS):
            children.start(BURNER)
        victim = children.start(VICTIM)
        starved, sleeping = StarvationMonitor(), StarvationMonitor()
        starved.watch(B2, victim.pid)
        sleeping.watch("backend b1", sleeper.pid)
        return Measured(starved, sleeping, *_sample_until_starved(victim, starved, sleeping))
    finally:
        children.close()


def _sample_until_starved(victim, starved, sleeping) -> tuple[int, int]:
    for monitor in (starved, sleeping):
        monitor.sample()  # the baseline: a thread's first reading is its whole life
    start, deadline = time.monotonic_ns(), time.monotonic() + 20
    while len(starved.stalls()) < WAITS and time.monotonic() < deadline:
        assert _read(victim, 5, 10) == 5, "the starved child made no progress"
        for monitor in (starved, sleeping):
            monitor.sample()
    assert len(starved.stalls()) >= WAITS, "the child was not starved (its waits were short)"
    return start, time.monotonic_ns()


def _stalls(starvation: StarvationMonitor) -> Stalls:
    """What the judge is given, the runner's own stalls left empty (never started): only
    the CPU waits of the watched processes can explain a miss."""
    return Stalls(StallMonitor(), starvation)


def _missed_by(excess_ms: float, span: tuple[int, int], bound: float = 100.0) -> Verdict:
    figure = bound + excess_ms
    return Verdict("latency", False, figure, "ms", bound, "made to miss", span=span)


def test_a_process_starved_of_cpu_has_its_waits_recorded_under_its_name(measured):
    waits = measured.starved.stalls(*measured.span)
    assert {w.who for w in waits} == {B2} and {w.source for w in waits} == {RUN_QUEUE}
    assert all(w.ms >= 3 for w in waits), waits  # shorter ones are scheduling noise
    assert waits[0].describe().startswith("backend b2 waited ")
    # A process blocked in a read is never runnable: it never waits for a CPU.
    assert measured.sleeping.stalls() == []


def test_a_miss_only_a_starved_backend_explains_is_inconclusive_and_names_it(measured):
    waited = measured.starved.total_ms(*measured.span)
    judged = judge(_missed_by(waited * 0.8, measured.span), _stalls(measured.starved))
    assert judged.inconclusive, judged.headline
    assert judged.headline.endswith(f"— backend b2 waited {waited:.0f} ms for a CPU")
    # The same miss, with only the runner's stalls measured (none): a red, as it was
    # before the fleet's CPU waits were measured.
    assert judge(_missed_by(waited * 0.8, measured.span), StallMonitor()).outcome == "fail"


def test_a_miss_larger_than_the_waits_stays_a_red(measured):
    waited = measured.starved.total_ms(*measured.span)
    judged = judge(_missed_by(waited + 20, measured.span), _stalls(measured.starved))
    assert judged.outcome == "fail"


def test_a_starved_process_the_verdict_does_not_depend_on_excuses_nothing(measured):
    # Another pytest-xdist worker's backend starves next to ours, which sleeps: only what
    # the monitor watches can explain a miss.
    miss = _missed_by(measured.starved.total_ms(*measured.span) * 0.8, measured.span)
    assert judge(miss, _stalls(measured.sleeping)).outcome == "fail"


def test_threads_waiting_at_the_same_time_count_once(spawn):
    # Four runnable threads on one CPU: their waits overlap, and their sum holds more time
    # than passed. What is recorded is a wait that happened, never more than the interval.
    hashers = spawn(HASHERS)
    files, process = SchedstatFiles(), Watched("hashers", hashers.pid)
    process.waited_ns(files)
    windows = []
    for _ in range(3):  # bounded: a window in which the sum overshoots is what is needed
        before = {tid: files.run_delay(hashers.pid, tid) for tid in threads(hashers.pid)}
        start = time.monotonic_ns()
        assert _read(hashers, 12, 30) == 12
        waited = process.waited_ns(files)
        elapsed = time.monotonic_ns() - start
        after = {tid: files.run_delay(hashers.pid, tid) for tid in threads(hashers.pid)}
        summed = sum(after[t][0] - before[t][0] for t in before if t in after and before[t])
        windows.append((summed, waited, elapsed))
        assert 0 < waited <= elapsed, windows  # in every window: a wait that happened
        if summed > elapsed:
            break
    files.close()
    assert windows[-1][0] > windows[-1][2], windows  # what a sum would have claimed


def test_a_process_that_ends_is_dropped_and_its_files_closed(spawn):
    victim = spawn(VICTIM)
    gone = victim.pid
    monitor = StarvationMonitor()
    monitor.add_source(lambda: [("backend b3", gone, False)])
    monitor.sample()
    assert monitor.watching() == ["backend b3"] and monitor.open_files()
    victim.kill()
    victim.wait(10)
    monitor.sample()  # reaped: its /proc entries are gone
    monitor.sample()  # asked again for the same pid (a source that lags): still nothing
    assert monitor.watching() == [] and monitor.open_files() == []
    assert monitor.stalls() == []


def test_a_reading_of_another_task_under_the_same_ids_is_no_wait():
    # A pid reused between two ticks: its counters start again from zero.
    assert _one_wait((500 * MS, 40), (2 * MS, 3)) == 0
    assert _one_wait((500 * MS, 40), (530 * MS, 43)) == 10 * MS  # three waits of 10 ms
    assert _one_wait((500 * MS, 40), (520 * MS, 40)) == 20 * MS  # one still under way


def test_a_restarted_process_is_followed_under_its_new_pid(spawn):
    first, second = spawn(SLEEPER), spawn(SLEEPER)
    current = [first.pid]
    monitor = StarvationMonitor()
    monitor.add_source(lambda: [(f"backend b1 (pid {current[0]})", current[0], False)])
    monitor.sample()
    current[0] = second.pid  # killed and started again: the fleet knows the new pid
    monitor.sample()
    assert monitor.watching() == [f"backend b1 (pid {second.pid})"]
    assert {key[0] for key in monitor.open_files()} == {second.pid}


def test_the_other_members_of_a_process_group_are_found():
    # A server that forks workers: they share its process group (the fleet starts each
    # backend in a session of its own).
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 60 & sleep 60 & echo r; wait"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert _read(leader, 1, 10) == 1  # both workers were forked
        members = group_members([leader.pid])[leader.pid]
        assert len(members) == 2 and leader.pid not in members
        assert all(threads(pid) for pid in members)
    finally:
        os.killpg(leader.pid, 9)
        leader.wait(10)
        leader.stdout.close()


def test_a_running_fleet_exposes_its_backend_processes_and_forgets_them_closed():
    from fleet.controller import Fleet, running_processes

    with Fleet(2) as fleet:
        pids = {b.pid for b in fleet.backends}
        assert {(f"backend {b.id} (pid {b.pid})", b.pid, False) for b in fleet.backends} <= set(
            running_processes()
        )
        fleet.kill("b1")
        assert [p for _, p, _ in fleet.processes()] == [fleet.backend("b2").pid]
    assert not pids & {pid for _, pid, _ in running_processes()}


def test_the_monitor_samples_on_its_own_and_stops(spawn):
    sleeper = spawn(SLEEPER)
    monitor = StarvationMonitor(tick_s=0.005)
    monitor.watch("backend b1", sleeper.pid)
    with monitor:
        assert monitor.thread_id is not None and monitor.running
        wait_until(lambda: monitor.watching() == ["backend b1"], 10, "the first tick")
    assert not monitor.running and monitor.watching() == [] and monitor.open_files() == []


SCENARIO = """
import os, subprocess, sys, time
from chaos.checks import Verdict

CPU = max(os.sched_getaffinity(0))
BURN = f"import os\\nos.sched_setaffinity(0, {{{CPU}}})\\nwhile True:\\n    pass\\n"

def _starve(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {CPU})
            os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))
        except ProcessLookupError:
            pass  # the thread ended meanwhile

def test_starved_backend(chaos, toxiproxy, request):
    b2 = chaos.fleet.backend("b2")
    everyone = {"runner (client, DNS)", f"toxiproxy (pid {toxiproxy.pid})",
                f"backend b1 (pid {chaos.fleet.backend('b1').pid})", f"backend b2 (pid {b2.pid})"}
    chaos.wait_until(lambda: everyone <= set(chaos.stalls.starvation.watching()), 5,
                     f"{everyone} watched (the monitor's next tick)")
    load = chaos.load(concurrency=4)
    chaos.warm_up(load)
    if request.node._chaos_attempt > 1:
        chaos.expect(Verdict("latency", True, 5.0, "ms", 100, "within"))
        return
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(3)]
    try:
        for burner in burners:  # on b2's CPU: it cannot get away from them
            os.sched_setaffinity(burner.pid, {CPU})
        _starve(b2.pid)
        start = time.monotonic_ns()
        who = f"backend b2 (pid {b2.pid})"

        def starved_enough():
            _starve(b2.pid)  # threads b2 started since (its executor grows under load) too
            return sum(s.who == who for s in chaos.stalls.stalls(start)) >= 5

        chaos.wait_until(starved_enough, 20, "b2 seen waiting for a CPU")
        end = time.monotonic_ns()
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    waited = chaos.stalls.total_ms(start, end)
    chaos.expect(Verdict("latency", False, 100 + waited * 0.8, "ms", 100, "made to miss",
                         span=(start, end)))
"""


def test_the_plugin_judges_a_scenario_by_its_backends_cpu_waits(pytester):
    pytester.makepyfile(test_starved=SCENARIO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    rerun = next(
        line
        for line in output.splitlines()
        if line.startswith("RERUN test_starved.py::test_starved_backend: inconclusive")
    )
    # Named: the largest shares (b2's, or on a machine busy enough, others' as well).
    assert "waited" in rerun and "for a CPU" in rerun, rerun
    assert "CPU waits of the runner, proxy and backends this run:" in output
    # What the verdict was judged against is kept beside its history.
    (first,) = [
        path
        for path in (pytester.path / "chaos-artifacts").glob("*/*/stalls.jsonl")
        if "attempt" not in path.parent.name
    ]
    waits = [json.loads(line) for line in first.read_text().splitlines()]
    assert any(w["who"].startswith("backend b2 (pid") and w["source"] == RUN_QUEUE for w in waits)
