"""Which scenarios a setting answers: the ``answers=`` keys each scenario function writes,
read from its source by AST (as chaos/verdicts/advice.py ``unknown_answers`` reads them),
without importing the scenarios (no grpc, no fixtures: the map is known before anything
runs).

A key is resolved when it is a string literal, a tuple or list of them, a module-level
name bound to one (``RETRIES = ("retryPolicy",)``), a sum of those or a constant slice of
one (``KEEPALIVE[:2]``). A helper function of the same file that the scenario calls is
read too (its keys are the scenario's). Keys computed at run time (the fuzz corpus's, a
helper's ``answers`` parameter) are not seen: a scenario that only has those answers
nothing here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Scenario:
    """A scenario function: ``name`` as records call it (``test_kill::test_x``), ``nodeid``
    (an absolute file path and the function, what pytest selects; every parametrization
    of it runs) and the advice keys its checks name."""

    name: str
    nodeid: str
    keys: frozenset[str]


def _constants(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Module-level names bound to tuples of strings, in source order (later may use earlier)."""
    found: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                value = evaluate(node.value, found)
                if value is not None:
                    found[target.id] = value
    return found


def evaluate(node: ast.expr, names: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """The strings an ``answers=`` expression names, or None when it is not static."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Tuple | ast.List):
        parts = [evaluate(element, names) for element in node.elts]
        if any(part is None for part in parts):
            return None
        return tuple(key for part in parts if part for key in part)
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = evaluate(node.left, names), evaluate(node.right, names)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        base = evaluate(node.value, names)
        bounds = [node.slice.lower, node.slice.upper, node.slice.step]
        values = [_integer(b) for b in bounds]
        if base is None or any(v is not None and not isinstance(v, int) for v in values):
            return None
        return base[slice(*values)]  # type: ignore[arg-type]
    return None


def _integer(node: ast.expr | None) -> object:
    """A slice bound: None, an int (``-1`` is a unary minus on a constant), else the node."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _integer(node.operand)
        return -inner if isinstance(inner, int) else node
    return node


def scan_file(path: Path) -> list[Scenario]:
    """Every top-level ``test_*`` function of a scenario file with its answers keys."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = _constants(tree)
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    module = path.stem
    return [
        Scenario(
            f"{module}::{name}",
            f"{path.resolve()}::{name}",
            frozenset(_keys(node, functions, names, set())),
        )
        for name, node in functions.items()
        if name.startswith("test")
    ]


def _keys(
    function: ast.AST, functions: Mapping[str, ast.AST], names: dict, seen: set[str]
) -> set[str]:
    """The answers keys ``function`` writes, and those of the module's own functions it
    calls (a scenario's helper that holds its checks), each function read once."""
    keys: set[str] = set()
    for inner in ast.walk(function):
        if not isinstance(inner, ast.Call):
            continue
        for keyword in inner.keywords:
            if keyword.arg == "answers":
                keys.update(evaluate(keyword.value, names) or ())
        callee = inner.func.id if isinstance(inner.func, ast.Name) else ""
        if callee in functions and callee not in seen and not callee.startswith("test"):
            seen.add(callee)
            keys |= _keys(functions[callee], functions, names, seen)
    return keys


def scan(catalogue: Path) -> list[Scenario]:
    """Every scenario of a catalogue folder (``test_*.py``, sorted: pytest's order)."""
    return [s for path in sorted(catalogue.glob("test_*.py")) for s in scan_file(path)]


def answering(scenarios: Iterable[Scenario], keys: Iterable[str]) -> list[Scenario]:
    """The scenarios whose checks name any of ``keys``, in catalogue order."""
    wanted = set(keys)
    return [s for s in scenarios if s.keys & wanted]
