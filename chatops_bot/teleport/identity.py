"""Reads the bot's Teleport credentials from disk (identity file or key/cert/CAs) into a checked Identity."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import NameOID

StrPath = str | os.PathLike[str]
Fingerprint = tuple[tuple[int, int, int, int] | None, ...]

# An identity file is a few kilobytes; anything this large is the wrong file, so don't slurp it.
_MAX_FILE_BYTES = 1 << 20
_SSH_CERT_SUFFIX = "-cert-v01@openssh.com"
_FILE_ORDER = "expected tctl order: key, SSH cert, TLS cert, CA certs"


class IdentityError(ValueError):
    """A credential file is missing or malformed; the message names the file and problem, never key bytes."""

    def __init__(self, path: StrPath, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True, repr=False)
class Identity:
    """PEM credentials for mutual TLS with Teleport Auth, plus the SSH parts tctl writes alongside them."""

    private_key_pem: bytes
    cert_pem: bytes
    ca_pems: bytes
    ssh_cert: str = ""
    # `@cert-authority` known_hosts lines, kept so that writing a loaded identity reproduces the file.
    ssh_ca_lines: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Never let the private key reach a log line through repr().
        try:
            return f"Identity(username={self.username!r}, not_after={self.not_after.isoformat()})"
        except ValueError:
            return "Identity(<unparsable certificate>)"

    @cached_property
    def certificate(self) -> x509.Certificate:
        """The TLS client (leaf) certificate."""
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def username(self) -> str:
        """Teleport puts the user name in the Subject CommonName."""
        return _first_attribute(self.certificate.subject, NameOID.COMMON_NAME)

    @property
    def roles(self) -> tuple[str, ...]:
        """Teleport puts the user's roles in the Subject Organization attributes."""
        attributes = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return tuple(str(attribute.value) for attribute in attributes)

    @property
    def not_after(self) -> datetime:
        """When the TLS certificate expires (timezone-aware UTC)."""
        return self.certificate.not_valid_after_utc

    @property
    def cluster_name(self) -> str:
        """Best effort: Teleport's CA certificates carry the cluster name as CN and O; else empty."""
        issuer = self.certificate.issuer
        return _first_attribute(issuer, NameOID.COMMON_NAME) or _first_attribute(
            issuer, NameOID.ORGANIZATION_NAME
        )


def load_identity_file(path: StrPath) -> Identity:
    """Load an identity file written by `tctl auth sign --format=file` or Machine ID."""
    lines = _read_lines(path)
    blocks = _scan_pem_blocks(path, lines)
    key_block, cert_block, ca_blocks = _split_identity_blocks(path, blocks)
    ssh_lines = [(number, line) for number, line in lines if _is_ssh_cert_line(line)]
    if len(ssh_lines) > 1:
        numbers = ", ".join(str(number) for number, _ in ssh_lines)
        raise IdentityError(path, f"more than one SSH certificate line (lines {numbers})")
    identity = Identity(
        private_key_pem=key_block.pem,
        cert_pem=cert_block.pem,
        ca_pems=b"".join(block.pem for block in ca_blocks),
        ssh_cert=ssh_lines[0][1] if ssh_lines else "",
        ssh_ca_lines=tuple(line for _, line in lines if line.startswith("@cert-authority")),
    )
    _validate(key=(path, key_block), cert=(path, cert_block), cas=[(path, b) for b in ca_blocks])
    return identity


def load_tls_files(key_path: StrPath, cert_path: StrPath, cas_path: StrPath) -> Identity:
    """Load the three files of `tctl auth sign --format=tls` (`<out>.key`, `<out>.crt`, `<out>.cas`)."""
    # Like Go's tls.X509KeyPair, each file's wanted blocks are picked out and other blocks are skipped.
    key_blocks = [b for b in _scan_pem_blocks(key_path, _read_lines(key_path)) if b.is_private_key]
    cert_blocks = [b for b in _scan_pem_blocks(cert_path, _read_lines(cert_path)) if b.is_certificate]
    ca_blocks = [b for b in _scan_pem_blocks(cas_path, _read_lines(cas_path)) if b.is_certificate]
    if not key_blocks:
        raise IdentityError(key_path, "no private key PEM block (are the key and certificate files swapped?)")
    if len(key_blocks) > 1:
        raise IdentityError(key_path, "more than one private key PEM block")
    if not cert_blocks:
        raise IdentityError(cert_path, "no TLS certificate PEM block")
    if not ca_blocks:
        raise IdentityError(cas_path, "no CA certificate PEM block")
    identity = Identity(
        private_key_pem=key_blocks[0].pem,
        cert_pem=b"".join(block.pem for block in cert_blocks),
        ca_pems=b"".join(block.pem for block in ca_blocks),
    )
    cas = [(cas_path, block) for block in ca_blocks]
    _validate(key=(key_path, key_blocks[0]), cert=(cert_path, cert_blocks[0]), cas=cas)
    return identity


def identity_fingerprint(*paths: StrPath) -> Fingerprint:
    """A cheap stat token per file (device, inode, size, mtime) that changes when Machine ID renews it.

    A missing file gives None, so a caller polling across a renewal sees a change rather than an exception.
    """
    marks: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            marks.append(None)
            continue
        marks.append((stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(marks)


@dataclass(frozen=True)
class _PemBlock:
    label: str
    pem: bytes
    line: int

    @property
    def is_private_key(self) -> bool:
        return self.label.endswith("PRIVATE KEY")

    @property
    def is_certificate(self) -> bool:
        return self.label == "CERTIFICATE"

    def describe(self) -> str:
        if self.is_private_key:
            return f"private key (line {self.line})"
        if self.is_certificate:
            return f"certificate (line {self.line})"
        printable = "".join(ch for ch in self.label[:40] if ch.isprintable())
        return f"{printable!r} PEM block (line {self.line})"


def _first_attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attributes = name.get_attributes_for_oid(oid)
    return str(attributes[0].value) if attributes else ""


def _is_ssh_cert_line(line: str) -> bool:
    return line.split(" ", 1)[0].endswith(_SSH_CERT_SUFFIX)


def _read_lines(path: StrPath) -> list[tuple[int, str]]:
    """Numbered, stripped, non-blank lines; CRLF and a UTF-8 byte-order mark are tolerated."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise IdentityError(path, "file does not exist") from None
    except IsADirectoryError:
        raise IdentityError(path, "is a directory, not a file") from None
    except PermissionError:
        raise IdentityError(path, "permission denied reading the file") from None
    except OSError as error:
        raise IdentityError(path, f"cannot read the file ({error.strerror})") from None
    if len(data) > _MAX_FILE_BYTES:
        raise IdentityError(path, "file is larger than 1 MiB, too large to be a credential file")
    if not data.strip():
        raise IdentityError(path, "file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IdentityError(path, "file is not text; expected PEM blocks") from None
    numbered = ((number, line.strip()) for number, line in enumerate(text.splitlines(), start=1))
    return [(number, line) for number, line in numbered if line]


def _scan_pem_blocks(path: StrPath, lines: list[tuple[int, str]]) -> list[_PemBlock]:
    """Cut the PEM blocks out of a file; lines outside blocks are skipped, as Teleport's own parser does."""
    blocks: list[_PemBlock] = []
    current: _PemBlock | None = None
    body: list[str] = []
    for number, line in lines:
        if current is None:
            if line.startswith("-----BEGIN "):
                label = line.removeprefix("-----BEGIN ").rstrip("-").strip()
                current, body = _PemBlock(label, b"", number), [line]
            continue
        if line.startswith("-----BEGIN"):
            raise IdentityError(path, f"the {current.describe()} has no END line before the next BEGIN")
        body.append(line)
        if line.startswith("-----END"):
            if line.rstrip("-").strip() != f"-----END {current.label}":
                raise IdentityError(path, f"the {current.describe()} ends with a mismatched END line")
            blocks.append(_PemBlock(current.label, ("\n".join(body) + "\n").encode(), current.line))
            current = None
    if current is not None:
        raise IdentityError(path, f"the {current.describe()} has no END line (file truncated?)")
    return blocks


def _split_identity_blocks(
    path: StrPath, blocks: list[_PemBlock]
) -> tuple[_PemBlock, _PemBlock, list[_PemBlock]]:
    """Apply the positional rules of the identity file: key first, then the TLS cert, then CA certs."""
    keys = [block for block in blocks if block.is_private_key]
    if not keys:
        raise IdentityError(path, "no private key PEM block")
    if blocks[0] is not keys[0]:
        raise IdentityError(
            path, f"wrong order: {blocks[0].describe()} comes before the private key; {_FILE_ORDER}"
        )
    if len(keys) > 1:
        raise IdentityError(
            path, f"a second {keys[1].describe()} was found; are two identity files concatenated?"
        )
    for block in blocks[1:]:
        if not block.is_certificate:
            raise IdentityError(path, f"unexpected {block.describe()}; only certificates follow the key")
    if len(blocks) < 2:
        raise IdentityError(path, "no TLS certificate after the private key")
    if len(blocks) < 3:
        raise IdentityError(path, "no CA certificate after the TLS certificate")
    return blocks[0], blocks[1], blocks[2:]


def _validate(
    *,
    key: tuple[StrPath, _PemBlock],
    cert: tuple[StrPath, _PemBlock],
    cas: list[tuple[StrPath, _PemBlock]],
) -> None:
    """Load every block with `cryptography` and check that the key belongs to the TLS certificate."""
    key_path, key_block = key
    if key_block.label.startswith("ENCRYPTED") or b"Proc-Type: 4,ENCRYPTED" in key_block.pem:
        raise IdentityError(
            key_path, f"the {key_block.describe()} is encrypted; an unencrypted key is needed"
        )
    try:
        private_key = load_pem_private_key(key_block.pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise IdentityError(key_path, f"the {key_block.describe()} does not parse") from None
    leaf = _load_certificate(*cert, role="TLS certificate")
    ca_certificates = [_load_certificate(path, block, role="CA certificate") for path, block in cas]
    key_public = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if _public_bytes(leaf) == key_public:
        return
    cert_path, cert_block = cert
    for (path, block), ca_certificate in zip(cas, ca_certificates):
        if _public_bytes(ca_certificate) == key_public:
            belongs = f"the private key belongs to the certificate on line {block.line}"
            if os.fspath(path) != os.fspath(cert_path):
                raise IdentityError(path, f"{belongs}; are the certificate and CA files swapped?")
            raise IdentityError(path, f"wrong order: {belongs}, not line {cert_block.line}; {_FILE_ORDER}")
    raise IdentityError(cert_path, f"the private key does not match the TLS {cert_block.describe()}")


def _load_certificate(path: StrPath, block: _PemBlock, *, role: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(block.pem)
    except ValueError:
        raise IdentityError(path, f"the {role} (line {block.line}) does not parse") from None


def _public_bytes(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


__all__ = [
    "Fingerprint",
    "Identity",
    "IdentityError",
    "StrPath",
    "identity_fingerprint",
    "load_identity_file",
    "load_tls_files",
]
