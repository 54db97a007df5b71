"""A fleet behind Toxiproxy: network faults act on one backend's proxy, reset clears them."""

from __future__ import annotations

import pytest

from chaos.faults import Latency, Nemesis, ProxyDown
from chaos.history import History
from chaos.toxiproxy_server.control import ToxiproxyServer
from fleet.controller import Fleet


@pytest.fixture(scope="module")
def fleet():
    with (
        ToxiproxyServer() as server,
        Fleet(2, net="127.0.206.0/24", proxies=server.control()) as fleet,
    ):
        yield fleet


def test_published_addresses_are_proxies_to_the_backends(fleet):
    for backend in fleet.backends:
        proxy = fleet.proxies.proxy(backend.proxy)
        assert proxy["listen"] == backend.published and proxy["upstream"] == backend.listen
        assert backend.listen.startswith("127.0.0.1:")


def test_reset_removes_toxics_and_enables_the_fleets_proxies(fleet):
    nemesis = Nemesis(fleet, History(), fleet.proxies)
    nemesis.inject(Latency("b1", 100))
    nemesis.inject(ProxyDown("b2"))  # left in place: reset must repair it on its own
    assert fleet.proxies.toxics(fleet.backend("b1").proxy)
    fleet.reset()
    for backend in fleet.backends:
        assert fleet.proxies.toxics(backend.proxy) == []
        assert fleet.proxies.proxy(backend.proxy)["enabled"] is True


def test_close_deletes_the_fleets_proxies():
    with ToxiproxyServer() as server:
        control = server.control()
        with Fleet(1, net="127.0.207.0/24", proxies=control) as fleet:
            name = fleet.backend("b1").proxy
            assert name in control.proxies()
        assert name not in control.proxies()
