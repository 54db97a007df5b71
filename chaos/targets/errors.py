"""TargetError, and the way a target file's problems are collected and worded.

Every problem is one line that starts with the file it is in and the key it is about::

    grpc-chaos.toml: server.comand: unknown key (did you mean 'command'?)

A file is checked as a whole before anything is refused, so one error lists every problem
found at that stage (keys and types first; then what needs the compiled types: the
method, the request, the expected answer).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any


class TargetError(ValueError):
    """A target that cannot be used. ``problems`` holds one line per problem, each naming
    the file (or "built-in Greeter"), the key and what to do; ``str()`` joins them."""

    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class Problems:
    """The problems of one target source, collected until ``raise_if_any``."""

    def __init__(self, source: str):
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.lines.append(line(self.source, where, what))

    def extend(self, lines: Iterable[str]) -> None:
        self.lines.extend(lines)

    def raise_if_any(self) -> None:
        if self.lines:
            raise TargetError(self.lines)


def line(source: str, where: str, what: str) -> str:
    """One problem as it is printed: ``source: where: what`` (``where`` may be empty)."""
    return f"{source}: {where}: {what}" if where else f"{source}: {what}"


def error(source: str, where: str, what: str) -> TargetError:
    """A TargetError of a single problem."""
    return TargetError([line(source, where, what)])


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest choice, or ``""``: difflib's default cutoff
    (0.6) catches a letter or two wrong, missing or swapped without suggesting unrelated
    names."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def show(value: Any) -> str:
    """A value as a message shows it: strings quoted, TOML's true/false, a list or table
    by kind (their contents would not fit on the line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


# A value shown in a one-line answer check is cut here: the line must still fit a
# terminal beside the field's name.
SHOWN_CHARS = 80


def cut(value: Any) -> str:
    """repr(value), cut to SHOWN_CHARS."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


# Names listed in a message: enough to recognise the right one, short enough for a line.
LISTED_NAMES = 10


def listing(names: Iterable[str]) -> str:
    """``a, b, c`` — at most LISTED_NAMES names, then how many more."""
    names = list(names)
    shown = ", ".join(names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else (shown or "none")


def one_line(text: str) -> str:
    """Another library's multi-line message (json_format, protoc) on one line."""
    return re.sub(r"\s+", " ", text).strip()
