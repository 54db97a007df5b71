"""One backend of the fleet: the Greeter and grpc.health.v1 over TLS, plus a control service.

    python -m fleet.server --id b1 --listen 127.0.0.11:50051 --cert b1.pem --key b1.key
        [--client-ca ca.pem] [--control 127.0.0.1:0] [--no-health]
        [--max-connection-age-ms N] [--term-drain-ms N] [--term-grace-ms N]
        [--parent-pid PID]

One backend is one OS process, so that kill -9 and SIGSTOP are real faults. Once both ports
serve it prints one JSON line on stdout::

    {"ready": true, "id": "b1", "pid": 4242, "address": "127.0.0.11:50051",
     "control": "127.0.0.1:40123"}

Bad flags, unreadable certificates or a taken port: one line on stderr, exit 2. SIGTERM
drains as a production server should: health NOT_SERVING at once, ``--term-drain-ms`` for
health-checking clients to move away, then stop with ``--term-grace-ms`` of grace for RPCs
in flight; exits 0. SIGINT does the same.

The serving port carries only Greeter and health; the control service (proto/control.proto:
health flips, certificate swaps, application faults, drain, counters) listens on its own
loopback port, which the fleet never publishes or proxies.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import signal
import sys
import threading
from dataclasses import dataclass, field

# grpc logs its own multi-line report of a failed bind on stderr; this process reports
# every start-up error as one line of its own (set GRPC_VERBOSITY to see grpc's logs).
if __name__ == "__main__":  # the server process only: importing this module changes nothing
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from fleet import ports
from fleet.procs import lifeline
from fleet.protos import control_pb2, control_pb2_grpc, greeter_pb2

BACKEND_ID_KEY = "x-backend-id"
GREETER_SERVICE = "greeter.Greeter"
# Names longer than this are refused: a real service bounds its inputs, and scenarios use
# it to show INVALID_ARGUMENT is not retried. Large enough for the replies (the echo) that
# outgrow an HTTP/2 stream's flow-control window (the http2 family's starvation scenario).
MAX_NAME_BYTES = 1024 * 1024
EXIT_USAGE = 2

# docs/grpc-facts.md: grpc servers set SO_REUSEPORT by default, so a restarted
# backend could silently share its port with a stale (paused) one; and clients using
# keepalive (the recommended profile pings every 500 ms) get GOAWAY too_many_pings unless
# the server permits pings, also without calls, and never counts strikes.
BASE_SERVER_OPTIONS = (
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 100),
    ("grpc.http2.max_ping_strikes", 0),
)


class UsageError(Exception):
    """A problem with the command line or its files; printed as one line, exit 2."""


# --------------------------------------------------------------------------- state


@dataclass
class AppFault:
    """What SayHello does wrong, set through the control service."""

    code: grpc.StatusCode | None = None
    fraction: float = 0.0
    next_n: int = 0
    delay_ms: int = 0
    details: str = ""

    def draw_failure(self) -> bool:
        """Whether this call fails; consumes one of ``next_n`` when that is in force."""
        if self.code is None:
            return False
        if self.next_n > 0:
            self.next_n -= 1
            return True
        return self.fraction > 0 and random.random() < self.fraction


@dataclass
class Counters:
    calls: int = 0
    in_flight: int = 0
    by_code: dict[str, int] = field(default_factory=dict)

    def finish(self, code: grpc.StatusCode) -> None:
        self.calls += 1
        self.in_flight -= 1
        self.by_code[code.name] = self.by_code.get(code.name, 0) + 1


class CertificateStore:
    """Certificates for new TLS handshakes, swappable at run time.

    grpc calls :meth:`fetch` (from its own threads) before each new handshake; returning a
    configuration switches to it, returning None keeps the current one. Connections that
    are already open keep the certificate they were made with.
    """

    def __init__(self, cert_pem: bytes, key_pem: bytes, client_ca: bytes | None):
        self._client_ca = client_ca
        self._lock = threading.Lock()
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self.initial = self._config(cert_pem, key_pem)

    def _config(self, cert_pem: bytes, key_pem: bytes) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(key_pem, cert_pem)], root_certificates=self._client_ca
        )

    def replace(self, cert_pem: bytes, key_pem: bytes) -> None:
        config = self._config(cert_pem, key_pem)
        with self._lock:
            self._pending = config

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            config, self._pending = self._pending, None
        return config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self.initial, self.fetch, require_client_authentication=self._client_ca is not None
        )


def check_pem_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """Raise ValueError naming what is wrong with a certificate/key pair."""
    try:
        x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise ValueError(f"certificate is not PEM: {exc}") from None
    try:
        load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"private key is not an unencrypted PEM key: {exc}") from None


# --------------------------------------------------------------------------- greeter


class _Undecodable:
    """Stands in for a request whose bytes are not a HelloRequest (e.g. non-UTF-8 name)."""

    def __init__(self, error: str):
        self.error = error


def _decode_hello(data: bytes):
    # A custom deserializer: grpc would answer INTERNAL for a request it cannot parse, but
    # a malformed name is the caller's fault and must be INVALID_ARGUMENT.
    try:
        return greeter_pb2.HelloRequest.FromString(data)
    except DecodeError as exc:
        return _Undecodable(str(exc) or "not a HelloRequest")


class Greeter:
    """SayHello with the backend id in the initial metadata and the app fault applied."""

    def __init__(self, backend_id: str):
        self.backend_id = backend_id
        self.fault = AppFault()
        self.counters = Counters()

    def handler(self) -> grpc.GenericRpcHandler:
        reply = greeter_pb2.HelloReply
        method = grpc.unary_unary_rpc_method_handler(
            self.say_hello,
            request_deserializer=_decode_hello,
            response_serializer=reply.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(GREETER_SERVICE, {"SayHello": method})

    async def say_hello(self, request, context: grpc.aio.ServicerContext):
        self.counters.in_flight += 1
        code = grpc.StatusCode.OK
        try:
            if self.fault.delay_ms:
                await asyncio.sleep(self.fault.delay_ms / 1000)
            details = _invalid_name(request)
            if details:
                code = grpc.StatusCode.INVALID_ARGUMENT
            elif self.fault.draw_failure():
                assert self.fault.code is not None  # draw_failure() is False without a code
                code = self.fault.code
                details = self.fault.details or f"injected {code.name} by {self.backend_id}"
            if code is not grpc.StatusCode.OK:
                # Failures are Trailers-Only, as most services answer them: no headers, so
                # the call is not committed and a client's retry policy may replay it
                # (gRFC A6); the backend id travels in the trailers instead.
                await context.abort(
                    code, details, trailing_metadata=((BACKEND_ID_KEY, self.backend_id),)
                )
            # The id travels in the trailers, so headers, answer and trailers leave in ONE
            # batch (grpc.aio sends a unary answer's headers with it when none were sent
            # before): until then the call is not committed, so an RPC in flight on a
            # backend that dies is retryable. Headers sent on their own just before the
            # answer leave a window in which a kill commits the call (measured: 2 RPCs lost
            # in one kill on a busy machine).
            context.set_trailing_metadata(((BACKEND_ID_KEY, self.backend_id),))
            reply = greeter_pb2.HelloReply
            return reply(message=f"Hello {request.name}")
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            self.counters.finish(code)


def _invalid_name(request) -> str:
    if isinstance(request, _Undecodable):
        return f"request is not a valid HelloRequest (is the name UTF-8?): {request.error}"
    if request.name == "invalid":
        return "name 'invalid' is rejected"
    size = len(request.name.encode())
    if size > MAX_NAME_BYTES:
        return f"name is {size} bytes; at most {MAX_NAME_BYTES} are accepted"
    return ""


# --------------------------------------------------------------------------- control


class Control(control_pb2_grpc.ControlServicer):
    """The control service: every fault the fleet stages inside this process."""

    def __init__(self, backend: Backend):
        self.backend = backend

    async def SetHealth(self, request, context):
        names = health_pb2.HealthCheckResponse.ServingStatus.keys()
        if request.status not in names:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown status {request.status!r}; one of {', '.join(names)}",
            )
        health = self.backend.health
        if health is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this backend runs without the health service (--no-health)",
            )
        assert health is not None  # context.abort() raises
        status = health_pb2.HealthCheckResponse.ServingStatus.Value(request.status)
        await health.set(request.service, status)
        return control_pb2.Empty()

    async def SetCertificate(self, request, context):
        try:
            check_pem_pair(request.cert_chain_pem, request.private_key_pem)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.backend.certificates.replace(request.cert_chain_pem, request.private_key_pem)
        return control_pb2.Empty()

    async def SetAppFault(self, request, context):
        try:
            fault = _app_fault(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.backend.greeter.fault = fault
        return control_pb2.Empty()

    async def Drain(self, request, context):
        # Answers once the health service says NOT_SERVING, so the caller knows the instant
        # the drain is in force; waiting and stopping go on after the answer.
        await self.backend.start_drain(request.wait_ms / 1000, request.grace_ms / 1000)
        return control_pb2.Empty()

    async def GetStats(self, request, context):
        counters = self.backend.greeter.counters
        return control_pb2.Stats(
            calls=counters.calls, by_code=counters.by_code, in_flight=counters.in_flight
        )


def _app_fault(request: control_pb2.AppFault) -> AppFault:
    if not request.code:
        return AppFault(delay_ms=request.delay_ms)
    try:
        code = grpc.StatusCode[request.code]
    except KeyError:
        raise ValueError(
            f"unknown status code {request.code!r}; one of "
            + ", ".join(c.name for c in grpc.StatusCode)
        ) from None
    if code is grpc.StatusCode.OK:
        raise ValueError("OK is not a failure; send an empty code to clear the fault")
    if not 0.0 <= request.fraction <= 1.0:
        raise ValueError(f"fraction {request.fraction} is not within 0..1")
    return AppFault(
        code=code,
        fraction=request.fraction,
        next_n=request.next_n,
        delay_ms=request.delay_ms,
        details=request.details,
    )


# --------------------------------------------------------------------------- process


@dataclass
class Options:
    backend_id: str
    listen: str
    control: str
    cert_pem: bytes
    key_pem: bytes
    client_ca: bytes | None
    health: bool
    max_connection_age_ms: int | None
    term_drain_s: float
    term_grace_s: float
    parent_pid: int | None


class Backend:
    """The two grpc.aio servers of one backend and their shared state."""

    def __init__(self, options: Options):
        self.options = options
        self.greeter = Greeter(options.backend_id)
        self.health = HealthServicer() if options.health else None
        self.certificates = CertificateStore(options.cert_pem, options.key_pem, options.client_ca)
        self.stopped = asyncio.Event()
        self._drain_task: asyncio.Task | None = None
        self.server = grpc.aio.server(options=self._serving_options())
        self.control = grpc.aio.server(options=(("grpc.so_reuseport", 0),))

    def _serving_options(self) -> list[tuple[str, int]]:
        options = list(BASE_SERVER_OPTIONS)
        if self.options.max_connection_age_ms:
            # Forces clients to reconnect (and so to re-resolve DNS) at this age; see
            # docs/grpc-facts.md on DNS re-resolution.
            options += [
                ("grpc.max_connection_age_ms", self.options.max_connection_age_ms),
                ("grpc.max_connection_age_grace_ms", 1000),
            ]
        return options

    async def start(self) -> tuple[str, str]:
        self.server.add_generic_rpc_handlers((self.greeter.handler(),))
        if self.health is not None:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
            for service in ("", GREETER_SERVICE):
                await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        control_pb2_grpc.add_ControlServicer_to_server(Control(self), self.control)
        address = _bind(self.server, self.options.listen, self.certificates.credentials())
        control = _bind(self.control, self.options.control, None)
        await self.server.start()
        await self.control.start()
        return address, control

    async def start_drain(self, wait_s: float, grace_s: float) -> None:
        """NOT_SERVING now (returns once it is set), then ``wait_s`` for clients to move
        away, then stop with ``grace_s`` for what is still in flight."""
        if self._drain_task is None:
            if self.health is not None:
                await self.health.enter_graceful_shutdown()
            self._drain_task = asyncio.get_running_loop().create_task(
                self._stop_after(wait_s, grace_s)
            )

    async def _stop_after(self, wait_s: float, grace_s: float) -> None:
        await asyncio.sleep(wait_s)  # the drain window itself, not a wait for a condition
        await self.stop(grace_s)

    async def stop(self, grace_s: float) -> None:
        await self.server.stop(grace_s)
        await self.control.stop(0)
        self.stopped.set()


def _bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> str:
    host, port = split_host_port(address)
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UsageError(ports.describe_taken(host, port) if port else f"cannot bind {address}")
    return f"{host}:{bound}"


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"address {address!r} is not HOST:PORT (e.g. 127.0.0.11:50051)")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise UsageError(f"address {address!r}: host must be an IPv4 address") from None
    return host, int(port)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def parse_args(argv: list[str] | None) -> Options:
    parser = _Parser(
        prog="python -m fleet.server", description="One TLS Greeter backend of a grpc-chaos fleet."
    )
    parser.add_argument("--id", required=True, help="backend id, sent as x-backend-id")
    parser.add_argument("--listen", required=True, help="serving address HOST:PORT (TLS)")
    parser.add_argument(
        "--control",
        default="127.0.0.1:0",
        help="control service address, loopback only (default 127.0.0.1:0)",
    )
    parser.add_argument("--cert", required=True, help="server certificate chain, PEM")
    parser.add_argument("--key", required=True, help="server private key, PEM")
    parser.add_argument("--client-ca", help="require client certificates from this CA (mTLS)")
    parser.add_argument(
        "--no-health",
        action="store_true",
        help="do not serve grpc.health.v1 (clients then count it healthy)",
    )
    parser.add_argument(
        "--max-connection-age-ms",
        type=int,
        help="GOAWAY connections at this age (makes clients re-resolve)",
    )
    parser.add_argument(
        "--term-drain-ms",
        type=int,
        default=300,
        help="on SIGTERM, NOT_SERVING this long before the listener closes "
        "(default 300: clients that health-check move away in ms)",
    )
    parser.add_argument(
        "--term-grace-ms",
        type=int,
        default=1000,
        help="grace for in-flight RPCs on SIGTERM (default 1000)",
    )
    parser.add_argument(
        "--parent-pid", type=int, help="exit when this process (the parent, holding stdin) ends"
    )
    args = parser.parse_args(argv)
    split_host_port(args.listen)
    control_host, _ = split_host_port(args.control)
    if not ipaddress.IPv4Address(control_host).is_loopback:
        raise UsageError(f"--control {args.control}: the control port must be on loopback")
    if not args.id or len(args.id) > 64 or not args.id.isprintable():
        raise UsageError(f"--id {args.id!r}: give 1 to 64 printable characters")
    cert_pem, key_pem = _read(args.cert, "certificate"), _read(args.key, "private key")
    try:
        check_pem_pair(cert_pem, key_pem)
    except ValueError as exc:
        raise UsageError(f"{args.cert} / {args.key}: {exc}") from None
    return Options(
        backend_id=args.id,
        listen=args.listen,
        control=args.control,
        cert_pem=cert_pem,
        key_pem=key_pem,
        client_ca=_read(args.client_ca, "client CA") if args.client_ca else None,
        health=not args.no_health,
        max_connection_age_ms=args.max_connection_age_ms,
        term_drain_s=args.term_drain_ms / 1000,
        term_grace_s=args.term_grace_ms / 1000,
        parent_pid=args.parent_pid,
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other usage error here
        raise UsageError(message)


async def serve(options: Options) -> None:
    backend = Backend(options)
    address, control = await backend.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(
            sig,
            lambda: loop.create_task(
                backend.start_drain(options.term_drain_s, options.term_grace_s)
            ),
        )
    print(
        json.dumps(
            {
                "ready": True,
                "id": options.backend_id,
                "pid": os.getpid(),
                "address": address,
                "control": control,
            }
        ),
        flush=True,
    )
    await backend.stopped.wait()


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_args(argv)
        if options.parent_pid:
            lifeline.die_with_parent(options.parent_pid)
        asyncio.run(serve(options))
    except UsageError as exc:
        print(f"fleet.server: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
