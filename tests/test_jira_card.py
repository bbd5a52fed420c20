"""The card shows the ticket a request is for: its key as a link, its summary and status as Jira has them
when the card is drawn, neutralised like any user text."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

from chatops_bot.adapters.mattermost.render import Renderer
from chatops_bot.adapters.slack.render import card_blocks
from chatops_bot.devstack.jira import DevJira
from chatops_bot.integrations.jira.card import TicketCard
from chatops_bot.integrations.jira.client import JiraClient
from chatops_bot.integrations.jira.gate import TicketGate
from chatops_bot.notify import Notifier
from chatops_bot.teleport.client import TeleportClient
from commands.context import Context
from commands.reply import RequestCard
from tests import jira_fixtures
from tests.conftest import FixedClock
from tests.jira_fixtures import cloud_settings, say

# The shared fixtures, taken into this module (where they override conftest's `seed`).
seed = jira_fixtures.seed
jira = jira_fixtures.jira


def ticket_line(card: RequestCard) -> tuple[str, str]:
    [field] = [f for f in card.fields if f.label == "Ticket"]
    return field.value, field.url


def with_card(make_context: Callable[..., Context], jira: DevJira, bot: TeleportClient, **overrides: object) -> Context:
    settings = cloud_settings(jira.url, **overrides)
    client = JiraClient(settings)
    return dataclasses.replace(make_context(), gates=(TicketGate(settings, client, bot.get_user),),
                               details=(TicketCard(settings, client),))


async def test_the_card_shows_the_ticket_as_jira_has_it_now(
        make_context: Callable[..., Context], jira: DevJira, bot: TeleportClient) -> None:
    ctx = with_card(make_context, jira, bot)
    created = await say(ctx, "request dba --ticket OPS-1 replica lag")
    assert created.ok, created.text
    value, url = ticket_line(created.cards[0])
    assert value == "OPS-1: Replica lag on the primary (In Progress)"
    assert url == f"{jira.url}/browse/OPS-1"
    jira.set_status("OPS-1", "Done")
    shown = await say(ctx, f"show {created.cards[0].request.id}")
    assert ticket_line(shown.cards[0])[0].endswith("(Done)")


async def test_the_ticket_is_a_link_on_slack_and_mattermost_and_hostile_summaries_are_defused(
        make_context: Callable[..., Context], jira: DevJira, bot: TeleportClient) -> None:
    jira.issues["OPS-1"].summary = "<!channel> @here [click](https://evil.example) *now*"
    card = (await say(with_card(make_context, jira, bot), "request dba --ticket OPS-1 x")).cards[0]
    slack = str(card_blocks(card))
    mattermost = str(Renderer("https://bot.example.com/mattermost/actions", b"k" * 32).card_post(card))
    assert f"<{jira.url}/browse/OPS-1|OPS-1: " in slack and "<!channel>" not in slack
    assert f"]({jira.url}/browse/OPS-1)" in mattermost
    assert "(https://evil.example)" not in mattermost and "@here" not in mattermost


async def test_keys_outside_the_rules_projects_are_no_ticket(
        make_context: Callable[..., Context], jira: DevJira, bot: TeleportClient) -> None:
    created = await say(with_card(make_context, jira, bot), "request dba --ticket OPS-1 UTF-8 MKT-1 again")
    assert [f.label for f in created.cards[0].fields].count("Ticket") == 1
    assert ticket_line(created.cards[0])[0].startswith("OPS-1: ")


async def test_jira_down_leaves_the_key_and_its_link_on_the_card(
        make_context: Callable[..., Context], jira: DevJira, bot: TeleportClient) -> None:
    ctx = with_card(make_context, jira, bot, timeout=timedelta(milliseconds=300))
    created = await say(ctx, "request dba --ticket OPS-1 x")
    jira.hang()
    redrawn = await ctx.current_card(created.cards[0].request.id)
    jira.release()
    assert redrawn is not None and ticket_line(redrawn) == ("OPS-1", f"{jira.url}/browse/OPS-1")


async def test_channel_cards_from_the_notifier_show_the_ticket(
        make_context: Callable[..., Context], jira: DevJira, bot: TeleportClient) -> None:
    ctx = with_card(make_context, jira, bot)
    request = (await say(ctx, "request dba --ticket OPS-1 x")).cards[0].request
    notifier = Notifier(bot, [], routing={}, chat_ids=ctx.directory, clock=FixedClock(),  # type: ignore[arg-type]
                        details=ctx.details)
    assert ticket_line(await notifier.detailed(request))[0] == "OPS-1: Replica lag on the primary (In Progress)"
