"""grpc-chaos as a team installs it: a wheel in a fresh venv, used from an empty directory.

The wheel must carry everything the commands need (the catalogue as ``chaos.catalogue``,
the profiles, the generated gRPC modules under ``fleet.protos``) and claim no top-level
import name but ``chaos`` and ``fleet``: with proto-plus (import name ``proto``, a
dependency of every google-cloud-* library) in the same venv, ``import proto`` must stay
proto-plus's and grpc-chaos must still work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT_S = 600


def test_every_package_folder_is_in_the_wheel_list():
    """pyproject lists its packages (the catalogue is mapped from scenarios/); a new folder
    left out of the list would be missing from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("chaos", "fleet")
        for init in (ROOT / top).rglob("__init__.py")
    }
    on_disk.add("chaos.catalogue")
    assert listed == on_disk
    assert config["package-dir"] == {"chaos.catalogue": "scenarios"}


def _tracked_copy(destination: Path) -> None:
    """The repository's tracked files (what a clean clone has), copied to ``destination``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = destination / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel built from this checkout and proto-plus; returns its bin/."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    _tracked_copy(source)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TMPDIR": str(work)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
        env=env,
        cwd=work,
    )
    wheel = next((work / "dist").glob("grpc_chaos-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=INSTALL_TIMEOUT_S
    )
    bin_dir = work / "venv" / "bin"
    subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--constraint",
            str(ROOT / "constraints.txt"),
            str(wheel),
            "proto-plus",
        ],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
        env=env,
        cwd=work,
    )
    return wheel, bin_dir


@pytest.fixture
def team_dir(tmp_path):
    """An empty directory that is a team's, not this repository."""
    path = tmp_path / "team"
    path.mkdir()
    return path


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    # No PYTHONPATH and no repository on the path: only what the wheel installed.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_wheel_claims_only_chaos_and_fleet(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"chaos", "fleet"}


def test_the_wheel_carries_the_drivers_sources_and_their_protocol(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        proto = archive.read("chaos/clients/drivers/driver.proto").decode()
    assert "package grpc_chaos.driver.v1;" in proto  # the file, not a dangling link
    assert proto == (ROOT / "proto" / "driver.proto").read_text()
    for name in (
        "chaos/clients/drivers/python_grpcio.py",
        "chaos/clients/drivers/go/main.go",
        "chaos/clients/drivers/go/Makefile",
        "chaos/clients/drivers/node/driver.js",
        "chaos/clients/drivers/node/package-lock.json",
        "chaos/clients/drivers/java/Makefile",
        "chaos/clients/drivers/java/src/grpcchaos/driver/Main.java",
        "chaos/clients/drivers/java/src/io/netty/handler/ssl/JdkAlpnShim.java",
    ):
        assert name in names, name


def test_the_python_driver_runs_from_the_wheel(installed, team_dir):
    _, bin_dir = installed
    done = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "from chaos.clients import builtin; from chaos.clients.driver import Driver; "
            "c = builtin.resolve('python'); d = Driver(c.argv, c.name).start(); "
            "print(d.describe); d.close()",
        ],
        team_dir,
        120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("grpcio ") and "(python driver)" in done.stdout


def test_proto_stays_proto_plus_beside_grpc_chaos(installed, team_dir):
    _, bin_dir = installed
    done = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "import proto, chaos, fleet.protos.greeter_pb2; "
            "from chaos.targets.builtin import builtin; builtin(); "
            "print(proto.__file__); print(proto.Message.__module__)",
        ],
        team_dir,
        120,
    )
    assert done.returncode == 0, done.stderr
    location, module = done.stdout.split()
    assert Path(location).parts[-3:] == ("site-packages", "proto", "__init__.py")
    assert module == "proto.message"


def test_the_gate_runs_the_catalogue_from_an_empty_directory(installed, team_dir):
    _, bin_dir = installed
    done = _run(
        [str(bin_dir / "grpc-chaos"), "gate", "--family", "balance", "--output", "runs"],
        team_dir,
        600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "grpc-chaos gate: PASS" in done.stdout
    assert list(team_dir.glob("runs/*/report.html"))


def test_pytest_runs_the_whole_catalogue_from_an_empty_directory(installed, team_dir):
    """``pytest --pyargs chaos.catalogue``: every scenario, with the plugin from the wheel's
    entry point (this venv has no pytest-xdist or pytest-timeout: not needed to run)."""
    _, bin_dir = installed
    done = _run(
        [
            str(bin_dir / "python"),
            "-m",
            "pytest",
            "--pyargs",
            "chaos.catalogue",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        team_dir,
        1200,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    assert not list(team_dir.glob("**/*.py")), "nothing written into the team's sources"
