"""Fault drills: the bot as `chatops-bot serve` assembles it (`runtime.services`: both platforms and the
watcher, with their production retry settings), served on 127.0.0.1, while one of the services behind it
fails for a while. People keep typing and clicking, and Teleport keeps changing; afterwards every card,
DM, thread reply and answer is there exactly once, and nothing in Teleport is half-done.

Each drill lasts as long as its fault (a minute of Slack rate limits, 30 s of Mattermost errors, 30 s
without Teleport), on a timer that runs `SPEED` times faster than real time: the bot's retry and backoff
policies (`runtime.services(timer=…)`: Slack's 429 and `response_url` retries, Mattermost's post retries,
the watcher's lanes and reconnects, gRPC's reconnect backoff) wait on it, the stand-ins time their outages
on it, and so do the people in the drill. Every duration keeps its ratio to the others, so a drill still
outlasts the budgets it is about; only a platform's deadline on one exchange (Slack's 3-second ack, a
trigger's life) stays in real time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatops_bot import runtime
from chatops_bot.adapters.mattermost import signing
from chatops_bot.adapters.mattermost.render import markdown
from chatops_bot.adapters.slack import SlackAdapter
from chatops_bot.config import Settings
from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.devstack.mattermost import DevMattermost, MMUser
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.server import build_app
from chatops_bot.teleport.errors import NO_ANSWER, UNREACHABLE
from chatops_bot.timer import Quickened
from chatops_bot.watcher import Watcher
from chatops_bot.wiring import teleport_client
from commands import messages
from commands.model import RequestState
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.seed import Seed, load_seed
from conftest import ClientFactory, Unchanged, free_port
from test_watcher import (
    ACCESS_MM,
    MM_USERS,
    TEAM,
    bot_settings,
    eventually,
    mm_buttons,
    mm_cards,
    mm_dm,
    mm_replies,
    slack_buttons,
    slack_cards,
    slack_replies,
)

ALICE, BOB = MM_USERS["alice"], MM_USERS["bob"]
SPEED = 10.0  # how much faster than real time the drills' timer runs; every duration below is on it
SLACK_LIMITED_FOR = 60.0
SLACK_RETRY_AFTER = 2  # what Slack says each time; it keeps saying it for the whole minute
MATTERMOST_DOWN_FOR = 30.0  # longer than one post's retry budget (RetryPolicy.budget, 25 s)
TELEPORT_DOWN_FOR = 30.0
CATCH_UP = 45.0  # seconds allowed after a fault ends for the backlog to go out (backoffs included)
TRY_AGAIN_EVERY = 3.0  # a person retrying a command while Teleport is down


@dataclass
class Bot:
    """The running bot, the stand-ins it talks to, and how Slack and Mattermost call it."""

    teleport: DevTeleport
    slack: DevSlack
    mm: DevMattermost
    slack_adapter: SlackAdapter
    watcher: Watcher
    http: httpx.AsyncClient
    secret: bytes  # the Mattermost action secret: a dialog's state is signed with it
    command_token: str
    timer: Quickened  # the bot's, the stand-ins' and the drill's

    async def slack_command(self, user: str, text: str) -> str:
        """`user` types `/access <text>` in #access-requests; what they read (the ack, or the answer that
        followed it on the `response_url`)."""
        response_url = self.slack.new_response_url(channel_id="C0ACCESS", user_id=user)
        body = self.slack.slash_command_body(user, text, "C0ACCESS", response_url)
        answer = await self.http.post("/slack/events", content=body, headers=self.slack.signed_headers(body))
        assert answer.status_code == 200, answer.text
        ack = answer.json().get("text", "") if answer.content else ""
        if ack not in ("", messages.working_on_it()):  # "": a form opens, or says on the response_url why not
            return str(ack)
        await self.slack_adapter.delivery.drain()
        return " ".join(p.body.get("text", "") for p in self.slack_posts(response_url) if p.status == 200)

    async def slack_click(self, user: str, action_id: str, message_ts: str, channel: str = "C0ACCESS") -> str:
        """`user` clicks a button on a card; returns the click's `response_url`, where the answers go."""
        response_url = self.slack.new_response_url(channel_id=channel, user_id=user, message_ts=message_ts)
        body = self.slack.block_actions_body(user, action_id, None, channel, message_ts, response_url)
        answer = await self.http.post("/slack/events", content=body, headers=self.slack.signed_headers(body))
        assert answer.status_code == 200, answer.text
        return response_url

    def slack_posts(self, response_url: str) -> list[Any]:
        token = response_url.rsplit("/", 1)[1]
        return [post for post in self.slack.response_url_posts if post.token == token]

    async def mm_command(self, user: MMUser, text: str) -> str:
        body, headers = self.mm.command_form(
            token=self.command_token, user_id=user.id, user_name=user.username, channel_id=ACCESS_MM.id,
            text=text, trigger_id=self.mm.issue_trigger_id(user.id), team_id=TEAM.id,
            response_url=f"{self.mm.url}/hooks/commands/x")
        answer = await self.http.post("/mattermost/command", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["text"])

    async def mm_click(self, user: MMUser, post_id: str, action: str) -> dict[str, Any]:
        _, body = self.mm.click(post_id, action, user_id=user.id)
        answer = await self.http.post("/mattermost/actions", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def mm_request_form(self, user: MMUser, reason: str, roles: str = "dba") -> dict[str, Any]:
        """`user` fills in and submits the `/access request` dialog."""
        state = signing.dialog_state(self.secret, user.id, "request", int(time.time()))
        body = self.mm.dialog_submission(callback_id="request", state=state, user_id=user.id,
                                         channel_id=ACCESS_MM.id, team_id=TEAM.id,
                                         submission={"roles": roles, "duration": "1h", "reason": reason})
        answer = await self.http.post("/mattermost/dialogs", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


# The bot refuses a second pending request for the same roles, so each request typed while another waits
# asks for a role of its own: dba-2 … dba-7, each like dba, requested by alice and reviewed by bob.
MORE_DBA = [f"dba-{n}" for n in range(2, 8)]


@pytest.fixture
def seed() -> Seed:
    listed = ", ".join(["dba", *MORE_DBA])
    text = demo_seed_text()
    for block in ("    request:\n      roles: [dba]\n", "    review_requests:\n      roles: [dba]\n"):
        assert text.count(block) == 1, block
        text = text.replace(block, block.replace("[dba]", f"[{listed}]"))
    for name in MORE_DBA:
        text += f"---\nkind: role\nversion: v7\nmetadata: {{name: {name}}}\nspec: {{allow: {{logins: [postgres]}}}}\n"
    return load_seed(text)


@pytest.fixture
async def bot(teleport: DevTeleport, tmp_path: Path) -> AsyncIterator[Bot]:
    timer = Quickened(SPEED)
    slack = DevSlack(timer=timer)
    mm = DevMattermost(team=TEAM, users=list(MM_USERS.values()), channels=[ACCESS_MM], timer=timer)
    await slack.start()
    await mm.start()
    port = free_port()
    config = bot_settings(tmp_path, teleport, slack, mm, port)
    settings = Settings.model_validate(config)
    client = teleport_client(settings, timer=timer)
    parts = runtime.services(settings, client, timer=timer)
    for part in parts:
        await part.start()
    server = LoopbackServer(build_app(parts))
    await server.start("127.0.0.1", port)
    slack_adapter = next(p for p in parts if isinstance(p, SlackAdapter))
    watcher = next(p for p in parts if isinstance(p, runtime.WatcherService)).watcher
    await asyncio.wait_for(watcher.synced.wait(), 10)
    secret, token = config["mattermost"]["action_secret"].encode(), config["mattermost"]["command_tokens"][0]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        yield Bot(teleport, slack, mm, slack_adapter, watcher, http, secret, token, timer)
    await server.stop()
    for part in reversed(parts):
        await part.stop()
    await client.close()
    await slack.stop()
    await mm.stop()


# --- what people see ---------------------------------------------------------------------------------------


def requested_id(teleport: DevTeleport, reason: str) -> str:
    [request] = [r for r in teleport.store.requests.values() if r.reason == reason]
    return request.id


async def settled(bot: Bot, check: Callable[[], None]) -> None:
    """`check` passes once the backlog is out, and still passes when nothing is left to send or retry."""
    await eventually(check, timeout=bot.timer.real(CATCH_UP))
    await bot.watcher.lanes.idle()
    await bot.slack_adapter.delivery.drain()
    assert bot.watcher.lanes.retrying == set()
    check()


def one(found: list[Any]) -> Any:
    """The only item: none means not delivered (yet), two means delivered twice."""
    assert len(found) == 1, found
    return found[0]


def slack_cards_in(held: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [m for m in held if request_id in json.dumps(m["blocks"])]


def mm_cards_in(posts: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    shown = markdown(request_id)  # as the Request field has it (once decided, no button carries the ID)
    return [p for p in posts if shown in [field["value"] for attachment in p["props"].get("attachments") or []
                                          for field in attachment.get("fields") or []]]


def pending_everywhere(bot: Bot, request_id: str) -> None:
    """One card with buttons in each routed channel and in bob's DMs on each platform, each said once."""
    card = one(slack_cards(bot.slack, "C0ACCESS", request_id))
    post = one(mm_cards(bot.mm, ACCESS_MM.id, request_id))
    assert slack_buttons(card) == ["access_approve", "access_deny"]
    assert mm_buttons(post) == ["Approve", "Deny"]
    assert slack_buttons(one(slack_cards_in(bot.slack.direct_messages("U0BOB"), request_id)))
    assert mm_buttons(one(mm_cards_in(mm_dm(bot.mm, "bob"), request_id)))


def approved_everywhere(bot: Bot, request_id: str, reviews: list[str]) -> None:
    """Every card of the request shows the approval, each review is relayed once into each channel thread,
    and alice is told once on each platform."""
    card = one(slack_cards(bot.slack, "C0ACCESS", request_id))
    post = one(mm_cards(bot.mm, ACCESS_MM.id, request_id))
    assert slack_buttons(card) == [] and "Approved by bob" in json.dumps(card["blocks"])
    assert mm_buttons(post) == [] and "Approved by bob" in post["props"]["attachments"][0]["text"]
    assert slack_replies(bot.slack, "C0ACCESS", card["ts"]) == reviews
    assert mm_replies(bot.mm, ACCESS_MM.id, post["id"]) == reviews
    assert slack_buttons(one(slack_cards_in(bot.slack.direct_messages("U0BOB"), request_id))) == []
    assert mm_buttons(one(mm_cards_in(mm_dm(bot.mm, "bob"), request_id))) == []
    short = messages.short_id(request_id)
    told = f"Your request for dba ({short}) was approved by bob"
    alice_slack = one([m["text"] for m in bot.slack.direct_messages("U0ALICE") if short in m["text"]])
    alice_mm = one([p["message"] for p in mm_dm(bot.mm, "alice") if short in p["message"]])
    assert alice_slack.startswith(told) and alice_mm.startswith(told)


async def until(bot: Bot, deadline: float) -> None:
    await bot.timer.sleep(max(0.0, deadline - bot.timer.monotonic()))


# --- the drills ------------------------------------------------------------------------------------------


async def test_a_minute_of_slack_rate_limits_delays_cards_and_answers_but_loses_and_repeats_none(
        bot: Bot, client_for: ClientFactory) -> None:
    before = await bot.slack_command("U0ALICE", "request dba --for 1h INC-1 before the limit")
    assert before.startswith("Requested dba")
    first = requested_id(bot.teleport, "INC-1 before the limit")
    await eventually(lambda: pending_everywhere(bot, first))
    card = one(slack_cards(bot.slack, "C0ACCESS", first))

    bot.slack.fail_for(SLACK_LIMITED_FOR, 429, retry_after=SLACK_RETRY_AFTER)
    ends, limited_from = bot.timer.monotonic() + SLACK_LIMITED_FOR, time.time()
    click = await bot.slack_click("U0BOB", "access_approve", card["ts"])
    during = await bot.slack_command("U0ALICE", "request dba-2 --for 1h INC-2 typed while Slack limits us")
    assert during.startswith("Requested dba")  # the ack is an HTTP answer: no Web API call
    await until(bot, ends - SLACK_LIMITED_FOR / 2)
    made = await client_for("alice").create_request(user="alice", roles=("dba",), reason="INC-3 from tsh")
    assert "Your requests" in await bot.mm_command(ALICE, "list mine")  # Mattermost is not affected
    second = requested_id(bot.teleport, "INC-2 typed while Slack limits us")
    await until(bot, ends - 1)
    assert slack_cards(bot.slack, "C0ACCESS", second) == [] and bot.slack.direct_messages("U0ALICE") == []
    assert {c.status for c in bot.slack.calls if c.at >= limited_from} == {429}  # the bot did try
    await until(bot, ends)

    def delivered() -> None:
        approved_everywhere(bot, first, ["bob approved this request"])
        pending_everywhere(bot, second)
        pending_everywhere(bot, made.id)
        answered = [post for post in bot.slack_posts(click) if post.status == 200]
        assert [post.body.get("replace_original") for post in answered] == [True, False]
        assert "Approved by bob" in json.dumps(answered[0].body["blocks"])
        assert answered[1].body["text"] == messages.reviewed(first, True, RequestState.APPROVED)

    await settled(bot, delivered)


async def test_mattermost_failing_for_30_s_delays_cards_and_dms_but_loses_and_repeats_none(
        bot: Bot, client_for: ClientFactory) -> None:
    before = await bot.mm_command(ALICE, "request dba --for 1h INC-1 before the outage")
    assert before.startswith("Requested dba")
    first = requested_id(bot.teleport, "INC-1 before the outage")
    await eventually(lambda: pending_everywhere(bot, first))
    post = one(mm_cards(bot.mm, ACCESS_MM.id, first))

    bot.mm.fail_for(MATTERMOST_DOWN_FOR, status=500)
    ends = bot.timer.monotonic() + MATTERMOST_DOWN_FOR
    clicked = await bot.mm_click(BOB, post["id"], "Approve")  # answered in the HTTP response itself
    assert clicked["ephemeral_text"] == messages.reviewed(first, True, RequestState.APPROVED)
    assert "update" not in clicked  # the card is the watcher's to redraw, once Mattermost is back
    assert await bot.mm_request_form(ALICE, "INC-2 from the dialog while Mattermost fails", "dba-2") == {}
    typed = await bot.mm_command(ALICE, "request dba-3 --for 1h INC-3 typed while Mattermost fails")
    assert typed.startswith("Requested dba")
    made = await client_for("alice").create_request(user="alice", roles=("dba",), reason="INC-4 from tsh")
    await until(bot, ends)
    dialog = requested_id(bot.teleport, "INC-2 from the dialog while Mattermost fails")
    typed_id = requested_id(bot.teleport, "INC-3 typed while Mattermost fails")

    def delivered() -> None:
        approved_everywhere(bot, first, ["bob approved this request"])
        for request_id in (dialog, typed_id, made.id):
            pending_everywhere(bot, request_id)
        short = messages.short_id(dialog)
        outcome = one([p for p in mm_dm(bot.mm, "alice") if short in p["message"]])
        assert outcome["message"].startswith("Requested dba")

    await settled(bot, delivered)


async def test_teleport_down_for_30_s_users_are_told_to_try_again_and_nothing_is_half_done(
        bot: Bot, client_for: ClientFactory) -> None:
    teleport = bot.teleport
    first = await client_for("alice").create_request(user="alice", roles=("dba",), reason="INC-1 before")
    await eventually(lambda: pending_everywhere(bot, first.id))
    card = one(slack_cards(bot.slack, "C0ACCESS", first.id))
    post = one(mm_cards(bot.mm, ACCESS_MM.id, first.id))
    resyncs = bot.watcher.resyncs

    # Commands in flight as Teleport goes away: each happened, or says it did not (or that it may have).
    stopping = ["INC-2 as Teleport stops", "INC-3 as Teleport stops"]
    *replies, _ = await asyncio.gather(bot.slack_command("U0ALICE", f"request dba-2 --for 1h {stopping[0]}"),
                                       bot.mm_command(ALICE, f"request dba-3 --for 1h {stopping[1]}"),
                                       bot.mm_command(BOB, f"approve {first.id}"), teleport.stop())

    with Unchanged(teleport):
        ends = bot.timer.monotonic() + TELEPORT_DOWN_FOR
        attempts = [
            lambda: bot.slack_command("U0ALICE", "request dba-4 --for 1h INC-4 while Teleport is down"),
            lambda: bot.mm_command(ALICE, "request dba-5 --for 1h INC-5 while Teleport is down"),
            lambda: bot.slack_command("U0BOB", f"approve {first.id} trying again"),
            lambda: bot.mm_command(BOB, f"deny {first.id} trying again"),
            lambda: bot.slack_command("U0ALICE", "list mine"),
            lambda: bot.mm_command(ALICE, f"show {first.id}"),
            lambda: bot.slack_command("U0ALICE", "request"),  # the form cannot open without Teleport
            lambda: mm_click_text(bot, BOB, post["id"]),
            lambda: slack_click_text(bot, "U0BOB", card["ts"]),
            lambda: mm_form_text(bot, ALICE, "INC-6 from the dialog while Teleport is down", "dba-6"),
        ]
        told: list[str] = []
        while bot.timer.monotonic() < ends:
            for attempt in attempts:
                told.append(await attempt())
                await bot.timer.sleep(TRY_AGAIN_EVERY / len(attempts))
        await teleport.start()  # on the same address
    for text in told:
        assert UNREACHABLE in text, text  # "…unreachable right now; nothing was changed. Try again…"

    back = bot.timer.monotonic()

    async def works_again() -> str:
        while UNREACHABLE in (listed := await bot.slack_command("U0ALICE", "list mine")):
            await bot.timer.sleep(0.5)
        return listed

    assert "Your requests" in await asyncio.wait_for(works_again(), bot.timer.real(CATCH_UP))
    print(f"commands work again {bot.timer.monotonic() - back:.1f} s (on the drill's timer) after Teleport "
          "is back")
    await asyncio.wait_for(bot.watcher.synced.wait(), bot.timer.real(CATCH_UP))
    assert bot.watcher.resyncs > resyncs
    after = await bot.mm_command(ALICE, "request dba-7 --for 1h INC-7 after the outage")
    assert after.startswith("Requested dba")
    await settled(bot, lambda: pending_everywhere(bot, requested_id(teleport, "INC-7 after the outage")))

    reasons = [r.reason for r in teleport.store.requests.values()]
    reviews = len(teleport.store.requests[first.id].reviews)
    for reply, made in ((replies[0], reasons.count(stopping[0])), (replies[1], reasons.count(stopping[1])),
                        (replies[2], reviews)):
        if reply.startswith(("Requested", "You approved")):
            assert made == 1, (reply, made)
        elif NO_ANSWER in reply:
            assert made <= 1, (reply, made)
        else:
            assert UNREACHABLE in reply and made == 0, (reply, made)
    assert not [reason for reason in reasons if "Teleport is down" in reason]


async def mm_click_text(bot: Bot, user: MMUser, post_id: str) -> str:
    return str((await bot.mm_click(user, post_id, "Approve"))["ephemeral_text"])


async def slack_click_text(bot: Bot, user: str, message_ts: str) -> str:
    response_url = await bot.slack_click(user, "access_approve", message_ts)
    await bot.slack_adapter.delivery.drain()
    return " ".join(post.body.get("text", "") for post in bot.slack_posts(response_url))


async def mm_form_text(bot: Bot, user: MMUser, reason: str, roles: str = "dba") -> str:
    return json.dumps(await bot.mm_request_form(user, reason, roles))
