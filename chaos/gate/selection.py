"""Which scenarios a gate runs: paths, fault families, a marker expression, ``-k``.

Families are the plugin's pytest markers (chaos/run/plugin.py FAMILIES); ``--family kill,hang``
becomes ``-m "(kill or hang)"``, and/ed with a ``-m`` expression of the user's. pytest
accepts a marker it does not know in ``-m`` and silently selects nothing, so every name
in the expression is checked here first, and a typo is an error that names it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from chaos.outcomes import UsageError
from chaos.run.plugin import FAMILIES

# Markers a scenario may carry besides its family (chaos/run/plugin.py registers "detects";
# the rest are pytest's own).
OTHER_MARKERS = (
    "detects",
    "parametrize",
    "skip",
    "skipif",
    "xfail",
    "usefixtures",
    "filterwarnings",
    "timeout",
)
_KEYWORDS = {"and", "or", "not"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The catalogue's folder: scenarios/ in a clone, chaos/catalogue/ in an installed wheel.
CATALOGUE = Path(__file__).resolve().parents[1] / "catalogue"
if not CATALOGUE.is_dir():  # a clone, or an editable install: pyproject maps it to scenarios/
    CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass(frozen=True)
class Selection:
    paths: tuple[str, ...]
    families: tuple[str, ...] = ()
    markers: str | None = None
    keyword: str | None = None
    extra: tuple[str, ...] = field(default=())

    @property
    def expression(self) -> str | None:
        """The -m expression pytest gets (families and markers together)."""
        parts = []
        if self.families:
            parts.append("(" + " or ".join(self.families) + ")")
        if self.markers:
            parts.append(f"({self.markers})")
        return " and ".join(parts) or None

    def pytest_args(self) -> list[str]:
        args = list(self.paths)
        if self.expression:
            args += ["-m", self.expression]
        if self.keyword:
            args += ["-k", self.keyword]
        return args + list(self.extra)

    def describe(self) -> str:
        parts = [", ".join(self.paths)]
        if self.expression:
            parts.append(f"-m {self.expression!r}")
        if self.keyword:
            parts.append(f"-k {self.keyword!r}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {
            "paths": list(self.paths),
            "families": list(self.families),
            "markers": self.markers,
            "keyword": self.keyword,
            "expression": self.expression,
            "pytest_args": list(self.extra),
        }


def build(
    paths: list[str],
    families: list[str],
    markers: str | None,
    keyword: str | None,
    extra: list[str],
) -> Selection:
    """A checked selection; paths relative to the current directory are made absolute
    (pytest runs from the catalogue's project)."""
    chosen = _families(families)
    if markers is not None:
        check_markers(markers)
    resolved = []
    for path in paths or [str(CATALOGUE)]:
        node = path.split("::", 1)
        if not Path(node[0]).exists():
            raise UsageError(f"no scenario file or directory {node[0]}")
        resolved.append("::".join([str(Path(node[0]).resolve()), *node[1:]]))
    return Selection(tuple(resolved), chosen, markers, keyword, tuple(extra))


def _families(names: list[str]) -> tuple[str, ...]:
    chosen = []
    for item in names:
        for name in filter(None, (n.strip() for n in item.split(","))):
            if name not in FAMILIES:
                raise UsageError(
                    f"unknown family {name!r}{_hint(name, FAMILIES)}; "
                    f"families: {', '.join(FAMILIES)}"
                )
            chosen.append(name)
    return tuple(dict.fromkeys(chosen))


def check_markers(expression: str) -> None:
    """Every name in a -m expression is a known marker."""
    known = (*FAMILIES, *OTHER_MARKERS)
    for name in _NAME.findall(expression):
        if name not in _KEYWORDS and name not in known:
            raise UsageError(
                f"unknown marker {name!r} in -m {expression!r}"
                f"{_hint(name, known)}; families: {', '.join(FAMILIES)}"
            )


def _hint(name: str, known) -> str:
    near = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""
