"""Every scenario detects what it claims to: under each profile named in its
``@pytest.mark.detects(profile="check")`` it must fail, and the failed verdict must be that
check. Without this a scenario could silently stop detecting its fault (a bound made too
loose, a fault that no longer applies) and still pass under every profile.

One pytest run per weak profile executes just the scenarios that name it (the run is
shared by all cases of that profile); the cells come from its JUnit report.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from chaos import matrix

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def _expectations() -> list[tuple[str, str, str]]:
    """(profile, node id, check) for every detects mark in scenarios/."""
    found = []
    for path in sorted(SCENARIOS.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_scenarios_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_"):
                continue
            for mark in getattr(function, "pytestmark", []):
                if mark.name == "detects":
                    for profile, check in mark.kwargs.items():
                        found.append((profile, f"scenarios/{path.name}::{name}", check))
    return found


EXPECTATIONS = _expectations()
_runs: dict[str, dict[str, matrix.Cell]] = {}


def _cells(profile: str, tmp_dir: Path) -> dict[str, matrix.Cell]:
    if profile not in _runs:
        nodes = sorted({node for p, node, _ in EXPECTATIONS if p == profile})
        _runs[profile] = matrix.run_profile(profile, nodes, tmp_dir, paths=[])
    return _runs[profile]


def test_every_weak_profile_is_expected_to_fail_somewhere():
    assert {p for p, _, _ in EXPECTATIONS} >= {"naive", "pick_first"}


@pytest.mark.parametrize("profile, node, check", EXPECTATIONS,
                         ids=[f"{p}-{n.split('::')[1]}" for p, n, _ in EXPECTATIONS])
def test_scenario_fails_under_weak_profile_for_the_right_reason(profile, node, check,
                                                                tmp_path_factory):
    cells = _cells(profile, tmp_path_factory.mktemp(f"detect-{profile}"))
    key = f"{Path(node.split('::')[0]).stem}::{node.split('::')[1]}"
    cell = cells.get(key)
    assert cell is not None, f"{node} did not run under {profile}"
    assert cell.outcome == "FAIL", f"{node} should fail under {profile} ({check}) but: {cell}"
    assert cell.reason.startswith(f"{check}:"), (
        f"{node} failed under {profile}, but not on {check}: {cell.reason}")
