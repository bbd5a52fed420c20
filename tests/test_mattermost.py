"""The Mattermost adapter end to end over loopback: the bot's app served by uvicorn, called exactly as the
Mattermost server calls it (the slash-command form and header, click JSON, dialog submissions), talking to
the devstack Mattermost REST stand-in and the devstack Teleport. Each test says what a person sees and
what Teleport holds afterwards; a refusal leaves Teleport exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import ClientFactory, FixedClock, Unchanged
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import InvalidOrMissingParameters, UnknownMattermostError

from chatops_bot.adapters.mattermost import (
    MattermostAdapter,
    RetryPolicy,
    StartError,
    build,
    register_command,
    signing,
)
from chatops_bot.adapters.mattermost.dialogs import REASON_MAX_LENGTH, request_dialog
from chatops_bot.adapters.mattermost.outbound import driver_options
from chatops_bot.adapters.mattermost.register import RegisterError
from chatops_bot.adapters.mattermost.render import COLORS, Renderer, markdown
from chatops_bot.config import Settings
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.loopback import PromptServer
from chatops_bot.devstack.mattermost import (
    BOT_USER_ID,
    MAX_POST_RUNES,
    DevMattermost,
    MMChannel,
    MMTeam,
    MMUser,
    new_id,
)
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.server import build_app
from chatops_bot.teleport.client import TeleportClient
from commands import messages
from commands.context import CommandConfig, Context
from commands.model import AccessRequest, Capabilities, RequestState
from commands.reply import Action


def _id(prefix: str) -> str:
    return prefix.ljust(26, "0")


TEAM = MMTeam(_id("team"), "ops", "Ops")
ALICE = MMUser(_id("alicemmid"), "alice", "alice@example.com")
BOB = MMUser(_id("bobmmid"), "bob", "bob@example.com")
CAROL = MMUser(_id("carolmmid"), "carol", "carol@example.com")
DAVE = MMUser(_id("davemmid"), "dave", "dave@example.com")  # linked by e-mail only
ACCESS = MMChannel(_id("chanaccess"), TEAM.id, "access-requests")
COMMAND_TOKEN = "k3" * 13
ROTATED_TOKEN = "r7" * 13
ACTION_SECRET = "an action secret of at least thirty-two characters"
FAST_RETRY = RetryPolicy(budget=1.0, first_delay=0.01, max_delay=0.05, driver_retries=1)
BROADCAST = re.compile(r"@(?:channel|all|here|everyone)|<!", re.IGNORECASE)

REQUESTER_BLOCK = "      suggested_reviewers: [bob]\n      max_duration: 8h\n"
REASON_REQUIRED = (REQUESTER_BLOCK, REQUESTER_BLOCK + "      reason: {mode: required}\n")
DAVE_BY_EMAIL = (
    "---\nkind: user\nversion: v2\nmetadata: {name: dave@example.com}\nspec: {roles: [requester]}\n"
)


def seed_text(*changes: tuple[str, str], extra: str = "") -> str:
    text = demo_seed_text()
    for old, new in changes:
        assert text.count(old) == 1, f"the demo seed no longer holds {old!r}"
        text = text.replace(old, new)
    return text + extra


@pytest.fixture
def seed_yaml() -> str:
    """Overridden per test with `@pytest.mark.parametrize("seed_yaml", [...])`."""
    return seed_text()


@pytest.fixture
def seed(seed_yaml: str) -> Seed:
    return load_seed(seed_yaml)


@pytest.fixture
def match_email() -> bool:
    return False


@pytest.fixture
async def mm() -> AsyncIterator[DevMattermost]:
    # The bot is a team admin here (so it may register /access), as `mattermost-register` suggests.
    server = DevMattermost(team=TEAM, users=[ALICE, BOB, CAROL, DAVE], channels=[ACCESS], team_admins=[BOT_USER_ID])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def ctx(bot: TeleportClient, match_email: bool) -> Context:
    directory = TeleportDirectory(bot, traits={"mattermost": "mattermost_user_id"}, user_map={},
                                  match_email=match_email)  # fmt: skip
    return Context(backend=bot, directory=directory, clock=FixedClock(), config=CommandConfig())


def settings_for(mm: DevMattermost, teleport: DevTeleport, public_url: str, **overrides: Any) -> Settings:
    match_email = overrides.pop("match_email", False)
    mattermost = {"url": mm.url, "bot_token": mm.bot_token, "command_tokens": [COMMAND_TOKEN, ROTATED_TOKEN],
                  "action_secret": ACTION_SECRET, "public_url": public_url, **overrides}  # fmt: skip
    return Settings.model_validate({
        "teleport": {"addr": teleport.addr, "identity_file": "unused.pem"},
        "mattermost": mattermost,
        "users": {"match_email": match_email},
    })


@dataclass
class Bot:
    adapter: MattermostAdapter
    url: str
    http: httpx.AsyncClient


@pytest.fixture
def key_published() -> bool:
    """Whether Mattermost answers the bot's read of its signing key at start (parametrize to say not)."""
    return True


@pytest.fixture
async def served(
    mm: DevMattermost, teleport: DevTeleport, ctx: Context, match_email: bool, key_published: bool
) -> AsyncIterator[Bot]:
    """The bot as `chatops-bot` runs it: the adapter started (logged in), its routes served by uvicorn."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = settings_for(mm, teleport, url, match_email=match_email)
    adapter = build(settings, ctx, retry=FAST_RETRY)
    if not key_published:
        mm.fail_next("GET /api/v4/config/client", 500, times=100)
    await adapter.start()
    server = PromptServer(uvicorn.Config(build_app([adapter]), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield Bot(adapter, url, http)
    server.exit()
    await task
    await adapter.stop()
    sock.close()


# --- helpers --------------------------------------------------------------------------------------------


def command_form(
    mm: DevMattermost, user: MMUser, text: str, token: str = COMMAND_TOKEN
) -> tuple[bytes, dict[str, str]]:
    return mm.command_form(
        token=token, user_id=user.id, user_name=user.username, channel_id=ACCESS.id, text=text,
        trigger_id=mm.issue_trigger_id(user.id), team_id=TEAM.id,
        response_url=f"{mm.url}/hooks/commands/{new_id()}",
    )  # fmt: skip


async def slash(bot: Bot, mm: DevMattermost, user: MMUser, text: str) -> dict[str, Any]:
    """`user` types `/access <text>`; the JSON the bot answers Mattermost with."""
    body, headers = command_form(mm, user, text)
    response = await bot.http.post("/mattermost/command", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


async def click(bot: Bot, url: str, body: dict[str, Any]) -> httpx.Response:
    """What Mattermost posts to an action's integration URL (only the bot's own URL is ever reached)."""
    assert url == bot.url + "/mattermost/actions"
    return await bot.http.post("/mattermost/actions", json=body, headers={"Accept": "application/json"})


async def typed_request(bot: Bot, mm: DevMattermost, text: str = "request dba INC-4411 replica lag") -> str:
    answer = await slash(bot, mm, ALICE, text)
    assert answer["text"].startswith("Requested dba for alice"), answer
    return str(answer["attachments"][0]["fields"][0]["value"]).replace("\\-", "-")


async def channel_card(bot: Bot, teleport: DevTeleport, request_id: str) -> str:
    """Post the request's card to the channel through the REST API, as the watcher will; its post ID."""
    card = messages.card(teleport.store.request(request_id), now=FixedClock().now(),
                         actions=(Action.APPROVE, Action.DENY))  # fmt: skip
    post = bot.adapter.render.card_post(card)
    created = await bot.adapter.outbound.create_post(ACCESS.id, post["message"], props=post["props"])
    return str(created["id"])


def requests(teleport: DevTeleport) -> list[AccessRequest]:
    return list(teleport.store.requests.values())


def statuses(mm: DevMattermost, method: str, path: str) -> list[int]:
    return [c.status for c in mm.calls if c.method == method and c.path == path]


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# --- the slash command ------------------------------------------------------------------------------------


async def test_typed_request_reaches_teleport_as_the_user_the_trait_names(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    answer = await slash(served, mm, ALICE, "request dba --for 2h INC-4411 replica lag")

    (stored,) = requests(teleport)
    assert (stored.user, stored.roles, stored.reason) == ("alice", ("dba",), "INC-4411 replica lag")
    assert stored.access_expires and stored.created
    assert abs(stored.access_expires - stored.created - timedelta(hours=2)) < timedelta(seconds=5)

    assert (answer["response_type"], answer["skip_slack_parsing"]) == ("ephemeral", True)
    assert answer["text"] == f"Requested dba for alice (request {stored.id[-8:]}). Asked to review: bob."
    (card,) = answer["attachments"]
    assert card["color"] == COLORS[RequestState.PENDING]
    assert card["title"] == "Access request from alice for dba"
    assert card["text"] == "**Pending \\(0 of 1 approvals\\)**"
    assert card["fallback"] == "Access request from alice for dba: Pending (0 of 1 approvals)"
    fields = {f["title"]: (f["value"], f["short"]) for f in card["fields"]}
    assert fields["Request"] == (stored.id.replace("-", "\\-"), True)
    assert fields["Reason"] == ("INC\\-4411 replica lag", True)
    assert "State" not in fields and "actions" not in card  # alice cannot review her own request
    # Nothing but the bot's start (its login, the server's signing key) and alice's profile (her time zone)
    # reached Mattermost: the answer is the command response.
    assert [(c.method, c.path) for c in mm.calls] == [("GET", "/api/v4/users/me"), ("GET", "/api/v4/config/client"),
                                                      ("GET", f"/api/v4/users/{ALICE.id}")]


@pytest.mark.parametrize("token", [COMMAND_TOKEN, ROTATED_TOKEN])
async def test_every_configured_command_token_is_accepted(
    served: Bot, mm: DevMattermost, teleport: DevTeleport, token: str
) -> None:
    body, headers = command_form(mm, ALICE, "list mine", token=token)
    response = await served.http.post("/mattermost/command", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["text"] == "You have no access requests."


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


async def test_wrong_or_missing_token_is_refused_with_401_and_nothing_runs(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    good, headers = command_form(mm, ALICE, "request dba INC-1")
    wrong, wrong_headers = command_form(mm, ALICE, "request dba INC-1", token="x" * 26)
    no_token = re.sub(rb"token=[^&]*&?", b"", good)
    attempts = [
        (wrong, wrong_headers),  # wrong in the form and the header
        (good, {**headers, "Authorization": "Token " + "x" * 26}),  # the header disagrees with the form
        (wrong, _without(wrong_headers, "Authorization")),
        (no_token, _without(headers, "Authorization")),  # no token at all
        (no_token, {**headers, "Authorization": "Bearer " + COMMAND_TOKEN}),  # not the Token scheme
        (good.replace(COMMAND_TOKEN.encode(), COMMAND_TOKEN[:-1].encode()), headers),  # a prefix
    ]
    with Unchanged(teleport):
        for body, sent in attempts:
            response = await served.http.post("/mattermost/command", content=body, headers=sent)
            assert (response.status_code, response.text) == (401, "unauthorized")
    assert requests(teleport) == []
    assert len(mm.calls) == 2  # the login and the signing key, at start


async def test_token_in_the_form_alone_is_enough(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    # An Outgoing OAuth connection replaces Mattermost's `Authorization: Token …` with its own bearer token.
    body, headers = command_form(mm, ALICE, "request dba INC-1")
    response = await served.http.post(
        "/mattermost/command", content=body, headers={**headers, "Authorization": "Bearer oauth-access-token"}
    )
    assert response.status_code == 200 and len(requests(teleport)) == 1


async def test_get_is_refused_with_405(served: Bot, mm: DevMattermost, teleport: DevTeleport) -> None:
    query = {"token": COMMAND_TOKEN, "user_id": ALICE.id, "text": "request dba INC-1"}
    for path in ("/mattermost/command", "/mattermost/actions", "/mattermost/dialogs"):
        response = await served.http.get(path, params=query)
        assert response.status_code == 405
    assert requests(teleport) == []


# --- buttons ----------------------------------------------------------------------------------------------


async def test_reviewer_click_on_a_channel_card_approves_and_leaves_the_card_to_the_watcher(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    request_id = await typed_request(served, mm)
    post_id = await channel_card(served, teleport, request_id)
    shown = (await served.adapter.outbound.driver.posts.get_post(post_id))["props"]["attachments"][0]
    assert [a["name"] for a in shown["actions"]] == ["Approve", "Deny"]
    assert all("integration" not in a for a in shown["actions"])  # clients never see the context

    url, body = mm.click(post_id, "Approve", user_id=BOB.id)
    response = await click(served, url, body)

    assert response.status_code == 200
    assert teleport.store.request(request_id).state is RequestState.APPROVED
    answer = response.json()
    assert answer["ephemeral_text"] == f"You approved request {request_id[-8:]}. The request is now approved."
    assert answer["skip_slack_parsing"] is True
    # No `update`: it would replace the post's message (a DM's text) and drop `from_bot`, and the watcher
    # redraws every card, this one included, once Teleport has the review (tests/contract).
    assert "update" not in answer


async def test_buttons_on_the_ephemeral_show_card_work_without_an_update(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    request_id = await typed_request(served, mm)
    answer = await slash(served, mm, BOB, f"show {request_id[-8:]}")
    (card,) = answer["attachments"]
    approve, deny = card["actions"]
    assert (approve["name"], approve["style"]) == ("Approve", "success")
    assert (deny["name"], deny["style"]) == ("Deny", "danger")
    assert approve["integration"]["url"] == served.url + "/mattermost/actions"
    assert re.fullmatch(r"[a-z0-9]+", approve["id"]) and approve["id"] != deny["id"]

    # The server keeps the context in an encrypted cookie and posts it back on the click.
    body = mm.action_request(user_id=BOB.id, channel_id=ACCESS.id, post_id=new_id(),
                             context=deny["integration"]["context"])  # fmt: skip
    response = await click(served, approve["integration"]["url"], body)

    assert teleport.store.request(request_id).state is RequestState.DENIED
    # An ephemeral post is not stored: the server would fail an `update` of it, so none is sent.
    assert response.json() == {
        "ephemeral_text": f"You denied request {request_id[-8:]}. The request is now denied.",
        "skip_slack_parsing": True,
    }


async def test_non_reviewer_click_is_refused_privately_and_teleport_is_unchanged(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    request_id = await typed_request(served, mm)
    post_id = await channel_card(served, teleport, request_id)
    for user, expected in [
        (CAROL, "You may not review this request: you have no role that allows reviewing access requests."),
        (ALICE, messages.own_request()),
    ]:
        url, body = mm.click(post_id, "Approve", user_id=user.id)
        with Unchanged(teleport):
            response = await click(served, url, body)
        assert response.status_code == 200
        assert response.json() == {"ephemeral_text": expected, "skip_slack_parsing": True}
    assert teleport.store.request(request_id).state is RequestState.PENDING


async def test_forged_action_context_is_refused_with_403_and_nothing_runs(
    served: Bot, mm: DevMattermost, teleport: DevTeleport, client_for: ClientFactory
) -> None:
    request_id = await typed_request(served, mm)
    # A second pending dba request of alice's: made with tsh, as the bot refuses a duplicate typed in chat.
    other_id = (await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-2")).id
    secret = ACTION_SECRET.encode()
    approve = signing.action_context(secret, request_id, "approve")
    forged: list[Any] = [
        {**approve, "mac": approve["mac"][:-1] + ("0" if approve["mac"][-1] != "0" else "1")},
        {**signing.action_context(secret, other_id, "approve"), "request_id": request_id},
        {**signing.action_context(secret, request_id, "deny"), "action": "approve"},
        signing.action_context(b"another secret of at least thirty-two characters", request_id, "approve"),
        {"request_id": request_id, "action": "approve"},
        {**approve, "mac": ["not", "a", "string"]},
        {**approve, "mac": "é" * 64},
        None,
        "approve",
    ]
    with Unchanged(teleport):
        for context in forged:
            body = mm.action_request(user_id=BOB.id, channel_id=ACCESS.id, post_id=new_id(), context=None)
            body["context"] = context
            response = await click(served, served.url + "/mattermost/actions", body)
            assert (response.status_code, response.text) == (403, "forbidden"), context
        broken = await served.http.post("/mattermost/actions", content=b"{not json")
        assert broken.status_code == 400
    assert {r.state for r in requests(teleport)} == {RequestState.PENDING}


async def test_a_click_mattermost_did_not_sign_for_the_clicker_now_and_once_is_refused(
    served: Bot, mm: DevMattermost, teleport: DevTeleport, caplog: pytest.LogCaptureFixture
) -> None:
    """The `user_id` of a click is believed only with a trigger ID the server signed for that user, moments
    ago, used once: a captured click cannot approve as someone else, again, or later (issue 13, item 1)."""
    request_id = await typed_request(served, mm)
    post_id = await channel_card(served, teleport, request_id)
    url, genuine = mm.click(post_id, "Approve", user_id=BOB.id)
    carol_trigger = mm.issue_trigger_id(CAROL.id)
    old = mm.issue_trigger_id(BOB.id, at_ms=int((time.time() - 120) * 1000))
    other_server = DevMattermost(team=TEAM, users=[ALICE, BOB, CAROL], channels=[ACCESS]).issue_trigger_id(BOB.id)
    attempts = {
        "bob's click carrying carol's trigger": {**genuine, "trigger_id": carol_trigger},
        "carol's user ID on bob's click": {**genuine, "user_id": CAROL.id, "user_name": "carol"},
        "a trigger two minutes old": {**genuine, "trigger_id": old},
        "a trigger another server signed": {**genuine, "trigger_id": other_server},
        "no trigger": {k: v for k, v in genuine.items() if k != "trigger_id"},
        "garbage": {**genuine, "trigger_id": "é" * 40},
    }
    unverified = {"ephemeral_text": messages.mattermost_unverified(), "skip_slack_parsing": True}
    with Unchanged(teleport), caplog.at_level(logging.WARNING):
        for what, body in attempts.items():
            response = await click(served, url, body)
            assert (response.status_code, response.json()) == (200, unverified), what
    assert sum("refused a Mattermost click" in r.getMessage() for r in caplog.records) == len(attempts)
    assert not any(carol_trigger in r.getMessage() for r in caplog.records)  # triggers are not logged

    first = await click(served, url, genuine)
    assert teleport.store.request(request_id).state is RequestState.APPROVED
    assert first.json()["ephemeral_text"].startswith("You approved request")
    replayed = await click(served, url, genuine)
    assert replayed.json() == unverified


async def test_a_slash_command_is_believed_only_with_a_trigger_signed_for_its_user(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    """A command token that leaked is not enough to act as anyone: the user must be the one Mattermost signed."""
    body, headers = command_form(mm, ALICE, "request dba INC-1")
    as_bob = body.replace(ALICE.id.encode(), BOB.id.encode())
    with Unchanged(teleport):
        response = await served.http.post("/mattermost/command", content=as_bob, headers=headers)
    assert response.json()["text"] == messages.mattermost_unverified()
    assert (await served.http.post("/mattermost/command", content=body, headers=headers)).json()["text"].startswith(
        "Requested dba for alice")
    with Unchanged(teleport):
        again = await served.http.post("/mattermost/command", content=body, headers=headers)
    assert again.json()["text"] == messages.mattermost_unverified()


@pytest.mark.parametrize("key_published", [False])
async def test_without_the_servers_key_every_click_is_refused_and_readyz_says_why(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    """The key could not be read at start (Mattermost answered 500): nothing is believed until it is."""
    assert "cannot verify clicks and commands" in (await served.adapter.why_not_ready() or "")
    request_id = (await served.adapter.ctx.backend.create_request(user="alice", roles=["dba"], reason="INC-1")).id
    post_id = await channel_card(served, teleport, request_id)
    url, body = mm.click(post_id, "Approve", user_id=BOB.id)
    with Unchanged(teleport):
        response = await click(served, url, body)
    assert response.json()["ephemeral_text"] == messages.mattermost_unverifiable()

    mm.clear_faults()
    await served.adapter.triggers.load()  # what the next click does once a minute has passed
    assert await served.adapter.why_not_ready() is None
    url, body = mm.click(post_id, "Approve", user_id=BOB.id)
    assert (await click(served, url, body)).json()["ephemeral_text"].startswith("You approved request")


# --- text safety ------------------------------------------------------------------------------------------

HOSTILE_REASON = (
    "@channel @all @here @everyone <!channel> <!here|here> **bold** [x](http://evil.example) `x` ~~s~~"
)


async def test_mentions_in_a_reason_notify_nobody_in_any_response_or_post(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    answers: list[Any] = [await slash(served, mm, ALICE, f"request dba {HOSTILE_REASON}")]
    (stored,) = requests(teleport)
    assert stored.reason == HOSTILE_REASON  # Teleport keeps what was typed; only what is shown is defused
    answers.append(await slash(served, mm, BOB, f"show {stored.id}"))
    answers.append(await slash(served, mm, ALICE, f"request dba-reviewer {HOSTILE_REASON}"))  # a refusal
    answers.append(await slash(served, mm, BOB, "list pending"))
    post_id = await channel_card(served, teleport, stored.id)
    url, body = mm.click(post_id, "Approve", user_id=BOB.id)
    answers.append((await click(served, url, body)).json())
    dialog = await open_dialog(served, mm)
    await submit(served, mm, dialog, {"roles": ["dba"], "reason": HOSTILE_REASON})
    dm = mm.direct_channel_id(BOT_USER_ID, ALICE.id)
    await eventually(lambda: bool(mm.posts_in(dm)))

    sent = [json.dumps(a, ensure_ascii=False) for a in answers]
    sent += [json.dumps(call.json, ensure_ascii=False) for call in mm.calls]
    sent += [json.dumps(post, ensure_ascii=False) for post in mm.posts.values()]
    for text in sent:  # outside code; in code Mattermost notifies nobody (tests/contract checks a real server)
        assert not BROADCAST.search(re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.DOTALL)), text
    reason = {f["title"]: f["value"] for f in answers[0]["attachments"][0]["fields"]}["Reason"]
    # Exactly as typed, all of it in one code span, where Markdown styles, links and notifies nothing; only
    # the reason's own backticks (which would end the span) are shown as ‵.
    assert reason == "`" + HOSTILE_REASON.replace("`", "\u2035") + "`"


def test_markdown_escaping_leaves_nothing_to_interpret() -> None:
    assert markdown("a_b *c* [d](e) #g 1. h <!i> @here ~j~ $k$ &amp; \\") == (
        "a\\_b \\*c\\* \\[d\\]\\(e\\) \\#g 1. h "
        "\u2039\\!i\\> @\u2060here \\~j\\~ \\$k\\$ \\&amp; \\\\"
    )
    # A code span (`commands.text.as_typed` makes them; user text keeps no backtick of its own) is shown as
    # it is: Markdown interprets nothing inside one, and a mention there notifies nobody.
    assert markdown("ok `*c* [d](e) @here` and *x* @here") == "ok `*c* [d](e) @here` and \\*x\\* @\u2060here"
    assert markdown("```\n1. a\n*b*\n```") == "```\n1. a\n*b*\n```"
    assert markdown("1. one\n  22) two") == "1\\. one\n  22\\) two"


def test_a_linked_title_is_not_escaped_because_the_web_client_shows_it_as_plain_text() -> None:
    request = AccessRequest(id="0f0f0f0f-0000-4000-8000-000000000001", user="o_brien", roles=("db-admin",),
                            state=RequestState.PENDING, reason="INC-1 [prod]")
    renderer = Renderer(actions_url="http://bot.test/mattermost/actions", action_secret=b"s" * 32)
    now = FixedClock().now()
    linked = renderer.attachment(messages.card(request, now=now, web_url="https://t.example.com/web/x"),
                                 ephemeral=False)
    assert linked["title_link"] == "https://t.example.com/web/x"
    assert "\\" not in linked["title"] and "o_brien" in linked["title"] and "db-admin" in linked["title"]
    unlinked = renderer.attachment(messages.card(request, now=now), ephemeral=False)
    assert unlinked["title"] == markdown(unlinked["fallback"].split(": ")[0])  # Markdown there: escaped


# --- the request dialog -----------------------------------------------------------------------------------


async def open_dialog(bot: Bot, mm: DevMattermost, user: MMUser = ALICE) -> dict[str, Any]:
    answer = await slash(bot, mm, user, "request")
    # Empty text and no attachments: Mattermost posts nothing, the form is what the person sees.
    assert answer == {"response_type": "ephemeral", "text": "", "skip_slack_parsing": True}
    opened = mm.dialogs[-1]
    assert (opened["user_id"], opened["url"]) == (user.id, bot.url + "/mattermost/dialogs")
    assert opened["problems"] == []
    return dict(opened["dialog"])


async def submit(
    bot: Bot, mm: DevMattermost, dialog: dict[str, Any], submission: dict[str, Any], user: MMUser = ALICE
) -> httpx.Response:
    body = mm.dialog_submission(callback_id=dialog["callback_id"], state=dialog["state"], user_id=user.id,
                                channel_id=ACCESS.id, team_id=TEAM.id, submission=submission)  # fmt: skip
    return await bot.http.post("/mattermost/dialogs", json=body)


async def test_dialog_creates_the_same_request_as_the_typed_command(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    dialog = await open_dialog(served, mm)
    elements = {e["name"]: e for e in dialog["elements"]}
    assert list(elements) == ["roles", "duration", "reviewers", "reason"]
    assert elements["roles"]["options"] == [{"text": "dba", "value": "dba"}]
    assert elements["reason"]["optional"] is True

    submission = {"roles": ["dba"], "duration": "2h", "reviewers": "@bob", "reason": "INC-4411 replica lag"}
    response = await submit(served, mm, dialog, submission)
    assert (response.status_code, response.json()) == (200, {})
    # Pending, it would make the typed one a duplicate, which the bot refuses: it is decided first.
    (made,) = requests(teleport)
    teleport.store.requests[made.id] = replace(made, state=RequestState.DENIED)
    await slash(served, mm, ALICE, "request dba --for 2h --reviewers bob INC-4411 replica lag")

    from_dialog, typed = sorted(requests(teleport), key=lambda r: r.created or 0)
    for request in (from_dialog, typed):
        assert request.access_expires and request.created
    assert (from_dialog.user, from_dialog.roles, from_dialog.reason, from_dialog.suggested_reviewers) == (
        typed.user, typed.roles, typed.reason, typed.suggested_reviewers)
    dialog_duration = from_dialog.access_expires - from_dialog.created
    assert abs(dialog_duration - (typed.access_expires - typed.created)) < timedelta(seconds=5)

    # Mattermost cannot answer a submission with a message: the outcome arrives as a DM from the bot.
    dm = mm.direct_channel_id(BOT_USER_ID, ALICE.id)
    await eventually(lambda: bool(mm.posts_in(dm)))
    (post,) = mm.posts_in(dm)
    assert post["message"] == f"Requested dba for alice (request {from_dialog.id[-8:]}). Asked to review: bob."
    assert post["props"]["attachments"][0]["title"] == "Access request from alice for dba"


async def test_dialog_fields_are_checked_by_the_grammar(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    dialog = await open_dialog(served, mm)
    with Unchanged(teleport):
        wrong = await submit(served, mm, dialog, {"roles": "dba", "duration": "forever", "reviewers": "b!"})
        none = await submit(served, mm, dialog, {"roles": [], "reason": "x"})
        capped = await submit(served, mm, dialog, {"roles": "dba", "duration": "10h", "reason": "x"})
    errors = wrong.json()["errors"]
    assert set(errors) == {"duration", "reviewers"}
    assert errors["duration"].startswith("`forever` is not a duration")
    assert "Usage" not in errors["duration"]
    assert none.json() == {"errors": {"roles": messages.request_form_no_roles()}}
    capped_message = messages.duration_capped(timedelta(hours=10), timedelta(hours=8), ["dba"])
    assert capped.json() == {"error": capped_message}
    assert requests(teleport) == []


@pytest.mark.parametrize("seed_yaml", [seed_text(REASON_REQUIRED)], ids=["reason required"])
async def test_dialog_requires_a_reason_when_teleport_does(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    dialog = await open_dialog(served, mm)
    assert {e["name"]: e for e in dialog["elements"]}["reason"]["optional"] is False
    response = await submit(served, mm, dialog, {"roles": ["dba"]})
    assert response.json() == {"errors": {"reason": messages.reason_required(["dba"])}}
    assert requests(teleport) == []


async def test_dialog_submission_the_bot_did_not_issue_is_refused_with_403(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    dialog = await open_dialog(served, mm)
    submission = {"roles": ["dba"], "reason": "INC-1"}
    secret = ACTION_SECRET.encode()
    stale = signing.dialog_state(secret, ALICE.id, "request", int(time.time()) - 7200)
    with Unchanged(teleport):
        as_bob = await submit(served, mm, dialog, submission, user=BOB)  # alice's form, submitted as bob
        forged = await submit(served, mm, {**dialog, "state": "1.deadbeef"}, submission)
        other_form = await submit(served, mm, {**dialog, "callback_id": "deny"}, submission)
        other_mac = {**dialog, "state": "1." + signing.action_mac(secret, ALICE.id, "request")}
        action_mac = await submit(served, mm, other_mac, submission)
        expired = await submit(served, mm, {**dialog, "state": stale}, submission)
    for refused in (as_bob, forged, other_form, action_mac):
        assert (refused.status_code, refused.text) == (403, "forbidden")
    assert expired.json() == {"error": messages.request_form_expired()}
    assert requests(teleport) == []


# --- outbound: posts, retries, DMs, start-up --------------------------------------------------------------


async def test_500_on_post_creation_is_retried_and_the_post_lands_once(
    served: Bot, mm: DevMattermost
) -> None:
    mm.fail_next("POST /api/v4/posts", 500, times=2)
    mm.fail_next("POST /api/v4/posts", 502)  # a proxy's HTML page: InvalidMattermostError
    mm.fail_next("POST /api/v4/posts", 503)
    post = await served.adapter.outbound.create_post(ACCESS.id, "an access request")

    assert statuses(mm, "POST", "/api/v4/posts") == [500, 500, 502, 503, 201]
    assert [p["id"] for p in mm.posts_in(ACCESS.id)] == [post["id"]]
    # Every attempt carried the same pending_post_id, which Mattermost deduplicates on.
    pending = {c.json["pending_post_id"] for c in mm.calls if c.path == "/api/v4/posts"}
    assert len(pending) == 1 and pending.pop().startswith(BOT_USER_ID + ":")


async def test_post_creation_gives_up_after_its_budget_with_a_logged_error(
    served: Bot, mm: DevMattermost, caplog: pytest.LogCaptureFixture
) -> None:
    mm.fail_next("POST /api/v4/posts", 500, times=10_000)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="chatops_bot.adapters.mattermost.outbound"):
        with pytest.raises(UnknownMattermostError):
            await served.adapter.outbound.create_post(ACCESS.id, "never lands")
    assert time.monotonic() - started < FAST_RETRY.budget + 1
    assert any("giving up" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert len(statuses(mm, "POST", "/api/v4/posts")) > 2 and mm.posts == {}


async def test_a_post_mattermost_refuses_is_not_retried(served: Bot, mm: DevMattermost) -> None:
    with pytest.raises(InvalidOrMissingParameters):
        await served.adapter.outbound.create_post(ACCESS.id, "é" * (MAX_POST_RUNES + 1))
    assert statuses(mm, "POST", "/api/v4/posts") == [400]


async def test_patch_is_retried_on_500_and_dm_goes_to_the_direct_channel(
    served: Bot, mm: DevMattermost
) -> None:
    outbound = served.adapter.outbound
    dm = await outbound.direct_message(ALICE.id, "Your request was approved")
    mm.fail_next("PUT /api/v4/posts", 500)
    patched = await outbound.patch_post(dm["id"], message="Your request was approved by bob")

    assert dm["channel_id"] == mm.direct_channel_id(BOT_USER_ID, ALICE.id)
    assert patched["message"] == mm.posts[dm["id"]]["message"] == "Your request was approved by bob"
    assert statuses(mm, "PUT", f"/api/v4/posts/{dm['id']}/patch") == [500, 200]
    await outbound.direct_message(ALICE.id, "again")
    assert statuses(mm, "POST", "/api/v4/channels/direct") == [201]  # the DM channel is remembered
    assert (await outbound.user_by_email("Bob@Example.com") or {}).get("id") == BOB.id
    assert await outbound.user_by_email("nobody@example.com") is None
    assert (await outbound.user(CAROL.id))["username"] == "carol"


async def test_start_says_which_key_is_wrong(
    mm: DevMattermost, teleport: DevTeleport, ctx: Context
) -> None:
    wrong_token = settings_for(mm, teleport, "http://bot.test", bot_token="not-the-bot-token")
    refused = build(wrong_token, ctx, retry=FAST_RETRY)
    with pytest.raises(StartError, match=r"^mattermost\.bot_token: Mattermost at .* refused the token"):
        await refused.start()
    await refused.stop()

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    unreachable = build(settings_for(mm, teleport, "http://bot.test", url=f"http://127.0.0.1:{port}"), ctx,
                        retry=FAST_RETRY)
    with pytest.raises(StartError, match=r"^mattermost\.url: cannot reach Mattermost"):
        await unreachable.start()
    await unreachable.stop()

    with pytest.raises(StartError, match=r"^mattermost\.url: .* has a path"):
        build(settings_for(mm, teleport, "http://bot.test", url=mm.url + "/chat"), ctx)


def test_driver_options_split_the_url_and_always_set_a_timeout() -> None:
    settings = Settings.model_validate({
        "teleport": {"addr": "t:3025", "identity_file": "x"},
        "mattermost": {"url": "https://[::1]/", "bot_token": "t", "command_tokens": ["c"],
                       "action_secret": ACTION_SECRET, "public_url": "https://bot.example.com"},
    })  # fmt: skip
    assert settings.mattermost is not None
    options = driver_options(settings.mattermost)
    assert (options["scheme"], options["url"], options["port"]) == ("https", "[::1]", 443)
    assert options["request_timeout"] > 0


@pytest.mark.parametrize("match_email", [True])
@pytest.mark.parametrize("seed_yaml", [seed_text(extra=DAVE_BY_EMAIL)], ids=["dave by e-mail"])
async def test_email_links_a_user_without_the_trait_when_match_email_is_on(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    answer = await slash(served, mm, DAVE, "request dba INC-7")
    (stored,) = requests(teleport)
    assert stored.user == "dave@example.com"
    assert answer["text"].startswith("Requested dba for dave@example.com")
    assert statuses(mm, "GET", f"/api/v4/users/{DAVE.id}") == [200]


# --- registering the command ------------------------------------------------------------------------------


async def test_register_says_who_else_holds_access_when_the_trigger_is_taken() -> None:
    admin = MMUser(_id("adminmmid"), "admin", "admin@example.com", token="admin-token",
                   roles="system_admin system_user")
    # The bot may manage its own slash commands only: someone else's /access is invisible to it.
    mm = DevMattermost(team=TEAM, users=[admin], channels=[ACCESS], command_managers=[BOT_USER_ID])
    await mm.start()
    try:
        async with httpx.AsyncClient() as http:
            created = await http.post(
                f"{mm.url}/api/v4/commands", headers={"Authorization": "Bearer admin-token"},
                json={"team_id": TEAM.id, "trigger": "access", "method": "P", "url": "https://old.example.com/x"})
        assert created.status_code == 201
        driver = AsyncTypedDriver({"url": "127.0.0.1", "port": mm.port, "scheme": "http", "token": mm.bot_token,
                                   "request_timeout": 10})
        await driver.login()
        try:
            with pytest.raises(RegisterError) as raised:
                await register_command(driver, "ops", "https://bot.example.com/mattermost/command")
        finally:
            await driver.close()
    finally:
        await mm.stop()
    assert str(raised.value).startswith("--team: /access already exists on team 'ops', created by another")
    assert "--admin-token-env" in str(raised.value) and "\n" not in str(raised.value)


async def test_register_command_creates_then_updates_idempotently(mm: DevMattermost) -> None:
    driver = AsyncTypedDriver({"url": "127.0.0.1", "port": mm.port, "scheme": "http", "token": mm.bot_token,
                               "request_timeout": 10})  # fmt: skip
    await driver.login()
    try:
        url = "https://bot.example.com/mattermost/command"
        created, token = await register_command(driver, "ops", url)
        again, same_token = await register_command(driver, "ops", url)
        moved_url = "https://bot2.example.com/mattermost/command"
        moved, moved_token = await register_command(driver, "ops", moved_url)
    finally:
        await driver.close()

    assert (created["trigger"], created["method"]) == ("access", "P")
    assert (created["url"], created["team_id"]) == (url, TEAM.id)
    assert created["auto_complete"] is True
    assert created["auto_complete_hint"] == "request|roles|list|show|approve|deny|cancel|help …"
    assert created["auto_complete_desc"] == created["description"] == messages.command_description()
    assert token == created["token"] == same_token == moved_token
    assert again["id"] == moved["id"] == created["id"]
    assert moved["url"] == "https://bot2.example.com/mattermost/command"
    assert list(mm.commands) == [created["id"]] and mm.commands[created["id"]]["url"] == moved["url"]
    assert statuses(mm, "POST", "/api/v4/commands") == [201]
    assert statuses(mm, "PUT", f"/api/v4/commands/{created['id']}") == [200]  # only when something changed


# --- Extend -----------------------------------------------------------------------------------------------

# alice may request three roles and bob reviews them all; her request is for two of them.
THREE_ROLES = seed_text(
    ("      roles: [dba]\n      suggested_reviewers",
     "      roles: [dba, auditor, ops]\n      suggested_reviewers"),
    ("    review_requests:\n      roles: [dba]\n",
     "    review_requests:\n      roles: [dba, auditor, ops]\n"),
    extra="".join(f"---\nkind: role\nversion: v7\nmetadata: {{name: {name}}}\nspec: {{}}\n"
                  for name in ("auditor", "ops")),
)


async def extend_dm(bot: Bot, teleport: DevTeleport, request_id: str) -> str:
    """DM the requester the request's card with an Extend button, as an expiry reminder does; its post ID."""
    card = messages.card(teleport.store.request(request_id), now=FixedClock().now())
    post = bot.adapter.render.card_post(replace(card, actions=(Action.EXTEND,)))
    created = await bot.adapter.outbound.direct_message(ALICE.id, post["message"], props=post["props"])
    return str(created["id"])


@pytest.mark.parametrize("seed_yaml", [THREE_ROLES], ids=["three requestable roles"])
async def test_extend_opens_the_dialog_prefilled_and_its_submission_requests_the_same_roles_anew(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    answer = await slash(served, mm, ALICE, "request dba,auditor --for 1h INC-4411 replica lag")
    (request_id,) = [r.id for r in requests(teleport)]
    assert answer["text"].startswith(f"Requested dba, auditor for alice (request {request_id[-8:]}).")
    assert (await slash(served, mm, BOB, f"approve {request_id}"))["text"].startswith("You approved")
    original = teleport.store.request(request_id)
    assert original.state is RequestState.APPROVED
    post_id = await extend_dm(served, teleport, request_id)
    shown = (await served.adapter.outbound.driver.posts.get_post(post_id))["props"]["attachments"][0]
    assert [(a["name"], a["style"]) for a in shown["actions"]] == [("Extend", "primary")]

    url, body = mm.click(post_id, "Extend", user_id=ALICE.id)
    with Unchanged(teleport):
        response = await click(served, url, body)
    assert (response.status_code, response.json()) == (200, {})  # the dialog is the answer
    opened = mm.dialogs[-1]
    assert (opened["user_id"], opened["trigger_id"]) == (ALICE.id, body["trigger_id"])
    assert (opened["url"], opened["problems"]) == (served.url + "/mattermost/dialogs", [])
    elements = {e["name"]: e for e in opened["dialog"]["elements"]}
    assert [o["value"] for o in elements["roles"]["options"]] == ["dba", "auditor", "ops"]
    assert elements["roles"]["default"] == "dba,auditor"  # a multiselect's defaults, comma-separated
    reason = f"extension of {request_id[-8:]}: INC-4411 replica lag"
    assert elements["reason"]["default"] == reason

    # Mattermost submits the defaults as they stand: a multiselect as a list.
    submission = {"roles": elements["roles"]["default"].split(","), "duration": "1h", "reason": reason}
    response = await submit(served, mm, opened["dialog"], submission)
    assert (response.status_code, response.json()) == (200, {})
    (extension,) = [r for r in requests(teleport) if r.id != request_id]
    assert (extension.user, set(extension.roles), extension.reason) == ("alice", {"dba", "auditor"}, reason)
    assert extension.state is RequestState.PENDING
    assert teleport.store.request(request_id) == original  # the extended request is untouched
    dm = mm.direct_channel_id(BOT_USER_ID, ALICE.id)
    await eventually(lambda: len(mm.posts_in(dm)) == 2)
    assert f"for alice (request {extension.id[-8:]})" in mm.posts_in(dm)[-1]["message"]


async def test_extend_that_cannot_open_the_dialog_says_so_and_changes_nothing(
    served: Bot, mm: DevMattermost, teleport: DevTeleport
) -> None:
    request_id = await typed_request(served, mm)
    post_id = await extend_dm(served, teleport, request_id)
    url, body = mm.click(post_id, "Extend", user_id=ALICE.id)
    # Genuine, so the bot accepts it, but older than the server lets a dialog be opened with.
    stale = mm.issue_trigger_id(ALICE.id, at_ms=int((time.time() - 45) * 1000))
    with Unchanged(teleport):
        response = await click(served, url, {**body, "trigger_id": stale})
    assert response.status_code == 200
    not_opened = messages.request_form_not_opened()
    assert response.json() == {"ephemeral_text": not_opened, "skip_slack_parsing": True}
    assert mm.dialogs == []


async def test_forged_extend_context_is_refused_with_403_and_opens_nothing(
    served: Bot, mm: DevMattermost, teleport: DevTeleport, client_for: ClientFactory
) -> None:
    request_id = await typed_request(served, mm)
    # A second pending dba request of alice's: made with tsh, as the bot refuses a duplicate typed in chat.
    other_id = (await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-2")).id
    secret = ACTION_SECRET.encode()
    extend = signing.action_context(secret, request_id, "extend")
    forged: list[Any] = [
        {**extend, "mac": extend["mac"][:-1] + ("0" if extend["mac"][-1] != "0" else "1")},
        {**signing.action_context(secret, other_id, "extend"), "request_id": request_id},
        {**signing.action_context(secret, request_id, "approve"), "action": "extend"},
        signing.action_context(b"another secret of at least thirty-two characters", request_id, "extend"),
        {"request_id": request_id, "action": "extend"},
    ]
    with Unchanged(teleport):
        for context in forged:
            body = mm.action_request(user_id=ALICE.id, channel_id=ACCESS.id, post_id=new_id(),
                                     context=context)  # fmt: skip
            response = await click(served, served.url + "/mattermost/actions", body)
            assert (response.status_code, response.text) == (403, "forbidden"), context
    assert mm.dialogs == []
    assert [r.id for r in requests(teleport)] == [request_id, other_id]


def test_extend_reason_is_capped_to_the_dialog_limit_and_only_requestable_roles_are_preselected() -> None:
    capabilities = Capabilities(requestable_roles=("auditor", "dba"))
    dialog = request_dialog(capabilities, "state", initial_roles=("dba", "gone"), initial_reason="x" * 5000)
    elements = {e["name"]: e for e in dialog["elements"]}
    assert elements["roles"]["default"] == "dba"
    assert len(elements["reason"]["default"]) == REASON_MAX_LENGTH == elements["reason"]["max_length"]
    plain = {e["name"]: e for e in request_dialog(capabilities, "state")["elements"]}
    assert plain["roles"]["default"] == "" and "default" not in plain["reason"]


def test_a_trigger_re_encoded_is_still_the_trigger_already_used() -> None:
    """An ECDSA signature (r, s) has a twin (r, n - s), and base64 has spare bits: the replay memory must
    know the trigger by what was signed, not by how it is written."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    from chatops_bot.adapters.mattermost.trigger import TriggerVerifier, load_key

    server = DevMattermost(team=TEAM, users=[ALICE], channels=[ACCESS])
    genuine = server.issue_trigger_id(ALICE.id)
    client_id, user_id, millis, signature = base64.b64decode(genuine).decode().split(":")
    r, s = decode_dss_signature(base64.b64decode(signature))
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256's n
    twin = base64.b64encode(encode_dss_signature(r, order - s)).decode()
    re_encoded = base64.b64encode(f"{client_id}:{user_id}:{millis}:{twin}".encode()).decode()
    verifier = TriggerVerifier(load_key(server.signing_public_key))
    assert verifier.check(re_encoded, ALICE.id) is None  # the twin is a valid signature too
    assert verifier.check(genuine, ALICE.id) == "a trigger ID already used"
