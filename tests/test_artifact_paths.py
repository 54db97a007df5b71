"""Artifact paths are built from sanitized names and never leave the artifacts directory."""

import pytest

from chaos.run.artifacts import artifact_dir, safe_name

HOSTILE = [
    "../x",
    "..",
    ".",
    "/etc/passwd",
    "a/../../b",
    "\x00nul",
    "é/ü",
    "~root",
    "-rf",
    ".hidden",
    "a" * 500,
    "x:y*z?<>|",
    "back\\slash",
    "",
    " ",
    "\ud800",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_safe_name_is_one_plain_path_component(name):
    safe = safe_name(name)
    assert safe and len(safe) <= 120
    assert "/" not in safe and "\\x00" not in safe and safe not in (".", "..")
    assert not safe.startswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in safe)


def test_distinct_names_stay_distinct_and_plain_names_stay_as_they_are():
    assert safe_name("recommended") == "recommended"
    assert safe_name("../x") != safe_name("..x") != safe_name("x")
    assert len({safe_name(n) for n in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("name", HOSTILE)
def test_artifact_dirs_of_hostile_names_are_inside_the_root(tmp_path, name):
    path = artifact_dir(tmp_path, safe_name(name), safe_name(name))
    assert tmp_path.resolve() in path.parents


def test_a_path_that_would_escape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        artifact_dir(tmp_path, "..", "x")
    with pytest.raises(ValueError, match="outside"):
        artifact_dir(tmp_path / "a", "/etc")
