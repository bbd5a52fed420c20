"""Reaching Auth through the Proxy's TLS routing: the forwarder, route detection and the devstack Proxy.

Real sockets on loopback and real gRPC over mutual TLS: grpc talks to the loopback forwarder, which
opens TLS through the devstack Proxy to the devstack Auth, as it would through `tenant.teleport.sh:443`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.proxy import NotTLS, cluster_from_alpn, parse_client_hello, read_client_hello
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport import routing
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from chatops_bot.teleport.gen import authservice_pb2, authservice_pb2_grpc, types_pb2
from chatops_bot.teleport.identity import Identity
from chatops_bot.teleport.routing import Forwarder, Route, auth_alpn, client_context, detect_route
from commands.errors import Unavailable

DEVSTACK_ALPN = "teleport-auth@646576737461636b2e6578616d706c652e636f6d.teleport.cluster.local"
STEP = 5.0  # an upper bound on any one await below; nothing here comes close, even on a loaded machine


@pytest.fixture
async def proxy(teleport: DevTeleport) -> AsyncIterator[str]:
    addr = await teleport.start_proxy("127.0.0.1:0")
    yield addr
    await teleport.stop_proxy()


@pytest.fixture
def bot_identity(teleport: DevTeleport) -> Identity:
    return teleport.identity("chatops-bot")


@pytest.fixture
async def forwarder(proxy: str, bot_identity: Identity) -> AsyncIterator[Forwarder]:
    forwarder = Forwarder(proxy, bot_identity, connect_timeout=STEP)
    await forwarder.start()
    yield forwarder
    await forwarder.close()


def client_at(addr: str, identity: Identity, path: Path) -> TeleportClient:
    write_identity_file(identity, path)
    return TeleportClient(addr, IdentitySource(identity_file=str(path)), timeout=STEP)


@pytest.fixture
async def proxied_bot(proxy: str, bot_identity: Identity, tmp_path: Path) -> AsyncIterator[TeleportClient]:
    client = client_at(proxy, bot_identity, tmp_path / "bot.pem")
    yield client
    await client.close()


def client_hello(alpn: list[str], server_name: str = routing.SERVER_NAME) -> bytes:
    """The bytes Python's TLS stack sends first, without any server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(alpn)
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def read_hello_from(data: bytes) -> object:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await read_client_hello(reader)


# --- the wire format -------------------------------------------------------------------------------


def test_the_auth_route_names_the_cluster_in_hex_as_teleport_does() -> None:
    assert auth_alpn("devstack.example.com") == DEVSTACK_ALPN
    assert cluster_from_alpn(DEVSTACK_ALPN) == "devstack.example.com"
    assert cluster_from_alpn("teleport-auth@zz.teleport.cluster.local") is None
    assert cluster_from_alpn("h2") is None


def test_the_cluster_name_is_the_subject_of_the_ca_that_signed_the_identity(
    bot_identity: Identity,
) -> None:
    other = ClusterCA.generate("elsewhere.example.com")
    # Several CAs, as during a rotation or with trusted clusters: the signer decides.
    both = Identity(private_key_pem=bot_identity.private_key_pem, cert_pem=bot_identity.cert_pem,
                    ca_pems=other.cert_pem + bot_identity.ca_pems)

    assert routing.cluster_name_of(both) == "devstack.example.com"


async def test_the_proxy_reads_sni_and_alpn_from_a_real_client_hello() -> None:
    raw = client_hello([DEVSTACK_ALPN, "h2"])

    hello = await read_hello_from(raw + b"more bytes after the hello")

    assert hello.server_name == "teleport.cluster.local"  # type: ignore[attr-defined]
    assert hello.alpn == (DEVSTACK_ALPN, "h2")  # type: ignore[attr-defined]
    assert hello.raw == raw  # type: ignore[attr-defined]  # replayed to Auth byte for byte


async def test_a_client_hello_split_over_two_records_is_reassembled() -> None:
    raw = client_hello(["h2"])
    body = raw[5:]
    half = len(body) // 2
    split = b"".join(
        bytes([22]) + raw[1:3] + len(part).to_bytes(2, "big") + part for part in (body[:half], body[half:])
    )

    hello = await read_hello_from(split)

    assert hello.alpn == ("h2",)  # type: ignore[attr-defined]


async def test_bytes_that_are_not_a_client_hello_are_refused() -> None:
    with pytest.raises(NotTLS):
        await read_hello_from(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(NotTLS):
        parse_client_hello(client_hello(["h2"])[9:40])  # cut short
    with pytest.raises(asyncio.IncompleteReadError):
        await read_hello_from(client_hello(["h2"])[:50])


def test_no_key_material_is_left_on_disk_when_there_is_no_memory_file(
    bot_identity: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    context = client_context(bot_identity, alpn=["h2"])

    assert isinstance(context, ssl.SSLContext)
    assert list(tmp_path.iterdir()) == []


# --- the forwarder carries real RPCs ---------------------------------------------------------------


async def test_the_forwarder_carries_unary_calls_and_the_watch_stream(
    forwarder: Forwarder, teleport: DevTeleport, client_for: object
) -> None:
    async with grpc.aio.insecure_channel(forwarder.addr) as channel:
        stub = authservice_pb2_grpc.AuthServiceStub(channel)
        metadata = (("version", "18.0.0"),)
        pong = await stub.Ping(authservice_pb2.PingRequest(), timeout=STEP, metadata=metadata)
        listed = await stub.ListAccessRequests(
            authservice_pb2.ListAccessRequestsRequest(Filter=types_pb2.AccessRequestFilter()),
            timeout=STEP, metadata=metadata,
        )
        watch = stub.WatchEvents(
            authservice_pb2.Watch(Kinds=[types_pb2.WatchKind(Kind="access_request")]), metadata=metadata
        )
        stream = watch.__aiter__()
        init = await asyncio.wait_for(stream.__anext__(), STEP)
        created = await client_for("alice").create_request(user="alice", roles=["dba"])  # type: ignore[operator]
        put = await asyncio.wait_for(stream.__anext__(), STEP)
        watch.cancel()

    assert pong.ClusterName == "devstack.example.com"
    assert list(listed.AccessRequests) == []
    assert init.Type == authservice_pb2.Operation.INIT
    assert put.AccessRequest.Metadata.Name == created.id
    assert teleport.proxy is not None and {route for _, route in teleport.proxy.routes} == {"auth"}


async def test_closing_the_grpc_channel_closes_the_connection_through_the_proxy(
    forwarder: Forwarder, teleport: DevTeleport
) -> None:
    async with grpc.aio.insecure_channel(forwarder.addr) as channel:
        stub = authservice_pb2_grpc.AuthServiceStub(channel)
        await stub.Ping(authservice_pb2.PingRequest(), timeout=STEP)
        assert teleport.proxy is not None and teleport.proxy.connections == 1

    await asyncio.wait_for(teleport.proxy.drained(), STEP)
    await asyncio.wait_for(forwarder.drained(), STEP)


# --- telling Auth from a Proxy ---------------------------------------------------------------------


async def test_detection_finds_auth_directly_and_the_proxy_through_routing(
    teleport: DevTeleport, proxy: str, bot_identity: Identity
) -> None:
    assert (await detect_route(teleport.addr, bot_identity, timeout=STEP)).route is Route.DIRECT
    assert (await detect_route(proxy, bot_identity, timeout=STEP)).route is Route.PROXY


async def test_direct_grpc_to_the_proxy_fails_verification(proxy: str, bot_identity: Identity) -> None:
    """ALPN `h2` only reaches the Proxy's web listener, whose certificate the cluster CA did not sign."""
    credentials = grpc.ssl_channel_credentials(
        bot_identity.ca_pems, bot_identity.private_key_pem, bot_identity.cert_pem
    )
    options = [("grpc.ssl_target_name_override", routing.SERVER_NAME)]
    async with grpc.aio.secure_channel(proxy, credentials, options=options) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await authservice_pb2_grpc.AuthServiceStub(channel).Ping(authservice_pb2.PingRequest(), timeout=STEP)

    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in (caught.value.details() or "")


async def test_a_proxy_refuses_a_route_to_a_cluster_it_does_not_serve(
    teleport: DevTeleport, proxy: str, bot_identity: Identity
) -> None:
    host, port = routing.split_addr(proxy)
    context = client_context(bot_identity, alpn=[auth_alpn("elsewhere.example.com"), "h2"])

    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError)):
        await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=routing.SERVER_NAME), STEP
        )

    assert teleport.proxy is not None
    assert teleport.proxy.routes[-1][1] == "unknown cluster 'elsewhere.example.com'"


async def test_an_address_nobody_listens_on_is_not_a_verdict_on_the_route(
    bot_identity: Identity, unused_addr: str
) -> None:
    detection = await detect_route(unused_addr, bot_identity, timeout=STEP)

    assert detection.route is None and not detection.conclusive
    assert detection.reason == f"{unused_addr}: connection refused"


@pytest.fixture
async def unused_addr(teleport: DevTeleport) -> str:
    # A port that was just listening: nobody reuses it within the test.
    proxy_addr = await teleport.start_proxy("127.0.0.1:0")
    await teleport.stop_proxy()
    return proxy_addr


# --- the client through the Proxy ------------------------------------------------------------------


async def test_the_client_given_the_proxy_works_end_to_end(
    proxied_bot: TeleportClient, client_for: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="chatops_bot.teleport.client")
    events = proxied_bot.watch_requests()
    try:
        assert (await asyncio.wait_for(events.__anext__(), STEP)).kind == "init"
        info = await proxied_bot.ping()
        created = await proxied_bot.create_request(user="alice", roles=["dba"], reason="INC-1")
        put = await asyncio.wait_for(events.__anext__(), STEP)
        listed = await proxied_bot.list_requests(user="alice")
    finally:
        await events.aclose()

    assert info.name == "devstack.example.com"
    assert (put.kind, put.request_id) == ("put", created.id)
    assert [r.id for r in listed] == [created.id]
    assert f"reaching Teleport at {proxied_bot.addr} through the Proxy's TLS routing" in caplog.text


async def test_the_client_given_auth_still_connects_directly(
    teleport: DevTeleport, proxy: str, bot_identity: Identity, tmp_path: Path
) -> None:
    client = client_at(teleport.addr, bot_identity, tmp_path / "bot.pem")
    try:
        await client.ping()
        await client.list_requests()
    finally:
        await client.close()

    assert client._route is Route.DIRECT
    assert teleport.proxy is not None and teleport.proxy.routes == []  # the proxy saw nothing


async def test_an_identity_from_another_cluster_is_refused_naming_the_cause(
    proxy: str, tmp_path: Path
) -> None:
    stranger = ClusterCA.generate("elsewhere.example.com").issue_identity("chatops-bot", ["chatops-bot"])
    client = client_at(proxy, stranger, tmp_path / "stranger.pem")
    try:
        with pytest.raises(Unavailable) as caught:
            await client.ping()
    finally:
        await client.close()

    detail = caught.value.detail
    assert "nor a Proxy with TLS routing for cluster 'elsewhere.example.com'" in detail
    assert "the server's certificate is not from the identity's cluster CA" in detail
    assert "CERTIFICATE_VERIFY_FAILED" in detail
    assert "through TLS routing, the server closed the connection during the TLS handshake" in detail


async def test_a_stopped_proxy_reads_as_unreachable_naming_the_proxy(
    teleport: DevTeleport, proxied_bot: TeleportClient, proxy: str
) -> None:
    await proxied_bot.ping()
    await teleport.stop_proxy()

    with pytest.raises(Unavailable):
        await proxied_bot.list_requests()  # may be the call that finds the connection gone
    with pytest.raises(Unavailable) as caught:
        await proxied_bot.list_requests()

    assert f"(through the Proxy's TLS routing: {proxy}: connection refused)" in caught.value.detail


async def test_a_watch_cut_by_a_proxy_restart_is_reopened_on_the_same_client(
    teleport: DevTeleport, proxied_bot: TeleportClient, proxy: str
) -> None:
    events = proxied_bot.watch_requests()
    try:
        assert (await asyncio.wait_for(events.__anext__(), STEP)).kind == "init"
        await teleport.stop_proxy()
        with pytest.raises(Unavailable):
            await asyncio.wait_for(events.__anext__(), STEP)
    finally:
        await events.aclose()

    assert await teleport.start_proxy("127.0.0.1:0") == proxy
    assert (await proxied_bot.ping()).name == "devstack.example.com"
    again = proxied_bot.watch_requests()
    try:
        assert (await asyncio.wait_for(again.__anext__(), STEP)).kind == "init"
    finally:
        await again.aclose()


async def test_a_renewed_identity_reaches_auth_through_the_proxy(
    teleport: DevTeleport, proxied_bot: TeleportClient
) -> None:
    await proxied_bot.ping()
    path = proxied_bot.identity_source.identity_file
    write_identity_file(teleport.identity("chatops-bot", valid_for=timedelta(hours=2)), path)

    created = await proxied_bot.create_request(user="alice", roles=["dba"])

    # Teleport caps the session by the creating identity's expiry: Auth saw the renewed certificate.
    assert created.session_ttl is not None and created.created is not None
    assert abs(created.session_ttl - datetime.now(UTC) - timedelta(hours=2)) < timedelta(minutes=1)
