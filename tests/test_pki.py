"""fleet.pki: files and modes, certificate contents, caching, and that each bad certificate
is rejected by a real gRPC client (and by Python's ssl module) for its own reason."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import stat
import time
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from fleet.pki import CLIENT_KINDS, FLEET_NAME, PKI, RENEWED, SERVER_KINDS, CertFiles
from fleet.protos import greeter_pb2, greeter_pb2_grpc
from tests.helpers import greeter_server, no_thread_leaks  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

# A handshake on loopback takes milliseconds; the deadline only bounds a hang on a busy machine.
RPC_DEADLINE_S = 10.0

# What gRPC (BoringSSL) says in the RpcError details for each bad server certificate.
GRPC_REASONS = {
    "expired": "CERTIFICATE_VERIFY_FAILED: certificate has expired",
    "not_yet_valid": "CERTIFICATE_VERIFY_FAILED: certificate is not yet valid",
    "other_ca": "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate",
    "wrong_name": "Hostname Verification Check failed",
    "self_signed": "CERTIFICATE_VERIFY_FAILED: self signed certificate",
}
# The X509_V_ERR_* code OpenSSL gives through Python's ssl module (stable across versions,
# unlike the message wording).
SSL_VERIFY_CODES = {
    "expired": 10,  # X509_V_ERR_CERT_HAS_EXPIRED
    "not_yet_valid": 9,  # X509_V_ERR_CERT_NOT_YET_VALID
    "other_ca": 20,  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    "wrong_name": 62,  # X509_V_ERR_HOSTNAME_MISMATCH
    "self_signed": 18,  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki") / "fleet")


def load(files: CertFiles) -> x509.Certificate:
    return x509.load_pem_x509_certificate(files.cert_pem())


def sans(cert: x509.Certificate) -> set[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in names}


def eku(cert: x509.Certificate) -> list:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def key_matches(files: CertFiles) -> bool:
    key = serialization.load_pem_private_key(files.key_pem(), password=None)
    spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(*spki) == load(files).public_key().public_bytes(*spki)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- files, contents, caching -----------------------------------------------------------


def test_directory_is_0700_and_every_private_key_is_0600(tmp_path):
    pki = PKI(tmp_path / "pki")
    for kind in SERVER_KINDS:
        pki.server_cert("b1", "127.0.0.11", kind)
    for kind in CLIENT_KINDS:
        pki.client_cert("c1", kind)
    keys = sorted((tmp_path / "pki").glob("*.key"))
    assert mode(tmp_path / "pki") == 0o700
    assert len(keys) == 2 + len(SERVER_KINDS) + len(CLIENT_KINDS)  # + the two CAs
    assert {key.name: mode(key) for key in keys} == {key.name: 0o600 for key in keys}
    assert not list((tmp_path / "pki").glob(".*.key.*")), "temporary files left behind"


def test_three_backend_fleet_pki_is_correct_and_timed(tmp_path):
    started = time.perf_counter()
    pki = PKI(tmp_path / "pki")
    servers = {f"b{i}": pki.server_cert(f"b{i}", f"127.0.0.{10 + i}") for i in (1, 2, 3)}
    client = pki.client_cert()
    elapsed = time.perf_counter() - started
    print(
        f"\nPKI for a 3-backend fleet (CA + 3 server certs + 1 client cert): {elapsed * 1000:.1f} ms"
    )

    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for i, (_backend_id, files) in enumerate(servers.items(), start=1):
        cert = load(files)
        cert.verify_directly_issued_by(ca)
        assert sans(cert) == {FLEET_NAME, "localhost", f"127.0.0.{10 + i}"}
        assert eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
        now = datetime.datetime.now(datetime.UTC)
        assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
        assert key_matches(files)
    load(client).verify_directly_issued_by(ca)
    assert key_matches(client)
    assert eku(load(client)) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_repeated_calls_reuse_the_files_on_disk(tmp_path):
    first = PKI(tmp_path / "pki")
    cert = first.server_cert("b1", "127.0.0.11")
    ca_pem, cert_pem = first.ca_cert.read_bytes(), cert.cert_pem()

    again = PKI(tmp_path / "pki")
    assert again.ca_cert.read_bytes() == ca_pem
    assert again.server_cert("b1", "127.0.0.11") == cert
    assert cert.cert_pem() == cert_pem
    assert again.server_cert("b1", "127.0.0.12").cert_pem() != cert_pem  # another ip, another cert


def test_concurrent_callers_get_one_consistent_set_of_files(tmp_path):
    def issue(_):
        pki = PKI(tmp_path / "pki")
        return pki.server_cert("b1", "127.0.0.11", "other_ca"), pki.client_cert("c1")

    with futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(issue, range(8)))
    assert len(set(results)) == 1
    for files in results[0]:
        assert key_matches(files)
    ca = x509.load_pem_x509_certificate((tmp_path / "pki" / "ca.pem").read_bytes())
    load(results[0][1]).verify_directly_issued_by(ca)


def test_a_new_ca_reissues_cached_certificates(tmp_path):
    pki = PKI(tmp_path / "pki")
    old = pki.server_cert("b1", "127.0.0.11").cert_pem()
    for name in ("ca.pem", "ca.key"):
        (tmp_path / "pki" / name).unlink()

    renewed = PKI(tmp_path / "pki")
    files = renewed.server_cert("b1", "127.0.0.11")
    assert files.cert_pem() != old
    load(files).verify_directly_issued_by(
        x509.load_pem_x509_certificate(renewed.ca_cert.read_bytes())
    )


def test_bad_kinds_are_bad_in_the_way_named(pki):
    now = datetime.datetime.now(datetime.UTC)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    cert = {kind: load(pki.server_cert("b1", "127.0.0.11", kind)) for kind in SERVER_KINDS}
    assert cert["expired"].not_valid_after_utc < now
    assert cert["not_yet_valid"].not_valid_before_utc > now
    assert sans(cert["wrong_name"]) == {"wrong.example.com"}
    assert cert["self_signed"].issuer == cert["self_signed"].subject
    with pytest.raises(ValueError):
        cert["other_ca"].verify_directly_issued_by(ca)
    with pytest.raises(ValueError):
        load(pki.client_cert(kind="other_ca")).verify_directly_issued_by(ca)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda pki: pki.server_cert("b1", "127.0.0.11", "revoked"), "valid kinds: good, expired"),
        (lambda pki: pki.client_cert("c", "expired"), "valid kinds: good, other_ca"),
        (lambda pki: pki.server_cert("b1", "127.0.0.256"), "not an IP address"),
        (lambda pki: pki.server_cert("../b1", "127.0.0.11"), "backend_id '../b1'"),
        (lambda pki: pki.client_cert("a/b"), "name 'a/b'"),
    ],
)
def test_bad_arguments_raise_clear_errors(pki, call, message):
    with pytest.raises(ValueError, match=message):
        call(pki)


# -- a real gRPC client against each server certificate ---------------------------------


def say_hello(pki: PKI, port: int, client: CertFiles | None = None):
    """One SayHello over TLS, trusting only the fleet CA and expecting the fleet name.

    Returns the reply, or the grpc.RpcError it failed with.
    """
    keypair = (
        {}
        if client is None
        else {"private_key": client.key_pem(), "certificate_chain": client.cert_pem()}
    )
    credentials = grpc.ssl_channel_credentials(pki.ca_cert.read_bytes(), **keypair)
    options = [("grpc.ssl_target_name_override", FLEET_NAME)]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        try:
            return greeter_pb2_grpc.GreeterStub(channel).SayHello(
                greeter_pb2.HelloRequest(name="pki"), timeout=RPC_DEADLINE_S
            )
        except grpc.RpcError as error:
            return error


def ssl_verify_error(pki: PKI, port: int) -> ssl.SSLCertVerificationError | None:
    """The verification error Python's ssl module (OpenSSL) reports for the server, if any."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=RPC_DEADLINE_S) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=FLEET_NAME):
                return None
        except ssl.SSLCertVerificationError as error:
            return error


def tls_server(files: CertFiles, client_ca: bytes | None = None):
    credentials = grpc.ssl_server_credentials(
        [(files.key_pem(), files.cert_pem())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
    return greeter_server(credentials)


def test_good_server_certificate_is_accepted(pki):
    with tls_server(pki.server_cert("b1", "127.0.0.1")) as port:
        reply = say_hello(pki, port)
        assert ssl_verify_error(pki, port) is None
    assert isinstance(reply, greeter_pb2.HelloReply), reply
    assert reply.message == "Hello pki"


def test_renewed_certificate_is_another_good_one(pki):
    """What a rotation installs: a new key and serial, the same names, issuer and validity
    rules as the good certificate, accepted by a real gRPC client."""
    good, renewed = pki.server_cert("b1", "127.0.0.1"), pki.server_cert("b1", "127.0.0.1", RENEWED)
    old, new = load(good), load(renewed)
    assert renewed.cert != good.cert and renewed.key != good.key
    assert new.serial_number != old.serial_number
    assert new.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != old.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert sans(new) == sans(old) == {FLEET_NAME, "localhost", "127.0.0.1"}
    assert eku(new) == [ExtendedKeyUsageOID.SERVER_AUTH]
    new.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()))
    assert key_matches(renewed)
    assert RENEWED not in SERVER_KINDS  # SERVER_KINDS other than "good" are the bad ones
    with tls_server(renewed) as port:
        reply = say_hello(pki, port)
        assert ssl_verify_error(pki, port) is None
    assert isinstance(reply, greeter_pb2.HelloReply), reply


@pytest.mark.parametrize("kind", [kind for kind in SERVER_KINDS if kind != "good"])
def test_bad_server_certificate_is_rejected_for_its_reason(pki, kind):
    with tls_server(pki.server_cert("b1", "127.0.0.1", kind)) as port:
        outcome = say_hello(pki, port)
        verify_error = ssl_verify_error(pki, port)

    assert isinstance(outcome, grpc.RpcError), f"{kind} certificate was accepted: {outcome}"
    assert outcome.code() == grpc.StatusCode.UNAVAILABLE, outcome.details()
    assert GRPC_REASONS[kind] in outcome.details()
    assert verify_error is not None, f"ssl accepted the {kind} certificate"
    assert verify_error.verify_code == SSL_VERIFY_CODES[kind], verify_error.verify_message


# -- mTLS -------------------------------------------------------------------------------

# The client only sees the connection closed ("Socket closed"); the reason is in the
# server's handshake log line, which gRPC writes to stderr at INFO level.
MTLS_SERVER_REASONS = {
    None: "PEER_DID_NOT_RETURN_A_CERTIFICATE",
    "other_ca": "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate",
}
GRPC_LOGS_INFO = os.environ.get("GRPC_VERBOSITY", "").upper() in ("", "DEBUG", "INFO")


@pytest.fixture
def mtls_port(pki):
    with tls_server(pki.server_cert("b1", "127.0.0.1"), client_ca=pki.ca_cert.read_bytes()) as port:
        yield port


def test_mtls_accepts_a_good_client_certificate(pki, mtls_port):
    reply = say_hello(pki, mtls_port, pki.client_cert())
    assert isinstance(reply, greeter_pb2.HelloReply), reply


@pytest.mark.parametrize("client_kind", [None, "other_ca"], ids=["no_cert", "other_ca"])
def test_mtls_refuses_a_bad_client(pki, mtls_port, client_kind, capfd):
    client = None if client_kind is None else pki.client_cert(kind=client_kind)
    outcome = say_hello(pki, mtls_port, client)

    assert isinstance(outcome, grpc.RpcError), f"client {client_kind} was accepted"
    assert outcome.code() == grpc.StatusCode.UNAVAILABLE, outcome.details()
    if GRPC_LOGS_INFO:
        assert MTLS_SERVER_REASONS[client_kind] in capfd.readouterr().err
