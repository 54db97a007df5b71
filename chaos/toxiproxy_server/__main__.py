"""``python -m chaos.toxiproxy_server`` / ``grpc-chaos-toxiproxy``: run the server.

Flags are the reference's (flags.py), with -host defaulting to 127.0.0.1. Logs go to
stderr (level from LOG_LEVEL, as the reference). SIGINT and SIGTERM stop it cleanly:
the API closes and every proxied connection is closed, then it exits with 0. With
``--ready-line`` one JSON line ``{"ready": true, "url": ..., "pid": ...}`` is printed to
stdout once the API listens (so a parent can start it on -port 0); ``--parent-watch``
makes it die with its parent (parentwatch.py); ``--lag-log PATH`` logs how late its event
loop runs (lag.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

from . import VERSION, flags, parentwatch
from .goaddr import GoNetError

log = logging.getLogger("toxiproxy")

_LEVELS = {
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}


def _setup_logging() -> None:
    level = _LEVELS.get(os.environ.get("LOG_LEVEL", "info").lower(), logging.INFO)
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _ready_line(address: str) -> str:
    host, _, port = address.rpartition(":")
    if host in ("[::]", "0.0.0.0", ""):
        host = "127.0.0.1"  # a wildcard bind is reachable on loopback
    return json.dumps({"ready": True, "url": f"http://{host}:{port}", "pid": os.getpid()})


async def serve(options: dict) -> int:
    from .app import App  # imported here so -version and -h stay fast

    app = App(options["proxy_metrics"], options["runtime_metrics"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if options["parent_watch"]:
        parentwatch.on_stdin_eof(lambda: loop.call_soon_threadsafe(stop.set))
    log.info("starting Toxiproxy %s", VERSION)
    if options["config"]:
        await app.load_config(options["config"])
    try:
        address = await app.listen(options["host"], options["port"])
    except GoNetError as err:
        log.error("cannot start the HTTP API: %s", err)
        await app.close()
        return 1
    lag = None
    if options["lag_log"]:
        from . import lag as lag_meter

        try:
            fd = lag_meter.open_log(str(options["lag_log"]))
        except OSError as err:
            log.error("cannot open the lag log %s: %s", options["lag_log"], err.strerror)
            await app.close()
            return 1
        lag = asyncio.create_task(lag_meter.measure(fd))
    if options["ready_line"]:
        print(_ready_line(address), flush=True)
    await stop.wait()
    log.info("shutdown started")
    if lag is not None:
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
    await app.close()
    return 0


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return  # plain asyncio works, only slower
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    options = flags.parse_or_exit(sys.argv[1:] if argv is None else argv)
    if options["version"]:
        print(f"{flags.PROGRAM} version {VERSION}")
        return 0
    _setup_logging()
    if options["parent_watch"]:
        parentwatch.die_with_parent()
    _event_loop_policy()
    return asyncio.run(serve(options))


if __name__ == "__main__":
    sys.exit(main())
