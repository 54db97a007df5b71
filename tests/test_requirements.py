"""Requirements: documented defaults, a user's own from a file, and named errors."""

from __future__ import annotations

import json

import pytest

from chaos.verdicts import requirements
from chaos.verdicts.requirements import DEFAULTS, DOCS, UNITS, RequirementsError


def test_every_requirement_is_documented_with_its_unit():
    assert set(DOCS) == set(UNITS) and all(len(text) > 40 for text in DOCS.values())
    assert DEFAULTS.source == "defaults"


def test_a_toml_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "slo.toml"
    path.write_text("[requirements]\nfailover_ms = 500\nerror_budget = 2\n")
    loaded = requirements.load(path)
    assert (loaded.failover_ms, loaded.error_budget) == (500, 2)
    assert loaded.drain_ms == DEFAULTS.drain_ms and loaded.source == str(path)
    assert loaded.describe("failover_ms") == f"failover_ms = 500 ms (set in {path})"
    assert DEFAULTS.describe("drain_ms") == "drain_ms = 50 ms (grpc-chaos default)"


def test_top_level_keys_and_json_work_too(tmp_path):
    (tmp_path / "a.toml").write_text("recovery_ms = 3000\n")
    (tmp_path / "b.json").write_text(json.dumps({"requirements": {"drain_ms": 20}}))
    assert requirements.load(tmp_path / "a.toml").recovery_ms == 3000
    assert requirements.load(tmp_path / "b.json").drain_ms == 20


@pytest.mark.parametrize(
    "text, message",
    [
        ("failover_msx = 1", "unknown requirement 'failover_msx'; did you mean 'failover_ms'?"),
        ("failover_ms = 'fast'", "failover_ms must be a number of ms, got 'fast'"),
        ("error_budget = 0.5", "error_budget must be a whole number of rpcs, got 0.5"),
        ("drain_ms = -1", "drain_ms must be a finite number >= 0, got -1"),
        ("drain_ms = true", "drain_ms must be a number of ms, got True"),
        ("[requirements", "not valid TOML"),
    ],
)
def test_bad_files_name_the_key_and_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RequirementsError) as error:
        requirements.load(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(RequirementsError, match="cannot read"):
        requirements.load(tmp_path / "nope.toml")
