"""One scenario's world: the fleet, the profile's client, the history, the nemesis, verdicts.

A scenario (the ``chaos`` fixture) drives load, injects faults and asks checks::

    def test_kill(chaos):
        load = chaos.load(concurrency=16)            # recorded into chaos.history
        chaos.warm_up(load)                          # every backend has served
        kill = chaos.nemesis.inject(Kill("b2"))      # an event on the same clock
        load.wait_for(2000, timeout=10)
        chaos.expect(checks.errors(chaos.history, start_ns=..., budget=0))

When the scenario ends — passed, failed or interrupted — :meth:`close` stops the load,
undoes every fault, brings the fleet back to baseline and writes the artifacts
(history.jsonl, verdicts.json, summary.json).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


from chaos.checks import Verdict
from chaos.faults import Nemesis, SlowHandler
from chaos.history import History, Rpc
from chaos.load import Load
from chaos.profiles import Profile
from fleet.controller import Fleet
from fleet.waiting import wait_until
from proto import greeter_pb2, greeter_pb2_grpc

# A fresh channel connects to three local backends in ~10-100 ms; a busy machine (or a
# backoff after the previous scenario's faults) is allowed far more.
WARM_UP_TIMEOUT_S = 15.0


class ScenarioFailed(AssertionError):
    """A verdict did not pass; the message is the verdict's explanation."""


class Scenario:
    """The objects a scenario works with, and the clean-up that follows it."""

    def __init__(self, fleet: Fleet, profile: Profile, proxies, artifacts: Path):
        self.fleet = fleet
        self.profile = profile
        self.proxies = proxies
        self.history = History()
        self.nemesis = Nemesis(fleet, self.history, proxies)
        self.artifacts = artifacts
        self.verdicts: list[Verdict] = []
        self.reset_ms: float | None = None
        self._loads: list[Load] = []
        self._extra_fleets: list[Fleet] = []

    # ------------------------------------------------------------------ fleets

    def extra_fleet(self, **settings: Any) -> Fleet:
        """Start another proxied fleet with other settings (e.g. ``health=False``) for this
        scenario only; it is stopped when the scenario ends. Its backends are published on
        their own addresses, so it never mixes with the module's fleet."""
        settings.setdefault("size", len(self.fleet.backends))
        base = self.fleet.net.network_address + 256 * (1 + len(self._extra_fleets))
        settings.setdefault("net", f"{base}/24")
        fleet = Fleet(proxies=self.proxies, **settings)
        self._extra_fleets.append(fleet)
        return fleet.start()

    # ------------------------------------------------------------------ client side

    def channel(self, aio: bool = False, fleet: Fleet | None = None,
                profile: Profile | None = None):
        """A new channel (a new client) configured by the profile under test, or by
        ``profile``, to the scenario's fleet or to ``fleet``."""
        return (profile or self.profile).channel((fleet or self.fleet).info(), aio=aio)

    def load(self, *, concurrency: int = 8, rate: float | None = None, deadline_s: float = 2.0,
             fleet: Fleet | None = None, profile: Profile | None = None,
             **options: Any) -> Load:
        """Start background load on a new aio channel (to the scenario's fleet, or to
        ``fleet``; configured by the profile under test, or by ``profile``); stopped when
        the scenario ends."""
        info = (fleet or self.fleet).info()
        client_profile = profile or self.profile
        load = Load(lambda: client_profile.channel(info, aio=True), self.history,
                    concurrency=concurrency, rate=rate, deadline_s=deadline_s, **options)
        self._loads.append(load)
        return load.start()

    def warm_up(self, load: Load, backends: list[str] | None = None,
                timeout: float = WARM_UP_TIMEOUT_S, profile: Profile | None = None) -> int:
        """Wait until every backend in ``backends`` (default: all running ones) has answered
        an RPC OK since now — or, for pick_first, until any one has. Returns the instant."""
        since = self.history.now()
        wanted = set(backends or [b.id for b in self.fleet.backends if b.alive()])
        if (profile or self.profile).policy == "pick_first":
            load.wait_until(lambda: self._served_since(since), timeout, "a first OK RPC")
        else:
            load.wait_until(lambda: wanted <= self._served_since(since), timeout,
                            f"OK RPCs from each of {sorted(wanted)}")
        return self.history.mark("warm")

    def _served_since(self, since_ns: int) -> set[str]:
        return {r.backend for r in self.history.window(since_ns) if r.ok and r.backend}

    def hold_rpcs_on(self, target: str, delay_ms: int, at_least: int = 1,
                     fleet: Fleet | None = None, nemesis: Nemesis | None = None):
        """Make ``target``'s handlers take ``delay_ms`` and wait until ``at_least`` RPCs are
        asleep in them; returns the injected fault (undone with the rest at the end).

        Backends send their headers with the answer, so a held RPC is not committed: a fault
        that strikes now breaks only RPCs a retry policy may replay — and that a profile
        without one fails every time. ``fleet``/``nemesis`` default to the scenario's.
        """
        fleet, nemesis = fleet or self.fleet, nemesis or self.nemesis
        held = nemesis.inject(SlowHandler(target, delay_ms=delay_ms))
        wait_until(lambda: fleet.stats(target)["in_flight"] >= at_least, 5,
                   f"{at_least} RPCs held on {target}")
        return held

    def busiest(self, since_ns: int) -> str:
        """The backend that answered most OK RPCs since ``since_ns`` (ties: lowest id).

        Scenarios fault this one, so that under pick_first (one backend takes everything)
        the fault lands where the traffic is."""
        counts: dict[str, int] = {}
        for rpc in self.history.window(since_ns):
            if rpc.ok and rpc.backend:
                counts[rpc.backend] = counts.get(rpc.backend, 0) + 1
        if not counts:
            raise AssertionError("no backend has answered an RPC OK yet")
        return min(counts, key=lambda b: (-counts[b], b))

    def spread_calls(self, hello, attempts: int = 30) -> set[str]:
        """Call ``hello`` until every running backend has answered (at most ``attempts``
        calls); returns the backends seen. A channel that never spreads (pick_first) is
        not an error here: the scenario's checks say what that means."""
        wanted = {b.id for b in self.fleet.backends if b.alive()}
        seen: set[str] = set()
        for _ in range(attempts):
            seen.add(hello(tolerate=True))
            if wanted <= seen:
                break
        seen.discard(None)
        return seen

    def count_ok(self, backend: str, since_ns: int) -> int:
        """OK RPCs answered by ``backend`` that started at or after ``since_ns``."""
        return sum(1 for r in self.history.window(since_ns) if r.ok and r.backend == backend)

    def served_since(self, backend: str, since_ns: int) -> bool:
        """Whether ``backend`` has answered an RPC OK that started at or after ``since_ns``."""
        return backend in self._served_since(since_ns)

    def wait_until(self, condition, timeout: float, what: str):
        """Wait for a condition with a deadline (never a fixed sleep)."""
        return wait_until(condition, timeout, what)

    def hello(self, channel):
        """A function doing one SayHello on ``channel``, recording it in the history, and
        returning the backend id that answered.

        With ``tolerate=True`` a failed RPC returns None instead of raising.
        """
        stub = greeter_pb2_grpc.GreeterStub(channel)

        def call(tolerate: bool = False, timeout: float = 5.0) -> str | None:
            rid = self.history.next_id()
            start = time.monotonic_ns()
            future = stub.SayHello.future(greeter_pb2.HelloRequest(name=f"r{rid}"),
                                          timeout=timeout)
            error = future.exception()
            # Answers carry the backend id in their headers, failures in their trailers.
            metadata = tuple(future.initial_metadata() or ()) + tuple(
                future.trailing_metadata() or ())
            backend = dict(metadata).get("x-backend-id")
            code = "OK" if error is None else error.code().name
            details = "" if error is None else error.details() or ""
            self.history.record(Rpc(rid, start, time.monotonic_ns(), backend, code, details))
            if error is not None and not tolerate:
                raise error
            return backend if error is None else None

        return call

    # ------------------------------------------------------------------ verdicts

    def check(self, verdict: Verdict) -> Verdict:
        """Record a verdict without failing the scenario (for figures in the artifacts)."""
        self.verdicts.append(verdict)
        return verdict

    def expect(self, verdict: Verdict) -> Verdict:
        """Record a verdict and fail the scenario with its explanation if it did not pass."""
        __tracebackhide__ = True  # the verdict explains the failure; the frame adds nothing
        self.check(verdict)
        if not verdict.passed:
            raise ScenarioFailed(f"[profile {self.profile.name}] {verdict}")
        return verdict

    # ------------------------------------------------------------------ the end

    def close(self) -> list[BaseException]:
        """Stop loads, undo faults, reset the fleet, write artifacts; returns clean-up errors."""
        errors: list[BaseException] = []
        for load in self._loads:
            try:
                load.stop()
            except Exception as exc:
                errors.append(exc)
        errors += self.nemesis.undo_all()
        for extra in self._extra_fleets:
            extra.close()
        started = time.monotonic()
        try:
            self.fleet.reset()
        except Exception as exc:
            errors.append(exc)
        self.reset_ms = (time.monotonic() - started) * 1000
        self.write_artifacts()
        return errors

    def write_artifacts(self) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.history.to_jsonl(self.artifacts / "history.jsonl")
        (self.artifacts / "verdicts.json").write_text(json.dumps(
            [v.to_dict() for v in self.verdicts], indent=2))
        summary = {"profile": self.profile.name, "reset_ms": self.reset_ms,
                   **self.history.summary()}
        (self.artifacts / "summary.json").write_text(json.dumps(summary, indent=2,
                                                                default=str))
