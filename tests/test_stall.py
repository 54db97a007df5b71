"""The runner's stall monitor sees a real stall of its process, and only real ones; the
runner's stalls and the fleet's CPU waits are asked as one."""

from __future__ import annotations

import os
import subprocess
import time

from chaos.observe.stall import MIN_STALL_NS, RUN_QUEUE, Stall, StallMonitor
from chaos.observe.starvation import Stalls, StarvationMonitor


def test_a_real_stop_of_the_process_is_measured_as_a_stall_of_about_its_length():
    with StallMonitor() as monitor:
        before = time.monotonic_ns()
        # SIGSTOP from outside: the whole process (every thread) stops for 300 ms.
        stop = f"kill -STOP {os.getpid()}; sleep 0.3; kill -CONT {os.getpid()}"
        subprocess.run(["sh", "-c", stop], check=True)
        deadline = time.monotonic() + 5
        while monitor.worst(before) is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the monitor's thread records the stall once it runs again
        worst = monitor.worst(before)
    assert worst is not None
    # Never shorter than the stop (less the tick and scheduling slack); a loose upper bound.
    assert 250 <= worst.ms <= 3000, worst


def test_stalls_are_found_by_overlap_and_summed():
    monitor = StallMonitor()
    monitor.record(100, 100 + 20_000_000, "load-loop")
    monitor.record(200_000_000, 200_000_000 + 5_000_000, "ticker")
    monitor.record(500_000_000, 500_000_000 + MIN_STALL_NS - 1, "ticker")  # too short: dropped
    assert [s.source for s in monitor.stalls()] == ["load-loop", "ticker"]
    assert monitor.stalls(30_000_000, 190_000_000) == []
    assert monitor.stalls(10_000_000, 10_000_001) == [Stall(100, 20_000_100, "load-loop")]
    assert monitor.total_ms(0, 10**9) == 25.0
    assert monitor.worst().ms == 20.0
    assert monitor.worst(300_000_000) is None


def test_the_stalled_time_in_an_interval_counts_each_instant_once():
    monitor = StallMonitor()
    ms = 1_000_000
    # One 100 ms stall seen by both loops (slightly shifted), one inside the first.
    monitor.record(100 * ms, 200 * ms, "ticker")
    monitor.record(105 * ms, 205 * ms, "load-loop")
    monitor.record(120 * ms, 130 * ms, "ticker")
    assert monitor.total_ms() == 105.0
    # Only the part inside the interval counts, whichever side it sticks out of.
    assert monitor.total_ms(150 * ms, 1000 * ms) == 55.0
    assert monitor.total_ms(0, 110 * ms) == 10.0
    assert monitor.total_ms(300 * ms, 400 * ms) == 0.0


def test_an_idle_process_sees_no_long_stall():
    with StallMonitor() as monitor:
        start = time.monotonic_ns()
        time.sleep(0.5)
        worst = monitor.worst(start)
    # A quiet process is woken within milliseconds; 200 ms would make every bound shaky.
    assert worst is None or worst.ms < 200


def test_a_stall_says_who_could_not_run_and_how_it_was_measured():
    ms = 1_000_000
    assert Stall(0, 402 * ms).describe() == "runner stalled 402 ms"
    waited = Stall(0, 180 * ms, RUN_QUEUE, "backend b2 (pid 4711)")
    assert waited.describe() == "backend b2 (pid 4711) waited 180 ms for a CPU"
    assert waited.describe(60.4) == "backend b2 (pid 4711) waited 60 ms for a CPU"


def test_the_runner_and_the_fleet_are_asked_as_one():
    # The judge asks one object; a stall of the runner and a CPU wait of a backend at the
    # same instants count once in the stalled time, and the longest of either is the worst.
    ms = 1_000_000
    stalls = Stalls(StallMonitor(), StarvationMonitor())
    stalls.record(100 * ms, 150 * ms, "load-loop")
    stalls.starvation.record(120 * ms, 300 * ms, RUN_QUEUE, "backend b1 (pid 1)")
    assert [s.source for s in stalls.stalls()] == ["load-loop", RUN_QUEUE]
    assert stalls.runner.stalls() == [Stall(100 * ms, 150 * ms, "load-loop")]
    assert stalls.total_ms(0, 10**9) == 200.0
    assert stalls.worst(0, 10**9).who == "backend b1 (pid 1)"
    assert stalls.stalls(160 * ms, 170 * ms)[0].who == "backend b1 (pid 1)"
