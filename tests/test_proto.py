"""The generated modules in proto/ are those that proto/*.proto produce today."""

import shutil
import subprocess
import sys

from proto import generate


def test_committed_modules_are_current():
    assert generate.stale_files() == [], "run: python -m proto.generate"


def test_check_command_passes_on_the_committed_modules():
    result = subprocess.run([sys.executable, "-m", "proto.generate", "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_hand_edited_or_missing_module_is_stale(tmp_path):
    copy = tmp_path / "proto"
    shutil.copytree(generate.PROTO_DIR, copy)
    (copy / "greeter_pb2.py").write_text("# edited by hand\n")
    (copy / "control_pb2_grpc.py").unlink()
    assert generate.stale_files(copy) == ["control_pb2_grpc.py", "greeter_pb2.py"]
