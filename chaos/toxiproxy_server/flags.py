"""Command-line flags with Go's ``flag`` package rules, as the reference server parses them.

``-name value``, ``-name=value``, ``--name value`` and ``--name=value`` all work; boolean
flags take no value (or ``=true``/``=false``); parsing stops at the first non-flag argument
or ``--``. Unknown flags print the usage and exit with 2, ``-h`` prints it and exits with 0.
``--parent-watch``, ``--ready-line`` and ``--lag-log`` are grpc-chaos extensions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

PROGRAM = "toxiproxy-server"


@dataclass
class Flag:
    kind: str  # "string", "int" or "bool"
    default: object
    usage: str


FLAGS: dict[str, Flag] = {
    "config": Flag("string", "", "JSON file containing proxies to create on startup"),
    "host": Flag("string", "127.0.0.1", "Host for toxiproxy's API to listen on"),
    "lag-log": Flag(
        "string",
        "",
        "append the event loop's lateness to this file, one 'start_ns end_ns' line per late "
        "tick on CLOCK_MONOTONIC (grpc-chaos extension)",
    ),
    "parent-watch": Flag(
        "bool",
        False,
        "exit when the parent process dies or closes our stdin (grpc-chaos extension)",
    ),
    "port": Flag("string", "8474", "Port for toxiproxy's API to listen on (0 picks a free one)"),
    "proxy-metrics": Flag("bool", False, "enable toxiproxy-specific prometheus metrics"),
    "ready-line": Flag(
        "bool", False, "print one JSON line to stdout once the API listens (grpc-chaos extension)"
    ),
    "runtime-metrics": Flag("bool", False, "enable runtime-related prometheus metrics"),
    "seed": Flag(
        "int", 0, "Seed for randomizing toxics with (ignored, as by the reference since 2.9.0)"
    ),
    "version": Flag("bool", False, "print the version"),
}

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class UsageError(Exception):
    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def usage() -> str:
    lines = [f"Usage of {PROGRAM}:"]
    for name, flag in FLAGS.items():
        kind = "" if flag.kind == "bool" else " " + flag.kind
        default = f' (default "{flag.default}")' if flag.kind == "string" and flag.default else ""
        lines.append(f"  -{name}{kind}\n    \t{flag.usage}{default}")
    return "\n".join(lines) + "\n"


def _convert(name: str, flag: Flag, value: str):
    if flag.kind == "bool":
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise UsageError(f'invalid boolean value "{value}" for -{name}: parse error')
    if flag.kind == "int":
        try:
            return int(value, 0)
        except ValueError:
            raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from None
    return value


def parse(argv: list[str]) -> dict[str, object]:
    """Values of every flag (names with '-' turned into '_'); raises UsageError."""
    values = {name: flag.default for name, flag in FLAGS.items()}
    args = list(argv)
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        args.pop(0)
        if arg == "--":
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, equals, value = name.partition("=")
        has_value = bool(equals)
        if name in ("h", "help"):
            raise UsageError("", 0)
        flag = FLAGS.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if not has_value and flag.kind != "bool":
            if not args:
                raise UsageError(f"flag needs an argument: -{name}")
            value, has_value = args.pop(0), True
        values[name] = _convert(name, flag, value) if has_value else True
    return {name.replace("-", "_"): value for name, value in values.items()}


def parse_or_exit(argv: list[str]) -> dict[str, object]:
    try:
        return parse(argv)
    except UsageError as err:
        if str(err):
            sys.stderr.write(str(err) + "\n")
        sys.stderr.write(usage())
        raise SystemExit(err.code) from None
