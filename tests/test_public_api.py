"""The public API is what chaos/__init__.py names, and importing chaos stays light."""

import subprocess
import sys

import chaos


def test_every_public_name_resolves():
    for name in chaos.__all__:
        assert getattr(chaos, name) is not None, name


def test_importing_chaos_does_not_load_grpc():
    code = "import sys, chaos; print('grpc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr
