"""``python -m chaos.http2 --parent-pid PID``: the HTTP/2 fault point process.

It listens for its control API (service.py) on a free loopback port and prints one line,
``{"ready": true, "control": "127.0.0.1:PORT", "pid": PID}``, then serves until SIGTERM
or SIGINT (every point and connection closed, exit 0) or until its parent dies: it is
started with a lifeline on stdin and dies with ``--parent-pid`` (fleet/procs/lifeline.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from fleet.procs import lifeline

from .service import Service


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return  # plain asyncio works, only slower
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _quiet_handshake_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # A client that fails the TLS handshake (an mTLS test without a certificate, a port
    # scan) is the client's problem: one debug line, not a traceback on stderr.
    exception = context.get("exception")
    if isinstance(exception, OSError | ConnectionError):
        logging.getLogger("chaos.http2").debug("connection error: %s", exception)
        return
    loop.default_exception_handler(context)


async def serve() -> int:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_handshake_errors)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    service = Service()
    host, port = await service.listen()
    print(json.dumps({"ready": True, "control": f"{host}:{port}", "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        await service.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.http2", description=__doc__)
    parser.add_argument("--parent-pid", type=int, help="die when this process dies")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "warning"))
    options = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, str(options.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if options.parent_pid is not None:
        lifeline.die_with_parent(options.parent_pid)
    _event_loop_policy()
    return asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
