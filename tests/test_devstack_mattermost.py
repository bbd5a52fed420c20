"""The Mattermost stand-in, driven over loopback by a real `AsyncTypedDriver` as the bot will drive it."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import (
    InvalidMattermostError,
    InvalidOrMissingParameters,
    MattermostError,
    NoAccessTokenProvided,
    NotEnoughPermissions,
    ResourceNotFound,
    TooManyRequests,
    UnknownMattermostError,
)

from chatops_bot.devstack.mattermost import (
    BOT_USER_ID,
    MAX_POST_RUNES,
    DevMattermost,
    MMChannel,
    MMTeam,
    MMUser,
    new_id,
)


def _id(prefix: str) -> str:
    return prefix.ljust(26, "0")


TEAM = MMTeam(_id("team"), "ops", "Ops")
ALICE = MMUser(_id("alice"), "alice", "alice@example.com", token="alice-token")
BOB = MMUser(_id("bob"), "bob", "Bob@Example.com")
ACCESS = MMChannel(_id("chanaccess"), TEAM.id, "access-requests")
SECRET = MMChannel(_id("chansecret"), TEAM.id, "secret", "P", frozenset({ALICE.id}))
ACTIONS_URL = "http://127.0.0.1:9/mattermost/actions"
CARD = {
    "attachments": [{
        "text": "alice requests **admin**",
        "actions": [
            {"id": "approve", "type": "button", "name": "Approve", "style": "success",
             "integration": {"url": ACTIONS_URL, "context": {"request_id": "r1", "secret": "s3cr3t"}}},
            {"type": "button", "name": "Deny", "style": "danger",
             "integration": {"url": ACTIONS_URL, "context": {"request_id": "r1", "action": "deny"}}},
        ],
    }],
}  # fmt: skip


@pytest.fixture
async def mm() -> AsyncIterator[DevMattermost]:
    server = DevMattermost(team=TEAM, users=[ALICE, BOB], channels=[ACCESS, SECRET], team_admins=[BOT_USER_ID])
    await server.start()
    yield server
    await server.stop()


def _driver(mm: DevMattermost, token: str) -> AsyncTypedDriver:
    options = {"url": "127.0.0.1", "port": mm.port, "scheme": "http", "token": token, "request_timeout": 10}
    return AsyncTypedDriver(options)


@pytest.fixture
async def bot(mm: DevMattermost) -> AsyncIterator[AsyncTypedDriver]:
    driver = _driver(mm, mm.bot_token)
    await driver.login()
    yield driver
    await driver.close()


def _statuses(mm: DevMattermost, method: str, path: str) -> list[int]:
    return [c.status for c in mm.calls if c.method == method and c.path == path]


async def test_login_resolves_the_bot_user(mm: DevMattermost, bot: AsyncTypedDriver) -> None:
    assert mm.url == f"http://127.0.0.1:{mm.port}"
    assert (bot.client.userid, bot.client.username) == (BOT_USER_ID, "chatops-bot")
    assert (mm.calls[0].method, mm.calls[0].path, mm.calls[0].status) == ("GET", "/api/v4/users/me", 200)


async def test_card_is_posted_then_patched_and_clients_never_see_the_integration(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    post = await bot.posts.create_post(channel_id=ACCESS.id, message="Access request", props=CARD)

    assert re.fullmatch(r"[a-z0-9]{26}", post["id"])
    assert (post["user_id"], post["channel_id"], post["root_id"]) == (BOT_USER_ID, ACCESS.id, "")
    assert post["create_at"] == post["update_at"] > 0
    shown = post["props"]["attachments"][0]["actions"]
    assert [a.get("integration") for a in shown] == [None, None]
    assert shown[0]["id"] == "approve" and re.fullmatch(r"[a-z0-9]{26}", shown[1]["id"])
    stored = mm.posts[post["id"]]["props"]["attachments"][0]["actions"]
    assert stored[0]["integration"]["context"] == {"request_id": "r1", "secret": "s3cr3t"}

    decided = {"attachments": [{"text": "approved by bob"}]}
    # The generated hint types `props` as str; the server takes (and the bot sends) an object.
    props: Any = decided
    patched = await bot.posts.patch_post(post["id"], message="Approved", props=props)

    assert (patched["message"], patched["props"], patched["id"]) == ("Approved", decided, post["id"])
    assert patched["edit_at"] >= post["create_at"] and patched["edit_at"] > 0
    assert await bot.posts.get_post(post["id"]) == patched
    assert [p["message"] for p in mm.posts_in(ACCESS.id)] == ["Approved"]


async def test_dm_channel_is_stable_and_takes_posts(mm: DevMattermost, bot: AsyncTypedDriver) -> None:
    dm = await bot.channels.create_direct_channel(options=[BOT_USER_ID, ALICE.id])
    again = await bot.channels.create_direct_channel(options=[ALICE.id, BOT_USER_ID])

    assert dm == again
    assert (dm["type"], dm["team_id"], dm["name"]) == ("D", "", "__".join(sorted([BOT_USER_ID, ALICE.id])))
    assert dm["id"] == mm.direct_channel_id(ALICE.id, BOT_USER_ID)
    assert _statuses(mm, "POST", "/api/v4/channels/direct") == [201, 201]
    await bot.posts.create_post(channel_id=dm["id"], message="Your request was approved")
    assert [p["message"] for p in mm.posts_in(dm["id"])] == ["Your request was approved"]


async def test_users_are_found_by_id_email_and_username(bot: AsyncTypedDriver) -> None:
    assert (await bot.users.get_user(ALICE.id))["username"] == "alice"
    assert (await bot.users.get_user_by_email("bob@example.com"))["id"] == BOB.id
    assert (await bot.users.get_user_by_username("alice"))["email"] == "alice@example.com"


async def test_team_and_channel_names_resolve_for_routing(bot: AsyncTypedDriver) -> None:
    team = await bot.teams.get_team_by_name("ops")
    channel = await bot.channels.get_channel_by_name(team["id"], "access-requests")
    assert (team["id"], channel["id"], channel["type"]) == (TEAM.id, ACCESS.id, "O")
    with pytest.raises(ResourceNotFound) as hidden:
        await bot.channels.get_channel_by_name(TEAM.id, "secret")  # private, and the bot is not a member
    assert hidden.value.error_id == "app.channel.get_by_name.missing.app_error"
    with pytest.raises(ResourceNotFound) as no_team:
        await bot.teams.get_team_by_name("nope")
    assert no_team.value.error_id == "app.team.get_by_name.missing.app_error"


async def test_slash_command_is_registered_listed_updated_and_rotated(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    spec = {"team_id": TEAM.id, "trigger": "Access", "url": "http://127.0.0.1:8080/mattermost/command",
            "method": "P", "auto_complete": True, "auto_complete_desc": "Teleport Access Requests",
            "auto_complete_hint": "request|list|approve|deny", "display_name": "Access",
            "description": "Request and review Teleport access"}  # fmt: skip
    created = await bot.client.post("/api/v4/commands", options=spec)

    assert (created["trigger"], created["creator_id"], created["auto_complete_hint"]) == (
        "access", BOT_USER_ID, "request|list|approve|deny")
    assert re.fullmatch(r"[a-z0-9]{26}", created["token"])
    assert _statuses(mm, "POST", "/api/v4/commands") == [201]
    assert await bot.commands.list_commands(team_id=TEAM.id, custom_only=True) == [created]
    assert "custom_only=true" in mm.calls[-1].query

    new_url = "http://127.0.0.1:8081/c"
    moved = await bot.commands.update_command(created["id"], options={**created, "url": new_url})
    assert (moved["url"], moved["token"]) == (new_url, created["token"])
    assert moved["create_at"] == created["create_at"] <= moved["update_at"]
    rotated = await bot.commands.regen_command_token(created["id"])
    assert rotated["token"] != created["token"] and mm.commands[created["id"]]["token"] == rotated["token"]

    with pytest.raises(InvalidOrMissingParameters) as duplicate:
        await bot.client.post("/api/v4/commands", options=spec)
    assert duplicate.value.error_id == "api.command.duplicate_trigger.app_error"
    with pytest.raises(InvalidOrMissingParameters) as method:
        await bot.client.post("/api/v4/commands", options={**spec, "trigger": "other", "method": "POST"})
    assert method.value.error_id == "model.command.is_valid.method.app_error"


async def test_dialog_opens_only_with_a_trigger_the_server_issued(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    dialog = {"callback_id": "deny", "title": "Deny request", "state": "r1",
              "elements": [{"display_name": "Reason", "name": "reason", "type": "textarea"}]}  # fmt: skip
    url = "http://127.0.0.1:9/mattermost/dialog"
    trigger = mm.issue_trigger_id(ALICE.id)

    assert await bot.integration_actions.open_interactive_dialog(trigger, url, dialog) == {"status": "OK"}
    assert mm.dialogs == [{"trigger_id": trigger, "url": url, "dialog": dialog, "user_id": ALICE.id,
                           "problems": []}]  # fmt: skip

    forged = base64.b64encode(f"{new_id()}:{ALICE.id}:{int(time.time() * 1000)}:AAAA".encode()).decode()
    for bad, error_id in [(forged, "verify_signature_failed"), ("not a trigger", "base64_decode_failed")]:
        with pytest.raises(InvalidOrMissingParameters) as refused:
            await bot.integration_actions.open_interactive_dialog(bad, url, dialog)
        assert refused.value.error_id == f"interactive_message.decode_trigger_id.{error_id}"

    await bot.integration_actions.open_interactive_dialog(
        mm.issue_trigger_id(ALICE.id), url, {**dialog, "title": "A title longer than 24 chars"})
    assert mm.dialogs[-1]["problems"] == ["invalid dialog title 'A title longer than 24 chars'"]


async def test_stale_trigger_is_refused_as_expired() -> None:
    server = DevMattermost(team=TEAM, users=[ALICE], trigger_ttl=0.05)
    await server.start()
    driver = _driver(server, server.bot_token)
    try:
        trigger = server.issue_trigger_id(ALICE.id)
        await asyncio.sleep(0.1)
        # No login(): openDialog needs no session on Mattermost either, the signed trigger is the credential.
        with pytest.raises(InvalidOrMissingParameters) as expired:
            await driver.integration_actions.open_interactive_dialog(trigger, "http://x/d", {"title": "t"})
        assert expired.value.error_id == "interactive_message.decode_trigger_id.expired"
    finally:
        await driver.close()
        await server.stop()


async def test_message_over_the_limit_is_refused_not_truncated(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    await bot.posts.create_post(channel_id=ACCESS.id, message="é" * MAX_POST_RUNES)
    with pytest.raises(InvalidOrMissingParameters) as too_long:
        await bot.posts.create_post(channel_id=ACCESS.id, message="é" * (MAX_POST_RUNES + 1))
    assert too_long.value.error_id == "model.post.is_valid.message_length.app_error"
    assert len(mm.posts_in(ACCESS.id)) == 1


async def test_posting_where_the_bot_is_no_member_is_forbidden(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    for channel_id in (_id("nochannel"), SECRET.id):
        with pytest.raises(NotEnoughPermissions) as forbidden:
            await bot.posts.create_post(channel_id=channel_id, message="hi")
        assert forbidden.value.error_id == "api.context.permissions.app_error"
    assert mm.posts == {}


async def test_unknown_users_are_not_found(bot: AsyncTypedDriver) -> None:
    lookups = [(bot.users.get_user, _id("nobody"), "app.user.missing_account.const"),
               (bot.users.get_user_by_email, "nobody@example.com", "app.user.missing_account.const"),
               (bot.users.get_user_by_username, "nobody", "app.user.get_by_username.app_error")]  # fmt: skip
    for lookup, key, error_id in lookups:
        with pytest.raises(ResourceNotFound) as missing:
            await lookup(key)
        assert missing.value.error_id == error_id


async def test_patching_someone_elses_post_is_forbidden(mm: DevMattermost, bot: AsyncTypedDriver) -> None:
    alice = _driver(mm, "alice-token")
    try:
        await alice.login()  # the driver sends no Authorization header until login() has stored the token
        post = await alice.posts.create_post(channel_id=ACCESS.id, message="mine")
    finally:
        await alice.close()
    with pytest.raises(NotEnoughPermissions):
        await bot.posts.patch_post(post["id"], message="yours now")
    assert mm.posts[post["id"]]["message"] == "mine"


async def test_direct_channel_needs_the_caller_and_real_users(bot: AsyncTypedDriver) -> None:
    with pytest.raises(NotEnoughPermissions):
        await bot.channels.create_direct_channel(options=[ALICE.id, BOB.id])
    with pytest.raises(InvalidOrMissingParameters) as unknown:
        await bot.channels.create_direct_channel(options=[BOT_USER_ID, _id("ghost")])
    assert unknown.value.error_id == "api.channel.create_direct_channel.invalid_user.app_error"


async def test_bad_json_and_bad_token_get_mattermost_error_bodies(mm: DevMattermost) -> None:
    async with httpx.AsyncClient(base_url=mm.url) as http:
        auth = {"Authorization": f"Bearer {mm.bot_token}"}
        broken = await http.post("/api/v4/posts", content=b'{"channel_id": ', headers=auth)
        expired = await http.get("/api/v4/users/me", headers={"Authorization": "Bearer stale"})
    assert broken.status_code == 400 and broken.headers["content-type"] == "application/json"
    assert broken.json() == {"id": "api.context.invalid_body_param.app_error",
                             "message": "Invalid or missing post in request body.", "detailed_error": "",
                             "request_id": broken.headers["x-request-id"], "status_code": 400}  # fmt: skip
    assert expired.status_code == 401
    assert expired.json()["message"] == "Invalid or expired session, please login again."

    stranger = _driver(mm, "stale")
    with pytest.raises(NoAccessTokenProvided) as refused:
        await stranger.login()
    await stranger.close()
    assert refused.value.error_id == "api.context.session_expired.app_error"


async def test_rate_limit_answer_is_plain_text_with_the_limiter_headers(mm: DevMattermost) -> None:
    mm.fail_next("GET", 429, retry_after=2)
    async with httpx.AsyncClient(base_url=mm.url) as http:
        limited = await http.get("/api/v4/users/me")
    assert (limited.status_code, limited.text) == (429, "limit exceeded\n")
    assert limited.headers["content-type"] == "text/plain; charset=utf-8"
    expected = {"x-ratelimit-limit": "101", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2",
                "retry-after": "2"}  # fmt: skip
    assert {name: limited.headers[name] for name in expected} == expected


async def test_rate_limited_post_lands_once_after_retry_after(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    mm.fail_next("POST /api/v4/posts", 429, retry_after=1)
    started = time.monotonic()
    await bot.posts.create_post(channel_id=ACCESS.id, message="once")
    assert time.monotonic() - started >= 0.95  # the driver slept for Retry-After, then resent the POST
    assert _statuses(mm, "POST", "/api/v4/posts") == [429, 201]
    assert [p["message"] for p in mm.posts_in(ACCESS.id)] == ["once"]


async def test_rate_limit_wait_beyond_retry_max_sleep_raises_at_once(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    mm.fail_next("posts", 429, retry_after=60)  # the driver's retry_max_sleep is 30 s
    with pytest.raises(TooManyRequests) as limited:
        await bot.posts.create_post(channel_id=ACCESS.id, message="later")
    assert (limited.value.retry_after, limited.value.error_id, limited.value.status_code) == (60.0, None, 429)
    assert _statuses(mm, "POST", "/api/v4/posts") == [429] and mm.posts == {}


async def test_rate_limit_outlasting_max_retries_raises(mm: DevMattermost, bot: AsyncTypedDriver) -> None:
    mm.fail_next("POST /api/v4/posts", 429, times=4, retry_after=0)
    with pytest.raises(TooManyRequests):
        await bot.posts.create_post(channel_id=ACCESS.id, message="never")
    assert _statuses(mm, "POST", "/api/v4/posts") == [429] * 4  # one try plus max_retries=3
    assert mm.posts == {}


async def test_server_errors_on_post_are_raised_not_retried(mm: DevMattermost, bot: AsyncTypedDriver) -> None:
    for status in (500, 503):
        mm.fail_next("POST /api/v4/posts", status)
        with pytest.raises(UnknownMattermostError) as failed:
            await bot.posts.create_post(channel_id=ACCESS.id, message="x")
        assert failed.value.status_code == status
    assert failed.value.error_id == "api.context.server_busy.app_error"
    assert _statuses(mm, "POST", "/api/v4/posts") == [500, 503] and mm.posts == {}


async def test_503_on_an_idempotent_get_is_retried(mm: DevMattermost, bot: AsyncTypedDriver) -> None:
    mm.fail_next("GET /api/v4/users/", 503)
    assert (await bot.users.get_user(ALICE.id))["id"] == ALICE.id
    assert _statuses(mm, "GET", f"/api/v4/users/{ALICE.id}") == [503, 200]


async def test_proxy_html_502_is_not_a_mattermost_error(mm: DevMattermost, bot: AsyncTypedDriver) -> None:
    mm.fail_next("POST /api/v4/posts", 502)
    with pytest.raises(InvalidMattermostError) as failed:
        await bot.posts.create_post(channel_id=ACCESS.id, message="x")
    assert failed.value.status_code == 502 and not isinstance(failed.value, MattermostError)
    assert _statuses(mm, "POST", "/api/v4/posts") == [502]


async def test_command_form_is_what_mattermost_posts_to_the_bot(mm: DevMattermost) -> None:
    trigger_id, response_url = mm.issue_trigger_id(ALICE.id), f"{mm.url}/hooks/commands/{new_id()}"
    body, headers = mm.command_form(
        token="cmdtoken", user_id=ALICE.id, user_name="alice", channel_id=ACCESS.id,
        text="approve r1 @bob ~access-requests", trigger_id=trigger_id, team_id=TEAM.id,
        response_url=response_url,
    )  # fmt: skip
    fields = parse_qs(body.decode())
    assert list(fields) == sorted(fields)
    assert {k: v[0] for k, v in fields.items()} == {
        "token": "cmdtoken", "team_id": TEAM.id, "team_domain": "ops", "channel_id": ACCESS.id,
        "channel_name": "access-requests", "user_id": ALICE.id, "user_name": "alice", "command": "/access",
        "text": "approve r1 @bob ~access-requests", "trigger_id": trigger_id, "response_url": response_url,
        "user_mentions": "bob", "user_mentions_ids": BOB.id,
        "channel_mentions": "access-requests", "channel_mentions_ids": ACCESS.id,
    }  # fmt: skip
    assert headers == {"Accept": "application/json", "Authorization": "Token cmdtoken",
                       "Content-Type": "application/x-www-form-urlencoded",
                       "User-Agent": "Mattermost-Bot/1.1"}  # fmt: skip


async def test_button_click_carries_the_context_the_server_kept(
    mm: DevMattermost, bot: AsyncTypedDriver
) -> None:
    post = await bot.posts.create_post(channel_id=ACCESS.id, message="card", props=CARD)
    url, click = mm.click(post["id"], "Approve", user_id=BOB.id)

    assert url == ACTIONS_URL
    expected: dict[str, Any] = {
        "user_id": BOB.id, "user_name": "bob", "channel_id": ACCESS.id, "channel_name": "access-requests",
        "team_id": TEAM.id, "team_domain": "ops", "post_id": post["id"], "trigger_id": click["trigger_id"],
        "type": "button", "data_source": "", "context": {"request_id": "r1", "secret": "s3cr3t"},
    }  # fmt: skip
    assert click == expected
    await bot.integration_actions.open_interactive_dialog(click["trigger_id"], "http://x/d", {"title": "No"})
    assert mm.dialogs[0]["user_id"] == BOB.id

    dm = await bot.channels.create_direct_channel(options=[BOT_USER_ID, BOB.id])
    in_dm = mm.action_request(user_id=BOB.id, channel_id=dm["id"], post_id=post["id"], context=None)
    assert (in_dm["team_id"], in_dm["team_domain"], "context" in in_dm) == ("", "", False)


async def test_dialog_submission_and_cancel_bodies(mm: DevMattermost) -> None:
    submitted = mm.dialog_submission(callback_id="deny", state="r1", user_id=BOB.id, channel_id=ACCESS.id,
                                     team_id=TEAM.id, submission={"reason": "not now"})  # fmt: skip
    assert submitted == {"type": "dialog_submission", "callback_id": "deny", "state": "r1", "user_id": BOB.id,
                         "channel_id": ACCESS.id, "team_id": TEAM.id, "submission": {"reason": "not now"},
                         "cancelled": False}  # fmt: skip
    cancelled = mm.dialog_submission(callback_id="deny", state="r1", user_id=BOB.id, channel_id=ACCESS.id,
                                     team_id=TEAM.id, submission=None, cancelled=True)  # fmt: skip
    assert (cancelled["submission"], cancelled["cancelled"]) == (None, True)
