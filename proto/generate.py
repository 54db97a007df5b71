"""Regenerate the Python modules of proto/*.proto, or check that the committed ones are current.

    python -m proto.generate          # write proto/*_pb2.py and proto/*_pb2_grpc.py
    python -m proto.generate --check  # exit 1 (naming the stale files) if they differ

Generation runs from the repository root with ``-I .`` so the generated modules import each
other as ``proto.<name>_pb2`` (package-relative), not as top-level modules.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Compile every proto/*.proto into out_dir/proto/; returns the files written."""
    sources = sorted(p.relative_to(ROOT).as_posix() for p in PROTO_DIR.glob("*.proto"))
    (out_dir / "proto").mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{ROOT}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
            *sources]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {', '.join(sources)}")
    return sorted((out_dir / "proto").glob("*_pb2*.py"))


def stale_files(committed_dir: pathlib.Path = PROTO_DIR) -> list[str]:
    """Names of generated modules in ``committed_dir`` that are missing, extra or different
    from a fresh build of proto/*.proto."""
    with tempfile.TemporaryDirectory(prefix="grpc-chaos-proto-") as tmp:
        fresh = {p.name: p.read_bytes() for p in generate(pathlib.Path(tmp))}
    committed = {p.name: p.read_bytes() for p in committed_dir.glob("*_pb2*.py")}
    names = fresh.keys() | committed.keys()
    return sorted(n for n in names if fresh.get(n) != committed.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proto.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the committed modules are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated modules: " + ", ".join(stale)
                  + " (run: python -m proto.generate)", file=sys.stderr)
            return 1
        return 0
    for stale in PROTO_DIR.glob("*_pb2*.py"):
        stale.unlink()
    for written in generate(ROOT):
        print(written.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
