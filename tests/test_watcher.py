"""The watcher and notifier end to end over loopback: requests made and decided in Teleport itself (each
person's own client, never chat) show up once in every routed channel on Slack and Mattermost, stay true
as Teleport changes them, and survive bot restarts, Teleport restarts and a second bot process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from chatops_bot import runtime, wiring
from chatops_bot.adapters.base import ChatAdapter
from chatops_bot.automatic import AutomaticReviewer, Decider
from chatops_bot.adapters.mattermost.render import markdown
from chatops_bot.adapters.slack.outbound import SlackOutbound
from chatops_bot.config import Settings
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.mattermost import BOT_USER_ID as MM_BOT_ID
from chatops_bot.devstack.mattermost import DevMattermost, MMChannel, MMTeam, MMUser
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.slack import DEFAULT_USERS, DevSlack, SlackUser
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import REAL_TIME, Quickened, Timer
from chatops_bot.watcher import Backoff, Follower, Lanes, Watcher
from chatops_bot.wiring import chat_adapters, command_context, teleport_client
from commands import messages
from commands.dispatch import dispatch
from commands.reply import Invocation
from commands.errors import UnknownUserError
from commands.model import AccessRequest, ChatUser, RequestState, Review, User
from conftest import ClientFactory, free_port
from test_serve import wait_healthy


def _mm_id(prefix: str) -> str:
    return prefix.ljust(26, "0")


TEAM = MMTeam(_mm_id("team"), "ops", "Ops")
MM_USERS = {name: MMUser(_mm_id(f"{name}mmid"), name, f"{name}@example.com")
            for name in ("alice", "bob", "carol", "dave")}
ACCESS_MM = MMChannel(_mm_id("chanaccess"), TEAM.id, "access-requests")
FAST = Backoff(first=0.05, maximum=0.3)
SPEED = 10.0  # how much faster than real time a quickened test's timer runs
BIN = shutil.which("chatops-bot", path=str(Path(sys.executable).parent)) or "chatops-bot"
EXTRA_SEED = f"""
---
kind: role
version: v7
metadata: {{name: auditor}}
spec: {{allow: {{logins: [audit]}}}}
---
kind: role
version: v7
metadata: {{name: auditor-requester}}
spec:
  allow:
    request:
      roles: [auditor]
      suggested_reviewers: [bob, dave]
      thresholds: [{{name: two, approve: 2, deny: 1}}]
---
kind: role
version: v7
metadata: {{name: auditor-reviewer}}
spec: {{allow: {{review_requests: {{roles: [auditor]}}}}}}
---
kind: role
version: v7
metadata: {{name: request-admin}}
spec: {{allow: {{rules: [{{resources: [access_request], verbs: [list, read, delete]}}]}}}}
---
kind: user
version: v2
metadata: {{name: dave}}
spec:
  roles: [auditor-reviewer, developer]
  traits: {{slack_user_id: [U0DAVE], mattermost_user_id: [{MM_USERS["dave"].id}]}}
---
kind: user
version: v2
metadata: {{name: admin}}
spec: {{roles: [request-admin]}}
"""


@pytest.fixture
def seed() -> Seed:
    """The demo cluster, plus `auditor` (two approvals: bob and dave) and an admin who may delete requests."""
    text = demo_seed_text().replace("roles: [requester, developer]",
                                    "roles: [requester, auditor-requester, developer]")
    text = text.replace("roles: [dba-reviewer, developer]",
                        "roles: [dba-reviewer, auditor-reviewer, developer]")
    return load_seed(text + EXTRA_SEED)


@pytest.fixture
async def platforms() -> AsyncIterator[tuple[DevSlack, DevMattermost]]:
    slack = DevSlack(users=[*DEFAULT_USERS, SlackUser(id="U0DAVE", name="dave", email="dave@example.com")])
    mattermost = DevMattermost(team=TEAM, users=list(MM_USERS.values()), channels=[ACCESS_MM])
    await slack.start()
    await mattermost.start()
    yield slack, mattermost
    await slack.stop()
    await mattermost.stop()


def bot_settings(tmp_path: Path, teleport: DevTeleport, slack: DevSlack, mm: DevMattermost, port: int = 9,
                 **sections: Any) -> dict[str, Any]:
    """A config for one bot; a `teleport_extra` section adds to `teleport`, other sections replace theirs."""
    identity = tmp_path / "chatops-bot.pem"
    if not identity.exists():
        write_identity_file(teleport.identity("chatops-bot"), identity)
    return {
        "teleport": {"addr": teleport.addr, "identity_file": str(identity),
                     **sections.pop("teleport_extra", {})},
        "server": {"listen": f"127.0.0.1:{port}"},
        "slack": {"bot_token": "xoxb-devstack", "signing_secret": slack.signing_secret,
                  "api_url": slack.api_url},
        "mattermost": {"url": mm.url, "bot_token": mm.bot_token, "command_tokens": ["k3" * 13],
                       "action_secret": "an action secret of at least thirty-two characters",
                       "public_url": f"http://127.0.0.1:{port}"},
        "routing": {"role_to_recipients": {"slack": {"*": ["#access-requests"]},
                                           "mattermost": {"*": ["ops/access-requests"]}}},
        **sections,
    }


@dataclass
class Bot:
    """One bot process's watching half: its own Teleport client, platform sessions, notifier and watcher."""

    client: TeleportClient
    adapters: list[ChatAdapter]
    watcher: Watcher
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        for adapter in reversed(self.adapters):
            await adapter.stop()
        await self.client.close()


MakeBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def make_bot(teleport: DevTeleport, platforms: tuple[DevSlack, DevMattermost],
                   tmp_path: Path) -> AsyncIterator[MakeBot]:
    slack, mm = platforms
    running: list[Bot] = []

    async def make(*, attempts: int = 12, resync_every: float = 300.0, timer: Timer = REAL_TIME,
                   deciders: Sequence[Decider] = (), **sections: Any) -> Bot:
        """`timer`: what the platforms' retries and the watcher wait on (FAST backoff, `resync_every`);
        `deciders`: automatic verdicts, applied by an `AutomaticReviewer` retrying on the FAST backoff."""
        settings = Settings.model_validate(bot_settings(tmp_path, teleport, slack, mm, **sections))
        client = teleport_client(settings)
        adapters = chat_adapters(settings, command_context(settings, client), timer=timer)
        for adapter in adapters:
            await adapter.start()
        notifier = runtime.notifier(settings, client, runtime.outbounds(adapters))
        lanes = Lanes(notifier, retry=FAST, attempts=attempts, timer=timer)
        observers = [Follower(AutomaticReviewer(client, deciders, mode=settings.review.mode,
                                                rules=settings.review.review_rules(), retry=FAST),
                              timer=timer)] if deciders else []
        watcher = Watcher(client, notifier, backoff=FAST, lanes=lanes, resync_every=resync_every, timer=timer,
                          observers=observers)
        bot = Bot(client, adapters, watcher, asyncio.create_task(watcher.run()))
        running.append(bot)
        await asyncio.wait_for(watcher.synced.wait(), 5)
        return bot

    yield make
    for bot in running:
        if not bot.task.done():
            await bot.stop()


def holds(predicate: Callable[[], bool]) -> Callable[[], None]:
    """A check for `eventually`, which waits on a failed assertion (a False would pass at once)."""

    def check() -> None:
        assert predicate()

    return check


async def settled(bot: Bot) -> None:
    """Every lane of the bot is done, and none failed: nothing is waiting to be tried again."""
    await bot.watcher.lanes.idle()
    assert bot.watcher.lanes.retrying == set()


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Waits until `check()` passes (it fails on an assertion or a missing message); then the last failure."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            check()
            return
        except (AssertionError, LookupError):
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.02)


# --- what people see ----------------------------------------------------------------------------------------


def slack_cards(slack: DevSlack, channel: str, request_id: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages.get(channel, [])
            if m.get("thread_ts", m["ts"]) == m["ts"] and request_id in json.dumps(m["blocks"])]


def slack_replies(slack: DevSlack, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in slack.messages.get(channel, []) if m.get("thread_ts") == ts and m["ts"] != ts]


def slack_buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def slack_dm(slack: DevSlack, user_id: str) -> list[dict[str, Any]]:
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url)
    channel = (await client.conversations_open(users=user_id))["channel"]["id"]
    return slack.messages.get(channel, [])


def mm_cards(mm: DevMattermost, channel: str, request_id: str) -> list[dict[str, Any]]:
    shown = markdown(request_id)  # as the Request field has it: once the buttons are gone, so are their IDs
    return [p for p in mm.posts_in(channel) if not p["root_id"]
            and shown in [f["value"] for a in p["props"]["attachments"] for f in a["fields"]]]


def mm_replies(mm: DevMattermost, channel: str, post_id: str) -> list[str]:
    return [p["message"] for p in mm.posts_in(channel) if p["root_id"] == post_id]


def mm_buttons(post: dict[str, Any]) -> list[str]:
    return [a["name"] for att in post["props"]["attachments"] for a in att.get("actions") or []]


def mm_dm(mm: DevMattermost, name: str) -> list[dict[str, Any]]:
    return mm.posts_in(mm.direct_channel_id(MM_BOT_ID, MM_USERS[name].id))


def one_card_each(slack: DevSlack, mm: DevMattermost, request_id: str) -> tuple[dict[str, Any], ...]:
    cards, posts = slack_cards(slack, "C0ACCESS", request_id), mm_cards(mm, ACCESS_MM.id, request_id)
    assert (len(cards), len(posts)) == (1, 1)
    return cards[0], posts[0]


async def request_dba(client_for: ClientFactory, roles: tuple[str, ...] = ("dba",)) -> AccessRequest:
    return await client_for("alice").create_request(user="alice", roles=roles, reason="INC-7 replica lag")


async def review(client_for: ClientFactory, who: str, request_id: str, state: RequestState,
                 reason: str = "") -> None:
    await client_for(who).submit_review(request_id, Review(author=who, proposed_state=state, reason=reason))


# --- tests --------------------------------------------------------------------------------------------------


async def test_a_request_made_in_teleport_gets_its_cards_and_its_reviewer_a_dm(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost],
        teleport: DevTeleport) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)

    def posted() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == ["access_approve", "access_deny"]
        assert mm_buttons(post) == ["Approve", "Deny"]
        assert "0 of 1 approvals" in json.dumps(card)
        assert teleport.store.plugin_data[request.id]["chatops-bot"]["claim"] == "done"

    await eventually(posted)
    card, post = one_card_each(slack, mm, request.id)
    assert "INC-7 replica lag" in json.dumps(card["blocks"]) and "Requested for" in json.dumps(card["blocks"])
    assert post["props"]["attachments"][0]["title"].startswith("Access request from alice")
    bob_slack = await slack_dm(slack, "U0BOB")
    assert "alice asks for dba and named you as a reviewer." in bob_slack[0]["text"]
    assert slack_buttons(bob_slack[1]) == ["access_approve", "access_deny"]
    [bob_mm] = mm_dm(mm, "bob")
    assert "named you as a reviewer" in bob_mm["message"] and mm_buttons(bob_mm) == ["Approve", "Deny"]
    data = teleport.store.plugin_data[request.id]["chatops-bot"]
    assert data["slack:C0ACCESS"] == f"C0ACCESS/{card['ts']}"
    assert data[f"mattermost:{ACCESS_MM.id}"] == f"{ACCESS_MM.id}/{post['id']}"
    assert {"slack:@U0BOB", f"mattermost:@{MM_USERS['bob'].id}"} <= set(data)
    await settled(bot)


async def test_approval_updates_every_card_on_both_platforms_and_tells_alice_when_it_ends(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost],
        teleport: DevTeleport) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await review(client_for, "bob", request.id, RequestState.APPROVED, "go ahead")

    def approved() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == [] and "Approved by bob" in json.dumps(card["blocks"])
        assert mm_buttons(post) == [] and "Approved by bob" in post["props"]["attachments"][0]["text"]
        assert slack_replies(slack, "C0ACCESS", card["ts"]) == ["bob approved this request: go ahead"]
        assert mm_replies(mm, ACCESS_MM.id, post["id"]) == ["bob approved this request: go ahead"]
        assert len(mm_dm(mm, "alice")) == 1

    await eventually(approved)
    expires = teleport.store.requests[request.id].access_expires
    assert expires is not None
    until = f"Your access lasts until {expires:%Y-%m-%d %H:%M:%S} UTC."
    [alice_slack] = await slack_dm(slack, "U0ALICE")
    short = messages.short_id(request.id)
    assert alice_slack["text"].startswith(f"Your request for dba ({short}) was approved by bob")
    assert until in alice_slack["text"]
    assert f"To use it: `tsh login --request-id={request.id}`." in alice_slack["text"]
    [alice_mm] = mm_dm(mm, "alice")
    assert until in alice_mm["message"]
    assert f"`tsh login --request-id={request.id}`" in alice_mm["message"]
    bob_slack = await slack_dm(slack, "U0BOB")
    assert slack_buttons(bob_slack[1]) == [] and "Approved by bob" in json.dumps(bob_slack[1]["blocks"])
    assert mm_buttons(mm_dm(mm, "bob")[0]) == []
    await settled(bot)


async def test_denial_shows_who_denied_and_why_everywhere(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await review(client_for, "bob", request.id, RequestState.DENIED, "not during the freeze")

    def denied() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == [] and "Denied by bob" in json.dumps(card["blocks"])
        assert mm_buttons(post) == [] and "Denied by bob" in post["props"]["attachments"][0]["text"]
        assert len(mm_dm(mm, "alice")) == 1

    await eventually(denied)
    [alice_mm] = mm_dm(mm, "alice")
    short = messages.short_id(request.id)
    assert alice_mm["message"].startswith(f"Your request for dba ({short}) was denied by bob")
    assert "lasts until" not in alice_mm["message"]
    await settled(bot)


async def test_deletion_shows_as_withdrawn(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await client_for("admin").delete_request(request.id)

    def withdrawn() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == []
        assert "Withdrawn: deleted before anyone decided" in json.dumps(card)
        assert mm_buttons(post) == [] and "Withdrawn" in post["props"]["attachments"][0]["text"]
        assert mm_buttons(mm_dm(mm, "bob")[0]) == []
        assert "Withdrawn" in mm_dm(mm, "bob")[0]["props"]["attachments"][0]["text"]
        assert "was withdrawn or deleted before anyone decided" in mm_dm(mm, "alice")[0]["message"]

    await eventually(withdrawn)
    await settled(bot)


async def test_each_review_is_relayed_once_into_every_thread(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for, roles=("auditor",))
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await review(client_for, "bob", request.id, RequestState.APPROVED, "fine by me")

    def halfway() -> None:
        card, _ = one_card_each(slack, mm, request.id)
        assert "1 of 2 approvals" in json.dumps(card) and slack_buttons(card)
        assert slack_replies(slack, "C0ACCESS", card["ts"]) == ["bob approved this request: fine by me"]

    await eventually(halfway)
    await review(client_for, "dave", request.id, RequestState.APPROVED)
    replies = ["bob approved this request: fine by me", "dave approved this request"]

    def done() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == [] and "Approved by bob, dave" in json.dumps(card)
        assert slack_replies(slack, "C0ACCESS", card["ts"]) == replies
        assert mm_replies(mm, ACCESS_MM.id, post["id"]) == replies

    await eventually(done)
    bot.watcher.lanes.put(request)  # an old snapshot arriving late changes nothing
    await bot.watcher.resync()
    await settled(bot)
    done()
    assert len(mm_dm(mm, "alice")) == 1


async def test_restart_posts_nothing_twice_and_catches_up(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    first = await make_bot()
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await first.watcher.lanes.idle()
    await first.stop()
    await review(client_for, "bob", request.id, RequestState.APPROVED, "while the bot was away")
    second = await make_bot()

    def caught_up() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == [] and mm_buttons(post) == []
        assert slack_replies(slack, "C0ACCESS", card["ts"]) == [
            "bob approved this request: while the bot was away"]
        assert len(mm_replies(mm, ACCESS_MM.id, post["id"])) == 1 and len(mm_dm(mm, "alice")) == 1

    await eventually(caught_up)
    await settled(second)
    caught_up()
    assert len(mm_dm(mm, "bob")) == 1
    posted = [c for c in slack.calls_to("chat.postMessage") if not c.params.get("thread_ts")]
    assert len([c for c in posted if c.params["channel"] == "C0ACCESS"]) == 1


async def test_teleport_restarting_mid_stream_loses_nothing(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost],
        teleport: DevTeleport) -> None:
    slack, mm = platforms
    bot = await make_bot()
    first = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, first.id))
    await bot.watcher.lanes.idle()
    await teleport.stop()

    def disconnected() -> None:
        assert not bot.watcher.synced.is_set()

    await eventually(disconnected)
    await teleport.start()
    second = await request_dba(client_for)
    await review(client_for, "bob", first.id, RequestState.APPROVED)

    def caught_up() -> None:
        assert bot.watcher.resyncs >= 2
        card, post = one_card_each(slack, mm, first.id)
        assert slack_buttons(card) == [] and mm_buttons(post) == []
        one_card_each(slack, mm, second.id)

    await eventually(caught_up)
    await settled(bot)


async def test_a_request_deleted_while_the_stream_was_down_is_closed_by_the_resync(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await bot.watcher.lanes.idle()
    bot.task.cancel()
    await asyncio.gather(bot.task, return_exceptions=True)
    await client_for("admin").delete_request(request.id)
    watcher = Watcher(bot.client, bot.watcher.notifier, backoff=FAST)
    bot.task = asyncio.create_task(watcher.run())

    def closed() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert "Withdrawn" in post["props"]["attachments"][0]["text"] and slack_buttons(card) == []

    await eventually(closed)


async def test_a_periodic_resync_posts_the_card_that_slack_refused_until_the_lane_gave_up(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    # Slack's 500s are retried by its client for 1.5-3.5 s: the resync comes once the lane has given up.
    bot = await make_bot(attempts=1, resync_every=4.0, timer=Quickened(SPEED))
    slack.fail_next("chat.postMessage", 500, times=1000)
    request = await request_dba(client_for)
    await eventually(lambda: mm_cards(mm, ACCESS_MM.id, request.id)[0])
    while True:  # until the lane has given up: neither running nor waiting to try again
        await bot.watcher.lanes.idle()
        if not bot.watcher.lanes.retrying:
            break
        await asyncio.sleep(0.02)
    assert slack_cards(slack, "C0ACCESS", request.id) == []
    resyncs = bot.watcher.resyncs
    slack.fail_next("chat.postMessage", times=0)  # Slack is back; no event about the request comes

    await eventually(lambda: one_card_each(slack, mm, request.id))
    assert bot.watcher.resyncs > resyncs  # a resync brought it
    await settled(bot)
    one_card_each(slack, mm, request.id)


async def test_a_request_made_while_a_resync_lists_is_not_taken_for_deleted(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    bot = await make_bot()
    first = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, first.id))
    listing = asyncio.Event()

    class SlowListing:
        """Lists at once, answers late: the listing is older than what happens meanwhile."""

        async def list_requests(self) -> list[AccessRequest]:
            listed = await bot.client.list_requests()
            listing.set()
            await asyncio.sleep(0.5)
            return listed

        async def get_request(self, request_id: str) -> AccessRequest:
            return await bot.client.get_request(request_id)

    bot.watcher.client = SlowListing()  # type: ignore[assignment]  # the stream already runs on the real one
    resync = asyncio.create_task(bot.watcher.resync())
    await listing.wait()
    second = await request_dba(client_for)
    await resync
    await eventually(lambda: one_card_each(slack, mm, second.id))
    await settled(bot)
    for request in (first, second):
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) and mm_buttons(post), "a pending request's card was closed"


async def test_two_bot_processes_post_one_card_per_channel(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    bots = [await make_bot(), await make_bot()]
    requests = [await request_dba(client_for) for _ in range(5)]

    def posted() -> None:
        for request in requests:
            one_card_each(slack, mm, request.id)
        assert len(mm_dm(mm, "bob")) == 5

    await eventually(posted)
    for bot in bots:
        await bot.watcher.lanes.idle()
    posted()
    assert len([m for m in await slack_dm(slack, "U0BOB") if m["blocks"] and slack_buttons(m)]) == 5
    await review(client_for, "bob", requests[0].id, RequestState.APPROVED, "once")

    def decided() -> None:
        card, post = one_card_each(slack, mm, requests[0].id)
        assert slack_buttons(card) == [] and mm_buttons(post) == []
        assert mm_replies(mm, ACCESS_MM.id, post["id"]) == ["bob approved this request: once"]
        assert len(mm_dm(mm, "alice")) == 1

    await eventually(decided)
    for bot in bots:
        await bot.watcher.lanes.idle()
    decided()
    assert slack_replies(slack, "C0ACCESS", one_card_each(slack, mm, requests[0].id)[0]["ts"]) == [
        "bob approved this request: once"]
    assert len(await slack_dm(slack, "U0ALICE")) == 1


async def test_routing_dedupes_and_skips_what_it_cannot_resolve(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost],
        caplog: pytest.LogCaptureFixture) -> None:
    slack, mm = platforms
    routing = {"slack": {"dba": ["#nowhere", "#access-requests", "C0ACCESS"], "*": ["C0GENERAL"]},
               "mattermost": {"*": ["ops/nowhere", "ops/access-requests"]}}
    caplog.set_level(logging.WARNING, logger="chatops_bot.notify")
    bot = await make_bot(routing={"role_to_recipients": routing})
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await settled(bot)
    assert slack_cards(slack, "C0GENERAL", request.id) == []  # dba has its own recipients: no "*"
    assert "slack has no recipient '#nowhere'" in caplog.text
    assert "mattermost has no recipient 'ops/nowhere'" in caplog.text


async def test_web_only_roles_get_the_web_link_instead_of_buttons(
        make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, mm = platforms
    await make_bot(review={"web_only_roles": ["dba"]},
                   teleport_extra={"web_proxy_addr": "teleport.example.com:443"})
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    card, post = one_card_each(slack, mm, request.id)
    link = f"https://teleport.example.com:443/web/requests/{request.id}"
    assert slack_buttons(card) == [] and link in json.dumps(card["blocks"])
    assert "must be reviewed in Teleport, where MFA applies" in json.dumps(card["blocks"])
    assert mm_buttons(post) == [] and post["props"]["attachments"][0]["title_link"] == link


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(first=1.0, maximum=8.0, jitter=0.25)
    delays = [backoff.delay(attempt) for attempt in range(8)]
    assert 0.75 <= delays[0] <= 1.25 and 1.5 <= delays[1] <= 2.5
    assert all(6.0 <= d <= 10.0 for d in delays[3:])
    assert len({round(backoff.delay(5), 6) for _ in range(20)}) > 1


async def test_serve_answers_chat_and_posts_cards_until_sigterm(
        teleport: DevTeleport, platforms: tuple[DevSlack, DevMattermost], client_for: ClientFactory,
        tmp_path: Path) -> None:
    slack, mm = platforms
    port = free_port()
    config = tmp_path / "config.json"  # JSON is YAML
    config.write_text(json.dumps(bot_settings(tmp_path, teleport, slack, mm, port)))
    proc = await asyncio.create_subprocess_exec(
        BIN, "serve", "-c", str(config), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await wait_healthy(http, proc)
        request = await request_dba(client_for)
        await eventually(lambda: one_card_each(slack, mm, request.id), timeout=15)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


async def test_slack_channel_names_resolve_once_for_callers_at_the_same_time(
        platforms: tuple[DevSlack, DevMattermost]) -> None:
    slack, _ = platforms
    outbound = SlackOutbound(AsyncWebClient(token=slack.token, base_url=slack.api_url))
    names = ["#access-requests"] * 4 + ["general"]
    found = await asyncio.gather(*(outbound.resolve_recipient(name) for name in names))
    assert found == ["C0ACCESS"] * 4 + ["C0GENERAL"]
    assert len(slack.calls_to("conversations.list")) == 1
    assert await outbound.resolve_recipient("#nowhere") is None
    assert await outbound.resolve_recipient("C0SOMEWHERE") == "C0SOMEWHERE"


# --- users linked while the bot runs ------------------------------------------------------------------------


class CountingClient(TeleportClient):
    """The bot's client, counting how often every Teleport user is listed."""

    listings = 0

    async def list_users(self) -> list[User]:
        self.listings += 1
        return await super().list_users()


async def test_a_user_linked_while_the_bot_runs_is_known_within_seconds_without_listing_everyone(
    teleport: DevTeleport, platforms: tuple[DevSlack, DevMattermost], tmp_path: Path
) -> None:
    slack, mm = platforms
    settings = Settings.model_validate(bot_settings(tmp_path, teleport, slack, mm))
    client = CountingClient(teleport.addr, teleport_client(settings).identity_source, timeout=5.0)
    people = wiring.directory(settings, client)
    notifier = runtime.notifier(settings, client, [], people)
    watcher = Watcher(client, notifier, backoff=FAST, users=people)
    people.follow(watcher.synced)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.synced.wait(), 5)
        carol = teleport.store.user("carol")
        with pytest.raises(UnknownUserError):
            await people.teleport_user(ChatUser("slack", "U0CAROL2", "carol"))

        teleport.store.put_user(replace(carol, traits={**carol.traits, "slack_user_id": ("U0CAROL2",)}))
        found = ""
        for _ in range(250):  # within 5 s; the event takes milliseconds
            with contextlib.suppress(UnknownUserError):
                found = await people.teleport_user(ChatUser("slack", "U0CAROL2", "carol"))
                break
            await asyncio.sleep(0.02)
        assert found == "carol"
        assert await people.chat_ids("carol") == {"slack": "U0CAROL2", "mattermost": carol.traits["mattermost_user_id"][0]}

        teleport.store.delete_user("carol")
        await eventually_async(lambda: people.chat_ids("carol"), {})
        with pytest.raises(UnknownUserError):
            await people.teleport_user(ChatUser("slack", "U0CAROL2", "carol"))
        assert client.listings == 1  # once, when the stream was opened: events did the rest
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def eventually_async(call: Callable[[], Awaitable[object]], expected: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await call()) != expected:
        assert asyncio.get_running_loop().time() < deadline, got
        await asyncio.sleep(0.02)


# --- outcome DMs, claimed with a lease ------------------------------------------------------------------------


async def test_an_outcome_dm_claimed_by_a_process_that_died_is_sent_by_another(
    make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]
) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    # A process claimed the outcome DMs two minutes ago and died before sending them.
    dead = f"APPROVED@deadbeef0000@{int(time.time()) - 120}"
    await bot.client.update_plugin_data(request.id, set={"outcome#slack": dead, "outcome#mattermost": dead})

    await review(client_for, "bob", request.id, RequestState.APPROVED, "go ahead")

    def told() -> None:
        assert [m["text"].split(" by ")[0] for m in slack.direct_messages("U0ALICE")
                if "was approved" in m["text"]] == [f"Your request for dba ({request.id[-8:]}) was approved"]
        assert len([p for p in mm_dm(mm, "alice") if "was approved" in p["message"]]) == 1

    await eventually(told)
    await settled(bot)
    data = await bot.client.get_plugin_data(request.id)
    assert (data["outcome#slack"], data["outcome#mattermost"]) == ("APPROVED", "APPROVED")


async def test_a_request_created_and_decided_while_the_bot_was_down_gets_final_cards_and_its_outcome_dm(
    make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]
) -> None:
    slack, mm = platforms
    first = await make_bot()
    seen = await request_dba(client_for)  # the bot has watched this cluster: it claimed this one
    await eventually(lambda: one_card_each(slack, mm, seen.id))
    await settled(first)
    await first.stop()
    request = await request_dba(client_for)
    await review(client_for, "bob", request.id, RequestState.APPROVED, "while the bot was down")

    bot = await make_bot()

    def final() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == [] and mm_buttons(post) == []
        assert "Approved" in json.dumps(card["blocks"])
        assert [m["text"].split(" by ")[0] for m in slack.direct_messages("U0ALICE")] == [
            f"Your request for dba ({request.id[-8:]}) was approved"]
        assert len([p for p in mm_dm(mm, "alice") if "was approved" in p["message"]]) == 1

    await eventually(final)
    await settled(bot)
    # bob was asked about the request he could review, and about nothing for the decided one.
    assert any(seen.id[-8:] in json.dumps(m) for m in slack.direct_messages("U0BOB"))
    assert not any(request.id[-8:] in json.dumps(m) for m in slack.direct_messages("U0BOB"))


async def test_a_first_start_posts_nothing_for_requests_decided_before_any_bot_watched(
    make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]
) -> None:
    slack, mm = platforms
    old = await request_dba(client_for)
    await review(client_for, "bob", old.id, RequestState.APPROVED, "before the bot existed")

    bot = await make_bot()
    await settled(bot)

    assert slack_cards(slack, "C0ACCESS", old.id) == [] and mm_cards(mm, ACCESS_MM.id, old.id) == []
    assert slack.direct_messages("U0ALICE") == [] and mm_dm(mm, "alice") == []


async def test_a_fan_out_cut_short_by_an_outage_is_finished_after_the_decision(
    make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost]
) -> None:
    slack, mm = platforms
    bot = await make_bot(attempts=2, timer=Quickened(SPEED))  # Slack's client retries its 500s for seconds
    slack.fail_for(3600, 500, methods=["chat.postMessage"])
    request = await request_dba(client_for)
    await eventually(lambda: mm_cards(mm, ACCESS_MM.id, request.id)[0])
    await review(client_for, "bob", request.id, RequestState.APPROVED, "go ahead")
    # Mattermost's card follows the decision while Slack still refuses.
    await eventually(holds(lambda: mm_buttons(mm_cards(mm, ACCESS_MM.id, request.id)[0]) == []))
    await eventually(holds(lambda: len([p for p in mm_dm(mm, "alice") if "was approved" in p["message"]]) == 1))
    assert slack_cards(slack, "C0ACCESS", request.id) == []
    slack.fail_for(0, 500, methods=["chat.postMessage"])

    await bot.watcher.resync()

    def finished() -> None:
        card, _ = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == []
        assert [m["text"].split(" by ")[0] for m in slack.direct_messages("U0ALICE")] == [
            f"Your request for dba ({request.id[-8:]}) was approved"]

    await eventually(finished)


# --- through the Proxy (Teleport Cloud's shape) ---------------------------------------------------------------


async def test_through_the_proxy_a_request_is_carded_approved_on_behalf_and_the_requester_told(
    make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory,
    platforms: tuple[DevSlack, DevMattermost], tmp_path: Path
) -> None:
    slack, mm = platforms
    proxy = await teleport.start_proxy("127.0.0.1:0")
    try:
        bot = await make_bot(teleport_extra={"addr": proxy})
        settings = Settings.model_validate(bot_settings(tmp_path, teleport, slack, mm, teleport_extra={"addr": proxy}))
        ctx = command_context(settings, bot.client)
        asked = await dispatch(Invocation("slack", ChatUser("slack", "U0ALICE", "alice"),
                                          "request dba --for 1h INC-7 replica lag"), ctx)
        assert asked.ok, asked.text
        [request] = teleport.store.requests.values()
        await eventually(lambda: one_card_each(slack, mm, request.id))

        approved = await dispatch(Invocation("mattermost", ChatUser("mattermost", MM_USERS["bob"].id, "bob"),
                                             f"approve {request.id[-8:]} go ahead"), ctx)
        assert approved.ok, approved.text

        stored = teleport.store.requests[request.id]
        assert stored.state is RequestState.APPROVED
        assert [(r.author, r.submitted_by) for r in stored.reviews] == [("bob", "chatops-bot")]
        await eventually(lambda: [m for m in slack.direct_messages("U0ALICE") if "was approved" in m["text"]][0])
        assert teleport.proxy is not None and "auth" in {route for _, route in teleport.proxy.routes}
    finally:
        await teleport.stop_proxy()
