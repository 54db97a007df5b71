"""One pytest run of the gate: the scenarios under one profile and client, one repeat, in
a child.

The profile and the client are session-wide in the plugin, so each (client, profile,
repeat) is its own pytest process. Its outputs go to the run directory::

    gate --> python -m pytest <selection> --chaos-profile P --chaos-client C
                              --chaos-results R.jsonl ...
               |  stdout+stderr -> pytest/P.k.log
               |  one record per finished scenario -> pytest/P.k.jsonl  (tailed: progress)
               |  selected node ids -> pytest/P.k.plan.json           (chaos/gate/plan.py)
               +  junit -> pytest/P.k.xml, artifacts -> artifacts/repeat-k/P/<scenario>/

When the gate runs several clients, each client's files are a folder further down,
named after the client: ``pytest/<client>/P.k.log``, ``artifacts/repeat-k/<client>/P/...``
(a run of one client keeps the layout above, whichever client it is).

The child runs in its own session (a Ctrl-C at the terminal reaches the gate only, which
passes exactly one SIGINT on: pytest then tears its fleets down) and dies with the gate
(PR_SET_PDEATHSIG), and its fleets with it (fleet/procs/lifeline.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaos.gate import plan
from chaos.gate.aggregate import INPROCESS
from chaos.gate.selection import Selection
from chaos.run.artifacts import safe_name
from fleet.procs.lifeline import set_pdeathsig

REPEAT_ENV = "GRPC_CHAOS_REPEAT"  # the child's repeat number (1..N), for scenarios to read
# After SIGINT pytest tears down the module's fleet and the session's Toxiproxy: seconds
# on a busy machine (a fleet reset is ~70 ms, a full teardown of 3 backends < 2 s); past
# this it is killed, and the fleets' lifelines end the rest.
STOP_GRACE_S = 30.0


@dataclass
class Options:
    """What every pytest run of one gate gets besides the profile."""

    selection: Selection
    target: str | None = None
    requirements: str | None = None
    fleet_size: int | None = None
    toxiproxy_url: str | None = None
    reruns: int | None = None

    def pytest_args(self) -> list[str]:
        args = self.selection.pytest_args()
        for flag, value in (
            ("--chaos-target", self.target),
            ("--chaos-requirements", self.requirements),
            ("--chaos-fleet-size", self.fleet_size),
            ("--chaos-toxiproxy-url", self.toxiproxy_url),
            ("--chaos-reruns", self.reruns),
        ):
            if value is not None:
                args += [flag, str(value)]
        return args


@dataclass
class PytestRun:
    """One child pytest: where its outputs go, and what it has reported so far."""

    run_dir: Path
    profile: str  # as given: a shipped name or a path
    profile_name: str
    repeat: int
    # --chaos-client as given (inprocess, a shipped driver's name or a driver command);
    # None: not passed (the campaign: the plugin's default or the pytest arguments decide).
    client: str | None = None
    client_name: str = INPROCESS  # the client's name as its records carry it
    per_client: bool = False  # several clients: files under a folder named after the client
    exit_code: int | None = None
    duration_s: float = 0.0
    stopped: bool = False  # by the gate (Ctrl-C, SIGTERM, its time limit)
    _offset: int = 0
    _pending: bytes = b""
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def file(self, suffix: str) -> Path:
        return self._under(self.run_dir / "pytest") / f"{self.profile_name}.{self.repeat}.{suffix}"

    @property
    def artifacts(self) -> Path:
        return self._under(self.run_dir / "artifacts" / f"repeat-{self.repeat}")

    def _under(self, folder: Path) -> Path:
        return folder / safe_name(self.client_name) if self.per_client else folder

    def describe(self) -> str:
        """The run in the gate's messages: naive repeat 2 (naive under client go repeat 2
        when the gate runs several clients)."""
        client = f" under client {self.client_name}" if self.per_client else ""
        return f"{self.profile_name}{client} repeat {self.repeat}"

    def command(self, options: Options) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pytest",
            *options.pytest_args(),
            "-p",
            "chaos.gate.plan",
            "-p",
            "no:cacheprovider",
            "--chaos-profile",
            self.profile,
            *(["--chaos-client", self.client] if self.client is not None else []),
            f"--chaos-artifacts={self.artifacts}",
            f"--chaos-results={self.file('jsonl')}",
            f"--junitxml={self.file('xml')}",
        ]

    def start(self, options: Options) -> None:
        env = {
            **os.environ,
            plan.ENV: str(self.file("plan.json")),
            REPEAT_ENV: str(self.repeat),
            "PYTHONUNBUFFERED": "1",
        }
        self._started = time.monotonic()
        self.file("log").parent.mkdir(parents=True, exist_ok=True)
        with open(self.file("log"), "wb") as log:
            self._process = subprocess.Popen(
                self.command(options),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=lambda: set_pdeathsig(signal.SIGKILL),
            )

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the child to end; True when it has."""
        assert self._process is not None, "start() the run first"
        try:
            self.exit_code = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self.duration_s = time.monotonic() - self._started
        return True

    def new_records(self) -> list[dict]:
        """Records written since the last call (complete lines only)."""
        try:
            with open(self.file("jsonl"), "rb") as results:
                results.seek(self._offset)
                data = results.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def planned(self) -> list[str] | None:
        return plan.read(self.file("plan.json"))

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGINT (pytest tears down its fleets), then SIGKILL after ``grace_s``."""
        self.stopped = True
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            if self.wait(grace_s):
                return
        except KeyboardInterrupt:  # a second Ctrl-C: do not wait for the teardown
            pass
        self._process.kill()
        self.exit_code = self._process.wait()
        self.duration_s = time.monotonic() - self._started

    def usage_error(self) -> str:
        """pytest's own words for a usage error (exit 4) or a collection error."""
        try:
            text = self.file("log").read_text(errors="replace")
        except OSError:
            return "pytest wrote no log"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for line in lines:  # argparse: "ERROR: usage: ..." then "<prog>: error: <why>"
            if re.match(r"^\S.*pytest: error: ", line):
                return "pytest: " + line.split(": error: ", 1)[1]
        for line in lines:
            if line.startswith("ERROR") and not line.startswith("ERROR: usage:"):
                return line.removeprefix("ERROR: ")
        for line in lines:
            if line.startswith("E ") and len(line) > 2:
                return line[1:].strip()
        return lines[-1] if lines else "pytest printed nothing"

    def to_dict(self) -> dict:
        return {
            "profile": self.profile_name,
            "client": self.client_name,
            "repeat": self.repeat,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "stopped": self.stopped,
            **{
                kind: str(self.file(suffix).relative_to(self.run_dir))
                for kind, suffix in (("log", "log"), ("results", "jsonl"), ("junit", "xml"))
            },
        }
