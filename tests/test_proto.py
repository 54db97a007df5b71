"""The generated modules in fleet/protos/ are those that proto/*.proto produce today, and
nothing of grpc-chaos claims the top-level import name ``proto`` (proto-plus's)."""

import importlib.util
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
generate = runpy.run_path(str(ROOT / "proto" / "generate.py"))


def test_committed_modules_are_current():
    assert generate["stale_files"]() == [], "run: python proto/generate.py"


def test_check_command_passes_on_the_committed_modules():
    result = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_a_hand_edited_or_missing_module_is_stale(tmp_path):
    copy = tmp_path / "protos"
    shutil.copytree(generate["OUT_DIR"], copy)
    (copy / "greeter_pb2.py").write_text("# edited by hand\n")
    (copy / "control_pb2_grpc.py").unlink()
    assert generate["stale_files"](copy) == ["control_pb2_grpc.py", "greeter_pb2.py"]


def test_the_source_folder_is_not_a_package_that_could_shadow_proto_plus():
    """From the repository root, a ``proto`` package there would win over proto-plus's."""
    assert not (ROOT / "proto" / "__init__.py").exists()
    spec = importlib.util.find_spec("proto")
    assert spec is None or spec.origin is None or "site-packages" in spec.origin, spec
