"""The grpc-chaos pytest plugin (``pytest11`` entry point ``chaos``).

It registers options, markers, fixtures and the hooks that turn scenario outcomes into a
report; nothing runs (no header, no thread, no fleet) unless chaos scenarios are collected.

options   --chaos-profile NAME|PATH  client profile (default: recommended), checked
                                     before anything starts (python -m chaos.profiles check)
          --chaos-client NAME|COMMAND  the client under test: inprocess (default: grpcio
                                     in the runner), a shipped driver (python, go, node)
                                     or a driver command of your own (docs/clients.md)
          --chaos-target FILE        the service under test (grpc-chaos.toml, chaos/targets/;
                                     default: grpc-chaos.toml in the working directory, else
                                     the built-in Greeter)
          --chaos-requirements FILE  your bounds (SLOs) over the defaults (chaos/verdicts/requirements.py)
          --chaos-fleet-size N       backends per fleet (default 3, 2..200)
          --chaos-toxiproxy-url URL  a running Toxiproxy (default: TOXIPROXY_URL, a
                                     toxiproxy-server on PATH, or the embedded one)
          --chaos-artifacts DIR      where each scenario writes history, verdicts, summary
          --chaos-reruns N           reruns of a scenario that ends inconclusive (default 2)
fixtures  chaos_profile, chaos_requirements, toxiproxy, chaos_preflight (session); fleet
          (module: shared by the module's scenarios, reset between them); chaos (a Scenario)
markers   one per fault family (``-m hang``); ``detects(profile="check", ...)``: under
          that profile the scenario must fail on that check (tests/test_detection.py);
          ``needs("control", ...)``: what the scenario needs of the target — on a target
          without it the scenario is *not applicable*, with what is missing and how to
          provide it

Outcomes: pass; fail (a verdict did not hold — the report shows it, the settings that
answer it and the artifacts); inconclusive (the bound was missed while the runner stalled,
or a process the verdict depends on waited for a CPU, enough to explain it: rerun up to
--chaos-reruns times, and if it stays so, shown as INCONCLUSIVE and counted as a failure
of the run — never a pass); not applicable (the property presumes what this client does
not do; listed with its reason at the end).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest

from chaos.observe import grpc_log

# Before anything imports grpc: its ERROR log is evidence (chaos/observe/grpc_log.py). The
# imports below (E402) must come after it, because some of them import grpc.
grpc_log.enable()

from chaos import profiles  # noqa: E402
from chaos.outcomes import PreflightFailed  # noqa: E402
from chaos.run import hooks as run_hooks  # noqa: E402
from chaos.run import settings  # noqa: E402
from chaos.run.artifacts import artifact_dir, safe_name  # noqa: E402
from chaos.run.hooks import uses_chaos  # noqa: E402
from chaos.verdicts import requirements as requirements_module  # noqa: E402

FAMILIES = {
    "balance": "how RPCs spread over healthy backends",
    "kill": "backends killed (kill -9) and restarted",
    "health": "health service flips and graceful drains",
    "hang": "hung backends (SIGSTOP, blackholed connections)",
    "latency": "slow networks and slow handlers",
    "network": "Toxiproxy toxics: resets, proxy down, bandwidth, slicing, data limits",
    "tls": "bad, rotated and missing certificates",
    "dns": "DNS records changed and DNS outages",
    "app": "application errors",
    "claims": "statements of the design, reproduced",
    "rollout": "what a release does: rolling restarts, scale in and out, graceful shutdown",
    "http2": "HTTP/2 protocol events: GOAWAY, RST_STREAM, PING ACKs, stream limits, committed RPCs",
}
MIN_FLEET, MAX_FLEET = 2, 200
DEFAULT_RERUNS = 2


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "grpc-chaos scenarios")
    group.addoption(
        "--chaos-profile",
        default="recommended",
        help="client profile: a shipped name (%s) or a JSON file path"
        % ", ".join(profiles.shipped()),
    )
    group.addoption(
        "--chaos-client",
        default=None,
        help="the client under test: inprocess (grpcio in the runner), a shipped driver "
        "(python, go, node) or the command of a driver of your own (docs/clients.md); "
        "default: the target file's [client], else inprocess",
    )
    group.addoption(
        "--chaos-target",
        default=None,
        help="the service under test: a grpc-chaos.toml target file (default: "
        "grpc-chaos.toml in the working directory, else the built-in "
        "Greeter)",
    )
    group.addoption(
        "--chaos-requirements",
        default=None,
        help="a TOML/JSON file of requirements (bounds, SLOs) over the defaults",
    )
    group.addoption(
        "--chaos-fleet-size",
        type=int,
        default=3,
        help=f"backends per fleet, {MIN_FLEET}..{MAX_FLEET} (3)",
    )
    group.addoption(
        "--chaos-http2",
        action="store_true",
        default=False,
        help="put an HTTP/2 point (chaos/http2/) in front of every backend of every "
        "scenario, with no fault: a run that shows the point changes no verdict; every "
        "GOAWAY and connection close is then in the histories (the http2 and balance "
        "families always have it)",
    )
    group.addoption(
        "--chaos-toxiproxy-url",
        default=None,
        help="an already running Toxiproxy server (default: TOXIPROXY_URL, then "
        "toxiproxy-server on PATH, then the embedded server)",
    )
    group.addoption(
        "--chaos-artifacts",
        default="chaos-artifacts",
        help="directory for each scenario's history, verdicts and summary",
    )
    group.addoption(
        "--chaos-reruns",
        type=int,
        default=DEFAULT_RERUNS,
        help="reruns of a scenario whose verdict is inconclusive (2)",
    )
    group.addoption(
        "--chaos-results",
        default=None,
        help="append one JSON line per scenario outcome to this file "
        "(chaos/run/results.py; what the gate reads)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, what in FAMILIES.items():
        config.addinivalue_line("markers", f"{name}: fault family: {what}")
    config.addinivalue_line(
        "markers",
        "detects(**profile_to_check): the scenario fails under each named profile, "
        "with a failed verdict of the named check",
    )
    config.addinivalue_line(
        "markers",
        "needs(*capabilities): what the scenario needs of the target (control, "
        "mtls, variants, payload); not applicable without it",
    )
    size = config.getoption("--chaos-fleet-size")
    if not MIN_FLEET <= size <= MAX_FLEET:
        raise pytest.UsageError(
            f"--chaos-fleet-size {size} is not within {MIN_FLEET}..{MAX_FLEET}"
            f" (failover needs a survivor)"
        )
    if config.getoption("--chaos-reruns") < 0:
        raise pytest.UsageError("--chaos-reruns must be 0 or more")
    try:
        profile = profiles.load(config.getoption("--chaos-profile"))
    except profiles.ProfileError as exc:
        raise pytest.UsageError(str(exc)) from None
    target = _target(config)
    path = config.getoption("--chaos-requirements")
    try:
        required = (
            requirements_module.load(path)
            if path
            else target.requirements or requirements_module.DEFAULTS
        )
    except requirements_module.RequirementsError as exc:
        raise pytest.UsageError(str(exc)) from None
    client = _client(config, target)
    state = run_hooks.RunState()
    config.stash[settings.KEY] = settings.Settings(
        profile, target, required, tuple(FAMILIES), state, client
    )
    config.pluginmanager.register(state, "chaos-run-state")
    config.pluginmanager.register(run_hooks, "chaos-run-hooks")


def _client(config, target):
    """The driver --chaos-client (else the target's [client]) names; None for the
    in-process client. A driver that needs building is built now, before any fleet."""
    from chaos.clients import builtin
    from chaos.clients.driver import DriverError

    try:
        return builtin.resolve(config.getoption("--chaos-client"), target)
    except DriverError as exc:
        raise pytest.UsageError(str(exc)) from None


def _target(config):
    """The service under test: --chaos-target, else grpc-chaos.toml in the working
    directory, else the built-in Greeter. Loaded lazily: a run without chaos scenarios
    never compiles a proto."""
    from chaos import targets as target

    path = config.getoption("--chaos-target") or target.find(Path.cwd())
    try:
        return target.load(path) if path else target.builtin()
    except target.TargetError as exc:
        raise pytest.UsageError(str(exc)) from None


# What only the built-in Greeter can do (a target's server runs as its command says).
BUILTIN_ONLY = {
    "variants": "needs a server started in another configuration (without its health "
    "service, with a max connection age of the scenario's choosing): only the "
    "built-in Greeter target can be",
    "payload": "needs requests of a chosen size (the built-in Greeter pads its name field); "
    "a target's request is what its file says",
}


def _needs(item, target) -> str | None:
    """Why the scenario does not apply to the target, or None when it does."""
    if target.builtin:
        return None  # the built-in Greeter can be started any way a scenario asks
    for mark in item.iter_markers("needs"):
        for capability in mark.args:
            if capability in BUILTIN_ONLY:
                if not target.builtin:
                    return BUILTIN_ONLY[capability]
            elif target.missing(capability):
                return target.missing(capability)
    return None


def _check_answers(items) -> None:
    """Every ``answers=`` key a scenario writes names a setting of the advice catalogue:
    a typo is a usage error now, not a KeyError the day its verdict fails."""
    from chaos.verdicts.advice import unknown_answers

    seen: set[int] = set()
    problems: list[str] = []
    for item in items:
        function = getattr(item, "function", None)
        if function is None or id(function) in seen or not uses_chaos(item):
            continue
        seen.add(id(function))
        problems += unknown_answers(function)
    if problems:
        raise pytest.UsageError("\n".join(problems))


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(uses_chaos(item) for item in session.items):
        return
    _check_answers(session.items)
    state = settings.of(session.config).state
    state.active = True
    from chaos.observe.starvation import monitor

    # Measured throughout, from before the first fleet starts: the runner's stalls and the
    # CPU waits of the runner and of every fleet this process runs (chaos/observe/starvation.py).
    state.stalls = monitor()
    profile = settings.of(session.config).profile
    required = settings.of(session.config).requirements
    target = settings.of(session.config).target
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"grpc-chaos: target {target.name} ({target.source}); profile "
            f"{profile.name} ({profile.source}); requirements: "
            f"{required.source}; fleet size "
            f"{session.config.getoption('--chaos-fleet-size')}"
        )


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def chaos_profile(pytestconfig) -> profiles.Profile:
    """The client profile under test (--chaos-profile)."""
    return settings.of(pytestconfig).profile


@pytest.fixture(scope="session")
def chaos_requirements(pytestconfig):
    """The requirements (bounds) scenarios hold the client to (--chaos-requirements)."""
    return settings.of(pytestconfig).requirements


@pytest.fixture(scope="session")
def chaos_target(pytestconfig):
    """The service under test (--chaos-target, grpc-chaos.toml here, or the built-in)."""
    return settings.of(pytestconfig).target


@pytest.fixture(scope="session")
def toxiproxy(pytestconfig):
    """A Toxiproxy server for the session: --chaos-toxiproxy-url, TOXIPROXY_URL, a binary
    on PATH, or the embedded server (started here and stopped at the end)."""
    import tempfile

    from chaos.observe.proxy_lag import LagLog
    from chaos.toxiproxy_server.control import ToxiproxyServer
    from fleet.procs import reaper

    url = pytestconfig.getoption("--chaos-toxiproxy-url")
    stalls = settings.of(pytestconfig).state.stalls
    server = ToxiproxyServer("url" if url else None, url=url)
    with tempfile.TemporaryDirectory(prefix="grpc-chaos-proxy-") as scratch:
        # Removed by the reaper if this process is killed before the block ends.
        reaper.register_path(scratch)
        lag_path = Path(scratch) / "lag.log"
        if server.kind == "embedded":
            # Its event loop's lateness delays every RPC (chaos/observe/proxy_lag.py).
            server.args += ("--lag-log", str(lag_path))
        with server:
            # Every RPC goes through it: a verdict depends on its getting a CPU (one it did
            # not start, given by URL, runs elsewhere and is not seen).
            watched = []
            if server.pid and stalls is not None:
                who = f"toxiproxy (pid {server.pid})"
                stalls.watch(who, server.pid)
                watched.append(LagLog(lag_path, f"{who} event loop"))
                stalls.add(watched[0])
            try:
                yield server
            finally:
                if server.pid and stalls is not None:
                    stalls.unwatch(server.pid)
                    for lag in watched:
                        stalls.remove(lag)
    reaper.unregister_path(scratch)


@pytest.fixture(scope="session")
def chaos_client(pytestconfig):
    """The client driver under test for the session (--chaos-client), started once; None
    for the in-process client. What it cannot honour of the profile is said first."""
    from chaos.clients import config as client_config
    from chaos.clients.driver import Driver

    run = settings.of(pytestconfig)
    if run.client is None:
        yield None
        return
    stalls = run.state.stalls
    command = run.client
    with Driver(command.argv, command.name, env=command.env, cwd=command.cwd) as driver:
        assert driver.capabilities is not None and driver.process is not None
        caps = driver.capabilities
        run.state.client = {
            "name": driver.name,
            "implementation": caps.implementation,
            "version": caps.version,
        }
        run.state.unhonoured = client_config.unhonoured(run.profile, driver.capabilities)
        lines = [f"grpc-chaos: client under test: {driver.describe}"]
        lines += [f"grpc-chaos:   not honoured: {line}" for line in run.state.unhonoured]
        lines += [f"grpc-chaos:   {caps.implementation}: {note}" for note in caps.notes]
        _say(pytestconfig, lines)
        if stalls is not None:
            # Every RPC starts and ends in it: a verdict depends on its getting a CPU.
            stalls.watch(
                f"client driver {driver.name} (pid {driver.process.pid})", driver.process.pid
            )
        try:
            yield driver
        finally:
            if stalls is not None and driver.process is not None:
                stalls.unwatch(driver.process.pid)


def _say(config, lines: list[str]) -> None:
    """Lines on the terminal now, past pytest's output capture (a fixture's output is
    captured and shown only with a failure)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        reporter.ensure_newline()
        for line in lines:
            reporter.write_line(line)


@pytest.fixture(scope="session")
def chaos_preflight(request, toxiproxy, chaos_profile, chaos_target, chaos_client):
    """Once per session: the client under test against a fleet of its own (chaos/run/preflight.py).

    A failed preflight is one error (the first scenario's setup) and stops the run; the
    scenarios after it are not run."""
    from chaos.run import preflight
    from fleet.controller import Fleet

    state = settings.of(request.config).state
    size = request.config.getoption("--chaos-fleet-size")
    try:
        with Fleet(size, proxies=toxiproxy.control(), service=chaos_target) as fleet:
            state.preflight = preflight.run(
                chaos_profile, fleet, stalls=state.stalls, target=chaos_target, client=chaos_client
            )
    except Exception as error:  # the target or the client did not start: one verdict
        from chaos.clients.driver import DriverError

        cause = error if isinstance(error, DriverError) else error.__cause__
        message = (
            f"the client under test could not start: {cause}"
            if isinstance(cause, DriverError)
            else f"the fleet of target {chaos_target.name} did not start: {error}"
        )
        state.preflight = preflight.Preflight(False, None, message)
    return state.preflight


@pytest.fixture(scope="module")
def fleet(request, toxiproxy, chaos_preflight, chaos_target):
    """A proxied fleet of the target, shared by the module's scenarios (reset to baseline
    between them).

    A module can ask for other settings of the built-in Greeter's servers with a
    module-level ``chaos_fleet`` dict, e.g. ``{"max_connection_age_ms": 500}``: a target's
    server runs as its own command says (its own max connection age, or none — which is
    what is under test then), so those keys apply to the built-in Greeter only.
    """
    from fleet.controller import Fleet

    _require_preflight(request, chaos_preflight)
    settings = dict(getattr(request.module, "chaos_fleet", {}))
    if not chaos_target.builtin:
        settings = {
            k: v for k, v in settings.items() if k not in ("health", "max_connection_age_ms")
        }
    settings.setdefault("size", request.config.getoption("--chaos-fleet-size"))
    if request.config.getoption("--chaos-http2"):
        settings["http2"] = True
    with Fleet(proxies=toxiproxy.control(), service=chaos_target, **settings) as running:
        yield running


def _require_preflight(request, result) -> None:
    if result.passed:
        return
    state = settings.of(request.config).state
    if not state.preflight_reported:
        state.preflight_reported = True
        request.session.shouldfail = "grpc-chaos preflight failed (see the first error)"
        raise PreflightFailed(
            f"preflight: [profile {settings.of(request.config).profile.name}] {result.message}"
        )
    pytest.skip("not run: the preflight failed (see the first error)")


@pytest.fixture
def chaos(
    request, fleet, chaos_profile, chaos_requirements, chaos_preflight, chaos_target, chaos_client
):
    """The scenario: fleet, profile client, history, nemesis; cleaned up however it ends."""
    from chaos.outcomes import NotApplicable
    from chaos.scenario import Scenario

    missing = _needs(request.node, chaos_target)
    if missing:
        raise NotApplicable(missing)
    state = settings.of(request.config).state
    attempt = getattr(request.node, "_chaos_attempt", 1)
    root = Path(request.config.getoption("--chaos-artifacts"))
    leaf = safe_name(request.node.nodeid) + (f"-attempt{attempt}" if attempt > 1 else "")
    scenario = Scenario(
        fleet,
        chaos_profile,
        fleet.proxies,
        artifact_dir(root, safe_name(chaos_profile.name), leaf),
        requirements=chaos_requirements,
        stalls=state.stalls,
        shape=chaos_preflight.shape,
        target=chaos_target,
        client=chaos_client,
    )
    request.node._chaos_scenario = scenario
    yield scenario
    errors = scenario.close()
    _write_stalls(scenario, state.stalls)
    if errors:
        raise RuntimeError(
            "clean-up after the scenario failed: " + "; ".join(repr(e) for e in errors)
        )


def _write_stalls(scenario, stalls) -> None:
    """The runner's stalls and the CPU waits of the fleet measured while the scenario ran
    (stalls.jsonl beside history.jsonl, on its clock): what its verdicts were judged
    against, for reading a red or an inconclusive afterwards."""
    if stalls is None or not scenario.artifacts.is_dir():
        return
    with open(scenario.artifacts / "stalls.jsonl", "w") as out:
        out.writelines(
            json.dumps(
                {"start_ns": s.start_ns, "end_ns": s.end_ns, "who": s.who, "source": s.source}
            )
            + "\n"
            for s in stalls.stalls(scenario.clock_anchor[0])
        )
