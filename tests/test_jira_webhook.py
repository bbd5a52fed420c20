"""Deciding from Jira: a verified webhook moving a mirrored issue becomes a review by the mapped Teleport
user through the same command code as a chat click; a forged one does nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.applications import Starlette

from chatops_bot.devstack.jira import DEFAULT_USERS, DevJira
from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.integrations.jira.client import JiraClient
from chatops_bot.integrations.jira.mirror import JiraMirror, label
from chatops_bot.integrations.jira.webhook import PATH, JiraPeople, JiraWebhook
from chatops_bot.teleport.client import TeleportClient
from commands.context import Context
from commands.model import AccessRequest, RequestState
from tests import jira_fixtures
from tests.jira_fixtures import cloud_settings

jira = jira_fixtures.jira
SECRET = "a-webhook-secret-of-at-least-32-characters"
ACCOUNTS = {u.name: u.account_id for u in DEFAULT_USERS}
MIRROR = {"project": "OPS", "approved": "Done", "denied": "Won't Do"}


@pytest.fixture
async def hooked(jira: DevJira, bot: TeleportClient, make_context: Callable[..., Context]
                 ) -> AsyncIterator[tuple[str, JiraMirror]]:
    """The bot's webhook served on loopback and registered in Jira with the secret; bob and alice linked."""
    settings = cloud_settings(jira.url, mirror=MIRROR, webhook={"secret": SECRET, "users": {
        ACCOUNTS["bob"]: "bob", ACCOUNTS["alice"]: "alice"}})
    assert settings.mirror is not None and settings.webhook is not None
    client = JiraClient(settings)
    people = JiraPeople(dict(settings.webhook.users), bot)
    service = JiraWebhook(secret=SECRET.encode(), mirror=settings.mirror, jira=client, teleport=bot,
                          ctx=dataclasses.replace(make_context(), directory=people))
    server = LoopbackServer(Starlette(routes=list(service.routes())))
    url = f"http://127.0.0.1:{await server.start()}{PATH}"
    jira.add_webhook(url, SECRET)
    yield url, JiraMirror(settings.mirror, client, bot)
    await server.stop()


async def mirrored(bot: TeleportClient, mirror: JiraMirror, jira: DevJira) -> tuple[AccessRequest, str]:
    request = await bot.create_request(user="alice", roles=["dba"], reason="replica lag")
    await mirror.sync(request)
    [key] = [k for k, issue in jira.issues.items() if label(request.id) in issue.labels]
    return request, key


async def test_a_verified_move_is_a_review_by_the_mapped_user(
        jira: DevJira, bot: TeleportClient, hooked: tuple[str, JiraMirror]) -> None:
    request, key = await mirrored(bot, hooked[1], jira)
    jira.set_status(key, "Done", by="bob")
    await jira.delivered()
    approved = await bot.get_request(request.id)
    assert approved.state is RequestState.APPROVED
    [review] = approved.reviews
    assert review.author == "bob" and key in review.reason
    assert jira.issues[key].comments == []


async def test_the_reviewer_check_still_decides_and_its_refusal_is_written_on_the_issue(
        jira: DevJira, bot: TeleportClient, hooked: tuple[str, JiraMirror]) -> None:
    request, key = await mirrored(bot, hooked[1], jira)
    jira.set_status(key, "Done", by="alice")  # her own request: a Jira permission is not a Teleport one
    await jira.delivered()
    assert (await bot.get_request(request.id)).state is RequestState.PENDING
    [comment] = jira.issues[key].comments
    assert comment["body"].startswith("Not approved: ") and "your own" in comment["body"]


async def test_the_bots_own_moves_and_unlinked_users_decide_nothing(
        jira: DevJira, bot: TeleportClient, hooked: tuple[str, JiraMirror]) -> None:
    request, key = await mirrored(bot, hooked[1], jira)
    jira.set_status(key, "Done")  # the bot's own account
    await jira.delivered()
    assert (await bot.get_request(request.id)).state is RequestState.PENDING
    assert jira.issues[key].comments == []


async def test_a_forged_or_unsigned_webhook_does_nothing(
        jira: DevJira, bot: TeleportClient, hooked: tuple[str, JiraMirror]) -> None:
    request, key = await mirrored(bot, hooked[1], jira)
    body = (b'{"webhookEvent": "jira:issue_updated", "user": {"accountId": "%s"}, "issue": {"key": "%s", '
            b'"fields": {"labels": ["%s"]}}, "changelog": {"items": [{"field": "status", "toString": "Done"}]}}'
            % (ACCOUNTS["bob"].encode(), key.encode(), label(request.id).encode()))
    forged = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    async with httpx.AsyncClient() as http:
        answers = [await http.post(hooked[0], content=body, headers=headers) for headers in (
            {"X-Hub-Signature": forged}, {}, {"X-Hub-Signature": "sha256="})]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert (await bot.get_request(request.id)).state is RequestState.PENDING


async def test_a_stale_or_replayed_signed_delivery_does_nothing(
        jira: DevJira, bot: TeleportClient, hooked: tuple[str, JiraMirror]) -> None:
    """The signature covers the body and its `timestamp`, not when it is sent: older than 5 minutes, or the
    same body again, and it is refused."""
    request, key = await mirrored(bot, hooked[1], jira)

    def signed(timestamp: int) -> tuple[bytes, dict[str, str]]:
        body = (b'{"timestamp": %d, "webhookEvent": "jira:issue_updated", "user": {"accountId": "%s"}, '
                b'"issue": {"key": "%s", "fields": {"labels": ["%s"]}}, '
                b'"changelog": {"items": [{"field": "status", "toString": "Done"}]}}'
                % (timestamp, ACCOUNTS["bob"].encode(), key.encode(), label(request.id).encode()))
        return body, {"X-Hub-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}

    async with httpx.AsyncClient() as http:
        old_body, old_headers = signed(int((time.time() - 600) * 1000))
        stale = await http.post(hooked[0], content=old_body, headers=old_headers)
        assert stale.status_code == 400
        assert (await bot.get_request(request.id)).state is RequestState.PENDING
        body, headers = signed(int(time.time() * 1000))
        first = await http.post(hooked[0], content=body, headers=headers)
        assert first.status_code == 204
        assert (await bot.get_request(request.id)).state is RequestState.APPROVED
        replayed = await http.post(hooked[0], content=body, headers=headers)
    assert replayed.status_code == 409
    assert len((await bot.get_request(request.id)).reviews) == 1


async def test_serve_wires_the_gate_the_mirror_and_the_webhook(jira: DevJira, bot: TeleportClient) -> None:
    from chatops_bot import runtime
    from chatops_bot.config import Settings
    from chatops_bot.watcher import Follower

    settings = Settings.model_validate({
        "teleport": {"addr": "127.0.0.1:3025", "identity_file": "/dev/null"},
        "jira": {"url": jira.url, "email": "chatops-bot@example.com", "api_token": "devstack-jira-api-token",
                 "mirror": MIRROR, "webhook": {"secret": SECRET}}})
    served = runtime.services(settings, bot)
    [webhook] = [s for s in served if isinstance(s, JiraWebhook)]
    assert [r.path for r in webhook.routes()] == [PATH]
    watcher = next(s for s in served if s.name == "watcher").watcher  # type: ignore[attr-defined]
    assert any(isinstance(o, Follower) and isinstance(o.lanes.notifier, JiraMirror) for o in watcher.observers)
