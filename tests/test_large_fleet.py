"""A fleet of 40 backends behind Toxiproxy, reached by a round_robin client.

40 addresses do not fit a plain 512-byte UDP DNS answer (29 do): the client's resolver
(c-ares) gets a truncated answer and asks again over TCP. This is the fleet size the
plugin's --fleet-size and ``python -m fleet up --size`` advertise working.
"""

from __future__ import annotations

import collections
import time

import pytest

from chaos.toxiproxy_server.control import ToxiproxyServer
from fleet import client
from fleet.controller import Fleet
from fleet.protos import greeter_pb2, greeter_pb2_grpc
from tests.helpers import backend_of

SIZE = 40
# A new channel had all 40 answering within 0.4 s here (40 TLS connections through
# Toxiproxy, load average ~10); 60 s only bounds a broken or starved run.
REACH_TIMEOUT_S = 60.0
# Starting 40 backends took 7-10 s here at load average 10-20 (forty Python processes on
# 2 cores); the default 30 s leaves too little margin on a machine busier still.
START_TIMEOUT_S = 120.0
RPC_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def fleet():
    with (
        ToxiproxyServer() as server,
        Fleet(
            SIZE, net="127.0.208.0/24", proxies=server.control(), start_timeout=START_TIMEOUT_S
        ) as fleet,
    ):
        yield fleet


def _hello(stub) -> str:
    _, call = stub.SayHello.with_call(
        greeter_pb2.HelloRequest(name="large"), timeout=RPC_TIMEOUT_S, wait_for_ready=True
    )
    return backend_of(call)


def test_round_robin_reaches_every_one_of_forty_backends(fleet):
    since_ns = time.monotonic_ns()
    with client.channel(fleet.info(), service_config=client.ROUND_ROBIN) as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        seen: collections.Counter[str] = collections.Counter()
        deadline = time.monotonic() + REACH_TIMEOUT_S
        # Each call takes at least a loopback round trip; the count only bounds the loop.
        for _ in range(100_000):
            if len(seen) == SIZE or time.monotonic() > deadline:
                break
            seen[_hello(stub)] += 1
        assert set(seen) == set(fleet.ids), (
            f"{len(seen)} of {SIZE} backends answered within {REACH_TIMEOUT_S:g} s; "
            f"missing: {sorted(set(fleet.ids) - set(seen))}"
        )

        # Warm, round_robin goes round all forty: two rounds, two calls each.
        assert collections.Counter(_hello(stub) for _ in range(2 * SIZE)) == {
            backend_id: 2 for backend_id in fleet.ids
        }

    answers = [q for q in fleet.dns.queries(fleet.name, since_ns=since_ns) if q.qtype == "A"]
    assert any(q.transport == "tcp" and len(q.answers) == SIZE for q in answers), (
        f"no complete answer over TCP; A queries: {answers}"
    )
