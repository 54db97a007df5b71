"""Metrics in the Prometheus text format, served at /metrics when a metrics flag is given.

Proxy metrics (``-proxy-metrics``) are the reference's two counters, labelled by
direction, proxy, listener and upstream: ``toxiproxy_proxy_received_bytes_total`` (bytes
read from a link's source) and ``toxiproxy_proxy_sent_bytes_total`` (bytes written to its
destination), both added when a link finishes, sent bytes only when its write side ended
without error. Runtime metrics (``-runtime-metrics``) are this process's own: the
standard ``process_*`` gauges and a ``python_info`` in place of Go's runtime collectors.
"""

from __future__ import annotations

import decimal
import math
import os
import platform
import resource
import time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_COUNTERS = (
    ("toxiproxy_proxy_received_bytes_total", "Bytes read from the source side of proxy links."),
    ("toxiproxy_proxy_sent_bytes_total", "Bytes written to the destination side of proxy links."),
)
_LABELS = ("direction", "proxy", "listener", "upstream")
_START = time.time()


def go_float(value: float) -> str:
    """A sample value as Go's strconv.FormatFloat(v, 'g', -1, 64) prints it."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    number = decimal.Decimal(repr(float(value))).normalize()  # shortest round-trip digits
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # NaN and infinities were answered above
    sci = len(digits) + exponent - 1  # exponent in d.ddd x 10^sci
    if -4 <= sci < 6:  # Go uses %e outside this range for the shortest form
        return format(number, "f")
    head = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return "%s%se%s%02d" % ("-" if sign else "", head, "-" if sci < 0 else "+", abs(sci))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, proxy: bool = False, runtime: bool = False):
        self.proxy = proxy
        self.runtime = runtime
        self._counters: tuple[dict, dict] = ({}, {})  # received, sent: labels -> bytes

    @property
    def enabled(self) -> bool:
        return self.proxy or self.runtime

    def add_received(self, labels: tuple, count: int) -> None:
        self._counters[0][labels] = self._counters[0].get(labels, 0) + count

    def add_sent(self, labels: tuple, count: int) -> None:
        self._counters[1][labels] = self._counters[1].get(labels, 0) + count

    def render(self) -> str:
        lines: list[str] = []
        if self.runtime:
            lines += _runtime_lines()
        if self.proxy:
            for (name, help_text), counter in zip(_COUNTERS, self._counters, strict=False):
                if counter:
                    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
                    for labels in sorted(counter):
                        pairs = ",".join(
                            f'{k}="{_escape(v)}"'
                            for k, v in sorted(zip(_LABELS, labels, strict=False))
                        )
                        lines.append(f"{name}{{{pairs}}} {go_float(counter[labels])}")
        return "".join(line + "\n" for line in lines)


def _gauge(name: str, help_text: str, value: float, kind: str = "gauge") -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {go_float(value)}"]


def _runtime_lines() -> list[str]:
    times = os.times()
    page = resource.getpagesize()
    with open("/proc/self/statm") as statm:
        virtual, resident = (int(x) * page for x in statm.read().split()[:2])
    soft_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    impl = platform.python_implementation()
    major, minor, patch = platform.python_version_tuple()
    return (
        _gauge(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            times.user + times.system,
            "counter",
        )
        + _gauge("process_max_fds", "Maximum number of open file descriptors.", soft_fds)
        + _gauge(
            "process_open_fds", "Number of open file descriptors.", len(os.listdir("/proc/self/fd"))
        )
        + _gauge("process_resident_memory_bytes", "Resident memory size in bytes.", resident)
        + _gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            _START,
        )
        + _gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", virtual)
        + [
            "# HELP python_info Python platform information",
            "# TYPE python_info gauge",
            f'python_info{{implementation="{impl}",major="{major}",minor="{minor}",'
            f'patchlevel="{patch}",version="{platform.python_version()}"}} 1',
        ]
    )
