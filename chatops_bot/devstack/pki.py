"""A throwaway Teleport-shaped CA issuing the devstack's server certificate and tctl-shaped identities."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    SSHCertificateBuilder,
    SSHCertificateType,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chatops_bot.teleport.identity import Identity, StrPath

# Every certificate Teleport issues to an Auth server carries this name; clients verify it (wire notes §4.2).
SERVER_NAME = "teleport.cluster.local"

# Teleport backdates certificates a little so that a client whose clock is behind can still use them.
_CLOCK_SKEW = timedelta(minutes=1)
_CA_LIFETIME = timedelta(days=3650)
_SERVER_LIFETIME = timedelta(days=365)
_CA_KEY_FILE = "ca.key"
_CA_CERT_FILE = "ca.crt"
_SSH_CA_KEY_FILE = "ssh_ca.key"

_UserKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_UserPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class ClusterCA:
    """One EC P-256 X.509 CA (host and user CA in one) and one Ed25519 SSH CA for a named cluster."""

    def __init__(
        self, *, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, ssh_key: ed25519.Ed25519PrivateKey
    ) -> None:
        self._key = key
        self._cert = cert
        self._ssh_key = ssh_key

    @classmethod
    def generate(cls, cluster_name: str) -> ClusterCA:
        """A new CA whose certificate names the cluster in CN and O, as Teleport's CA certificates do."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_name),
                x509.NameAttribute(NameOID.COMMON_NAME, cluster_name),
            ]
        )
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert=cert, ssh_key=ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, directory: StrPath) -> ClusterCA:
        """Read a CA written by `save`."""
        folder = Path(directory)
        key = load_pem_private_key((folder / _CA_KEY_FILE).read_bytes(), password=None)
        ssh_key = load_pem_private_key((folder / _SSH_CA_KEY_FILE).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            ssh_key, ed25519.Ed25519PrivateKey
        ):
            raise TypeError(f"{folder}: the CA key files do not hold the expected key types")
        cert = x509.load_pem_x509_certificate((folder / _CA_CERT_FILE).read_bytes())
        return cls(key=key, cert=cert, ssh_key=ssh_key)

    @classmethod
    def load_or_generate(cls, directory: StrPath, cluster_name: str) -> ClusterCA:
        """Reuse the CA saved in `directory`, or create and save one: a restarted devstack keeps its trust."""
        if (Path(directory) / _CA_CERT_FILE).exists():
            return cls.load(directory)
        ca = cls.generate(cluster_name)
        ca.save(directory)
        return ca

    def save(self, directory: StrPath) -> None:
        """Write the CA as PEM files; both private keys get mode 0600."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        _write_file(folder / _CA_KEY_FILE, _private_pem(self._key))
        _write_file(folder / _SSH_CA_KEY_FILE, _private_pem(self._ssh_key))
        _write_file(folder / _CA_CERT_FILE, self.cert_pem, mode=0o644)

    @property
    def cluster_name(self) -> str:
        return str(self._cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, for `ssl_server_credentials(root_certificates=...)` and identity files."""
        return self._cert.public_bytes(Encoding.PEM)

    @property
    def ssh_ca_line(self) -> str:
        """The known_hosts line tctl writes for the SSH CA (Teleport's `sshutils.MarshalKnownHost`)."""
        public = self._ssh_key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
        return f"@cert-authority {self.cluster_name},*.{self.cluster_name} {public} type=host"

    def server_credentials(self) -> tuple[bytes, bytes]:
        """A fresh (key PEM, cert PEM) for the stand-in Auth server, valid for `teleport.cluster.local`."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
        names: list[x509.GeneralName] = [
            x509.DNSName(SERVER_NAME),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        now = datetime.now(UTC)
        cert = (
            self._leaf_builder(subject, key.public_key(), now - _CLOCK_SKEW, now + _SERVER_LIFETIME)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return _private_pem(key), cert.public_bytes(Encoding.PEM)

    def issue_identity(
        self,
        username: str,
        roles: Iterable[str],
        *,
        valid_for: timedelta = timedelta(hours=12),
        not_before: datetime | None = None,
        key_type: Literal["ecdsa", "rsa"] = "ecdsa",
    ) -> Identity:
        """A user identity as `tctl auth sign` issues it: CN = user, one O per role, plus a matching SSH cert.

        With `not_before` in the past and a short `valid_for`, the certificate is already expired (for tests).
        `key_type="rsa"` gives the PKCS#1 `RSA PRIVATE KEY` that Teleport's legacy key suite writes.
        """
        issued_at = not_before if not_before is not None else datetime.now(UTC)
        start = not_before if not_before is not None else issued_at - _CLOCK_SKEW
        end = issued_at + valid_for
        if end <= start:
            raise ValueError("valid_for must leave the certificate a positive validity period")
        key = _user_key(key_type)
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, username)]
            + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, role) for role in roles]
        )
        cert = (
            self._leaf_builder(subject, key.public_key(), start, end)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        ssh_cert = (
            SSHCertificateBuilder()
            .public_key(key.public_key())
            .serial(secrets.randbits(64))
            .type(SSHCertificateType.USER)
            .key_id(username.encode())
            .valid_principals([username.encode()])
            .valid_after(int(start.timestamp()))
            .valid_before(int(end.timestamp()))
            .add_extension(b"permit-pty", b"")
            .sign(self._ssh_key)
        )
        return Identity(
            private_key_pem=_private_pem(key),
            cert_pem=cert.public_bytes(Encoding.PEM),
            ca_pems=self.cert_pem,
            ssh_cert=ssh_cert.public_bytes().decode(),
            ssh_ca_lines=(self.ssh_ca_line,),
        )

    def _leaf_builder(
        self, subject: x509.Name, public_key: _UserPublicKey, start: datetime, end: datetime
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(min(end, self._cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )


def write_identity_file(identity: Identity, path: StrPath) -> None:
    """Write the `tctl auth sign --format=file` layout: key, SSH cert, TLS cert, SSH CA lines, CA certs."""
    parts = [identity.private_key_pem, identity.ssh_cert.encode(), identity.cert_pem]
    parts += [line.encode() for line in identity.ssh_ca_lines]
    parts.append(identity.ca_pems)
    _write_file(Path(path), b"".join(_with_newline(part) for part in parts if part))


def write_tls_files(identity: Identity, prefix: StrPath) -> tuple[Path, Path, Path]:
    """Write the `--format=tls` trio `<prefix>.key`, `<prefix>.crt`, `<prefix>.cas` and return their paths."""
    base = os.fspath(prefix)
    paths = (Path(base + ".key"), Path(base + ".crt"), Path(base + ".cas"))
    for target, content in zip(paths, (identity.private_key_pem, identity.cert_pem, identity.ca_pems)):
        _write_file(target, content)
    return paths


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _user_key(key_type: Literal["ecdsa", "rsa"]) -> _UserKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _private_pem(key: _UserKey | ed25519.Ed25519PrivateKey) -> bytes:
    # As Teleport's keys.MarshalPrivateKey: RSA as PKCS#1 ("RSA PRIVATE KEY"), EC/Ed25519 as PKCS#8.
    key_format = (
        PrivateFormat.TraditionalOpenSSL if isinstance(key, rsa.RSAPrivateKey) else PrivateFormat.PKCS8
    )
    return key.private_bytes(Encoding.PEM, key_format, NoEncryption())


def _with_newline(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def _write_file(path: Path, content: bytes, *, mode: int = 0o600) -> None:
    """Write a temporary file and rename it, so a reader polling for renewals never sees half a file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


__all__ = ["SERVER_NAME", "ClusterCA", "write_identity_file", "write_tls_files"]
