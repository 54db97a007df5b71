"""The shipped client drivers by name, and what a ``--chaos-client`` value starts.

``--chaos-client NAME`` starts a shipped driver (:data:`NAMES`); anything else is a command
line of a team's own driver (split as a shell would, run from the current directory);
``inprocess`` (the default) is the grpcio channel the runner makes in its own process.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.clients.driver import DriverError

INPROCESS = "inprocess"


@dataclass(frozen=True)
class DriverCommand:
    name: str  # "python", "go", "node" or the team's own (its command's first word)
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None  # where it runs (a target file's [client] cwd)


def _python() -> DriverCommand:
    return DriverCommand(
        "python", [sys.executable, "-m", "chaos.clients.drivers.python_grpcio"], {}
    )


def _built(module: str) -> Callable[[], DriverCommand]:
    def command() -> DriverCommand:
        return importlib.import_module(f"chaos.clients.drivers.{module}").command()

    return command


# name -> how to get its command (building it first where it needs building).
NAMES: dict[str, Callable[[], DriverCommand]] = {
    "python": _python,
    "go": _built("go_build"),
    "node": _built("node_build"),
    "java": _built("java_build"),
}


def resolve(choice: str | None, target=None) -> DriverCommand | None:
    """The driver a ``--chaos-client`` value names (None: not given, so the target file's
    ``[client]`` if it has one); None for the in-process client."""
    if choice is None:
        spec = getattr(target, "client", None)
        if spec is None:
            return None
        return DriverCommand(
            spec.command[0].rsplit("/", 1)[-1], list(spec.command), dict(spec.env), str(spec.cwd)
        )
    choice = choice.strip()
    if not choice or choice == INPROCESS:
        return None
    if choice in NAMES:
        return NAMES[choice]()
    try:
        argv = shlex.split(choice)
    except ValueError as err:
        raise DriverError(f"--chaos-client {choice!r}: {err}") from None
    return DriverCommand(argv[0].rsplit("/", 1)[-1], argv)
