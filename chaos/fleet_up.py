"""``grpc-chaos fleet up``: start a fleet for people and other tools.

    grpc-chaos fleet up --size 3 [--mtls] [--workdir DIR] [--toxiproxy-url URL | --no-proxies]

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

A backend that ends while the fleet is up (killed by hand, crashed, drained through its
control port) is reaped at once, so it never lingers as a zombie, and reported as one JSON
line on stderr; it stays down (the other backends keep serving)::

    {"event": "backend-exited", "id": "b2", "pid": 4242, "signal": "SIGKILL"}
    {"event": "backend-exited", "id": "b3", "pid": 4243, "exit_code": 1,
     "log_tail": "Traceback ... | ... | RuntimeError: ..."}

``log_tail`` (the last lines of the backend's stderr) is there when the log has any.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import threading

from chaos.toxiproxy_server.control import ToxiproxyServer
from fleet.controller import MAX_SIZE, Backend, Fleet
from fleet.launch import tail as _tail

# Lines of a dead backend's stderr in its report: a traceback's last frame and its error.
LOG_TAIL_LINES = 5
# How long stopping the watcher waits for its thread; it wakes at once, this bounds a bug.
_WATCHER_JOIN_TIMEOUT_S = 10.0


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"size {value} is not within 1..{MAX_SIZE}")
    return value


def parse_args(argv: list[str] | None, prog: str = "grpc-chaos fleet") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a fleet and keep it up until SIGINT/SIGTERM")
    up.add_argument("--size", type=_size, default=3, help=f"backends, 1..{MAX_SIZE} (3)")
    up.add_argument("--mtls", action="store_true", help="backends require client certificates")
    up.add_argument(
        "--workdir", help="keep PKI and logs here (default: a temporary directory removed at exit)"
    )
    proxies = up.add_mutually_exclusive_group()
    proxies.add_argument("--toxiproxy-url", help="use this running Toxiproxy server")
    proxies.add_argument(
        "--no-proxies", action="store_true", help="publish the backends directly, without Toxiproxy"
    )
    return parser.parse_args(argv)


class BackendWatcher:
    """Reaps and reports the fleet's backends that end while it watches.

    One thread blocks on a pidfd per backend (readable once the process has ended; a pidfd
    never refers to a reused pid) and a wake socket. A backend that ends is reported, then
    collected with :meth:`Fleet.reap`. :meth:`stop` wakes the thread and joins it, so the
    fleet's own close() afterwards runs alone: none of its kills is reported and no
    process is waited for by two threads.
    """

    def __init__(self, fleet: Fleet, out=sys.stderr):
        self._fleet = fleet
        self._out = out
        self._pidfds = {os.pidfd_open(backend.pid): backend for backend in fleet.backends}
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="backend-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; returns once the thread has ended (a report under way is finished)."""
        self._wake_writer.send(b"x")
        self._thread.join(_WATCHER_JOIN_TIMEOUT_S)
        for fd in self._pidfds:
            os.close(fd)
        self._pidfds.clear()
        self._wake_reader.close()
        self._wake_writer.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_reader, selectors.EVENT_READ)
            for fd in self._pidfds:
                selector.register(fd, selectors.EVENT_READ)
            while True:
                ready = [key.fd for key, _ in selector.select()]
                if self._wake_reader.fileno() in ready:
                    return
                for fd in ready:
                    selector.unregister(fd)
                    backend = self._pidfds[fd]
                    try:
                        self._collect(fd, backend)
                    except Exception as exc:  # keep watching the others
                        print(
                            f"fleet up: error: could not collect backend {backend.id} "
                            f"(pid {backend.pid}): {exc}",
                            file=self._out,
                            flush=True,
                        )

    def _collect(self, pidfd: int, backend: Backend) -> None:
        # WNOWAIT: read how it ended but leave the zombie to Fleet.reap, the one place that
        # collects backends (it also tells the reaper process to forget the pid).
        status = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOWAIT)
        assert status is not None  # None only with WNOHANG, which is not asked for
        event: dict[str, object] = {"event": "backend-exited", "id": backend.id, "pid": backend.pid}
        if status.si_code == os.CLD_EXITED:
            event["exit_code"] = status.si_status
        else:  # CLD_KILLED or CLD_DUMPED
            event["signal"] = _signal_name(status.si_status)
        tail = _tail(backend.log, LOG_TAIL_LINES)
        if tail:
            event["log_tail"] = tail
        self._fleet.reap(backend.id)
        print(json.dumps(event), file=self._out, flush=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # e.g. a real-time signal, which has no name of its own
        return f"signal {number}"


def up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        try:
            server = None
            if not args.no_proxies:
                url = args.toxiproxy_url
                server = stack.enter_context(ToxiproxyServer("url" if url else None, url=url))
            fleet = Fleet(
                args.size,
                mtls=args.mtls,
                workdir=args.workdir,
                proxies=server.control() if server else None,
            )
            stack.callback(fleet.close)
            fleet.start()
        except Exception as exc:  # one line for people, no traceback
            print(f"fleet up: error: {exc}", file=sys.stderr)
            return 1
        info = fleet.info()
        if server is not None:
            info["toxiproxy"] = server.url
        stack.callback(BackendWatcher(fleet).stop)  # runs before fleet.close
        print(json.dumps(info), flush=True)
        stop.wait()
    return 0


def main(argv: list[str] | None = None, prog: str = "grpc-chaos fleet") -> int:
    args = parse_args(argv, prog)
    return up(args)


if __name__ == "__main__":
    sys.exit(main())
