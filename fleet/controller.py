"""The fleet controller: N backend processes published under one DNS name.

::

    client --dns://127.0.0.1:<dns>/greeter.example.com:P--> DNS: A 127.0.0.11, .12, .13
       |
       +--> 127.0.0.11:P  b1   (the backend itself, or its Toxiproxy proxy when proxied,
       +--> 127.0.0.12:P  b2    whose upstream is the backend on 127.0.0.1:<random>)
       +--> 127.0.0.13:P  b3

Every published address has the same port P, as instances behind one name do in
production. Each backend is a ``python -m fleet.server`` process with its own certificate
(SANs: the fleet name, localhost, its published IP) and a control port on 127.0.0.1.

With ``http2=True`` an HTTP/2 fault point (chaos/http2/, given through fleet/points.py) sits
between each proxy and its backend: client → proxy → point → backend. The point presents a
certificate this fleet's CA issues for the fleet name and re-originates TLS (mTLS when the
fleet is mTLS) to the backend, so the client sees the point's certificate, not the
backend's.

Processes die with this one (lifeline pipe + PR_SET_PDEATHSIG, see fleet/procs/lifeline.py), and
a reaper (fleet/procs/reaper.py) removes what is left if this process is SIGKILLed. Every wait is
for a condition with a deadline (fleet/procs/waiting.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc

from fleet import launch, points, ports
from fleet.dns import DnsServer
from fleet.handle import BackendHandle
from fleet.pki import FLEET_NAME, PKI, CertFiles
from fleet.procs import lifeline, reaper
from fleet.procs.waiting import wait_until
from fleet.protos import control_pb2, control_pb2_grpc
from fleet.spec import ServiceSpec

MAX_SIZE = 200  # published addresses are .11 to .210 of one /24
FIRST_HOST = 11
# A backend answers its first RPC ~100 ms after spawn (docs/grpc-facts.md); a busy 2-core machine
# starting ten of them at once needs seconds, so the default deadline is generous, and grows
# with the fleet (40 backends took 7-10 s to start here at load average 7-23).
START_TIMEOUT_S = 30.0
START_TIMEOUT_PER_BACKEND_S = 1.0
CONTROL_TIMEOUT_S = 5.0
PORT_TRIES = 20

# The fleets of this process that are started and not closed: what chaos/observe/starvation.py
# watches (a plain set under a lock: it is read from the monitor's thread).
_running: set[Fleet] = set()
_running_lock = threading.Lock()


def running_processes() -> list[tuple[str, int, bool]]:
    """(who, pid, group) for each backend process of every running fleet of this process
    (:meth:`Fleet.processes`): the processes a scenario's verdicts depend on."""
    with _running_lock:
        fleets = list(_running)
    return [process for fleet in fleets for process in fleet.processes()]


class FleetError(Exception):
    """A fleet operation failed; the message names the backend and the cause."""


class Unsupported(FleetError):
    """The server under test cannot do what was asked (no Control service, no way to start
    it without its health service, ...); the message says what is missing."""


class ProxyControl(Protocol):
    """What the fleet needs of Toxiproxy (chaos/toxiproxy_server/control.py provides it)."""

    def create(self, name: str, listen: str, upstream: str, enabled: bool = True) -> str: ...

    def delete(self, name: str) -> None: ...

    def proxy(self, name: str) -> dict: ...

    def enable(self, name: str) -> None: ...

    def toxics(self, proxy: str) -> list[dict]: ...

    def remove_toxic(self, proxy: str, name: str) -> None: ...

    def set_upstream(self, name: str, upstream: str) -> None: ...


@dataclass
class Backend:
    """One backend process and where it is reached."""

    id: str
    published: str  # HOST:P as DNS publishes it (the proxy's listen when proxied)
    listen: str  # what the process binds (== published when not proxied)
    cert: CertFiles  # its good certificate, restored by reset()
    log: Path  # its stderr
    proxy: str | None = None
    pid: int = 0
    control: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)
    paused: bool = False
    channel: grpc.Channel | None = field(default=None, repr=False)
    ready: launch.ReadyLine | None = field(default=None, repr=False)
    cert_kind: str = "good"  # what it serves: a server without live swap restarts with it
    workdir: Path | None = None
    last_stop: launch.Stopped | None = None
    point: points.Point | None = field(default=None, repr=False)  # its HTTP/2 fault point
    point_upstream: str = ""  # where that point relays
    point_cert_kind: str = "good"  # the kind of certificate that point presents

    @property
    def ip(self) -> str:
        return self.published.rsplit(":", 1)[0]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def to_json(self) -> dict:
        info = {"id": self.id, "pid": self.pid, "address": self.published, "control": self.control}
        if self.proxy:
            info["proxy"] = self.proxy
            info["upstream"] = self.listen
        if self.point is not None:
            info["http2_point"] = "{}:{}".format(*self.point.address)
        return info


def default_net() -> ipaddress.IPv4Network:
    """The /24 of published addresses: 127.0.0.0/24, or 127.<k+1>.0.0/24 for pytest-xdist
    worker gw<k>.

    Separate blocks keep concurrent fleets of different workers from racing for a port on
    the same addresses; the rest of each worker's 127.<k>.0.0/16 is left for extra fleets.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    return ipaddress.IPv4Network(f"127.{index % 256}.0.0/24")


class Fleet:
    """Start, fault and stop a fleet of TLS backends behind one DNS name.

    The backends run the built-in Greeter (``service`` None) or a service's server command
    (``service``, a :class:`fleet.spec.ServiceSpec` such as grpc-chaos's target files:
    fleet/launch.py starts, readies and stops it).
    Use as a context manager (``with Fleet(3) as fleet: ...``) or call start()/close().
    Process faults (kill, pause, ...) act on the local processes; health flips, application
    faults and live certificate swaps need the Control service (the built-in Greeter has it;
    a target declares it), and raise Unsupported without it.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        mtls: bool = False,
        workdir: Path | None = None,
        health: bool = True,
        max_connection_age_ms: int | None = None,
        net: str | None = None,
        proxies: ProxyControl | None = None,
        name: str = FLEET_NAME,
        start_timeout: float | None = None,
        service: ServiceSpec | None = None,
        http2: bool | points.PointServer = False,
    ):
        if not 1 <= size <= MAX_SIZE:
            raise ValueError(f"fleet size {size} is not within 1..{MAX_SIZE}")
        target = None if service is None or getattr(service, "builtin", False) else service
        self.service = target
        if target is not None and (not health or max_connection_age_ms):
            option = (
                "without its health service"
                if not health
                else "with a max connection age of our choosing"
            )
            raise Unsupported(
                f"the target {target.name} is started as its command says: it cannot be "
                f"started {option} (only the built-in Greeter has such options)"
            )
        if target is not None and mtls and not target.server.mtls:
            raise Unsupported(
                f"the target {target.name} does not require client "
                f"certificates: set server.mtls = true and pass {{client_ca}} "
                f"in server.command"
            )
        self.size = size
        self.mtls = mtls or (target is not None and target.server.mtls)
        self.health = health
        self.max_connection_age_ms = max_connection_age_ms
        self.name = name
        self.net = ipaddress.IPv4Network(net) if net else default_net()
        if not self.net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"fleet net {self.net} is not on loopback (127.0.0.0/8)")
        self.proxies = proxies
        if http2 and proxies is None:
            # The point listens on 127.0.0.1:<random>; only a proxy can publish it on the
            # backend's address (HOST:P, the same P for every backend).
            raise FleetError(
                "http2=True needs a proxied fleet (proxies=...): the Toxiproxy proxy "
                "publishes each backend's HTTP/2 point on its address"
            )
        self.http2 = bool(http2)
        # A server passed in is the caller's to stop; one made here is this fleet's.
        self._points_given = None if isinstance(http2, bool) else http2
        self.point_server: points.PointServer | None = None
        if start_timeout is None and self.service is not None:
            # The target's own start_timeout_s (chaos/targets/): each backend is awaited
            # from its own start, so the fleet's size does not add to it.
            start_timeout = self.service.server.start_timeout_s
        self.start_timeout = (
            start_timeout
            if start_timeout is not None
            else START_TIMEOUT_S + START_TIMEOUT_PER_BACKEND_S * size
        )
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self.port = 0
        self.backends: list[Backend] = []
        self.dns: DnsServer | None = None
        self.pki: PKI | None = None
        self.client: CertFiles | None = None

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> Fleet:
        """Make the PKI, start every backend in parallel, publish them, start DNS."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="grpc-chaos-fleet-"))
            reaper.register_path(self.workdir)
        self.pki = PKI(self.workdir / "pki", name=self.name)
        self.client = self.pki.client_cert("client")
        self.port = self._pick_port()
        for index in range(self.size):
            self.backends.append(self._plan(index))
        for backend in self.backends:
            self._spawn(backend)
        deadline = time.monotonic() + self.start_timeout
        for backend in self.backends:
            self._await_ready(backend, deadline)
        self._resolve_rpc(self.backends[0])
        if self.http2:
            # One point process for the fleet (not per session): it lives and dies with the
            # fleet's backends and certificates, so a fleet closed leaves nothing behind.
            self.point_server = self._points_given or points.start_server()
            for backend in self.backends:
                self._add_point(backend)
        if self.proxies is not None:
            for backend in self.backends:
                self.proxies.create(_proxy_name(backend), backend.published, _hop(backend))
        self.dns = DnsServer({self.name: [b.ip for b in self.backends]}, host=self.dns_host).start()
        with _running_lock:
            _running.add(self)

    @property
    def dns_host(self) -> str:
        """Where the DNS server listens: the first address of the fleet's own block
        (127.0.0.1 for the default one). A DNS outage stops it and starts it again on the
        same port; on an address shared with other fleets, a process binding port 0
        meanwhile (another pytest-xdist worker's backend or proxy) can take that port
        (seen with -n 2: "TCP port 46565 on 127.0.0.1 is taken by pid 1879")."""
        return str(self.net.network_address + 1)

    def _published_ips(self, count: int | None = None) -> list[str]:
        return [
            str(self.net.network_address + FIRST_HOST + i)
            for i in range(self.size if count is None else count)
        ]

    def _pick_port(self) -> int:
        """A port free on every published address (the kernel picks, we check the rest)."""
        ips = self._published_ips()
        for _ in range(PORT_TRIES):
            with socket.socket() as probe:
                probe.bind((ips[0], 0))
                port = probe.getsockname()[1]
            if all(_port_free(ip, port) for ip in ips[1:]):
                return port
        raise FleetError(f"no port is free on all of {ips[0]}..{ips[-1]} after {PORT_TRIES} tries")

    def _plan(self, index: int) -> Backend:
        backend_id = f"b{index + 1}"
        ip = self._published_ips(index + 1)[index]
        published = f"{ip}:{self.port}"
        proxied = self.proxies is not None
        assert self.pki is not None and self.workdir is not None  # set by _start()
        return Backend(
            id=backend_id,
            published=published,
            listen="127.0.0.1:0" if proxied else published,
            cert=self.pki.server_cert(backend_id, ip),
            log=self.workdir / f"{backend_id}.log",
            proxy=f"{self.name}-{self.port}-{backend_id}" if proxied else None,
        )

    @property
    def has_control(self) -> bool:
        """Whether the backends serve grpc-chaos's Control service."""
        return self.service is None or bool(self.service.server.control)

    def _spawn(self, backend: Backend) -> None:
        assert self.pki is not None  # set by _start()
        cert = self.pki.server_cert(backend.id, backend.ip, backend.cert_kind)
        if self.service is None:
            argv = [
                sys.executable,
                "-m",
                "fleet.server",
                "--id",
                backend.id,
                "--listen",
                backend.listen,
                "--cert",
                str(cert.cert),
                "--key",
                str(cert.key),
                "--parent-pid",
                str(os.getpid()),
            ]
            if self.mtls:
                argv += ["--client-ca", str(self.pki.ca_cert)]
            if not self.health:
                argv.append("--no-health")
            if self.max_connection_age_ms:
                argv += ["--max-connection-age-ms", str(self.max_connection_age_ms)]
            with open(backend.log, "ab") as log:
                process = lifeline.spawn(argv, stderr=log)
        else:
            argv = self.service.server.argv(self._placeholders(backend, cert))
            try:
                process = launch.spawn(
                    argv,
                    backend.log,
                    dict(self.service.server.env),
                    self.service.server.cwd,
                    pipe_stdout=False,
                )
            except OSError as error:
                raise FleetError(
                    f"backend {backend.id}: cannot start {argv[0]!r}: {error.strerror}"
                ) from None
        reaper.register_pid(process.pid)
        backend.process, backend.pid, backend.paused = process, process.pid, False
        backend.ready = launch.ReadyLine(process) if self.service is None else None

    def _placeholders(self, backend: Backend, cert: CertFiles) -> dict[str, str]:
        # A server we do not control cannot report a port it picked: pick its ports here
        # (once: a restart reuses them, as a real instance keeps its address).
        if backend.listen.endswith(":0"):
            backend.listen = f"{backend.listen.rsplit(':', 1)[0]}:{_free_port()}"
        if self.has_control and not backend.control:
            backend.control = f"127.0.0.1:{_free_port()}"
        assert self.pki is not None and self.workdir is not None  # set by _start()
        if backend.workdir is None:
            backend.workdir = self.workdir / backend.id
            backend.workdir.mkdir(exist_ok=True)
        host, port = backend.listen.rsplit(":", 1)
        return {
            "host": host,
            "port": port,
            "cert": str(cert.cert),
            "key": str(cert.key),
            "ca": str(self.pki.ca_cert),
            "client_ca": str(self.pki.ca_cert),
            "id": backend.id,
            "workdir": str(backend.workdir),
            "control": backend.control,
        }

    def _await_ready(self, backend: Backend, deadline: float) -> None:
        if self.service is None:
            assert backend.ready is not None  # _spawn() reads the built-in Greeter's ready line
            info = backend.ready.wait(max(0.0, deadline - time.monotonic()))
            if info is None:
                reason = launch.tail(backend.log) or "no ready line"
                self._reap(backend)
                raise FleetError(f"backend {backend.id} did not start: {reason}")
            backend.control = info["control"]
            backend.listen = info["address"]  # the real port when it bound :0
        else:
            self._await_command_ready(backend, deadline)
        if self.has_control:
            backend.channel = grpc.insecure_channel(backend.control)

    def _await_command_ready(self, backend: Backend, deadline: float) -> None:
        service, process = self.service, backend.process
        assert service is not None  # only a service's command has no ready line
        assert process is not None  # _spawn() started it
        server = service.server
        with self.direct_channel(backend) as channel:
            if backend.cert_kind != "good":
                # Started with a certificate no client may trust (a certificate fault): no
                # TLS probe can succeed, so it is ready once it accepts connections.
                probe = lambda: launch.probe_listening(backend.listen)  # noqa: E731
            elif server.ready == "rpc":
                probe = lambda: launch.probe_rpc(channel, service.rpc)  # noqa: E731
            else:
                probe = lambda: launch.probe_health(channel, service.health_service)  # noqa: E731
            try:
                launch.await_ready(
                    process, f"{server.ready} probe answering", probe, deadline, backend.log
                )
                named = service.health_service
                if named and server.ready == "rpc" and backend.cert_kind == "good":
                    launch.await_ready(
                        process,
                        f"its health service knowing {named!r} ([health] service)",
                        lambda: launch.probe_health_known(channel, named),
                        deadline,
                        backend.log,
                    )
            except launch.LaunchError as error:
                self._reap(backend)
                raise FleetError(
                    f"backend {backend.id} ({' '.join(server.command[:3])}"
                    f"{' ...' if len(server.command) > 3 else ''}): {error}"
                ) from None

    def _resolve_rpc(self, backend: Backend) -> None:
        """A target whose message types come from its servers' reflection service learns
        them from the first backend that is ready (once: they are the same everywhere)."""
        rpc = None if self.service is None else self.service.rpc
        if rpc is None or not rpc.needs_resolve:
            return
        with self.direct_channel(backend) as channel:
            try:
                wait_until(
                    lambda: _resolved(rpc, channel),
                    self.start_timeout,
                    f"{backend.id}'s reflection service answering",
                )
            except (TimeoutError, ValueError) as error:  # a TargetError is a ValueError
                raise FleetError(f"backend {backend.id}: {error}") from None

    def direct_channel(self, backend: Backend) -> grpc.Channel:
        """A plain channel straight to the backend's own port (no DNS, no proxy): for
        readiness probes and diagnostics, never for the client under test."""
        from fleet import client

        options = [
            ("grpc.ssl_target_name_override", self.name),
            ("grpc.use_local_subchannel_pool", 1),
        ]
        return grpc.secure_channel(
            backend.listen, client.credentials(self.info_paths(), self.mtls), options=options
        )

    def info_paths(self) -> dict:
        """The CA and client certificate paths, as client.credentials() reads them."""
        assert self.pki is not None and self.client is not None  # set by _start()
        return {
            "ca": str(self.pki.ca_cert),
            "client_cert": str(self.client.cert),
            "client_key": str(self.client.key),
        }

    def close(self) -> None:
        """Stop everything this fleet started; safe to call twice and after a failed start."""
        with _running_lock:
            _running.discard(self)
        if self.dns is not None:
            self.dns.stop()
        for backend in self.backends:
            if self.proxies is not None and backend.proxy:
                with contextlib.suppress(Exception):  # the server may be gone: nothing to undo
                    self.proxies.delete(backend.proxy)
            self._close_point(backend)
            self._reap(backend)
        self.backends = []
        server, self.point_server = self.point_server, None
        if server is not None and server is not self._points_given:
            server.stop()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            reaper.unregister_path(self.workdir)
            self.workdir = None

    def reap(self, backend_id: str) -> None:
        """Collect a backend whose process ended without the fleet stopping it: no zombie
        is left and the reaper forgets its pid (so it never signals a reused one).

        A backend still running is killed first. Not safe to run at the same time as another
        operation on the same backend: the caller serializes (``python -m fleet up`` stops
        its watcher before close()).
        """
        self._reap(self.backend(backend_id))

    def _reap(self, backend: Backend) -> None:
        if backend.channel is not None:
            backend.channel.close()
            backend.channel = None
        process = backend.process
        if process is None:
            return
        if process.poll() is None:
            _signal(process.pid, signal.SIGCONT)
            _signal(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream:
                stream.close()
        reaper.unregister_pid(process.pid)
        backend.process = None

    # ------------------------------------------------------------------ info

    @property
    def target(self) -> str:
        assert self.dns is not None  # set by _start()
        return f"dns://{self.dns.address}/{self.name}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.name}:{self.port}"

    @property
    def ids(self) -> list[str]:
        return [b.id for b in self.backends]

    def processes(self) -> list[tuple[str, int, bool]]:
        """(who, pid, group) of each backend process now running: "backend b2 (pid 4711)",
        its pid, and whether the rest of its process group is part of it (a target's
        server may fork workers; the built-in Greeter does not). Safe from any thread."""
        group = self.service is not None
        running = [
            (f"backend {b.id} (pid {b.pid})", b.pid, group)
            for b in list(self.backends)
            if b.process is not None
        ]
        server = self.point_server
        pid = server.pid if server is not None else None
        if pid:  # every RPC goes through it: a verdict depends on its getting a CPU too
            running.append((f"HTTP/2 point (pid {pid})", pid, False))
        return running

    def __getitem__(self, backend_id: str) -> BackendHandle:
        """A handle on one backend: ``fleet["b2"].kill()``, ``fleet["b1"].stats()``."""
        return BackendHandle(self, backend_id)

    def backend(self, backend_id: str) -> Backend:
        for backend in self.backends:
            if backend.id == backend_id:
                return backend
        raise FleetError(f"no backend {backend_id!r}; the fleet has {', '.join(self.ids)}")

    def info(self) -> dict:
        """The fleet as JSON-able data (what ``python -m fleet up`` prints); absolute paths."""
        pki, client, dns = self.pki, self.client, self.dns
        assert pki is not None and client is not None and dns is not None  # set by _start()
        return {
            "target": self.target,
            "authority": self.authority,
            "ca": str(pki.ca_cert.resolve()),
            "client_cert": str(client.cert.resolve()),
            "client_key": str(client.key.resolve()),
            "dns": dns.address,
            "mtls": self.mtls,
            "backends": [b.to_json() for b in self.backends],
        }

    # ------------------------------------------------------------------ process faults

    def kill(self, backend_id: str, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Send ``sig`` (kill -9 by default) to the backend's process group and wait until
        the process is gone."""
        backend = self._running(backend_id)
        launch.signal_group(backend.pid, sig)
        if backend.paused and sig != signal.SIGKILL:
            launch.signal_group(backend.pid, signal.SIGCONT)  # stopped: it would never handle it
        assert backend.process is not None  # _running(): it is alive
        try:
            backend.process.wait(timeout=timeout)
        except Exception:
            raise FleetError(
                f"backend {backend_id} (pid {backend.pid}) still runs "
                f"{timeout:g} s after {signal.Signals(sig).name}"
            ) from None
        self._reap(backend)

    @property
    def stop_signal(self) -> signal.Signals:
        return signal.SIGTERM if self.service is None else self.service.server.stop_signal

    @property
    def stop_grace_s(self) -> float:
        # The built-in Greeter stops within its --term-grace-ms (1 s); the margin is for a
        # busy machine.
        return 10.0 if self.service is None else self.service.server.stop_grace_s

    def terminate(self, backend_id: str) -> launch.Stopped:
        """Stop the backend as a scheduler does in a rolling update: its stop signal
        (SIGTERM by default), then SIGKILL if it is still running after its grace period.
        Returns how it went (``forced`` when the grace ran out); kept as ``last_stop``."""
        backend = self._running(backend_id)
        assert backend.process is not None  # _running(): it is alive
        stopped = launch.stop(backend.process, self.stop_signal, self.stop_grace_s)
        backend.last_stop = stopped
        self._reap(backend)
        return stopped

    def pause(self, backend_id: str) -> None:
        """SIGSTOP: the process hangs with its sockets open (a hung backend)."""
        backend = self._running(backend_id)
        launch.signal_group(backend.pid, signal.SIGSTOP)
        wait_until(
            lambda: _proc_state(backend.pid) in ("T", "t"), 5.0, f"backend {backend_id} stopped"
        )
        backend.paused = True

    def resume(self, backend_id: str) -> None:
        """SIGCONT a paused backend."""
        backend = self._running(backend_id)
        launch.signal_group(backend.pid, signal.SIGCONT)
        wait_until(
            lambda: _proc_state(backend.pid) not in ("T", "t"), 5.0, f"backend {backend_id} resumed"
        )
        backend.paused = False

    def restart(self, backend_id: str, timeout: float | None = None) -> None:
        """Kill the backend if it runs, then start it again: same address, same certificate."""
        backend = self.backend(backend_id)
        if backend.alive():
            self.kill(backend_id)
        self._reap(backend)
        self._spawn(backend)
        self._await_ready(backend, time.monotonic() + (timeout or self.start_timeout))
        # Same address as a rule (the port is kept); the point follows if it ever is not.
        self._sync_point(backend)

    def drain(
        self, backend_id: str, wait_ms: int = 500, grace_ms: int = 1000, wait: bool = True
    ) -> None:
        """Graceful drain: NOT_SERVING (set when this returns with ``wait=False``), wait
        ``wait_ms``, stop with ``grace_ms``; with ``wait`` (default) returns once it exited."""
        backend = self._running(backend_id)
        drain_request = control_pb2.DrainRequest
        self._call(backend, "Drain", drain_request(wait_ms=wait_ms, grace_ms=grace_ms))
        if wait:
            self.wait_exit(backend_id, (wait_ms + grace_ms) / 1000 + CONTROL_TIMEOUT_S)

    def wait_exit(self, backend_id: str, timeout: float) -> None:
        """Wait until the backend's process has ended (e.g. after a drain), and reap it."""
        backend = self.backend(backend_id)
        if backend.process is None:
            return
        try:
            backend.process.wait(timeout=timeout)
        except Exception:
            raise FleetError(f"backend {backend_id} did not exit within {timeout:g} s") from None
        self._reap(backend)

    def replace(self, backend_id: str, timeout: float | None = None) -> str:
        """Start a new process for a backend that is down, on a new upstream port, without
        pointing its proxy at it (its clients still meet whatever the proxy reaches now);
        returns the new upstream address. :meth:`repoint` then makes it reachable at once.
        Proxied fleets only."""
        backend = self.backend(backend_id)
        if self.proxies is None:
            raise FleetError("replace() needs a proxied fleet: the proxy is what is repointed")
        if backend.alive():
            raise FleetError(f"backend {backend_id} still runs; kill it first")
        self._reap(backend)
        backend.listen = "127.0.0.1:0"
        self._spawn(backend)
        self._await_ready(backend, time.monotonic() + (timeout or self.start_timeout))
        return backend.listen

    def repoint(self, backend_id: str, upstream: str | None = None) -> None:
        """Point the backend's proxy at ``upstream`` (default: where the backend listens
        now); the proxy restarts on the same address, closing its connections."""
        backend = self.backend(backend_id)
        if self.proxies is None:
            raise FleetError("repoint() needs a proxied fleet: the proxy is what is repointed")
        if backend.point is not None:
            # The point relays to the new upstream; the proxy is restarted in front of it
            # all the same, so open connections close as they do without the point.
            backend.point.set_upstream(_host_port(upstream or backend.listen))
            backend.point_upstream = upstream or backend.listen
        self.proxies.set_upstream(_proxy_name(backend), _hop(backend, upstream))

    # ------------------------------------------------------------------ scale

    def add_backend(self) -> Backend:
        """Scale out: start one more backend (the next id, the next published address, the
        fleet's port) behind its own proxy, ready; DNS does not publish it yet (the caller
        adds its record: that is the change clients must see)."""
        index = len(self.backends)
        if index >= MAX_SIZE:
            raise FleetError(f"the fleet has {index} backends already, the most it can have")
        backend = self._plan(index)
        if not _port_free(backend.ip, self.port):
            raise FleetError(
                f"port {self.port} on {backend.ip} is taken: "
                f"{ports.describe_taken(backend.ip, self.port)}"
            )
        self.backends.append(backend)
        try:
            self._spawn(backend)
            self._await_ready(backend, time.monotonic() + self.start_timeout)
            if self.http2:
                self._add_point(backend)
            if self.proxies is not None:
                self.proxies.create(_proxy_name(backend), backend.published, _hop(backend))
        except BaseException:
            self.remove_backend(backend.id)
            raise
        return backend

    def remove_backend(self, backend_id: str) -> None:
        """Scale in for good: delete the backend's proxy, kill what is left of its process
        and forget it (take its DNS record away first, and stop it gracefully, to scale in
        the way a release does)."""
        backend = self.backend(backend_id)
        if self.proxies is not None and backend.proxy:
            # It may never have been created (a failed start): nothing to delete then.
            with contextlib.suppress(Exception):
                self.proxies.delete(backend.proxy)
        self._close_point(backend)
        self._reap(backend)
        self.backends.remove(backend)

    # ------------------------------------------------------------------ control faults

    @property
    def health_services(self) -> tuple[str, ...]:
        """The health service names clients may ask about: the server's ("") and the one
        the target names (the built-in Greeter: greeter.Greeter)."""
        named = "greeter.Greeter" if self.service is None else self.service.health_service
        return tuple(dict.fromkeys(("", named)))

    def set_health(self, backend_id: str, status: str, service: str | None = None) -> None:
        """Set SERVING / NOT_SERVING / ... for ``service``; None = every name clients ask
        about (:attr:`health_services`). Needs the Control service."""
        backend = self._running(backend_id)
        services = self.health_services if service is None else (service,)
        health_request = control_pb2.SetHealthRequest
        for name in services:
            self._call(backend, "SetHealth", health_request(service=name, status=status))

    def served_certificate(self, backend_id: str) -> bytes:
        """The DER certificate a new TLS connection to the backend's published address
        meets (through its proxy and point, as a client meets it); the handshake verifies
        it against the fleet's CA, so a certificate no client may trust is an SSLError."""
        host, port = self.backend(backend_id).published.rsplit(":", 1)
        context = ssl.create_default_context(cafile=self.info()["ca"])
        context.set_alpn_protocols(["h2"])
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=self.name) as tls,
        ):
            certificate = tls.getpeercert(binary_form=True)
        assert certificate is not None  # the context requires one (CERT_REQUIRED)
        return certificate

    def set_certificate(self, backend_id: str, kind: str = "good") -> CertFiles:
        """Serve a certificate of ``kind`` (fleet.pki.SERVER_KINDS) to new connections:
        swapped live through the Control service when the backends have it (open
        connections keep theirs), else by restarting the backend with those files."""
        backend = self.backend(backend_id)
        assert self.pki is not None  # set by _start()
        cert = self.pki.server_cert(backend.id, backend.ip, kind)
        backend.cert_kind = kind
        self._sync_point(backend)  # what the client meets first
        if self.has_control:
            self._call(
                self._running(backend_id),
                "SetCertificate",
                control_pb2.SetCertificateRequest(
                    cert_chain_pem=cert.cert_pem(), private_key_pem=cert.key_pem()
                ),
            )
        else:
            self.restart(backend_id)
        return cert

    def app_fault(
        self,
        backend_id: str,
        code: str | None = None,
        *,
        fraction: float = 0.0,
        next_n: int = 0,
        delay_ms: int = 0,
        details: str = "",
    ) -> None:
        """Fail a fraction or the next N SayHello calls with ``code``, and/or delay them."""
        backend = self._running(backend_id)
        if code and not fraction and not next_n:
            fraction = 1.0  # a code alone means "fail every call"
        self._call(
            backend,
            "SetAppFault",
            control_pb2.AppFault(
                code=code or "",
                fraction=fraction,
                next_n=next_n,
                delay_ms=delay_ms,
                details=details,
            ),
        )

    def stats(self, backend_id: str) -> dict:
        """Calls served by the backend, by status code, and in flight now."""
        backend = self._running(backend_id)
        request = control_pb2.Empty()
        reply = self._call(backend, "GetStats", request)
        return {"calls": reply.calls, "by_code": dict(reply.by_code), "in_flight": reply.in_flight}

    def reset(self) -> None:
        """Back to baseline: every backend running, unpaused, SERVING, good cert, no app fault,
        its proxy enabled without toxics, DNS publishing every backend."""
        self._reset_proxies()
        for backend in self.backends:
            if backend.paused and backend.alive():
                self.resume(backend.id)
            if not backend.alive() or (backend.cert_kind != "good" and not self.has_control):
                backend.cert_kind = "good"
                self.restart(backend.id)
                continue  # a fresh process is at baseline already
            if not self.has_control:
                continue  # nothing else can have been changed inside it
            if self.health:
                self.set_health(backend.id, "SERVING")
            self.set_certificate(backend.id, "good")
            self.app_fault(backend.id)
        assert self.dns is not None  # set by _start()
        self.dns.set_records(self.name, [b.ip for b in self.backends])
        if not self.dns.running:
            self.dns.restart()

    # ------------------------------------------------------------------ internals

    def _reset_proxies(self) -> None:
        # Only this fleet's proxies: the Toxiproxy server may be shared (TOXIPROXY_URL), so
        # a server-wide POST /reset is not ours to send.
        if self.proxies is None:
            return
        for backend in self.backends:
            name = _proxy_name(backend)
            for toxic in self.proxies.toxics(name):
                self.proxies.remove_toxic(name, toxic["name"])
            self._reset_point(backend)
            proxy = self.proxies.proxy(name)
            if proxy.get("upstream", _hop(backend)) != _hop(backend):
                self.proxies.set_upstream(name, _hop(backend))
            if not proxy["enabled"]:
                self.proxies.enable(name)

    def http2_point(self, backend_id: str) -> points.Point:
        """The HTTP/2 fault point in front of a backend (chaos.http2.Http2Point: inject,
        clear, events, stats); FleetError naming the backend on a fleet without points."""
        backend = self.backend(backend_id)
        if backend.point is None:
            raise FleetError(
                f"backend {backend_id} has no HTTP/2 point: HTTP/2 faults need a fleet "
                f"started with http2=True (a scenario module: chaos_fleet = {{'http2': True}})"
            )
        return backend.point

    def _add_point(self, backend: Backend) -> None:
        """Start the backend's point: it presents the backend's own certificate (the one a
        client dialling the backend would meet, good or faulted), re-originates TLS to the backend
        trusting that CA for the fleet name, with a client certificate when mTLS."""
        assert self.point_server is not None and self.pki is not None  # set by _start()
        cert = self.pki.server_cert(backend.id, backend.ip, backend.cert_kind)
        mtls: dict[str, Path] = {}
        if self.mtls:
            client = self.pki.client_cert("h2point")
            mtls = {"client_ca": self.pki.ca_cert, "client_cert": client.cert}
            mtls["client_key"] = client.key
        backend.point = self.point_server.add_point(
            backend.id,
            upstream=_host_port(backend.listen),
            server_name=self.name,
            cert=cert.cert,
            key=cert.key,
            ca=self.pki.ca_cert,
            **mtls,
        )
        backend.point_upstream = backend.listen
        backend.point_cert_kind = backend.cert_kind

    def _sync_point(self, backend: Backend) -> None:
        """The point relays to where the backend listens and presents a certificate of the
        kind the backend serves (a certificate fault must reach the client through it)."""
        if backend.point is None:
            return
        if backend.point_upstream != backend.listen:
            backend.point.set_upstream(_host_port(backend.listen))
            backend.point_upstream = backend.listen
        if backend.point_cert_kind != backend.cert_kind:
            assert self.pki is not None  # set by _start()
            cert = self.pki.server_cert(backend.id, backend.ip, backend.cert_kind)
            backend.point.set_certificate(cert.cert, cert.key)
            backend.point_cert_kind = backend.cert_kind

    def _reset_point(self, backend: Backend) -> None:
        """Baseline for the point: no fault active, relaying to where the backend listens
        (the faults' own undo clears them first; this catches one injected by hand)."""
        point = backend.point
        if point is None:
            return
        for fault in point.stats()["faults"]:
            point.clear(fault["kind"])
        backend.point_upstream = ""
        self._sync_point(backend)

    def _close_point(self, backend: Backend) -> None:
        point, backend.point = backend.point, None
        if point is not None:
            with contextlib.suppress(Exception):  # the point process may be gone: nothing to undo
                point.close()

    def _running(self, backend_id: str) -> Backend:
        backend = self.backend(backend_id)
        if not backend.alive():
            raise FleetError(
                f"backend {backend_id} is not running (killed or drained); restart it first"
            )
        return backend

    def _call(self, backend: Backend, method: str, request):
        if not self.has_control:
            assert self.service is not None  # the built-in Greeter serves Control
            raise Unsupported(
                f"{method} needs grpc-chaos's Control service, which the "
                f"target {self.service.name} does not serve "
                f"(server.control = false)"
            )
        if backend.paused:
            raise FleetError(f"backend {backend.id} is paused (SIGSTOP); resume it first")
        stub = control_pb2_grpc.ControlStub(backend.channel)
        try:
            return getattr(stub, method)(request, timeout=CONTROL_TIMEOUT_S, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise FleetError(
                f"backend {backend.id}: {method} failed: {exc.code().name}: {exc.details()}"
            ) from None


def _hop(backend: Backend, upstream: str | None = None) -> str:
    """What the backend's proxy forwards to: its HTTP/2 point, else the backend
    (``upstream``, default where it listens)."""
    if backend.point is not None:
        return "{}:{}".format(*backend.point.address)
    return upstream or backend.listen


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _proxy_name(backend: Backend) -> str:
    """The name of the backend's Toxiproxy proxy: _plan() names one for every backend of a
    proxied fleet."""
    assert backend.proxy is not None, f"backend {backend.id} has no proxy"
    return backend.proxy


def _resolved(rpc, channel) -> bool:
    """Try once to learn the RPC's types by reflection; False while the server does not
    answer yet (a TargetError — not served, method unknown — is raised)."""
    try:
        rpc.resolve(channel)
        return True
    except grpc.RpcError:
        return False


def _free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now (the kernel picks it; a server started right after
    binds it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _port_free(ip: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((ip, port))
            return True
        except OSError:
            return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _proc_state(pid: int) -> str:
    """The one-letter state of a process (R, S, T, Z, ...); '' when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
