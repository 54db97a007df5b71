"""``[server]``: how one backend is started, known to be ready, and stopped.

The command is an argv (no shell), with placeholders filled per backend — see PLACEHOLDERS.
Placeholders are filled in ``command`` only (``env`` and ``cwd`` are taken as written);
``{{`` and ``}}`` stand for literal braces, as in Python's str.format.
"""

from __future__ import annotations

import os
import shutil
import signal
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.targets.errors import Problems, did_you_mean, show
from chaos.targets.table import INVALID, Table

PLACEHOLDERS = {
    "host": "where this backend must listen (always 127.0.0.1)",
    "port": "the port it must listen on (picked by grpc-chaos)",
    "cert": "its certificate chain, PEM",
    "key": "its private key, PEM",
    "ca": "the fleet's CA certificate, PEM",
    "client_ca": "the CA of client certificates (mTLS), PEM",
    "id": "the backend's id: b1, b2, ...",
    "workdir": "a directory of its own",
    "control": "the address on which it serves grpc-chaos's Control service (control = true)",
}

KEYS = (
    "command",
    "env",
    "cwd",
    "ready",
    "start_timeout_s",
    "stop_signal",
    "stop_grace_s",
    "control",
    "mtls",
)
# "line" (the JSON ready line of fleet/server.py) is internal: the built-in Greeter's only.
READY_CHOICES = ("health", "rpc")
# Defaults (the format in chaos/targets/__init__.py): a backend that answers its first RPC
# ~100 ms after spawn on this machine (docs/grpc-facts.md) is well within 20 s, which leaves room
# for servers with slow start-up (JVMs, caches); SIGTERM then 10 s is what a scheduler
# does (Kubernetes' default grace is 30 s; 10 s keeps a stuck stop from stalling a run).
DEFAULT_READY = "rpc"
DEFAULT_START_TIMEOUT_S = 20.0
DEFAULT_STOP_SIGNAL = "SIGTERM"
DEFAULT_STOP_GRACE_S = 10.0

COMMAND_HINT = '["./server", "--port", "{port}"]: the argv of one backend'


@dataclass(frozen=True)
class ServerSpec:
    """One backend's command and lifecycle. ``cwd`` is absolute; ``env`` is added to the
    framework's environment; ``ready`` is "health", "rpc" or (built-in Greeter) "line"."""

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path = Path(".")
    ready: str = DEFAULT_READY
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    stop_signal: signal.Signals = signal.SIGTERM
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    control: bool = False
    mtls: bool = False

    @property
    def placeholders(self) -> frozenset[str]:
        """The placeholder names the command uses."""
        return frozenset(name for arg in self.command for name in _fields(arg))

    def argv(self, values: Mapping[str, object]) -> list[str]:
        """The command with its placeholders filled from ``values`` (name -> value, str()
        of each). Names outside PLACEHOLDERS are refused (a caller's typo), and every
        placeholder the command uses needs a value that is not None."""
        unknown = sorted(set(values) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"unknown placeholder values {unknown}; known: {', '.join(PLACEHOLDERS)}"
            )
        lacking = sorted(n for n in self.placeholders if values.get(n) is None)
        if lacking:
            raise ValueError(f"no value for placeholders {lacking} used in server.command")
        filled = {name: str(value) for name, value in values.items() if value is not None}
        return [arg.format_map(filled) for arg in self.command]


def _fields(arg: str) -> list[str]:
    """The placeholder names in one argument (validated at load: no format specs)."""
    return [name for _, name, _, _ in string.Formatter().parse(arg) if name is not None]


def read(data: dict, base: Path, problems: Problems) -> ServerSpec | None:
    """The ServerSpec of a ``[server]`` table (``base``: the target file's directory), or
    None after reporting its problems."""
    table = Table("server", data, KEYS, problems)
    command = table.strings("command", hint=COMMAND_HINT)
    env = read_env(table)
    cwd = read_cwd(table, base)
    control = table.boolean("control", False)
    values = {
        "ready": table.string("ready", DEFAULT_READY, choices=READY_CHOICES),
        "start_timeout_s": table.seconds("start_timeout_s", DEFAULT_START_TIMEOUT_S),
        "stop_signal": _signal(table),
        "stop_grace_s": table.seconds("stop_grace_s", DEFAULT_STOP_GRACE_S, allow_zero=True),
        "control": control,
        "mtls": table.boolean("mtls", False),
    }
    if command is not INVALID:
        _check_placeholders(command, control is True, problems)
        if cwd is not INVALID and env is not INVALID:
            check_executable(command[0], cwd, env, problems)
    if INVALID in (command, env, cwd, *values.values()):
        return None
    return ServerSpec(command=tuple(command), env=env, cwd=cwd, **values)


def read_env(table: Table) -> Any:
    """``env`` of a table ([server], [client]) as a dict of strings, or INVALID."""
    env = table.table("env")
    if env is INVALID:
        return INVALID
    bad = [key for key, value in env.items() if not isinstance(value, str)]
    for key in bad:
        table.problems.add(
            table.where(f"env.{key}"), f"must be a string (quote it), got {show(env[key])}"
        )
    return INVALID if bad else dict(env)


def read_cwd(table: Table, base: Path) -> Any:
    """``cwd`` of a table as a resolved directory Path (relative to ``base``), or INVALID."""
    cwd = table.string("cwd", ".")
    if cwd is INVALID:
        return INVALID
    path = (base / cwd).resolve()
    if not path.is_dir():
        table.problems.add(
            table.where("cwd"),
            f"{cwd!r} is not a directory (it is relative to the target file: {path})",
        )
        return INVALID
    return path


def _signal(table: Table) -> Any:
    """``stop_signal`` as a signal.Signals, or INVALID."""
    name = table.string("stop_signal", DEFAULT_STOP_SIGNAL)
    if name is INVALID:
        return INVALID
    names = [s.name for s in signal.Signals if not s.name.startswith("SIG_")]
    if name not in names:
        table.problems.add(
            "server.stop_signal",
            f"{name!r} is not a signal name{did_you_mean(name, names)}, e.g. 'SIGTERM'",
        )
        return INVALID
    return signal.Signals[name]


def _check_placeholders(command: list[str], control: bool, problems: Problems) -> None:
    known = list(PLACEHOLDERS)
    for index, arg in enumerate(command):
        where = f"server.command[{index}]"
        try:
            parsed = list(string.Formatter().parse(arg))
        except ValueError as exc:  # "Single '}' encountered in format string", ...
            problems.add(where, f"{arg!r}: {exc}; write {{{{ or }}}} for a literal brace")
            continue
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in PLACEHOLDERS:
                problems.add(
                    where,
                    f"unknown placeholder {{{name}}}"
                    f"{did_you_mean(name, known)}; known: " + " ".join(f"{{{k}}}" for k in known),
                )
            elif spec or conversion:
                problems.add(
                    where, f"placeholder {{{name}}} takes no format or conversion: write {{{name}}}"
                )
            elif name == "control" and not control:
                problems.add(
                    where,
                    "{control} is given only to servers that serve grpc-chaos's "
                    "Control service: set server.control = true, or remove it",
                )


def check_executable(
    program: str, cwd: Path, env: dict[str, str], problems: Problems, table: str = "server"
) -> None:
    """The command's program must exist now: a bare name on PATH (the target's env PATH if
    it sets one, as the started process would search), a path relative to ``cwd``.
    A program that is itself a placeholder is only known per backend: not checked."""
    if _fields(program) or not program:
        if not program:
            problems.add(f"{table}.command[0]", "the program is empty")
        return
    if os.sep not in program:
        if shutil.which(program, path=env.get("PATH", os.environ.get("PATH"))) is None:
            problems.add(
                f"{table}.command[0]",
                f"{program!r} is not found on PATH; give its "
                f"path (relative to {table}.cwd) or install it",
            )
        return
    path = cwd / program
    if not path.is_file():
        problems.add(f"{table}.command[0]", f"{program!r} does not exist (looked for {path})")
    elif not os.access(path, os.X_OK):
        problems.add(f"{table}.command[0]", f"{program!r} is not executable: chmod +x {path}")
