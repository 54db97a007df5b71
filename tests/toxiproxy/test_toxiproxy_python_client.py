"""toxiproxy-python 0.1.1 (the library the framework is built on) against the server."""

from __future__ import annotations

import pytest
from toxiproxy.exceptions import NotFound, ProxyExists
from toxiproxy_testkit import EARLY_S, LATE_S, connect, refused, round_trip

from chaos.toxiproxy_server.control import toxiproxy_python


@pytest.fixture
def library(toxiproxy_server, control):  # control: cleans up this test's proxies
    with toxiproxy_python(toxiproxy_server.url) as server:
        yield server


def test_create_list_and_destroy(library, prefix, echo):
    assert library.running()
    assert b"version" in library.version()
    proxy = library.create(upstream=echo.address, name=prefix + "lib")
    assert proxy.name == prefix + "lib" and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    listed = library.proxies()[prefix + "lib"]
    assert (listed.listen, listed.upstream, listed.enabled) == (proxy.listen, echo.address, True)
    assert library.get_proxy(prefix + "lib").listen == proxy.listen
    with pytest.raises(ProxyExists):
        library.create(upstream=echo.address, name=prefix + "lib")
    with connect(proxy.listen) as sock:
        assert round_trip(sock) < LATE_S
    assert library.destroy(proxy) is True
    assert library.get_proxy(prefix + "lib") is None
    assert refused(proxy.listen)


def test_toxics(library, prefix, echo):
    proxy = library.create(upstream=echo.address, name=prefix + "lib")
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.add_toxic(type="timeout", stream="upstream", name="slow", toxicity=0.0)
    toxics = proxy.toxics()
    assert sorted(toxics) == ["latency_downstream", "slow"]
    latency = proxy.get_toxic("latency_downstream")
    assert (latency.type, latency.stream, latency.toxicity) == ("latency", "downstream", 1)
    assert latency.attributes == {"latency": 100, "jitter": 0}
    assert toxics["slow"].attributes == {"timeout": 0}
    with connect(proxy.listen) as sock:
        assert round_trip(sock) >= 0.1 - EARLY_S
    assert proxy.destroy_toxic("latency_downstream") is True
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")
    assert sorted(proxy.toxics()) == ["slow"]


def test_enable_disable_and_down(library, prefix, echo):
    proxy = library.create(upstream=echo.address, name=prefix + "lib")
    proxy.disable()
    assert proxy.enabled is False and refused(proxy.listen)
    assert library.get_proxy(prefix + "lib").enabled is False
    proxy.enable()
    with connect(proxy.listen) as sock:
        assert round_trip(sock) < LATE_S
    with proxy.down():
        assert refused(proxy.listen)
    with connect(proxy.listen) as sock:
        assert round_trip(sock) < LATE_S


def test_reset(library, prefix, echo):
    proxy = library.create(upstream=echo.address, name=prefix + "lib")
    # A latency reset left in place would hold the round trip below for 5 s.
    proxy.add_toxic(type="latency", attributes={"latency": 5000})
    proxy.disable()
    assert library.reset() is True
    again = library.get_proxy(prefix + "lib")
    assert again.enabled is True and again.toxics() == {}
    with connect(proxy.listen) as sock:
        assert round_trip(sock) < LATE_S


def test_populate(library, prefix, echo):
    made = library.populate(
        [{"name": prefix + "a", "upstream": echo.address, "listen": "127.0.0.1:0"}]
    )
    assert [p.name for p in made] == [prefix + "a"]
    assert prefix + "a" in library.proxies()
