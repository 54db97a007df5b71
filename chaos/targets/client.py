"""A target file's ``[client]`` table: the team's own client driver (docs/clients.md).

    [client]
    command = ["./bin/inventory-driver", "--tls"]   # argv; the program relative to cwd
    cwd = "."                                        # relative to the target file (default)
    env = { GRPC_GO_RETRY = "on" }                   # added to the environment

The command is checked as ``[server] command`` is (it must exist and be executable now).
``--chaos-client`` on the command line wins over the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chaos.targets.errors import Problems
from chaos.targets.server import check_executable, read_cwd, read_env
from chaos.targets.table import INVALID, Table

KEYS = ("command", "cwd", "env")
COMMAND_HINT = '["./bin/my-driver"]'


@dataclass(frozen=True)
class ClientSpec:
    command: tuple[str, ...]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


def read(data: dict, base: Path, problems: Problems) -> ClientSpec | None:
    """The ClientSpec of a ``[client]`` table, or None after reporting its problems."""
    table = Table("client", data, KEYS, problems)
    command = table.strings("command", hint=COMMAND_HINT)
    env = read_env(table)
    cwd = read_cwd(table, base)
    if INVALID in (command, env, cwd):
        return None
    check_executable(command[0], cwd, env, problems, table="client")
    return ClientSpec(tuple(command), cwd, env)
