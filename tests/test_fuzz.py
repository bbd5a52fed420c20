"""Hypothesis against every HTTP endpoint: whatever Slack or Mattermost (or someone pretending to be them)
posts, the bot answers with a status from a short list, never a 500, and neither its answer nor anything
it then sends to the chat platform carries a traceback, an exception's name, an apology for a bug, or a
live `@channel`; nor does it log an error or a traceback. Bodies are fuzzed per platform; headers (Slack's
signature headers above all: missing, repeated, non-ASCII, huge) and methods for every route, `/healthz`,
`/readyz` and `/metrics` included.

One bot per module, as `chatops-bot serve` assembles it (both platforms, the devstack Teleport behind it),
served by uvicorn on 127.0.0.1 and called over a real socket. Slack bodies are signed with the signing
secret so the fuzz reaches the parsers; a share of them is unsigned or tampered with. Mattermost commands
carry the right command token, and clicks and dialog submissions carry the bot's own MACs, so they reach
the handlers too. Placeholders (`ZqREQqZ`, …) are swapped for a real request ID, a live `response_url`
or trigger ID at send time.
"""

from __future__ import annotations

import builtins
import inspect
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import grpc
import grpc.aio
import httpx
import mattermostautodriver.exceptions
import pydantic
import pytest
import pytest_asyncio
import slack_bolt.error
import slack_sdk.errors
import starlette.exceptions
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import commands.errors
from chatops_bot import logs
from chatops_bot.adapters.mattermost import MattermostAdapter, signing
from chatops_bot.adapters.slack import SlackAdapter, render
from chatops_bot.config import Settings
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.devstack.mattermost import DevMattermost, new_id
from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.server import build_app
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from chatops_bot.wiring import chat_adapters, command_context, teleport_client
from commands.forms import DURATION, REASON, REVIEWERS, ROLES
from conftest import free_port
from test_watcher import ACCESS_MM, MM_USERS, TEAM, bot_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The same payloads every run (derandomize), so that a red run is a regression, not a new draw; a payload
# that once found a bug is pinned below with @example. CHATOPS_FUZZ_EXAMPLES=20000 digs deeper (the
# default keeps the suite fast: about 12 s for the three tests, 2,100 requests).
EXAMPLES = int(os.environ.get("CHATOPS_FUZZ_EXAMPLES", "600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, print_blob=True, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLACK_STATUSES = {200, 400, 401, 404, 413}  # 404: a signed payload no listener takes (bolt's answer)
MATTERMOST_STATUSES = {200, 400, 401, 403, 413}
REQ, URL, TRIGGER = "ZqREQqZ", "ZqURLqZ", "ZqTRIGqZ"
APOLOGY = "something went wrong on my side"


def _exception_names() -> re.Pattern[str]:
    """Every exception class a reply could leak, from Python and each library on the request path.

    Names that are plain English words (`Exception`, `Warning`, `Unavailable`) are left out; the rest
    are CamelCase or end in `Error`, and appear in no sentence the bot writes."""
    modules = [builtins, commands.errors, slack_sdk.errors, slack_bolt.error, mattermostautodriver.exceptions,
               httpx, grpc, grpc.aio, aiohttp, pydantic, starlette.exceptions]
    names = {obj.__name__ for module in modules for obj in vars(module).values()
             if inspect.isclass(obj) and issubclass(obj, BaseException)}
    distinctive = sorted(n for n in names if n.endswith("Error") or sum(c.isupper() for c in n) >= 2)
    return re.compile(r"\b(" + "|".join(distinctive) + r")\b")


EXCEPTION_NAMES = _exception_names()
SLACK_BROADCAST = re.compile(r"<!(?:channel|here|everyone|subteam)", re.IGNORECASE)
MATTERMOST_BROADCAST = re.compile(r"@(?:here|channel|all|everyone)\b", re.IGNORECASE)


class Problems(logging.Handler):
    """Log records that mean the bot hit something it did not expect: errors, and anything with a traceback
    (uvicorn's "Exception in ASGI application" too: the stack sends uvicorn's lines to the root logger,
    as `chatops-bot serve` does, and quiets the Mattermost driver's own line for each refused call as it
    does)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@dataclass
class Stack:
    """The bot (both platforms) on loopback, the stand-ins behind it, and what they have recorded."""

    teleport: DevTeleport
    slack: DevSlack
    mm: DevMattermost
    slack_adapter: SlackAdapter
    http: httpx.AsyncClient
    secret: bytes  # the Mattermost action secret, to sign clicks and dialog states as the bot does
    command_token: str
    problems: Problems
    checked: dict[str, int] = field(default_factory=dict)

    def request_id(self, index: int) -> str:
        ids = sorted(self.teleport.store.requests)
        return ids[index % len(ids)] if ids else str(uuid.uuid4())

    def fill(self, text: str, index: int, mm_user: str = "") -> str:
        """Placeholders swapped for things that exist right now (`index` picks the request)."""
        if REQ in text:
            text = text.replace(REQ, self.request_id(index))
        if URL in text:
            text = text.replace(URL, self.slack.new_response_url(channel_id="C0ACCESS", user_id="U0ALICE"))
        if TRIGGER in text:
            text = text.replace(TRIGGER, self.mm.issue_trigger_id(mm_user) if mm_user else
                                self.slack.issue_trigger_id())
        return text

    def check_answer(self, answer: httpx.Response, sent: str, broadcast: re.Pattern[str]) -> None:
        self.check_text(answer.text, sent, f"the answer (HTTP {answer.status_code})", broadcast)

    def check_text(self, text: str, sent: str, where: str, broadcast: re.Pattern[str]) -> None:
        assert "Traceback" not in text, f"{where}: {text[:2000]}"
        leaked = {name for name in EXCEPTION_NAMES.findall(text) if name not in sent}
        assert not leaked, f"{where} names {leaked}: {text[:2000]}"
        assert APOLOGY not in text, f"{where} apologises for a bug: {text[:2000]}"
        assert not broadcast.search(text), f"{where} would notify a whole channel: {text[:2000]}"

    def check_outbound(self, sent: str) -> None:
        """What the bot sent the stand-ins since the last check; `sent` is what this example posted."""
        for where, recorded, broadcast in (
            ("Slack Web API", [call.params for call in self.slack.calls], SLACK_BROADCAST),
            ("Slack response_url", [post.body for post in self.slack.response_url_posts], SLACK_BROADCAST),
            ("Mattermost API", [call.json for call in self.mm.calls], MATTERMOST_BROADCAST),
        ):
            for body in recorded[self.checked.get(where, 0):]:
                self.check_text(json.dumps(body, ensure_ascii=False, default=str), sent, where, broadcast)
            self.checked[where] = len(recorded)
        found = [f"{r.name}: {r.getMessage()}" for r in self.problems.records]
        self.problems.records.clear()
        assert not found, f"the bot logged errors: {found}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(cluster_ca: ClusterCA, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    teleport = DevTeleport(load_seed(demo_seed_text()), ca=cluster_ca)
    await teleport.start("127.0.0.1:0")
    slack = DevSlack()
    mm = DevMattermost(team=TEAM, users=list(MM_USERS.values()), channels=[ACCESS_MM])
    await slack.start()
    await mm.start()
    port = free_port()
    config = bot_settings(tmp_path_factory.mktemp("fuzz"), teleport, slack, mm, port)
    settings_ = Settings.model_validate(config)
    client = teleport_client(settings_)
    adapters = chat_adapters(settings_, command_context(settings_, client))
    for adapter in adapters:
        await adapter.start()
    slack_adapter, mm_adapter = adapters
    assert isinstance(slack_adapter, SlackAdapter) and isinstance(mm_adapter, MattermostAdapter)
    server = LoopbackServer(build_app(adapters))
    await server.start("127.0.0.1", port)
    identity = tmp_path_factory.mktemp("alice") / "alice.pem"
    write_identity_file(teleport.identity("alice"), identity)
    alice = TeleportClient(teleport.addr, IdentitySource(identity_file=str(identity)))
    await alice.create_request(user="alice", roles=("dba",), reason="something to click on")
    await alice.close()
    logs.quiet_libraries()
    logs.uvicorn_through_root()  # after every server's start: uvicorn sets its own loggers up at each
    problems = Problems()
    logging.getLogger().addHandler(problems)
    secret, token = config["mattermost"]["action_secret"].encode(), config["mattermost"]["command_tokens"][0]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        stack = Stack(teleport, slack, mm, slack_adapter, http, secret, token, problems)
        try:
            yield stack
        finally:
            await server.stop()
            for adapter in adapters:
                await adapter.stop()  # lets what was answered in the background finish first
            logging.getLogger().removeHandler(problems)
            await client.close()
            await slack.stop()
            await mm.stop()
            await teleport.stop()
    stack.check_outbound(sent="")


# --- strategies shared by both platforms -----------------------------------------------------------------

CONTROL = st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Mn"]), max_size=8)
HOSTILE = st.sampled_from([
    "<!channel>", "<!here>", "<!everyone>", "<!subteam^S0TEAM>", "<@U0BOB>", "<#C0ACCESS>", "@here",
    "@channel", "@all", "@everyone", "@bob", "~access-requests", "<https://evil.example|click>", "*b*", "_i_",
    "`c`", "```", "~s~", "> q", "# h", "[x](https://evil.example)", "![i](https://evil.example/i.png)",
    "&amp;", "&lt;!channel&gt;", "\u202etxet", "\u2066", "\u200b", "\u2060", "\x00", "\r\n", "\t", "\\", '"',
    "'", "%00", "%s%n", "{0}", "${x}", "💥", "e\u0301", "👩\u200d💻", "\ud7ff", "\U0010fffd",
])
WORDS = st.sampled_from([
    "request", "list", "show", "approve", "deny", "help", "mine", "pending", "active", "all", "--for",
    "--page", "--reviewers", "--reason", "--", "-", "dba", "developer", "requester", "admin", "*", "bob",
    "alice", "carol", "2h", "90m", "0s", "-1h", "1d", "8h1s", "99999999999999999999h", "1e9h", "0", "-1",
    REQ, REQ[:4], "01890000-0000-7000-8000-000000000000", "../../etc/passwd",
])
HUGE = st.tuples(st.sampled_from(["a", "é", "💥", "<!here>", " ", "\n", "\x00", "x" * 7]),
                 st.integers(1_000, 300_000)).map(lambda pair: pair[0] * pair[1])
LINES = st.sampled_from([
    "request", "list", "list all", "list pending --page 2", "help", "help request", f"approve {REQ}",
    f"deny {REQ} not now", f"show {REQ}", "request dba --for 1h fuzzed",
    "request dba --reviewers bob,carol <!here>", f"approve {REQ} <@U0BOB> *ok*",
])
TEXT = st.one_of(
    LINES,
    st.lists(st.one_of(WORDS, HOSTILE, CONTROL, st.text(max_size=12)), max_size=12).map(" ".join),
    st.text(max_size=200),
    HUGE,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | HOSTILE | WORDS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
NOT_A_STRING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.lists(JSON, max_size=3),
                         st.dictionaries(st.text(max_size=5), JSON, max_size=3))
DEEP = st.integers(50, 200_000).map(lambda depth: "[" * depth + "]" * depth)


def pick(*choices: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of `choices`, each as likely as listed (one listed twice comes twice as often). Not `one_of`:
    Hypothesis flattens nested `one_of`s and then picks among all their branches alike."""
    return st.sampled_from(choices).flatmap(lambda choice: choice)


def mostly(good: st.SearchStrategy[Any], junk: st.SearchStrategy[Any] = NOT_A_STRING
           ) -> st.SearchStrategy[Any]:
    """`good` four times in five, else `junk`: enough of the structure Slack and Mattermost send survives
    for the fuzz to reach the handlers, and every level of it is sometimes wrong."""
    return pick(good, good, good, good, junk)


def junk_or(*good: Any) -> st.SearchStrategy[Any]:
    """Mostly one of the values a real request carries, sometimes any text or any JSON at all."""
    return mostly(st.sampled_from(good), st.one_of(TEXT, NOT_A_STRING))


def form(fields: dict[str, Any], extra: list[tuple[str, str]]) -> str:
    """A form body; values that are not strings are sent as their JSON text."""
    pairs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in fields.items()]
    return urlencode([*pairs, *extra])


EXTRA_FIELDS = st.lists(st.tuples(st.text(max_size=10), st.text(max_size=30)), max_size=3)


@dataclass(frozen=True)
class Raw:
    """A body sent as is: text (UTF-8) or bytes that need not decode."""

    body: str | bytes
    content_type: str


FORM = "application/x-www-form-urlencoded"
RAW_TYPES = st.sampled_from([FORM, "application/json", "text/plain", "multipart/form-data; boundary=x",
                             f"{FORM}; charset=latin-1", ""])
RAW_BODIES = st.one_of(
    st.binary(max_size=300), st.text(max_size=300), DEEP, DEEP.map(lambda d: "payload=" + d),
    st.just(b"text=%ff%fe%80&user_id=U0ALICE"),  # percent-encoded bytes that are not UTF-8
    st.just(b"payload=%7B%22type%22%3A%22block_actions%22%2C%22x%22%3A%22%ff%22%7D"),
    st.integers(4301, 9000).map(lambda n: '{"type": ' + "9" * n + "}"),  # past int()'s digit limit
)
RAW = st.builds(Raw, RAW_BODIES, RAW_TYPES)


# --- Slack --------------------------------------------------------------------------------------------------

SLACK_USERS = ("U0ALICE", "U0BOB", "U0CAROL", "U0NOBODY", "", "W0ENTERPRISE", "<@U0BOB>")
SLACK_CHANNELS = ("C0ACCESS", "C0GENERAL", "D0NOWHERE", "")
SLACK_URLS = (URL, URL, "", "not a url", "http://127.0.0.1:9/hook", "ftp://127.0.0.1/x")

SLASH_COMMAND = st.fixed_dictionaries(
    {"command": junk_or("/access"), "text": TEXT, "user_id": junk_or(*SLACK_USERS),
     "response_url": junk_or(*SLACK_URLS), "trigger_id": junk_or(TRIGGER, "", "123.456.abc")},
    optional={"user_name": junk_or("alice", "bob"), "channel_id": junk_or(*SLACK_CHANNELS),
              "team_id": junk_or("T0DEVSTACK"), "token": junk_or("devstack-verification-token"),
              "api_app_id": junk_or("A0DEVSTACK"), "is_enterprise_install": junk_or("false", "true"),
              "enterprise_id": TEXT, "ssl_check": junk_or("1")},
)
SLACK_USER = mostly(st.fixed_dictionaries(
    {"id": junk_or(*SLACK_USERS)},
    optional={"username": junk_or("alice", "bob"), "name": TEXT, "team_id": junk_or("T0DEVSTACK")}),
    st.one_of(NOT_A_STRING, TEXT))
OBJECT = mostly(st.dictionaries(st.text(max_size=8), JSON, max_size=3), JSON)
TEAM_OBJECT = mostly(st.fixed_dictionaries({"id": junk_or("T0DEVSTACK")}, optional={"domain": TEXT}), JSON)
ACTION = mostly(st.fixed_dictionaries(
    {"action_id": junk_or(*render.ACTION_IDS.values()), "value": junk_or(REQ, REQ, "", "deadbeef-0")},
    optional={"block_id": TEXT, "type": junk_or("button", "static_select"), "text": JSON, "action_ts": TEXT,
              "selected_option": JSON}))
BLOCK_ACTIONS = st.fixed_dictionaries(
    {"type": st.just("block_actions"), "user": SLACK_USER,
     "actions": mostly(st.lists(ACTION, min_size=1, max_size=2), st.one_of(NOT_A_STRING, TEXT))},
    optional={"response_url": junk_or(*SLACK_URLS), "trigger_id": junk_or(TRIGGER), "team": TEAM_OBJECT,
              "channel": mostly(st.fixed_dictionaries({"id": junk_or(*SLACK_CHANNELS)})),
              "container": OBJECT, "message": OBJECT, "state": OBJECT, "api_app_id": junk_or("A0DEVSTACK"),
              "token": TEXT},
)
INPUT = mostly(st.fixed_dictionaries({}, optional={
    "value": mostly(TEXT),
    "selected_options": mostly(st.lists(mostly(st.fixed_dictionaries({"value": junk_or("dba", "admin")})),
                                        max_size=4)),
    "type": TEXT}))
BLOCK_IDS = [render.ROLES_BLOCK, render.DURATION_BLOCK, render.REVIEWERS_BLOCK, render.REASON_BLOCK]
FORM_VALUES = mostly(st.dictionaries(
    mostly(st.sampled_from(BLOCK_IDS), TEXT),
    mostly(st.dictionaries(mostly(st.just(render.INPUT_ACTION), TEXT), INPUT, max_size=2)), max_size=5))
METADATA = mostly(
    st.fixed_dictionaries({}, optional={"c": junk_or(*SLACK_CHANNELS), "r": junk_or(*SLACK_URLS),
                                        "i": junk_or(REQ, "")}).map(json.dumps),
    st.one_of(TEXT, NOT_A_STRING))
VIEW = mostly(st.fixed_dictionaries(
    {"callback_id": junk_or(render.REQUEST_FORM, render.DENY_FORM)},
    optional={"private_metadata": METADATA, "state": mostly(st.fixed_dictionaries({"values": FORM_VALUES})),
              "id": TEXT, "type": junk_or("modal"), "hash": TEXT}))
VIEW_PAYLOAD = st.fixed_dictionaries(
    {"type": st.sampled_from(["view_submission", "view_submission", "view_closed"]), "user": SLACK_USER,
     "view": VIEW},
    optional={"team": TEAM_OBJECT, "api_app_id": junk_or("A0DEVSTACK"), "trigger_id": junk_or(TRIGGER),
              "response_urls": mostly(st.lists(st.fixed_dictionaries({"response_url": junk_or(*SLACK_URLS)}),
                                               max_size=2), JSON),
              "is_cleared": JSON},
)
OTHER_PAYLOAD = st.fixed_dictionaries(
    {"type": junk_or("block_suggestion", "shortcut", "message_action", "interactive_message",
                     "dialog_submission", "workflow_step_edit")},
    optional={"user": SLACK_USER, "callback_id": TEXT, "action_id": junk_or(*render.ACTION_IDS.values()),
              "value": TEXT, "actions": JSON, "view": VIEW, "submission": JSON})
PAYLOAD = pick(BLOCK_ACTIONS, BLOCK_ACTIONS, BLOCK_ACTIONS, VIEW_PAYLOAD, VIEW_PAYLOAD, OTHER_PAYLOAD, JSON)
EVENTS_JSON = st.one_of(
    # The challenge is echoed by design (Slack's handshake), so it is drawn from harmless characters.
    st.fixed_dictionaries({"type": st.just("url_verification"),
                           "challenge": st.from_regex(r"[A-Za-z0-9]{0,80}", fullmatch=True)},
                          optional={"token": TEXT}),
    st.fixed_dictionaries({"type": junk_or("event_callback", "app_rate_limited"), "event": JSON},
                          optional={"team_id": TEXT, "api_app_id": TEXT}),
    JSON,
)


@dataclass(frozen=True)
class Signing:
    """How the headers are made: `good` as Slack signs, or a way a forger or a broken proxy gets it wrong."""

    how: str
    skew: int = 0

    def headers(self, slack: DevSlack, body: bytes, content_type: str) -> dict[str, str]:
        now = int(time.time())
        if self.how == "good":
            return slack.signed_headers(body, content_type=content_type)
        if self.how == "stale":
            return slack.signed_headers(body, now - 301 - abs(self.skew), content_type=content_type)
        if self.how == "tampered":
            return slack.signed_headers(body + b"&x=1", content_type=content_type)
        if self.how == "wrong_secret":
            return DevSlack(signing_secret="not-the-secret").signed_headers(body, content_type=content_type)
        if self.how == "odd_timestamp":
            signed = slack.signed_headers(body, content_type=content_type)
            return {**signed, "X-Slack-Request-Timestamp": f"{now}.0" if self.skew % 2 else f"0{now}"}
        return {"Content-Type": content_type}  # unsigned


FORGED = st.sampled_from(["stale", "tampered", "wrong_secret", "odd_timestamp", "unsigned"])
SIGNING = mostly(st.just(Signing("good")), st.builds(Signing, FORGED, st.integers()))


@dataclass(frozen=True)
class SlackCase:
    kind: str
    content: Any
    extra: list[tuple[str, str]]
    signing: Signing
    index: int  # which existing request a `ZqREQqZ` becomes

    def body(self, stack: Stack) -> tuple[bytes, str]:
        if self.kind == "command":
            return stack.fill(form(self.content, self.extra), self.index).encode(), FORM
        if self.kind == "interaction":
            payload = stack.fill(json.dumps(self.content), self.index)
            return urlencode([("payload", payload), *self.extra]).encode(), FORM
        if self.kind == "events":
            return stack.fill(json.dumps(self.content), self.index).encode(), "application/json"
        raw: Raw = self.content
        body = raw.body if isinstance(raw.body, bytes) else stack.fill(raw.body, self.index).encode()
        return body, raw.content_type


INDEX = st.integers(0, 99)
SLASH = st.builds(SlackCase, st.just("command"), SLASH_COMMAND, EXTRA_FIELDS, SIGNING, INDEX)
INTERACTION = st.builds(SlackCase, st.just("interaction"), PAYLOAD, EXTRA_FIELDS, SIGNING, INDEX)
SLACK_CASES = pick(SLASH, SLASH, INTERACTION, INTERACTION,
                   st.builds(SlackCase, st.just("events"), EVENTS_JSON, st.just([]), SIGNING, INDEX),
                   st.builds(SlackCase, st.just("raw"), RAW, st.just([]), SIGNING, INDEX))


@FUZZ
@given(case=SLACK_CASES)
# Payloads that once got a 500: bolt read `actions[0]`, `view` and `event` without checking them.
@example(case=SlackCase("interaction", {"type": "block_actions", "user": {"id": "U0BOB"}, "actions": []}, [],
                        Signing("good"), 0))
@example(case=SlackCase("interaction", {"type": "view_closed", "user": {"id": "U0BOB"}, "view": [[], {}]}, [],
                        Signing("good"), 0))
@example(case=SlackCase("events", {"type": "event_callback", "event": ["message"]}, [], Signing("good"), 0))
# ... and bolt's "unhandled request" warning concatenated a number `action_id` into its text.
@example(case=SlackCase("interaction", {"type": "block_suggestion", "user": {"id": "U0BOB"}, "action_id": 0.0,
                                        "view": {"callback_id": "access_request_form"}}, [], Signing("good"), 0))
async def test_slack_events_endpoint_answers_every_payload_without_a_500_or_a_traceback(
        stack: Stack, case: SlackCase) -> None:
    body, content_type = case.body(stack)
    headers = case.signing.headers(stack.slack, body, content_type)
    answer = await stack.http.post("/slack/events", content=body, headers=headers)
    sent = body.decode("utf-8", "replace")
    event(f"{case.kind} -> {answer.status_code}")  # `pytest --hypothesis-show-statistics` shows the spread
    assert answer.status_code in SLACK_STATUSES, (answer.status_code, answer.text[:500])
    if case.signing.how != "good":
        assert answer.status_code in (401, 413), "a body Slack did not sign got past the guard"
    stack.check_answer(answer, sent, SLACK_BROADCAST)
    await stack.slack_adapter.delivery.drain()  # the answers it promised ("Working on it…") are out
    stack.check_outbound(sent)


# --- Mattermost --------------------------------------------------------------------------------------------

MM_IDS = (*(u.id for u in MM_USERS.values()), new_id(), "", "me", "../users/me", "x" * 26)
MM_CHANNELS = (ACCESS_MM.id, new_id(), "", "town-square")


@dataclass(frozen=True)
class MMCase:
    """One call Mattermost (or a forger) makes: `route` names the URL, the rest how to build it."""

    route: str
    content: Any
    extra: list[tuple[str, str]]
    token: str  # command: how the command token is presented
    sign: tuple[Any, Any] | None  # actions: (request ID, action) to MAC; dialogs: (callback, issued offset)
    index: int  # which existing request a `ZqREQqZ` becomes; for `raw`, which URL too

    def request(self, stack: Stack) -> tuple[str, bytes, dict[str, str]]:
        if self.route == "raw":
            raw: Raw = self.content
            body = raw.body if isinstance(raw.body, bytes) else raw.body.encode()
            path = ("/mattermost/command", "/mattermost/actions", "/mattermost/dialogs")[self.index % 3]
            headers = {"Content-Type": raw.content_type, "Authorization": f"Token {stack.command_token}"}
            return path, body, headers
        if self.route == "command":
            return self._command(stack)
        payload: Any = self.content
        user = payload.get("user_id") if isinstance(payload, dict) else None
        user = user if isinstance(user, str) else ""
        payload = json.loads(stack.fill(json.dumps(payload), self.index, mm_user=user))
        if self.route == "actions" and self.sign is not None and isinstance(payload, dict):
            request_id, action = (stack.fill(x, self.index) if isinstance(x, str) else x for x in self.sign)
            if isinstance(request_id, str) and isinstance(action, str):
                context = payload.get("context")
                ephemeral = {"ephemeral": context.get("ephemeral")} if isinstance(context, dict) else {}
                payload["context"] = {**signing.action_context(stack.secret, request_id, action), **ephemeral}
        if self.route == "dialogs" and self.sign is not None and isinstance(payload, dict):
            callback, offset = self.sign
            issued = max(0, int(time.time()) + offset)
            if isinstance(callback, str):
                payload["state"] = signing.dialog_state(stack.secret, user, callback, issued)
        path = f"/mattermost/{self.route}"
        return path, json.dumps(payload).encode(), {"Content-Type": "application/json"}

    def _command(self, stack: Stack) -> tuple[str, bytes, dict[str, str]]:
        fields = dict(self.content)
        user = fields.get("user_id") if isinstance(fields.get("user_id"), str) else ""
        token, wrong = stack.command_token, "x" * 26
        in_form, header = {
            "both": (token, f"Token {token}"), "form": (token, None), "header": (None, f"Token {token}"),
            "wrong": (wrong, f"Token {wrong}"), "mismatch": (token, f"Token {token[:-1]}x"),
            "none": (None, None), "bearer": (None, f"Bearer {token}"),
        }[self.token]
        if in_form is not None:
            fields["token"] = in_form
        headers = {"Content-Type": FORM}
        if header is not None:
            headers["Authorization"] = header
        body = stack.fill(form(fields, self.extra), self.index, mm_user=user or MM_USERS["alice"].id)
        return "/mattermost/command", body.encode(), headers


MM_COMMAND = st.fixed_dictionaries(
    {"user_id": junk_or(*MM_IDS), "text": TEXT},
    optional={"user_name": junk_or("alice", "bob", "carol", ""), "channel_id": junk_or(*MM_CHANNELS),
              "trigger_id": junk_or(TRIGGER, TRIGGER, "", "bm90IGEgdHJpZ2dlcg=="),
              "team_id": junk_or(TEAM.id), "team_domain": junk_or("ops"), "channel_name": TEXT,
              "command": junk_or("/access"), "response_url": TEXT,
              "user_mentions": junk_or("bob"), "channel_mentions": junk_or("access-requests")},
)
MM_TOKENS = st.sampled_from(["both"] * 4 + ["form", "header", "wrong", "mismatch", "none", "bearer"])
MM_CONTEXT = mostly(st.fixed_dictionaries({}, optional={
    "request_id": junk_or(REQ), "action": junk_or(*signing.ACTIONS), "mac": TEXT,
    "ephemeral": junk_or(True, False)}))
MM_ACTION = mostly(st.fixed_dictionaries(
    {"user_id": junk_or(*MM_IDS)},
    optional={"user_name": junk_or("alice", "bob"), "channel_id": junk_or(*MM_CHANNELS),
              "context": MM_CONTEXT, "trigger_id": junk_or(TRIGGER), "post_id": junk_or(new_id()),
              "team_id": junk_or(TEAM.id), "type": junk_or("button", "select"), "data_source": TEXT,
              "selected_option": JSON}), JSON)
MM_SUBMISSION = mostly(st.fixed_dictionaries({}, optional={
    ROLES: st.one_of(junk_or("dba", "dba,developer", "admin", ""),
                     st.lists(junk_or("dba", "admin"), max_size=4)),
    DURATION: junk_or("1h", "2h", "9h", "", "forever"), REVIEWERS: junk_or("bob", "@bob", "alice, bob", ""),
    REASON: TEXT}))
MM_DIALOG = mostly(st.fixed_dictionaries(
    {"type": junk_or("dialog_submission"), "user_id": junk_or(*MM_IDS), "callback_id": junk_or("request"),
     "submission": MM_SUBMISSION},
    optional={"state": TEXT, "cancelled": junk_or(False, True), "channel_id": junk_or(*MM_CHANNELS),
              "team_id": junk_or(TEAM.id), "url": TEXT}), JSON)
# What to sign: (request ID, action) for a click, (callback ID, seconds from now it was issued) for a dialog.
ACTION_MAC = mostly(st.tuples(junk_or(REQ, REQ, str(uuid.uuid4())), junk_or(*signing.ACTIONS)), st.none())
DIALOG_MAC = mostly(st.tuples(junk_or("request"), st.sampled_from([0, 0, 0, -5000, 3600, -10**9])), st.none())
MM_CASES = pick(
    st.builds(MMCase, st.just("command"), MM_COMMAND, EXTRA_FIELDS, MM_TOKENS, st.none(), INDEX),
    st.builds(MMCase, st.just("actions"), MM_ACTION, st.just([]), st.just(""), ACTION_MAC, INDEX),
    st.builds(MMCase, st.just("dialogs"), MM_DIALOG, st.just([]), st.just(""), DIALOG_MAC, INDEX),
    st.builds(MMCase, st.just("raw"), RAW, st.just([]), st.just(""), st.none(), INDEX),
)


@FUZZ
@given(case=MM_CASES)
# Bodies that once got a 500: JSON nested past the recursion limit, a user ID that cannot go in a URL.
@example(case=MMCase("raw", Raw("[" * 100_000 + "]" * 100_000, "application/json"), [], "", None, 1))
@example(case=MMCase("command", {"user_id": "\x1f", "text": "list"}, [], "both", None, 0))
async def test_mattermost_endpoints_answer_every_payload_without_a_500_or_a_traceback(
        stack: Stack, case: MMCase) -> None:
    path, body, headers = case.request(stack)
    answer = await stack.http.post(path, content=body, headers=headers)
    sent = body.decode("utf-8", "replace")
    event(f"{case.route} -> {answer.status_code}")
    assert answer.status_code in MATTERMOST_STATUSES, (path, answer.status_code, answer.text[:500])
    if case.route == "command" and case.token in ("wrong", "mismatch", "none", "bearer"):
        assert answer.status_code in (400, 401, 413), "a command without the right token got past the check"
    if case.route in ("actions", "dialogs") and case.sign is None and answer.status_code == 200:
        pytest.fail(f"{path} acted on a body the bot did not sign: {answer.text[:500]}")
    stack.check_answer(answer, sent, MATTERMOST_BROADCAST)
    stack.check_outbound(sent)


# --- every endpoint: methods, paths and headers ------------------------------------------------------------

ENDPOINTS = ("/slack/events", "/mattermost/command", "/mattermost/actions", "/mattermost/dialogs",
             "/healthz", "/readyz", "/metrics")
ENDPOINT = st.sampled_from(ENDPOINTS)
PATHS = pick(ENDPOINT, ENDPOINT, ENDPOINT, ENDPOINT, ENDPOINT.map(lambda path: path + "/"),
             st.tuples(ENDPOINT, st.text(st.characters(codec="utf-8"), max_size=30)).map(
                 lambda pair: pair[0] + "?" + quote(pair[1])),
             st.sampled_from(["/", "/slack", "/mattermost", "/%ff", "/healthz%00", "/READYZ",
                              "/metrics/../readyz"]))
METHODS = st.sampled_from(["POST", "POST", "POST", "GET", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])
SLACK_AUTH = ("X-Slack-Signature", "X-Slack-Request-Timestamp")
# Names from the bot's world in the cases proxies and clients use; framing headers (Host, Content-Length,
# Transfer-Encoding, Connection, Upgrade) are the HTTP client's to write.
HEADER_NAMES = pick(
    st.sampled_from([*SLACK_AUTH, "x-slack-signature", "X-SLACK-REQUEST-TIMESTAMP", "X-Slack-Retry-Num",
                     "X-Slack-Retry-Reason", "Authorization", "Content-Type", "Accept", "Cookie",
                     "X-Forwarded-For", "X-Forwarded-Proto", "Origin", "User-Agent"]),
    st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}", fullmatch=True).filter(
        lambda name: name.lower() not in ("host", "content-length", "transfer-encoding", "connection",
                                          "upgrade", "te", "trailer", "expect", "keep-alive")))
# What HTTP/1.1 lets a header value hold: visible ASCII and any byte from 0x80, spaces inside.
_VALUE_BYTES = [*range(0x21, 0x7F), *range(0x80, 0x100)]
HEADER_VALUES = pick(
    st.lists(st.sampled_from([*_VALUE_BYTES, 0x20]), max_size=80).map(lambda b: bytes(b).strip(b" ")),
    st.text(st.characters(codec="utf-8", min_codepoint=0x21, exclude_characters="\x7f"),
            max_size=40).map(str.encode),
    st.sampled_from([b"v0=" + "é".encode() * 32, b"v0=" + b"0" * 64, b"v0=", b"0", b"-1", b"1e9", b"\xb9\xb2",
                     b"99999999999999999999", b"Token " + b"x" * 26, b"application/json", FORM.encode()]),
    st.integers(1_000, 20_000).map(lambda size: b"9" * size),  # past 16 KB uvicorn refuses the whole head
)
MUTATIONS = st.lists(st.tuples(st.sampled_from(["add", "replace", "drop", "repeat"]),
                               pick(st.sampled_from(SLACK_AUTH), HEADER_NAMES), HEADER_VALUES), max_size=4)
REQUEST_BODY = pick(st.just(None), st.just(None), RAW_BODIES, st.just(b""))  # None: a signable command


@dataclass(frozen=True)
class HeaderCase:
    """A request to any route: signed as Slack signs, with the Mattermost command token, or neither, then
    its headers added to, replaced, dropped or repeated."""

    method: str
    path: str
    auth: str
    mutations: list[tuple[str, str, bytes]]
    body: str | bytes | None
    index: int

    def request(self, stack: Stack) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        body = self.body
        if body is None:
            body = stack.slack.slash_command_body("U0BOB", f"show {stack.request_id(self.index)}", "C0ACCESS")
        elif isinstance(body, str):
            body = body.encode()
        headers: list[tuple[bytes, bytes]] = [(b"Content-Type", FORM.encode())]
        if self.auth == "slack":
            headers = [(k.encode(), v.encode()) for k, v in stack.slack.signed_headers(body).items()]
        elif self.auth == "mattermost":
            headers.append((b"Authorization", f"Token {stack.command_token}".encode()))
        for how, name, value in self.mutations:
            key = name.encode()
            same = [pair for pair in headers if pair[0].lower() == key.lower()]
            if how in ("replace", "drop"):
                headers = [pair for pair in headers if pair not in same]
            if how in ("replace", "add"):
                headers.append((key, value))
            if how == "repeat":
                headers.extend(same or [(key, value)])
        return body, headers

    def signed_as_slack_signs(self) -> bool:
        """Whether Slack's two signature headers went out once each, exactly as signed."""
        return self.auth == "slack" and not any(name.lower() in _SLACK_AUTH for _, name, _ in self.mutations)


_SLACK_AUTH = {name.lower() for name in SLACK_AUTH}

ROUTES = st.sampled_from([("POST", "/mattermost/command"), ("POST", "/mattermost/actions"),
                          ("POST", "/mattermost/dialogs"), ("GET", "/healthz"), ("GET", "/readyz"),
                          ("GET", "/metrics")])
# Slack's route half the time (its headers are the ones that matter), the others as they are called, and
# now and then any method on any path.
TARGETS = pick(st.just(("POST", "/slack/events")), st.just(("POST", "/slack/events")), ROUTES, ROUTES,
               st.tuples(METHODS, PATHS))
HEADER_CASES = st.tuples(TARGETS, st.sampled_from(["slack", "slack", "mattermost", "none"]), MUTATIONS,
                         REQUEST_BODY, INDEX).map(lambda t: HeaderCase(t[0][0], t[0][1], *t[1:]))


@settings(FUZZ, max_examples=int(EXAMPLES * 1.5))
@given(case=HEADER_CASES)
@example(case=HeaderCase("POST", "/slack/events", "slack",
                         [("replace", "X-Slack-Signature", b"v0=" + "é".encode() * 32)], None, 0))
@example(case=HeaderCase("POST", "/slack/events", "slack", [("repeat", "X-Slack-Signature", b"")], None, 0))
@example(case=HeaderCase("POST", "/slack/events", "slack", [("replace", "X-Slack-Signature", b"9" * 12_000)],
                         None, 0))
@example(case=HeaderCase("POST", "/slack/events", "slack", [("add", "X-Slack-Signature", b"9" * 20_000)],
                         None, 0))
async def test_every_endpoint_answers_any_method_path_and_headers_without_a_500_or_a_traceback(
        stack: Stack, case: HeaderCase) -> None:
    body, headers = case.request(stack)
    answer = await stack.http.request(case.method, case.path, content=body, headers=headers)
    event(f"{case.method} {case.path.split('?')[0][:20]} -> {answer.status_code}")
    sent = body.decode("utf-8", "replace") + repr(headers)
    if answer.status_code >= 500:
        ready = case.path.split("?")[0] == "/readyz" and answer.status_code == 503
        assert ready and answer.json()["status"] == "not ready", (answer.status_code, answer.text[:500])
    if (case.method, case.path) == ("POST", "/slack/events") and not case.signed_as_slack_signs():
        assert answer.status_code in (401, 413), "a request Slack did not sign got past the guard"
    if (case.method, case.path) == ("POST", "/mattermost/command") and case.auth != "mattermost":
        assert answer.status_code != 200, "a command without the command token got past the check"
    stack.check_answer(answer, sent, SLACK_BROADCAST)
    await stack.slack_adapter.delivery.drain()
    stack.check_outbound(sent)
