"""The Slack adapter end to end over loopback: Slack-signed HTTP in, the devstack Teleport and Slack stand-ins out.

Each test starts the bot's real Starlette app under uvicorn on 127.0.0.1, drives it with requests signed
exactly as Slack signs them (`DevSlack.signed_headers`), and checks what the person sees (the ack, the
`response_url` posts, the messages the Slack stand-in holds) and what Teleport stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import logging
import time
from zoneinfo import ZoneInfo
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
import uuid
from urllib.parse import parse_qs, parse_qsl, urlencode

import aiohttp
import httpx
import pytest
import uvicorn
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from starlette.datastructures import Headers

from chatops_bot.adapters.slack import SlackAdapter, SlackStartError, build, manifest
from chatops_bot.adapters.slack import render
from chatops_bot.adapters.slack.delivery import ACK_BUDGET
from chatops_bot.adapters.slack.guard import WINDOW, Seen, SeenRequests
from chatops_bot.config import Settings
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.loopback import PromptServer
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.slack import (
    APP_ID,
    BOT_TOKEN,
    DEFAULT_USERS,
    SIGNING_SECRET,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    DevSlack,
    SlackUser,
)
from chatops_bot.devstack.slack_blocks import check_message, check_view
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.server import build_app
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import REAL_TIME, Quickened, Timer
from chatops_bot.wiring import SystemClock
from commands import messages
from commands.context import CommandConfig, Context
from commands.model import AccessRequest, Capabilities, RequestState
from commands.reply import Action, Field, Reply, RequestCard
from conftest import ClientFactory

CHANNEL = "C0ACCESS"
TYPED = "request dba --for 2h --reviewers bob INC-4411 \"primary\" can't keep up"
REASON = "INC-4411 \"primary\" can't keep up"
HOSTILE = "<!channel> @here <@U0BOB> & <https://evil.example|click me> *bold*"

# --- seed variants -----------------------------------------------------------------------------------

REQUESTER_BLOCK = "      suggested_reviewers: [bob]\n      max_duration: 8h\n"
REASON_REQUIRED = demo_seed_text().replace(REQUESTER_BLOCK, REQUESTER_BLOCK + "      reason: {mode: required}\n")
# dave is linked by e-mail only: his Teleport user is named by his address and has no slack_user_id trait.
DAVE = "---\nkind: user\nversion: v2\nmetadata: {name: dave@example.com}\nspec: {roles: [requester]}\n"
DAVE_SLACK = SlackUser(id="U0DAVE", name="dave", email="dave@example.com")


@pytest.fixture
def seed_yaml() -> str:
    """Overridden per test with `@pytest.mark.parametrize("seed_yaml", [VARIANT])`."""
    return demo_seed_text()


@pytest.fixture
def seed(seed_yaml: str) -> Seed:
    return load_seed(seed_yaml)


# --- the bot under test --------------------------------------------------------------------------------


class Served:
    """An ASGI app under uvicorn on a free loopback port."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = PromptServer(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.server.exit()
        if self.task is not None:
            await self.task


@dataclass
class SlackBot:
    """The running bot and how Slack talks to it."""

    adapter: SlackAdapter
    slack: DevSlack
    url: str
    http: httpx.AsyncClient
    acks: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        signed = self.slack.signed_headers(body) if headers is None else headers
        answer = await self.http.post(f"{self.url}/slack/events", content=body, headers=signed)
        if answer.status_code == 200 and answer.content:
            self.acks.append(answer.json())
        return answer

    async def command(self, user: str, text: str, *, channel: str = CHANNEL) -> httpx.Response:
        return await self.post(self.slack.slash_command_body(user, text, channel))

    async def click(self, user: str, action_id: str, message_ts: str, *, channel: str = CHANNEL) -> httpx.Response:
        return await self.post(self.slack.block_actions_body(user, action_id, None, channel, message_ts))

    async def submit(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> httpx.Response:
        return await self.post(view_submission_body(self.slack, user, view, values))

    async def settle(self) -> None:
        """Waits until everything the bot does after its acks (response_url posts, views.open) is done."""
        await self.adapter.delivery.drain()


MakeBot = Callable[..., Awaitable[SlackBot]]


def slack_context(client: TeleportClient, *, match_email: bool = False, backend: Any = None,
                  **config: Any) -> Context:
    directory = TeleportDirectory(client, traits={"slack": "slack_user_id"}, user_map={}, match_email=match_email)
    return Context(backend=backend or client, directory=directory, clock=SystemClock(),
                   config=CommandConfig(**config))


@pytest.fixture
async def slack() -> AsyncIterator[DevSlack]:
    server = DevSlack(users=(*DEFAULT_USERS, DAVE_SLACK))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make_bot(slack: DevSlack, teleport: DevTeleport, bot: TeleportClient) -> AsyncIterator[MakeBot]:
    """`await make_bot(**options)`: the bot on loopback; options go to the command context."""
    running: list[tuple[SlackBot, Served]] = []

    async def make(*, match_email: bool = False, backend: Any = None, ack_budget: float | None = None,
                   timer: Timer = REAL_TIME, **config: Any) -> SlackBot:
        settings = Settings.model_validate({
            "teleport": {"addr": teleport.addr, "identity_file": "unused.pem"},
            "slack": {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET, "api_url": slack.api_url},
            "users": {"match_email": match_email},
        })
        ctx = slack_context(bot, match_email=match_email, backend=backend, **config)
        budget = ACK_BUDGET if ack_budget is None else ack_budget
        adapter = build(settings, ctx, ack_budget=budget, timer=timer)
        await adapter.start()
        served = Served(build_app([adapter]))
        url = await served.start()
        made = SlackBot(adapter, slack, url, httpx.AsyncClient(timeout=30))
        running.append((made, served))
        return made

    yield make
    for made, served in running:
        await made.http.aclose()
        await served.stop()
        await made.adapter.stop()


@pytest.fixture
async def slackbot(make_bot: MakeBot) -> SlackBot:
    return await make_bot()


# --- helpers -----------------------------------------------------------------------------------------


def stored(teleport: DevTeleport) -> list[AccessRequest]:
    return list(teleport.store.requests.values())


def only_request(teleport: DevTeleport) -> AccessRequest:
    requests = stored(teleport)
    assert len(requests) == 1, requests
    return requests[0]


class Unchanged:
    """`with Unchanged(teleport, slack):` Teleport holds the same requests and Slack saw no call afterwards."""

    def __init__(self, teleport: DevTeleport, slack: DevSlack) -> None:
        self.teleport, self.slack = teleport, slack

    def __enter__(self) -> None:
        self.requests = dict(self.teleport.store.requests)
        self.calls = len(self.slack.calls)
        self.posts = len(self.slack.response_url_posts)

    def __exit__(self, *exc: object) -> None:
        assert self.teleport.store.requests == self.requests
        assert len(self.slack.calls) == self.calls
        assert len(self.slack.response_url_posts) == self.posts


async def post_card(slack: DevSlack, request: AccessRequest,
                    actions: Sequence[Action] = (Action.APPROVE, Action.DENY)) -> str:
    """Posts a request's card with buttons to the channel, as the bot's notifier does; returns its ts."""
    card = messages.card(request, now=SystemClock().now(), actions=actions)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    posted = await client.chat_postMessage(channel=CHANNEL, **render.card_message(card))
    return str(posted["ts"])


def lasts(request: AccessRequest, duration: timedelta) -> bool:
    """Whether the access lasts `duration`, give or take the moment between the bot's clock and Teleport's."""
    assert request.requested_duration is not None
    return abs(request.requested_duration - duration) < timedelta(seconds=5)


def card_in_channel(slack: DevSlack, ts: str) -> dict[str, Any]:
    [message] = [m for m in slack.messages[CHANNEL] if m["ts"] == ts]
    return message


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def ephemerals_to(slack: DevSlack, user: str) -> list[str]:
    return [e["text"] for e in slack.ephemerals if e["user"] == user]


def form_values(roles: Sequence[str] = (), duration: str | None = None, reviewers: str | None = None,
                reason: str | None = None) -> dict[str, Any]:
    """A form's state as Slack submits it (`view.state.values`)."""
    def text(value: str | None) -> dict[str, Any]:
        return {"value": {"type": "plain_text_input", "value": value}}

    selected = [{"text": {"type": "plain_text", "text": r, "emoji": False}, "value": r} for r in roles]
    return {
        render.ROLES_BLOCK: {"value": {"type": "multi_static_select", "selected_options": selected}},
        render.DURATION_BLOCK: text(duration),
        render.REVIEWERS_BLOCK: text(reviewers),
        render.REASON_BLOCK: text(reason),
    }


def view_submission_body(slack: DevSlack, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> bytes:
    """The `payload=<json>` body Slack sends when someone submits a modal (view_submission payload)."""
    user = slack.users[user_id]
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": VERIFICATION_TOKEN, "trigger_id": slack.issue_trigger_id(),
        "view": {**view, "state": {"values": values}},
        "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def everything_sent(slack: DevSlack, slackbot: SlackBot) -> str:
    """Every text and block the bot gave Slack: acks, Web API calls, response_url posts, as JSON."""
    sent = [slackbot.acks, [c.params for c in slack.calls], [p.body for p in slack.response_url_posts],
            slack.messages, slack.ephemerals, slack.opened_views]
    return json.dumps(sent, ensure_ascii=False)


# --- typing `/access` ----------------------------------------------------------------------------------


async def test_a_typed_request_reaches_teleport_as_the_linked_user(slackbot: SlackBot, teleport: DevTeleport) -> None:
    started = time.monotonic()
    answer = await slackbot.command("U0ALICE", TYPED)
    assert time.monotonic() - started < 3
    ack = answer.json()
    assert ack["response_type"] == "ephemeral"
    assert ack["text"].startswith("Requested dba for alice")
    assert [b["type"] for b in ack["blocks"]][:2] == ["section", "header"]
    assert check_message(ack["text"], ack["blocks"]) is None
    request = only_request(teleport)
    assert (request.user, request.roles, request.reason) == ("alice", ("dba",), REASON)
    assert lasts(request, timedelta(hours=2))
    assert request.suggested_reviewers == ("bob",)


async def test_an_unlinked_slack_user_is_told_how_to_link(slackbot: SlackBot, teleport: DevTeleport) -> None:
    answer = await slackbot.command("U0DAVE", "request dba because")
    assert "add the trait `slack_user_id: U0DAVE`" in answer.json()["text"]
    assert stored(teleport) == []


@pytest.mark.parametrize("seed_yaml", [demo_seed_text() + DAVE], ids=["dave by e-mail"])
async def test_match_email_links_by_the_slack_profile_address(make_bot: MakeBot, slack: DevSlack,
                                                             teleport: DevTeleport) -> None:
    slackbot = await make_bot(match_email=True)
    first = await slackbot.command("U0DAVE", "request dba --for 1h on call")
    second = await slackbot.command("U0DAVE", "list mine")
    assert first.json()["text"].startswith("Requested dba for dave@example.com")
    assert "Your requests (1" in second.json()["text"]
    assert only_request(teleport).user == "dave@example.com"
    assert [c.params["user"] for c in slack.calls_to("users.info")] == ["U0DAVE"]  # then cached


async def test_help_fits_slack_and_keeps_its_code_spans(slackbot: SlackBot) -> None:
    ack = (await slackbot.command("U0BOB", "help")).json()
    assert check_message(ack["text"], ack["blocks"]) is None
    shown = "\n".join(b["text"]["text"] for b in ack["blocks"])
    assert "`/access help SUBCOMMAND`" in shown
    assert all(b["text"]["verbatim"] for b in ack["blocks"])


# --- buttons -------------------------------------------------------------------------------------------


async def test_a_reviewers_approve_click_approves_in_teleport_and_redraws_the_card(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport
) -> None:
    await slackbot.command("U0ALICE", TYPED)
    ts = await post_card(slack, only_request(teleport))
    answer = await slackbot.click("U0BOB", "access_approve", ts)
    assert (answer.status_code, answer.content) == (200, b"")
    await slackbot.settle()
    request = only_request(teleport)
    assert request.state is RequestState.APPROVED
    assert [r.author for r in request.reviews] == ["bob"]
    card = card_in_channel(slack, ts)
    assert action_ids(card["blocks"]) == []
    assert "Approved by bob" in json.dumps(card["blocks"])
    replaced, confirmed = slack.response_url_posts
    assert (replaced.status, replaced.body["replace_original"]) == (200, True)
    assert (confirmed.body["replace_original"], confirmed.body["response_type"]) == (False, "ephemeral")
    assert ephemerals_to(slack, "U0BOB") == [f"You approved request {request.id[-8:]}. The request is now approved."]


async def test_a_non_reviewers_click_is_refused_to_them_alone(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport
) -> None:
    await slackbot.command("U0ALICE", TYPED)
    ts = await post_card(slack, only_request(teleport))
    before = card_in_channel(slack, ts)
    requests = dict(teleport.store.requests)
    await slackbot.click("U0CAROL", "access_approve", ts)
    await slackbot.settle()
    assert teleport.store.requests == requests
    assert card_in_channel(slack, ts) == before
    [refusal] = ephemerals_to(slack, "U0CAROL")
    assert refusal.startswith("You may not review this request")
    assert ephemerals_to(slack, "U0BOB") == [] and ephemerals_to(slack, "U0ALICE") == []


@pytest.mark.parametrize("action_id", ["access_approve", "access_deny", "access_extend"])
async def test_a_click_carrying_another_requests_id_is_refused(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport, action_id: str, client_for: ClientFactory
) -> None:
    await slackbot.command("U0ALICE", TYPED)
    # A second pending dba request of alice's: made with tsh, as the bot refuses a duplicate typed in chat.
    await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-9 another one",
                                             suggested_reviewers=["bob"])
    first, second = sorted(stored(teleport), key=lambda r: r.reason)
    actions = (Action.EXTEND,) if action_id == "access_extend" else (Action.APPROVE, Action.DENY)
    ts = await post_card(slack, first, actions)
    before = card_in_channel(slack, ts)
    # Signed as Slack signs it: the click on the first card, its value swapped for the second's ID.
    forged = slack.block_actions_body("U0BOB", action_id, second.id, CHANNEL, ts)
    with Unchanged(teleport, slack):
        assert (await slackbot.post(forged)).status_code == 200
    await slackbot.settle()
    assert [r.state for r in sorted(stored(teleport), key=lambda r: r.reason)] == [RequestState.PENDING] * 2
    assert card_in_channel(slack, ts) == before
    assert slack.opened_views == []
    [refusal] = slack.response_url_posts
    assert (refusal.body["replace_original"], refusal.body["response_type"]) == (False, "ephemeral")
    assert ephemerals_to(slack, "U0BOB") == [messages.click_not_for_this_card()]
    # The card's own ID still works.
    if action_id == "access_approve":
        await slackbot.click("U0BOB", action_id, ts)
        await slackbot.settle()
        assert {r.id: r.state for r in stored(teleport)} == {first.id: RequestState.APPROVED,
                                                            second.id: RequestState.PENDING}


async def test_deny_asks_for_a_reason_when_one_is_required(
    make_bot: MakeBot, slack: DevSlack, teleport: DevTeleport
) -> None:
    slackbot = await make_bot(deny_reason_required=True)
    await slackbot.command("U0ALICE", TYPED)
    ts = await post_card(slack, only_request(teleport))
    await slackbot.click("U0BOB", "access_deny", ts)
    await slackbot.settle()
    [form] = slack.opened_views
    assert form["callback_id"] == render.DENY_FORM
    assert only_request(teleport).state is RequestState.PENDING
    empty = await slackbot.submit("U0BOB", form, {render.REASON_BLOCK: {"value": {"type": "plain_text_input"}}})
    assert empty.json() == {"response_action": "errors", "errors": {render.REASON_BLOCK: messages.deny_reason_required()}}
    answer = await slackbot.submit("U0BOB", form, form_values(reason="not during the freeze"))
    assert (answer.status_code, answer.content) == (200, b"")
    await slackbot.settle()
    request = only_request(teleport)
    assert (request.state, request.reviews[0].reason) == (RequestState.DENIED, "not during the freeze")
    assert action_ids(card_in_channel(slack, ts)["blocks"]) == []
    assert ephemerals_to(slack, "U0BOB")[0].startswith("You denied request")


async def test_extend_opens_the_form_with_the_same_roles(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport
) -> None:
    await slackbot.command("U0ALICE", TYPED)
    ts = await post_card(slack, only_request(teleport), actions=(Action.EXTEND,))
    await slackbot.click("U0ALICE", "access_extend", ts)
    await slackbot.settle()
    [form] = slack.opened_views
    roles = next(b for b in form["blocks"] if b.get("block_id") == render.ROLES_BLOCK)
    assert [o["value"] for o in roles["element"]["initial_options"]] == ["dba"]
    reason = next(b for b in form["blocks"] if b.get("block_id") == render.REASON_BLOCK)
    assert reason["element"]["initial_value"] == f"extension of {only_request(teleport).id[-8:]}: {REASON}"


# --- the request form ----------------------------------------------------------------------------------


async def open_request_form(slackbot: SlackBot, user: str = "U0ALICE") -> dict[str, Any]:
    answer = await slackbot.command(user, "request")
    assert (answer.status_code, answer.content) == (200, b"")
    await slackbot.settle()
    form = slackbot.slack.opened_views[-1]
    assert form["callback_id"] == render.REQUEST_FORM
    return form


async def test_the_form_creates_the_same_request_as_the_typed_command(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport
) -> None:
    form = await open_request_form(slackbot)
    roles = next(b for b in form["blocks"] if b.get("block_id") == render.ROLES_BLOCK)
    assert [o["value"] for o in roles["element"]["options"]] == ["dba"]
    answer = await slackbot.submit("U0ALICE", form, form_values(["dba"], "2h", "bob", REASON))
    assert (answer.status_code, answer.content) == (200, b"")  # the form closes
    await slackbot.settle()
    [from_form] = stored(teleport)
    assert ephemerals_to(slack, "U0ALICE")[-1].startswith("Requested dba for alice")
    # Pending, it would make the typed one a duplicate, which the bot refuses: it is decided first.
    teleport.store.requests[from_form.id] = replace(from_form, state=RequestState.DENIED)
    await slackbot.command("U0ALICE", TYPED)
    [typed] = [r for r in stored(teleport) if r.id != from_form.id]
    for request in (from_form, typed):
        assert (request.user, request.roles, request.reason, request.suggested_reviewers) == (
            "alice", ("dba",), REASON, ("bob",))
        assert lasts(request, timedelta(hours=2))


async def test_the_form_keeps_a_multiline_reason_as_written(slackbot: SlackBot, teleport: DevTeleport) -> None:
    form = await open_request_form(slackbot)
    reason = "INC-4411\n'primary' lags --for 3h\n\"quoted\""
    await slackbot.submit("U0ALICE", form, form_values(["dba"], None, None, reason))
    await slackbot.settle()
    assert only_request(teleport).reason == reason


async def test_form_mistakes_go_back_to_their_fields(slackbot: SlackBot, teleport: DevTeleport) -> None:
    form = await open_request_form(slackbot)
    answer = await slackbot.submit("U0ALICE", form, form_values(["dba"], "2 hours", "bob;eve", "x"))
    errors = answer.json()["errors"]
    assert answer.json()["response_action"] == "errors"
    assert set(errors) == {render.DURATION_BLOCK, render.REVIEWERS_BLOCK}
    assert "is not a duration" in errors[render.DURATION_BLOCK] and "Usage" not in errors[render.DURATION_BLOCK]
    nothing = await slackbot.submit("U0ALICE", form, form_values([], None, None, "x"))
    assert nothing.json()["errors"] == {render.ROLES_BLOCK: messages.request_form_no_roles()}
    assert stored(teleport) == []


@pytest.mark.parametrize("seed_yaml", [REASON_REQUIRED], ids=["reason required"])
async def test_a_reason_teleport_requires_is_required_by_the_form(slackbot: SlackBot, teleport: DevTeleport) -> None:
    form = await open_request_form(slackbot)
    reason = next(b for b in form["blocks"] if b.get("block_id") == render.REASON_BLOCK)
    assert reason["optional"] is False
    # Slack enforces a required field itself; a submission without one still gets Teleport's refusal.
    answer = await slackbot.submit("U0ALICE", form, form_values(["dba"]))
    assert answer.json() == {"response_action": "errors",
                             "errors": {render.REASON_BLOCK: messages.reason_required(["dba"])}}
    assert stored(teleport) == []


async def test_a_person_who_may_request_nothing_is_told_so(slackbot: SlackBot, slack: DevSlack) -> None:
    await slackbot.command("U0CAROL", "request")
    await slackbot.settle()
    assert slack.opened_views == []
    assert ephemerals_to(slack, "U0CAROL") == [messages.nothing_requestable()]


# --- signatures and malformed requests ------------------------------------------------------------------


async def test_unsigned_forged_replayed_or_malformed_requests_run_nothing(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport
) -> None:
    await slackbot.command("U0ALICE", TYPED)
    ts = await post_card(slack, only_request(teleport))
    click = slack.block_actions_body("U0BOB", "access_approve", None, CHANNEL, ts)
    good = slack.signed_headers(click)
    now = int(time.time())
    forged = {**good, "X-Slack-Signature": "v0=" + "0" * 64}
    replayed = slack.signed_headers(click, timestamp=now - 6 * 60)
    future = slack.signed_headers(click, timestamp=now + 6 * 60)
    other_secret = {**good, "X-Slack-Signature": _sign(b"wrong-secret", good["X-Slack-Request-Timestamp"], click)}
    missing = {"Content-Type": good["Content-Type"]}
    no_signature = {k: v for k, v in good.items() if k != "X-Slack-Signature"}
    non_numeric = {**good, "X-Slack-Request-Timestamp": "12e9"}
    # Header bytes are read as Latin-1: `¹²` passes str.isdigit(), and int() raises on it.
    superscript = {**good, "X-Slack-Request-Timestamp": b"\xb9\xb2"}
    with Unchanged(teleport, slack):
        for headers in (forged, replayed, future, other_secret, missing, no_signature, non_numeric):
            answer = await slackbot.post(click, headers)
            assert answer.status_code == 401, headers
        assert (await slackbot.http.post(f"{slackbot.url}/slack/events", content=click,
                                         headers={**good, "X-Slack-Request-Timestamp": "x"})).status_code == 401
        assert (await slackbot.post(click + b"&x=1", good)).status_code == 401  # body changed after signing
        # Signed over its raw bytes but not UTF-8: Slack's signature, a body no parser takes.
        assert (await slackbot.post(b"\xff\xfe", {**good, **_raw_signed(b"\xff\xfe")})).status_code == 400
        for body in (b"payload=notjson", b"payload=%5B1%5D", b'{"type":', b"payload=%7B%22type%22%3A"):
            assert (await slackbot.post(body)).status_code == 400, body
        assert (await slackbot.post(b"text=" + b"x" * (1 << 20))).status_code == 413
        await slackbot.settle()
        assert (await slackbot.post(click, superscript)).status_code == 401  # type: ignore[arg-type]
    assert only_request(teleport).state is RequestState.PENDING


def guard_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the adapter logged about requests it refused or did not run, one entry per line."""
    return [r.getMessage() for r in caplog.records if r.name == "chatops_bot.adapters.slack.app"]


async def test_every_malformed_signature_header_is_a_401_logged_in_one_line(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport, caplog: pytest.LogCaptureFixture
) -> None:
    body = slack.slash_command_body("U0ALICE", "request dba INC-1", CHANNEL)
    good = slack.signed_headers(body)
    stamp, signature = good["X-Slack-Request-Timestamp"], good["X-Slack-Signature"]
    content_type = ("Content-Type", good["Content-Type"])
    malformed: list[list[tuple[str, str | bytes]]] = [
        # slack_sdk's verifier raised TypeError on these (hmac.compare_digest takes ASCII strings only).
        [content_type, ("X-Slack-Request-Timestamp", stamp),
         ("X-Slack-Signature", ("v0=" + "é" * 64).encode())],
        [content_type, ("X-Slack-Request-Timestamp", stamp),
         ("X-Slack-Signature", signature[:-1].encode() + b"\xff")],
        [content_type, ("X-Slack-Request-Timestamp", stamp.encode() + "é".encode()),
         ("X-Slack-Signature", signature)],
        [content_type, ("X-Slack-Request-Timestamp", "soon"), ("X-Slack-Signature", signature)],
        [content_type, ("X-Slack-Request-Timestamp", f"{stamp}.5"), ("X-Slack-Signature", signature)],
        [content_type, ("X-Slack-Request-Timestamp", "-" + stamp), ("X-Slack-Signature", signature)],
        [content_type, ("X-Slack-Request-Timestamp", "9" * 5000), ("X-Slack-Signature", signature)],
        [content_type, ("X-Slack-Request-Timestamp", stamp)],
        [content_type, ("X-Slack-Signature", signature)],
        [content_type, ("X-Slack-Request-Timestamp", stamp), ("X-Slack-Signature", "")],
        [content_type, ("X-Slack-Request-Timestamp", stamp), ("X-Slack-Signature", signature.upper())],
        [content_type, ("X-Slack-Request-Timestamp", stamp), ("X-Slack-Signature", signature + "0" * 8000)],
        [content_type, ("X-Slack-Request-Timestamp", stamp), ("X-Slack-Signature", "v1=" + signature[3:])],
        # Duplicated, even when each copy is right: which one a proxy or a framework picks is not defined.
        [content_type, ("X-Slack-Request-Timestamp", stamp), ("X-Slack-Signature", signature),
         ("X-Slack-Signature", signature)],
        [content_type, ("X-Slack-Request-Timestamp", stamp), ("X-Slack-Request-Timestamp", stamp),
         ("X-Slack-Signature", signature)],
    ]
    caplog.set_level("INFO")
    with Unchanged(teleport, slack):
        for headers in malformed:
            caplog.clear()
            answer = await slackbot.http.post(f"{slackbot.url}/slack/events", content=body, headers=headers)
            assert (answer.status_code, answer.json()) == (401, {"error": "invalid request"}), headers
            [line] = guard_lines(caplog)
            assert line.startswith("refused a Slack request from 127.0.0.1: ") and "\n" not in line, line
            assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert (await slackbot.post(body, good)).status_code == 200  # the same body, signed once, runs
    assert only_request(teleport).reason == "INC-1"


async def test_a_replayed_request_runs_once(slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport,
                                            caplog: pytest.LogCaptureFixture) -> None:
    body = slack.slash_command_body("U0ALICE", "request dba INC-2 replayed", CHANNEL)
    headers = slack.signed_headers(body)
    caplog.set_level("INFO")
    answers = [await slackbot.post(body, headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 401, 401, 401, 401]
    assert answers[1].json() == {"error": "replayed request"}
    assert only_request(teleport).reason == "INC-2 replayed"
    replayed = "refused a replayed Slack request from 127.0.0.1 (its signature was accepted before)"
    assert guard_lines(caplog) == [replayed] * 4
    # The same click twice: one review.
    ts = await post_card(slack, only_request(teleport))
    click = slack.block_actions_body("U0BOB", "access_approve", None, CHANNEL, ts)
    click_headers = slack.signed_headers(click)
    assert [(await slackbot.post(click, click_headers)).status_code for _ in range(2)] == [200, 401]
    await slackbot.settle()
    assert [r.author for r in only_request(teleport).reviews] == ["bob"]


async def test_slacks_own_retry_of_a_handled_command_is_answered_without_running_it(
    slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport, caplog: pytest.LogCaptureFixture
) -> None:
    body = slack.slash_command_body("U0ALICE", "request dba INC-3 retried", CHANNEL)
    first = slack.signed_headers(body)
    assert (await slackbot.post(body, first)).status_code == 200
    caplog.set_level("INFO")
    # Slack retries with the same body, signed again or not, and says which retry it is.
    for headers in ({**first, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
                    {**slack.signed_headers(body, int(time.time()) + 1), "X-Slack-Retry-Num": "2"}):
        answer = await slackbot.post(body, headers)
        assert (answer.status_code, answer.content) == (200, b"")
    assert only_request(teleport).reason == "INC-3 retried"
    assert len(guard_lines(caplog)) == 2
    assert all(line.startswith("Slack retried a request already handled") for line in guard_lines(caplog))
    # A retry of a request whose first delivery never arrived is the first: it runs.
    lost = slack.slash_command_body("U0ALICE", "list mine", CHANNEL)
    answer = await slackbot.post(lost, {**slack.signed_headers(lost), "X-Slack-Retry-Num": "1"})
    assert "Your requests (1" in answer.json()["text"]


def test_the_replay_memory_forgets_after_the_window_and_stays_bounded(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [1_700_000_000.0]
    seen = SeenRequests(limit=3, clock=lambda: now[0])

    def signed(body: bytes, stamp: float) -> Headers:
        return Headers(DevSlack(clock=lambda: stamp).signed_headers(body))

    first = signed(b"a", now[0])
    assert [seen.check(b"a", first) for _ in range(2)] == [Seen.NEW, Seen.REPLAY]
    now[0] += WINDOW + 1  # the timestamp is no longer accepted: nothing to remember it for
    assert seen.check(b"b", signed(b"b", now[0])) is Seen.NEW
    assert len(seen) == 1
    for index in range(5):
        assert seen.check(str(index).encode(), signed(str(index).encode(), now[0])) is Seen.NEW
    assert len(seen) <= 3
    assert [r.getMessage() for r in caplog.records] == [
        f"more than 3 signed Slack requests in {WINDOW} s: forgetting the oldest early"]


async def test_url_verification_and_ssl_check_are_answered(slackbot: SlackBot, slack: DevSlack) -> None:
    challenge = json.dumps({"token": VERIFICATION_TOKEN, "challenge": "3eZbrw1a", "type": "url_verification"})
    body = challenge.encode()
    answer = await slackbot.post(body, slack.signed_headers(body, content_type="application/json"))
    assert (answer.status_code, answer.json()) == (200, {"challenge": "3eZbrw1a"})
    ssl_check = urlencode({"ssl_check": "1", "token": VERIFICATION_TOKEN}).encode()
    answer = await slackbot.post(ssl_check)
    assert (answer.status_code, answer.content) == (200, b"")


# --- time and rate limits ------------------------------------------------------------------------------


class SlowTeleport:
    """The devstack Teleport behind a slow link for listings: every other call goes straight through."""

    def __init__(self, backend: TeleportClient, delay: float) -> None:
        self.backend, self.delay = backend, delay

    async def list_requests(self, **kwargs: Any) -> list[AccessRequest]:
        await asyncio.sleep(self.delay)
        return await self.backend.list_requests(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


async def test_a_slow_teleport_is_acked_in_time_and_answered_later(
    make_bot: MakeBot, bot: TeleportClient, slack: DevSlack
) -> None:
    slackbot = await make_bot(backend=SlowTeleport(bot, delay=2.6))
    started = time.monotonic()
    answer = await slackbot.command("U0BOB", "list")
    acked_after = time.monotonic() - started
    assert acked_after < 3.0
    assert answer.json() == {"text": messages.working_on_it(), "response_type": "ephemeral"}
    assert slack.response_url_posts == []
    await slackbot.settle()
    [later] = slack.response_url_posts
    assert later.status == 200 and later.at - started > 2.6 - 0.1
    assert ephemerals_to(slack, "U0BOB") == [messages.nothing_listed("pending")]


async def test_a_rate_limited_response_url_delays_the_answer_but_delivers_it(
    make_bot: MakeBot, slack: DevSlack, teleport: DevTeleport
) -> None:
    timer = Quickened(10)  # the bot's retries wait on it: each Retry-After second is a tenth of one
    slackbot = await make_bot(timer=timer)
    await slackbot.command("U0ALICE", TYPED)
    ts = await post_card(slack, only_request(teleport))
    slack.fail_next("response_url", status=429, retry_after=1, times=2)
    started = timer.monotonic()
    await slackbot.click("U0BOB", "access_approve", ts)
    await slackbot.settle()
    assert timer.monotonic() - started >= 2
    assert [p.status for p in slack.response_url_posts] == [429, 429, 200, 200]
    assert action_ids(card_in_channel(slack, ts)["blocks"]) == []
    assert ephemerals_to(slack, "U0BOB")[0].startswith("You approved")


async def test_a_rate_limited_views_open_still_opens_the_form(slackbot: SlackBot, slack: DevSlack) -> None:
    # One 429 only: a trigger lives 3 seconds, and Retry-After plus slack_sdk's jitter takes 1–2 of them.
    slack.fail_next("views.open", status=429, retry_after=1, times=1)
    await open_request_form(slackbot)
    assert [c.status for c in slack.calls_to("views.open")] == [429, 200]


async def test_a_form_slack_could_not_open_in_time_says_so(slackbot: SlackBot, slack: DevSlack) -> None:
    slack.fail_next("views.open", status=429, retry_after=3, times=1)  # the trigger expires meanwhile
    await slackbot.command("U0ALICE", "request")
    await slackbot.settle()
    assert [c.error for c in slack.calls_to("views.open")] == ["ratelimited", "expired_trigger_id"]
    assert ephemerals_to(slack, "U0ALICE") == [messages.form_not_opened()]


# --- hostile text ----------------------------------------------------------------------------------------


async def test_hostile_text_never_reaches_slack_raw(slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport) -> None:
    await slackbot.command("U0ALICE", f"request dba {HOSTILE}")
    request = only_request(teleport)
    assert request.reason == HOSTILE  # stored as typed; only what is shown is neutralised
    await slackbot.command("U0BOB", f"show {request.id}")
    ts = await post_card(slack, request)
    await slackbot.click("U0BOB", "access_approve", ts)
    await slackbot.command("U0BOB", "list all")
    await slackbot.settle()
    sent = everything_sent(slack, slackbot)
    assert "Approved by bob" in sent
    for raw in ("<!channel>", "<@U0BOB>", "<https://evil"):  # `<` always reaches Slack as &lt;
        assert raw not in sent, raw
    # Shown as typed, but only inside code, where Slack styles nothing (and a plain @here from an app
    # notifies nobody anyway: only <!here> does).
    outside_code = re.sub(r"```.*?```|`[^`]*`", "", sent, flags=re.DOTALL)
    for typed in ("*bold*", "@here"):
        assert typed in sent and typed not in outside_code, typed


# Every character that reorders what a reader sees: the embeddings and overrides (U+202A-U+202E), the
# isolates (U+2066-U+2069), the marks (U+200E, U+200F) and the Arabic letter mark (U+061C).
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


async def test_bidirectional_controls_never_reach_teleport(slackbot: SlackBot, slack: DevSlack,
                                                           teleport: DevTeleport) -> None:
    # "INC-7 \u202egnp.exe" reads as "INC-7 exe.png" in Teleport's Web UI, `tsh` and the audit log.
    await slackbot.command("U0ALICE", f"request dba INC-7 {BIDI[:6]}gnp.exe{BIDI[6:]} ok")
    request = only_request(teleport)
    assert request.reason == "INC-7 gnp.exe ok"
    await slackbot.command("U0BOB", f"approve {request.id} \u2067looks\u2069 fine\u200f")
    reviewed = only_request(teleport)
    assert [(r.author, r.reason) for r in reviewed.reviews] == [("bob", "looks fine")]


# --- rendering and the manifest --------------------------------------------------------------------------


def _card(request_id: str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", fields: int = 6) -> RequestCard:
    request = AccessRequest(id=request_id, user="alice", roles=("dba",), state=RequestState.PENDING)
    return RequestCard(request=request, title="Access request from alice for dba",
                       fields=tuple(Field(f"F{i}", "v & <w>") for i in range(fields)),
                       footer="Requested just now", actions=(Action.APPROVE, Action.DENY),
                       web_url="https://teleport.example.com/web/requests/" + request_id)


def test_a_card_is_header_fields_context_and_buttons() -> None:
    blocks = render.card_blocks(_card(fields=23))
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context", "actions"]
    assert [len(b["fields"]) for b in blocks[1:4]] == [10, 10, 3]
    assert blocks[1]["fields"][0]["text"] == "*F0*\nv &amp; &lt;w&gt;"
    approve, deny = blocks[-1]["elements"]
    assert (approve["action_id"], approve["style"], approve["value"]) == ("access_approve", "primary", _card().request.id)
    assert approve["confirm"]["confirm"]["text"] == "Approve"
    assert (deny["action_id"], deny["style"]) == ("access_deny", "danger")
    assert "<https://teleport.example.com/web/requests/" in blocks[-2]["elements"][1]["text"]
    assert check_message("x", blocks) is None


def test_a_long_reply_stays_within_slacks_limits() -> None:
    cards = tuple(_card(f"0190a1b2-c3d4-7e5f-8a9b-{i:012d}") for i in range(30))
    text = "\n".join(f"line {i} " + "&" * 60 for i in range(200))
    rendered = render.message(Reply(text=text, cards=cards))
    blocks = rendered["blocks"]
    assert len(blocks) <= render.MAX_BLOCKS
    assert check_message(rendered["text"], blocks) is None
    sections = [b for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(b["text"]["text"]) <= render.SECTION_TEXT_LIMIT for b in sections)
    shown = sum(1 for b in blocks if b["type"] == "header")
    assert blocks[-1]["elements"][0]["text"].startswith(f"\u2026and {30 - shown} more")


def test_limits_cut_text_without_breaking_an_entity() -> None:
    assert render.escape("a&b", 6) == "a\u2026"
    assert render.escape("<" * 10, 9) == "&lt;&lt;\u2026"
    title = render.card_blocks(RequestCard(request=_card().request, title="t" * 400, fields=()))[0]
    assert len(title["text"]["text"]) == render.HEADER_LIMIT


def test_forms_fit_slacks_limits() -> None:
    capabilities = Capabilities(requestable_roles=tuple(f"role-{i}" for i in range(120)) + ("r" * 200,),
                                suggested_reviewers=("bob",), require_reason=True, request_prompt="Say <!here>")
    view = render.modal_for_request(capabilities, private_metadata="{}", initial_roles=("role-3",))
    assert check_view(view) is None
    roles = next(b for b in view["blocks"] if b.get("block_id") == render.ROLES_BLOCK)
    assert len(roles["element"]["options"]) == render.MAX_OPTIONS
    assert "<!here>" not in json.dumps(view)
    assert check_view(render.deny_reason_modal(_card().request.id, private_metadata="{}")) is None


def test_the_manifest_asks_for_exactly_the_scopes_used() -> None:
    http = manifest("https://bot.example.com/", socket_mode=False, match_email=False)
    assert http["oauth_config"]["scopes"]["bot"] == ["commands", "chat:write", "im:write", "users:read"]
    [command] = http["features"]["slash_commands"]
    assert (command["command"], command["url"]) == ("/access", "https://bot.example.com/slack/events")
    assert command["usage_hint"].startswith("request|roles|list")
    assert http["settings"]["interactivity"] == {"is_enabled": True,
                                                 "request_url": "https://bot.example.com/slack/events"}
    assert http["settings"]["socket_mode_enabled"] is False
    email = manifest("https://bot.example.com/chatops", socket_mode=False, match_email=True)
    assert email["oauth_config"]["scopes"]["bot"][-1] == "users:read.email"
    assert email["features"]["slash_commands"][0]["url"] == "https://bot.example.com/chatops/slack/events"
    socket = manifest(None, socket_mode=True, match_email=False)
    assert "url" not in socket["features"]["slash_commands"][0]
    assert socket["settings"]["interactivity"] == {"is_enabled": True}
    assert socket["settings"]["socket_mode_enabled"] is True
    for bad in (None, "http://bot.example.com", "bot.example.com", "https://bot.example.com/?x=1"):
        with pytest.raises(ValueError):
            manifest(bad, socket_mode=False, match_email=False)


async def test_start_names_the_bot_token_when_slack_refuses_it(slack: DevSlack, bot: TeleportClient,
                                                              teleport: DevTeleport) -> None:
    settings = Settings.model_validate({
        "teleport": {"addr": teleport.addr, "identity_file": "unused.pem"},
        "slack": {"bot_token": "xoxb-revoked", "signing_secret": SIGNING_SECRET, "api_url": slack.api_url},
    })
    adapter = build(settings, slack_context(bot))
    with pytest.raises(SlackStartError, match=r"^slack\.bot_token: Slack refused the token \(invalid_auth\)"):
        await adapter.start()


def _sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def _raw_signed(body: bytes) -> dict[str, str]:
    """Signature headers over raw bytes, for a body slack_sdk's signer cannot read (not UTF-8)."""
    stamp = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": _sign(SIGNING_SECRET.encode(), stamp, body)}


# --- Socket Mode -----------------------------------------------------------------------------------------


class SocketSlack:
    """Slack's Socket Mode side on loopback: `apps.connections.open` and the WebSocket it hands out; every
    other Web API call is passed through to the `DevSlack` stand-in unchanged."""

    APP_TOKEN = "xapp-1-A0DEVSTACK-1-devstack"

    def __init__(self, slack: DevSlack) -> None:
        self.slack = slack
        self.sockets: list[web.WebSocketResponse] = []
        self.connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._open)
        app.router.add_route("*", "/api/{method}", self._forward)
        app.router.add_get("/link", self._link)
        self.runner = web.AppRunner(app)
        self.root = ""

    async def start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.root = f"http://{host}:{port}"
        return f"{self.root}/api/"

    async def stop(self) -> None:
        for socket in self.sockets:
            await socket.close()
        await self.runner.cleanup()

    async def send(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Delivers an envelope as Slack does and returns the app's ack for it."""
        envelope_id = str(uuid.uuid4())
        self._acks[envelope_id] = asyncio.get_running_loop().create_future()
        await self.sockets[-1].send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                          "accepts_response_payload": True, "retry_attempt": 0, "retry_reason": ""})
        return await asyncio.wait_for(self._acks[envelope_id], 5)

    async def _open(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.APP_TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response({"ok": True, "url": self.root.replace("http", "ws", 1) + "/link"})

    async def _forward(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        url = f"{self.slack.api_url}{request.match_info['method']}"
        async with aiohttp.ClientSession() as session:
            async with session.request(request.method, url, params=request.query, data=await request.read(),
                                       headers=headers) as answer:
                kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "retry-after")}
                return web.Response(body=await answer.read(), status=answer.status, headers=kept)

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "devstack"},
                                "connection_info": {"app_id": APP_ID}})
        self.sockets.append(socket)
        self.connected.set()
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                ack = json.loads(message.data)
                future = self._acks.get(ack.get("envelope_id", ""))
                if future is not None and not future.done():
                    future.set_result(ack)
        return socket


def socket_settings(teleport: DevTeleport, api_url: str, app_token: str) -> Settings:
    return Settings.model_validate({
        "teleport": {"addr": teleport.addr, "identity_file": "unused.pem"},
        "slack": {"bot_token": BOT_TOKEN, "app_token": app_token, "api_url": api_url},
    })


@pytest.fixture
async def socket_slack(slack: DevSlack) -> AsyncIterator[SocketSlack]:
    server = SocketSlack(slack)
    await server.start()
    yield server
    await server.stop()


async def test_socket_mode_serves_commands_and_clicks_without_an_http_route(
    socket_slack: SocketSlack, slack: DevSlack, teleport: DevTeleport, bot: TeleportClient
) -> None:
    adapter = build(socket_settings(teleport, f"{socket_slack.root}/api/", SocketSlack.APP_TOKEN), slack_context(bot))
    await adapter.start()
    try:
        assert adapter.routes() == []
        await asyncio.wait_for(socket_slack.connected.wait(), 5)
        command = dict(parse_qsl(slack.slash_command_body("U0ALICE", TYPED, CHANNEL).decode()))
        started = time.monotonic()
        ack = await socket_slack.send("slash_commands", command)
        assert time.monotonic() - started < 3
        assert ack["payload"]["text"].startswith("Requested dba for alice")
        assert ack["payload"]["response_type"] == "ephemeral"
        request = only_request(teleport)
        ts = await post_card(slack, request)
        click = parse_qs(slack.block_actions_body("U0BOB", "access_approve", None, CHANNEL, ts).decode())
        ack = await socket_slack.send("interactive", json.loads(click["payload"][0]))
        assert list(ack) == ["envelope_id"]  # acked at once, nothing to show in the ack itself
        await adapter.delivery.drain()
        assert only_request(teleport).state is RequestState.APPROVED
        assert action_ids(card_in_channel(slack, ts)["blocks"]) == []
        assert ephemerals_to(slack, "U0BOB")[0].startswith("You approved")
    finally:
        await adapter.stop()


async def test_socket_mode_names_the_app_token_when_slack_refuses_it(
    socket_slack: SocketSlack, teleport: DevTeleport, bot: TeleportClient
) -> None:
    adapter = build(socket_settings(teleport, f"{socket_slack.root}/api/", "xapp-1-revoked"), slack_context(bot))
    with pytest.raises(SlackStartError, match=r"^slack\.app_token: Slack refused the app-level token \(invalid_auth\)"):
        await adapter.start()
    assert socket_slack.sockets == []


async def test_times_in_a_reply_are_in_the_persons_own_time_zone_with_utc_beside(
        slackbot: SlackBot, slack: DevSlack, teleport: DevTeleport) -> None:
    """Slack knows each member's time zone (`users.info` `tz`): a reply shows their local time, and UTC."""
    slack.users["U0ALICE"] = replace(slack.users["U0ALICE"], tz="Australia/Sydney")
    answer = (await slackbot.command("U0ALICE", TYPED)).json()
    request = only_request(teleport)
    assert request.access_expires is not None
    local = request.access_expires.astimezone(ZoneInfo("Australia/Sydney"))
    utc = request.access_expires
    utc_text = f"{utc:%H:%M} UTC" if local.date() == utc.date() else f"{utc:%Y-%m-%d %H:%M} UTC"
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({utc_text})" in json.dumps(answer["blocks"])
