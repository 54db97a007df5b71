"""How long each process a verdict depends on waited for a CPU, on the history's clock.

The runner's stall monitor (chaos/observe/stall.py) sees only the runner's own lateness. A verdict
depends on more processes than that: an RPC goes client -> Toxiproxy -> backend and back,
and a name is resolved by the DNS server. When several fleets share a machine (``pytest
-n 4``, a CI neighbour) the backends and the proxy are starved of CPU while the runner may
run on time, and a latency measured then is the machine's, not the client's. Linux counts,
for every thread, the time it spent runnable but waiting on a run queue and how many times
it got a CPU (``/proc/PID/task/TID/schedstat``, fields 2 and 3); this module reads them
every ``TICK_S`` for the processes it watches and turns them into the same
:class:`chaos.observe.stall.Stall` records as the runner's stalls::

    tick:  for each watched process (a backend and its process group, the proxy, the
           runner itself: the client and the DNS server are threads of it)
               waited = max over its threads of  (run_delay growth) / (times it ran)
               if waited >= MIN_STALL_NS: Stall(now - waited, now, RUN_QUEUE, who)

:class:`Stalls` joins these to the runner's own stalls behind the interface the judge
already asks (``stalls``, ``worst``, ``total_ms``), so a verdict's miss is explained by
whichever of them was starved (chaos/verdicts/judge.py).

What a stall is here — one wait, not their sum: the fleet's processes are kept busy by
the scenario's own load, and on a 2-core machine their threads' run-queue delay grows by
40-80 % of the wall-clock time during a scenario (measured: the whole catalogue, run
alone and with -n 4, beside other jobs). That is the machine the bounds were set on, not
a stall: counting it would excuse nearly every near miss (a latency up to three times its
bound). What bends a figure is how long a thread that became runnable (a packet arrived,
a timer fired) waited before it ran — what the runner's ticker measures for the runner.
Per thread and tick, run-queue delay divided by the number of times it got a CPU is the
mean of those waits, so at least one of them was that long: a lower bound on the longest
wait, exact when the thread waited once (a wait longer than a tick is seen whole). A
thread sharing a CPU with k others waits about k time slices each time; measured over
the catalogue at load average 11-17, such waits covered a median 6 % of a verdict's span
run alone and 17 % with -n 4.

Why the max over threads and not the sum: a missed time bound is wall-clock time. Threads
of one process waiting at the same time (four runnable threads on two busy cores) each
add their wait to a sum, which then holds more wall-clock time than passed and would
excuse misses no starvation caused. The max is a wait that happened. Threads that sleep
(idle pool workers) add nothing: only runnable threads wait on a run queue.

Limits: a wait is credited when the thread gets a CPU, so it is placed as ending at the
tick that saw it (up to one tick late); several short waits of one thread within a tick
count as their mean, once (an RPC's path may have met each of them: the figure is low,
the safe side). A thread that ends between two ticks takes its last tick's waits with
it. A stopped process (SIGSTOP, a fault) is not runnable and never counts as starved.
Processes outside this machine (a remote Toxiproxy) are not seen. Cost, measured on this
2-core machine: ~0.1 ms a tick for a fleet of three backends, the proxy and the runner (39
threads; open files are re-read with pread), ~0.6 % of a core.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Self

from chaos.observe.stall import (
    MIN_STALL_NS,
    RUN_QUEUE,
    RUNNER,
    Stall,
    StallMonitor,
    StallQueries,
    TickingLog,
)

# 20 ms: a wait of the size that bends a 100 ms bound is seen within a fifth of it, and
# the cost stays ~0.5 % of a core (5 ms ticks cost 2 %, for no bound that needs them).
TICK_S = 0.02
# How often the members of a watched process group (workers a target server forked) are
# looked for: scanning /proc reads one file per process on the machine.
GROUP_REFRESH_S = 1.0
# Open schedstat files kept for pread; beyond this (fleets of hundreds of backends) a file
# is opened for each read, which costs ~4x more.
MAX_OPEN_FILES = 1024
RUNNER_WHO = "runner (client, DNS)"

Watch = tuple[str, int, bool]  # who, pid, whether its process group counts with it


class SchedstatFiles:
    """Reads the run-queue delay of threads, keeping their files open (pread is ~4x cheaper
    than open, read, close). An open file refers to one task: a tid reused by a new thread
    is read from a new file, and a task that is gone reads as None."""

    def __init__(self, max_open: int = MAX_OPEN_FILES):
        self.max_open = max_open
        self._fds: dict[tuple[int, int], int] = {}

    def run_delay(self, pid: int, tid: int) -> tuple[int, int] | None:
        """(ns the thread has spent runnable but not running, times it got a CPU), since it
        started; None if it is gone."""
        key = (pid, tid)
        try:
            fd = self._fds.get(key)
            if fd is None:
                fd = os.open(f"/proc/{pid}/task/{tid}/schedstat", os.O_RDONLY)
                if len(self._fds) >= self.max_open:
                    return _read_once(fd)
                self._fds[key] = fd
            return _run_delay(os.pread(fd, 128, 0))
        except (OSError, ValueError, IndexError):
            self.forget(key)
            return None

    def forget(self, key: tuple[int, int]) -> None:
        fd = self._fds.pop(key, None)
        if fd is not None:
            os.close(fd)

    def open_keys(self) -> list[tuple[int, int]]:
        """(pid, tid) of the files open now."""
        return list(self._fds)

    def close(self) -> None:
        for key in self.open_keys():
            self.forget(key)


def _read_once(fd: int) -> tuple[int, int]:
    try:
        return _run_delay(os.pread(fd, 128, 0))
    finally:
        os.close(fd)


def _run_delay(data: bytes) -> tuple[int, int]:
    # "<ns on a CPU> <ns waiting on a run queue> <times it got a CPU>"
    fields = data.split()
    return int(fields[1]), int(fields[2])


def threads(pid: int) -> list[int]:
    """The process's thread ids now; [] when it is gone."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError):
        return []


def group_members(leaders: Iterable[int]) -> dict[int, set[int]]:
    """For each process group leader given, the other processes of its group now (one scan
    of /proc; processes that vanish meanwhile are skipped)."""
    wanted = set(leaders)
    found: dict[int, set[int]] = {leader: set() for leader in wanted}
    if not wanted:
        return found
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in wanted:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                pgrp = int(stat.read().rsplit(b")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if pgrp in wanted:
            found[pgrp].add(int(name))
    return found


class Watched:
    """One process a verdict depends on, with the other members of its process group when
    ``group`` (a server that forks workers is one backend): the longest wait for a CPU
    of any of its threads between two calls of :meth:`waited_ns`."""

    def __init__(
        self, who: str, pid: int, group: bool = False, skip: Callable[[], Iterable[int]] = tuple
    ):
        self.who, self.pid, self.group = who, pid, group
        self.members: set[int] = set()  # other processes of its group
        self._skip = skip  # thread ids that are not the process's work (the monitors)
        self._last: dict[tuple[int, int], tuple[int, int]] = {}

    def waited_ns(self, files: SchedstatFiles) -> int | None:
        """A wait for a CPU that one of its threads had since the last call, the longest
        this can tell (module docstring); 0 the first time (a thread's first reading is its
        whole life, not this tick); None when the process is gone."""
        now = self._read(files)
        if not now:
            self.close(files)
            return None
        skip = set(self._skip())
        waits = [
            _one_wait(self._last[key], reading)
            for key, reading in now.items()
            if key in self._last and key[1] not in skip
        ]
        for key in self._last.keys() - now.keys():
            files.forget(key)  # a thread that ended
        self._last = now
        return max(waits, default=0)

    def _read(self, files: SchedstatFiles) -> dict[tuple[int, int], tuple[int, int]]:
        now = {}
        for pid in (self.pid, *self.members):
            for tid in threads(pid):
                reading = files.run_delay(pid, tid)
                if reading is not None:
                    now[(pid, tid)] = reading
        return now

    def close(self, files: SchedstatFiles) -> None:
        for key in self._last:
            files.forget(key)
        self._last = {}


def _one_wait(before: tuple[int, int], after: tuple[int, int]) -> int:
    """The mean of the waits between two readings: at least one wait was this long."""
    delay, runs = after[0] - before[0], after[1] - before[1]
    if delay < 0 or runs < 0:
        return 0  # another task under the same ids (a pid reused): a first reading
    # A wait is credited when the thread gets a CPU, which counts a run; a delay without a
    # run (a waiting thread moved between CPUs) is one wait still under way.
    return delay // max(runs, 1)


class StarvationMonitor(TickingLog):
    """Samples the run-queue delay of the watched processes from a daemon thread and keeps
    each wait of at least ``min_stall_ns`` as a :class:`Stall` (source :data:`RUN_QUEUE`).

    What is watched: processes given to :meth:`watch` (until :meth:`unwatch`), and those
    each source added with :meth:`add_source` returns at each tick (a source is asked
    again every tick, so a restarted backend's new pid is followed and a killed one's is
    dropped). Thread-safe.
    """

    thread_name = "chaos-starvation-monitor"

    def __init__(
        self, tick_s: float = TICK_S, min_stall_ns: int = MIN_STALL_NS, clock=time.monotonic_ns
    ):
        super().__init__(tick_s, min_stall_ns, clock)
        self._files = SchedstatFiles()
        self._watched: dict[tuple[str, int], Watched] = {}
        self._static: dict[int, tuple[str, bool, Callable[[], Iterable[int]]]] = {}
        self._sources: list[Callable[[], Iterable[Watch]]] = []
        self._config = threading.Lock()  # guards _static and _sources
        self._sample = threading.Lock()  # one sampling pass at a time
        self._groups_at = -1 << 62

    def watch(
        self, who: str, pid: int, group: bool = False, skip: Callable[[], Iterable[int]] = tuple
    ) -> None:
        """Watch ``pid`` as ``who`` (e.g. "toxiproxy (pid 4711)"); ``skip`` gives thread
        ids not to count (a monitor's own threads)."""
        with self._config:
            self._static[pid] = (who, group, skip)

    def unwatch(self, pid: int) -> None:
        with self._config:
            self._static.pop(pid, None)

    def add_source(self, source: Callable[[], Iterable[Watch]]) -> None:
        """Watch what ``source()`` returns at each tick: (who, pid, group) triples."""
        with self._config:
            self._sources.append(source)

    def watching(self) -> list[str]:
        """Who is watched now (as of the last tick)."""
        return [w.who for w in list(self._watched.values())]

    def open_files(self) -> list[tuple[int, int]]:
        """(pid, tid) of the schedstat files it keeps open: none of a process gone."""
        return self._files.open_keys()

    # ------------------------------------------------------------------ sampling

    def sample(self) -> None:
        """One pass: read every watched process's threads, record the waits since the
        previous pass. The thread calls it every tick; tests may call it directly."""
        with self._sample:
            watched = self._refresh()
            waits = [(w, w.waited_ns(self._files)) for w in watched]
            now = self._clock()
            for process, waited in waits:
                if waited is None:
                    self._drop(process)
                elif waited >= self.min_stall_ns:
                    self.record(now - waited, now, RUN_QUEUE, process.who)

    def _wanted(self) -> dict[tuple[str, int], tuple[bool, Callable[[], Iterable[int]]]]:
        with self._config:
            wanted = {(who, pid): (group, skip) for pid, (who, group, skip) in self._static.items()}
            sources = list(self._sources)
        for source in sources:
            for who, pid, group in source():
                wanted.setdefault((who, pid), (group, tuple))
        return wanted

    def _refresh(self) -> list[Watched]:
        wanted = self._wanted()
        for key in list(self._watched):
            if key not in wanted:
                self._drop(self._watched[key])
        for (who, pid), (group, skip) in wanted.items():
            if (who, pid) not in self._watched:
                self._watched[(who, pid)] = Watched(who, pid, group, skip)
                if group:
                    self._groups_at = -1 << 62  # look for its workers now, not in a second
        self._refresh_groups()
        return list(self._watched.values())

    def _refresh_groups(self) -> None:
        grouped = [w for w in self._watched.values() if w.group]
        now = self._clock()
        if not grouped or now - self._groups_at < GROUP_REFRESH_S * 1e9:
            return
        self._groups_at = now
        members = group_members(w.pid for w in grouped)
        for process in grouped:
            process.members = members.get(process.pid, set())

    def _drop(self, process: Watched) -> None:
        process.close(self._files)
        self._watched.pop((process.who, process.pid), None)

    # ------------------------------------------------------------------ the thread

    def stop(self) -> None:
        super().stop()
        with self._sample:
            for process in list(self._watched.values()):
                self._drop(process)
            self._files.close()

    def _run(self) -> None:
        # Event.wait paces the sampling (it returns at once on stop()); it waits for no
        # condition. A pass that fails (a source raising while a fleet is torn down) loses
        # one tick, not the monitor.
        while not self._stop.wait(self.tick_s):
            try:
                self.sample()
            except Exception:  # the next tick tries again
                logging.getLogger(__name__).debug("starvation sample failed", exc_info=True)


class Stalls(StallQueries):
    """What the judge asks about: the runner's own stalls (chaos/observe/stall.py) and the CPU
    starvation of the processes a verdict depends on, as one list of :class:`Stall`.

    Stands in for a :class:`StallMonitor` wherever one is passed (``record`` is the
    runner's, for the load loop; ``since_ns`` its start), so scenarios, the load generator
    and the judge need no change.
    """

    def __init__(self, runner: StallMonitor, starvation: StarvationMonitor):
        self.runner = runner
        self.starvation = starvation
        # Stalls other processes measure and log themselves (the proxy's event loop:
        # chaos/observe/proxy_lag.py), added and removed by whoever starts those processes.
        self.others: list[StallQueries] = []
        self.retired: list[StallQueries] = []  # removed, kept for the run's summary

    @property
    def since_ns(self) -> int | None:
        return self.runner.since_ns

    @property
    def running(self) -> bool:
        return self.runner.running and self.starvation.running

    def start(self) -> Self:
        self.runner.start()
        self.starvation.start()
        return self

    def stop(self) -> None:
        self.starvation.stop()
        self.runner.stop()

    def record(self, start_ns: int, end_ns: int, source: str, who: str = RUNNER) -> None:
        self.runner.record(start_ns, end_ns, source, who)

    def watch(self, who: str, pid: int, group: bool = False) -> None:
        self.starvation.watch(who, pid, group)

    def unwatch(self, pid: int) -> None:
        self.starvation.unwatch(pid)

    def add(self, other: StallQueries) -> None:
        """Count the stalls ``other`` reports too (until :meth:`remove`)."""
        self.others = [*self.others, other]

    def remove(self, other: StallQueries) -> None:
        """Stop counting ``other`` in verdicts; what it reported so far stays in the run's
        summary (:meth:`reported`)."""
        other.stalls()  # the last of it, while its source is still there
        self.others = [o for o in self.others if o is not other]
        self.retired.append(other)

    def reported(self, start_ns: int | None = None) -> list[Stall]:
        """Every stall other processes reported since ``start_ns``, counted now or before."""
        found: list[Stall] = []
        for other in [*self.others, *self.retired]:
            found += other.stalls(start_ns)
        return found

    def stalls(self, start_ns: int | None = None, end_ns: int | None = None) -> list[Stall]:
        found = self.runner.stalls(start_ns, end_ns) + self.starvation.stalls(start_ns, end_ns)
        for other in self.others:
            found += other.stalls(start_ns, end_ns)
        return sorted(found, key=lambda s: (s.start_ns, s.end_ns))

    def monitor_threads(self) -> set[int]:
        """The ids of the measuring threads themselves (not counted as the runner's work)."""
        ids = {self.starvation.thread_id, self.runner.thread_id}
        return {i for i in ids if i is not None}


def watching(stalls: Stalls, pid: int = 0) -> Stalls:
    """Make ``stalls`` watch the runner process itself (``pid``, default this one): the
    client's threads and the DNS server's run in it; the measuring threads do not count."""
    stalls.starvation.watch(RUNNER_WHO, pid or os.getpid(), skip=stalls.monitor_threads)
    return stalls


_monitor: Stalls | None = None
_monitor_lock = threading.Lock()


def monitor() -> Stalls:
    """The process-wide :class:`Stalls`: the runner's stall monitor (chaos.observe.stall.monitor())
    and a starvation monitor that watches the runner and every running fleet of this
    process (fleet.controller.running_processes); started on first use. The proxy is
    watched by whoever starts it (the plugin's ``toxiproxy`` fixture)."""
    global _monitor
    from chaos.observe import stall
    from fleet.controller import running_processes

    with _monitor_lock:
        if _monitor is None:
            starvation = StarvationMonitor()
            starvation.add_source(running_processes)
            _monitor = watching(Stalls(stall.monitor(), starvation.start()))
        return _monitor
