"""Measure what each example server does to a rollout, and check it against its README.

    .venv/bin/python examples/check_examples.py [EXAMPLE_DIR ...]    (default: every one)

Each example is started from its grpc-chaos.toml (chaos.targets) as backend b2 on
127.0.0.1, with certificates from a fresh fleet PKI, and measured on the server-side
properties the rollout scenarios depend on:

    ready        the first RPC after health says SERVING answers within 500 ms
    truthful     while health says SERVING, the RPC answers OK and as [rpc.expect] says
    uncommitted  the response headers arrive with the answer, not 10 ms or more before it
    keepalive    a client pinging an idle connection every 0.5 s (grpc-core: 1 s) for 7 s
                 gets no GOAWAY too_many_pings
    max_age      an idle connection is ended by its age (GOAWAY, not too_many_pings)
                 within 6 s: clients re-resolve DNS
    health_streams  clients reconnecting - 16 connections at a time, each opening a health
                 Watch (the stream client-side health checking keeps open), reading its
                 first answer and closing, 10 rounds - leave the server answering: every
                 Watch gets its answer and the RPC answers after as it did before
    drains       on the stop signal: health NOT_SERVING first, the listener still open 100
                 ms later, every call in flight answered OK, exit status 0

Every example keeps every property except the ones its flaw breaks (EXPECTED_BROKEN, as
its README says); the script prints the figures and exits 1 when an example differs.
Nothing is left behind: each server is stopped (killed past its grace, and said so), the
PKI lives in a temporary directory that is removed.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

# The client's own grpc logs (GOAWAYs it sees while servers stop) are noise here.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402
from grpc._cython import cygrpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chaos import targets as targets  # noqa: E402
from fleet.pki import PKI  # noqa: E402
from fleet.ports import pids_listening  # noqa: E402
from fleet.procs.waiting import wait_until  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parent
HOST = "127.0.0.1"
BACKEND_ID = "b2"  # examples/health-lies breaks this one
PROPERTIES = (
    "ready",
    "truthful",
    "uncommitted",
    "health_streams",
    "keepalive",
    "max_age",
    "drains",
)
EXPECTED_BROKEN = {
    "plain": set(),
    "good": set(),
    "go-good": set(),
    "exit-on-sigterm": {"drains"},
    "no-drain": {"drains"},
    "health-never-flips": {"drains"},
    # Strict ping enforcement only shows on connections that live past ~3 s of idleness,
    # which a short max age would hide: that example has no max age either (README).
    "strict-keepalive": {"keepalive", "max_age"},
    "no-max-connection-age": {"max_age"},
    "health-lies": {"truthful"},
    "early-headers": {"uncommitted"},
    "serving-too-early": {"ready"},
}
# Bounds: each is loose where it only tells "slow machine" from "broken".
READY_RPC_S = 0.5  # a warm server answers in ~20 ms; a cold cache takes 1.5 s
EARLY_HEADERS_S = 0.010  # the lookup takes 20 ms; headers sent with the answer: < 1 ms
MAX_AGE_S = 6.0  # the examples' max age is 5 s (+-10 % jitter) + 0.5 s margin
IDLE_WATCH_S = 7.0  # past MAX_AGE_S; grpc's default enforcement ends one at ~3 s
DRAIN_OPEN_S = 0.1  # NOT_SERVING must precede the listener's close by this much
LOAD_THREADS = 8  # calls kept in flight while the stop signal arrives
# A reconnect wave: health-check streams opening while others close. grpcio-health-checking's
# HealthServicer (1.85.1) on a thread-pool server froze within the first two rounds, 5 runs of
# 5 (examples/common/inventory_server.py, Health); a sound server: ~0.05 s a round.
WATCH_CLIENTS = 16
WATCH_ROUNDS = 10
WATCH_TIMEOUT_S = 5.0  # a Watch's first answer comes in milliseconds (load: < 1 s)
# The clients' keepalive of chaos/profiles/recommended.json.
KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 500),
    ("grpc.http2.ping_timeout_ms", 500),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
# Every outcome as the server gave it (no retries), and a server that starts listening is
# seen at once (grpc's first reconnect backoff is 1 s; recommended.json uses 100 ms).
CLIENT_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 100),
]


@dataclass
class Report:
    name: str
    figures: dict = field(default_factory=dict)
    holds: dict = field(default_factory=dict)

    def verdict(self) -> tuple[bool, str]:
        broken = {p for p in PROPERTIES if not self.holds.get(p)}
        expected = EXPECTED_BROKEN.get(self.name)
        if expected is None:
            return True, f"broken: {sorted(broken) or 'none'} (no expectation for this name)"
        if broken == expected:
            return True, f"as its README says (broken: {sorted(broken) or 'none'})"
        return False, (
            f"broken {sorted(broken) or 'none'}, README says {sorted(expected) or 'none'}"
        )


class Backend:
    """One example server started from its target, as b2 on 127.0.0.1."""

    def __init__(self, target, pki: PKI, workdir: pathlib.Path):
        self.target = target
        self.port = free_port()
        cert = pki.server_cert(BACKEND_ID, HOST)
        argv = target.server.argv(
            {
                "host": HOST,
                "port": self.port,
                "cert": cert.cert,
                "key": cert.key,
                "ca": pki.ca_cert,
                "client_ca": pki.ca_cert,
                "id": BACKEND_ID,
                "workdir": workdir,
            }
        )
        self.log_path = workdir / "server.log"
        with open(self.log_path, "wb") as log:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                argv,
                cwd=target.server.cwd,
                env={**os.environ, **target.server.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        ca = pki.ca_cert.read_bytes()
        self.credentials = grpc.ssl_channel_credentials(ca)
        self.address = f"{HOST}:{self.port}"
        self.ca_path = pki.ca_cert

    def channel(self, options=()) -> grpc.Channel:
        return grpc.secure_channel(self.address, self.credentials, list(options) + CLIENT_OPTIONS)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> str:
        """Stop with the target's signal; kill past its grace. Says what happened."""
        if self.process.poll() is not None:
            return f"had exited ({self.process.returncode})"
        self.process.send_signal(self.target.server.stop_signal)
        try:
            self.process.wait(self.target.server.stop_grace_s)
            return f"exited {self.process.returncode}"
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return f"killed after its {self.target.server.stop_grace_s} s grace"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def health_status(channel: grpc.Channel, service: str, timeout: float = 0.5) -> str:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.RpcError as exc:
        return exc.code().name


def wait_serving(backend: Backend, channel: grpc.Channel) -> float:
    def serving():
        if backend.process.poll() is not None:
            raise RuntimeError(
                f"exited {backend.process.returncode} before serving:\n" + backend.log_tail()
            )
        return health_status(channel, backend.target.health_service) == "SERVING"

    wait_until(serving, backend.target.server.start_timeout_s, "health SERVING")
    return time.monotonic() - backend.started


@dataclass
class Call:
    code: str
    start: float
    end: float
    headers_at: float
    identity: str | None = None
    problem: str | None = None
    details: str = ""


def call(backend: Backend, channel: grpc.Channel, rpc_id: int) -> Call:
    """One RPC, with the instant its response headers arrived.

    The unary method is called as unary-stream (the same bytes on the wire): a unary call
    in grpcio reports its headers only with the answer, a streaming call as they come."""
    rpc = backend.target.rpc
    start = time.monotonic()
    stream = channel.unary_stream(rpc.path)(rpc.request_bytes(rpc_id), timeout=rpc.deadline_s)
    headers = stream.initial_metadata()  # returns once the headers came (or the call ended)
    headers_at = time.monotonic()
    try:
        answers = list(stream)
        code, details = "OK", ""
        problem = (
            rpc.check_response(answers[0], rpc_id)
            if len(answers) == 1
            else f"{len(answers)} answers to a unary call"
        )
    except grpc.RpcError as exc:
        code, problem, details = exc.code().name, None, exc.details() or ""
    metadata = dict(headers or ()) | dict(stream.trailing_metadata() or ())
    key = backend.target.identity_header
    return Call(
        code,
        start,
        time.monotonic(),
        headers_at,
        metadata.get(key) if key else None,
        problem,
        details,
    )


def check_answers(backend: Backend, report: Report) -> None:
    with backend.channel() as channel:
        report.figures["start_ms"] = round(wait_serving(backend, channel) * 1000)
        if backend.target.rpc.needs_resolve:
            backend.target.rpc.resolve(channel)
        first = call(backend, channel, 0)
        report.figures["first_rpc_ms"] = round((first.end - first.start) * 1000)
        report.holds["ready"] = first.end - first.start < READY_RPC_S
        calls = [call(backend, channel, n) for n in range(1, 6)]
        status = health_status(channel, backend.target.health_service)
    last = calls[-1]
    report.figures["answer"] = f"{last.code} {last.problem or last.details or ''}".strip()
    report.figures["identity"] = last.identity
    report.holds["truthful"] = status == "SERVING" and all(
        c.code == "OK" and c.problem is None for c in calls
    )
    median_early = sorted(c.end - c.headers_at for c in calls)[len(calls) // 2]
    report.figures["headers_before_answer_ms"] = round(median_early * 1000, 1)
    report.holds["uncommitted"] = median_early < EARLY_HEADERS_S


def check_health_streams(backend: Backend, report: Report) -> None:
    """Rounds of WATCH_CLIENTS connections, each opening a Watch, reading its first answer
    and closing while the next ones open; then one RPC. Stops at the first round a Watch
    got no answer (a server that froze answers nothing more)."""
    service = backend.target.health_service
    with backend.channel() as channel:
        before = call(backend, channel, 9_999)

    def one_watch(answers: list) -> None:
        # Its own connection (a local subchannel pool), as a client reconnecting has, and
        # gRPC's own connect timeout: CLIENT_OPTIONS' 50 ms backoff floor is also the
        # deadline of a connection attempt, which a TLS handshake on a busy machine misses.
        with grpc.secure_channel(
            backend.address, backend.credentials, [("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            stream = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=service), timeout=WATCH_TIMEOUT_S
            )
            try:
                answers.append(
                    health_pb2.HealthCheckResponse.ServingStatus.Name(next(stream).status)
                )
            except grpc.RpcError as exc:
                answers.append(f"{exc.code().name} {exc.details()}")
            stream.cancel()

    rounds_ok, last = 0, []
    started = time.monotonic()
    for _ in range(WATCH_ROUNDS):
        last = []
        threads = [threading.Thread(target=one_watch, args=(last,)) for _ in range(WATCH_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WATCH_TIMEOUT_S + 5)
        if last.count("SERVING") != WATCH_CLIENTS:
            break
        rounds_ok += 1
    elapsed = time.monotonic() - started
    with backend.channel() as channel:
        after = call(backend, channel, 10_000)
    answers: dict[str, int] = {}
    for answer in last:
        answers[answer] = answers.get(answer, 0) + 1
    report.figures["health_streams"] = {
        "rounds_ok": f"{rounds_ok}/{WATCH_ROUNDS}",
        "last_round": answers,
        "s": round(elapsed, 2),
        "rpc_before": before.code,
        "rpc_after": after.code,
    }
    report.holds["health_streams"] = rounds_ok == WATCH_ROUNDS and after.code == before.code


def start_keepalive_probe(backend: Backend) -> subprocess.Popen:
    # grpc-core gives the reason of a GOAWAY only in its log, so the probe client runs in a
    # child process whose stderr is read.
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--keepalive-probe",
            backend.address,
            str(backend.ca_path),
            str(IDLE_WATCH_S),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
    )


def keepalive_probe(address: str, ca_path: str, idle_s: float) -> None:
    """(Child) One call, then idle with keepalive pings; print when the connection ended.

    The channel's state is read from channelz every 20 ms, not from ``Channel.subscribe``:
    subscribe's poller delivered no transition at all for 7 s in ~1 of 25 probes here (its
    first, pre-connection IDLE arrived after the call and read as "ended at 0.0 s")."""
    channel = grpc.secure_channel(
        address, grpc.ssl_channel_credentials(pathlib.Path(ca_path).read_bytes()), KEEPALIVE_OPTIONS
    )
    status = health_status(channel, "", timeout=5)
    idle_from = time.monotonic()
    states = [channel_state()]
    while states[-1] == "READY" and time.monotonic() - idle_from < idle_s:
        time.sleep(0.02)  # a sampling period; the loop is bounded by idle_s
        states.append(channel_state())
    ended = time.monotonic() - idle_from if states[-1] != "READY" else None
    print(
        json.dumps({"call": status, "ended_after_s": ended and round(ended, 3), "last": states[-1]})
    )
    channel.close()


def channel_state() -> str:
    """The state of the one channel in this (probe) process, as channelz reports it."""
    top = json.loads(cygrpc.channelz_get_top_channels(0))
    return top["channel"][0]["data"].get("state", {}).get("state", "UNKNOWN")


def finish_keepalive_probe(probe: subprocess.Popen, report: Report) -> None:
    try:
        out, err = probe.communicate(timeout=IDLE_WATCH_S + 10)
    except subprocess.TimeoutExpired:
        probe.kill()
        out, err = probe.communicate()
    ended = json.loads(out.strip().splitlines()[-1])["ended_after_s"] if out.strip() else None
    report.figures["idle_connection_ended_s"] = ended
    report.figures["too_many_pings"] = "too_many_pings" in err
    report.holds["keepalive"] = "too_many_pings" not in err and out.strip() != ""
    report.holds["max_age"] = (
        ended is not None and ended < MAX_AGE_S and "too_many_pings" not in err
    )


def check_stop(backend: Backend, report: Report) -> None:
    """Calls in flight, health polled, the listener watched: then the stop signal."""
    done = threading.Event()
    calls: list[Call] = []
    health: list[tuple[float, str]] = []
    closed: list[float] = []
    channel, health_channel = backend.channel(), backend.channel()

    def load():
        for n in range(100_000):  # bounded; ends long before, when the server is gone
            if done.is_set():
                return
            result = call(backend, channel, n)
            calls.append(result)
            if result.code != "OK":
                done.wait(0.005)  # no spinning on a server that is gone

    def poll_health():
        for _ in range(20_000):
            if done.is_set():
                return
            health.append(
                (
                    time.monotonic(),
                    health_status(health_channel, backend.target.health_service, timeout=0.2),
                )
            )
            done.wait(0.005)

    def watch_listener():
        for _ in range(20_000):
            if done.is_set() or not pids_listening(HOST, backend.port):
                closed.append(time.monotonic())
                return
            done.wait(0.002)

    threads = [threading.Thread(target=load) for _ in range(LOAD_THREADS)]
    threads += [threading.Thread(target=poll_health), threading.Thread(target=watch_listener)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(calls) >= 20, 10, "20 calls answered")
        signalled = time.monotonic()
        report.figures["stop"] = backend.stop()
        exited = time.monotonic()
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
        channel.close()
        health_channel.close()
    summarize_stop(report, signalled, exited, calls, health, closed, backend.process.returncode)


def summarize_stop(report, signalled, exited, calls, health, closed, returncode) -> None:
    def ms(t):
        return None if t is None else round((t - signalled) * 1000)

    not_serving = next((t for t, s in health if t >= signalled and s == "NOT_SERVING"), None)
    closed_at = closed[0] if closed and closed[0] <= exited + 1 else None
    in_flight = [c for c in calls if c.start < signalled < c.end]
    outcomes: dict[str, int] = {}
    for c in in_flight:
        outcome = f"{c.code} {c.details}".strip()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # A call in flight must end as the calls before the signal did (OK, or for a broken
    # backend its usual failure), not as the shutdown makes it.
    usual = {(c.code, c.details) for c in calls if c.end < signalled}
    report.figures.update(
        not_serving_ms=ms(not_serving),
        listener_closed_ms=ms(closed_at),
        exit_ms=ms(exited),
        in_flight_at_signal=outcomes,
    )
    report.holds["drains"] = (
        not_serving is not None
        and closed_at is not None
        and closed_at - not_serving >= DRAIN_OPEN_S
        and bool(in_flight)
        and all((c.code, c.details) in usual for c in in_flight)
        and returncode == 0
    )


def check(directory: pathlib.Path, pki: PKI) -> Report:
    report = Report(directory.name)
    target = targets.load(directory / "grpc-chaos.toml")
    if target.server.mtls or target.server.control:
        raise ValueError("mtls and control targets are not measured by this script")
    with tempfile.TemporaryDirectory(prefix="check-example-") as workdir:
        backend = Backend(target, pki, pathlib.Path(workdir))
        probe = None
        try:
            check_answers(backend, report)
            check_health_streams(backend, report)
            probe = start_keepalive_probe(backend)
            finish_keepalive_probe(probe, report)
            check_stop(backend, report)
        finally:
            if probe is not None and probe.poll() is None:
                probe.kill()
                probe.wait()
            backend.stop()
    return report


def main(argv: list[str]) -> int:
    if argv[:1] == ["--keepalive-probe"]:
        keepalive_probe(argv[1], argv[2], float(argv[3]))
        return 0
    directories = [pathlib.Path(a) for a in argv] or sorted(
        p.parent for p in EXAMPLES.glob("*/grpc-chaos.toml")
    )
    failed = 0
    with tempfile.TemporaryDirectory(prefix="check-examples-pki-") as pki_dir:
        pki = PKI(pathlib.Path(pki_dir) / "pki")
        for directory in directories:
            try:
                report = check(directory, pki)
            except (
                targets.TargetError,
                ValueError,
                RuntimeError,
                TimeoutError,
                grpc.RpcError,
            ) as exc:
                failed += 1
                print(f"FAIL {directory.name}: {str(exc).strip()}", flush=True)
                continue
            ok, why = report.verdict()
            failed += not ok
            holds = " ".join(f"{p}={'yes' if report.holds.get(p) else 'NO'}" for p in PROPERTIES)
            print(
                f"{'ok  ' if ok else 'FAIL'} {report.name}: {why}\n     {holds}\n"
                f"     {json.dumps(report.figures)}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
