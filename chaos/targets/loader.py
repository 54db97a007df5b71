"""Reading a target file (grpc-chaos.toml): every key checked, every problem listed.

TOML --> [server] [rpc] [health] [identity] [requirements], unknown tables and keys
     --> all problems at once (TargetError, one line each)
     --> protos compiled, method found, request and expect checked against its types
     --> Target
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from chaos.targets import client, rpc, server
from chaos.targets.errors import Problems, did_you_mean, error
from chaos.targets.model import Target
from chaos.targets.table import INVALID, Table
from chaos.verdicts import requirements as requirements_module
from chaos.verdicts.requirements import Requirements, RequirementsError

FILE_NAME = "grpc-chaos.toml"
TABLES = ("server", "rpc", "health", "identity", "requirements", "client")
REQUIRED_TABLES = {"server": "the command of one backend", "rpc": "the method to call"}
DEFAULT_IDENTITY_HEADER = "x-backend-id"
# gRPC metadata keys: lowercase ASCII letters, digits, '-', '_' and '.' (the gRPC HTTP/2
# protocol spec); "-bin" keys carry bytes, "grpc-" keys are gRPC's own.
METADATA_KEY = re.compile(r"[0-9a-z_.-]+\Z")


def find(directory: str | Path = ".") -> Path | None:
    """The target file in ``directory`` (grpc-chaos.toml), or None."""
    path = Path(directory) / FILE_NAME
    return path if path.is_file() else None


def load(path: str | Path) -> Target:
    """The Target a file describes, or TargetError listing every problem in it."""
    path = Path(path)
    source = str(path)
    data = _toml(path)
    problems = Problems(source)
    for key in data:
        if key not in TABLES:
            problems.add(
                key,
                f"unknown table{did_you_mean(key, TABLES)}; a target file has "
                f"{', '.join(f'[{t}]' for t in TABLES)}",
            )
    tables = {}
    for name in TABLES:
        value = data.get(name)
        if value is None and name in REQUIRED_TABLES:
            problems.add(name, f"missing (required table [{name}]: {REQUIRED_TABLES[name]})")
        elif value is not None and not isinstance(value, dict):
            problems.add(name, f"must be a table ([{name}]), not a value")
        tables[name] = value if isinstance(value, dict) else None
    base = path.resolve().parent
    spec = None if tables["server"] is None else server.read(tables["server"], base, problems)
    build_rpc = None if tables["rpc"] is None else rpc.read(tables["rpc"], base, problems)
    health_service = _health(tables["health"], problems)
    identity_header = _identity(tables["identity"], problems)
    requirements = _requirements(tables["requirements"], source, problems)
    driver = None if tables["client"] is None else client.read(tables["client"], base, problems)
    problems.raise_if_any()
    # No problem: both required tables were given, and read without one.
    assert spec is not None and build_rpc is not None
    return Target(
        name=base.name,
        source=source,
        server=spec,
        rpc=build_rpc(),
        health_service=health_service,
        identity_header=identity_header,
        requirements=requirements,
        client=driver,
    )


def _toml(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(
            str(path),
            "",
            f"no such file (a target file is {FILE_NAME}: [server] command + [rpc] method)",
        ) from None
    except IsADirectoryError:
        raise error(str(path), "", f"is a directory; give the file in it ({FILE_NAME})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(
            str(path), "", f"cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(str(path), "", f"not valid TOML: {exc}") from None


def _health(data: dict | None, problems: Problems) -> str:
    """The health service to check (INVALID after reporting a problem)."""
    if data is None:
        return ""
    return Table("health", data, ("service",), problems).string("service", "")


def _identity(data: dict | None, problems: Problems) -> str | None:
    """The metadata key that names the backend; None when set to "" (or after a problem)."""
    if data is None:
        return DEFAULT_IDENTITY_HEADER
    header = Table("identity", data, ("header",), problems).string(
        "header", DEFAULT_IDENTITY_HEADER
    )
    if header is INVALID or header == "":
        return None
    if not METADATA_KEY.match(header):
        problems.add(
            "identity.header",
            f"{header!r} is not a gRPC metadata key: lowercase "
            f"letters, digits, '-', '_', '.' (e.g. "
            f"'{DEFAULT_IDENTITY_HEADER}')",
        )
    elif header.endswith("-bin") or header.startswith("grpc-"):
        problems.add(
            "identity.header",
            f"{header!r} cannot name a backend: '-bin' keys carry "
            f"bytes and 'grpc-' keys are gRPC's own",
        )
    return header


def _requirements(data: dict | None, source: str, problems: Problems) -> Requirements | None:
    """chaos.verdicts.requirements' own checks, one line per key."""
    if data is None:
        return None
    prefix = f"requirements {source}: "
    for key, value in data.items():
        try:
            requirements_module.parse({key: value}, source=source)
        except RequirementsError as exc:
            problems.add("requirements", str(exc).removeprefix(prefix))
    return None if problems.lines else requirements_module.parse(data, source=source)
