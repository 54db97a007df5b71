"""Regenerate the Python modules of proto/*.proto, or check that the committed ones are current.

    python proto/generate.py          # write fleet/protos/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py
    python proto/generate.py --check  # exit 1 (naming the stale files) if they differ

``proto/`` holds the sources only and is not a Python package: an installed top-level
``proto`` would shadow (or be overwritten by) proto-plus, whose import name is ``proto``.
The generated modules live in the ``fleet.protos`` package, so they are compiled as if the
sources were ``fleet/protos/*.proto``: they import each other as ``fleet.protos.<name>_pb2``
and register under those file names in protobuf's default pool.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = pathlib.Path("fleet", "protos")
OUT_DIR = ROOT / PACKAGE


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Compile every proto/*.proto into out_dir/fleet/protos/; returns the files written."""
    with tempfile.TemporaryDirectory(prefix="grpc-chaos-proto-") as tmp:
        staged = pathlib.Path(tmp) / PACKAGE
        staged.mkdir(parents=True)
        sources = []
        for source in sorted(PROTO_DIR.glob("*.proto")):
            shutil.copy(source, staged / source.name)
            sources.append((PACKAGE / source.name).as_posix())
        (out_dir / PACKAGE).mkdir(parents=True, exist_ok=True)
        args = [
            "protoc",
            f"-I{tmp}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",  # type stubs: the message classes exist only at run time
            f"--grpc_python_out={out_dir}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {', '.join(sources)}")
    return sorted((out_dir / PACKAGE).glob("*_pb2*.py*"))


def stale_files(committed_dir: pathlib.Path = OUT_DIR) -> list[str]:
    """Names of generated modules in ``committed_dir`` that are missing, extra or different
    from a fresh build of proto/*.proto."""
    with tempfile.TemporaryDirectory(prefix="grpc-chaos-proto-") as tmp:
        fresh = {p.name: p.read_bytes() for p in generate(pathlib.Path(tmp))}
    committed = {p.name: p.read_bytes() for p in committed_dir.glob("*_pb2*.py*")}
    names = fresh.keys() | committed.keys()
    return sorted(n for n in names if fresh.get(n) != committed.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python proto/generate.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the committed modules are stale",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(
                "stale generated modules: " + ", ".join(stale) + " (run: python proto/generate.py)",
                file=sys.stderr,
            )
            return 1
        return 0
    for stale in OUT_DIR.glob("*_pb2*.py*"):
        stale.unlink()
    for written in generate(ROOT):
        print(written.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
