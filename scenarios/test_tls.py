"""TLS: a backend presents a certificate the client must not trust."""

from __future__ import annotations

import pytest

from chaos import checks
from chaos.faults import Certificate, CutConnections

pytestmark = pytest.mark.tls


def test_backend_with_certificate_from_another_ca_never_serves(chaos):
    """Property: when b2 presents a certificate signed by another CA, a new client never
    gets an answer from b2 and loses no RPC: round_robin (and pick_first) skip the backend
    whose handshake fails.

    Bound: zero RPCs served by b2 and zero failed RPCs over 1,000 RPCs — the handshake
    fails before any RPC is assigned to that connection, so no timing margin is involved.
    """
    chaos.nemesis.inject(Certificate("b2", "other_ca"))
    chaos.nemesis.inject(CutConnections("b2"))  # connections made before keep the old cert
    start = chaos.history.mark("bad certificate in place")
    load = chaos.load(concurrency=8)
    chaos.warm_up(load, backends=[] if chaos.profile.policy == "pick_first" else ["b1", "b3"])
    load.wait_for(1000, timeout=20)
    chaos.expect(checks.no_traffic_to(chaos.history, target="b2", start_ns=start))
    chaos.expect(checks.errors(chaos.history, start_ns=start, budget=0))
