"""A fault schedule as data: what goes wrong, when, to which backend, under what load.

    Schedule
      fleet_size   backends the schedule is written for
      load         LoadSpec: closed loop (``concurrency`` in flight) or open loop (``rate``
                   RPC/s), the RPC deadline, idle gaps (the load sends nothing)
      faults       FaultSpec(at_ms, kind, target, for_ms, params), offsets from the
                   schedule's start (right after the client is warm)

A target is a *rank*: 1 is the backend that answered most RPCs in the warm-up, 2 the next,
... (ties by id), or "all" (every backend; the fleet for a fleet-wide kind). So a schedule
means the same under pick_first — which uses one backend, always #1 — as under round_robin.

JSON (``version`` 1) round-trips exactly (:meth:`Schedule.save` / :meth:`read`, ``dumps`` /
``loads``);
:meth:`Schedule.text` is the readable form::

    fleet of 3; load: 16 in flight, deadline 3000 ms
      +0.000 s  kill #1 for 0.100 s
      +0.250 s  latency all for 1.000 s (ms=50, jitter_ms=0, stream=downstream)

Validation (:func:`validate`, also on every load) refuses, in one line that names the
place: a file that is not JSON, a missing or unknown field, an unknown fault kind, a
parameter off its ladder (chaos/fuzz/kinds.py), a target the fleet does not have, two
faults that need the same thing of one backend at once (a health flip on a backend that is
being killed), and latency that adds up past half the deadline.
"""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaos.fuzz import kinds as kinds_module
from chaos.fuzz.kinds import CONTROL, FLEET_SLOTS, UnknownKind

VERSION = 1
ALL = "all"
MAX_FLEET = 200  # fleet/controller.py MAX_SIZE
MAX_MS = 600_000  # ten minutes: far beyond any schedule worth shrinking
# A slowed backend "can serve unless its latency exceeds the deadline" (docs/fuzzing.md):
# the added delays on one backend (both directions and its handler) may sum to at most
# half the deadline, so that a slowed RPC, and a retry of it, still ends in time.
LATENCY_SHARE_OF_DEADLINE = 0.5


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message is one line naming where and why."""


@dataclass(frozen=True)
class LoadSpec:
    """The client's load during the schedule: ``concurrency`` RPCs in flight (closed loop)
    or ``rate`` RPC/s (open loop); each RPC's deadline; idle gaps (at_ms, for_ms) in which
    it sends nothing."""

    concurrency: int | None = 16
    rate: float | None = None
    deadline_ms: int = 3000
    idle: tuple[tuple[int, int], ...] = ()

    def text(self) -> str:
        shape = f"{self.concurrency} in flight" if self.rate is None else f"{self.rate:g} RPC/s"
        gaps = "".join(f", idle {_at(a)} for {_s(f)}" for a, f in self.idle)
        return f"{shape}, deadline {self.deadline_ms} ms{gaps}"

    def to_json(self) -> dict:
        data: dict[str, Any] = (
            {"concurrency": self.concurrency} if self.rate is None else {"rate": self.rate}
        )
        data["deadline_ms"] = self.deadline_ms
        if self.idle:
            data["idle"] = [list(gap) for gap in self.idle]
        return data


@dataclass(frozen=True)
class FaultSpec:
    """One fault: ``kind`` (chaos/fuzz/kinds.py) on ``target`` (a rank, or "all") from
    ``at_ms`` for ``for_ms`` (0 for an instant kind), with its ``params``."""

    at_ms: int
    kind: str
    target: int | str
    for_ms: int
    params: dict = field(default_factory=dict, hash=False)

    @property
    def end_ms(self) -> int:
        return self.at_ms + self.for_ms

    def target_text(self) -> str:
        return ALL if self.target == ALL else f"#{self.target}"

    def text(self) -> str:
        kind = kinds_module.get(self.kind)
        span = "(instant)" if kind.instant else f"for {_s(self.for_ms)}"
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        where = "" if kind.fleet_wide else f" {self.target_text()}"
        return f"{_at(self.at_ms):>9}  {self.kind}{where} {span}" + (
            f" ({params})" if params else ""
        )

    def to_json(self) -> dict:
        return {
            "at_ms": self.at_ms,
            "kind": self.kind,
            "target": self.target,
            "for_ms": self.for_ms,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class Schedule:
    """Faults over a fleet under a load. ``found`` says where a saved schedule came from
    (profile, rule it failed, seed, date: free-form, JSON-native), ``{}`` for a new one."""

    fleet_size: int = 3
    load: LoadSpec = LoadSpec()
    faults: tuple[FaultSpec, ...] = ()
    found: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def span_ms(self) -> int:
        """When the last fault is over (or the last idle gap ends), from the start."""
        ends = [f.end_ms for f in self.faults] + [a + d for a, d in self.load.idle]
        return max(ends, default=0)

    def text(self) -> str:
        lines = [f"fleet of {self.fleet_size}; load: {self.load.text()}"]
        lines += [f"  {f.text()}" for f in sorted(self.faults, key=lambda f: f.at_ms)]
        if not self.faults:
            lines.append("  (no fault)")
        return "\n".join(lines)

    def key(self) -> str:
        """The schedule's content (``found`` left out) as canonical JSON: equal keys, same
        schedule."""
        data = self.to_json()
        data.pop("found", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def summary(self) -> str:
        """One line: how many faults, which."""
        if not self.faults:
            return "no fault"
        names = ", ".join(f"{f.kind} {f.target_text()}" for f in self.faults)
        return f"{len(self.faults)} fault{'s' if len(self.faults) > 1 else ''}: {names}"

    def to_json(self) -> dict:
        data = {
            "version": VERSION,
            "fleet_size": self.fleet_size,
            "load": self.load.to_json(),
            "faults": [f.to_json() for f in self.faults],
        }
        if self.found:
            data["found"] = dict(self.found)
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.dumps())
        return path

    @classmethod
    def from_json(cls, data: Any, source: str = "schedule") -> Schedule:
        """A validated Schedule from its JSON data; ScheduleError names any problem."""
        return validate(_parse(data, source), source)

    @classmethod
    def loads(cls, text: str, source: str = "schedule") -> Schedule:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ScheduleError(f"{source}: not JSON: {exc}") from None
        return cls.from_json(data, source)

    @classmethod
    def read(cls, path: str | Path) -> Schedule:
        """A schedule from a file written by :meth:`save` (or by hand)."""
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ScheduleError(f"schedule {path}: cannot read: {exc.strerror}") from None
        return cls.loads(text, f"schedule {path}")

    def with_found(self, **found) -> Schedule:
        return replace(self, found=dict(found))


# -------------------------------------------------------------------------- parsing


def _parse(data: Any, source: str) -> Schedule:
    where = _Where(source)
    obj = where.mapping(
        data,
        "",
        {"version", "fleet_size", "load", "faults", "found"},
        required={"version", "faults"},
    )
    if obj["version"] != VERSION:
        where.fail(
            "version",
            f"{obj['version']!r} is not a schedule version this grpc-chaos reads ({VERSION})",
        )
    size = where.integer(obj.get("fleet_size", 3), "fleet_size", 1, MAX_FLEET)
    load = _parse_load(obj["load"], where) if "load" in obj else LoadSpec()
    faults_data = obj["faults"]
    if not isinstance(faults_data, list):
        where.fail("faults", "must be a list of faults")
    faults = tuple(_parse_fault(item, f"faults[{i}]", where) for i, item in enumerate(faults_data))
    found = obj.get("found", {})
    if not isinstance(found, dict):
        where.fail("found", "must be an object (where the schedule came from)")
    return Schedule(size, load, faults, dict(found))


def _parse_load(data: Any, where: _Where) -> LoadSpec:
    obj = where.mapping(data, "load", {"concurrency", "rate", "deadline_ms", "idle"})
    if ("concurrency" in obj) == ("rate" in obj):
        where.fail("load", "give exactly one of concurrency (RPCs in flight) or rate (RPC/s)")
    concurrency = rate = None
    if "concurrency" in obj:
        concurrency = where.integer(obj["concurrency"], "load.concurrency", 1, 1024)
    else:
        rate = obj["rate"]
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not 0.1 <= rate <= 10_000
        ):
            where.fail("load.rate", f"{rate!r} is not a rate between 0.1 and 10000 RPC/s")
    deadline = where.integer(obj.get("deadline_ms", 3000), "load.deadline_ms", 50, MAX_MS)
    gaps = obj.get("idle", [])
    if not isinstance(gaps, list):
        where.fail("load.idle", "must be a list of [at_ms, for_ms] gaps")
    idle = []
    for i, gap in enumerate(gaps):
        name = f"load.idle[{i}]"
        if not isinstance(gap, list) or len(gap) != 2:
            where.fail(name, f"{gap!r} is not [at_ms, for_ms]")
        idle.append(
            (where.integer(gap[0], name, 0, MAX_MS), where.integer(gap[1], name, 1, MAX_MS))
        )
    return LoadSpec(concurrency, rate, deadline, tuple(idle))


def _parse_fault(data: Any, name: str, where: _Where) -> FaultSpec:
    obj = where.mapping(
        data,
        name,
        {"at_ms", "kind", "target", "for_ms", "params"},
        required={"at_ms", "kind", "target"},
    )
    try:
        kind = kinds_module.get(obj["kind"])
    except UnknownKind as exc:
        where.fail(f"{name}.kind", str(exc))
    at = where.integer(obj["at_ms"], f"{name}.at_ms", 0, MAX_MS)
    duration = where.integer(obj.get("for_ms", 0), f"{name}.for_ms", 0, MAX_MS)
    params = obj.get("params", {})
    if not isinstance(params, dict):
        where.fail(f"{name}.params", "must be an object of parameter names to values")
    target = obj["target"]
    if target != ALL and (isinstance(target, bool) or not isinstance(target, int)):
        where.fail(
            f"{name}.target",
            f"{target!r} is not a rank (1 = the busiest backend in "
            f'the warm-up, 2 the next, ...) or "all"',
        )
    return FaultSpec(at, kind.name, target, duration, dict(params))


class _Where:
    """Raises ScheduleError naming the source and the JSON path."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str):
        raise ScheduleError(f"{self.source}: {path + ': ' if path else ''}{message}")

    def mapping(
        self, data: Any, path: str, allowed: set[str], required: AbstractSet[str] = frozenset()
    ):
        if not isinstance(data, dict):
            self.fail(path, f"expected an object, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            self.fail(path, f"unknown field {unknown[0]!r}; known: {', '.join(sorted(allowed))}")
        missing = sorted(required - set(data))
        if missing:
            self.fail(path, f"missing field {missing[0]!r}")
        return data

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(path, f"{value!r} is not a whole number from {low} to {high}")
        return value


# -------------------------------------------------------------------------- validation


def validate(schedule: Schedule, source: str = "schedule") -> Schedule:
    """The schedule itself when it can run; else ScheduleError with the first problem."""
    found = problems(schedule)
    if found:
        index, message = found[0]
        where = f"faults[{index}]" if index is not None else "load"
        raise ScheduleError(f"{source}: {where}: {message}")
    return schedule


def problems(schedule: Schedule) -> list[tuple[int | None, str]]:
    """Every problem as (index of the fault, or None for the load; message). A fault is
    judged against the faults before it, so dropping the named ones leaves a valid
    schedule (the strategy does so)."""
    found: list[tuple[int | None, str]] = []
    gaps = sorted(schedule.load.idle)
    for (a, d), (b, _) in zip(gaps, gaps[1:], strict=False):
        if b < a + d:
            found.append((None, f"idle gaps at {_at(a)} and {_at(b)} overlap"))
    kept: list[FaultSpec] = []
    for index, fault in enumerate(schedule.faults):
        message = (
            _own_problem(fault, schedule.fleet_size)
            or _clash(fault, kept)
            or _too_slow(fault, kept, schedule.load.deadline_ms)
        )
        if message:
            found.append((index, message))
        else:
            kept.append(fault)
    return found


def _own_problem(fault: FaultSpec, size: int) -> str | None:
    kind = kinds_module.get(fault.kind)
    if kind.fleet_wide and fault.target != ALL:
        return f'{fault.kind} acts on the whole fleet: its target is "all"'
    if isinstance(fault.target, int) and not 1 <= fault.target <= size:
        return f"target #{fault.target}, but the fleet has {size} backends (#1 to #{size})"
    if kind.instant and fault.for_ms:
        return f"{fault.kind} is instant: for_ms must be 0, not {fault.for_ms}"
    if not kind.instant and fault.for_ms < 1:
        return f"{fault.kind} needs a duration: for_ms must be at least 1"
    known = {p.name: p for p in kind.params}
    for name in fault.params:
        if name not in known:
            return (
                f"params.{name}: {fault.kind} has no parameter {name!r}; it has "
                f"{', '.join(known) or 'none'}"
            )
    for param in kind.params:
        if param.name not in fault.params:
            return f"params.{param.name}: missing (one of {', '.join(map(repr, param.values))})"
        wrong = param.problem(fault.params[param.name])
        if wrong:
            return f"params.{param.name}: {wrong}"
    return None


def _busy(fault: FaultSpec) -> tuple[int, int]:
    kind = kinds_module.get(fault.kind)
    return fault.at_ms, fault.end_ms + kind.slack_ms


def _targets(fault: FaultSpec) -> set:
    return {ALL} if fault.target == ALL else {fault.target}


def _clash(fault: FaultSpec, earlier: list[FaultSpec]) -> str | None:
    kind = kinds_module.get(fault.kind)
    start, end = _busy(fault)
    for other in earlier:
        other_kind = kinds_module.get(other.kind)
        o_start, o_end = _busy(other)
        if start >= o_end or o_start >= end:
            continue
        fleet = set(kind.slots) & set(other_kind.slots) & FLEET_SLOTS
        same = _targets(fault) & _targets(other) or ALL in _targets(fault) | _targets(other)
        shared = set(kind.slots) & set(other_kind.slots)
        control = (CONTROL in kind.needs and "process" in other_kind.slots) or (
            CONTROL in other_kind.needs and "process" in kind.slots
        )
        if fleet or (same and (shared or control)):
            what = ", ".join(sorted(shared)) or "the backend's process"
            return (
                f"{fault.kind} {fault.target_text()} at {_at(fault.at_ms)} overlaps "
                f"{other.kind} {other.target_text()} (busy until {_at(o_end)} with its "
                f"revert): both need {what}"
            )
    return None


def _delay_ms(fault: FaultSpec) -> int:
    if fault.kind == "latency":
        return fault.params["ms"] + fault.params["jitter_ms"]
    if fault.kind == "app_delay":
        return fault.params["delay_ms"]
    return 0


def _too_slow(fault: FaultSpec, earlier: list[FaultSpec], deadline_ms: int) -> str | None:
    added = _delay_ms(fault)
    if not added:
        return None
    total = added + sum(
        _delay_ms(o)
        for o in earlier
        if (_targets(o) & _targets(fault) or ALL in _targets(o) | _targets(fault))
        and o.at_ms < fault.end_ms
        and fault.at_ms < o.end_ms
    )
    limit = deadline_ms * LATENCY_SHARE_OF_DEADLINE
    if total > limit:
        return (
            f"{fault.kind} {fault.target_text()} brings the added delay on that backend "
            f"to {total} ms, over half the {deadline_ms} ms deadline ({limit:g} ms): "
            f"past that a slow backend is a dead one"
        )
    return None


def _at(ms: int) -> str:
    return f"+{ms / 1000:.3f} s"


def _s(ms: int) -> str:
    return f"{ms / 1000:.3f} s"
