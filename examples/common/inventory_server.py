"""Inventory: the one Python server behind every Python example (examples/*/grpc-chaos.toml).

    python3 inventory_server.py --listen 127.0.0.1:50051 --cert server.pem --key server.key
        [--client-ca ca.pem] [--id b1] [--reflection] [--lookup-ms 20] [--warmup-ms 0]
        [--drain-ms 500] [--grace-ms 5000] [FLAW FLAGS, e.g. --no-drain]

An ordinary grpcio server (a thread pool, as most teams write one) serving
shop.v1.Inventory/GetItem and grpc.health.v1 over TLS. By default it does what a rollout
needs of a server::

    start     warm its cache (--warmup-ms), then listen, then health SERVING
    answer    headers, answer and trailers leave in one batch after the lookup, so a call
              is not committed (and a client may still retry it) until it is answered;
              failures are Trailers-Only; with --id the backend names itself in the
              x-backend-id trailer
    keepalive clients may ping every 0.5 s, also with no call open
    max age   GOAWAY at 5 s (2 s grace), so clients reconnect and re-resolve DNS
    health    grpc.health.v1 Check and Watch (the stream clients health-check on) from a
              servicer that never holds a lock while it sends (Health, below: the stock
              grpcio-health-checking one can freeze the server for good)
    SIGTERM   health NOT_SERVING -> --drain-ms for clients to move away -> server.stop
              (listener closed, GOAWAY; in-flight RPCs get --grace-ms) -> exit 0

Each flaw flag (``--help``) plants one production flaw in that and changes nothing else;
the example directory of the same name says which scenario must catch it. Bad flags or
files: one line on stderr, exit 2.

The message types come from ../common/protos at start-up (grpc.protos_and_services,
grpcio-tools compiling in memory): the .proto the target files name is the only source;
nothing generated is kept in the tree or written to disk.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import socket
import ssl
import sys
import threading
import time
from concurrent import futures

# grpc prints its own multi-line report of a failed bind; this program reports every
# start-up problem as one line (set GRPC_VERBOSITY to see grpc's logs).
if __name__ == "__main__":  # the server process only: importing this module changes nothing
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

PROTO_ROOT = pathlib.Path(__file__).resolve().parent / "protos"
PROTO = "shop/v1/inventory.proto"
SERVICE = "shop.v1.Inventory"
BACKEND_ID_KEY = "x-backend-id"
EXIT_USAGE = 2
# Handlers mostly wait (lookup, warm-up), so threads, not cores, bound the calls in flight:
# 64 is well above the 8-16 in flight a grpc-chaos load spreads over a fleet.
WORKERS = 64
# gRPC clients ping at most once a second (grpc-core's floor, docs/grpc-facts.md); accepting pings
# half as far apart leaves room for timer jitter, so a well-behaved client never earns a
# strike.
MIN_PING_INTERVAL_MS = 500
# A max connection age is what makes clients re-resolve DNS (gRPC does not poll it): the
# usual 30 s would leave a scaled-out backend without traffic longer than a scenario should
# wait, so connections are replaced every 5 s (the examples' target files give the
# matching DNS-join requirement, 8 s). Not much shorter: an idle connection must live long
# enough for a client's keepalive to meet the server's ping enforcement (gRPC's default
# one answers pings with GOAWAY after ~3 s), and a connection churning twice a second
# restarts its health-check stream each time. The grace exceeds a call's deadline (2 s in
# the examples' targets), so no call is cut by the age.
MAX_CONNECTION_AGE_MS = 5000
MAX_CONNECTION_AGE_GRACE_MS = 2000
# --serving-before-warm: how long the cache takes to warm (the flaw's window).
FLAWED_WARMUP_MS = 1500

FLAWS = {
    "exit_on_sigterm": "no SIGTERM handler: the process dies at once (no drain, no grace)",
    "no_drain": "on SIGTERM flip health, then stop at once: in-flight calls are cancelled",
    "no_health_flip": "on SIGTERM drain and stop, but health stays SERVING throughout",
    "grpc_default_keepalive": "grpc's default ping enforcement: a client pinging an idle "
    "connection every second gets GOAWAY too_many_pings",
    "no_max_connection_age": "connections live forever: clients never re-resolve DNS "
    "unless one breaks",
    "early_headers": "send the response headers at once, then look up: every call in "
    "flight is committed and cannot be retried",
    "serving_before_warm": f"listen and say SERVING, then warm the cache "
    f"({FLAWED_WARMUP_MS} ms): calls meanwhile wait for it",
}


class UsageError(Exception):
    """A bad flag or file: printed as one line, exit 2."""


def log(message: str) -> None:
    print(
        f"inventory[{os.getpid()}] {time.monotonic():.3f}: {message}", file=sys.stderr, flush=True
    )


class Inventory:
    """GetItem: every SKU exists; the answer derives from the SKU alone."""

    def __init__(self, args: argparse.Namespace, messages, cache_ready: threading.Event):
        self.args = args
        self.messages = messages
        self.cache_ready = cache_ready
        self.database_down = args.id is not None and args.id in args.database_down_on

    def GetItem(self, request, context):  # noqa: N802 (gRPC's method name)
        if self.args.early_headers:
            context.send_initial_metadata(())
        if self.args.id:
            context.set_trailing_metadata(((BACKEND_ID_KEY, self.args.id),))
        # Only --serving-before-warm gets here before the cache is warm; the call waits
        # for it as a lazily loaded cache makes it, within its own deadline.
        self.cache_ready.wait(context.time_remaining())
        if self.database_down:
            context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable")
        time.sleep(self.args.lookup_ms / 1000)  # the database lookup this service stands for
        return self.messages.Item(
            sku=request.sku, name=f"Item {request.sku}", stock=len(request.sku)
        )


# Why not grpc_health.v1.health.HealthServicer (grpcio-health-checking 1.85.1), the stock
# servicer most Python teams add: on a thread-pool server it can freeze the server for good.
# A grpcio sync server handles every event of every call on ONE thread (grpc/_server.py
# _serve): a message sent from a handler is done only once that thread has seen its
# completion, and the callbacks registered with context.add_callback (run when a call
# ends) run on that thread too. The stock Watch sends its first answer while holding the
# servicer's lock, and the callback that ends another Watch takes the same lock. When a
# health-check stream starts while another one ends - a client reconnecting while its old
# connection is torn down: after a pause (SIGSTOP/SIGCONT, a GC or VM stall), at a max
# connection age turnover, in a wave of reconnects - the event thread waits for the lock
# and the Watch waits for the event thread, forever. The process still accepts
# connections, answers pings (gRPC's core does that) and had said SERVING on the new
# stream, so clients keep sending it RPCs and each waits for its deadline (issue 17 #1:
# test_hang's SIGSTOP scenario: 571 RPCs DEADLINE_EXCEEDED after SIGCONT, the backend
# serving nothing more; examples/good/README.md has the figures). The rule this servicer
# follows: never hold a lock across a call that waits for gRPC (a send, on a sync server)
# when gRPC's event thread may need that lock; a callback run by gRPC only flips flags and
# edits sets.
class Health(health_pb2_grpc.HealthServicer):
    """grpc.health.v1 for a thread-pool server: the stock servicer's API (set,
    enter_graceful_shutdown, Check, Watch) without its deadlock.

    Watch is non-blocking (grpcio's ``experimental_non_blocking``, as the stock servicer):
    it holds no thread while the stream stays open. Each stream sends the newest status
    whenever it changes, one send at a time per stream, read at send time, so statuses
    never arrive out of order and a skipped intermediate one is never the last word."""

    def __init__(self):
        # Guards the statuses and the open streams; never held while sending.
        self._lock = threading.Lock()
        self._status = {"": health_pb2.HealthCheckResponse.SERVING}
        self._streams: dict[str, set[_HealthStream]] = {}
        self._frozen = False  # after enter_graceful_shutdown: NOT_SERVING for good

    def status(self, service: str):
        with self._lock:
            return self._status.get(service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)

    def set(self, service: str, status) -> None:
        with self._lock:
            if self._frozen:
                return
            self._status[service] = status
            streams = list(self._streams.get(service, ()))
        for stream in streams:  # outside the lock: each send waits for gRPC's event thread
            stream.update()

    def enter_graceful_shutdown(self) -> None:
        with self._lock:
            if self._frozen:
                return
            self._frozen = True
            for service in self._status:
                self._status[service] = health_pb2.HealthCheckResponse.NOT_SERVING
            streams = [s for per_service in self._streams.values() for s in per_service]
        for stream in streams:
            stream.update()

    def Check(self, request, context):  # noqa: N802 (gRPC's method name)
        with self._lock:
            status = self._status.get(request.service)
        if status is None:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request, context, send_response_callback=None):  # noqa: N802
        if send_response_callback is None:  # grpcio has passed one since 1.20
            context.abort(grpc.StatusCode.INTERNAL, "this server does not stream health")
        stream = _HealthStream(self, request.service, send_response_callback)
        with self._lock:
            self._streams.setdefault(request.service, set()).add(stream)
        # Runs on gRPC's event thread when the call ends: flags and sets only, no send.
        if not context.add_callback(lambda: self._forget(stream)):
            self._forget(stream)  # the call already ended
            return
        stream.update()  # the first answer: the status now

    Watch.experimental_non_blocking = True  # grpcio hands Watch a send callback

    def _forget(self, stream: _HealthStream) -> None:
        stream.ended = True
        with self._lock:
            self._streams.get(stream.service, set()).discard(stream)


class _HealthStream:
    """One open Watch: sends the service's newest status when it differs from the last sent."""

    def __init__(self, health: Health, service: str, send):
        self.health = health
        self.service = service
        self.send = send
        self.ended = False
        self._sent = None
        # One send at a time on this stream, in order. Held across the send, so gRPC's
        # event thread must never take it: _forget (run there) does not.
        self._sending = threading.Lock()

    def update(self) -> None:
        with self._sending:
            status = self.health.status(self.service)
            if self.ended or status == self._sent:
                return
            self._sent = status
            self.send(health_pb2.HealthCheckResponse(status=status))


def server_options(args: argparse.Namespace) -> list[tuple[str, int]]:
    # SO_REUSEPORT off: a restarted backend must fail loudly on a port a stale process
    # still holds, not share it silently (docs/grpc-facts.md).
    options = [("grpc.so_reuseport", 0)]
    if not args.grpc_default_keepalive:
        options += [
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ]
    if not args.no_max_connection_age:
        options += [
            ("grpc.max_connection_age_ms", args.max_connection_age_ms),
            ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
        ]
    return options


def credentials(args: argparse.Namespace) -> grpc.ServerCredentials:
    key, cert = read(args.key, "private key"), read(args.cert, "certificate")
    try:  # grpc would only fail the bind; the ssl module says what is wrong with the pair
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(args.cert, args.key)
    except ssl.SSLError as exc:
        raise UsageError(
            f"{args.cert} / {args.key}: not a PEM certificate chain and its "
            f"private key ({exc.reason or exc})"
        ) from None
    client_ca = read(args.client_ca, "client CA") if args.client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def read(path: str, what: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM or SIGINT, then shut down as the flags say."""
    stop = threading.Event()
    if not args.exit_on_sigterm:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    sys.path.insert(0, str(PROTO_ROOT))
    messages, services = grpc.protos_and_services(PROTO)
    creds = credentials(args)
    cache_ready = threading.Event()
    warmup_s = args.warmup_ms / 1000
    if not args.serving_before_warm:
        # The cache warm-up this service stands for; a stop signal meanwhile ends it, and
        # the process, before it ever serves.
        if stop.wait(warmup_s):
            return
        cache_ready.set()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKERS), options=server_options(args)
    )
    services.add_InventoryServicer_to_server(Inventory(args, messages, cache_ready), server)
    health_servicer = Health()  # not grpc_health's HealthServicer: see Health
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if args.reflection:
        from grpc_reflection.v1alpha import reflection

        reflection.enable_server_reflection((SERVICE, reflection.SERVICE_NAME), server)
    bind(server, args.listen, creds)
    server.start()
    for name in ("", SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log(f"serving {SERVICE} on {args.listen} (id {args.id})")
    if args.serving_before_warm:
        warming = threading.Timer(warmup_s, cache_ready.set)
        warming.daemon = True  # a SIGTERM during the warm-up must not wait for it
        warming.start()
    stop.wait()
    shut_down(server, health_servicer, args)


def shut_down(server: grpc.Server, health_servicer, args: argparse.Namespace) -> None:
    if not args.no_health_flip:
        health_servicer.enter_graceful_shutdown()  # NOT_SERVING for every service
        log("SIGTERM: health NOT_SERVING")
    if args.no_drain:
        server.stop(None).wait()  # None: every call in flight is cancelled now
        log("stopped without draining")
        return
    time.sleep(args.drain_ms / 1000)  # the drain window itself, not a wait for a condition
    log(f"closing the listener, {args.grace_ms} ms grace for calls in flight")
    grace_s = args.grace_ms / 1000
    server.stop(grace_s).wait(grace_s + 1)
    log("stopped")


def bind(server: grpc.Server, address: str, creds: grpc.ServerCredentials) -> None:
    try:
        bound = server.add_secure_port(address, creds)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UsageError(f"cannot listen on {address}: {why_not_bindable(address)}")


def why_not_bindable(address: str) -> str:
    host, _, port = address.rpartition(":")
    try:
        with socket.socket() as probe:
            probe.bind((host, int(port)))
    except OSError as exc:
        return exc.strerror or str(exc)
    return "grpc refused it (give HOST:PORT, e.g. 127.0.0.1:50051)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="inventory_server.py", description="shop.v1.Inventory over TLS with grpc.health.v1."
    )
    parser.add_argument(
        "--listen", required=True, type=_address, help="HOST:PORT to serve on (TLS)"
    )
    parser.add_argument("--cert", required=True, help="certificate chain, PEM")
    parser.add_argument("--key", required=True, help="private key, PEM")
    parser.add_argument("--client-ca", help="require client certificates from this CA")
    parser.add_argument("--id", help="name this backend in the x-backend-id trailer")
    parser.add_argument(
        "--reflection", action="store_true", help="serve grpc.reflection (what grpcurl and ghz ask)"
    )
    parser.add_argument("--lookup-ms", type=_ms, default=20, help="time one lookup takes")
    parser.add_argument(
        "--max-connection-age-ms",
        type=_ms,
        default=MAX_CONNECTION_AGE_MS,
        help=f"replace each connection after this long, +-10 %% (default {MAX_CONNECTION_AGE_MS})",
    )
    parser.add_argument(
        "--warmup-ms", type=_ms, default=0, help="cache warm-up before serving (default 0)"
    )
    parser.add_argument(
        "--drain-ms",
        type=_ms,
        default=500,
        help="on SIGTERM, NOT_SERVING this long before closing (default 500)",
    )
    parser.add_argument(
        "--grace-ms",
        type=_ms,
        default=5000,
        help="then this long for calls in flight (default 5000)",
    )
    parser.add_argument(
        "--database-down-on",
        action="append",
        default=[],
        metavar="ID",
        help="FLAW: the backend with this --id fails every call "
        "UNAVAILABLE while its health says SERVING",
    )
    for flaw, help_text in FLAWS.items():
        parser.add_argument(
            "--" + flaw.replace("_", "-"), action="store_true", help="FLAW: " + help_text
        )
    args = parser.parse_args(argv)
    if args.serving_before_warm and not args.warmup_ms:
        args.warmup_ms = FLAWED_WARMUP_MS
    return args


def _address(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:50051)")
    return text


def _ms(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds")
    return int(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, like every other usage error
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    try:
        serve(parse_args(argv))
    except UsageError as exc:
        print(f"inventory_server.py: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
