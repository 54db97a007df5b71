"""Typed reading of one TOML table of the target file, every problem named by its key.

A ``Table`` knows which keys its table may hold: any other key is reported (with the
closest known key) as soon as it is made. Each getter returns the value, or the default
when the key is absent, or ``INVALID`` after reporting a value of the wrong kind — so the
whole file is checked in one pass and every problem is listed together.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from chaos.targets.errors import Problems, did_you_mean, show

INVALID: Any = object()
"""A value that was reported as a problem; the target is refused at the end of the pass."""

REQUIRED: Any = object()
"""Default meaning the key must be given."""


class Table:
    """One table (``[server]``, ``[rpc]``, ...) of the target file."""

    def __init__(self, name: str, data: dict, known: Collection[str], problems: Problems):
        self.name = name
        self.data = data
        self.problems = problems
        for key in data:
            if key not in known:
                problems.add(self.where(key), f"unknown key{did_you_mean(key, known)}")

    def where(self, key: str) -> str:
        return f"{self.name}.{key}"

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: Any, hint: str) -> Any:
        if key in self.data:
            return self.data[key]
        if default is REQUIRED:
            self.problems.add(self.where(key), f"missing (required): {hint}")
            return INVALID
        return default

    def _bad(self, key: str, what: str, value: Any) -> Any:
        self.problems.add(self.where(key), f"must be {what}, got {show(value)}")
        return INVALID

    def string(
        self, key: str, default: Any = REQUIRED, *, hint: str = "", choices: Collection[str] = ()
    ) -> Any:
        value = self._get(key, default, hint)
        if value is INVALID or value is default:
            return value
        if not isinstance(value, str):
            return self._bad(key, "a string", value)
        if choices and value not in choices:
            named = " or ".join(repr(c) for c in choices)
            return self._bad(key, f"{named}{did_you_mean(value, choices)}", value)
        return value

    def boolean(self, key: str, default: bool) -> Any:
        value = self.data.get(key, default)
        return value if isinstance(value, bool) else self._bad(key, "true or false", value)

    def seconds(self, key: str, default: float, *, allow_zero: bool = False) -> Any:
        """A duration in seconds: a finite number > 0 (>= 0 with ``allow_zero``)."""
        value = self.data.get(key, default)
        bound = ">= 0" if allow_zero else "> 0"
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
        ):
            return self._bad(key, f"a number of seconds {bound}", value)
        return float(value)

    def strings(self, key: str, default: Any = REQUIRED, *, hint: str = "") -> Any:
        """A non-empty list of strings."""
        value = self._get(key, default, hint)
        if value is INVALID or value is default:
            return value
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) for item in value)
        ):
            return self._bad(
                key, f"a non-empty list of strings{', e.g. ' + hint if hint else ''}", value
            )
        return value

    def table(self, key: str) -> Any:
        """A sub-table (its keys are checked by the caller); {} when absent."""
        value = self.data.get(key, {})
        return value if isinstance(value, dict) else self._bad(key, "a table", value)
