"""PagerDuty on-call through the shared `AutomaticReviewer`, end to end over loopback: the devstack Teleport,
PagerDuty, Slack and Mattermost. An on-call requester's request is approved once, as the bot's review with
the rule in the reason and the card saying why; an off-call one waits for a person; PagerDuty down leaves
the request pending until PagerDuty answers; two bot processes review once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ClientFactory, FixedClock
from test_automatic import auto_record
from test_watcher import EXTRA_SEED, MakeBot, eventually, holds, make_bot, one_card_each, platforms, settled

from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.pagerduty import TOKEN, DevPagerDuty, demo_account
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.decider import PagerDutyDecider
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.teleport.client import TeleportClient
from commands.model import AccessRequest, RequestState

__all__ = ["make_bot", "platforms"]

REASON = "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1 (rule dba-primary: dba)"
CARD = "Auto-approved: alice is on call for DBA primary"


@pytest.fixture
def seed() -> Seed:
    """The demo cluster with e-mail traits, and a bot allowed to review dba by itself."""
    text = demo_seed_text()
    for name in ("alice", "bob", "carol"):
        text = text.replace(f"traits: {{slack_user_id: [U0{name.upper()}]",
                            f"traits: {{email: [{name}@example.com], slack_user_id: [U0{name.upper()}]")
    text = text.replace("roles: [chatops-bot]", "roles: [chatops-bot, chatops-bot-automatic]")
    automatic = ("\n---\nkind: role\nversion: v7\nmetadata: {name: chatops-bot-automatic}\n"
                 "spec: {allow: {review_requests: {roles: [dba]}}}\n")
    return load_seed(text + EXTRA_SEED + automatic)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
async def pagerduty(clock: FixedClock) -> AsyncIterator[DevPagerDuty]:
    server = DevPagerDuty(clock=clock.now)
    demo_account(server, clock.now())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def decider(pagerduty: DevPagerDuty, bot: TeleportClient) -> AsyncIterator[Callable[[], PagerDutyDecider]]:
    clients: list[PagerDutyClient] = []
    settings = PagerDutySettings.model_validate({"token": TOKEN, "timeout": "2s", "auto_approve": [
        {"name": "dba-primary", "roles": ["dba"], "schedules": ["P1X2Y3"], "max_level": 1}]})

    def make() -> PagerDutyDecider:
        clients.append(PagerDutyClient(pagerduty.root_url, TOKEN, deadline=2.0))
        return PagerDutyDecider(settings, PagerDutyAccount(clients[-1]), bot)

    yield make
    for client in clients:
        await client.close()


async def request(client_for: ClientFactory, user: str = "alice") -> AccessRequest:
    return await client_for(user).create_request(user=user, roles=["dba"], reason="INC-7 replica lag")


def stored(teleport: DevTeleport, request_id: str) -> AccessRequest:
    return teleport.store.requests[request_id]


async def test_an_on_call_requester_is_approved_once_with_the_rule_in_the_reason(
        make_bot: MakeBot, decider: Callable[[], PagerDutyDecider], teleport: DevTeleport,
        client_for: ClientFactory, platforms) -> None:
    bot = await make_bot(deciders=[decider()])
    alices = await request(client_for)
    await eventually(holds(lambda: stored(teleport, alices.id).state is RequestState.APPROVED))
    assert [(r.author, r.reason) for r in stored(teleport, alices.id).reviews] == [("chatops-bot", REASON)]

    def card_says_why() -> None:
        slack_card, mm_post = one_card_each(*platforms, alices.id)
        assert CARD in json.dumps(slack_card["blocks"]) and CARD in json.dumps(mm_post["props"])

    await eventually(card_says_why)
    await settled(bot)


async def test_an_off_call_requester_waits_for_a_person_and_the_card_says_nothing_of_pagerduty(
        make_bot: MakeBot, decider: Callable[[], PagerDutyDecider], teleport: DevTeleport,
        client_for: ClientFactory, clock: FixedClock, platforms) -> None:
    clock.advance(timedelta(hours=13))  # alice's shift is over
    bot = await make_bot(deciders=[decider()])
    alices = await request(client_for)
    await eventually(lambda: one_card_each(*platforms, alices.id))
    await settled(bot)
    assert stored(teleport, alices.id).state is RequestState.PENDING and stored(teleport, alices.id).reviews == ()
    slack_card, mm_post = one_card_each(*platforms, alices.id)
    assert "PagerDuty" not in json.dumps(slack_card["blocks"]) + json.dumps(mm_post["props"])


async def test_pagerduty_down_leaves_the_request_pending_until_it_answers(
        make_bot: MakeBot, decider: Callable[[], PagerDutyDecider], teleport: DevTeleport,
        pagerduty: DevPagerDuty, client_for: ClientFactory) -> None:
    pagerduty.go_down()
    await make_bot(deciders=[decider()])
    alices = await request(client_for)
    await eventually(holds(lambda: len([p for _, p in pagerduty.requests if p == "/users"]) >= 2))
    assert stored(teleport, alices.id).state is RequestState.PENDING and stored(teleport, alices.id).reviews == ()
    pagerduty.go_down(False)
    await eventually(holds(lambda: stored(teleport, alices.id).state is RequestState.APPROVED))
    assert [r.reason for r in stored(teleport, alices.id).reviews] == [REASON]


async def test_two_bot_processes_review_once(make_bot: MakeBot, decider: Callable[[], PagerDutyDecider],
                                             teleport: DevTeleport, client_for: ClientFactory) -> None:
    await make_bot(deciders=[decider()])
    await make_bot(deciders=[decider()])
    alices = await request(client_for)
    await eventually(holds(lambda: stored(teleport, alices.id).state is RequestState.APPROVED))
    await eventually(holds(lambda: "done" in auto_record(teleport, alices.id)))
    assert len(stored(teleport, alices.id).reviews) == 1
