"""The grpc-chaos pytest plugin (``pytest11`` entry point ``chaos``).

It registers options, markers, fixtures and the hooks that turn scenario outcomes into a
report; nothing runs (no header, no thread, no fleet) unless chaos scenarios are collected.

options   --chaos-profile NAME|PATH  client profile (default: recommended), checked
                                     before anything starts (python -m chaos.profiles check)
          --chaos-target FILE        the service under test (grpc-chaos.toml, chaos/target/;
                                     default: grpc-chaos.toml in the working directory, else
                                     the built-in Greeter)
          --chaos-requirements FILE  your bounds (SLOs) over the defaults (chaos/requirements.py)
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
answer it and the artifacts); inconclusive (the bound was missed while the runner itself
stalled enough to explain it: rerun up to --chaos-reruns times, and if it stays so, shown
as INCONCLUSIVE and counted as a failure of the run — never a pass); not applicable (the
property presumes what this client does not do; listed with its reason at the end).
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from _pytest.runner import call_and_report

from chaos import profiles, requirements as requirements_module
from chaos.outcomes import NOT_APPLICABLE, PreflightFailed, ScenarioInconclusive

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
}
CHAOS_FIXTURES = {"chaos", "fleet", "chaos_preflight"}
MIN_FLEET, MAX_FLEET = 2, 200
DEFAULT_RERUNS = 2


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "grpc-chaos scenarios")
    group.addoption("--chaos-profile", default="recommended",
                    help="client profile: a shipped name (%s) or a JSON file path"
                         % ", ".join(profiles.shipped()))
    group.addoption("--chaos-target", default=None,
                    help="the service under test: a grpc-chaos.toml target file (default: "
                         "grpc-chaos.toml in the working directory, else the built-in "
                         "Greeter)")
    group.addoption("--chaos-requirements", default=None,
                    help="a TOML/JSON file of requirements (bounds, SLOs) over the defaults")
    group.addoption("--chaos-fleet-size", type=int, default=3,
                    help=f"backends per fleet, {MIN_FLEET}..{MAX_FLEET} (3)")
    group.addoption("--chaos-toxiproxy-url", default=None,
                    help="an already running Toxiproxy server (default: TOXIPROXY_URL, then "
                         "toxiproxy-server on PATH, then the embedded server)")
    group.addoption("--chaos-artifacts", default="chaos-artifacts",
                    help="directory for each scenario's history, verdicts and summary")
    group.addoption("--chaos-reruns", type=int, default=DEFAULT_RERUNS,
                    help="reruns of a scenario whose verdict is inconclusive (2)")
    group.addoption("--chaos-results", default=None,
                    help="append one JSON line per scenario outcome to this file "
                         "(chaos/results.py; what the gate reads)")


def pytest_configure(config: pytest.Config) -> None:
    for name, what in FAMILIES.items():
        config.addinivalue_line("markers", f"{name}: fault family: {what}")
    config.addinivalue_line(
        "markers", "detects(**profile_to_check): the scenario fails under each named profile, "
                   "with a failed verdict of the named check")
    config.addinivalue_line(
        "markers", "needs(*capabilities): what the scenario needs of the target (control, "
                   "mtls, variants, payload); not applicable without it")
    size = config.getoption("--chaos-fleet-size")
    if not MIN_FLEET <= size <= MAX_FLEET:
        raise pytest.UsageError(f"--chaos-fleet-size {size} is not within {MIN_FLEET}..{MAX_FLEET}"
                                f" (failover needs a survivor)")
    if config.getoption("--chaos-reruns") < 0:
        raise pytest.UsageError("--chaos-reruns must be 0 or more")
    try:
        config._chaos_profile = profiles.load(config.getoption("--chaos-profile"))
    except profiles.ProfileError as exc:
        raise pytest.UsageError(str(exc)) from None
    config._chaos_target = _target(config)
    path = config.getoption("--chaos-requirements")
    try:
        config._chaos_requirements = (requirements_module.load(path) if path
                                      else config._chaos_target.requirements
                                      or requirements_module.DEFAULTS)
    except requirements_module.RequirementsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config._chaos_families = tuple(FAMILIES)
    config._chaos_state = _RunState()
    config.pluginmanager.register(config._chaos_state, "chaos-run-state")


def _target(config):
    """The service under test: --chaos-target, else grpc-chaos.toml in the working
    directory, else the built-in Greeter. Loaded lazily: a run without chaos scenarios
    never compiles a proto."""
    from chaos import target

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


class _RunState:
    """What the plugin learns during a run, for the end-of-run summary. A plugin object:
    under pytest-xdist its report hook runs in the controller, where the summary is."""

    def __init__(self):
        self.active = False
        self.stalls = None
        self.preflight = None
        self.preflight_reported = False
        self.not_run: list[tuple[str, str]] = []
        self.inconclusive: list[tuple[str, str]] = []
        self.reruns: list[tuple[str, int]] = []

    def pytest_runtest_logreport(self, report) -> None:
        if not getattr(report, "chaos", False):
            return
        self.active = True
        if getattr(report, "chaos_inconclusive", False) and report.when == "call":
            self.inconclusive.append((report.nodeid, report.chaos_reason))
        elif report.skipped and getattr(report, "chaos_reason", None) is not None:
            self.not_run.append((report.nodeid, report.chaos_reason))
        if report.when == "teardown" and getattr(report, "chaos_attempts", 1) > 1:
            self.reruns.append((report.nodeid, report.chaos_attempts - 1))


def _uses_chaos(item) -> bool:
    """Whether the test uses this plugin's fixtures (a project's own ``fleet`` fixture of
    the same name does not count)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in CHAOS_FIXTURES & set(item.fixturenames):
        definitions = info.name2fixturedefs.get(name) or ()
        if definitions and getattr(definitions[-1].func, "__module__", "") == __name__:
            return True
    return False


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(_uses_chaos(item) for item in session.items):
        return
    state = session.config._chaos_state
    state.active = True
    from chaos.stall import monitor

    state.stalls = monitor()  # measured throughout, from before the first fleet starts
    profile = session.config._chaos_profile
    required = session.config._chaos_requirements
    target = session.config._chaos_target
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"grpc-chaos: target {target.name} ({target.source}); profile "
                            f"{profile.name} ({profile.source}); requirements: "
                            f"{required.source}; fleet size "
                            f"{session.config.getoption('--chaos-fleet-size')}")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def chaos_profile(pytestconfig) -> profiles.Profile:
    """The client profile under test (--chaos-profile)."""
    return pytestconfig._chaos_profile


@pytest.fixture(scope="session")
def chaos_requirements(pytestconfig):
    """The requirements (bounds) scenarios hold the client to (--chaos-requirements)."""
    return pytestconfig._chaos_requirements


@pytest.fixture(scope="session")
def chaos_target(pytestconfig):
    """The service under test (--chaos-target, grpc-chaos.toml here, or the built-in)."""
    return pytestconfig._chaos_target


@pytest.fixture(scope="session")
def toxiproxy(pytestconfig):
    """A Toxiproxy server for the session: --chaos-toxiproxy-url, TOXIPROXY_URL, a binary
    on PATH, or the embedded server (started here and stopped at the end)."""
    from chaos.toxiproxy_control import ToxiproxyServer

    url = pytestconfig.getoption("--chaos-toxiproxy-url")
    with ToxiproxyServer("url" if url else None, url=url) as server:
        yield server


@pytest.fixture(scope="session")
def chaos_preflight(request, toxiproxy, chaos_profile, chaos_target):
    """Once per session: the client under test against a fleet of its own (chaos/preflight.py).

    A failed preflight is one error (the first scenario's setup) and stops the run; the
    scenarios after it are not run."""
    from chaos import preflight
    from fleet.controller import Fleet

    state = request.config._chaos_state
    size = request.config.getoption("--chaos-fleet-size")
    try:
        with Fleet(size, proxies=toxiproxy.control(), service=chaos_target) as fleet:
            state.preflight = preflight.run(chaos_profile, fleet, stalls=state.stalls,
                                            target=chaos_target)
    except Exception as error:  # the target did not start: one verdict, as below
        state.preflight = preflight.Preflight(
            False, None, f"the fleet of target {chaos_target.name} did not start: {error}")
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
        settings = {k: v for k, v in settings.items()
                    if k not in ("health", "max_connection_age_ms")}
    settings.setdefault("size", request.config.getoption("--chaos-fleet-size"))
    with Fleet(proxies=toxiproxy.control(), service=chaos_target, **settings) as running:
        yield running


def _require_preflight(request, result) -> None:
    if result.passed:
        return
    state = request.config._chaos_state
    if not state.preflight_reported:
        state.preflight_reported = True
        request.session.shouldfail = "grpc-chaos preflight failed (see the first error)"
        raise PreflightFailed(f"preflight: [profile {request.config._chaos_profile.name}] "
                              f"{result.message}")
    pytest.skip("not run: the preflight failed (see the first error)")


@pytest.fixture
def chaos(request, fleet, chaos_profile, chaos_requirements, chaos_preflight, chaos_target):
    """The scenario: fleet, profile client, history, nemesis; cleaned up however it ends."""
    from chaos.outcomes import NotApplicable
    from chaos.scenario import Scenario

    missing = _needs(request.node, chaos_target)
    if missing:
        raise NotApplicable(missing)
    state = request.config._chaos_state
    attempt = getattr(request.node, "_chaos_attempt", 1)
    root = Path(request.config.getoption("--chaos-artifacts"))
    leaf = safe_name(request.node.nodeid) + (f"-attempt{attempt}" if attempt > 1 else "")
    scenario = Scenario(fleet, chaos_profile, fleet.proxies,
                        artifact_dir(root, safe_name(chaos_profile.name), leaf),
                        requirements=chaos_requirements, stalls=state.stalls,
                        shape=chaos_preflight.shape, target=chaos_target)
    request.node._chaos_scenario = scenario
    yield scenario
    errors = scenario.close()
    if errors:
        raise RuntimeError("clean-up after the scenario failed: "
                           + "; ".join(repr(e) for e in errors))


# ---------------------------------------------------------------------------- reruns


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Run a chaos scenario; rerun it (fresh fixtures, same fleet) while it ends
    inconclusive, at most --chaos-reruns times. Other tests run as usual."""
    if not _uses_chaos(item):
        return None
    limit = item.config.getoption("--chaos-reruns")
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    started_wall, started = time.time(), time.monotonic()
    for attempt in range(1, limit + 2):
        item._chaos_attempt = attempt
        last = attempt == limit + 1 or item.session.shouldfail or item.session.shouldstop
        reports = _run_once(item, nextitem, last=bool(last))
        if not any(getattr(r, "chaos_inconclusive", False) for r in reports) or last:
            break
        _write(item, f"RERUN {item.nodeid}: inconclusive ({_first_line(reports)}); attempt "
                     f"{attempt + 1} of {limit + 1}")
    results = item.config.getoption("--chaos-results")
    if results:
        from chaos import results as results_module

        results_module.append(results, results_module.record(
            item, reports, getattr(item, "_chaos_scenario", None), started_wall,
            time.monotonic() - started, attempt))
    for report in reports:
        report.chaos_attempts = attempt
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _run_once(item, nextitem, last: bool):
    # As _pytest.runner.runtestprotocol, except that when the scenario runs again the
    # teardown stops at its parent: the function's fixtures (the Scenario) are torn down,
    # the module's (the fleet) kept. (Tearing down "towards" the item itself would tear
    # down nothing, and its setup would then be skipped.)
    if hasattr(item, "_request") and not item._request:
        item._initrequest()
    reports = [call_and_report(item, "setup", log=False)]
    if reports[0].passed:
        reports.append(call_and_report(item, "call", log=False))
    again = not last and any(getattr(r, "chaos_inconclusive", False) for r in reports)
    if item.session.shouldfail or item.session.shouldstop:
        nextitem, again = None, False
    reports.append(call_and_report(item, "teardown", log=False,
                                   nextitem=item.parent if again else nextitem))
    item._request = False
    item.funcargs = None
    return reports


def _first_line(reports) -> str:
    for report in reports:
        if getattr(report, "chaos_inconclusive", False):
            return report.chaos_reason
    return ""


def _write(item, line: str) -> None:
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


# ---------------------------------------------------------------------------- reports


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if not _uses_chaos(item):
        return report
    report.chaos = True
    if call.excinfo is not None and call.excinfo.errisinstance(ScenarioInconclusive):
        report.chaos_inconclusive = True
        report.chaos_reason = str(call.excinfo.value).splitlines()[0]
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        at = reason.find(NOT_APPLICABLE)
        report.chaos_reason = reason[at:] if at >= 0 else reason.removeprefix("Skipped: ")
    scenario = getattr(item, "_chaos_scenario", None)
    if scenario is not None and report.when == "call":
        report.user_properties.append(("chaos_profile", scenario.profile.name))
        for verdict in scenario.verdicts:
            report.user_properties.append(
                (f"chaos_{verdict.name}", f"{verdict.outcome} {verdict.figure} {verdict.unit} "
                                          f"bound {verdict.comparison} {verdict.bound}"))
        if report.failed:
            lines = [v.headline for v in scenario.verdicts if not v.passed]
            lines.append(f"artifacts: {scenario.artifacts}")
            report.sections.append(("grpc-chaos", "\n".join(lines)))
    return report


def pytest_report_teststatus(report, config):
    if getattr(report, "chaos_inconclusive", False) and report.when == "call":
        return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    state = getattr(config, "_chaos_state", None)
    if state is None or not state.active:
        return
    write = terminalreporter.write_line
    if state.preflight is not None and not state.preflight.passed:
        terminalreporter.section("grpc-chaos: preflight failed", sep="=", red=True)
        write(state.preflight.message)
    if state.not_run:
        terminalreporter.section("grpc-chaos: scenarios that did not run", sep="=")
        for nodeid, reason in state.not_run:
            write(f"{'NOT APPLICABLE' if reason.startswith(NOT_APPLICABLE) else 'SKIPPED'} "
                  f"{nodeid}: {reason.removeprefix(NOT_APPLICABLE)}")
    if state.inconclusive:
        terminalreporter.section("grpc-chaos: inconclusive (the runner stalled)", sep="=",
                                 yellow=True)
        for nodeid, reason in state.inconclusive:
            write(f"INCONCLUSIVE {nodeid}: {reason}")
        write("An inconclusive scenario is not a pass: the machine was too busy to judge it. "
              "Rerun on a quieter machine, or raise --chaos-reruns.")
    if state.reruns:
        write("grpc-chaos: scenarios rerun after an inconclusive verdict: "
              + ", ".join(f"{n.split('::')[-1]} ({a}x)" for n, a in state.reruns))
    if state.stalls is not None:
        worst = state.stalls.worst(state.stalls.since_ns)
        write(f"grpc-chaos: runner stalls this run: {len(state.stalls.stalls(state.stalls.since_ns))}"
              f" over 3 ms, longest {worst.ms:.0f} ms" if worst else
              "grpc-chaos: runner stalls this run: none over 3 ms")


# ---------------------------------------------------------------------------- artifacts


def safe_name(text: str, limit: int = 120) -> str:
    """A file name made from any text: letters, digits, '_', '.', '-' only, never '.' or
    '..' or a leading dot, at most ``limit`` characters, and a short hash of the original
    when anything was changed (so two names that differ only in unsafe characters stay
    apart)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")[:limit] or "_"
    if cleaned != text:
        cleaned = f"{cleaned[:limit - 9]}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return cleaned


def artifact_dir(root: Path, *parts: str) -> Path:
    """``root``/parts..., refusing any path that would end outside ``root``."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"artifact path {path} would be outside {base}")
    return path
