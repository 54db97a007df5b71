"""Compile .proto files at run time with grpcio-tools' protoc, like ``grpcurl -proto``.

    protoc --proto_path=<import paths> --proto_path=<grpc_tools' well-known types>
           --descriptor_set_out=<temporary file> --include_imports <files>
      -> the FileDescriptorSet's files (the target's and everything they import)

Nothing is generated into the project: the descriptor set is written into a temporary
directory that is removed at once. protoc runs as a child process (~0.2 s) because its
errors go to the process's stderr: in a child they are captured and the first one becomes
the message, with its file:line:column.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.protobuf.descriptor_pb2 import FileDescriptorProto, FileDescriptorSet

# A compile of a few files takes ~0.2 s here; this only bounds a compiler that hangs.
PROTOC_TIMEOUT_S = 60.0


class CompileError(Exception):
    """protoc refused the files; the message is its first error line."""


def well_known_types() -> Path:
    """grpc_tools' copy of google/protobuf/*.proto (timestamp, empty, ...)."""
    return Path(str(resources.files("grpc_tools") / "_proto"))


def compile_protos(
    files: list[str], import_paths: list[str], cwd: Path
) -> list[FileDescriptorProto]:
    """The descriptors of ``files`` and their imports; paths may be relative to ``cwd``
    (protoc's messages then name them as written)."""
    with tempfile.TemporaryDirectory(prefix="grpc-chaos-protoc-") as tmp:
        out = Path(tmp) / "descriptors.pb"
        argv = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            *(f"--proto_path={path}" for path in import_paths),
            f"--proto_path={well_known_types()}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *files,
        ]
        try:
            done = subprocess.run(
                argv, cwd=cwd, capture_output=True, text=True, timeout=PROTOC_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise CompileError(f"protoc did not finish within {PROTOC_TIMEOUT_S:g} s") from None
        if done.returncode != 0:
            raise CompileError(
                first_error(done.stderr) or f"protoc failed with exit status {done.returncode}"
            )
        return list(FileDescriptorSet.FromString(out.read_bytes()).file)


def first_error(stderr: str) -> str:
    """protoc's first error line; warnings (an unused import, ...) are skipped."""
    lines = [text.strip() for text in stderr.splitlines() if text.strip()]
    errors = [text for text in lines if "warning:" not in text]
    return (errors or lines or [""])[0]
