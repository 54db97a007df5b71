"""A problem found in a profile: where it is (a JSON path into the profile file), what is
wrong, how bad it is, and who found it.

Severity:

- ``error``: the profile is invalid, or a setting in it does nothing at all (gRPC ignores
  unknown keys and some misspellings silently, so a typo looks like a setting that works).
  A profile with an error is refused.
- ``warning``: the setting works, but not as written: gRPC adjusts it (``maxAttempts`` 9
  becomes 5, a 10 ms reconnect backoff becomes 100 ms) or this grpcio ignores what other
  gRPC implementations read (hedging, a policy only grpc-java or grpc-go implement, listed
  before a fallback). Warnings are printed; they never refuse a profile.

Source: ``schema`` (this package's reading of gRPC's published schema and channel
arguments) or ``grpc`` (gRPC's own parser, in its exact words).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"
SCHEMA = "schema"
GRPC = "grpc"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ProfileError(ValueError):
    """A profile that cannot be found, read or used; the message names the profile and
    every problem, one per line."""


@dataclass(frozen=True)
class Problem:
    """One problem: ``path`` names the place in the profile's JSON, e.g.
    ``service_config.methodConfig[0].retryPolicy.maxAttempts`` or
    ``channel_options["grpc.keepalive_time_ms"]``."""

    path: str
    message: str
    severity: str = ERROR
    source: str = SCHEMA

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        label = "warning: " if self.severity == WARNING else ""
        return f"{self.path}: {label}{self.message}" if self.path else label + self.message


def key_path(path: str, key: str) -> str:
    """``path`` extended by an object key: ``a.b`` for plain names, ``a["x.y"]`` otherwise
    (channel option names contain dots)."""
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{quote(key)}]"


def index_path(path: str, index: int) -> str:
    return f"{path}[{index}]"


def quote(value: Any) -> str:
    """A value as it is written in JSON, for messages (``"five"``, ``1.5``, ``null``)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "an object"
    return repr(value)


def json_type(value: Any) -> str:
    """The JSON type name of a value, for "expected X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean "X"?)`` for the closest of ``choices``, or ``""``.

    difflib's default cutoff (0.6) catches one or two wrong, missing or swapped letters in
    names of this length (``healthCheckConfg``, ``grpc.keepalive_time_msx``) without
    suggesting unrelated names."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def unknown_key(path: str, key: str, allowed: Iterable[str], ignored_by: str) -> Problem:
    """The problem for a key that is not part of the schema at ``path``."""
    return Problem(
        key_path(path, key),
        f"unknown key{did_you_mean(key, allowed)}: {ignored_by} ignores it "
        f"silently, so this setting does nothing",
    )


def merged(schema: list[Problem], grpc: list[Problem]) -> list[Problem]:
    """Both layers' problems, sorted by path; where gRPC and the schema both find an error
    at one path, one problem in gRPC's words followed by the schema's explanation."""
    explanations: dict[str, list[str]] = {}
    for found in schema:
        if found.is_error:
            explanations.setdefault(found.path, []).append(found.message)
    combined = [
        Problem(p.path, f"{p.message} ({'; '.join(explanations[p.path])})", p.severity, p.source)
        if p.is_error and p.path in explanations
        else p
        for p in grpc
    ]
    covered = {p.path for p in grpc if p.is_error}
    rest = [p for p in schema if not (p.is_error and p.path in covered)]
    return sorted(rest + combined, key=lambda p: p.path)
