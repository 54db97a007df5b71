"""A throwaway PKI for the fleet: one CA, good and deliberately bad certificates.

Everything is EC P-256 so a whole fleet's PKI is made in milliseconds. Files live in
one directory (mode 0700, private keys 0600) and are reused across runs::

    <dir>/ca.pem, ca.key                     the fleet CA that clients trust
    <dir>/other-ca.pem, other-ca.key         a second CA nobody trusts (for other_ca)
    <dir>/server-<id>-<ip>-<kind>.pem/.key   one per (backend id, ip, kind)
    <dir>/client-<name>-<kind>.pem/.key      one per (client name, kind)

The bad server kinds each break exactly one thing a TLS client checks:

    expired        notAfter is in the past
    not_yet_valid  notBefore is in the future
    other_ca       signed by the other CA (the chain has only the leaf)
    wrong_name     the only SAN is wrong.example.com (no IP, no localhost)
    self_signed    the leaf signs itself

And one more good kind, for certificate rotation (kept out of SERVER_KINDS, whose kinds
other than "good" are all bad):

    renewed        a fresh key and serial, signed by the fleet CA, the same names and
                   validity as good: what a rotation to a new valid certificate installs

Limits: certificates are for tests only (no revocation, no intermediates). Files are
created under an exclusive lock, so processes and threads may share one directory.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import pathlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["FLEET_NAME", "SERVER_KINDS", "RENEWED", "CLIENT_KINDS", "CertFiles", "PKI"]

FLEET_NAME = "greeter.example.com"
SERVER_KINDS = ("good", "expired", "not_yet_valid", "other_ca", "wrong_name", "self_signed")
# A second good server certificate (another key and serial) to rotate to.
RENEWED = "renewed"
_ISSUABLE_SERVER_KINDS = SERVER_KINDS + (RENEWED,)
CLIENT_KINDS = ("good", "other_ca")
WRONG_NAME = "wrong.example.com"

_DAY = datetime.timedelta(days=1)
# notBefore is backdated by an hour so small clock differences never make a good
# certificate "not yet valid".
_BACKDATE = datetime.timedelta(hours=1)
_CA_LIFETIME = 3650 * _DAY
_LEAF_LIFETIME = 90 * _DAY
# A cached certificate is remade when it is within this margin of no longer being the
# kind it was made as (a good one about to expire, a not-yet-valid one about to start),
# so a PKI directory kept for months still behaves as named.
_FRESHNESS_MARGIN = 7 * _DAY
# Backend ids and client names become file names.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class CertFiles:
    """A certificate (PEM, leaf only) and its private key (PEM PKCS#8, mode 0600)."""

    cert: pathlib.Path
    key: pathlib.Path

    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    def key_pem(self) -> bytes:
        return self.key.read_bytes()


@dataclass(frozen=True)
class _Signer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


class PKI:
    """The fleet's CA and the certificates it issues, cached on disk.

    ``PKI(dir)`` creates ``dir`` (0700) and the CA if absent and reuses them if present.
    Issuing is cheap after the first call for the same arguments: the cached files are
    returned as long as they are still signed by the current CA and still of their kind.
    """

    def __init__(self, directory: pathlib.Path, name: str = FLEET_NAME):
        self.directory = pathlib.Path(directory)
        self.name = name
        self.ca_cert = self.directory / "ca.pem"
        self._make_directory()
        self._ca = self._load_or_make_ca("ca", "grpc-chaos fleet CA")
        self._other_ca: _Signer | None = None  # made on first use: most fleets never need it

    def server_cert(self, backend_id: str, ip: str, kind: str = "good") -> CertFiles:
        """The server certificate of one backend, of the given kind (see SERVER_KINDS,
        and RENEWED: a second good one with its own key and serial).

        A good one names the fleet DNS name, ``localhost`` and ``ip`` and carries the
        serverAuth EKU.
        """
        _check_kind(kind, _ISSUABLE_SERVER_KINDS, "server")
        _check_safe_name(backend_id, "backend_id")
        ip = str(_parse_ip(ip))
        stem = f"server-{backend_id}-{ip.replace(':', '_')}-{kind}"
        return self._cached(
            stem, kind, lambda signer: self._issue_server(backend_id, ip, kind, signer)
        )

    def client_cert(self, name: str = "client", kind: str = "good") -> CertFiles:
        """A client certificate for mTLS (clientAuth EKU); other_ca = signed by the other CA."""
        _check_kind(kind, CLIENT_KINDS, "client")
        _check_safe_name(name, "name")
        stem = f"client-{name}-{kind}"
        return self._cached(stem, kind, lambda signer: self._issue_client(name, kind, signer))

    # -- issuing ----------------------------------------------------------------------

    def _issue_server(self, backend_id: str, ip: str, kind: str, signer: _Signer | None):
        sans: list[x509.GeneralName]
        if kind == "wrong_name":
            sans = [x509.DNSName(WRONG_NAME)]
            common_name = WRONG_NAME
        else:
            sans = [
                x509.DNSName(self.name),
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address(ip)),
            ]
            common_name = self.name
        subject = _name(common_name, f"backend {backend_id}")
        return _issue_leaf(subject, sans, ExtendedKeyUsageOID.SERVER_AUTH, signer, *_validity(kind))

    def _issue_client(self, name: str, kind: str, signer: _Signer | None):
        subject = _name(name, "grpc-chaos client")
        return _issue_leaf(
            subject, [x509.DNSName(name)], ExtendedKeyUsageOID.CLIENT_AUTH, signer, *_validity(kind)
        )

    def _signer_for(self, kind: str) -> _Signer | None:
        """The CA that signs a certificate of this kind; None means self-signed."""
        if kind == "self_signed":
            return None
        if kind == "other_ca":
            return self._other()
        return self._ca

    def _other(self) -> _Signer:
        if self._other_ca is None:
            self._other_ca = self._load_or_make_ca("other-ca", "grpc-chaos OTHER CA (untrusted)")
        return self._other_ca

    # -- the cache on disk ------------------------------------------------------------

    def _cached(self, stem: str, kind: str, issue) -> CertFiles:
        """The files named ``stem``, (re)made by ``issue(signer)`` unless still usable."""
        files = CertFiles(self.directory / f"{stem}.pem", self.directory / f"{stem}.key")
        signer = self._signer_for(kind)  # before locking: it may make the other CA, which locks
        with self._lock():
            if not _is_usable(files, kind, signer):
                cert, key = issue(signer)
                _write_key(files.key, key)
                _write_atomic(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return files

    def _load_or_make_ca(self, stem: str, common_name: str) -> _Signer:
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        with self._lock():
            try:
                existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
                existing_key = serialization.load_pem_private_key(key_path.read_bytes(), None)
                if not isinstance(existing_key, ec.EllipticCurvePrivateKey):  # not made here
                    raise ValueError(f"the key is a {type(existing_key).__name__}, not EC")
                return _Signer(existing, existing_key)
            except FileNotFoundError:
                pass  # first use of this directory (or half made): make a new CA
            except ValueError as error:
                raise ValueError(
                    f"{cert_path} or {key_path} is not a valid PEM certificate/key "
                    f"({error}); delete {self.directory} to start a new PKI"
                ) from None
            cert, key = _make_ca(common_name)
            _write_key(key_path, key)
            _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
            return _Signer(cert, key)

    def _make_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            if not self.directory.is_dir():
                raise NotADirectoryError(
                    f"PKI directory {self.directory} exists and is not a directory"
                ) from None
            return
        os.chmod(self.directory, 0o700)  # mkdir's mode is filtered by the umask

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # flock locks an open file description, so this serializes threads of this
        # process as well as other processes sharing the directory.
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# -- certificates ---------------------------------------------------------------------


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "grpc-chaos"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _validity(kind: str) -> tuple[datetime.datetime, datetime.datetime]:
    """(notBefore, notAfter) for a leaf of this kind, far enough from now that no clock
    skew or slow test run changes the verdict."""
    now = _now()
    if kind == "expired":
        return now - 30 * _DAY, now - _DAY
    if kind == "not_yet_valid":
        return now + 30 * _DAY, now + 30 * _DAY + _LEAF_LIFETIME
    return now - _BACKDATE, now + _LEAF_LIFETIME


def _is_usable(files: CertFiles, kind: str, signer: _Signer | None) -> bool:
    """Whether cached files exist, are still signed by ``signer`` and still of their kind."""
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except (OSError, ValueError):
        return False
    if not files.key.exists():  # the key is written first, so only a deleted key lands here
        return False
    try:
        cert.verify_directly_issued_by(cert if signer is None else signer.cert)
    except (InvalidSignature, ValueError, TypeError):  # e.g. the CA was remade since
        return False
    return _still_of_kind(cert, kind)


def _still_of_kind(cert: x509.Certificate, kind: str) -> bool:
    now = _now()
    if kind == "expired":
        return cert.not_valid_after_utc < now
    if kind == "not_yet_valid":
        return cert.not_valid_before_utc > now + _FRESHNESS_MARGIN
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc > now + _FRESHNESS_MARGIN


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _make_ca(common_name: str):
    key = _new_key()
    subject = _name(common_name, "certificate authority")
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(handshakes=False, certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256()), key


def _issue_leaf(subject, sans, eku, signer: _Signer | None, not_before, not_after):
    """A leaf certificate signed by ``signer`` (or by itself when signer is None)."""
    key = _new_key()
    issuer_name = subject if signer is None else signer.cert.subject
    signing_key = key if signer is None else signer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # A self-signed leaf must be allowed to sign certificates (itself): without
        # keyCertSign BoringSSL does not see it as self-signed and reports "unable to
        # get local issuer certificate" instead of "self signed certificate".
        .add_extension(_key_usage(handshakes=True, certificates=signer is None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if signer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key()),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256()), key


def _key_usage(handshakes: bool, certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=handshakes,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


# -- files ----------------------------------------------------------------------------


def _write_key(path: pathlib.Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomic(path, pem, 0o600)


def _write_atomic(path: pathlib.Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file.

    mkstemp creates the file 0600, so a key is never readable by others, not even
    for a moment.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


# -- argument checks ------------------------------------------------------------------


def _check_kind(kind: str, valid: tuple[str, ...], what: str) -> None:
    if kind not in valid:
        raise ValueError(
            f"unknown {what} certificate kind {kind!r}; valid kinds: {', '.join(valid)}"
        )


def _check_safe_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be 1-64 characters of letters, digits, '_', '.', '-' "
            "(it becomes part of a file name)"
        )


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        raise ValueError(
            f"ip {ip!r} is not an IP address (the certificate names it as a SAN)"
        ) from None
