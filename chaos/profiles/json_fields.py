"""Field checks for service-config JSON, as proto3 JSON defines the types and gRPC reads them.

Each check is a function ``(value, path) -> list[Problem]``; :func:`obj` builds the check
of an object from the checks of its fields, and reports unknown keys with a "did you
mean" (gRPC ignores unknown keys silently). Integers may be written as JSON numbers or as
strings of digits (proto3 JSON allows both, and gRPC accepts both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from chaos.profiles.problems import Problem, index_path, json_type, key_path, quote, unknown_key

Check = Callable[[Any, str], list[Problem]]

UINT32_MAX = 2**32 - 1
# google/protobuf/duration.proto: seconds in [-315576000000, 315576000000] (10,000 years);
# gRPC refuses negative durations in a service config.
DURATION_MAX_SECONDS = 315_576_000_000
# proto3 JSON Duration: decimal seconds, "s" suffix, up to 9 fractional digits (nanoseconds).
_DURATION = re.compile(r"(\d+)(?:\.(\d{1,9}))?s\Z")
DURATION_FORM = (
    'a duration like "1.5s" (seconds with an "s" suffix, at most 9 digits after the point)'
)


def problem(path: str, message: str) -> list[Problem]:
    return [Problem(path, message)]


def duration_seconds(value: Any) -> Decimal | None:
    """The seconds of a proto3 JSON duration string, or None when it is not one."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        return None
    return Decimal(f"{match.group(1)}.{match.group(2) or '0'}")


def duration(positive: bool = False) -> Check:
    def check(value: Any, path: str) -> list[Problem]:
        seconds = duration_seconds(value)
        if seconds is None:
            return problem(path, f"expected {DURATION_FORM}, got {quote(value)}")
        if seconds > DURATION_MAX_SECONDS:
            return problem(path, f"must be at most {DURATION_MAX_SECONDS}s, got {quote(value)}")
        if positive and seconds == 0:
            return problem(path, f"must be greater than 0s, got {quote(value)}")
        return []

    return check


def integer_value(value: Any) -> int | None:
    """A JSON integer (or a string of digits, as proto3 JSON allows), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return None


def integer(low: int = 0, high: int = UINT32_MAX) -> Check:
    """A uint32 (by default) or any integer range within it."""

    def check(value: Any, path: str) -> list[Problem]:
        number = integer_value(value)
        if number is None:
            return problem(path, f"expected an integer, got {quote(value)}")
        if number < low:
            return problem(path, f"must be at least {low}, got {number}")
        if number > high:
            return problem(path, f"must be at most {high}, got {number}")
        return []

    return check


def number_value(value: Any) -> Decimal | None:
    """A JSON number (or a string holding one, as proto3 JSON allows) as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def number(greater_than: float | None = None, at_least: float | None = None) -> Check:
    def check(value: Any, path: str) -> list[Problem]:
        parsed = number_value(value)
        if parsed is None:
            return problem(path, f"expected a number, got {quote(value)}")
        if greater_than is not None and parsed <= Decimal(str(greater_than)):
            return problem(path, f"must be greater than {greater_than}, got {quote(value)}")
        if at_least is not None and parsed < Decimal(str(at_least)):
            return problem(path, f"must be at least {at_least}, got {quote(value)}")
        return []

    return check


def boolean(value: Any, path: str) -> list[Problem]:
    if isinstance(value, bool):
        return []
    return problem(path, f"expected true or false, got {quote(value)}")


def string(value: Any, path: str) -> list[Problem]:
    if isinstance(value, str):
        return []
    return problem(path, f"expected a string, got {quote(value)}")


def list_of(item: Check, non_empty: bool = False) -> Check:
    def check(value: Any, path: str) -> list[Problem]:
        if not isinstance(value, list):
            return problem(path, f"expected a list, got {json_type(value)}")
        if non_empty and not value:
            return problem(path, "must not be empty")
        return [p for i, element in enumerate(value) for p in item(element, index_path(path, i))]

    return check


def obj(
    fields: Mapping[str, Check],
    required: Sequence[str] = (),
    ignored_by: str = "gRPC",
    extra: Callable[[Mapping[str, Any], str], list[Problem]] | None = None,
) -> Check:
    """The check of a JSON object with ``fields`` (name -> check); ``required`` names the
    fields that must be present; ``extra`` checks relations between fields (it must not
    assume that the fields are well-formed)."""

    def check(value: Any, path: str) -> list[Problem]:
        if not isinstance(value, dict):
            return problem(path, f"expected an object, got {json_type(value)}")
        problems = [
            unknown_key(path, key, fields, ignored_by) for key in value if key not in fields
        ]
        problems += [
            Problem(key_path(path, name), "required, but missing")
            for name in required
            if name not in value
        ]
        for name, field_check in fields.items():
            if name in value:
                problems += field_check(value[name], key_path(path, name))
        if extra is not None:
            problems += extra(value, path)
        return problems

    return check
