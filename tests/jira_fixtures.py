"""Fixtures the Jira tests share: the devstack Jira with its tickets, the demo cluster with alice's e-mail
trait, and a command context whose request gate is the Jira ticket gate."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.jira import DEFAULT_USERS, DevJira, JiraUser
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.integrations.jira.client import JiraClient
from chatops_bot.integrations.jira.gate import TicketGate
from chatops_bot.integrations.jira.settings import JiraSettings
from chatops_bot.teleport.client import TeleportClient
from commands.context import Context
from commands.dispatch import dispatch
from commands.model import ChatUser
from commands.reply import Invocation, Reply

MALLORY = JiraUser("5b10ac8d82e05b22cc7d4e99", "mallory", "mallory@example.com", "<!channel> *Mallory*")
RULE = {"roles": ["dba*"], "projects": ["OPS", "INC"], "statuses": ["In Progress"], "assigned_to_requester": True}


def cloud_settings(url: str, **overrides: Any) -> JiraSettings:
    return JiraSettings.model_validate({"url": url, "email": "chatops-bot@example.com",
                                        "api_token": "devstack-jira-api-token", "timeout": "2s",
                                        "require_ticket": [RULE], **overrides})


@pytest.fixture
def seed() -> Seed:
    """The demo cluster, alice with her e-mail as a Teleport trait (as SSO connectors set it)."""
    return load_seed(demo_seed_text().replace("traits: {slack_user_id: [U0ALICE]",
                                              "traits: {email: [alice@example.com], slack_user_id: [U0ALICE]"))


@pytest.fixture
async def jira() -> AsyncIterator[DevJira]:
    server = DevJira(users=(*DEFAULT_USERS, MALLORY))
    await server.start()
    server.add_issue("OPS", "Replica lag on the primary", issue_type="Incident", status="In Progress",
                     assignee="alice")  # OPS-1
    server.add_issue("OPS", "Old outage", status="Done", assignee="alice")  # OPS-2
    server.add_issue("OPS", "Bob's change", status="In Progress", assignee="bob")  # OPS-3
    server.add_issue("OPS", "Nobody's", status="In Progress")  # OPS-4
    server.add_issue("OPS", "Mallory's", status="In Progress", assignee="mallory")  # OPS-5
    server.add_issue("MKT", "Launch", status="In Progress", assignee="alice")  # MKT-1
    server.add_issue("OPS", "Alice's chore", status="In Progress", assignee="alice")  # OPS-6, a Task
    yield server
    await server.stop()


@pytest.fixture
def gated(make_context: Callable[..., Context], jira: DevJira, bot: TeleportClient) -> Context:
    settings = cloud_settings(jira.url)
    return dataclasses.replace(make_context(), gates=(TicketGate(settings, JiraClient(settings), bot.get_user),))


async def say(ctx: Context, text: str, who: str = "alice") -> Reply:
    return await dispatch(Invocation(platform="console", actor=ChatUser("console", who, who), text=text), ctx)
