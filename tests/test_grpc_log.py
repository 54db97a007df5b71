"""gRPC's ERROR log is evidence (chaos/observe/grpc_log.py): GRPC_VERBOSITY=NONE must not hide it
from a scenario, and what cannot be undone is named instead of judged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_plugin_raises_none_to_error_before_grpc_starts():
    out = run(
        "import os, chaos.run.plugin, grpc\n"
        "from chaos.observe import grpc_log\n"
        "print(os.environ['GRPC_VERBOSITY'], grpc_log.unavailable(), "
        "grpc_log.raised_from())",
        GRPC_VERBOSITY="none",
    )
    assert out == "ERROR None NONE"


def test_a_level_that_keeps_errors_is_left_alone():
    out = run(
        "import os, chaos.run.plugin\nfrom chaos.observe import grpc_log\n"
        "print(os.environ['GRPC_VERBOSITY'], grpc_log.unavailable())",
        GRPC_VERBOSITY="DEBUG",
    )
    assert out == "DEBUG None"


def test_grpc_started_with_its_log_off_is_named_not_judged():
    out = run(
        "import grpc, chaos.run.plugin\nfrom chaos.observe import grpc_log\n"
        "print(grpc_log.unavailable())",
        GRPC_VERBOSITY="NONE",
    )
    assert "GRPC_VERBOSITY=NONE when grpc started" in out


def test_an_error_grpc_logs_reaches_stderr_despite_grpc_verbosity_none():
    """The evidence itself: with GRPC_VERBOSITY=NONE in the environment, a grpc ERROR line
    (here: a service config it refuses) is silent without the plugin and reaches stderr
    with it."""
    code = (
        "import chaos.run.plugin, grpc\n"
        "ch = grpc.insecure_channel('127.0.0.1:1', options=[('grpc.service_config', "
        '\'{"loadBalancingConfig": [{"nope": {}}]}\')])\n'
        "try:\n    grpc.channel_ready_future(ch).result(timeout=0.5)\n"
        "except Exception:\n    pass\nch.close()\n"
    )
    environment = {**os.environ, "GRPC_VERBOSITY": "NONE"}
    quiet = subprocess.run(
        [sys.executable, "-c", code.replace("import chaos.run.plugin, ", "import ")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    loud = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert quiet.stderr.strip() == "", quiet.stderr
    assert "errors validating service config" in loud.stderr, loud.stderr


def test_importing_the_backend_module_leaves_the_environment_alone():
    out = run("import os, fleet.server\nprint(os.environ.get('GRPC_VERBOSITY'))")
    assert out == "None"
