"""The docs keep their promises: the README is a short guide whose commands exist, every
link inside the repository resolves, nothing cites a file outside it, and the fleet example
in docs/architecture.md runs as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
COMMAND_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def _tracked() -> list[str]:
    return subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()


def test_the_readme_is_a_short_guide():
    assert len(README.read_text().splitlines()) < 300


def test_no_file_cites_a_design_note_outside_the_repository():
    outside = "DESIGN" + ".md"  # spelled apart so that this file does not cite it either
    hits = subprocess.run(
        ["git", "grep", "-l", outside], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert hits == []


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for page in DOCS:
        for target, _anchor in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def _readme_commands() -> list[list[str]]:
    commands = []
    for block in COMMAND_BLOCK.findall(README.read_text()):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def test_every_readme_command_exists_as_written():
    """Each command of the README's sh blocks: its make target is defined, its program and
    subcommand answer --help (running them all is what make scenarios and make test do)."""
    commands = _readme_commands()
    assert len(commands) >= 15
    for argv in commands:
        if argv[0] == "make":
            done = subprocess.run(
                ["make", "-n", argv[1]], cwd=ROOT, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, (argv, done.stderr)
            continue
        program = Path(argv[0]).name
        if program in ("python", "python3"):
            # python -m MODULE [SUBCOMMAND]: the module's --help (pytest: the plugin loads)
            head = argv[:3] + ([argv[3]] if argv[2] == "chaos.profiles" else [])
        elif program == "grpc-chaos":
            head = argv[:2]
        else:
            raise AssertionError(f"a README command this test does not know: {argv}")
        head[0] = str(ROOT / argv[0]) if "/" in argv[0] else argv[0]
        done = subprocess.run(
            [*head, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (argv, done.stderr[-2000:])


def test_the_fleet_example_in_the_architecture_page_runs(tmp_path):
    text = (ROOT / "docs" / "architecture.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    imports = {
        line.split()[1] for line in example.splitlines() if line.startswith(("from ", "import "))
    }
    assert {name.split(".")[0] for name in imports} == {"fleet"}
    assert len(example.strip().splitlines()) <= 20
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    served = dict(line.split() for line in done.stdout.splitlines())
    assert served["b2"] == "killed"
    assert int(served["b1"]) > 0 and int(served["b3"]) > 0
    assert int(served["failed"]) <= 1  # at most the one RPC written to b2 as it died
