"""The plugin's run hooks: reruns of inconclusive scenarios, what each report carries, and
the end-of-run summary (chaos/plugin.py registers this module; options, fixtures and markers
live there).

    pytest_runtest_protocol   a chaos scenario runs again (fresh fixtures, same fleet) while
                              it ends inconclusive, at most --chaos-reruns times; one result
                              record per scenario (--chaos-results)
    pytest_runtest_makereport reports carry the verdicts, inconclusive and not-applicable
                              reasons (they survive pytest-xdist)
    RunState                  collects them where the summary is written (the xdist
                              controller too): not run / not applicable, inconclusive, reruns
"""

from __future__ import annotations

import time

import pytest
from _pytest.runner import call_and_report

from chaos.outcomes import NOT_APPLICABLE, ScenarioInconclusive

CHAOS_FIXTURES = {"chaos", "fleet", "chaos_preflight"}


def uses_chaos(item) -> bool:
    """Whether the test uses this plugin's fixtures (a project's own ``fleet`` fixture of
    the same name does not count)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in CHAOS_FIXTURES & set(item.fixturenames):
        definitions = info.name2fixturedefs.get(name) or ()
        if definitions and getattr(definitions[-1].func, "__module__", "") == "chaos.plugin":
            return True
    return False



class RunState:
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



# ---------------------------------------------------------------------------- reruns


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Run a chaos scenario; rerun it (fresh fixtures, same fleet) while it ends
    inconclusive, at most --chaos-reruns times. Other tests run as usual."""
    if not uses_chaos(item):
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
    if not uses_chaos(item):
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

