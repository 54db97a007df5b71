"""``python -m fleet up``: start a fleet for people and other tools.

    python -m fleet up --size 3 [--mtls] [--workdir DIR] [--toxiproxy-url URL | --no-proxies]

Each backend is published behind its own Toxiproxy proxy (the server chosen as in the
scenarios: --toxiproxy-url, TOXIPROXY_URL, a toxiproxy-server on PATH, or the embedded
one, started here). Prints one JSON line when every backend serves and DNS answers::

    {"target": "dns://127.0.0.1:5353/greeter.example.com:41234",
     "authority": "greeter.example.com:41234", "ca": "/abs/ca.pem",
     "client_cert": "/abs/client.pem", "client_key": "/abs/client.key",
     "dns": "127.0.0.1:5353", "mtls": false, "toxiproxy": "http://127.0.0.1:8474",
     "backends": [{"id": "b1", "pid": 4242, "address": "127.0.0.11:41234",
                   "control": "127.0.0.1:40001", "proxy": "greeter.example.com-41234-b1",
                   "upstream": "127.0.0.1:39999"}, ...]}

``address`` is what DNS publishes (the proxy's listen address); ``upstream`` is where the
backend itself listens. Toxics added to a backend's proxy through the Toxiproxy API affect
exactly that backend. With --no-proxies the backends listen on the published addresses.

Any gRPC client given the CA can dial ``target`` with round_robin. Runs until SIGINT or
SIGTERM, then stops everything it started and exits 0. Bad arguments: exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading

from fleet.controller import MAX_SIZE, Fleet


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
    proxies = up.add_mutually_exclusive_group()
    proxies.add_argument("--toxiproxy-url", help="use this running Toxiproxy server")
    proxies.add_argument("--no-proxies", action="store_true",
                         help="publish the backends directly, without Toxiproxy")
    return parser.parse_args(argv)


def up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        try:
            server = None
            if not args.no_proxies:
                from chaos.toxiproxy_control import ToxiproxyServer

                url = args.toxiproxy_url
                server = stack.enter_context(ToxiproxyServer("url" if url else None, url=url))
            fleet = Fleet(args.size, mtls=args.mtls, workdir=args.workdir,
                          proxies=server.control() if server else None)
            stack.callback(fleet.close)
            fleet.start()
        except Exception as exc:  # one line for people, no traceback
            print(f"fleet up: error: {exc}", file=sys.stderr)
            return 1
        info = fleet.info()
        if server is not None:
            info["toxiproxy"] = server.url
        print(json.dumps(info), flush=True)
        stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return up(args)


if __name__ == "__main__":
    sys.exit(main())
