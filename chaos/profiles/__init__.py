"""Client profiles: a gRPC client's resilience settings as data, checked before any fleet
starts.

A profile is a JSON file (document.py describes its fields): a gRPC service config,
channel options, and a ``why`` for each setting. The shipped profiles live in this
package (``chaos/profiles/*.json``): ``pick_first`` (the gRPC default), ``naive``
(round_robin and TLS only), ``recommended`` (what survives every scenario) and
``outlier``. A user's own profile is given by its file path.

Checking (:func:`check`, ``load(..., check=True)``, ``python -m chaos.profiles check``)
runs two layers and names every problem with its JSON path:

    profile JSON --> document.py        the profile's own fields, stale ``why`` keys
                 --> service_config.py  gRPC's published schema (+ lb_policies.py)
                 --> channel_args.py    the channel arguments gRPC defines
                 --> grpc_parser.py     gRPC's own parser (a real channel, in a child
                                        process); its reasons in gRPC's words

Errors refuse a profile; warnings (gRPC adjusts a value, or this grpcio ignores what
other implementations read) are reported and accepted (problems.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.profiles import channel_args, document, grpc_parser, service_config
from chaos.profiles.lb_policies import DeclaredPolicy
from chaos.profiles.model import Profile, Setting
from chaos.profiles.problems import ERROR, WARNING, Problem, ProfileError, merged

__all__ = [
    "DeclaredPolicy",
    "ERROR",
    "PROFILE_DIR",
    "Problem",
    "Profile",
    "ProfileError",
    "Setting",
    "WARNING",
    "check",
    "check_many",
    "load",
    "parse",
    "read",
    "shipped",
]

PROFILE_DIR = Path(__file__).parent


def shipped() -> list[str]:
    """Names of the profiles that come with grpc-chaos."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def read(name_or_path: str | Path) -> tuple[str, Any]:
    """The source path and JSON data of a shipped profile (by name) or a profile file."""
    text = str(name_or_path)
    path = Path(text) if ("/" in text or text.endswith(".json")) else PROFILE_DIR / f"{text}.json"
    if not path.is_file():
        raise ProfileError(
            f"no profile {text!r}: not a file, and not one of the shipped "
            f"profiles ({', '.join(shipped())})"
        )
    try:
        return str(path), json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProfileError(f"profile {path}: not readable JSON: {exc}") from None


def load(name_or_path: str | Path, check: bool = True) -> Profile:
    """A shipped profile by name, or a profile file by path. With ``check`` (the default)
    its settings are checked and every error is raised at once (:class:`ProfileError`)."""
    source, data = read(name_or_path)
    return parse(data, source=source, check=check)


def parse(data: Any, source: str = "<data>", check: bool = True) -> Profile:
    """A Profile from profile data. The profile's own fields are always checked; with
    ``check`` the service config and channel options are too (both layers)."""
    problems = check_many([data])[0] if check else document.check(data)
    _raise_errors(source, problems)
    return Profile(
        name=data["name"],
        description=data.get("description") or "",
        service_config=data.get("service_config"),
        channel_options=data.get("channel_options") or {},
        client_cert=bool(data.get("client_cert", False)),
        why=data.get("why") or {},
        source=source,
    )


def check(profile_or_data: Profile | Any, grpc: bool = True) -> list[Problem]:
    """Every problem of a profile (or of profile data), errors and warnings, sorted by
    path. ``grpc=False`` skips gRPC's own parser (the schema layers only)."""
    return check_many([profile_or_data], grpc)[0]


def check_many(items: Sequence[Profile | Any], grpc: bool = True) -> list[list[Problem]]:
    """:func:`check` for several profiles, with one gRPC parser process for all."""
    datas = [item.data() if isinstance(item, Profile) else item for item in items]
    schema = [_schema_problems(data) for data in datas]
    configs = [data.get("service_config") if isinstance(data, dict) else None for data in datas]
    found_by_grpc = grpc_parser.check_many(configs) if grpc else [[] for _ in datas]
    return [merged(s, g) for s, g in zip(schema, found_by_grpc, strict=False)]


def _schema_problems(data: Any) -> list[Problem]:
    problems = document.check(data)
    if not isinstance(data, dict):
        return problems
    if isinstance(data.get("service_config"), dict):
        problems += service_config.check(data["service_config"])
    if isinstance(data.get("channel_options"), dict):
        problems += channel_args.check(data["channel_options"])
    return problems


def _raise_errors(source: str, problems: list[Problem]) -> None:
    errors = [p for p in problems if p.is_error]
    if errors:
        lines = "\n".join(f"  {p}" for p in errors)
        count = f"{len(errors)} problem{'s' if len(errors) > 1 else ''}"
        raise ProfileError(f"profile {source}: {count}:\n{lines}")
