"""The plugin's run hooks: reruns of inconclusive scenarios, what each report carries, and
the end-of-run summary (chaos/run/plugin.py registers this module; options, fixtures and markers
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

from chaos import checks
from chaos.outcomes import NOT_APPLICABLE, ScenarioFailed, ScenarioInconclusive, StagingTimeout
from chaos.run import settings

CHAOS_FIXTURES = {"chaos", "fleet", "chaos_preflight"}


def uses_chaos(item) -> bool:
    """Whether the test uses this plugin's fixtures (a project's own ``fleet`` fixture of
    the same name does not count)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in CHAOS_FIXTURES & set(item.fixturenames):
        definitions = info.name2fixturedefs.get(name) or ()
        if definitions and getattr(definitions[-1].func, "__module__", "") == "chaos.run.plugin":
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
        self.reruns: list[tuple[str, int, list[str]]] = []  # nodeid, reruns, why each
        self.worker_stalls: list[tuple[str, list[str]]] = []  # pytest-xdist worker, summary
        # The client driver under test as it described itself: name, implementation, version.
        self.client: dict | None = None
        self.unhonoured: list[str] = []  # what of the profile it cannot honour

    def pytest_runtest_logreport(self, report) -> None:
        if not getattr(report, "chaos", False):
            return
        self.active = True
        if getattr(report, "chaos_inconclusive", False) and report.when == "call":
            self.inconclusive.append((report.nodeid, report.chaos_reason))
        elif report.skipped and getattr(report, "chaos_reason", None) is not None:
            self.not_run.append((report.nodeid, report.chaos_reason))
        if report.when == "teardown" and getattr(report, "chaos_attempts", 1) > 1:
            self.reruns.append(
                (
                    report.nodeid,
                    report.chaos_attempts - 1,
                    getattr(report, "chaos_rerun_reasons", []),
                )
            )

    def pytest_sessionfinish(self, session) -> None:
        # A pytest-xdist worker: its stalls are measured here, the summary is written by
        # the controller (workeroutput travels with the worker's end).
        output = getattr(session.config, "workeroutput", None)
        if output is not None and self.stalls is not None:
            output["chaos_stalls"] = _stall_summary(self.stalls)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        lines = getattr(node, "workeroutput", {}).get("chaos_stalls")
        if lines:
            self.worker_stalls.append((node.gateway.id, lines))


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
    why: list[str] = []  # each rerun's reason: under pytest-xdist only the summary shows it
    for attempt in range(1, limit + 2):
        item._chaos_attempt = attempt
        last = attempt == limit + 1 or item.session.shouldfail or item.session.shouldstop
        reports = _run_once(item, nextitem, last=bool(last))
        if not any(getattr(r, "chaos_inconclusive", False) for r in reports) or last:
            break
        why.append(_first_line(reports))
        _write(
            item,
            f"RERUN {item.nodeid}: inconclusive ({why[-1]}); attempt {attempt + 1} of {limit + 1}",
        )
    results = item.config.getoption("--chaos-results")
    if results:
        from chaos.run import results as results_module

        results_module.append(
            results,
            results_module.record(
                item,
                reports,
                getattr(item, "_chaos_scenario", None),
                started_wall,
                time.monotonic() - started,
                attempt,
            ),
        )
    for report in reports:
        report.chaos_attempts = attempt
        report.chaos_rerun_reasons = why
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
    reports.append(
        call_and_report(item, "teardown", log=False, nextitem=item.parent if again else nextitem)
    )
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


# ---------------------------------------------------------------------------- staging


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """A scenario that could not stage its situation because of what the client did (a
    StagingTimeout let through) fails with a *staging* verdict — what was awaited, how far
    it got, the timeline, the settings that answer it — judged like any other (a runner
    stall over the wait makes it inconclusive), never with a bare TimeoutError."""
    try:
        return (yield)
    except StagingTimeout as timeout:
        scenario = getattr(pyfuncitem, "_chaos_scenario", None)
        if scenario is None:
            raise
        __tracebackhide__ = True
        try:
            scenario.expect(
                checks.staging(
                    scenario.history,
                    timeout.what,
                    timeout.start_ns,
                    timeout.end_ns,
                    timeout.progress,
                ),
                answers=timeout.answers or STAGING_ANSWERS,
            )
        except (ScenarioFailed, ScenarioInconclusive) as outcome:
            raise outcome from None  # the verdict says it all; the timeout adds nothing
        raise


# The client settings that decide how fast a client brings a situation about, named when a
# wait did not say which answer it.
STAGING_ANSWERS = (
    "retryPolicy",
    "outlierDetection",
    "healthCheckConfig",
    "grpc.keepalive_time_ms",
    "grpc.max_reconnect_backoff_ms",
)


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
                (
                    f"chaos_{verdict.name}",
                    f"{verdict.outcome} {verdict.figure} {verdict.unit} "
                    f"bound {verdict.comparison} {verdict.bound}",
                )
            )
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
    run = settings.get(config)
    state = None if run is None else run.state
    if state is None or not state.active:
        return
    write = terminalreporter.write_line
    if state.preflight is not None and not state.preflight.passed:
        terminalreporter.section("grpc-chaos: preflight failed", sep="=", red=True)
        write(state.preflight.message)
    if state.not_run:
        terminalreporter.section("grpc-chaos: scenarios that did not run", sep="=")
        for nodeid, reason in state.not_run:
            write(
                f"{'NOT APPLICABLE' if reason.startswith(NOT_APPLICABLE) else 'SKIPPED'} "
                f"{nodeid}: {reason.removeprefix(NOT_APPLICABLE)}"
            )
    if state.inconclusive:
        terminalreporter.section(
            "grpc-chaos: inconclusive (the machine stalled, or too little evidence to judge)",
            sep="=",
            yellow=True,
        )
        for nodeid, reason in state.inconclusive:
            write(f"INCONCLUSIVE {nodeid}: {reason}")
        write(
            "An inconclusive scenario is not a pass: the machine was too busy to judge it, "
            "or the history held too little evidence (NOT JUDGED). Rerun on a quieter "
            "machine, or raise --chaos-reruns."
        )
    if state.reruns:
        write(
            "grpc-chaos: scenarios rerun after an inconclusive verdict: "
            + ", ".join(f"{n.split('::')[-1]} ({a}x)" for n, a, _ in state.reruns)
        )
        for nodeid, _, reasons in state.reruns:
            for reason in reasons:
                write(f"  {nodeid}: {reason}")
    if state.stalls is not None:
        for line in _stall_summary(state.stalls):
            write(line)
    for worker, lines in sorted(state.worker_stalls):
        for line in lines:
            write(line.replace("grpc-chaos:", f"grpc-chaos [{worker}]:", 1))


def _stall_summary(stalls) -> list[str]:
    """The runner's stalls this run and, when measured (chaos/observe/starvation.py), the CPU
    waits of the processes the verdicts depended on and the proxy's event-loop stalls
    (chaos/observe/proxy_lag.py): how many over 3 ms, the longest."""
    since = stalls.since_ns
    runner = getattr(stalls, "runner", stalls)
    lines = [_longest("runner stalls", runner.stalls(since))]
    starvation = getattr(stalls, "starvation", None)
    if starvation is not None:
        lines.append(
            _longest("CPU waits of the runner, proxy and backends", starvation.stalls(since))
        )
    reported = getattr(stalls, "reported", None)
    if reported is not None and reported(since):
        lines.append(_longest("event-loop stalls of the proxy", reported(since)))
    return lines


def _longest(what: str, stalls) -> str:
    if not stalls:
        return f"grpc-chaos: {what} this run: none over 3 ms"
    worst = max(stalls, key=lambda s: s.end_ns - s.start_ns)
    return f"grpc-chaos: {what} this run: {len(stalls)} over 3 ms, longest: {worst.describe()}"
