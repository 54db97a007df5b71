"""Fixtures of the Toxiproxy compatibility suite.

The suite runs against whichever server chaos.toxiproxy_server.control selects: TOXIPROXY_URL
(e.g. a real toxiproxy-server 2.12), else a toxiproxy-server on PATH, else the embedded
server. Tests of behaviour where the embedded server deliberately differs (a 400 where
the reference crashes) are marked ``embedded_only``. Proxies are named with a per-test
prefix and deleted afterwards, so a shared server is left as it was found (except for
the tests of /reset, which by definition touch every proxy: run the suite serially
against a shared server).
"""

from __future__ import annotations

import itertools
import os
import re

import pytest
import requests
from toxiproxy_testkit import Upstream

from chaos.toxiproxy_server.control import ProxyControl, ToxiproxyError, ToxiproxyServer

_counter = itertools.count()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "embedded_only: behaviour specific to the embedded server (skipped against another server)",
    )


@pytest.fixture(scope="session")
def toxiproxy_server():
    with ToxiproxyServer() as server:
        yield server


@pytest.fixture(scope="session")
def server_is_embedded(toxiproxy_server) -> bool:
    return "grpc-chaos" in toxiproxy_server.control().version()


@pytest.fixture(autouse=True)
def _embedded_only(request, server_is_embedded):
    if request.node.get_closest_marker("embedded_only") and not server_is_embedded:
        pytest.skip("behaviour of the embedded server only")


class Api:
    """Raw HTTP to the server under test (for exact status codes, headers and bodies)."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False  # never through an HTTP proxy

    def request(self, method: str, path: str, body=None, **kwargs) -> requests.Response:
        if isinstance(body, (dict, list)):
            kwargs["json"] = body
        elif body is not None:
            kwargs["data"] = body
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def prefix(request) -> str:
    """A name prefix unique to this test (and this xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "w")
    stem = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40]
    return f"gct-{worker}-{next(_counter)}-{stem}-"


@pytest.fixture
def control(toxiproxy_server, prefix):
    ctl = toxiproxy_server.control()
    yield ctl
    for name in ctl.proxies():
        if name.startswith(prefix):
            try:
                ctl.delete(name)
            except ToxiproxyError as err:  # already deleted by the test
                assert err.status == 404


@pytest.fixture
def api(toxiproxy_server, control) -> Api:
    """Raw API access; depends on ``control`` so this test's proxies are cleaned up."""
    client = Api(toxiproxy_server.url)
    yield client
    client.session.close()


@pytest.fixture
def echo():
    with Upstream("echo") as server:
        yield server


@pytest.fixture
def sink():
    with Upstream("sink") as server:
        yield server


@pytest.fixture
def make_proxy(control: ProxyControl, prefix):
    """make_proxy(upstream_address, suffix="p") -> (name, bound listen address)."""

    def make(upstream: str, suffix: str = "p", listen: str = "127.0.0.1:0"):
        name = prefix + suffix
        return name, control.create(name, listen, upstream)

    return make
