"""Loading the bot's identity from tctl-shaped files, and using it for a real mutual-TLS handshake."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import grpc
import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from chatops_bot.devstack.pki import SERVER_NAME, ClusterCA, write_identity_file, write_tls_files
from chatops_bot.teleport.identity import (
    Identity,
    IdentityError,
    identity_fingerprint,
    load_identity_file,
    load_tls_files,
)

CLUSTER = "devstack.example"


@pytest.fixture(scope="module")
def ca() -> ClusterCA:
    return ClusterCA.generate(CLUSTER)


@pytest.fixture(scope="module")
def identity(ca: ClusterCA) -> Identity:
    return ca.issue_identity("access-bot", ["access-plugin", "reviewer"])


@pytest.fixture
def identity_path(tmp_path: Path, identity: Identity) -> Path:
    path = tmp_path / "identity"
    write_identity_file(identity, path)
    return path


def _pem_blocks(text: str) -> list[str]:
    """The PEM blocks of a file, in order, each with its BEGIN and END lines."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("-----BEGIN") or current:
            current.append(line)
        if line.startswith("-----END"):
            blocks.append("".join(current))
            current = []
    return blocks


def _assert_safe_message(error: IdentityError, path: Path, *phrases: str) -> None:
    """The message names the file and the problem, and carries no key material."""
    message = str(error)
    assert str(path) in message
    for phrase in phrases:
        assert phrase in message, message
    assert "PRIVATE KEY" not in message
    assert not re.search(r"[A-Za-z0-9+/=]{40,}", message), "looks like PEM body text"
    assert "\n" not in message
    assert len(message) < 300


# --- round trips -------------------------------------------------------------------------------


def test_identity_file_round_trip(identity_path: Path, identity: Identity) -> None:
    loaded = load_identity_file(identity_path)

    assert loaded == identity
    assert loaded.username == "access-bot"
    assert loaded.roles == ("access-plugin", "reviewer")
    assert loaded.cluster_name == CLUSTER
    assert loaded.not_after == identity.certificate.not_valid_after_utc
    assert timedelta(hours=11) < loaded.not_after - datetime.now(UTC) <= timedelta(hours=12)
    assert loaded.ssh_cert.startswith("ecdsa-sha2-nistp256-cert-v01@openssh.com ")
    assert loaded.ssh_ca_lines[0].startswith(f"@cert-authority {CLUSTER},*.{CLUSTER} ssh-ed25519 ")
    assert stat.S_IMODE(os.stat(identity_path).st_mode) == 0o600


def test_identity_file_is_in_tctl_order(identity_path: Path) -> None:
    firsts = [
        line.split(" ")[0]
        for line in identity_path.read_text().splitlines()
        if not line.startswith("-----END")
    ]
    markers = [first for first in firsts if first.startswith(("-----BEGIN", "@", "ecdsa"))]

    assert markers == [
        "-----BEGIN",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "-----BEGIN",
        "@cert-authority",
        "-----BEGIN",
    ]
    assert identity_path.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")


@pytest.mark.parametrize(
    ("key_type", "key_format", "label", "ssh_type"),
    [
        ("rsa", PrivateFormat.TraditionalOpenSSL, "RSA PRIVATE KEY", "ssh-rsa-cert-v01@openssh.com"),
        (
            "ecdsa",
            PrivateFormat.TraditionalOpenSSL,
            "EC PRIVATE KEY",
            "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        ),
        ("ecdsa", PrivateFormat.PKCS8, "PRIVATE KEY", "ecdsa-sha2-nistp256-cert-v01@openssh.com"),
    ],
)
def test_every_key_encoding_teleport_writes_loads(
    tmp_path: Path,
    ca: ClusterCA,
    key_type: Literal["ecdsa", "rsa"],
    key_format: PrivateFormat,
    label: str,
    ssh_type: str,
) -> None:
    issued = ca.issue_identity("bot", ["r"], key_type=key_type)
    key = load_pem_private_key(issued.private_key_pem, password=None)
    reencoded = key.private_bytes(Encoding.PEM, key_format, NoEncryption())
    write_identity_file(dataclasses.replace(issued, private_key_pem=reencoded), tmp_path / "identity")

    loaded = load_identity_file(tmp_path / "identity")

    assert loaded.private_key_pem.startswith(f"-----BEGIN {label}-----\n".encode())
    assert loaded.ssh_cert.split(" ")[0] == ssh_type
    assert loaded.username == "bot"


def test_tls_files_round_trip(tmp_path: Path, identity: Identity) -> None:
    key_path, cert_path, cas_path = write_tls_files(identity, tmp_path / "bot")

    loaded = load_tls_files(key_path, cert_path, cas_path)

    assert [p.name for p in (key_path, cert_path, cas_path)] == ["bot.key", "bot.crt", "bot.cas"]
    assert (loaded.private_key_pem, loaded.cert_pem, loaded.ca_pems) == (
        identity.private_key_pem,
        identity.cert_pem,
        identity.ca_pems,
    )
    assert loaded.username == "access-bot"
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600


def test_crlf_and_blank_lines_are_tolerated(identity_path: Path, identity: Identity) -> None:
    text = identity_path.read_text().replace("-----\n", "-----\n\n   \n")
    identity_path.write_bytes(("\ufeff" + text).replace("\n", "\r\n").encode())

    loaded = load_identity_file(identity_path)

    assert loaded.cert_pem == identity.cert_pem
    assert loaded.username == "access-bot"


def test_expired_identity_can_be_issued(ca: ClusterCA) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    expired = ca.issue_identity(
        "old", ["r"], not_before=an_hour_ago - timedelta(hours=1), valid_for=timedelta(hours=1)
    )
    assert expired.not_after <= an_hour_ago + timedelta(seconds=1)


def test_repr_shows_no_key_material(identity: Identity) -> None:
    assert "PRIVATE" not in repr(identity)
    assert "access-bot" in repr(identity)


def test_saved_ca_is_the_same_ca_after_restart(tmp_path: Path, ca: ClusterCA) -> None:
    ca.save(tmp_path / "ca")
    reloaded = ClusterCA.load_or_generate(tmp_path / "ca", "ignored-because-saved")

    assert reloaded.cert_pem == ca.cert_pem
    assert reloaded.ssh_ca_line == ca.ssh_ca_line
    assert reloaded.issue_identity("u", ["r"]).cluster_name == CLUSTER
    assert stat.S_IMODE(os.stat(tmp_path / "ca" / "ca.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "ca" / "ssh_ca.key").st_mode) == 0o600


def test_fingerprint_changes_when_the_file_is_renewed(identity_path: Path, ca: ClusterCA) -> None:
    before = identity_fingerprint(identity_path)
    assert identity_fingerprint(identity_path) == before

    write_identity_file(ca.issue_identity("access-bot", ["access-plugin"]), identity_path)

    assert identity_fingerprint(identity_path) != before
    assert identity_fingerprint(identity_path.with_name("absent")) == (None,)


# --- what a malformed file tells the operator ---------------------------------------------------


def _drop_blocks(*indexes: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        for index in sorted(indexes, reverse=True):
            text = text.replace(_pem_blocks(text)[index], "")
        return text

    return edit


def _swap_key_and_cert(text: str) -> str:
    key, cert = _pem_blocks(text)[:2]
    return text.replace(key, "\0").replace(cert, key).replace("\0", cert)


def _cut_inside_cert(text: str) -> str:
    cert = _pem_blocks(text)[1]
    return text[: text.index(cert) + len(cert) // 2]


def _corrupt_cert_body(text: str) -> str:
    cert = _pem_blocks(text)[1]
    lines = cert.splitlines(keepends=True)
    return text.replace(cert, lines[0] + "AAAA" + lines[1][4:] + "".join(lines[2:]))


def _encrypt_label(text: str) -> str:
    return text.replace("BEGIN PRIVATE KEY", "BEGIN ENCRYPTED PRIVATE KEY").replace(
        "END PRIVATE KEY", "END ENCRYPTED PRIVATE KEY"
    )


def _repeat_ssh_cert(text: str) -> str:
    return text + text[text.index("ecdsa-sha2") :].splitlines()[0] + "\n"


@pytest.mark.parametrize(
    ("edit", "phrases"),
    [
        pytest.param(lambda text: "", ["file is empty"], id="empty"),
        pytest.param(lambda text: " \r\n\n", ["file is empty"], id="whitespace"),
        pytest.param(_drop_blocks(0), ["no private key"], id="no-key"),
        pytest.param(_drop_blocks(1, 2), ["no TLS certificate"], id="no-tls-cert"),
        pytest.param(_drop_blocks(2), ["no CA certificate"], id="no-ca"),
        pytest.param(_cut_inside_cert, ["certificate (line", "no END line", "truncated"], id="truncated"),
        pytest.param(_swap_key_and_cert, ["wrong order", "certificate (line 1)"], id="wrong-order"),
        pytest.param(lambda text: text + _pem_blocks(text)[0], ["second private key"], id="two-keys"),
        pytest.param(_corrupt_cert_body, ["TLS certificate", "does not parse"], id="garbled-pem"),
        pytest.param(_encrypt_label, ["encrypted"], id="encrypted-key"),
        pytest.param(
            lambda text: text.replace("-----END CERTIFICATE-----", "-----END X509 CRL-----", 1),
            ["mismatched END"],
            id="mismatched-end",
        ),
        pytest.param(_repeat_ssh_cert, ["more than one SSH certificate"], id="two-ssh-certs"),
    ],
)
def test_malformed_identity_file(identity_path: Path, edit: Callable[[str], str], phrases: list[str]) -> None:
    identity_path.write_text(edit(identity_path.read_text()))

    with pytest.raises(IdentityError) as caught:
        load_identity_file(identity_path)

    _assert_safe_message(caught.value, identity_path, *phrases)
    # No chained exception: a traceback would print the library's own message after ours.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_missing_identity_file(tmp_path: Path) -> None:
    with pytest.raises(IdentityError) as caught:
        load_identity_file(tmp_path / "nope")
    _assert_safe_message(caught.value, tmp_path / "nope", "does not exist")


def test_key_from_another_identity_does_not_match(identity_path: Path, ca: ClusterCA) -> None:
    other_key = ca.issue_identity("someone-else", ["r"]).private_key_pem.decode()
    text = identity_path.read_text()
    identity_path.write_text(text.replace(_pem_blocks(text)[0], other_key))

    with pytest.raises(IdentityError) as caught:
        load_identity_file(identity_path)

    _assert_safe_message(caught.value, identity_path, "private key does not match the TLS certificate")


def test_tls_cert_and_ca_swapped_is_reported_as_wrong_order(identity_path: Path) -> None:
    text = identity_path.read_text()
    cert, ca_cert = _pem_blocks(text)[1:3]
    identity_path.write_text(text.replace(cert, "\0").replace(ca_cert, cert).replace("\0", ca_cert))

    with pytest.raises(IdentityError) as caught:
        load_identity_file(identity_path)

    _assert_safe_message(caught.value, identity_path, "wrong order")


def test_swapped_tls_files_name_the_key_file(tmp_path: Path, identity: Identity) -> None:
    key_path, cert_path, cas_path = write_tls_files(identity, tmp_path / "bot")

    with pytest.raises(IdentityError) as caught:
        load_tls_files(cert_path, key_path, cas_path)

    _assert_safe_message(caught.value, cert_path, "no private key", "swapped")


def test_empty_cas_file_is_named(tmp_path: Path, identity: Identity) -> None:
    key_path, cert_path, cas_path = write_tls_files(identity, tmp_path / "bot")
    cas_path.write_text("")

    with pytest.raises(IdentityError) as caught:
        load_tls_files(key_path, cert_path, cas_path)

    _assert_safe_message(caught.value, cas_path, "file is empty")


# --- the identity in a real mutual-TLS handshake ------------------------------------------------


@pytest.fixture
async def auth_server(ca: ClusterCA) -> AsyncIterator[tuple[int, list[dict[str, list[bytes]]]]]:
    """A one-method gRPC server that requires a client certificate from `ca` and records each caller."""
    seen: list[dict[str, list[bytes]]] = []

    async def who_am_i(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        auth = {name: list(values) for name, values in context.auth_context().items()}
        seen.append(auth)
        return auth["x509_common_name"][0]

    handler = grpc.method_handlers_generic_handler(
        "devstack.Test", {"WhoAmI": grpc.unary_unary_rpc_method_handler(who_am_i)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    key_pem, cert_pem = ca.server_credentials()
    credentials = grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca.cert_pem, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    yield port, seen
    await server.stop(None)


async def _who_am_i(port: int, identity: Identity, *, trust: bytes | None = None) -> bytes:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=trust or identity.ca_pems,
        private_key=identity.private_key_pem,
        certificate_chain=identity.cert_pem,
    )
    options = [("grpc.ssl_target_name_override", SERVER_NAME)]
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/devstack.Test/WhoAmI")
        return await call(b"", timeout=10)


async def test_server_sees_the_username_from_the_loaded_identity(
    auth_server: tuple[int, list[dict[str, list[bytes]]]], identity_path: Path
) -> None:
    port, seen = auth_server
    identity = load_identity_file(identity_path)

    assert await _who_am_i(port, identity) == b"access-bot"
    # Values are lists of bytes; the subject string is RFC 2253 (reversed), so roles come from the PEM cert.
    assert seen[0]["x509_subject"] == [b"O=reviewer,O=access-plugin,CN=access-bot"]
    assert Identity(b"", seen[0]["x509_pem_cert"][0], b"").roles == ("access-plugin", "reviewer")


@pytest.mark.parametrize("problem", ["client cert from another CA", "server not trusted", "expired"])
async def test_handshake_fails_without_a_valid_identity(
    auth_server: tuple[int, list[dict[str, list[bytes]]]], ca: ClusterCA, problem: str
) -> None:
    port, seen = auth_server
    stranger = ClusterCA.generate("elsewhere")
    if problem == "client cert from another CA":
        identity, trust = stranger.issue_identity("mallory", ["editor"]), ca.cert_pem
    elif problem == "server not trusted":
        identity, trust = ca.issue_identity("access-bot", ["r"]), stranger.cert_pem
    else:
        two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
        identity = ca.issue_identity(
            "access-bot", ["r"], not_before=two_hours_ago, valid_for=timedelta(hours=1)
        )
        trust = ca.cert_pem

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _who_am_i(port, identity, trust=trust)

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert seen == []
