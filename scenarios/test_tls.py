"""TLS: a backend presents a certificate the client must not trust, a fleet refuses clients
without the right certificate, and certificates are rotated under load."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from chaos import checks
from chaos.checks import Verdict
from chaos.checks.selection import in_window
from chaos.faults import Certificate, CutConnections
from fleet.pki import RENEWED, SERVER_KINDS

pytestmark = pytest.mark.tls

BAD_KINDS = [kind for kind in SERVER_KINDS if kind != "good"]

# How each implementation's failed RPCs name a bad server certificate: grpcio says what
# BoringSSL or gRPC's hostname check says (measured in tests/test_pki.py), grpc-go what Go's
# crypto/x509 says, grpc-js what Node's OpenSSL says, grpc-java what the JDK's certificate
# path checks say (the status's cause; measured through their drivers).
HANDSHAKE_REASONS = {
    "expired": {
        "grpcio": "CERTIFICATE_VERIFY_FAILED: certificate has expired",
        "grpc-go": "x509: certificate has expired or is not yet valid",
        "grpc-js": "certificate has expired",
        "grpc-java": "CertificateExpiredException",
    },
    "not_yet_valid": {
        "grpcio": "CERTIFICATE_VERIFY_FAILED: certificate is not yet valid",
        "grpc-go": "x509: certificate has expired or is not yet valid",
        "grpc-js": "certificate is not yet valid",
        "grpc-java": "CertificateNotYetValidException",
    },
    "other_ca": {
        "grpcio": "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate",
        "grpc-go": "x509: certificate signed by unknown authority",
        "grpc-js": "unable to verify the first certificate",
        "grpc-java": "unable to find valid certification path",
    },
    "wrong_name": {
        "grpcio": "Hostname Verification Check failed",
        "grpc-go": "x509: certificate is valid for",
        "grpc-js": "does not match certificate's altnames",
        "grpc-java": "No subject alternative DNS name matching",
    },
    "self_signed": {
        "grpcio": "CERTIFICATE_VERIFY_FAILED: self signed certificate",
        "grpc-go": "x509: certificate signed by unknown authority",
        "grpc-js": "self-signed certificate",
        "grpc-java": "unable to find valid certification path",
    },
}

# Failing fast (fail_fast_ms): a refused handshake fails the RPC in ~1-10 ms, ~150 ms under
# a retry policy (five attempts with 10..200 ms backoff), far from the 5 s deadline.
CALLS = 3


def failed_with(
    history, start_ns: int, end_ns: int | None, code: str, wordings: dict[str, str]
) -> Verdict:
    """Every RPC that started in the window failed with ``code``, its message naming the
    cause in one of ``wordings`` (checks.failure_reason); figure = the RPCs that did not."""
    return checks.failure_reason(
        history,
        in_window(history.rpcs, start_ns, end_ns),
        code,
        wordings,
        origin_ns=start_ns,
        min_rpcs=CALLS,
    )


def handler_calls(fleet, before: dict[str, int]) -> Verdict:
    """No backend ran its SayHello handler since ``before`` (calls per backend)."""
    after = {b: fleet.stats(b)["calls"] for b in fleet.ids}
    ran = {b: after[b] - before[b] for b in fleet.ids if after[b] != before[b]}
    text = (
        "no backend ran a SayHello handler: the RPCs were refused before reaching one"
        if not ran
        else f"handlers ran on {ran}: those RPCs reached a backend"
    )
    return Verdict("handler_calls", not ran, sum(ran.values()), "calls", 0, text + ".")


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_backend_with_a_bad_certificate_never_serves(chaos, kind):
    """Property: when b2 presents a bad certificate (signed by another CA, expired, not yet
    valid, naming another host, or self-signed), a new client never gets an answer from b2
    and loses no RPC: round_robin (and pick_first) skip the backend whose handshake fails.

    Bound: zero RPCs served by b2 and zero failed RPCs over 600 RPCs — the handshake fails
    before any RPC is assigned to that connection, so no timing margin is involved.
    """
    chaos.nemesis.inject(Certificate("b2", kind))
    chaos.nemesis.inject(CutConnections("b2"))  # connections made before keep the old cert
    start = chaos.history.mark("bad certificate in place")
    load = chaos.load(concurrency=8)
    chaos.warm_up(load, backends=["b1", "b3"])
    load.wait_for(600, timeout=20)
    chaos.expect(checks.no_traffic_to(chaos.history, backend="b2", start_ns=start))
    chaos.expect(
        checks.errors(chaos.history, start_ns=start, budget=chaos.requirements.error_budget),
    )


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_all_backends_with_bad_certificates_fail_fast_with_the_handshake_reason(chaos, kind):
    """Property: when every backend presents a bad certificate of one kind, a new client's
    RPCs fail at once with UNAVAILABLE, and the details name the TLS failure (e.g.
    "certificate has expired"), so an operator reading the error knows what to fix.

    Bound: each RPC fails within fail_fast_ms (1000 ms) while its deadline is 5 s — no RPC
    waits for a backend that can never be reached; the figure is ~1-10 ms, ~150 ms under a
    retry policy (its backoffs), and the margin covers a busy 2-core machine.
    """
    for backend in chaos.fleet.ids:
        chaos.nemesis.inject(Certificate(backend, kind))
        chaos.nemesis.inject(CutConnections(backend))
    start = chaos.history.mark("every certificate bad")
    with chaos.channel() as channel:
        call = chaos.caller(channel)
        for _ in range(CALLS):
            call(tolerate=True, timeout=5.0)
    chaos.expect(failed_with(chaos.history, start, None, "UNAVAILABLE", HANDSHAKE_REASONS[kind]))
    chaos.expect(
        checks.latency(
            chaos.history,
            percentile=100,
            bound_ms=chaos.requirements.fail_fast_ms,
            start_ns=start,
            only_ok=False,
            min_rpcs=CALLS,
        ),
        answers=("waitForReady", "retryPolicy"),
    )


@pytest.mark.needs("mtls", "control")
def test_mtls_fleet_refuses_clients_without_its_client_certificate(chaos):
    """Property: a fleet that requires client certificates (mTLS) serves a client that
    presents the fleet's certificate, and refuses — before any handler runs — a client with
    no certificate and a client whose certificate another CA signed; the refused RPCs fail
    fast with UNAVAILABLE (the server ends the handshake and the client is not told why:
    the details say "Socket closed", or nothing).

    Bound: the refused RPCs fail within fail_fast_ms (1000 ms) each (deadline 5 s) and no
    backend's handler runs for them — the refusal happens in the handshake, before any RPC
    exists.
    """
    fleet = chaos.extra_fleet(mtls=True)
    with chaos.channel(fleet=fleet) as channel:
        accepted = chaos.history.mark("client with the fleet certificate")
        call = chaos.caller(channel)
        for _ in range(CALLS):
            call()
    chaos.expect(checks.errors(chaos.history, start_ns=accepted, budget=0, min_rpcs=CALLS))

    other = fleet.pki.client_cert(kind="other_ca")
    clients: dict[str, tuple[str, str] | bool] = {
        "no client certificate": False,
        "a client certificate from another CA": (str(other.cert), str(other.key)),
    }
    for what, certificate in clients.items():
        before = {b: fleet.stats(b)["calls"] for b in fleet.ids}
        start = chaos.history.mark(what)
        # A client configured like the profile, but with the wrong (or no) certificate.
        with chaos.channel(fleet=fleet, client_cert=certificate) as channel:
            call = chaos.caller(channel)
            for _ in range(CALLS):
                call(tolerate=True, timeout=5.0)
        end = chaos.history.mark(f"{what}: done")
        # The details are "Socket closed" at best: the client is not told why, and at times
        # gRPC records the failed handshake with no message at all, so only the code is held.
        chaos.expect(failed_with(chaos.history, start, end, "UNAVAILABLE", {}))
        chaos.expect(
            checks.latency(
                chaos.history,
                percentile=100,
                bound_ms=chaos.requirements.fail_fast_ms,
                start_ns=start,
                end_ns=end,
                only_ok=False,
                min_rpcs=CALLS,
            ),
            answers=("waitForReady", "retryPolicy"),
        )
        chaos.expect(handler_calls(fleet, before))


@pytest.mark.needs("control")
def test_rotation_to_a_renewed_certificate_costs_no_rpc(chaos):
    """Property: rotating every backend to a renewed certificate (new key and serial from
    the same CA) under load costs no RPC: connections open before the rotation keep
    serving, and a client that connects after it handshakes with the renewed certificate
    and reaches every backend.

    Bound: zero failed RPCs from the warm-up on, across both clients — the rotation changes
    only what new handshakes are offered, and the new certificate is valid, so nothing may
    fail; no timing is involved.
    """
    before = chaos.load(concurrency=8)
    warm = chaos.warm_up(before)
    before.wait_for(200, timeout=10)
    for backend in chaos.fleet.ids:
        chaos.nemesis.inject(Certificate(backend, RENEWED))
    rotated = chaos.history.mark("renewed certificates in place")
    for backend in chaos.fleet.ids:
        renewed = x509.load_pem_x509_certificate(
            chaos.fleet.pki.server_cert(
                backend, chaos.fleet.backend(backend).ip, RENEWED
            ).cert_pem()
        ).public_bytes(Encoding.DER)
        chaos.wait_until(
            lambda backend=backend, renewed=renewed: (
                chaos.fleet.served_certificate(backend) == renewed
            ),
            5,
            f"{backend} presenting its renewed certificate to new connections",
        )
    before.wait_until(
        lambda: chaos.history.count_ok(chaos.history.busiest(warm), rotated) >= 100,
        10,
        "the first client still served on its old connections",
    )
    after = chaos.load(concurrency=8)
    chaos.warm_up(after)
    after.wait_for(300, timeout=10)
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=chaos.requirements.error_budget),
    )


@pytest.mark.needs("control")
@pytest.mark.detects(naive="errors", pick_first="errors", outlier="errors")
def test_rotation_to_a_bad_certificate_takes_the_backend_out_for_new_connections(chaos):
    """Property: when the busiest backend is rotated to an expired certificate under load,
    its open connections keep serving; once they are cut (as a network blip would do) the
    client cannot reconnect to it, so every later RPC is served by the others — and no RPC
    fails, including those in flight on the cut connections (its handlers are held for 1 s
    just before the cut, so some always are, none of them answered yet).

    Bound: 0 failed RPCs — the RPCs in flight on the cut connections have no answer yet
    (headers come with it), so a retry policy on UNAVAILABLE replays them elsewhere;
    failover within failover_ms (1000 ms) of the cut — the reconnect fails in its handshake within
    milliseconds on loopback; the margin is for a busy 2-core machine.
    """
    load = chaos.load(concurrency=16)
    warm = chaos.warm_up(load)
    load.wait_for(300, timeout=10)
    target = chaos.history.busiest(warm)
    rotation = chaos.nemesis.inject(Certificate(target, "expired"))
    load.wait_until(
        lambda: chaos.history.count_ok(target, rotation.start_ns) >= 20,
        10,
        f"{target} still serving on its open connections",
    )
    held = chaos.hold_rpcs_on(target, 1000, at_least=3)
    cut = chaos.nemesis.inject(CutConnections(target))
    chaos.nemesis.undo(held)
    load.wait_for(1000, timeout=20)
    need = chaos.requirements
    chaos.expect(
        checks.errors(chaos.history, start_ns=warm, budget=need.error_budget),
        answers=("retryPolicy",),
    )
    chaos.expect(
        checks.failover_time(
            chaos.history, backend=target, after_ns=cut.in_force_ns, bound_ms=need.failover_ms
        ),
        answers=("retryPolicy",),
    )
