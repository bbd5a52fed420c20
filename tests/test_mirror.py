"""`/access list` from the watcher's copy of the requests, as `chatops-bot serve` wires it
(`runtime.services`): what people see stays true to Teleport while the list is answered from memory.

The bot runs under uvicorn on loopback against the devstack Teleport and Slack, driven by signed slash
commands. Its watcher reads Teleport's real event stream through `Held`, which can hold events back (as a
slow network would) or let them through one at a time, so a test can tell an answer the bot kept in memory
from one it asked Teleport for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ClientFactory
from test_slack import Served
from test_watcher import eventually

from chatops_bot import runtime
from chatops_bot.config import Settings
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.server import build_app
from chatops_bot.teleport.client import TeleportClient, WatchEvent
from chatops_bot.watcher import Backoff, Watcher
from chatops_bot.wiring import teleport_client
from commands import messages
from commands.model import AccessRequest, RequestState, Review, User

CHANNEL = "C0ACCESS"
USERS = {"alice": "U0ALICE", "bob": "U0BOB"}


class Held:
    """The watcher's way to Teleport: the bot's own client, with the event stream held back on demand."""

    def __init__(self, client: TeleportClient) -> None:
        self.client = client
        self.passes: int | None = None  # None: events flow; a number: that many more, then held
        self.changed = asyncio.Event()
        self.handled = 0  # events the watcher has finished with

    def hold(self) -> None:
        self.passes = 0

    def let_through(self, count: int | None = None) -> None:
        self.passes = None if count is None else (self.passes or 0) + count
        self.changed.set()

    async def list_requests(self) -> list[AccessRequest]:
        return await self.client.list_requests()

    async def list_users(self) -> list[User]:
        return await self.client.list_users()

    async def watch_requests(self, *, users: bool = False) -> AsyncIterator[WatchEvent]:
        async with contextlib.aclosing(self.client.watch_requests(users=users)) as events:
            async for event in events:
                while self.passes == 0:
                    self.changed.clear()
                    await self.changed.wait()
                if self.passes is not None:
                    self.passes -= 1
                yield event
                self.handled += 1  # the watcher asks for the next one once it has handled this one


@dataclass
class Bot:
    slack: DevSlack
    url: str
    http: httpx.AsyncClient
    watcher: Watcher
    held: Held

    async def says(self, who: str, text: str) -> str:
        """What `who` reads in the ack of `/access <text>`."""
        body = self.slack.slash_command_body(USERS[who], text, CHANNEL)
        headers = self.slack.signed_headers(body)
        answer = await self.http.post(f"{self.url}/slack/events", content=body, headers=headers)
        assert answer.status_code == 200
        return str(answer.json()["text"])


MakeBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def make_bot(teleport: DevTeleport, tmp_path: Path) -> AsyncIterator[MakeBot]:
    stack = contextlib.AsyncExitStack()

    async def make(**sections: Any) -> Bot:
        slack = DevSlack()
        await slack.start()
        stack.push_async_callback(slack.stop)
        identity = tmp_path / "chatops-bot.pem"
        write_identity_file(teleport.identity("chatops-bot"), identity)
        settings = Settings.model_validate({
            "teleport": {"addr": teleport.addr, "identity_file": str(identity)},
            "slack": {"bot_token": slack.token, "signing_secret": slack.signing_secret,
                      "api_url": slack.api_url},
            **sections,
        })
        client = teleport_client(settings)
        stack.push_async_callback(client.close)
        services = runtime.services(settings, client)
        [watcher] = [s.watcher for s in services if isinstance(s, runtime.WatcherService)]
        held = Held(client)
        watcher.client = held  # type: ignore[assignment]  # the same client, its stream passed through `held`
        for service in services:
            await service.start()
            stack.push_async_callback(service.stop)
        served = Served(build_app(services))
        url = await served.start()
        stack.push_async_callback(served.stop)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        await asyncio.wait_for(watcher.synced.wait(), 10)
        return Bot(slack, url, http, watcher, held)

    yield make
    await stack.aclose()


def only_request(teleport: DevTeleport) -> AccessRequest:
    [request] = teleport.store.requests.values()
    return request


async def alice_asks_in_teleport(client_for: ClientFactory) -> AccessRequest:
    """A request made outside the bot (`tsh request create`)."""
    return await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-9 replica lag")


async def handled(bot: Bot, count: int) -> None:
    """Waits until the watcher has handled `count` events since the bot started (INIT included)."""
    await eventually(lambda: _at_least(bot.held.handled, count))


def _at_least(value: int, minimum: int) -> None:
    assert value >= minimum


async def test_my_request_is_in_my_list_before_its_event_arrives(
        make_bot: MakeBot, teleport: DevTeleport) -> None:
    bot = await make_bot()
    bot.held.hold()
    created = await bot.says("alice", "request dba INC-4411 replica lag")
    request = only_request(teleport)
    assert created.startswith(f"Requested dba for alice (request {messages.short_id(request.id)})")

    mine = await bot.says("alice", "list mine")
    assert bot.watcher.synced.is_set()  # answered from the watcher's copy, which has not seen the event yet
    assert messages.short_id(request.id) in mine and "INC-4411 replica lag" in mine
    assert messages.short_id(request.id) in await bot.says("bob", "list pending")


async def test_a_request_made_in_teleport_is_listed_once_its_event_arrives(
        make_bot: MakeBot, client_for: ClientFactory) -> None:
    bot = await make_bot()
    bot.held.hold()
    request = await alice_asks_in_teleport(client_for)
    assert await bot.says("bob", "list pending") == messages.nothing_listed("pending")

    bot.held.let_through()
    await handled(bot, 2)
    pending = await bot.says("bob", "list pending")
    assert pending.startswith("Waiting for your review (1, page 1 of 1)")
    assert messages.short_id(request.id) in pending and "INC-9 replica lag" in pending


@pytest.mark.parametrize("mode", ["on_behalf", "resolve"])
async def test_what_i_approved_leaves_my_pending_list_at_once_and_an_older_event_does_not_bring_it_back(
        make_bot: MakeBot, client_for: ClientFactory, teleport: DevTeleport, mode: str) -> None:
    bot = await make_bot(review={"mode": mode})
    bot.held.hold()
    request = await alice_asks_in_teleport(client_for)  # its event is held back
    approved = await bot.says("bob", f"approve {request.id} go ahead")
    assert approved == messages.reviewed(request.id, True, RequestState.APPROVED)
    assert teleport.store.requests[request.id].state is RequestState.APPROVED

    def shows_approved(listing: str) -> None:
        line = next(line for line in listing.splitlines() if messages.short_id(request.id) in line)
        assert "Approved" in line and "Pending" not in line

    assert await bot.says("bob", "list pending") == messages.nothing_listed("pending")
    shows_approved(await bot.says("bob", "list all"))
    bot.held.let_through(1)  # the request's first event: still pending, older than what the bot holds
    await handled(bot, 2)
    assert await bot.says("bob", "list pending") == messages.nothing_listed("pending")
    shows_approved(await bot.says("alice", "list mine"))


async def test_while_the_stream_is_down_the_list_comes_from_teleport(
        make_bot: MakeBot, client_for: ClientFactory, teleport: DevTeleport) -> None:
    bot = await make_bot()
    bot.watcher.backoff = Backoff(first=3600.0, maximum=3600.0, jitter=0.0)  # no reconnect during this test
    await teleport.stop()
    await eventually(lambda: _not_set(bot.watcher.synced))
    await teleport.start()
    request = await alice_asks_in_teleport(client_for)

    async def listed() -> str:
        # The bot's gRPC channel takes a moment to reconnect: until then the answer is "unreachable".
        while messages.short_id(request.id) not in (pending := await bot.says("bob", "list pending")):
            await asyncio.sleep(0.05)
        return pending

    pending = await asyncio.wait_for(listed(), 20)
    assert not bot.watcher.synced.is_set()  # no event and no resync brought it: Teleport was asked
    assert pending.startswith("Waiting for your review (1, page 1 of 1)")


def _not_set(event: asyncio.Event) -> None:
    assert not event.is_set()


async def test_a_role_taken_away_stops_an_approval_at_once_even_right_after_a_list(
        make_bot: MakeBot, client_for: ClientFactory, teleport: DevTeleport) -> None:
    bot = await make_bot()
    request = await alice_asks_in_teleport(client_for)
    await handled(bot, 2)
    assert messages.short_id(request.id) in await bot.says("bob", "list pending")  # bob's roles, just read
    bob = teleport.store.seed.users["bob"]
    teleport.store.seed.users["bob"] = replace(bob, roles=tuple(r for r in bob.roles if r != "dba-reviewer"))

    refused = await bot.says("bob", f"approve {request.id}")
    assert refused.startswith("You may not review this request")
    assert teleport.store.requests[request.id].state is RequestState.PENDING
    assert teleport.store.requests[request.id].reviews == ()


async def test_my_request_made_while_a_periodic_resync_lists_stays_in_the_list(
        make_bot: MakeBot, teleport: DevTeleport) -> None:
    bot = await make_bot()
    listing, answer = asyncio.Event(), asyncio.Event()

    class SlowListing(Held):
        """Lists at once, answers when told: the listing is older than what happens meanwhile."""

        async def list_requests(self) -> list[AccessRequest]:
            listed = await self.client.list_requests()
            listing.set()
            await answer.wait()
            return listed

    bot.held.hold()  # the request's event comes late, after the resync
    # Only the resync lists through it: the stream already runs on `held`.
    bot.watcher.client = SlowListing(bot.held.client)  # type: ignore[assignment]
    resync = asyncio.create_task(bot.watcher.resync())
    await listing.wait()
    await bot.says("alice", "request dba INC-4411 replica lag")
    answer.set()
    await resync
    assert messages.short_id(only_request(teleport).id) in await bot.says("bob", "list pending")


async def test_a_review_by_short_id_acts_on_the_request_as_teleport_has_it_now(
        make_bot: MakeBot, client_for: ClientFactory, teleport: DevTeleport) -> None:
    bot = await make_bot()
    request = await alice_asks_in_teleport(client_for)
    await handled(bot, 2)
    bot.held.hold()  # the bot's copy keeps the request pending
    await client_for("bob").submit_review(
        request.id, Review(author="bob", proposed_state=RequestState.DENIED, reason="not now"))

    answer = await bot.says("bob", f"approve {messages.short_id(request.id)}")
    denied = teleport.store.requests[request.id]
    assert answer == messages.already_resolved(denied, datetime.now(UTC), viewer="bob")  # "by you"
    assert denied.state is RequestState.DENIED and len(denied.reviews) == 1
