"""The grpc-chaos pytest plugin (``pytest11`` entry point ``chaos``).

It registers options, markers and fixtures, and nothing else:

options   --profile NAME|PATH   client profile (default: recommended)
          --fleet-size N        backends per fleet (default: 3)
          --toxiproxy-url URL   use this Toxiproxy server (default: TOXIPROXY_URL, a
                                toxiproxy-server on PATH, or the embedded one)
          --chaos-artifacts DIR where each scenario writes history, verdicts, summary
fixtures  chaos_profile (session), toxiproxy (session), fleet (module, proxied, shared by
          the module's scenarios and reset between them), chaos (function: a Scenario)
markers   one per fault family (kill, health, hang, latency, network, tls, dns, app,
          balance, claims), so ``-m hang`` runs one family; and
          ``detects(profile="check", ...)``: under that profile the scenario must fail, and
          the failing verdict must be that check (tests/test_detection.py holds every
          scenario to its word, so none can quietly stop detecting its fault)

A failed scenario's report carries its verdicts and the path of its artifacts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chaos import profiles
from chaos.scenario import Scenario

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
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "grpc-chaos scenarios")
    group.addoption("--profile", default="recommended",
                    help="client profile: a shipped name (%s) or a JSON file path"
                         % ", ".join(profiles.shipped()))
    group.addoption("--fleet-size", type=int, default=3, help="backends per fleet (3)")
    group.addoption("--toxiproxy-url", default=None,
                    help="an already running Toxiproxy server (default: TOXIPROXY_URL, then "
                         "toxiproxy-server on PATH, then the embedded server)")
    group.addoption("--chaos-artifacts", default="chaos-artifacts",
                    help="directory for each scenario's history, verdicts and summary")


def pytest_configure(config: pytest.Config) -> None:
    for name, what in FAMILIES.items():
        config.addinivalue_line("markers", f"{name}: fault family: {what}")
    config.addinivalue_line(
        "markers", "detects(**profile_to_check): the scenario fails under each named profile, "
                   "with a failed verdict of the named check")
    try:
        config._chaos_profile = profiles.load(config.getoption("--profile"))
    except profiles.ProfileError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("--fleet-size") < 2:
        raise pytest.UsageError("--fleet-size must be at least 2: failover needs a survivor")


def pytest_report_header(config: pytest.Config) -> str:
    profile = config._chaos_profile
    return f"grpc-chaos: profile {profile.name} ({profile.source})"


@pytest.fixture(scope="session")
def chaos_profile(pytestconfig) -> profiles.Profile:
    """The client profile under test (--profile)."""
    return pytestconfig._chaos_profile


@pytest.fixture(scope="session")
def toxiproxy(pytestconfig):
    """A Toxiproxy server for the session: --toxiproxy-url, TOXIPROXY_URL, a binary on PATH,
    or the embedded server (started here and stopped at the end)."""
    from chaos.toxiproxy_control import ToxiproxyServer

    url = pytestconfig.getoption("--toxiproxy-url")
    with ToxiproxyServer("url" if url else None, url=url) as server:
        yield server


@pytest.fixture(scope="module")
def fleet(request, toxiproxy):
    """A proxied fleet shared by the module's scenarios (reset to baseline between them).

    A module can ask for other fleet settings with a module-level ``chaos_fleet`` dict,
    e.g. ``chaos_fleet = {"mtls": True}`` or ``{"max_connection_age_ms": 1000}``.
    """
    from fleet.controller import Fleet

    settings = dict(getattr(request.module, "chaos_fleet", {}))
    settings.setdefault("size", request.config.getoption("--fleet-size"))
    with Fleet(proxies=toxiproxy.control(), **settings) as running:
        yield running


@pytest.fixture
def chaos(request, fleet, chaos_profile):
    """The scenario: fleet, profile client, history, nemesis; cleaned up however it ends."""
    root = Path(request.config.getoption("--chaos-artifacts"))
    scenario = Scenario(fleet, chaos_profile, fleet.proxies,
                        root / chaos_profile.name / _safe(request.node.nodeid))
    request.node._chaos_scenario = scenario
    yield scenario
    errors = scenario.close()
    if errors:
        raise RuntimeError("clean-up after the scenario failed: "
                           + "; ".join(repr(e) for e in errors))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    scenario = getattr(item, "_chaos_scenario", None)
    if scenario is not None and report.when == "call" and report.failed:
        lines = [v.headline for v in scenario.verdicts]
        lines.append(f"artifacts: {scenario.artifacts}")
        report.sections.append(("grpc-chaos", "\n".join(lines)))
    return report


def _safe(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]
