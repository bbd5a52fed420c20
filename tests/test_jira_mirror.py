"""The mirror over loopback: one Jira issue per request across restarts and replicas, a comment per review,
a transition per outcome, against the devstack Teleport (plugin data) and the devstack Jira."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from chatops_bot.devstack.jira import DevJira
from chatops_bot.integrations.jira.client import JiraClient
from chatops_bot.integrations.jira.mirror import ISSUE, JiraMirror, label
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import Later
from commands.context import Context
from commands.model import AccessRequest
from tests import jira_fixtures
from tests.jira_fixtures import cloud_settings, say

jira = jira_fixtures.jira
MIRROR = {"project": "OPS", "issue_type": "Task", "approved": "Done", "denied": "Won't Do", "expired": "Won't Do"}


def replica(jira: DevJira, bot: TeleportClient, **settings: object) -> JiraMirror:
    """A bot process of its own: its own Jira client and process identity, the same Teleport."""
    config = cloud_settings(jira.url, mirror=MIRROR, **settings)
    assert config.mirror is not None
    return JiraMirror(config.mirror, JiraClient(config), bot, web_proxy_addr="teleport.example.com:443")


def issues_of(jira: DevJira, request_id: str) -> list[str]:
    return [key for key, issue in jira.issues.items() if label(request_id) in issue.labels]


async def alice_asks(bot: TeleportClient) -> AccessRequest:
    return await bot.create_request(user="alice", roles=["dba"], reason="replica lag")


async def test_one_issue_per_request_across_restarts_and_replicas(jira: DevJira, bot: TeleportClient) -> None:
    request = await alice_asks(bot)
    first, second = replica(jira, bot), replica(jira, bot)
    outcomes = await asyncio.gather(first.sync(request), second.sync(request), return_exceptions=True)
    assert all(o is None or isinstance(o, Later) for o in outcomes), outcomes
    await second.sync(request)
    await replica(jira, bot).sync(request)  # a restart
    [key] = issues_of(jira, request.id)
    assert (await bot.get_plugin_data(request.id))[ISSUE] == key
    issue = jira.issues[key]
    assert issue.summary == "Access request from alice for dba" and issue.status == "To Do"
    assert request.id in issue.description and f"https://teleport.example.com:443/web/requests/{request.id}" in issue.description


async def test_a_process_that_died_creating_the_issue_costs_no_second_one(
        jira: DevJira, bot: TeleportClient) -> None:
    request = await alice_asks(bot)
    await replica(jira, bot).sync(request)
    [key] = issues_of(jira, request.id)
    # As if that process had died after creating the issue, before recording it, 1000 s ago.
    await bot.update_plugin_data(request.id, set={ISSUE: f"creating:dead@{int(time.time()) - 1000}"},
                                 expect={ISSUE: key})
    await replica(jira, bot).sync(request)
    assert issues_of(jira, request.id) == [key]
    assert (await bot.get_plugin_data(request.id))[ISSUE] == key


async def test_each_review_is_a_comment_and_each_outcome_a_transition(
        jira: DevJira, bot: TeleportClient, make_context: Callable[..., Context]) -> None:
    ctx = make_context()
    approved, denied = await alice_asks(bot), await bot.create_request(user="alice", roles=["dba"], reason="x")
    mirror = replica(jira, bot)
    await mirror.sync(approved)
    await mirror.sync(denied)
    assert (await say(ctx, f"approve {approved.id} lag confirmed", who="bob")).ok
    assert (await say(ctx, f"deny {denied.id} not now", who="bob")).ok
    for request_id in (approved.id, denied.id):
        current = await bot.get_request(request_id)
        await mirror.sync(current)
        await replica(jira, bot).sync(current)  # a second process, or a second event: nothing twice
    [yes], [no] = issues_of(jira, approved.id), issues_of(jira, denied.id)
    assert [c["body"] for c in jira.issues[yes].comments] == ["bob approved the request: lag confirmed"]
    assert [c["body"] for c in jira.issues[no].comments] == ["bob denied the request: not now"]
    assert (jira.issues[yes].status, jira.issues[no].status) == ("Done", "Won't Do")


async def test_requests_decided_before_the_mirror_saw_them_get_no_issue(
        jira: DevJira, bot: TeleportClient, make_context: Callable[..., Context]) -> None:
    request = await alice_asks(bot)
    assert (await say(make_context(), f"approve {request.id}", who="bob")).ok
    await replica(jira, bot).sync(await bot.get_request(request.id))
    assert issues_of(jira, request.id) == []


async def test_a_request_gone_while_pending_moves_its_issue_to_expired(jira: DevJira, bot: TeleportClient) -> None:
    request = await alice_asks(bot)
    mirror = replica(jira, bot)
    await mirror.sync(request)
    await bot.delete_request(request.id)
    await mirror.closed(request.id)
    [key] = issues_of(jira, request.id)
    assert jira.issues[key].status == "Won't Do"


async def test_jira_down_is_retried_later_and_records_nothing_half_done(jira: DevJira, bot: TeleportClient) -> None:
    request = await alice_asks(bot)
    mirror = replica(jira, bot, timeout=timedelta(milliseconds=300))
    jira.hang()
    with pytest.raises(Later, match="Jira did not answer"):
        await mirror.sync(request)
    jira.release()
    assert issues_of(jira, request.id) == []
    await replica(jira, bot).sync(request)  # the claim of the process that gave up does not block the next
    assert len(issues_of(jira, request.id)) == 1
