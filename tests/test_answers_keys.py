"""A scenario's ``answers=`` keys name settings of the advice catalogue, checked when the
scenarios are collected (chaos/verdicts/advice.py unknown_answers, chaos/run/plugin.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaos.verdicts.advice import unknown_answers

ROOT = Path(__file__).resolve().parent.parent


def _scenario_with_a_typo(chaos, checks):
    chaos.expect(checks.errors(chaos.history), answers=("retryPolicy", "outlierDetecton"))
    chaos.expect(checks.errors(chaos.history), answers="healthCheckConfg")


def _scenario_without_typos(chaos, checks, computed):
    chaos.expect(checks.errors(chaos.history), answers=("retryPolicy", "outlierDetection"))
    chaos.expect(checks.errors(chaos.history), answers=computed)  # not a literal: not seen


def test_each_unknown_key_is_named_with_where_it_is_and_the_nearest_known_one():
    problems = unknown_answers(_scenario_with_a_typo)
    assert len(problems) == 2
    first_line = _scenario_with_a_typo.__code__.co_firstlineno
    assert problems[0] == (
        f"{__file__}:{first_line + 1}: answers= names 'outlierDetecton', no known setting; "
        "did you mean 'outlierDetection'?"
    )
    assert "'healthCheckConfg'" in problems[1] and "'healthCheckConfig'" in problems[1]


def test_known_keys_and_computed_ones_pass():
    assert unknown_answers(_scenario_without_typos) == []


def test_the_shipped_catalogue_names_only_known_settings():
    import importlib

    for path in sorted((ROOT / "scenarios").glob("test_*.py")):
        module = importlib.import_module(f"scenarios.{path.stem}")
        for name in dir(module):
            if name.startswith("test_"):
                assert unknown_answers(getattr(module, name)) == [], name


def test_a_typo_stops_the_run_at_collection(tmp_path):
    (tmp_path / "test_typo.py").write_text(
        "from chaos import checks\n\n"
        "def test_typo(chaos):\n"
        "    chaos.expect(checks.errors(chaos.history), answers=('outlierDetecton',))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_typo.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    assert "test_typo.py:4: answers= names 'outlierDetecton'" in done.stderr
    assert "did you mean 'outlierDetection'?" in done.stderr
