"""``[rpc.expect]``: the fields a correct answer holds, checked on every response.

    [rpc.expect]
    message = "Hello chaos {rpc}"        # a field of the response message
    [rpc.expect.detail]                  # a nested message: its listed fields only
    code = 7

Fields not listed are not checked. A nested table for a message field checks only the
fields it lists; a list (repeated field), a map, a well-known type (Timestamp, Struct, ...)
or a scalar is compared whole. Both sides are compared in the canonical JSON form of the
response type (json_format), so 64-bit integers, enums given by name or number, float32
rounding and bytes (base64) compare as the same value. An expectation of string fields
only is compared field by field instead (chaos/targets/slots.py: the same words, faster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from chaos.targets.errors import cut, did_you_mean, line, listing, one_line
from chaos.targets.slots import Slot, field_named, is_nested_message, slot_difference, string_slots
from chaos.targets.template import fill, uses_rpc

MISSING = object()


@dataclass(frozen=True)
class Expectation:
    """A checked expect template: keys renamed to the fields' proto names; ``shape`` maps
    each listed key to its own shape (a nested message checked field by field) or None
    (compared whole)."""

    template: dict
    shape: dict
    response: type[Message]
    fixed: dict | None  # the canonical expected answer when it is the same for every call
    slots: list[Slot] | None  # every expected field, when all are strings (the fast path)

    def difference(self, answer: Message, rpc_id: str) -> str | None:
        """None when ``answer`` holds every expected field, else the first difference:
        "field message is 'x', expected 'Hello chaos 7'"."""
        if self.slots is not None:
            return slot_difference(answer, self.slots, rpc_id)
        expected = (
            self.fixed
            if self.fixed is not None
            else canonical(json_format.ParseDict(fill(self.template, rpc_id), self.response()))
        )
        return _first_difference(self.shape, expected, canonical(answer), "")


def canonical(message: Message) -> dict:
    """The message's JSON form with proto field names and every implicit-presence field."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def expectation(
    template: dict, response: type[Message], source: str
) -> tuple[Expectation | None, list[str]]:
    """The Expectation of a template against the response type, or None and the problem
    lines (a key that is no field; a value that does not fit it)."""
    problems: list[str] = []
    renamed, shape = _shape(template, response.DESCRIPTOR, "rpc.expect", source, problems)
    if problems:
        return None, problems
    try:
        sample = json_format.ParseDict(fill(renamed, "0"), response())
    except json_format.ParseError as exc:
        return None, [
            line(
                source,
                "rpc.expect",
                f"does not fit {response.DESCRIPTOR.full_name}: {one_line(str(exc))}",
            )
        ]
    fixed = None if uses_rpc(renamed) else canonical(sample)
    slots = string_slots(renamed, response.DESCRIPTOR, only_rpc=False)
    return Expectation(renamed, shape, response, fixed, slots), []


def _shape(
    template: dict, descriptor: Descriptor, where: str, source: str, problems: list[str]
) -> tuple[dict, dict]:
    renamed: dict[str, Any] = {}
    shape: dict[str, Any] = {}
    for key, value in template.items():
        field = field_named(descriptor, key)
        if field is None:
            names = [f.name for f in descriptor.fields]
            problems.append(
                line(
                    source,
                    f"{where}.{key}",
                    f"is not a field of {descriptor.full_name}"
                    f"{did_you_mean(key, names)}; its fields: {listing(names)}",
                )
            )
            continue
        if isinstance(value, dict) and is_nested_message(field):
            renamed[field.name], shape[field.name] = _shape(
                value, field.message_type, f"{where}.{key}", source, problems
            )
        else:
            renamed[field.name], shape[field.name] = value, None
    return renamed, shape


def _first_difference(shape: dict, expected: dict, actual: dict, prefix: str) -> str | None:
    for key, inner in shape.items():
        name = prefix + key
        want, have = expected.get(key, MISSING), actual.get(key, MISSING)
        if inner is not None and isinstance(want, dict):
            found = _first_difference(
                inner, want, have if isinstance(have, dict) else {}, f"{name}."
            )
            if found:
                return found
        elif have is MISSING:
            return f"field {name} is missing, expected {cut(want)}"
        elif have != want:
            return f"field {name} is {cut(have)}, expected {cut(want)}"
    return None
