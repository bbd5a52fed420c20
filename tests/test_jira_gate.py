"""Ticket-gated requests over loopback: the devstack Jira answers, the devstack Teleport holds what is created.

A request citing an In-Progress ticket assigned to the requester is created with the key in its reason; any
other ticket (or none, or Jira down) is refused with the reason, and nothing reaches Teleport.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from chatops_bot.devstack.jira import DATA_CENTER, DevJira
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.integrations.jira.client import JiraClient, JiraProblem
from chatops_bot.integrations.jira.gate import TicketGate
from chatops_bot.integrations.jira.settings import JiraSettings
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import Timer
from commands.context import Context
from tests import jira_fixtures
from tests.conftest import Unchanged
from tests.jira_fixtures import RULE, cloud_settings, say

# The shared fixtures, taken into this module (where they override conftest's `seed`).
seed = jira_fixtures.seed
jira = jira_fixtures.jira
gated = jira_fixtures.gated


async def test_in_progress_ticket_assigned_to_the_requester_is_created_with_its_key(
        gated: Context, teleport: DevTeleport) -> None:
    reply = await say(gated, "request dba --ticket ops-1 replica lag")
    assert reply.ok, reply.text
    [created] = teleport.store.requests.values()
    assert created.reason == "OPS-1: replica lag"
    assert "Ticket OPS-1 (In Progress) checked." in reply.text


async def test_a_key_in_the_reason_is_the_ticket(gated: Context, teleport: DevTeleport) -> None:
    reply = await say(gated, "request dba MKT-1 is unrelated, OPS-1 replica lag")
    assert reply.ok, reply.text
    [created] = teleport.store.requests.values()
    assert created.reason == "MKT-1 is unrelated, OPS-1 replica lag"


@pytest.mark.parametrize(("text", "refusal"), [
    ("request dba --ticket OPS-2 again", "OPS-2 is Done; tickets must be In Progress. Nothing was requested."),
    ("request dba --ticket MKT-1 launch", "MKT-1 is in project MKT; dba requests need a ticket in OPS or INC."),
    ("request dba --ticket OPS-3 help bob", "OPS-3 is assigned to Bob Example, not you;"),
    ("request dba --ticket OPS-4 x", "OPS-4 is assigned to nobody;"),
    ("request dba --ticket OPS-99 x", "There is no Jira issue OPS-99 that the bot can see."),
    ("request dba replica lag", "Requests for dba need a Jira ticket (in OPS or INC, In Progress, assigned to you)"),
])
async def test_other_tickets_are_refused_with_the_reason_and_nothing_reaches_teleport(
        gated: Context, teleport: DevTeleport, text: str, refusal: str) -> None:
    with Unchanged(teleport):
        reply = await say(gated, text)
    assert not reply.ok and refusal in reply.text
    assert not teleport.store.requests


async def test_the_issue_type_must_be_one_the_rule_names(
        make_context: Callable[..., Context], jira: DevJira, teleport: DevTeleport, bot: TeleportClient) -> None:
    settings = cloud_settings(jira.url, require_ticket=[{**RULE, "issue_types": ["Incident", "Change"]}])
    ctx = dataclasses.replace(make_context(), gates=(TicketGate(settings, JiraClient(settings), bot.get_user),))
    with Unchanged(teleport):
        refused = await say(ctx, "request dba --ticket OPS-6 x")
    assert refused.text == ("OPS-6 is of type Task; dba requests need an issue of type Incident or Change. "
                            "Nothing was requested.")
    assert (await say(ctx, "request dba --ticket OPS-1 x")).ok


async def test_jira_text_in_a_refusal_is_neutralised(gated: Context) -> None:
    reply = await say(gated, "request dba --ticket OPS-5 x")
    assert not reply.ok and "not you" in reply.text
    assert "<!channel>" not in reply.text and "*Mallory*" not in reply.text


async def test_jira_down_is_a_clear_refusal_within_the_deadline(
        make_context: Callable[..., Context], jira: DevJira, teleport: DevTeleport, bot: TeleportClient) -> None:
    settings = cloud_settings(jira.url, timeout=timedelta(milliseconds=300))
    ctx = dataclasses.replace(make_context(), gates=(TicketGate(settings, JiraClient(settings), bot.get_user),))
    jira.hang()
    started = time.monotonic()
    with Unchanged(teleport):
        reply = await say(ctx, "request dba --ticket OPS-1 replica lag")
    elapsed = time.monotonic() - started
    jira.release()
    assert not reply.ok
    assert "Ticket OPS-1 could not be checked (Jira did not answer within 0.3 s" in reply.text
    assert elapsed < 1.5


async def test_roles_no_rule_covers_ask_jira_nothing(
        make_context: Callable[..., Context], jira: DevJira, teleport: DevTeleport, bot: TeleportClient) -> None:
    settings = cloud_settings(jira.url, require_ticket=[{**RULE, "roles": ["prod-*"]}])
    ctx = dataclasses.replace(make_context(), gates=(TicketGate(settings, JiraClient(settings), bot.get_user),))
    reply = await say(ctx, "request dba replica lag")
    assert reply.ok, reply.text
    assert jira.requests == []


async def test_help_mentions_the_ticket_only_when_configured(
        gated: Context, make_context: Callable[..., Context]) -> None:
    with_jira = (await say(gated, "help request")).text
    without = (await say(make_context(), "help request")).text
    assert "--ticket KEY" in with_jira and "Requests for `dba*` need a ticket: in OPS or INC" in with_jira
    assert "--ticket" not in without
    refused = await say(make_context(), "request dba --ticket OPS-1 x")
    assert not refused.ok and "checks no tickets" in refused.text


class VirtualTimer(Timer):
    """Time that passes only when slept: the waits are recorded, none is spent."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_rate_limits_are_waited_out_on_the_timer_within_the_deadline(jira: DevJira) -> None:
    timer = VirtualTimer()
    client = JiraClient(cloud_settings(jira.url, timeout="60s"), timer=timer)
    jira.rate_limit(30, 20)
    ticket = await client.ticket("OPS-1")
    assert ticket is not None and ticket.status == "In Progress"
    assert timer.slept == [30.0, 20.0]
    jira.rate_limit(30, 40)
    with pytest.raises(JiraProblem, match="rate limiting the bot for 40 s"):
        await client.ticket("OPS-1")  # 30 s waited, 40 more would pass the 60 s deadline: no wait at all
    assert timer.slept == [30.0, 20.0, 30.0]


async def test_data_center_signs_in_with_a_personal_access_token() -> None:
    jira = DevJira(deployment=DATA_CENTER)
    await jira.start()
    try:
        jira.add_issue("OPS", "Replica lag", status="In Progress", assignee="alice")
        settings = {"url": jira.url, "deployment": "data_center", "timeout": "2s"}
        good = JiraClient(JiraSettings.model_validate({**settings, "personal_access_token": "devstack-jira-pat"}))
        bad = JiraClient(JiraSettings.model_validate({**settings, "personal_access_token": "stolen"}))
        ticket = await good.ticket("OPS-1")
        with pytest.raises(JiraProblem, match="refused the bot's credentials") as refused:
            await bad.ticket("OPS-1")
    finally:
        await jira.stop()
    assert ticket is not None and ticket.assignee_email == "alice@example.com"
    assert "stolen" not in str(refused.value)


def test_settings_ask_for_the_credentials_of_the_deployment() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as cloud:
        JiraSettings.model_validate({"url": "https://example.atlassian.net", "personal_access_token": "x"})
    with pytest.raises(ValidationError) as center:
        JiraSettings.model_validate({"url": "https://jira.example.com", "deployment": "data_center"})
    assert "required for deployment cloud" in str(cloud.value) and "is for data_center" in str(cloud.value)
    assert "required for deployment data_center" in str(center.value)
