"""The Teleport client against the devstack Auth server, over real gRPC and mutual TLS, for every RPC.

Nothing here is patched: each test talks to a `DevTeleport` on loopback with identity files issued by
the session CA, so what the tests see is what the bot sees from a Teleport cluster.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.teleport import SERVER_VERSION, AuthService, DevTeleport
from chatops_bot.teleport import client as client_module
from chatops_bot.teleport import convert
from chatops_bot.teleport.client import (
    CLIENT_VERSION,
    PAGE_SIZE,
    SERVER_NAME,
    IdentitySource,
    TeleportClient,
    WatchEvent,
)
from chatops_bot.teleport.errors import NO_ANSWER, UNREACHABLE
from chatops_bot.teleport.gen import authservice_pb2, authservice_pb2_grpc
from chatops_bot.teleport.identity import Identity
from commands.errors import (
    AccessDenied,
    AlreadyExists,
    BadParameter,
    CompareFailed,
    NotFound,
    Unavailable,
)
from commands.model import AccessRequest, RequestState, Review, Threshold, User

ClientFactory = Callable[..., TeleportClient]
EVENT_WAIT = 5.0

# The demo cluster plus: dave requests `auditor`, which needs two approvals (erin, frank review it);
# janitor may delete requests. Bob reviews only dba, so he must not see dave's requests.
EXTENDED_SEED = (
    demo_seed_text()
    + """
---
kind: role
version: v7
metadata: {name: auditor}
spec:
  allow:
    logins: [audit]
---
kind: role
version: v7
metadata: {name: long-shift}
spec:
  options: {max_session_ttl: 19h1us}
---
kind: role
version: v7
metadata: {name: auditor-requester}
spec:
  allow:
    request:
      roles: [auditor]
      thresholds:
        - {name: two-people, approve: 2, deny: 2}
---
kind: role
version: v7
metadata: {name: auditor-reviewer}
spec:
  allow:
    review_requests:
      roles: [auditor]
---
kind: role
version: v7
metadata: {name: janitor}
spec:
  allow:
    rules:
      - resources: [access_request]
        verbs: [list, read, delete]
---
kind: user
version: v2
metadata: {name: dave}
spec: {roles: [auditor-requester]}
---
kind: user
version: v2
metadata: {name: erin}
spec: {roles: [auditor-reviewer]}
---
kind: user
version: v2
metadata: {name: frank}
spec: {roles: [auditor-reviewer]}
---
kind: user
version: v2
metadata: {name: janitor}
spec: {roles: [janitor]}
"""
)


# --- helpers ---------------------------------------------------------------------------------------


class Cluster:
    """A DevTeleport started from a custom seed, with clients for its users closed on teardown."""

    def __init__(self, server: DevTeleport, directory: Path) -> None:
        self.server = server
        self.directory = directory
        self.clients: list[TeleportClient] = []

    def client(self, user: str, **identity_kwargs: Any) -> TeleportClient:
        path = self.directory / f"{user}-{len(self.clients)}.pem"
        write_identity_file(self.server.identity(user, **identity_kwargs), path)
        client = TeleportClient(self.server.addr, IdentitySource(identity_file=str(path)), timeout=5.0)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.server.stop()


@pytest.fixture
async def extended(cluster_ca: ClusterCA, tmp_path: Path) -> AsyncIterator[Cluster]:
    server = DevTeleport(load_seed(EXTENDED_SEED), cluster_name="devstack.example.com", ca=cluster_ca)
    await server.start("127.0.0.1:0")
    cluster = Cluster(server, tmp_path)
    yield cluster
    await cluster.close()


def identity_path(client: TeleportClient) -> Path:
    return Path(client.identity_source.identity_file)


def renew(server: DevTeleport, client: TeleportClient, valid_for: timedelta) -> None:
    """What Machine ID does: write a fresh identity for the same user over the file (by rename)."""
    write_identity_file(server.identity(client.identity.username, valid_for=valid_for), identity_path(client))


def raw_stub(addr: str, identity: Identity) -> tuple[grpc.aio.Channel, authservice_pb2_grpc.AuthServiceStub]:
    """A bare stub, for asking the server what the client does not expose (page sizes)."""
    credentials = grpc.ssl_channel_credentials(identity.ca_pems, identity.private_key_pem, identity.cert_pem)
    options = [("grpc.ssl_target_name_override", SERVER_NAME)]
    channel = grpc.aio.secure_channel(addr, credentials, options=options)
    return channel, authservice_pb2_grpc.AuthServiceStub(channel)


async def next_event(events: AsyncGenerator[WatchEvent, None]) -> WatchEvent:
    return await asyncio.wait_for(anext(events), EVENT_WAIT)


async def pending_for_alice(client: TeleportClient, reason: str = "INC-4411 replica lag") -> AccessRequest:
    return await client.create_request(user="alice", roles=["dba"], reason=reason)


def approve(author: str = "", reason: str = "go ahead") -> Review:
    """A review by `author` (the caller when empty), flagged as submitted on their behalf when named."""
    return Review(author=author, proposed_state=RequestState.APPROVED, reason=reason, on_behalf=bool(author))


def close_to(actual: timedelta | None, expected: timedelta, slack: timedelta = timedelta(seconds=30)) -> bool:
    return actual is not None and abs(actual - expected) <= slack


def since_created(request: AccessRequest, moment: datetime | None) -> timedelta | None:
    if request.created is None or moment is None:
        return None
    return moment - request.created


# --- cluster ---------------------------------------------------------------------------------------


async def test_ping_names_the_cluster_and_its_version(bot: TeleportClient) -> None:
    info = await bot.ping()

    assert info.name == "devstack.example.com"
    assert info.server_version == SERVER_VERSION


class VersionRecordingAuth(AuthService):
    """The devstack service, noting the `version` header of every Ping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.versions: list[str] = []

    async def Ping(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.versions.append(dict(context.invocation_metadata() or ()).get("version", ""))
        return await super().Ping(request, context)


async def test_every_call_names_the_teleport_version_the_bot_speaks(cluster_ca: ClusterCA, tmp_path: Path) -> None:
    server = DevTeleport(load_seed(demo_seed_text()), ca=cluster_ca, version="17.4.2")
    service = VersionRecordingAuth(server.store, server.cluster_name, version="17.4.2")
    server.service = service
    await server.start("127.0.0.1:0")
    cluster = Cluster(server, tmp_path)
    try:
        bot = cluster.client("chatops-bot")
        await bot.ping()
        await bot.get_user("alice")
        await bot.ping()
    finally:
        await cluster.close()

    # Never the server's own version: that would pretend to speak a wire the bot does not know.
    assert service.versions == [CLIENT_VERSION, CLIENT_VERSION]


async def test_a_server_two_majors_newer_refuses_the_bot(cluster_ca: ClusterCA, tmp_path: Path) -> None:
    server = DevTeleport(load_seed(demo_seed_text()), ca=cluster_ca, version="20.1.0")
    await server.start("127.0.0.1:0")
    cluster = Cluster(server, tmp_path)
    try:
        with pytest.raises(AccessDenied) as caught:
            await cluster.client("chatops-bot").ping()
    finally:
        await cluster.close()

    assert "client version is unsupported" in caught.value.detail


async def test_a_server_one_major_newer_still_serves_the_bot(cluster_ca: ClusterCA, tmp_path: Path) -> None:
    server = DevTeleport(load_seed(demo_seed_text()), ca=cluster_ca, version="19.0.1")
    await server.start("127.0.0.1:0")
    cluster = Cluster(server, tmp_path)
    try:
        info = await cluster.client("chatops-bot").ping()
    finally:
        await cluster.close()

    assert info.server_version == "19.0.1"


@pytest.mark.parametrize("method", ["GetUser", "GetUsers", "GetCurrentUser"])
async def test_the_legacy_user_rpcs_are_not_served(teleport: DevTeleport, bot: TeleportClient, method: str) -> None:
    """What Teleport 16+ answers for the user RPCs its authservice.proto still declares."""
    channel, _ = raw_stub(teleport.addr, bot.identity)
    async with channel:
        call = channel.unary_unary(f"/proto.AuthService/{method}")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"", timeout=5, metadata=(("version", CLIENT_VERSION),))

    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == f"method {method} not implemented"


# --- creating requests -----------------------------------------------------------------------------


async def test_alices_request_comes_back_pending_with_what_teleport_computes(
    client_for: ClientFactory
) -> None:
    alice = client_for("alice")

    created = await alice.create_request(
        user="alice", roles=["dba"], reason="INC-4411 replica lag", max_duration=timedelta(hours=10)
    )

    # The client sends a random UUIDv4; a current Auth server replaces it with its own UUIDv7.
    assert uuid.UUID(created.id).version == 7
    assert created.user == "alice"
    assert created.roles == ("dba",)
    assert created.state is RequestState.PENDING
    assert created.reason == "INC-4411 replica lag"
    assert created.thresholds == (Threshold(name="default", approve=1, deny=1),)
    assert dict(created.role_threshold_mapping) == {"dba": ((0,),)}
    assert created.suggested_reviewers == ("bob",)
    assert created.reviews == ()
    # Ten hours were asked for; the requester role's max_duration caps access at eight.
    assert since_created(created, created.access_expires) == timedelta(hours=8)
    assert await alice.get_request(created.id) == created


async def test_asking_for_less_than_the_cap_gets_what_was_asked(client_for: ClientFactory) -> None:
    alice = client_for("alice")

    created = await alice.create_request(user="alice", roles=["dba"], max_duration=timedelta(hours=2))

    assert close_to(since_created(created, created.access_expires), timedelta(hours=2))


async def test_dry_run_shows_the_outcome_and_stores_nothing(
    client_for: ClientFactory, bot: TeleportClient
) -> None:
    alice = client_for("alice")

    preview = await alice.create_request(user="alice", roles=["dba"], reason="just looking", dry_run=True)

    assert preview.state is RequestState.PENDING
    assert preview.suggested_reviewers == ("bob",)
    assert preview.thresholds == (Threshold(name="default", approve=1, deny=1),)
    assert since_created(preview, preview.access_expires) == timedelta(hours=8)
    assert await alice.list_requests() == []
    assert await bot.list_requests() == []


async def test_the_bot_files_a_request_on_alices_behalf(
    bot: TeleportClient, client_for: ClientFactory
) -> None:
    created = await pending_for_alice(bot)

    assert created.user == "alice"
    assert created.suggested_reviewers == ("bob",)
    assert [r.id for r in await client_for("alice").list_requests()] == [created.id]


async def test_carol_cannot_file_a_request_for_alice(client_for: ClientFactory, bot: TeleportClient) -> None:
    with pytest.raises(AccessDenied) as caught:
        await pending_for_alice(client_for("carol"))

    assert "access denied to perform action 'create' on 'access_request'" in caught.value.detail
    assert caught.value.message.startswith("Teleport refused: ")
    assert await bot.list_requests() == []


@pytest.mark.parametrize("role", ["developer", "chatops-bot"])
async def test_alice_cannot_request_a_role_her_roles_do_not_offer(
    client_for: ClientFactory, role: str
) -> None:
    with pytest.raises(BadParameter) as caught:
        await client_for("alice").create_request(user="alice", roles=[role], reason="please")

    # Teleport's RequestValidator words it so, as a bad parameter (lib/services/access_request.go).
    assert caught.value.detail.endswith(f'user "alice" can not request role "{role}"')


async def test_a_reason_longer_than_4096_bytes_is_refused(client_for: ClientFactory) -> None:
    alice = client_for("alice")
    # 2,049 characters but 4,098 bytes: the limit counts bytes.
    with pytest.raises(BadParameter) as caught:
        await pending_for_alice(alice, reason="é" * 2049)
    assert "too long" in caught.value.detail

    accepted = await pending_for_alice(alice, reason="x" * 4096)
    assert len(accepted.reason) == 4096


async def test_asking_for_more_than_fourteen_days_is_refused(client_for: ClientFactory) -> None:
    with pytest.raises(BadParameter) as caught:
        await client_for("alice").create_request(user="alice", roles=["dba"], max_duration=timedelta(days=15))

    assert "max_duration must be less than or equal to" in caught.value.detail


async def test_a_request_for_an_unknown_user_is_not_found(bot: TeleportClient) -> None:
    with pytest.raises(NotFound) as caught:
        await bot.create_request(user="mallory", roles=["dba"], reason="who?")

    assert "mallory" in caught.value.detail


# --- listing ---------------------------------------------------------------------------------------


async def test_listing_more_than_a_page_returns_every_request_once_newest_first(
    teleport: DevTeleport, bot: TeleportClient
) -> None:
    created = [await pending_for_alice(bot, reason=f"r{n}") for n in range(PAGE_SIZE + 50)]

    listed = await bot.list_requests()

    assert len(listed) == len(created)
    assert {r.id for r in listed} == {r.id for r in created}
    stamps = [r.created for r in listed]
    assert all(a is not None and b is not None and a >= b for a, b in zip(stamps, stamps[1:]))
    assert listed[0].id == created[-1].id

    # The listing above needed two pages: the server stops at the client's page size.
    channel, stub = raw_stub(teleport.addr, bot.identity)
    async with channel:
        page = await stub.ListAccessRequests(
            authservice_pb2.ListAccessRequestsRequest(
                Sort=authservice_pb2.AccessRequestSort.CREATED, Descending=True, Limit=PAGE_SIZE
            ),
            timeout=5,
        )
    assert len(page.AccessRequests) == PAGE_SIZE
    assert page.NextKey


async def test_small_pages_walk_the_whole_list_without_gaps(
    teleport: DevTeleport, bot: TeleportClient
) -> None:
    created = [await pending_for_alice(bot, reason=f"r{n}") for n in range(23)]
    channel, stub = raw_stub(teleport.addr, bot.identity)
    seen: list[str] = []
    pages = 0
    async with channel:
        start_key = ""
        while True:
            page = await stub.ListAccessRequests(
                authservice_pb2.ListAccessRequestsRequest(
                    Sort=authservice_pb2.AccessRequestSort.CREATED,
                    Descending=True,
                    Limit=5,
                    StartKey=start_key,
                ),
                timeout=5,
            )
            pages += 1
            assert len(page.AccessRequests) <= 5
            seen.extend(pb.Metadata.Name for pb in page.AccessRequests)
            start_key = page.NextKey
            if not start_key:
                break

    assert pages == 5
    assert seen == [r.id for r in reversed(created)]


async def test_listing_filters_by_user_and_state(extended: Cluster) -> None:
    bot, bob = extended.client("chatops-bot"), extended.client("bob")
    approved = await pending_for_alice(bot, reason="first")
    await bob.submit_review(approved.id, approve())
    pending = await pending_for_alice(bot, reason="second")
    daves = await bot.create_request(user="dave", roles=["auditor"], reason="audit")

    assert [r.id for r in await bot.list_requests(user="alice")] == [pending.id, approved.id]
    assert [r.id for r in await bot.list_requests(state=RequestState.PENDING)] == [daves.id, pending.id]
    assert [r.id for r in await bot.list_requests(user="alice", state=RequestState.APPROVED)] == [approved.id]
    assert await bot.list_requests(user="dave", state=RequestState.APPROVED) == []


async def test_people_see_their_own_requests_and_those_they_may_review(extended: Cluster) -> None:
    bot = extended.client("chatops-bot")
    alices = await pending_for_alice(bot)
    daves = await bot.create_request(user="dave", roles=["auditor"], reason="audit")

    def ids(requests: list[AccessRequest]) -> list[str]:
        return [r.id for r in requests]

    assert ids(await extended.client("alice").list_requests()) == [alices.id]
    assert ids(await extended.client("dave").list_requests()) == [daves.id]
    assert ids(await extended.client("bob").list_requests()) == [alices.id]
    assert ids(await extended.client("erin").list_requests()) == [daves.id]
    assert ids(await extended.client("carol").list_requests()) == []
    assert ids(await bot.list_requests()) == [daves.id, alices.id]
    with pytest.raises(NotFound):
        await extended.client("alice").get_request(daves.id)


async def test_an_unknown_request_id_is_not_found(bot: TeleportClient) -> None:
    with pytest.raises(NotFound) as caught:
        await bot.get_request("0190b2a4-0000-7000-8000-000000000000")

    assert "0190b2a4-0000-7000-8000-000000000000" in caught.value.message


# --- reviews ---------------------------------------------------------------------------------------


async def test_bobs_approval_approves_alices_request(bot: TeleportClient, client_for: ClientFactory) -> None:
    request = await pending_for_alice(bot)

    reviewed = await client_for("bob").submit_review(request.id, approve(reason="looks right"))

    assert reviewed.state is RequestState.APPROVED
    assert reviewed.resolve_reason == "looks right"
    assert [(r.author, r.proposed_state, r.submitted_by) for r in reviewed.reviews] == [
        ("bob", RequestState.APPROVED, "")
    ]
    assert (await bot.get_request(request.id)).state is RequestState.APPROVED


@pytest.mark.parametrize("reviewer", ["carol", "alice"])
async def test_people_without_review_rights_cannot_review(
    bot: TeleportClient, client_for: ClientFactory, reviewer: str
) -> None:
    request = await pending_for_alice(bot)

    with pytest.raises(AccessDenied) as caught:
        await client_for(reviewer).submit_review(request.id, approve(reviewer))

    assert f'user "{reviewer}" cannot review this request' in caught.value.detail
    stored = await bot.get_request(request.id)
    assert stored.state is RequestState.PENDING
    assert stored.reviews == ()


async def test_the_bot_submits_bobs_review_on_his_behalf(bot: TeleportClient) -> None:
    request = await pending_for_alice(bot)

    reviewed = await bot.submit_review(request.id, approve("bob", "approved in Slack"))

    assert reviewed.state is RequestState.APPROVED
    stored = await bot.get_request(request.id)
    assert [(r.author, r.submitted_by, r.reason) for r in stored.reviews] == [
        ("bob", "chatops-bot", "approved in Slack")
    ]


async def test_a_review_for_bob_without_the_on_behalf_flag_is_refused(bot: TeleportClient) -> None:
    request = await pending_for_alice(bot)

    with pytest.raises(AccessDenied) as caught:
        await bot.submit_review(request.id, replace(approve("bob"), on_behalf=False))

    assert 'user "chatops-bot" cannot submit reviews on behalf of "bob"' in caught.value.detail
    assert (await bot.get_request(request.id)).reviews == ()


async def test_before_18_11_no_review_on_behalf_is_possible(cluster_ca: ClusterCA, tmp_path: Path) -> None:
    """18.2 drops `submit_for_users` from the bot's role when it is created and ignores the flag."""
    server = DevTeleport(load_seed(demo_seed_text()), ca=cluster_ca, version="18.2.0")
    await server.start("127.0.0.1:0")
    cluster = Cluster(server, tmp_path)
    try:
        bot = cluster.client("chatops-bot")
        request = await pending_for_alice(bot)
        own = await bot.get_role("chatops-bot")
        with pytest.raises(AccessDenied) as caught:
            await bot.submit_review(request.id, approve("bob"))
    finally:
        await cluster.close()

    assert own.allow.review_requests is not None and own.allow.review_requests.submit_for_users == ()
    assert 'cannot submit reviews on behalf of "bob"' in caught.value.detail


async def test_the_bot_cannot_lend_review_rights_to_carol(bot: TeleportClient) -> None:
    request = await pending_for_alice(bot)

    with pytest.raises(AccessDenied) as caught:
        await bot.submit_review(request.id, approve("carol"))

    assert 'user "carol" cannot review this request' in caught.value.detail


async def test_nobody_reviews_twice(extended: Cluster) -> None:
    bot, erin = extended.client("chatops-bot"), extended.client("erin")
    request = await bot.create_request(user="dave", roles=["auditor"], reason="audit")

    first = await erin.submit_review(request.id, approve())
    assert first.state is RequestState.PENDING  # auditor needs two approvals

    with pytest.raises(AlreadyExists) as caught:
        await erin.submit_review(request.id, approve())
    assert 'user "erin" has already reviewed this request' in caught.value.detail
    with pytest.raises((AccessDenied, AlreadyExists)):
        await bot.submit_review(request.id, approve("erin"))

    second = await extended.client("frank").submit_review(request.id, approve())
    assert second.state is RequestState.APPROVED
    assert [r.author for r in second.reviews] == ["erin", "frank"]


async def test_an_approved_request_takes_no_more_reviews(bot: TeleportClient) -> None:
    request = await pending_for_alice(bot)
    await bot.submit_review(request.id, approve("bob"))

    # Teleport checks the author before the state: a second review by bob is AlreadyExists. (Another
    # reviewer's gets PERMISSION_DENIED "already approved": tests/test_teleport_tables.py.)
    with pytest.raises(AlreadyExists) as caught:
        await bot.submit_review(request.id, approve("bob"))

    assert 'user "bob" has already reviewed this request' in caught.value.detail
    assert (await bot.get_request(request.id)).state is RequestState.APPROVED


# --- state and deletion ----------------------------------------------------------------------------


async def test_the_bot_denies_a_request_with_a_reason(bot: TeleportClient, client_for: ClientFactory) -> None:
    request = await pending_for_alice(bot)

    await bot.set_state(
        request.id, state=RequestState.DENIED, reason="not during the freeze", delegator="slack:bob"
    )

    denied = await client_for("alice").get_request(request.id)
    assert denied.state is RequestState.DENIED
    assert denied.resolve_reason == "not during the freeze"


async def test_carol_cannot_set_a_requests_state(bot: TeleportClient, client_for: ClientFactory) -> None:
    request = await pending_for_alice(bot)

    with pytest.raises(AccessDenied) as caught:
        await client_for("carol").set_state(request.id, state=RequestState.APPROVED)

    assert "'update' on 'access_request'" in caught.value.detail
    assert (await bot.get_request(request.id)).state is RequestState.PENDING


async def test_a_denied_request_stays_denied(bot: TeleportClient) -> None:
    request = await pending_for_alice(bot)
    await bot.set_state(request.id, state=RequestState.DENIED, reason="no")

    with pytest.raises(BadParameter) as caught:
        await bot.set_state(request.id, state=RequestState.APPROVED, reason="changed my mind")

    assert "already denied" in caught.value.detail
    assert (await bot.get_request(request.id)).state is RequestState.DENIED


async def test_a_user_may_not_delete_even_their_own_pending_request(
    bot: TeleportClient, client_for: ClientFactory
) -> None:
    # As Teleport: DeleteAccessRequest needs `access_request: delete`, with no exception for the requester
    # (lib/auth/auth_with_roles.go). So `/access cancel` is the bot's deletion, gated by the bot.
    request = await pending_for_alice(bot)

    with pytest.raises(AccessDenied) as caught:
        await client_for("alice").delete_request(request.id)

    assert "'delete' on 'access_request'" in caught.value.detail
    assert (await bot.get_request(request.id)).id == request.id


async def test_deleting_a_request_removes_it(extended: Cluster) -> None:
    bot, janitor = extended.client("chatops-bot"), extended.client("janitor")
    request = await pending_for_alice(bot)
    await bot.update_plugin_data(request.id, set={"claimed": "U1"})

    await janitor.delete_request(request.id)

    with pytest.raises(NotFound):
        await bot.get_request(request.id)
    with pytest.raises(NotFound):
        await bot.get_plugin_data(request.id)
    with pytest.raises(NotFound):
        await janitor.delete_request(request.id)


# --- events ----------------------------------------------------------------------------------------


async def test_the_watch_reports_creation_review_and_deletion(extended: Cluster) -> None:
    bot = extended.client("chatops-bot")
    events = bot.watch_requests()
    try:
        assert (await next_event(events)).kind == "init"

        request = await pending_for_alice(extended.client("alice"))
        created = await next_event(events)
        assert (created.kind, created.request_id) == ("put", request.id)
        assert created.request is not None and created.request.state is RequestState.PENDING

        await extended.client("bob").submit_review(request.id, approve())
        reviewed = await next_event(events)
        assert (reviewed.kind, reviewed.request_id) == ("put", request.id)
        assert reviewed.request is not None and reviewed.request.state is RequestState.APPROVED
        assert [r.author for r in reviewed.request.reviews] == ["bob"]

        await extended.client("janitor").delete_request(request.id)
        assert await next_event(events) == WatchEvent("delete", request_id=request.id)
    finally:
        await events.aclose()


async def test_watching_every_request_needs_read_permission(client_for: ClientFactory) -> None:
    events = client_for("alice").watch_requests()
    try:
        with pytest.raises(AccessDenied) as caught:
            await next_event(events)
    finally:
        await events.aclose()

    assert "'read' on 'access_request'" in caught.value.detail


# --- users and roles -------------------------------------------------------------------------------


async def test_the_bot_reads_users_and_roles(bot: TeleportClient) -> None:
    alice = await bot.get_user("alice")
    assert alice.roles == ("requester", "developer")
    assert alice.traits["slack_user_id"] == ("U0ALICE",)

    assert {u.name for u in await bot.list_users()} == {"alice", "bob", "carol", "chatops-bot"}
    assert (await bot.current_user()).roles == ("chatops-bot",)

    dba = await bot.get_role("dba")
    assert dba.max_session_ttl == timedelta(hours=8)
    assert dba.allow.logins == ("postgres",)
    requester = await bot.get_role("requester")
    assert requester.allow.request is not None
    assert requester.allow.request.roles == ("dba",)
    assert requester.allow.request.max_duration == timedelta(hours=8)
    assert requester.allow.request.suggested_reviewers == ("bob",)
    reviewer = await bot.get_role("dba-reviewer")
    assert reviewer.allow.review_requests is not None and reviewer.allow.review_requests.roles == ("dba",)
    own = await bot.get_role("chatops-bot")
    assert own.allow.review_requests is not None and own.allow.review_requests.submit_for_users == ("*",)

    with pytest.raises(NotFound):
        await bot.get_user("mallory")
    with pytest.raises(NotFound):
        await bot.get_role("superuser")


async def test_role_durations_cross_the_wire_to_the_microsecond(extended: Cluster) -> None:
    role = await extended.client("chatops-bot").get_role("long-shift")

    assert role.max_session_ttl == timedelta(hours=19, microseconds=1)


async def test_alices_capabilities_name_what_she_may_request_and_who_reviews(
    bot: TeleportClient, client_for: ClientFactory
) -> None:
    for client in (client_for("alice"), bot):
        capabilities = await client.get_capabilities("alice")
        assert capabilities.requestable_roles == ("dba",)
        assert capabilities.suggested_reviewers == ("bob",)
        assert capabilities.require_reason is False


async def test_alice_reads_herself_but_not_others(client_for: ClientFactory) -> None:
    alice = client_for("alice")

    assert (await alice.get_user("alice")).name == "alice"
    assert (await alice.get_role("requester")).name == "requester"
    with pytest.raises(AccessDenied) as caught:
        await alice.get_user("bob")
    assert "'read' on 'user'" in caught.value.detail
    assert (await alice.current_user()).name == "alice"
    with pytest.raises(AccessDenied) as listing:
        await alice.list_users()
    assert "on 'user'" in listing.value.detail
    with pytest.raises(AccessDenied):
        await alice.get_role("dba")
    with pytest.raises(AccessDenied):
        await alice.get_capabilities("bob")


async def test_listing_users_pages_through_thousands_each_once(teleport: DevTeleport, bot: TeleportClient) -> None:
    for n in range(2 * PAGE_SIZE + 17):
        teleport.store.put_user(User(name=f"user{n:05d}", roles=("requester",)))

    names = [u.name for u in await bot.list_users()]

    assert len(names) == len(set(names)) == 2 * PAGE_SIZE + 17 + 4
    assert names == sorted(names)


async def test_the_watch_carries_user_changes_beside_requests_when_asked(
    teleport: DevTeleport, bot: TeleportClient
) -> None:
    events = bot.watch_requests(users=True)
    try:
        assert (await next_event(events)).kind == "init"
        alice = teleport.store.user("alice")
        teleport.store.put_user(replace(alice, traits={**alice.traits, "slack_user_id": ("U0NEW",)}))
        linked = await next_event(events)
        assert (linked.kind, linked.user_name) == ("put", "alice")
        assert linked.user is not None and linked.user.traits["slack_user_id"] == ("U0NEW",)

        request = await pending_for_alice(bot)
        assert (await next_event(events)).request_id == request.id

        teleport.store.delete_user("carol")
        assert await next_event(events) == WatchEvent("delete", user_name="carol")
    finally:
        await events.aclose()


async def test_a_watch_without_users_sees_no_user_events(teleport: DevTeleport, bot: TeleportClient) -> None:
    events = bot.watch_requests()
    try:
        assert (await next_event(events)).kind == "init"
        teleport.store.delete_user("carol")
        request = await pending_for_alice(bot)
        assert (await next_event(events)).request_id == request.id
    finally:
        await events.aclose()


# --- plugin data -----------------------------------------------------------------------------------


async def test_plugin_data_starts_empty_and_keeps_what_was_written(bot: TeleportClient) -> None:
    request = await pending_for_alice(bot)
    assert await bot.get_plugin_data(request.id) == {}

    await bot.update_plugin_data(request.id, set={"claimed": "U0BOB", "ts": "1700000000.1"}, expect={})
    assert await bot.get_plugin_data(request.id) == {"claimed": "U0BOB", "ts": "1700000000.1"}

    # An empty value removes the key.
    await bot.update_plugin_data(request.id, set={"ts": ""}, expect={"claimed": "U0BOB"})
    assert await bot.get_plugin_data(request.id) == {"claimed": "U0BOB"}


async def test_a_stale_compare_and_swap_changes_nothing(bot: TeleportClient) -> None:
    request = await pending_for_alice(bot)
    await bot.update_plugin_data(request.id, set={"claimed": "U0BOB"}, expect={"claimed": ""})

    with pytest.raises(CompareFailed):
        await bot.update_plugin_data(
            request.id, set={"claimed": "U0CAROL", "note": "x"}, expect={"claimed": ""}
        )

    assert await bot.get_plugin_data(request.id) == {"claimed": "U0BOB"}


async def test_two_concurrent_claims_have_exactly_one_winner(
    bot: TeleportClient, client_for: ClientFactory
) -> None:
    request = await pending_for_alice(bot)
    other = client_for("chatops-bot")

    results = await asyncio.gather(
        bot.update_plugin_data(request.id, set={"claimed": "first"}, expect={"claimed": ""}),
        other.update_plugin_data(request.id, set={"claimed": "second"}, expect={"claimed": ""}),
        return_exceptions=True,
    )

    winners = [name for name, result in zip(("first", "second"), results) if result is None]
    losers = [result for result in results if isinstance(result, CompareFailed)]
    assert len(winners) == 1 and len(losers) == 1
    assert await bot.get_plugin_data(request.id) == {"claimed": winners[0]}


async def test_all_plugin_data_comes_in_one_call_keyed_by_request(
    bot: TeleportClient, client_for: ClientFactory
) -> None:
    first, second, _no_data = [await pending_for_alice(bot, reason=f"r{n}") for n in range(3)]
    await bot.update_plugin_data(first.id, set={"claim": "done"})
    await bot.update_plugin_data(second.id, set={"slack:C0ACCESS": "C0ACCESS/1.2"})
    assert await bot.get_all_plugin_data() == {first.id: {"claim": "done"},
                                                second.id: {"slack:C0ACCESS": "C0ACCESS/1.2"}}
    with pytest.raises(AccessDenied):
        await client_for("carol").get_all_plugin_data()


async def test_plugin_data_needs_a_known_request_and_permission(
    bot: TeleportClient, client_for: ClientFactory
) -> None:
    with pytest.raises(NotFound):
        await bot.get_plugin_data(str(uuid.uuid4()))
    request = await pending_for_alice(bot)
    with pytest.raises(AccessDenied):
        await client_for("alice").update_plugin_data(request.id, set={"claimed": "me"})


# --- connection failures ---------------------------------------------------------------------------


async def test_an_identity_from_another_cluster_fails_the_tls_handshake(
    teleport: DevTeleport, tmp_path: Path
) -> None:
    stranger = ClusterCA.generate("elsewhere.example.com")
    path = tmp_path / "stranger.pem"
    write_identity_file(stranger.issue_identity("chatops-bot", ["chatops-bot"]), path)
    client = TeleportClient(teleport.addr, IdentitySource(identity_file=str(path)), timeout=5.0)
    try:
        with pytest.raises(Unavailable) as caught:
            await client.ping()
    finally:
        await client.close()

    assert caught.value.message == UNREACHABLE
    assert "handshake failed" in caught.value.detail.lower()
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.detail


async def test_an_expired_certificate_is_named_as_the_cause(client_for: ClientFactory) -> None:
    expired = client_for(
        "alice", valid_for=timedelta(minutes=1), not_before=datetime.now(UTC) - timedelta(hours=2)
    )

    with pytest.raises(Unavailable) as caught:
        await expired.ping()

    assert "certificate for alice expired at" in caught.value.detail


async def test_a_stopped_server_reads_as_unreachable(teleport: DevTeleport, bot: TeleportClient) -> None:
    await bot.ping()
    await teleport.stop()

    with pytest.raises(Unavailable) as caught:
        await bot.list_requests()

    assert caught.value.message == UNREACHABLE
    assert caught.value.message.startswith("Teleport is unreachable")
    assert "connection refused" in caught.value.detail.lower()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word (a firewall black hole, a wrong port).

    The kernel completes the TCP handshake for the listen backlog; nobody ever reads the TLS hello.
    """
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def test_a_server_that_never_answers_costs_one_timeout(silent_server: str, bot: TeleportClient) -> None:
    client = TeleportClient(silent_server, bot.identity_source, timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as reading:
            await client.ping()
        elapsed = time.monotonic() - started
        with pytest.raises(Unavailable) as writing:
            await pending_for_alice(client)
    finally:
        await client.close()

    assert 0.9 <= elapsed < 2.5
    assert "DEADLINE_EXCEEDED" in reading.value.detail
    assert reading.value.message == UNREACHABLE
    # A write that timed out may have landed: the user is not told that nothing changed.
    assert writing.value.message == NO_ANSWER


# --- identity renewal ------------------------------------------------------------------------------


async def test_a_renewed_identity_is_used_by_the_next_call(
    teleport: DevTeleport, bot: TeleportClient
) -> None:
    await bot.ping()
    before = bot.identity.not_after

    renew(teleport, bot, timedelta(hours=2))
    created = await pending_for_alice(bot)

    assert bot.identity.not_after != before
    assert close_to(bot.identity.not_after - datetime.now(UTC), timedelta(hours=2))
    # Teleport caps the session by the creating identity's expiry: the server saw the new certificate.
    assert close_to(since_created(created, created.session_ttl), timedelta(hours=2))
    assert (await bot.ping()).name == "devstack.example.com"


async def test_a_watch_opened_before_renewal_keeps_delivering(
    teleport: DevTeleport, bot: TeleportClient, client_for: ClientFactory
) -> None:
    events = bot.watch_requests()
    try:
        assert (await next_event(events)).kind == "init"

        renew(teleport, bot, timedelta(hours=3))
        await bot.ping()  # reconnects with the new identity; the watch stays on the old channel
        request = await pending_for_alice(client_for("alice"))

        event = await next_event(events)
        assert (event.kind, event.request_id) == ("put", request.id)

        # Closing the client closes the old channel too, ending the watch now rather than after the grace.
        await bot.close()
        with pytest.raises(Unavailable):
            await next_event(events)
    finally:
        await events.aclose()


async def test_after_the_grace_the_old_watch_ends_so_the_watcher_reconnects(
    teleport: DevTeleport, bot: TeleportClient, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "OLD_CHANNEL_GRACE", 0.2)
    events = bot.watch_requests()
    try:
        assert (await next_event(events)).kind == "init"
        renew(teleport, bot, timedelta(hours=3))
        await bot.ping()

        # An error to reconnect on, not a CancelledError the watcher would take for its own shutdown.
        with pytest.raises(Unavailable):
            await next_event(events)
    finally:
        await events.aclose()

    renewed = bot.watch_requests()
    try:
        assert (await next_event(renewed)).kind == "init"
        request = await pending_for_alice(client_for("alice"))
        assert (await next_event(renewed)).request_id == request.id
    finally:
        await renewed.aclose()


async def test_a_half_written_identity_does_not_break_a_working_client(
    teleport: DevTeleport, bot: TeleportClient, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.ping()
    before = bot.identity.not_after
    path = identity_path(bot)
    renewed = path.with_suffix(".renewed")
    write_identity_file(teleport.identity("chatops-bot", valid_for=timedelta(hours=3)), renewed)
    content = renewed.read_bytes()

    path.write_bytes(content[: len(content) // 2])  # Machine ID caught midway, without a rename
    with caplog.at_level(logging.WARNING, logger="chatops_bot.teleport.client"):
        assert (await bot.ping()).name == "devstack.example.com"
        assert len(await bot.list_users()) == 4
    assert bot.identity.not_after == before
    assert any("cannot reload the Teleport identity yet" in r.getMessage() for r in caplog.records)

    path.write_bytes(content)
    await bot.ping()
    assert close_to(bot.identity.not_after - datetime.now(UTC), timedelta(hours=3))


def test_identity_paths_cover_both_forms() -> None:
    assert IdentitySource(identity_file="/x/bot.pem").paths == ("/x/bot.pem",)
    assert IdentitySource(key_file="k", cert_file="c", cas_file="a").paths == ("k", "c", "a")
