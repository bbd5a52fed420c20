"""An honest stand-in for Slack's Web API and `response_url` webhooks on loopback, with Slack's errors and limits.

Point a real `AsyncWebClient(token="xoxb-devstack", base_url=await slack.start())` at it. Every method
answers as Slack does (chat-platforms.md §1–§6): HTTP 200 with `ok: false` and Slack's error code for API
errors, HTTP 429 + `Retry-After` for rate limits. It accepts the three body shapes slack_sdk sends: JSON
with the token in `Authorization: Bearer`, form fields, and query parameters (also on POST).

Choices where Slack's documentation is silent (UNCONFIRMED, kept here so they are easy to revisit):
- `response_url`: success is HTTP 200 with the text body `ok`, as for incoming webhooks. After 5 accepted
  uses the URL answers 404 `used_url`; after 30 minutes 404 `expired_url`; an unknown URL 404 `no_service`;
  a bad body 400 with the error code as text (`invalid_payload`, `no_text`, `invalid_blocks`). Rejected
  posts do not count as uses.
- `msg_too_long` is enforced at 40,000 characters of top-level `text` for every message method.
- A `thread_ts` that matches no message is stored as given (Slack does not document a rejection).
- Unknown methods answer HTTP 404 `unknown_method`; injected 500/503 faults answer `fatal_error` /
  `service_unavailable`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.devstack.slack_blocks import Rejection, check_message, check_view
from chatops_bot.timer import REAL_TIME, Timer

BOT_TOKEN = "xoxb-devstack"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0DEVSTACK"
TEAM_ID = "T0DEVSTACK"
TEAM_DOMAIN = "devstack"
SIGNING_SECRET = "devstack-signing-secret"
VERIFICATION_TOKEN = "devstack-verification-token"
TRIGGER_TTL_SECONDS = 3.0
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60
_FAULT_ERRORS = {429: "ratelimited", 500: "fatal_error", 503: "service_unavailable"}


@dataclass(frozen=True)
class SlackUser:
    """A workspace member; `email` is what `users.lookupByEmail` matches (case-insensitively)."""

    id: str
    name: str
    email: str | None = None
    real_name: str = ""
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Etc/UTC"  # users.info `tz`: Slack always has one (the workspace's, unless the member set theirs)


DEFAULT_USERS = (
    SlackUser(id="U0ALICE", name="alice", email="alice@example.com", real_name="Alice Example"),
    SlackUser(id="U0BOB", name="bob", email="bob@example.com", real_name="Bob Example"),
    SlackUser(id="U0CAROL", name="carol", email="carol@example.com", real_name="Carol Example"),
)
DEFAULT_CHANNELS = {"C0ACCESS": "access-requests", "C0GENERAL": "general"}


@dataclass(frozen=True)
class Call:
    """One Web API call as received (token removed, JSON-string fields decoded) and how it was answered."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    error: str | None = None


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST to a `response_url`, accepted (`status == 200`) or not."""

    token: str
    body: dict[str, Any]
    at: float
    status: int
    error: str | None = None


class SlackError(Exception):
    """An answer with `ok: false`; HTTP 200 like Slack's API errors unless `status` says otherwise."""

    def __init__(self, error: str, *, status: int = 200, details: tuple[str, ...] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.details, self.headers = error, status, details, headers or {}

    @classmethod
    def from_rejection(cls, rejection: Rejection) -> SlackError:
        return cls(rejection.error, details=rejection.details)

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.details:
            body["errors"] = list(self.details)
            body["response_metadata"] = {"messages": [f"[ERROR] {d}" for d in self.details]}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


@dataclass
class _Fault:
    status: int
    retry_after: int
    times: int


@dataclass(frozen=True)
class _Outage:
    """Every matching call fails until `until` (on the stand-in's timer), however many there are."""

    until: float
    status: int
    retry_after: int
    methods: frozenset[str] | None  # None: every Web API method and every `response_url`


@dataclass
class _Hook:
    """A `response_url` and what it may touch: the message it came from, or the one its first use made."""

    issued_at: float
    channel_id: str | None
    user_id: str | None
    message_ts: str | None
    uses: int = 0


@dataclass
class _Conversation:
    members: tuple[str, ...]
    created: int


class DevSlack:
    """Slack's workspace, bot and Web API in one object; state is inspectable by tests."""

    def __init__(self, *, users: list[SlackUser] | tuple[SlackUser, ...] = DEFAULT_USERS,
                 channels: dict[str, str] | None = None, token: str = BOT_TOKEN,
                 signing_secret: str = SIGNING_SECRET, clock: Callable[[], float] = time.time,
                 timer: Timer = REAL_TIME) -> None:
        """`clock` is Slack's wall clock (timestamps, and the age of triggers, `response_url`s and
        signatures); `timer` measures `fail_for` outages, on the bot's timer in the fault drills."""
        self.token = token
        self.signing_secret = signing_secret
        self.bot = SlackUser(id=BOT_USER_ID, name="chatops-bot", real_name="ChatOps Bot", is_bot=True)
        self.users: dict[str, SlackUser] = {u.id: u for u in (*users, self.bot)}
        self.channels: dict[str, str] = dict(DEFAULT_CHANNELS if channels is None else channels)
        self.calls: list[Call] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.response_url_posts: list[ResponseUrlPost] = []
        self._clock = clock
        self._timer = timer
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._triggers: dict[str, float] = {}
        self._exchanged: set[str] = set()
        self._hooks: dict[str, _Hook] = {}
        self._faults: dict[str, _Fault] = {}
        self._outage: _Outage | None = None
        self._serial = itertools.count(1)
        self._last_ts = 0
        self.root_url = ""
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.update": self._update, "chat.postEphemeral": self._post_ephemeral,
            "conversations.open": self._open, "conversations.list": self._list_conversations,
            "users.info": self._users_info, "users.lookupByEmail": self._lookup_by_email,
            "views.open": self._views_open, "views.update": self._views_update,
        }
        self.app = Starlette(routes=[
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/response/{token}", self._respond, methods=["POST"]),
        ])
        self._loopback = LoopbackServer(self.app)

    # -- lifecycle and test-facing helpers ---------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0 picks a free port); returns the Web API base URL."""
        bound_port = await self._loopback.start(host, port)
        self.root_url = f"http://{host}:{bound_port}"
        return self.api_url

    async def stop(self) -> None:
        await self._loopback.stop()

    @property
    def api_url(self) -> str:
        return f"{self.root_url}/api/"

    @property
    def port(self) -> int:
        return int(self.root_url.rsplit(":", 1)[1])

    @property
    def messages(self) -> dict[str, list[dict[str, Any]]]:
        """Channel ID → its messages (thread replies included) as they look now."""
        return copy.deepcopy(self._messages)

    @property
    def opened_views(self) -> list[dict[str, Any]]:
        """Every view opened, in order, as it looks after any `views.update`."""
        return copy.deepcopy(list(self._views.values()))

    def direct_messages(self, user_id: str) -> list[dict[str, Any]]:
        """The messages in the bot's DM with this member, as they look now ([] until it is opened)."""
        channel = next((c for c, conv in self._conversations.items() if conv.members == (user_id,)), None)
        return self.messages.get(channel, []) if channel else []

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def issue_trigger_id(self) -> str:
        """A trigger as a slash command or click carries: single use, expires after 3 seconds."""
        trigger = f"{int(self._clock())}.{next(self._serial)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = self._clock()
        return trigger

    def new_response_url(self, *, channel_id: str | None = None, user_id: str | None = None,
                         message_ts: str | None = None) -> str:
        """A `response_url` (5 uses in 30 minutes); with `message_ts` it may replace or delete that message."""
        if not self.root_url:
            raise RuntimeError("start() the stand-in before issuing response URLs")
        token = secrets.token_urlsafe(18)
        self._hooks[token] = _Hook(self._clock(), channel_id, user_id, message_ts)
        return f"{self.root_url}/response/{token}"

    def fail_next(self, method: str, status: int = 429, *, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls of `method` (or "response_url") fail with HTTP `status`."""
        self._faults[method] = _Fault(status, retry_after, times)

    def fail_for(self, seconds: float, status: int = 429, *, retry_after: int = 1,
                 methods: Iterable[str] | None = None) -> None:
        """Every call of `methods` (default: every Web API method and `response_url`) in the next `seconds`
        fails with HTTP `status`; a 429 says `Retry-After: retry_after` each time, as a rate limit that
        other traffic keeps exhausted would. `seconds=0` ends it."""
        chosen = None if methods is None else frozenset(methods)
        self._outage = _Outage(self._timer.monotonic() + seconds, status, retry_after, chosen)

    def add_user_message(self, user_id: str, channel: str, text: str) -> str:
        """A message a human wrote (the bot may not `chat.update` it); returns its ts."""
        return self._store_message(channel, {"type": "message", "user": user_id, "text": text, "blocks": []})

    def signed_headers(self, body: bytes, timestamp: int | None = None, *,
                       content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
        """Headers Slack sends with `body`: `v0=` HMAC-SHA256 over `v0:<timestamp>:<body>`."""
        stamp = str(int(self._clock()) if timestamp is None else timestamp)
        # Over the raw bytes, as Slack does: slack_sdk's generator would first decode them as UTF-8.
        base = b"v0:" + stamp.encode() + b":" + body
        signature = "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    def slash_command_body(self, user_id: str, text: str, channel_id: str, response_url: str | None = None,
                           trigger_id: str | None = None, *, command: str = "/access") -> bytes:
        """The form body of a slash command; a fresh `response_url` and `trigger_id` unless given."""
        fields = [
            ("token", VERIFICATION_TOKEN), ("team_id", TEAM_ID), ("team_domain", TEAM_DOMAIN),
            ("channel_id", channel_id), ("channel_name", self._channel_name(channel_id)),
            ("user_id", user_id), ("user_name", self._user(user_id).name), ("command", command),
            ("text", text), ("api_app_id", APP_ID), ("is_enterprise_install", "false"),
            ("response_url", response_url or self.new_response_url(channel_id=channel_id, user_id=user_id)),
            ("trigger_id", trigger_id or self.issue_trigger_id()),
        ]
        return urlencode(fields).encode()

    def block_actions_body(self, user_id: str, action_id: str, value: str | None, channel_id: str,
                           message_ts: str, response_url: str | None = None,
                           trigger_id: str | None = None) -> bytes:
        """The `payload=<json>` form body of a button click on a message the stand-in holds (§3)."""
        message = self._find_message(channel_id, message_ts)
        ephemeral = next((e for e in self.ephemerals if e["message_ts"] == message_ts), None)
        shown = message or ephemeral
        button = _find_button(shown["blocks"] if shown else [], action_id)
        if button is None:
            raise LookupError(f"no button {action_id!r} on message {message_ts} in {channel_id}")
        block_id, element = button
        user = self._user(user_id)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
            "api_app_id": APP_ID, "token": VERIFICATION_TOKEN,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                          "is_ephemeral": message is None},
            "trigger_id": trigger_id or self.issue_trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
            "state": {"values": {}},
            "response_url": response_url or self.new_response_url(
                channel_id=channel_id, user_id=user_id, message_ts=message_ts),
            "actions": [{
                "action_id": action_id, "block_id": block_id, "text": element.get("text"),
                "value": element.get("value") if value is None else value, "type": "button",
                "action_ts": f"{self._clock():.6f}",
                **({"style": element["style"]} if "style" in element else {}),
            }],
        }
        if message is not None:
            payload["message"] = message
        return urlencode({"payload": json.dumps(payload)}).encode()

    # -- HTTP ---------------------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        at = self._clock()
        params: dict[str, Any] = {}
        try:
            params, token = await _read_params(request)
            if method not in self._methods:
                raise SlackError("unknown_method", status=404)
            if not token:
                raise SlackError("not_authed")
            if token != self.token:
                raise SlackError("invalid_auth")
            self._maybe_fail(method)
            answer: Response = JSONResponse({"ok": True, **self._methods[method](params)})
            status, error = 200, None
        except SlackError as e:
            answer, status, error = e.response(), e.status, e.error
        self.calls.append(Call(method, params, at, status, error))
        return answer

    async def _respond(self, request: Request) -> Response:
        token = request.path_params["token"]
        at = self._clock()
        body: dict[str, Any] = {}
        try:
            hook = self._hooks.get(token)
            if hook is None:
                raise SlackError("no_service", status=404)
            if at - hook.issued_at > RESPONSE_URL_TTL_SECONDS:
                raise SlackError("expired_url", status=404)
            if hook.uses >= RESPONSE_URL_USES:
                raise SlackError("used_url", status=404)
            self._maybe_fail("response_url")
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise SlackError("invalid_payload", status=400) from None
            if not isinstance(body, dict):
                raise SlackError("invalid_payload", status=400)
            if not body.get("delete_original"):
                rejection = check_message(body.get("text"), body.get("blocks"), body.get("attachments"))
                if rejection is not None:
                    raise SlackError(rejection.error, status=400)
            hook.uses += 1
            self._apply_response(hook, body)
        except SlackError as e:
            self.response_url_posts.append(ResponseUrlPost(token, body, at, e.status, e.error))
            return PlainTextResponse(e.error, status_code=e.status, headers=e.headers)
        self.response_url_posts.append(ResponseUrlPost(token, body, at, 200))
        return PlainTextResponse("ok")

    def _maybe_fail(self, method: str) -> None:
        outage = self._outage
        if (outage is not None and self._timer.monotonic() < outage.until
                and method in (outage.methods or {method})):
            raise _fault_error(outage.status, outage.retry_after)
        fault = self._faults.get(method)
        if fault is None or fault.times <= 0:
            return
        fault.times -= 1
        raise _fault_error(fault.status, fault.retry_after)

    def _apply_response(self, hook: _Hook, body: dict[str, Any]) -> None:
        original = self._hook_original(hook)
        if body.get("delete_original"):
            for held in (*self._messages.values(), self.ephemerals):
                held[:] = [m for m in held if m is not original]
            return
        content = {"text": body.get("text") or "", "blocks": _stamped(body.get("blocks"))}
        if body.get("replace_original") and original is not None:
            original.update(content)
            return
        if hook.channel_id is None:
            return
        if body.get("response_type") == "in_channel":
            ts = self._store_message(hook.channel_id, {"type": "message", "user": BOT_USER_ID,
                                                       "bot_id": BOT_ID, **content})
        else:
            ts = self._next_ts()
            self.ephemerals.append({"channel": hook.channel_id, "user": hook.user_id, "message_ts": ts,
                                    **content})
        hook.message_ts = hook.message_ts or ts

    def _hook_original(self, hook: _Hook) -> dict[str, Any] | None:
        if hook.message_ts is None or hook.channel_id is None:
            return None
        found = self._find_message(hook.channel_id, hook.message_ts, copied=False)
        return found or next((e for e in self.ephemerals if e["message_ts"] == hook.message_ts), None)

    # -- Web API methods ----------------------------------------------------------------------------

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"https://{TEAM_DOMAIN}.slack.com/", "team": "Devstack", "user": self.bot.name,
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"), by_name=True, by_user=True)
        text, blocks = params.get("text"), _json_field(params, "blocks", "invalid_blocks_format")
        _reject(check_message(text, blocks, params.get("attachments")))
        message: dict[str, Any] = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID,
                                   "team": TEAM_ID, "text": text or "", "blocks": _stamped(blocks)}
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        ts = self._store_message(channel, message)
        return {"channel": channel, "ts": ts, "message": self._find_message(channel, ts)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        message = self._find_message(channel, str(params.get("ts", "")), copied=False)
        if message is None:
            raise SlackError("message_not_found")
        if message.get("user") != BOT_USER_ID:
            raise SlackError("cant_update_message")
        text, blocks = params.get("text"), _json_field(params, "blocks", "invalid_blocks_format")
        _reject(check_message(text, blocks, params.get("attachments")))
        if blocks is not None:
            message["blocks"] = _stamped(blocks)
        else:
            message["blocks"] = []  # Slack drops the old blocks when only `text` is sent.
            message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        if text is not None:
            message["text"] = text
        return {"channel": channel, "ts": message["ts"], "text": message["text"], "message": dict(message)}

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"), by_name=True)
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        conversation = self._conversations.get(channel)
        if conversation is not None and user.id not in conversation.members:
            raise SlackError("user_not_in_channel")
        text, blocks = params.get("text"), _json_field(params, "blocks", "invalid_blocks_format")
        _reject(check_message(text, blocks, params.get("attachments")))
        ts = self._next_ts()
        self.ephemerals.append({"channel": channel, "user": user.id, "message_ts": ts, "text": text or "",
                                "blocks": _stamped(blocks), "thread_ts": params.get("thread_ts")})
        return {"message_ts": ts}

    def _open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            channel = self._resolve_channel(params["channel"])
            if channel not in self._conversations:
                raise SlackError("method_not_supported_for_channel_type")
            return {"channel": {"id": channel}, "no_op": True, "already_open": True}
        raw = params.get("users")
        user_ids = [u.strip() for u in (raw.split(",") if isinstance(raw, str) else raw or []) if u.strip()]
        if not user_ids:
            raise SlackError("users_list_not_supplied")
        if len(user_ids) > 8:
            raise SlackError("too_many_users")
        for user_id in user_ids:
            if user_id not in self.users:
                raise SlackError("user_not_found")
            if self.users[user_id].deleted:
                raise SlackError("user_disabled")
        existed = any(c.members == tuple(user_ids) for c in self._conversations.values())
        channel = self._open_conversation(tuple(user_ids))
        if _flag(params, "return_im"):
            conversation = self._conversations[channel]
            full = {"id": channel, "created": conversation.created, "is_im": len(user_ids) == 1,
                    "is_mpim": len(user_ids) > 1, "is_open": True, "user": user_ids[0]}
            return {"channel": full, "already_open": existed}
        return {"channel": {"id": channel}, **({"no_op": True, "already_open": True} if existed else {})}

    def _list_conversations(self, params: dict[str, Any]) -> dict[str, Any]:
        types = str(params.get("types") or "public_channel").split(",")
        found: list[dict[str, Any]] = []
        if "public_channel" in types:
            found += [{"id": cid, "name": name, "name_normalized": name, "is_channel": True, "is_private": False,
                       "is_archived": False, "is_member": True} for cid, name in self.channels.items()]
        if "im" in types:
            found += [{"id": cid, "is_im": True, "user": c.members[0], "created": c.created}
                      for cid, c in self._conversations.items() if len(c.members) == 1]
        return {"channels": found, "response_metadata": {"next_cursor": ""}}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": _user_json(user)}

    def _lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").lower()
        if not email:
            raise SlackError("invalid_arguments", details=("missing required field: email",))
        for user in self.users.values():
            if user.email is not None and user.email.lower() == email and not user.deleted:
                return {"user": _user_json(user)}
        raise SlackError("users_not_found")

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = str(params.get("trigger_id") or "")
        if trigger not in self._triggers:
            raise SlackError("invalid_trigger_id")
        if trigger in self._exchanged:
            raise SlackError("exchanged_trigger_id")
        if self._clock() - self._triggers[trigger] > TRIGGER_TTL_SECONDS:
            raise SlackError("expired_trigger_id")
        view = _json_field(params, "view", "invalid_arguments")
        _reject(check_view(view))
        self._exchanged.add(trigger)
        view_id = f"V0DEV{next(self._serial):06d}"
        self._views[view_id] = {**view, "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID,
                                "state": {"values": {}}, "hash": secrets.token_hex(8),
                                "root_view_id": view_id, "previous_view_id": None}
        return {"view": dict(self._views[view_id])}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", details=("missing required field: view_id or external_id",))
        current = self._views.get(str(view_id)) if view_id else next(
            (v for v in self._views.values() if v.get("external_id") == external_id), None)
        if current is None:
            raise SlackError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = _json_field(params, "view", "invalid_arguments")
        _reject(check_view(view))
        kept = {k: current[k] for k in ("id", "team_id", "app_id", "bot_id", "root_view_id", "previous_view_id")}
        self._views[current["id"]] = {**view, **kept, "state": {"values": {}}, "hash": secrets.token_hex(8)}
        return {"view": dict(self._views[current["id"]])}

    # -- state --------------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        """Slack-style `seconds.micro` timestamps, unique and strictly increasing."""
        self._last_ts = max(int(self._clock() * 1_000_000), self._last_ts + 1)
        return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    def _store_message(self, channel: str, message: dict[str, Any]) -> str:
        ts = self._next_ts()
        message["ts"] = ts
        thread = self._messages.setdefault(channel, [])
        parent = self._find_message(channel, message.get("thread_ts", ""), copied=False)
        if parent is not None:
            parent.update(thread_ts=parent["ts"], reply_count=parent.get("reply_count", 0) + 1, latest_reply=ts)
        thread.append(message)
        return ts

    def _find_message(self, channel: str, ts: str, *, copied: bool = True) -> dict[str, Any] | None:
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return copy.deepcopy(message) if copied else message
        return None

    def _open_conversation(self, members: tuple[str, ...]) -> str:
        for channel, conversation in self._conversations.items():
            if conversation.members == members:
                return channel
        prefix = "D0DM" if len(members) == 1 else "G0MP"
        channel = f"{prefix}{next(self._serial):06d}"
        self._conversations[channel] = _Conversation(members, int(self._clock()))
        return channel

    def _resolve_channel(self, value: object, *, by_name: bool = False, by_user: bool = False) -> str:
        """A channel ID as Slack accepts it: an ID; for posting also `#name`/`name` or a user's ID (their DM)."""
        if not isinstance(value, str) or not value:
            raise SlackError("channel_not_found")
        if value in self.channels or value in self._conversations:
            return value
        if by_user and value in self.users and value != BOT_USER_ID:
            return self._open_conversation((value,))
        if by_name:
            for channel, name in self.channels.items():
                if name == value.removeprefix("#"):
                    return channel
        raise SlackError("channel_not_found")

    def _channel_name(self, channel_id: str) -> str:
        if channel_id in self.channels:
            return self.channels[channel_id]
        if channel_id in self._conversations:
            return "directmessage" if len(self._conversations[channel_id].members) == 1 else "privategroup"
        raise LookupError(f"unknown channel {channel_id}")

    def _user(self, user_id: str) -> SlackUser:
        if user_id not in self.users:
            raise LookupError(f"unknown user {user_id}")
        return self.users[user_id]


async def _read_params(request: Request) -> tuple[dict[str, Any], str | None]:
    """Query, form or JSON parameters and the bot token (the header, or `token` outside JSON bodies)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body and request.headers.get("content-type", "").startswith("application/json"):
        try:
            decoded = json.loads(body)
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(decoded, dict):
            raise SlackError("invalid_json")
        decoded.pop("token", None)
        params.update(decoded)
    elif body:
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    token = params.pop("token", None)
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    return params, token


def _fault_error(status: int, retry_after: int) -> SlackError:
    headers = {"Retry-After": str(retry_after)} if status == 429 else {}
    return SlackError(_FAULT_ERRORS.get(status, "internal_error"), status=status, headers=headers)


def _json_field(params: dict[str, Any], name: str, error: str) -> Any:
    """A field that form bodies carry as a JSON string and JSON bodies as a value; decoded in place."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            params[name] = value = json.loads(value)
        except ValueError:
            raise SlackError(error) from None
    return value


def _flag(params: dict[str, Any], name: str) -> bool:
    return params.get(name) in (True, 1, "1", "true", "True")


def _reject(rejection: Rejection | None) -> None:
    if rejection is not None:
        raise SlackError.from_rejection(rejection)


def _stamped(blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Blocks as Slack stores them: every block gets a `block_id`, generated when the sender gave none."""
    return [{**block, "block_id": block.get("block_id") or secrets.token_urlsafe(3)} for block in blocks or []]


def _user_json(user: SlackUser) -> dict[str, Any]:
    profile: dict[str, Any] = {"real_name": user.real_name, "display_name": user.name}
    if user.email is not None:
        profile["email"] = user.email
    if user.is_bot:
        profile["bot_id"] = BOT_ID
    return {"id": user.id, "team_id": TEAM_ID, "name": user.name, "real_name": user.real_name,
            "deleted": user.deleted, "is_bot": user.is_bot, "is_app_user": False, "tz": user.tz,
            "profile": profile}


def _find_button(blocks: list[Any], action_id: str) -> tuple[str, dict[str, Any]] | None:
    """The block_id and element of a button, in an actions block or a section accessory."""
    for block in blocks:
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory")]
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    return None
