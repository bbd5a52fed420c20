"""A cited ticket resolved while its access is active: the requester is told by DM, once, across replicas;
with `end_with_ticket`, asked to drop the access (never ended silently)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from starlette.applications import Starlette

from chatops_bot.devstack.jira import DevJira
from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.directory import TeleportDirectory
from chatops_bot.integrations.jira.client import JiraClient
from chatops_bot.integrations.jira.webhook import JiraPeople, JiraWebhook
from chatops_bot.notify import Notifier
from chatops_bot.teleport.client import TeleportClient
from commands.context import Context
from commands.messages import stamp
from commands.model import AccessRequest
from commands.reply import RequestCard
from tests import jira_fixtures
from tests.conftest import FixedClock
from tests.jira_fixtures import cloud_settings, say

jira, seed = jira_fixtures.jira, jira_fixtures.seed
SECRET = "a-webhook-secret-of-at-least-32-characters"


class ChatDMs:
    """The notifier's way out to a chat platform, in memory: the DMs it was asked to send."""

    platform = "slack"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def dm(self, chat_user_id: str, text: str, card: RequestCard | None = None) -> str:
        self.sent.append((chat_user_id, text))
        return "ts"

    async def post_card(self, recipient: str, card: RequestCard) -> str:
        raise AssertionError("no cards here")

    async def update_card(self, ref: str, card: RequestCard) -> None:
        raise AssertionError("no cards here")

    async def reply_in_thread(self, ref: str, text: str) -> None:
        raise AssertionError("no cards here")

    async def resolve_recipient(self, name: str) -> str | None:
        return None

    async def time_zone(self, chat_user_id: str) -> str:
        return "Europe/Paris"


@pytest.fixture
async def listen(jira: DevJira, bot: TeleportClient, make_context: Callable[..., Context]
                 ) -> AsyncIterator[Callable[..., Awaitable[ChatDMs]]]:
    """`listen(end_with_ticket=…)`: one more bot process hearing Jira's webhook; the DMs it sends."""
    servers: list[LoopbackServer] = []

    async def start(*, end_with_ticket: bool = False) -> ChatDMs:
        settings = cloud_settings(jira.url, webhook={"secret": SECRET}, end_with_ticket=end_with_ticket)
        ctx = dataclasses.replace(make_context(), directory=JiraPeople({}, bot))
        service = JiraWebhook(secret=SECRET.encode(), mirror=None, ctx=ctx, jira=JiraClient(settings),
                              teleport=bot, end_with_ticket=end_with_ticket)
        dms = ChatDMs()
        people = TeleportDirectory(bot, traits={"slack": "slack_user_id"}, user_map={})
        service.attach(Notifier(bot, [dms], routing={}, chat_ids=people, clock=FixedClock()))
        server = LoopbackServer(Starlette(routes=list(service.routes())))
        servers.append(server)
        jira.add_webhook(f"http://127.0.0.1:{await server.start()}/jira/webhook", SECRET)
        return dms

    yield start
    for server in servers:
        await server.stop()


async def approved_citing(ticket: str, bot: TeleportClient, ctx: Context) -> AccessRequest:
    request = await bot.create_request(user="alice", roles=["dba"], reason=f"{ticket}: replica lag")
    assert (await say(ctx, f"approve {request.id}", who="bob")).ok
    return await bot.get_request(request.id)


async def test_the_requester_is_told_once_across_replicas(
        jira: DevJira, bot: TeleportClient, make_context: Callable[..., Context], listen: Callable[..., Awaitable[ChatDMs]]
) -> None:
    first, second = await listen(), await listen()
    request = await approved_citing("OPS-1", bot, make_context())
    assert request.access_expires is not None
    jira.set_status("OPS-1", "Done", by="alice")
    jira.set_status("OPS-2", "Won't Do", by="alice")  # a ticket nobody's access cites
    await jira.delivered()
    jira.set_status("OPS-1", "In Progress", by="alice")
    jira.set_status("OPS-1", "Done", by="alice")  # resolved again: already told
    await jira.delivered()
    told = first.sent + second.sent
    expected = f"OPS-1 was resolved; your dba access stays until {stamp(request.access_expires, 'Europe/Paris')}."
    assert told == [("U0ALICE", expected)]


async def test_end_with_ticket_asks_the_requester_to_drop_the_access(
        jira: DevJira, bot: TeleportClient, make_context: Callable[..., Context], listen: Callable[..., Awaitable[ChatDMs]]
) -> None:
    dms = await listen(end_with_ticket=True)
    request = await approved_citing("OPS-1", bot, make_context())
    jira.set_status("OPS-1", "Done", by="alice")
    await jira.delivered()
    [(_, text)] = dms.sent
    assert text.startswith("OPS-1 was resolved: please drop your dba access now")
    assert f"tsh request drop {request.id}" in text
    assert (await bot.get_request(request.id)).state.name == "APPROVED"  # asked, never ended silently
