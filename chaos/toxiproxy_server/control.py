"""Selecting, starting and driving a Toxiproxy server for the framework.

Which server (first that applies):

1. ``TOXIPROXY_URL``: a server already running, real or embedded; nothing is started.
2. a ``toxiproxy-server`` binary on PATH (the real one): started on a free loopback port.
3. the embedded server (``python -m chaos.toxiproxy_server``) on a free loopback port.

:class:`ToxiproxyServer` does the choosing and starting, as a context manager that stops
only what it started. Every child dies with its parent, even one killed by SIGKILL:

* the embedded server runs with ``--parent-watch``: it asks the kernel for SIGTERM on
  parent death (PR_SET_PDEATHSIG) and exits when its stdin, a pipe we hold, reaches EOF;
  ``--ready-line`` gives us its port (it binds port 0, so there is no port race);
* the real binary cannot watch anything, and PR_SET_PDEATHSIG cannot be set for it
  without ``preexec_fn`` (unsafe with threads). So it is started through a small Python
  trampoline that sets PR_SET_PDEATHSIG on itself, checks its parent is still the one that
  started it, and then ``exec``s the binary: the death signal survives ``execve``, so the
  binary itself gets SIGTERM when we die. Its port is picked by binding port 0 and
  releasing it just before the start (a small race, retried on failure).

The kernel's death signal follows the *thread* that started the child: create servers
from a thread that outlives them (normally the main thread). Children run in their own
session, so a Ctrl-C in the terminal reaches only us, and we stop them.

:class:`ProxyControl` is the proxy control the scenario engine uses. It is built on
toxiproxy-python 0.1.1, whose server address is a class-level global
(``toxiproxy.api.APIConsumer.host/port``); :func:`toxiproxy_python` is the one place that
sets it, under a lock, so several servers can be driven from one process.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
import toxiproxy
import toxiproxy.api
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from fleet.procs import lifeline

ENV_URL = "TOXIPROXY_URL"
BINARY = "toxiproxy-server"
LOOPBACK = "127.0.0.1"

START_TIMEOUT = 15.0  # seconds for a server to answer after its start
STOP_TIMEOUT = 5.0  # seconds for a SIGTERM before SIGKILL
REQUEST_TIMEOUT = 30.0  # an API call; the server itself answers 503 after 25 s
_LOG_LINES = 200  # last lines of a child's output kept for error messages
# Never send loopback calls through a proxy. requests drops None-valued proxies after
# merging the environment's (sessions.merge_setting), but types the argument dict[str, str].
_NO_PROXIES = {"http": None, "https": None}

# Sets PR_SET_PDEATHSIG on itself, then becomes the binary (the signal survives execve).
_TRAMPOLINE = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('parent already gone')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


# An already running server answers /version in milliseconds; a few seconds cover a busy
# machine without making a wrong URL a long wait.
URL_CHECK_TIMEOUT = 5.0


class ToxiproxyError(RuntimeError):
    """A Toxiproxy API call failed; carries the server's status code and error message."""

    def __init__(self, status: int, message: str, method: str = "", path: str = ""):
        super().__init__(f"{method} {path}: {status} {message}".strip())
        self.status = status
        self.message = message


class ServerStartError(RuntimeError):
    """A Toxiproxy server could not be started or reached."""


# ------------------------------------------------------------------- server selection


def select_kind(environ=os.environ) -> tuple[str, str]:
    """Which server to use: ('url', URL) | ('binary', path) | ('embedded', '')."""
    url = environ.get(ENV_URL, "").strip()
    if url:
        return "url", url
    binary = shutil.which(BINARY, path=environ.get("PATH"))
    if binary:
        return "binary", binary
    return "embedded", ""


def free_port(host: str = LOOPBACK) -> int:
    """A port free on ``host`` right now (it may be taken again before it is used)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def embedded_command(*extra: str) -> list[str]:
    """The command line of the embedded server on a free loopback port."""
    return [
        sys.executable,
        "-m",
        "chaos.toxiproxy_server",
        "-host",
        LOOPBACK,
        "-port",
        "0",
        "--parent-watch",
        "--ready-line",
        *extra,
    ]


def _child_env() -> dict[str, str]:
    # The embedded server must import this checkout's chaos package, installed or not: the
    # folder that holds chaos/ (this file is chaos/toxiproxy_server/control.py).
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class _Tail:
    """Keeps the last lines a child writes to one pipe (read by a daemon thread)."""

    def __init__(self, stream):
        self.lines: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in iter(stream.readline, b""):
                self.lines.append(line.decode("utf-8", "replace").rstrip())

    def text(self) -> str:
        return "\n".join(self.lines)


class ToxiproxyServer:
    """A Toxiproxy server chosen as the module docstring says, usable as a context manager.

    ``kind`` forces a choice ('url', 'binary' or 'embedded'); ``url`` / ``binary`` name
    the server for those kinds; ``args`` are extra flags for a started server. Only what
    it started is stopped. Attributes once started: ``url``, ``host``, ``port``, ``kind``,
    ``pid`` (None for 'url').
    """

    def __init__(
        self,
        kind: str | None = None,
        *,
        url: str | None = None,
        binary: str | None = None,
        args: tuple[str, ...] = (),
        start_timeout: float = START_TIMEOUT,
    ):
        if kind is None:
            kind, found = select_kind()
            url = url or (found if kind == "url" else None)
            binary = binary or (found if kind == "binary" else None)
        if kind not in ("url", "binary", "embedded"):
            raise ValueError(f"unknown Toxiproxy server kind {kind!r}")
        self.kind = kind
        url = (url or "").strip().rstrip("/")
        self.url = url if "://" in url or not url else "http://" + url
        self.binary = binary or shutil.which(BINARY) or ""
        self.args = tuple(args)
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self._tails: list[_Tail] = []

    # -- properties

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def control(self, timeout: float = REQUEST_TIMEOUT) -> ProxyControl:
        return ProxyControl(self.url, timeout=timeout)

    def __repr__(self) -> str:
        return f"ToxiproxyServer(kind={self.kind!r}, url={self.url!r}, pid={self.pid})"

    # -- lifecycle

    def __enter__(self) -> ToxiproxyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> ToxiproxyServer:
        if self.kind == "url":
            if not self.url:
                raise ServerStartError(f"{ENV_URL} is empty")
            self._check_answering()
        elif self.kind == "embedded":
            self._start_embedded()
        else:
            self._start_binary()
        return self

    def stop(self) -> None:
        """Stop the server if we started it (SIGTERM, then SIGKILL); idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        lifeline.terminate(process, STOP_TIMEOUT)
        for tail in self._tails:  # they end at EOF, now that the process is gone
            tail.thread.join(STOP_TIMEOUT)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def output(self) -> str:
        """The last lines the started server printed (for error messages)."""
        return "\n".join(t.text() for t in self._tails)

    def _spawn(self, command: list[str], env=None) -> subprocess.Popen:
        return subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            close_fds=True,
        )

    def _start_embedded(self) -> None:
        self.process = self._spawn(embedded_command(*self.args), env=_child_env())
        try:
            line = _read_line(self.process.stdout, time.monotonic() + self.start_timeout)
            ready = json.loads(line)
            self.url = ready["url"]
        except (ValueError, KeyError, TimeoutError) as err:
            self._tails = [_Tail(self.process.stderr)]
            self.stop()
            raise ServerStartError(
                f"the embedded Toxiproxy server did not start ({err}):\n{self.output()}"
            ) from None
        self._tails = [_Tail(self.process.stdout), _Tail(self.process.stderr)]

    def _start_binary(self) -> None:
        if not self.binary:
            raise ServerStartError(f"no {BINARY} on PATH")
        problem = ""
        for _ in range(3):  # the free port may be taken before the binary binds it
            port = free_port()
            command = [
                sys.executable,
                "-c",
                _TRAMPOLINE,
                str(os.getpid()),
                self.binary,
                "-host",
                LOOPBACK,
                "-port",
                str(port),
                *self.args,
            ]
            self.process = self._spawn(command)
            self._tails = [_Tail(self.process.stdout), _Tail(self.process.stderr)]
            self.url = f"http://{LOOPBACK}:{port}"
            try:
                self._wait_until_answering(self.start_timeout)
                return
            except ServerStartError as err:
                problem = str(err)
                self.stop()
        raise ServerStartError(problem)

    def _check_answering(self) -> None:
        """A server given by URL is already running: it answers now, or it is an error."""
        try:
            requests.get(
                self.url + "/version",
                timeout=URL_CHECK_TIMEOUT,
                proxies=_NO_PROXIES,  # type: ignore[arg-type]  # None: no proxy (see _NO_PROXIES)
            ).raise_for_status()
        except requests.ConnectionError:
            raise ServerStartError(
                f"no Toxiproxy server answers at {self.url} (connection "
                f"refused or unreachable): start one, or drop the URL "
                f"to use the embedded server"
            ) from None
        except requests.RequestException as err:
            raise ServerStartError(
                f"the server at {self.url} is not a working Toxiproxy: GET /version failed: {err}"
            ) from None

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerStartError(
                    f"{self.kind} Toxiproxy server exited with "
                    f"{self.process.returncode}:\n{self.output()}"
                )
            try:
                requests.get(
                    self.url + "/version",
                    timeout=1.0,
                    proxies=_NO_PROXIES,  # type: ignore[arg-type]  # None: no proxy (see _NO_PROXIES)
                )
                return
            except requests.RequestException as err:
                last = str(err)
            # The real binary gives no sign of readiness but answering: poll (bounded).
            time.sleep(0.05)
        raise ServerStartError(
            f"Toxiproxy at {self.url} did not answer within {timeout} s: {last}\n{self.output()}"
        )


def _read_line(stream, deadline: float, limit: int = 65536) -> str:
    """One line from a child's pipe, waiting at most until ``deadline``."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or len(data) > limit:
                raise TimeoutError("no ready line")
            if not selector.select(left):
                continue
            byte = os.read(stream.fileno(), 1)  # byte by byte: nothing past the line
            if not byte:
                raise TimeoutError("the server closed its stdout")
            data += byte
    return data.decode("utf-8", "replace")


# ----------------------------------------------------------------------- proxy control

_API_LOCK = threading.RLock()


@contextlib.contextmanager
def toxiproxy_python(url: str) -> Iterator[toxiproxy.Toxiproxy]:
    """toxiproxy-python 0.1.1 bound to the server at ``url``, for the block's duration.

    The library keeps its server address in class attributes of ``APIConsumer``; this is
    the only place that sets them, holding a process-wide lock for the whole block, so
    calls to different servers never mix.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    with _API_LOCK:
        APIConsumer.host = f"[{host}]" if ":" in host else host  # the library adds ":port"
        APIConsumer.port = parts.port or 80
        yield toxiproxy.Toxiproxy()


_LIBRARY_ERRORS = {ProxyExists: 409, NotFound: 404, InvalidToxic: 400}


def _server_message(body: bytes | str) -> str:
    """The ``error`` of a Toxiproxy error body, or the body itself."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.strip()


class ProxyControl:
    """Proxies and toxics of one Toxiproxy server, through toxiproxy-python 0.1.1.

    Every call goes through the library's ``APIConsumer`` (with a timeout, and never via
    an HTTP proxy); errors from the server raise :class:`ToxiproxyError` carrying its
    status and message. Updates use POST, which every 2.x server accepts.
    """

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body=None) -> requests.Response:
        kwargs = {"timeout": self.timeout, "proxies": _NO_PROXIES}
        if body is not None:
            kwargs["json"] = body
        with toxiproxy_python(self.url):
            try:
                response = getattr(APIConsumer, method)(path, **kwargs)
            except tuple(_LIBRARY_ERRORS) as err:
                raise ToxiproxyError(
                    _LIBRARY_ERRORS[type(err)], _server_message(err.args[0]), method.upper(), path
                ) from None
        if response.status_code >= 300:
            raise ToxiproxyError(
                response.status_code, _server_message(response.content), method.upper(), path
            )
        return response

    @staticmethod
    def _path(*names: str) -> str:
        return "".join("/" + quote(name, safe="") for name in names)

    # -- proxies

    def version(self) -> str:
        body = self._call("get", "/version").text
        try:
            return json.loads(body)["version"]
        except (ValueError, KeyError, TypeError):
            return body.strip()  # servers before 2.6 answer in plain text

    def create(self, name: str, listen: str, upstream: str, enabled: bool = True) -> str:
        """Create a proxy; returns the listen address actually bound (port 0 resolved)."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return self._call("post", "/proxies", body).json()["listen"]

    def delete(self, name: str) -> None:
        self._call("delete", self._path("proxies", name))

    def proxies(self) -> dict[str, dict]:
        """Every proxy object (with its toxics), by name."""
        return self._call("get", "/proxies").json()

    def proxy(self, name: str) -> dict:
        return self._call("get", self._path("proxies", name)).json()

    def enable(self, name: str) -> None:
        self._call("post", self._path("proxies", name), {"enabled": True})

    def disable(self, name: str) -> None:
        """Stop listening and close every connection of the proxy (the port is kept)."""
        self._call("post", self._path("proxies", name), {"enabled": False})

    def set_upstream(self, name: str, upstream: str) -> None:
        """Point the proxy at another upstream; it restarts on the same listen address,
        closing its connections (spec: POST /proxies/{proxy})."""
        self._call("post", self._path("proxies", name), {"upstream": upstream})

    def populate(self, proxies: list[dict]) -> list[dict]:
        """Create or replace proxies in one call (``POST /populate``); returns them."""
        return self._call("post", "/populate", list(proxies)).json()["proxies"] or []

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("post", "/reset")

    # -- toxics

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: dict | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic; returns its name (by default ``<type>_<stream>``)."""
        body = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        return self._call("post", self._path("proxies", proxy, "toxics"), body).json()["name"]

    def update_toxic(
        self, proxy: str, name: str, attributes: dict | None = None, toxicity: float | None = None
    ) -> dict:
        """Change a toxic's attributes (merged) and/or toxicity; returns the toxic."""
        body: dict = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return self._call("post", self._path("proxies", proxy, "toxics", name), body).json()

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("delete", self._path("proxies", proxy, "toxics", name))

    def toxics(self, proxy: str) -> list[dict]:
        return self._call("get", self._path("proxies", proxy, "toxics")).json()
