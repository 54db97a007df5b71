"""gRPC's per-subchannel attempt counters, sampled from a real client on a real fleet, and a
backend replaced behind its proxy (the long-outage staging)."""

from __future__ import annotations

import pytest

from chaos import profiles
from chaos.faults import Kill, Nemesis
from chaos.history import History
from chaos.load import Load
from chaos.observe.channelz import AttemptSampler, track_new_channel
from chaos.toxiproxy_server.control import ToxiproxyServer
from fleet.controller import Fleet
from fleet.procs.waiting import wait_until
from fleet.stand_in import StandIn


@pytest.fixture(scope="module")
def fleet():
    with (
        ToxiproxyServer() as server,
        Fleet(3, net="127.0.205.0/24", proxies=server.control()) as fleet,
    ):
        yield fleet


def test_a_new_channel_is_found_and_its_attempts_counted_per_backend(fleet):
    fleet.reset()
    profile = profiles.load("recommended")
    history = History()
    with Load(lambda: profile.channel(fleet.info(), aio=True), history, concurrency=4) as load:
        load.wait_for(300, timeout=20)
        assert load.channelz_id is not None
        sampler = AttemptSampler(
            load.channelz_id, {b.published: b.id for b in fleet.backends}
        ).start()
        load.wait_for(300, timeout=20)
        sampler.mark()
        first = {b: sampler.of(b)[0].started for b in fleet.ids}
        last = {b: sampler.of(b)[-1].started for b in fleet.ids}
        # ~100 attempts each (round_robin), the same as the answers per backend say
        answered = {b: sum(1 for r in history.window(None) if r.backend == b) for b in fleet.ids}
        assert all(last[b] - first[b] >= 50 for b in fleet.ids), (first, last)
        nemesis = Nemesis(fleet, history, fleet.proxies)
        kill = nemesis.inject(Kill("b2"))
        load.wait_for(300, timeout=20)
        sampler.mark()
        after = [s for s in sampler.of("b2") if s.t_ns >= kill.in_force_ns]
        assert after and after[-1].started == after[0].started  # no attempt to the dead one
        nemesis.undo_all()
        sampler.stop()
    assert sum(answered.values()) >= 300


def test_track_new_channel_sees_only_the_channel_made_inside():
    import grpc

    with track_new_channel() as found:
        channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        assert found() is not None
    finally:
        channel.close()
    with track_new_channel() as none:
        pass
    assert none() is None


def test_a_backend_replaced_behind_its_proxy_is_reached_only_once_repointed(fleet):
    fleet.reset()
    nemesis = Nemesis(fleet, History(), fleet.proxies)
    kill = nemesis.inject(Kill("b3"))
    old = fleet.backend("b3").listen
    with StandIn() as stand_in:
        fleet.repoint("b3", stand_in.address)
        new = fleet.replace("b3")
        assert new != old and fleet.backend("b3").alive()
        assert fleet.proxies.proxy(fleet.backend("b3").proxy)["upstream"] == stand_in.address
        fleet.repoint("b3")
        assert fleet.proxies.proxy(fleet.backend("b3").proxy)["upstream"] == new
    nemesis.undo(kill)  # restarts b3 on its current upstream
    fleet.reset()
    assert fleet.proxies.proxy(fleet.backend("b3").proxy)["upstream"] == fleet.backend("b3").listen


def test_reset_repoints_a_proxy_left_pointing_elsewhere(fleet):
    fleet.reset()
    with StandIn() as stand_in:
        fleet.repoint("b1", stand_in.address)
        fleet.reset()
        assert (
            fleet.proxies.proxy(fleet.backend("b1").proxy)["upstream"] == fleet.backend("b1").listen
        )
    wait_until(lambda: fleet.stats("b1") is not None, 5, "b1 answers its control service")
