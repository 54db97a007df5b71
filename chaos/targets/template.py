"""Request and expected-answer templates: JSON objects whose string values may hold
``{rpc}``, replaced per call by the RPC's id (so every request is unique and its answer
can be checked against it: ``name = "chaos {rpc}"`` -> ``"chaos 17"``).

A template is written as a TOML table or as a JSON string holding an object; either way
it becomes the JSON form of a protobuf message (google.protobuf.json_format: field names
as in the .proto or in lowerCamelCase, 64-bit integers and enums as numbers or strings).
Only string values are templates; ``{rpc}`` in a string parsed into a number field works
(proto JSON reads "17" into an int64).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from chaos.targets.errors import Problems, one_line, show
from chaos.targets.table import INVALID

RPC = "{rpc}"


def json_object(value: Any, where: str, problems: Problems) -> Any:
    """The template a key holds (a table, or a JSON string of an object), or INVALID."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            problems.add(where, f"is not valid JSON: {one_line(str(exc))}")
            return INVALID
        if not isinstance(value, dict):
            problems.add(where, f"must be a JSON object (a message), got {show(value)}")
            return INVALID
    elif not isinstance(value, dict):
        problems.add(where, f"must be a table or a JSON string of an object, got {show(value)}")
        return INVALID
    dates = list(_dates(value, where))
    for place in dates:
        problems.add(
            place,
            "TOML dates and times have no JSON form: write it as a string "
            "(e.g. '2026-01-02T03:04:05Z' for a google.protobuf.Timestamp)",
        )
    return INVALID if dates else value


def _dates(value: Any, where: str):
    if isinstance(value, (datetime.date, datetime.time)):
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _dates(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _dates(item, f"{where}[{index}]")


def uses_rpc(value: Any) -> bool:
    """Whether any string in the template holds ``{rpc}`` (else it is the same per call)."""
    if isinstance(value, str):
        return RPC in value
    if isinstance(value, dict):
        return any(uses_rpc(item) for item in value.values())
    if isinstance(value, list):
        return any(uses_rpc(item) for item in value)
    return False


def fill(value: Any, rpc_id: str) -> Any:
    """The template with ``{rpc}`` replaced by ``rpc_id`` in every string value."""
    if isinstance(value, str):
        return value.replace(RPC, rpc_id)
    if isinstance(value, dict):
        return {key: fill(item, rpc_id) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, rpc_id) for item in value]
    return value
