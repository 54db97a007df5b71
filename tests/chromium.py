"""Headless Chromium driven through its DevTools protocol, for tests that open a page as a
person would: load it, collect console errors and network requests, inspect the DOM,
take a screenshot.

    Chromium(--remote-debugging-port=0 on 127.0.0.1, fresh --user-data-dir)
       |  DevToolsActivePort (in the profile dir) -> the port
       |  GET /json/list -> the page's websocket URL
       +--> Page (a small RFC 6455 client): send commands, collect events

Debian's ``chromium`` package (``make chromium`` installs it). Everything it starts is in
its own process group, killed when the context ends; it talks to loopback only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,1000",
)
# Chromium starts in ~1 s here; the margin is for a busy 2-core machine.
START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """A headless Chromium for the length of a ``with`` block."""

    def __init__(self):
        path = binary()
        if path is None:
            raise RuntimeError(
                "no chromium on PATH: install Debian's chromium "
                "(make chromium, or apt-get install -y chromium)"
            )
        self.profile = Path(tempfile.mkdtemp(prefix="grpc-chaos-chromium-"))
        # Chromium puts its process-singleton socket in a directory of its own under
        # TMPDIR (org.chromium.Chromium.XXXXXX) and never removes it: inside the profile,
        # close() removes it with the rest.
        scratch = self.profile / "tmp"
        scratch.mkdir()
        self.process = subprocess.Popen(
            [path, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(scratch)},
            start_new_session=True,
        )
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode} at start")
            try:
                return int(marker.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
            # Wait for the process (or its start) rather than spin.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.05)
        raise TimeoutError(f"chromium wrote no {marker} within {START_TIMEOUT_S} s")

    def page(self) -> Page:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/json/list", timeout=COMMAND_TIMEOUT_S
        ) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t.get("type") == "page")
        return Page(page["webSocketDebuggerUrl"])

    def close(self) -> None:
        """SIGTERM to the whole group (Chromium ends its zygotes and renderers), SIGKILL
        to whatever is left after STOP_TIMEOUT_S."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self.alive() and time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.1)
            if not self.alive():
                break
        self.process.wait(timeout=COMMAND_TIMEOUT_S)
        shutil.rmtree(self.profile, ignore_errors=True)

    def alive(self) -> list[int]:
        """Processes of its group still running (zombies waiting for a reaper excluded)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.process.pid and fields[0] != "Z":
                found.append(int(entry))
        return found

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One page target over a websocket: commands, and the events seen meanwhile."""

    def __init__(self, url: str):
        host_port, path = url.removeprefix("ws://").split("/", 1)
        host, port = host_port.split(":")
        self.socket = socket.create_connection((host, int(port)), timeout=COMMAND_TIMEOUT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.socket.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket"
                f"\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.socket.recv(1)
            if not chunk:
                raise ConnectionError("chromium closed the websocket handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket upgrade refused: {head[:200]!r}")
        self.events: list[dict] = []
        self._next = 0

    def call(self, method: str, **params) -> dict:
        """Send a command and return its result (events meanwhile go to .events)."""
        self._next += 1
        ident = self._next
        self._send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._receive())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for_event(self, method: str, timeout: float = COMMAND_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        seen = next((e for e in self.events if e.get("method") == method), None)
        while seen is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.socket.settimeout(left)
            message = json.loads(self._receive())
            self.events.append(message)
            if message.get("method") == method:
                seen = message
        self.socket.settimeout(COMMAND_TIMEOUT_S)
        return seen

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()

    # RFC 6455 framing: client frames are masked; a message may come in fragments.

    def _send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        size = len(payload)
        head = bytes([0x81])  # FIN, text
        if size < 126:
            head += bytes([0x80 | size])
        elif size < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.socket.sendall(head + mask + masked)

    def _exactly(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = self.socket.recv(min(count - len(data), 1 << 20))
            if not chunk:
                raise ConnectionError("chromium closed the websocket")
            data += chunk
        return bytes(data)

    def _receive(self) -> str:
        message = bytearray()
        while True:
            first, second = self._exactly(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._exactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._exactly(8))[0]
            payload = self._exactly(size)
            if opcode == 0x8:
                raise ConnectionError("chromium closed the websocket")
            if opcode == 0x9:  # ping: answer, keep reading
                self.socket.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            message += payload
            if first & 0x80:
                return message.decode()


def open_page(chromium: Chromium, path: Path) -> tuple[Page, dict]:
    """Load ``path`` in a page and return it with what a person would have met: console
    errors, uncaught exceptions, requests that left the file, and every image's size."""
    page = chromium.page()
    for domain in ("Page", "Runtime", "Log", "Network"):
        page.call(f"{domain}.enable")
    page.call("Page.navigate", url=path.resolve().as_uri())
    page.wait_for_event("Page.loadEventFired")
    images = page.evaluate(
        "JSON.stringify([...document.images].map(i => ({alt: i.alt, "
        "complete: i.complete, width: i.naturalWidth, "
        "height: i.naturalHeight})))"
    )
    found = {"images": json.loads(images), "console_errors": [], "requests": []}
    for event in page.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found["console_errors"].append(str(params.get("args")))
        elif method == "Runtime.exceptionThrown":
            found["console_errors"].append(str(params.get("exceptionDetails")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found["console_errors"].append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(("data:", path.resolve().as_uri())):
                found["requests"].append(url)
    return page, found


def screenshot(page: Page, out: Path) -> Path:
    data = page.call("Page.captureScreenshot", format="png")["data"]
    out.write_bytes(base64.b64decode(data))
    return out
