"""``python -m fleet up``: start a fleet for people and other tools.

    python -m fleet up --size 3 [--mtls] [--workdir DIR]

Prints one JSON line when every backend serves and DNS answers::

    {"target": "dns://127.0.0.1:5353/greeter.example.com:41234",
     "authority": "greeter.example.com:41234", "ca": "/abs/ca.pem",
     "client_cert": "/abs/client.pem", "client_key": "/abs/client.key",
     "dns": "127.0.0.1:5353",
     "backends": [{"id": "b1", "pid": 4242, "address": "127.0.0.11:41234",
                   "control": "127.0.0.1:40001"}, ...]}

Any gRPC client given the CA can dial ``target`` with round_robin. Runs until SIGINT or
SIGTERM, then stops everything it started and exits 0. Bad arguments: exit 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from fleet.controller import MAX_SIZE, Fleet, FleetError


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"size {value} is not within 1..{MAX_SIZE}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a fleet and keep it up until SIGINT/SIGTERM")
    up.add_argument("--size", type=_size, default=3, help=f"backends, 1..{MAX_SIZE} (3)")
    up.add_argument("--mtls", action="store_true", help="backends require client certificates")
    up.add_argument("--workdir", help="keep PKI and logs here (default: a temporary directory "
                                      "removed at exit)")
    return parser.parse_args(argv)


def up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fleet = Fleet(args.size, mtls=args.mtls, workdir=args.workdir)
    try:
        fleet.start()
        print(json.dumps(fleet.info()), flush=True)
        stop.wait()
    except FleetError as exc:
        print(f"fleet up: error: {exc}", file=sys.stderr)
        return 1
    finally:
        fleet.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return up(args)


if __name__ == "__main__":
    sys.exit(main())
