"""One scenario's world: the fleet, the profile's client, the history, the nemesis, verdicts.

A scenario (the ``chaos`` fixture) drives load, injects faults and asks checks::

    def test_kill(chaos):
        load = chaos.load(concurrency=16)            # recorded into chaos.history
        chaos.warm_up(load)                          # every backend has served
        kill = chaos.nemesis.inject(Kill("b2"))      # an event on the same clock
        load.wait_for(2000, timeout=10)
        chaos.expect(checks.errors(chaos.history, start_ns=..., budget=0))

Bounds come from ``chaos.verdicts.requirements`` (defaults or the user's SLOs, never the profile).
:meth:`expect` judges a failed verdict against the runner's own stalls (chaos/verdicts/judge.py):
a miss the stall explains is *inconclusive* (rerun by the plugin), never a pass; a real
failure names the settings that answer it (chaos/verdicts/advice.py).

What the client does with several backends is observed in warm-up (chaos/observe/client_shape.py),
never read from its config; a scenario whose property presumes a spreading client says
*not applicable* for one that is not (:meth:`require_spread`).

When the scenario ends — passed, failed or interrupted — :meth:`close` stops the load,
undoes every fault, brings the fleet back to baseline and writes the artifacts
(history.jsonl, verdicts.json, summary.json).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from chaos import checks
from chaos.checks import Verdict
from chaos.clients import config as client_config
from chaos.clients.driver import Driver, RemoteChannel
from chaos.clients.remote import RemoteLoad, remote_caller
from chaos.clients.remote import subchannel_counts as remote_counts
from chaos.faults import Active, Nemesis, SlowHandler
from chaos.faults.http2 import follow_events
from chaos.history import RPC_TAG, Event, History, Rpc, clock_anchor
from chaos.load import GreeterRpc, Load, checked_answer, record_rpc
from chaos.observe import client_shape
from chaos.observe.attribution import Attribution
from chaos.observe.channelz import AttemptSampler, subchannel_counts, track_new_channel
from chaos.observe.client_shape import Shape
from chaos.observe.stall import StallMonitor
from chaos.outcomes import NotApplicable, ScenarioFailed, ScenarioInconclusive, StagingTimeout
from chaos.profiles import Profile
from chaos.verdicts import advice
from chaos.verdicts.judge import judge
from chaos.verdicts.requirements import DEFAULTS, Requirements, requirement_of
from fleet.controller import Fleet
from fleet.procs.waiting import wait_until

__all__ = ["Scenario", "ScenarioFailed", "ScenarioInconclusive", "NotApplicable"]

# A fresh channel connects to three local backends in ~10-100 ms; a busy machine (or a
# backoff after the previous scenario's faults) is allowed far more.
WARM_UP_TIMEOUT_S = 15.0


# A new channel reaches every backend once each TLS handshake is done: ~10 ms here, up to
# a second on a busy machine (measured: a -n 4 run at load 10 had b1 join 60 ms after 30
# calls had gone to b2 and b3). A client seen to spread gets this long, at most this many
# calls, before the scenario says it could not be staged.
SPREAD_TIMEOUT_S = 10.0
SPREAD_MAX_CALLS = 20_000
# "Ejected" means the client sent a backend no attempt — no first attempt, no retry — for
# this long. Outlier detection ejects for baseEjectionTime (gRPC's default 30 s; 1 s in the
# recommended profile) and then probes again, so the property asks for one quiet half
# second, not for silence forever.
EJECTION_QUIET_MS = 500


class Scenario:
    """The objects a scenario works with, and the clean-up that follows it.

    ``shape`` is the profile's observed spread from the run's preflight, if any;
    ``stalls`` the runner's stall monitor (without one no verdict is ever inconclusive).
    """

    def __init__(
        self,
        fleet: Fleet,
        profile: Profile,
        proxies,
        artifacts: Path,
        *,
        requirements: Requirements = DEFAULTS,
        stalls: StallMonitor | None = None,
        shape: Shape | None = None,
        target=None,
        client: Driver | None = None,
    ):
        from chaos.targets import builtin

        self.fleet = fleet
        # The service under test (chaos/targets/): what the backends run, the RPC to call.
        self.target = target or builtin()
        self.profile = profile
        # The client under test: a driver process (chaos/clients/), or None for the grpcio
        # channel made in this process.
        self.client = client
        self.proxies = proxies
        self.requirements = requirements
        self.stalls = stalls
        self.shape = shape
        self.history = History()
        self.clock_anchor = clock_anchor()
        self.nemesis = Nemesis(fleet, self.history, proxies)
        # With HTTP/2 points in the fleet, every GOAWAY and connection close they see is in
        # the history: checks that assume steady connections leave out what those touched.
        follow_events(self.history, fleet)
        self.artifacts = artifacts
        self.verdicts: list[Verdict] = []
        self.decisive: Verdict | None = None  # the expectation that ended the scenario
        self.reset_ms: float | None = None
        self._loads: list[Load] = []
        self._samplers: list[AttemptSampler] = []
        self._channel_ids: dict[int, int | None] = {}
        self._extra_fleets: list[Fleet] = []
        self._remote_channels: list[RemoteChannel] = []
        self._settle_ids: list[int] = []  # history ids settle() drew, never an RPC's

    # ------------------------------------------------------------------ fleets

    def extra_fleet(self, **settings: Any) -> Fleet:
        """Start another proxied fleet with other settings (e.g. ``health=False``) for this
        scenario only; it is stopped when the scenario ends. Its backends are published on
        their own addresses, so it never mixes with the module's fleet."""
        settings.setdefault("size", len(self.fleet.backends))
        settings.setdefault("http2", self.fleet.http2)
        base = self.fleet.net.network_address + 256 * (1 + len(self._extra_fleets))
        settings.setdefault("net", f"{base}/24")
        settings.setdefault("service", self.target)
        fleet = Fleet(proxies=self.proxies, **settings)
        self._extra_fleets.append(fleet)
        return fleet.start()

    # ------------------------------------------------------------------ client side

    def channel(
        self,
        aio: bool = False,
        fleet: Fleet | None = None,
        profile: Profile | None = None,
        client_cert: tuple[str, str] | bool | None = None,
    ):
        """A new channel (a new client) configured by the profile under test, or by
        ``profile``, to the scenario's fleet or to ``fleet``: a grpc channel, or a
        RemoteChannel in the client driver under test (closed when the scenario ends).

        ``client_cert`` overrides the client certificate the profile and fleet would give:
        False for none, or (cert, key) paths for another one (a client the fleet must
        refuse)."""
        fleet, profile = fleet or self.fleet, profile or self.profile
        info = fleet.info()
        if isinstance(client_cert, tuple):
            info = dict(info, client_cert=client_cert[0], client_key=client_cert[1])
        if self.client is not None:
            remote = self._remote_channel(fleet, profile, info, client_cert)
            self._remote_channels.append(remote)
            return remote
        with track_new_channel() as channelz_id:
            if client_cert is None:
                channel = profile.channel(info, aio=aio)
            else:
                from fleet import client

                channel = client.channel(
                    info,
                    service_config=profile.service_config,
                    options=list(profile.channel_options.items()),
                    client_cert=client_cert is not False,
                    aio=aio,
                )
        self._channel_ids[id(channel)] = channelz_id()
        return channel

    def load(
        self,
        *,
        concurrency: int = 8,
        rate: float | None = None,
        deadline_s: float = 2.0,
        fleet: Fleet | None = None,
        profile: Profile | None = None,
        **options: Any,
    ) -> Load:
        """Start background load on a new aio channel (to the scenario's fleet, or to
        ``fleet``; configured by the profile under test, or by ``profile``); stopped when
        the scenario ends."""
        fleet = fleet or self.fleet
        info = fleet.info()
        client_profile = profile or self.profile
        if self.client is not None:
            rpc_options = self._rpc_options(options.pop("payload_bytes", 0))
            self._require_identity(rpc_options.get("identity_key", "x-backend-id"))
            remote = RemoteLoad(
                lambda: self._remote_channel(fleet, client_profile),
                self.history,
                concurrency=concurrency,
                rate=rate,
                deadline_s=deadline_s,
                stalls=self.stalls,
                **rpc_options,
                **options,
            )
            self._loads.append(remote)
            return remote.start()
        load = Load(
            lambda: client_profile.channel(info, aio=True),
            self.history,
            concurrency=concurrency,
            rate=rate,
            deadline_s=deadline_s,
            stalls=self.stalls,
            tag=fleet.http2,
            **self._rpc_options(options.pop("payload_bytes", 0)),
            **options,
        )
        if load.identity_key is None:
            # The server names no backend: gRPC's own per-backend accounting does, per RPC
            # (chaos/observe/attribution.py; an RPC it cannot place exactly stays unattributed).
            load.attribution = Attribution(lambda: load.channelz_id, PublishedIds(fleet))
        self._loads.append(load)
        return load.start()

    def _remote_channel(
        self,
        fleet: Fleet,
        profile: Profile,
        info: dict | None = None,
        client_cert: tuple[str, str] | bool | None = None,
    ) -> RemoteChannel:
        assert self.client is not None and self.client.capabilities is not None
        info = info or fleet.info()
        config = client_config.channel_config(profile, info, self.client.capabilities)
        if client_cert is False:
            config.cert_file = config.key_file = ""
        elif isinstance(client_cert, tuple):
            config.cert_file, config.key_file = client_cert
        return self.client.open_channel(config)

    def _require_identity(self, key: str | None) -> None:
        if key is None:
            # In this process, gRPC's channelz names the backend of an answer that does not;
            # a driver's channel is another process's.
            raise NotApplicable(
                "needs each RPC's backend, and the target's answers do not name it "
                f"([identity] in the target file): {self.client_name} cannot be attributed "
                "from this process's channelz"
            )

    def require_client(
        self, *, implementation: str | None = None, health_check: bool = False, why: str = ""
    ) -> None:
        """Make the scenario *not applicable* to a client under test that is not
        ``implementation`` (a claim about one implementation's behaviour) or that has no
        client-side health checking when ``health_check`` (a claim about what it does);
        ``why`` ends the reason."""
        caps = None if self.client is None else self.client.capabilities
        actual = "grpcio" if caps is None else caps.implementation
        if implementation is not None and actual != implementation:
            raise NotApplicable(
                f"a claim about {implementation}, and the client under test is "
                f"{self.client_name}" + (f": {why}" if why else "")
            )
        if health_check and caps is not None and not caps.health_check:
            raise NotApplicable(
                f"a claim about client-side health checking, which {self.client_name} does "
                "not have" + (f": {why}" if why else "")
            )

    @property
    def client_name(self) -> str:
        """The client under test, as verdicts name it."""
        return "the in-process grpcio client" if self.client is None else self.client.describe

    def _rpc_options(self, payload_bytes: int = 0) -> dict:
        """What the load calls: the built-in Greeter's SayHello (padded to a size of the
        scenario's choosing), or the target's RPC and identity key."""
        if self.target.builtin:
            return {"rpc": GreeterRpc(payload_bytes)}
        # A target's request is what its file says: payload_bytes is a size the scenario
        # would have liked (scenarios that need it declare needs("payload")).
        return {"rpc": self.target.rpc, "identity_key": self.target.identity_header}

    def target_rpc(self):
        """The RPC the load calls (a target's RpcSpec, or the built-in Greeter's), for
        calls a scenario makes itself."""
        return self._rpc_options()["rpc"]

    def attempts(self, client, fleet: Fleet | None = None) -> AttemptSampler:
        """Sample the attempts a client — a Load, or a channel from :meth:`channel` — sends
        to each backend (first attempts and retries, from gRPC's channelz) until the
        scenario ends (chaos/observe/channelz.py)."""
        if isinstance(client, (RemoteChannel, RemoteLoad)):
            assert self.client is not None and self.client.capabilities is not None
            if not self.client.capabilities.subchannels:
                raise NotApplicable(
                    "counts the attempts sent to each backend (gRPC's channelz), which "
                    f"{self.client_name} does not report (the driver protocol's Subchannels)"
                )
            remote = client.channel if isinstance(client, RemoteLoad) else client
            if remote is None:
                raise RuntimeError("that load has not opened its channel")
            sampler = AttemptSampler(
                remote_counts(remote), PublishedIds(fleet or self.fleet)
            ).start()
            self._samplers.append(sampler)
            return sampler
        channelz_id = (
            client.channelz_id if isinstance(client, Load) else self._channel_ids.get(id(client))
        )
        if channelz_id is None:
            raise RuntimeError("that client's channel was not found in channelz")
        # A live view of the fleet: the sampler also names backends added later.
        sampler = AttemptSampler(channelz_id, PublishedIds(fleet or self.fleet)).start()
        self._samplers.append(sampler)
        return sampler

    def warm_up(
        self,
        load: Load,
        backends: list[str] | None = None,
        timeout: float = WARM_UP_TIMEOUT_S,
        profile: Profile | None = None,
    ) -> int:
        """Wait until the client is warm, and observe how it spreads; returns the instant.

        Warm means every backend in ``backends`` (default: all running ones) answered an
        RPC OK since now — or, for a client observed to send everything to one backend,
        that it kept doing so (chaos/observe/client_shape.py). A client known from the preflight
        to use one backend (``shape``) is warm at its first OK RPC.
        """
        since = self.history.now()
        wanted = set(backends or [b.id for b in self.fleet.backends if b.alive()])
        known = self.shape if profile is None or profile is self.profile else None
        if known is not None and not known.spreads:
            load.wait_until(lambda: self.history.served_by(since), timeout, "a first OK RPC")
        else:
            shape = load.wait_until(
                lambda: client_shape.observe(
                    self.history.window(since), since, wanted, self.history.now()
                ),
                timeout,
                f"OK RPCs from each of {sorted(wanted)}",
                progress=lambda: (
                    "OK RPCs from " + (", ".join(sorted(self.history.served_by(since))) or "none")
                ),
            )
            if profile is None or profile is self.profile:
                self.shape = self.shape or shape
        return self.history.mark("warm")

    def require_spread(self, what: str) -> None:
        """Say *not applicable* unless the client under test was observed to spread RPCs
        over the backends (in the run's preflight, or in this scenario's warm-up)."""
        if self.shape is None:
            raise RuntimeError(
                "require_spread() needs an observation: call warm_up() first "
                "(under the plugin the preflight observes the client)"
            )
        if not self.shape.spreads:
            raise NotApplicable(
                f"{what} needs a client that spreads RPCs over the backends; this client "
                f"{self.shape.describe()}. A load-balancing policy such as round_robin "
                f"makes it spread."
            )

    def hold_rpcs_on(
        self,
        backend: str,
        delay_ms: int,
        at_least: int = 1,
        fleet: Fleet | None = None,
        nemesis: Nemesis | None = None,
    ):
        """Make ``backend``'s handlers take ``delay_ms`` and wait until ``at_least`` RPCs are
        asleep in them; returns the injected fault (undone with the rest at the end).

        Backends send their headers with the answer, so a held RPC is not committed: a fault
        that strikes now breaks only RPCs a retry policy may replay — and that a profile
        without one fails every time. ``fleet``/``nemesis`` default to the scenario's.
        """
        fleet, nemesis = fleet or self.fleet, nemesis or self.nemesis
        if not fleet.has_control:
            # A server without the Control service cannot hold its RPCs: the fault strikes
            # whatever is in flight then (the property is the same; only a weak profile's
            # failure is less certain).
            return None
        held = nemesis.inject(SlowHandler(backend, delay_ms=delay_ms))
        started = time.monotonic_ns()
        try:
            wait_until(
                lambda: fleet.stats(backend)["in_flight"] >= at_least,
                5,
                f"{at_least} RPCs held on {backend}",
            )
        except TimeoutError:
            # RPCs reach the victim only if the client sends it some: a client that keeps
            # away from it cannot be staged (a staging verdict, chaos/outcomes.py).
            raise StagingTimeout(
                f"{at_least} RPCs held on {backend}",
                5,
                started,
                time.monotonic_ns(),
                f"{fleet.stats(backend)['in_flight']} in flight on it",
            ) from None
        return held

    def settle(self, load: Load, what: str = "the RPCs sent into the fault have ended") -> int:
        """Wait until every RPC the load has sent so far has ended (answered, replayed after
        the client noticed the fault, or failed at its deadline), and mark the instant.

        30 more RPCs end first, so that RPCs are sent *into* the fault before the count is
        taken. Both waits are bounded by the load's deadline, whatever the profile does."""
        load.wait_for(30, timeout=load.deadline_s + 10)
        if isinstance(load, RemoteLoad):
            # A driver's RPCs get their ids when they are recorded, so the count below does
            # not apply: the driver says which RPCs are still in flight instead.
            now = time.monotonic_ns()
            load.wait_until(
                lambda: load.ended_before_ns >= now,
                load.deadline_s + 10,
                what,
                progress=lambda: (
                    "RPCs started "
                    f"{(now - load.ended_before_ns) / 1e6:.0f} ms before it still in flight"
                ),
            )
            return self.history.mark(what)
        # Ids are drawn in order by every RPC of the history, so every id below this one
        # belongs to an RPC already sent — but for the ids earlier settles drew this way.
        last = self.history.next_id()
        self._settle_ids.append(last)
        sent = last - len(self._settle_ids)
        load.wait_until(
            lambda: sum(r.id < last for r in self.history.rpcs) >= sent,
            load.deadline_s + 10,
            what,
            progress=lambda: f"{sum(r.id < last for r in self.history.rpcs)} of {sent} ended",
        )
        return self.history.mark(what)

    def expect_silent_fault_hidden(
        self, since_ns: int, answers: tuple[str, ...], fault: Event | None = None
    ) -> None:
        """A fault that breaks nothing visibly (a hang, a dead backend behind a proxy that
        keeps the connection open) costs nothing: no RPC since ``since_ns`` waited for its
        deadline, none failed, none took longer than the hang detection bound — counted
        from ``fault``'s in-force instant for RPCs sent before it (held on the victim by
        hold_rpcs_on: the wait until the fault struck was the scenario's)."""
        need = self.requirements
        self.expect(
            checks.errors(self.history, start_ns=since_ns, codes="DEADLINE_EXCEEDED"),
            answers=answers,
        )
        self.expect(
            checks.errors(self.history, start_ns=since_ns, budget=need.error_budget),
            answers=answers,
        )
        self.expect(
            checks.latency(
                self.history,
                percentile=100,
                bound_ms=need.hang_detection_ms,
                start_ns=since_ns,
                counted_from_ns=fault.in_force_ns if fault else None,
            ),
            answers=answers,
        )

    def expect_ejected(
        self,
        load: Load,
        sampler: AttemptSampler,
        backend: str,
        since_ns: int,
        answers: tuple[str, ...] = (),
    ) -> None:
        """``backend`` fails every call from ``since_ns`` on (``sampler`` counting the
        attempts ``load`` sends each backend since before): wait out the ejection bound and
        a quiet period, then judge that the client stopped sending it attempts for
        EJECTION_QUIET_MS within ejection_ms of ``since_ns``."""
        need = self.requirements
        done = since_ns + int((need.ejection_ms + EJECTION_QUIET_MS) * 1e6)
        load.wait_until(
            lambda: self.history.now() >= done,
            need.ejection_ms / 1000 + 5,
            "the ejection bound and a quiet period passed",
        )
        sampler.mark()
        self.expect(
            checks.ejection_time(
                sampler.samples,
                backend,
                after_ns=since_ns,
                bound_ms=need.ejection_ms,
                quiet_ms=EJECTION_QUIET_MS,
            ),
            answers=answers,
        )

    def expect_slowness_stays_on(
        self,
        load: Load,
        fault: Active,
        backend: str,
        delay_ms: float,
        answers: tuple[str, ...] = (),
    ) -> None:
        """One backend made slow by ``fault`` (a latency toxic, a slow handler: the process
        and the network are fine) shows it in its own latency only: once it has answered 40
        RPCs, its median reaches ``delay_ms``, every other backend's p90 stays within
        healthy_latency_ms (both counted from the fault in force: RPCs sent while it was
        being applied may have slipped through), and no RPC fails from the fault's start on
        (one that failed while it was being applied failed because of it). ``answers``:
        the settings that shape whether the slow backend gets RPCs at all."""
        load.wait_until(
            lambda: self.history.count_ok(backend, fault.in_force_ns) >= 40,
            20,
            f"40 RPCs answered by the slow {backend}",
            progress=lambda: f"{self.history.count_ok(backend, fault.in_force_ns)} answered",
            answers=answers,
        )
        need = self.requirements
        self.expect(
            checks.latency(
                self.history,
                backend=backend,
                percentile=50,
                bound_ms=delay_ms,
                at_least=True,
                start_ns=fault.in_force_ns,
            )
        )
        for other in self.fleet.ids:
            if other == backend:
                continue
            self.expect(
                checks.latency(
                    self.history,
                    backend=other,
                    percentile=90,
                    bound_ms=need.healthy_latency_ms,
                    start_ns=fault.in_force_ns,
                ),
            )
        self.expect(
            checks.errors(self.history, start_ns=fault.start_ns, budget=need.error_budget),
        )

    def spread_calls(self, call, attempts: int = 30) -> set[str]:
        """Call ``call`` until every running backend has answered; returns the backends
        seen. A client seen to spread RPCs (the preflight's observation) gets until
        SPREAD_TIMEOUT_S — a new channel's TLS handshakes take longer than 30 calls on a busy
        machine — and a staging verdict if a backend never answers. One that never spreads
        (pick_first) gets ``attempts`` calls and no error: the scenario's checks say what
        that means."""
        wanted = {b.id for b in self.fleet.backends if b.alive()}
        seen: set[str | None] = set()
        spreads = self.shape is not None and self.shape.spreads
        started_ns = time.monotonic_ns()
        deadline_ns = started_ns + int(SPREAD_TIMEOUT_S * 1e9)
        for _ in range(SPREAD_MAX_CALLS if spreads else attempts):
            seen.add(call(tolerate=True))
            if wanted <= seen:
                break
            if time.monotonic_ns() > deadline_ns:
                raise StagingTimeout(
                    "every running backend answering on the new channel",
                    SPREAD_TIMEOUT_S,
                    started_ns,
                    time.monotonic_ns(),
                    f"answered: {', '.join(sorted(b for b in seen if b)) or 'none'}; "
                    f"never: {', '.join(sorted(wanted - seen))}",
                    ("round_robin",),
                )
        seen.discard(None)
        return {b for b in seen if b is not None}

    def wait_until(self, condition, timeout: float, what: str):
        """Wait for a condition with a deadline (never a fixed sleep)."""
        return wait_until(condition, timeout, what)

    def wait_for(self, load: Load, condition, timeout: float, what: str) -> bool:
        """Wait for a condition while ``load`` runs; False at the deadline instead of an
        error, for waits whose outcome the checks that follow judge (a backend that never
        comes back is a failed recovery_time verdict, not a timeout)."""
        try:
            load.wait_until(condition, timeout, what)
            return True
        except TimeoutError:
            return False

    def caller(self, channel):
        """A function doing one RPC of the target on ``channel`` (a sync channel from
        :meth:`channel`), recording it in the history, and returning the backend id that
        answered.

        With ``tolerate=True`` a failed RPC returns None instead of raising. The function's
        ``records`` list holds the Rpc records of its own calls (to tell them from a
        running load's).
        """
        options = self._rpc_options()
        rpc, key = options["rpc"], options.get("identity_key", "x-backend-id")
        if isinstance(channel, RemoteChannel):
            self._require_identity(key)
            return remote_caller(channel, self.history, rpc, key)
        method = channel.unary_unary(rpc.path)
        records: list[Rpc] = []
        channelz_id = self._channel_ids.get(id(channel))
        names = PublishedIds(self.fleet)

        def call(tolerate: bool = False, timeout: float = 5.0) -> str | None:
            rid = self.history.next_id()
            # A server that names no backend: one call at a time, so the backend whose
            # succeeded-count rose by one during it is the one that answered it.
            before = subchannel_counts(channelz_id) if key is None and channelz_id else None
            start = time.monotonic_ns()
            tagged = ((RPC_TAG, str(rid)),) if self.fleet.http2 else None
            future = method.future(rpc.request_bytes(rid), timeout=timeout, metadata=tagged)
            error = future.exception()
            metadata = tuple(future.initial_metadata() or ()) + tuple(
                future.trailing_metadata() or ()
            )
            attributed = None
            if before is not None and error is None and channelz_id:
                attributed = _answered_by(before, subchannel_counts(channelz_id), names)
            if error is None:
                code, details = checked_answer(rpc, rid, future.result())
            else:
                code, details = error.code().name, error.details() or ""
            record = record_rpc(
                self.history, rid, start, time.monotonic_ns(), metadata, key, code, details,
                attributed,
            )  # fmt: skip
            records.append(record)
            if error is not None and not tolerate:
                raise error
            return record.backend if code == "OK" else None

        # The RPCs this caller sent, for the scenario that holds it (a function attribute:
        # the caller stays a plain callable).
        call.records = records  # type: ignore[attr-defined]
        return call

    # ------------------------------------------------------------------ verdicts

    def check(self, verdict: Verdict) -> Verdict:
        """Record a verdict without failing the scenario (for figures in the artifacts)."""
        self.verdicts.append(verdict)
        return verdict

    def expect(
        self,
        verdict: Verdict,
        answers: tuple[str, ...] | list[str] = (),
        requirement: str | None = None,
    ) -> Verdict:
        """Record a verdict; if it did not pass, judge it against the runner's stalls and
        end the scenario: inconclusive (the stall explains the miss) or failed.

        ``answers`` names the client settings that answer this check in this situation
        (keys of chaos/verdicts/advice.py's catalogue): a failure then says what this
        profile has for each, and where the bound comes from — the requirement the check
        was given as its bound (``need.failover_ms`` carries its name), or ``requirement``
        for a bound derived from one.
        """
        __tracebackhide__ = True  # the verdict explains the failure; the frame adds nothing
        if requirement is None:
            requirement = requirement_of(verdict.bound)
        if not verdict.passed and not verdict.not_judged:
            answers = _answers_for_committed(tuple(answers), verdict)
            verdict = judge(verdict, self.stalls)
            verdict = replace(
                verdict,
                advice=advice.explain(self.profile, answers, self.requirements, requirement),
            )
        self.check(verdict)
        if not verdict.passed:
            self.decisive = verdict
        if verdict.inconclusive or verdict.not_judged:
            # Not known either way (the machine stalled, or the history holds too little
            # evidence): rerun, never a pass.
            raise ScenarioInconclusive(f"[profile {self.profile.name}] {verdict}", verdict)
        if not verdict.passed:
            raise ScenarioFailed(f"[profile {self.profile.name}] {verdict}")
        return verdict

    # ------------------------------------------------------------------ the end

    def close(self) -> list[BaseException]:
        """Stop loads, undo faults, reset the fleet, write artifacts; returns clean-up errors."""
        errors: list[BaseException] = []
        for sampler in self._samplers:
            sampler.stop()
        for load in self._loads:
            try:
                load.stop()
            except Exception as exc:
                errors.append(exc)
        for remote in self._remote_channels:
            try:
                remote.close()
            except Exception as exc:
                errors.append(exc)
        errors += self.nemesis.undo_all()
        try:
            self.history.pull()  # the last connection events, before the fleet is reset
        except Exception as exc:
            errors.append(exc)
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
        self.history.to_jsonl(self.artifacts / "history.jsonl", self.clock_anchor)
        (self.artifacts / "verdicts.json").write_text(
            json.dumps([v.to_dict() for v in self.verdicts], indent=2)
        )
        if self._samplers:
            with open(self.artifacts / "attempts.jsonl", "w") as out:
                for number, sampler in enumerate(self._samplers):
                    for s in sampler.samples:
                        out.write(
                            json.dumps(
                                {
                                    "client": number,
                                    "t_ns": s.t_ns,
                                    "backend": s.backend,
                                    "started": s.started,
                                    "succeeded": s.succeeded,
                                    "failed": s.failed,
                                    "state": s.state,
                                }
                            )
                            + "\n"
                        )
        summary = {
            "profile": self.profile.name,
            "reset_ms": self.reset_ms,
            "shape": None if self.shape is None else self.shape.describe(),
            "requirements": self.requirements.to_dict(),
            "clock_anchor": {"monotonic_ns": self.clock_anchor[0], "wall_ns": self.clock_anchor[1]},
            **self.history.summary(),
        }
        (self.artifacts / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


def _answers_for_committed(answers: tuple[str, ...], verdict: Verdict) -> tuple[str, ...]:
    """A failure of committed RPCs (response headers before the answer) is the server's to
    fix: no client setting replays a committed RPC. All of them committed: the server's
    setting alone; some: it first."""
    sealed = (verdict.data or {}).get("committed", 0)
    if not sealed:
        return answers
    rest = tuple(a for a in answers if a != "server.late_headers")
    if sealed >= (verdict.data or {}).get("failed", sealed + 1):
        return ("server.late_headers",)
    return ("server.late_headers", *rest)


class PublishedIds(Mapping):
    """A live view of a fleet: published address -> backend id (backends added later
    included)."""

    def __init__(self, fleet: Fleet):
        self._fleet = fleet

    def _now(self) -> dict[str, str]:
        return {b.published: b.id for b in self._fleet.backends}

    def __getitem__(self, address: str) -> str:
        return self._now()[address]

    def __iter__(self):
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._fleet.backends)


def _answered_by(before: dict, after: dict, names: Mapping[str, str]) -> str | None:
    """The backend whose subchannel counted exactly one more success, if exactly one did."""
    grew = [
        address
        for address, sample in after.items()
        if sample.succeeded - getattr(before.get(address), "succeeded", 0) == 1
    ]
    others = [
        address
        for address, sample in after.items()
        if sample.succeeded != getattr(before.get(address), "succeeded", 0)
    ]
    return names.get(grew[0]) if len(grew) == 1 and len(others) == 1 else None
