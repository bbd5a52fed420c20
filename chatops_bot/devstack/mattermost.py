"""An honest Mattermost REST stand-in on loopback: the bot's `/api/v4` subset, Mattermost's rules and errors.

Behaviour follows the server source (api4/post.go, channel.go, command.go, integration_action.go; the
English error texts from server/i18n/en.json): a JSON body is exactly `application/json`, errors carry
`id`, `message`, `detailed_error`, `request_id`, `status_code`, and responses strip the action
`integration` (url + context) from posts as `Post.EncodeJSON` does. The helpers at the end build the
requests Mattermost itself sends to the bot (slash command, button click, dialog submission).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.timer import REAL_TIME, Timer

BOT_TOKEN = "mm-devstack-token"
BOT_USER_ID = "botuserid00000000000000000"
MAX_POST_RUNES = 16383  # the server's floor for MaxPostSize; longer messages are refused, never truncated
_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"  # model.NewId's base32 alphabet
_VALID_ID = re.compile(r"[A-Za-z0-9]{26}")
_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
_COMMAND_FIELDS: dict[str, type] = {
    "trigger": str, "url": str, "method": str, "username": str, "icon_url": str, "auto_complete": bool,
    "auto_complete_desc": str, "auto_complete_hint": str, "display_name": str, "description": str,
}  # fmt: skip


def new_id() -> str:
    """A 26-character id drawn from Mattermost's alphabet, as `model.NewId` makes them."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(26))


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class MMUser:
    id: str
    username: str
    email: str
    is_bot: bool = False
    token: str | None = None  # a personal access token, so tests can act as this user too
    roles: str = "system_user"  # "system_admin system_user" for an admin
    tz: str = ""  # a time zone the user chose (manualTimezone); "" leaves the automatic one, unset

    @property
    def is_admin(self) -> bool:
        return "system_admin" in self.roles.split()


@dataclass(frozen=True)
class MMTeam:
    id: str
    name: str
    display_name: str = ""


@dataclass(frozen=True)
class MMChannel:
    id: str
    team_id: str
    name: str
    type: str = "O"  # O public, P private, D direct
    members: frozenset[str] | None = None  # None: every seeded user (the bot included) is a member


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any
    at: float
    status: int
    query: str = ""


class ApiError(Exception):
    """A Mattermost AppError: rendered as the server renders it, `detailed_error` wiped as in production."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(f"{status} {error_id}")
        self.status, self.error_id, self.message = status, error_id, message


def _bad_body(name: str) -> ApiError:
    message = f"Invalid or missing {name} in request body."
    return ApiError(400, "api.context.invalid_body_param.app_error", message)


def _bad_url(name: str) -> ApiError:
    message = f"Invalid or missing {name} parameter in request URL."
    return ApiError(400, "api.context.invalid_url_param.app_error", message)


def _forbidden() -> ApiError:
    return ApiError(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")


def _check_types(body: Mapping[str, Any], kinds: Mapping[str, type], name: str) -> None:
    """A field of the wrong JSON type fails Go's json.Decode, which the server reports as a bad body."""
    if any(key in body and not isinstance(body[key], kind) for key, kind in kinds.items()):
        raise _bad_body(name)


_SESSION_EXPIRED = (
    401, "api.context.session_expired.app_error", "Invalid or expired session, please login again."
)
_NO_USER = (404, "app.user.missing_account.const", "Unable to find the user.")
_FAULT_BODIES = {
    500: ("app.devstack.injected_fault.app_error", "Injected fault from the devstack stand-in."),
    503: ("api.context.server_busy.app_error",
          "Server is busy, non-critical services are temporarily unavailable."),
}  # fmt: skip


def _too_long() -> ApiError:
    # Older servers answered `model.post.is_valid.msg.app_error`; current ones (server/i18n/en.json) this.
    message = "Post Message property is longer than the maximum permitted length."
    return ApiError(400, "model.post.is_valid.message_length.app_error", message)


@dataclass
class _Fault:
    method: str | None
    prefix: str | None
    status: int
    remaining: int
    retry_after: int
    until: float | None = None  # a time window (on the stand-in's timer) instead of a number of calls

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, method)) and (self.prefix is None or path.startswith(self.prefix))


@dataclass(frozen=True)
class _Ctx:
    request: Request
    caller: MMUser  # the bot on the one route that needs no session (dialogs/open), where it goes unused
    body: bytes

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def json(self, name: str, kind: type = dict) -> Any:
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise _bad_body(name) from None
        if not isinstance(value, kind):
            raise _bad_body(name)
        return value


Handler = Callable[[_Ctx], Awaitable[tuple[int, Any]]]


class DevMattermost:
    """The stand-in: seeded users, one team, channels; records calls; injects faults on demand."""

    def __init__(
        self,
        *,
        team: MMTeam,
        users: Sequence[MMUser] = (),
        channels: Sequence[MMChannel] = (),
        bot: MMUser | None = None,
        trigger_ttl: float = 30.0,
        team_admins: Sequence[str] = (),
        command_managers: Sequence[str] = (),
        timer: Timer = REAL_TIME,
    ) -> None:
        """`timer` measures `fail_for` outages (on the bot's timer in the fault drills)."""
        self.bot = bot or MMUser(BOT_USER_ID, "chatops-bot", "chatops-bot@localhost", True, BOT_TOKEN)
        self.team = team
        self._users = {u.id: u for u in (self.bot, *users)}
        self._channels = {c.id: c for c in channels}
        self._tokens = {u.token: u for u in self._users.values() if u.token}
        self._posts: dict[str, dict[str, Any]] = {}
        self._commands: dict[str, dict[str, Any]] = {}
        self._dialogs: list[dict[str, Any]] = []
        self._faults: list[_Fault] = []
        # The server's AsymmetricSigningKey (app/server.go ensureAsymmetricSigningKey): ECDSA P-256.
        self._trigger_key = ec.generate_private_key(ec.SECP256R1())
        self._trigger_ttl = trigger_ttl  # ServiceSettings.OutgoingIntegrationRequestsTimeout, default 30 s
        self._timer = timer
        self.calls: list[Call] = []
        # Users with the team admin role (scheme_admin): they hold manage_slash_commands, a bot does not.
        self.team_admins = set(team_admins)
        # Users given manage_slash_commands alone (a custom role): they see and change only their own.
        self.command_managers = set(command_managers)
        self.show_email = True  # PrivacySettings.ShowEmailAddress
        self.ephemeral: list[dict[str, Any]] = []  # ephemeral posts sent to users (websocket in the real one)
        self._loopback = LoopbackServer(self._app())
        self.url = ""

    @property
    def bot_token(self) -> str:
        return self.bot.token or ""

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        bound = await self._loopback.start(host, port)
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        await self._loopback.stop()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    # -- views -----------------------------------------------------------------------------------

    @property
    def posts(self) -> dict[str, dict[str, Any]]:
        """Every post as stored, action integrations included (API responses strip them)."""
        return copy.deepcopy(self._posts)

    def posts_in(self, channel_id: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(p) for p in self._posts.values() if p["channel_id"] == channel_id]

    @property
    def dialogs(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._dialogs)

    @property
    def commands(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._commands)

    def direct_channel_id(self, user_a: str, user_b: str) -> str:
        """The id `POST channels/direct` gives this pair (stable, whichever order they are named in)."""
        digest = hashlib.sha256(_dm_name(user_a, user_b).encode()).digest()
        return "".join(_ALPHABET[b % 32] for b in digest[:26])

    # -- fault injection and trigger ids ----------------------------------------------------------

    def fail_next(self, target: str, status: int = 500, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` matching calls with `status` instead of handling them.

        `target` is a method (`"POST"`), a path prefix (`"/api/v4/posts"` or `"posts"`), or both
        (`"POST /api/v4/posts"`). 429 is the rate limiter's plain-text answer with its headers;
        500/503 the AppError JSON; 502/504 a reverse proxy's HTML page.
        """
        self._faults.append(_fault(target, status, times=times, retry_after=retry_after))

    def fail_for(self, seconds: float, target: str = "", status: int = 500, *, retry_after: int = 1) -> None:
        """Answer every matching call in the next `seconds` with `status` (an outage, then recovery);
        `target` as for `fail_next`, empty for every call."""
        fault = _fault(target, status, times=0, retry_after=retry_after)
        fault.until = self._timer.monotonic() + seconds
        self._faults.append(fault)

    def set_time_zone(self, user_id: str, tz: str) -> None:
        """The user picks a time zone in their settings (`manualTimezone`, automatic off)."""
        self._users[user_id] = replace(self._users[user_id], tz=tz)

    def clear_faults(self) -> None:
        """Every injected fault is over: calls are answered as usual again."""
        self._faults.clear()

    def remove_user(self, user_id: str) -> None:
        """The account is gone (deleted, say): calls naming it get the server's 4xx answers from now on."""
        user = self._users.pop(user_id)
        self._tokens.pop(user.token, None)

    def issue_trigger_id(self, user_id: str = "", *, at_ms: int | None = None) -> str:
        """A trigger id as the server makes one (model/integration_action.go GenerateTriggerId): base64 of
        `client_id:user_id:millis:signature`, the signature ECDSA P-256 (ASN.1 DER, base64) over SHA-256 of
        `client_id:user_id:millis:`. `at_ms`: when it was issued (a stale one, for tests)."""
        data = f"{new_id()}:{user_id}:{_now_ms() if at_ms is None else at_ms}:"
        der = self._trigger_key.sign(data.encode(), ec.ECDSA(hashes.SHA256()))
        return base64.b64encode((data + base64.b64encode(der).decode()).encode()).decode()

    @property
    def signing_public_key(self) -> str:
        """`AsymmetricSigningPublicKey` as the client config publishes it: base64 of the DER public key."""
        der = self._trigger_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def _verify_trigger(self, trigger_id: str) -> str:
        def fail(suffix: str, message: str) -> ApiError:
            return ApiError(400, f"interactive_message.decode_trigger_id.{suffix}", message)

        try:
            parts = base64.b64decode(trigger_id, validate=True).decode().split(":")
        except (binascii.Error, UnicodeDecodeError):
            message = "Failed to decode base64 for trigger ID for interactive dialog."
            raise fail("base64_decode_failed", message) from None
        if len(parts) != 4:
            raise fail("missing_data", "Trigger ID missing required data for interactive dialog.")
        client_id, user_id, millis, signature = parts
        if _now_ms() - (int(millis) if millis.isdigit() else 0) > self._trigger_ttl * 1000:
            ttl = f"{self._trigger_ttl:g}s"  # as Go's Duration.String() prints it
            message = "Trigger ID for interactive dialog is expired. "
            message += f"Trigger IDs live for a maximum of {ttl}."
            raise fail("expired", message)
        data = f"{client_id}:{user_id}:{millis}:"
        try:
            self._trigger_key.public_key().verify(base64.b64decode(signature), data.encode(),
                                                  ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            message = "Signature verification failed of trigger ID for interactive dialog."
            raise fail("verify_signature_failed", message) from None
        return user_id

    # -- HTTP plumbing ---------------------------------------------------------------------------

    def _app(self) -> Starlette:
        api = "/api/v4"
        routes = [
            (f"{api}/users/email/{{email}}", "GET", self._user_by_email, True),
            (f"{api}/users/username/{{username}}", "GET", self._user_by_username, True),
            (f"{api}/users/{{user_id}}", "GET", self._user, True),
            (f"{api}/users/{{user_id}}/patch", "PUT", self._patch_user, True),
            (f"{api}/posts", "POST", self._create_post, True),
            (f"{api}/posts/{{post_id}}", "GET", self._get_post, True),
            (f"{api}/posts/{{post_id}}/patch", "PUT", self._patch_post, True),
            (f"{api}/posts/{{post_id}}/actions/{{action_id}}", "POST", self._do_action, True),
            (f"{api}/channels", "POST", self._create_channel, True),
            (f"{api}/channels/{{channel_id}}/posts", "GET", self._channel_posts, True),
            (f"{api}/channels/{{channel_id}}/members/me", "GET", self._my_membership, True),
            (f"{api}/channels/{{channel_id}}/members", "POST", self._add_member, True),
            (f"{api}/channels/{{channel_id}}", "GET", self._get_channel, True),
            (f"{api}/commands/execute", "POST", self._execute_command, True),
            (f"{api}/actions/dialogs/submit", "POST", self._submit_dialog, True),
            (f"{api}/config/client", "GET", self._client_config, False),
            (f"{api}/config/patch", "PUT", self._patch_config, True),
            (f"{api}/channels/direct", "POST", self._direct_channel, True),
            (f"{api}/teams/name/{{name}}", "GET", self._team_by_name, True),
            (f"{api}/teams/{{team_id}}/channels/name/{{name}}", "GET", self._channel_by_name, True),
            (f"{api}/commands", "POST", self._create_command, True),
            (f"{api}/commands", "GET", self._list_commands, True),
            (f"{api}/commands/{{command_id}}", "PUT", self._update_command, True),
            (f"{api}/commands/{{command_id}}/regen_token", "PUT", self._regen_token, True),
            # openDialog is an APIHandler, not APISessionRequired: the signed trigger id is the credential.
            (f"{api}/actions/dialogs/open", "POST", self._open_dialog, False),
        ]
        table = [Route(p, self._endpoint(h, session), methods=[m]) for p, m, h, session in routes]
        table.append(Route("/{path:path}", self._endpoint(self._not_found, False), methods=list(_METHODS)))
        return Starlette(routes=table)

    def _endpoint(self, handler: Handler, session: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            at, body, request_id = time.time(), await request.body(), new_id()
            try:
                response = self._fault(request) or await self._handle(handler, request, body, session)
            except ApiError as err:
                payload = {"id": err.error_id, "message": err.message, "detailed_error": "",
                           "request_id": request_id, "status_code": err.status}  # fmt: skip
                response = _json(err.status, payload)
            try:
                recorded = json.loads(body) if body else None
            except (ValueError, UnicodeDecodeError):
                recorded = None
            status, query = response.status_code, request.url.query
            self.calls.append(Call(request.method, request.url.path, recorded, at, status, query))
            response.headers["X-Request-Id"] = request_id
            return response

        return endpoint

    async def _handle(self, handler: Handler, request: Request, body: bytes, session: bool) -> Response:
        caller = self._caller(request)
        if caller is None and session:
            raise ApiError(*_SESSION_EXPIRED)
        status, payload = await handler(_Ctx(request, caller or self.bot, body))
        return _json(status, payload)

    def _caller(self, request: Request) -> MMUser | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return self._tokens.get(token.strip()) if scheme.lower() in ("bearer", "token") else None

    def _fault(self, request: Request) -> Response | None:
        now = self._timer.monotonic()
        self._faults = [f for f in self._faults if f.until is None or now < f.until]
        fault = next((f for f in self._faults if f.matches(request.method, request.url.path)), None)
        if fault is None:
            return None
        fault.remaining -= 1
        if fault.remaining <= 0 and fault.until is None:
            self._faults.remove(fault)
        if fault.status == 429:
            # app/ratelimit.go: throttled's headers (Limit = MaxBurst + 1), then http.Error's plain text.
            wait = str(fault.retry_after)
            headers = {"X-Ratelimit-Limit": "101", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": wait,
                       "Retry-After": wait, "X-Content-Type-Options": "nosniff"}  # fmt: skip
            return Response(b"limit exceeded\n", 429, headers, media_type="text/plain; charset=utf-8")
        if fault.status in (502, 504):
            page = f"<html><head><title>{fault.status}</title></head><body>nginx</body></html>\n"
            return Response(page.encode(), fault.status, media_type="text/html")
        raise ApiError(fault.status, *_FAULT_BODIES[fault.status])

    # -- users, teams, channels ------------------------------------------------------------------

    async def _user(self, ctx: _Ctx) -> tuple[int, Any]:
        user_id = ctx.param("user_id")
        if user_id == "me":
            return 200, _user_json(ctx.caller)
        if not _VALID_ID.fullmatch(user_id):
            raise _bad_url("user_id")
        return 200, self._user_for(ctx.caller, self._user_or_404(user_id))

    async def _patch_user(self, ctx: _Ctx) -> tuple[int, Any]:
        """api4/user.go patchUser, as far as the bot reads users: the time zone a user sets for themselves
        (`useAutomaticTimezone` "false" with `manualTimezone`); only the user or an admin may."""
        user_id = ctx.param("user_id")
        if not _VALID_ID.fullmatch(user_id):
            raise _bad_url("user_id")
        user = self._user_or_404(user_id)
        if ctx.caller.id != user_id and not ctx.caller.is_admin:
            raise _forbidden()
        zone = ctx.json("user").get("timezone")
        if isinstance(zone, dict):
            manual = str(zone.get("manualTimezone") or "") if zone.get("useAutomaticTimezone") == "false" else ""
            user = self._users[user_id] = replace(user, tz=manual)
        return 200, self._user_for(ctx.caller, user)

    def _user_for(self, caller: MMUser, user: MMUser) -> dict[str, Any]:
        """A user as `caller` may see it: with `ShowEmailAddress` off, the e-mail is blanked for everyone but
        the user and admins (model/user.go SanitizeProfile, app/user.go sanitizeProfile)."""
        shown = _user_json(user)
        if not (self.show_email or caller.is_admin or caller.id == user.id):
            shown["email"] = ""
        return shown

    async def _user_by_email(self, ctx: _Ctx) -> tuple[int, Any]:
        email = ctx.param("email").lower()
        if "@" not in email:
            raise _bad_url("email")
        if not (self.show_email or ctx.caller.is_admin):
            # api4/user.go getUserByEmail: refused outright, not a 404, when addresses are hidden.
            error_id = "api.user.get_user_by_email.permissions.app_error"
            raise ApiError(403, error_id, "Unable to get user by email.")
        found = next((u for u in self._users.values() if u.email.lower() == email), None)
        if found is None:
            raise ApiError(*_NO_USER)
        return 200, self._user_for(ctx.caller, found)

    async def _user_by_username(self, ctx: _Ctx) -> tuple[int, Any]:
        name = ctx.param("username").lower()
        found = next((u for u in self._users.values() if u.username.lower() == name), None)
        if found is None:
            message = ("Unable to find an existing account matching your username for this team. "
                       "This team may require an invite from the team owner to join.")  # fmt: skip
            raise ApiError(404, "app.user.get_by_username.app_error", message)
        return 200, self._user_for(ctx.caller, found)

    def _user_or_404(self, user_id: str) -> MMUser:
        if user_id not in self._users:
            raise ApiError(*_NO_USER)
        return self._users[user_id]

    async def _team_by_name(self, ctx: _Ctx) -> tuple[int, Any]:
        if ctx.param("name") != self.team.name:
            raise ApiError(404, "app.team.get_by_name.missing.app_error", "Unable to find the existing team.")
        return 200, {"id": self.team.id, "name": self.team.name, "display_name": self.team.display_name,
                     "type": "O", "create_at": 0, "update_at": 0, "delete_at": 0}  # fmt: skip

    async def _channel_by_name(self, ctx: _Ctx) -> tuple[int, Any]:
        team_id, name = ctx.param("team_id"), ctx.param("name")
        for channel in self._channels.values():
            if channel.team_id == team_id and channel.name == name:
                if channel.type == "O" or self._is_member(channel, ctx.caller.id):
                    return 200, _channel_json(channel)
        raise ApiError(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")

    def _is_member(self, channel: MMChannel, user_id: str) -> bool:
        return user_id in self._users if channel.members is None else user_id in channel.members

    async def _direct_channel(self, ctx: _Ctx) -> tuple[int, Any]:
        ids = ctx.json("user_ids", list)
        if len(ids) != 2 or not all(isinstance(i, str) for i in ids):
            raise _bad_body("user_ids")
        if not all(_VALID_ID.fullmatch(i) for i in ids):
            raise _bad_body("user_id")
        if ctx.caller.id not in ids:
            raise _forbidden()
        if not all(i in self._users for i in ids):
            message = "Invalid user ID for direct channel creation."
            raise ApiError(400, "api.channel.create_direct_channel.invalid_user.app_error", message)
        channel_id = self.direct_channel_id(*ids)
        channel = MMChannel(channel_id, "", _dm_name(*ids), "D", frozenset(ids))
        self._channels.setdefault(channel_id, channel)
        return 201, _channel_json(self._channels[channel_id])

    # -- posts -----------------------------------------------------------------------------------

    async def _create_post(self, ctx: _Ctx) -> tuple[int, Any]:
        body = ctx.json("post")
        _check_types(body, {"channel_id": str, "message": str, "root_id": str, "props": dict}, "post")
        channel = self._channels.get(body.get("channel_id", ""))
        if channel is None or not self._is_member(channel, ctx.caller.id):
            raise _forbidden()  # createPostChecks: no create_post permission on an unknown channel
        root_id = body.get("root_id", "")
        root = self._posts.get(root_id)
        if root_id and (root is None or root["channel_id"] != channel.id or root["root_id"]):
            raise ApiError(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
        message = body.get("message", "")
        if len(message) > MAX_POST_RUNES:
            raise _too_long()
        now = _now_ms()
        post = {"id": new_id(), "create_at": now, "update_at": now, "edit_at": 0, "delete_at": 0,
                "is_pinned": False, "user_id": ctx.caller.id, "channel_id": channel.id, "root_id": root_id,
                "original_id": "", "message": message, "type": "", "hashtags": "", "pending_post_id": "",
                "props": _with_action_ids(body.get("props")), "reply_count": 0, "metadata": {}}  # fmt: skip
        if ctx.caller.is_bot:
            post["props"]["from_bot"] = "true"  # app/post.go CreatePost: a bot's post says so
        self._posts[post["id"]] = post
        return 201, _for_client(post)

    async def _get_post(self, ctx: _Ctx) -> tuple[int, Any]:
        post = self._posts.get(self._post_id(ctx))
        if post is None:
            raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
        if not self._is_member(self._channels[post["channel_id"]], ctx.caller.id):
            raise _forbidden()
        return 200, _for_client(post)

    async def _patch_post(self, ctx: _Ctx) -> tuple[int, Any]:
        post_id, patch = self._post_id(ctx), ctx.json("post")
        _check_types(patch, {"message": str, "props": dict}, "post")
        post = self._posts.get(post_id)
        if post is None or post["user_id"] != ctx.caller.id:
            raise _forbidden()  # edit_post on a missing post, edit_others_posts on someone else's
        if not self._is_member(self._channels[post["channel_id"]], ctx.caller.id):
            raise _forbidden()  # api4/post.go patchPost: edit_post is a channel permission
        if len(patch.get("message", "")) > MAX_POST_RUNES:
            raise _too_long()
        self._update(post, patch.get("message", post["message"]), patch.get("props"))
        return 200, _for_client(post)

    def _update(self, post: dict[str, Any], message: str, props: dict[str, Any] | None) -> None:
        """app/post.go UpdatePost: a new message or new attachments mark the post edited (`edit_at`);
        props are replaced whole, so what is not sent again (`from_bot` too) is gone."""
        now = _now_ms()
        edited = message != post["message"]
        if props is not None:
            edited = edited or props.get("attachments") != post["props"].get("attachments")
            post["props"] = _with_action_ids(props)
        post["message"] = message
        if edited:
            post["edit_at"] = now
        post["update_at"] = now

    def _post_id(self, ctx: _Ctx) -> str:
        post_id = ctx.param("post_id")
        if not _VALID_ID.fullmatch(post_id):
            raise _bad_url("post_id")
        return post_id

    # -- slash commands --------------------------------------------------------------------------

    async def _create_command(self, ctx: _Ctx) -> tuple[int, Any]:
        body = ctx.json("command")
        _check_types(body, {**_COMMAND_FIELDS, "team_id": str}, "command")
        if body.get("team_id") != self.team.id or not self._manages_commands(ctx.caller):
            raise _forbidden()  # manage_slash_commands is a team permission
        trigger = body.get("trigger", "").lower()
        if any(c["trigger"] == trigger for c in self._commands.values()):
            message = "This trigger word is already in use. Please choose another word."
            raise ApiError(400, "api.command.duplicate_trigger.app_error", message)
        now = _now_ms()
        command = {"id": new_id(), "token": new_id(), "create_at": now, "update_at": now, "delete_at": 0,
                   "creator_id": ctx.caller.id, "team_id": self.team.id, **_command_fields(body)}  # fmt: skip
        self._commands[command["id"]] = _valid_command(command)
        return 201, command

    async def _list_commands(self, ctx: _Ctx) -> tuple[int, Any]:
        team_id = ctx.request.query_params.get("team_id", "")
        if not team_id:
            raise _bad_body("team_id")
        if not self._manages_commands(ctx.caller):
            raise _forbidden()
        # custom_only=false would add the built-in commands, which this stand-in does not model. Without
        # manage_others_slash_commands only the caller's own are listed (api4/command.go listCommands).
        others = ctx.caller.is_admin or ctx.caller.id in self.team_admins
        return 200, [c for c in self._commands.values()
                     if c["team_id"] == team_id and (others or c["creator_id"] == ctx.caller.id)]

    async def _update_command(self, ctx: _Ctx) -> tuple[int, Any]:
        body, old = ctx.json("command"), self._command(ctx)
        _check_types(body, _COMMAND_FIELDS, "command")
        if body.get("id") != old["id"]:
            raise _bad_body("command")
        if body.get("team_id", old["team_id"]) != old["team_id"]:
            message = "Unable to update commands across teams."
            raise ApiError(400, "api.command.team_mismatch.app_error", message)
        updated = {**old, **_command_fields(body), "update_at": _now_ms()}
        self._commands[old["id"]] = _valid_command(updated)
        return 200, updated

    async def _regen_token(self, ctx: _Ctx) -> tuple[int, Any]:
        command = self._command(ctx)
        command.update(token=new_id(), update_at=_now_ms())
        return 200, {"token": command["token"]}

    def _manages_commands(self, caller: MMUser) -> bool:
        """manage_slash_commands: team and system admins, or a role granting it (api4/command.go); a bot
        holds none of these unless made one."""
        return caller.is_admin or caller.id in self.team_admins or caller.id in self.command_managers

    def _command(self, ctx: _Ctx) -> dict[str, Any]:
        if not self._manages_commands(ctx.caller):
            raise _forbidden()
        command = self._commands.get(ctx.param("command_id"))
        if command is None:
            raise ApiError(404, "store.sql_command.get.missing.app_error", "Command does not exist.")
        return command

    # -- dialogs and fallbacks -------------------------------------------------------------------

    async def _open_dialog(self, ctx: _Ctx) -> tuple[int, Any]:
        body = ctx.json("dialog")
        dialog = body.get("dialog", {})
        elements = (dialog.get("elements") or []) if isinstance(dialog, dict) else None
        strings = all(isinstance(body.get(k, ""), str) for k in ("trigger_id", "url"))
        if not strings or not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
            raise _bad_body("dialog")  # json.Decode into OpenDialogRequest fails
        if not body.get("url"):
            raise _bad_body("url")
        user_id = self._verify_trigger(body.get("trigger_id", ""))
        # The server only logs an invalid dialog (and still sends it); record what it would have logged.
        self._dialogs.append({"trigger_id": body["trigger_id"], "url": body["url"], "dialog": dialog,
                              "user_id": user_id, "problems": _dialog_problems(dialog)})  # fmt: skip
        return 200, {"status": "OK"}

    async def _not_found(self, ctx: _Ctx) -> tuple[int, Any]:
        raise ApiError(404, "api.context.404.app_error", "Sorry, we could not find the page.")

    # -- channels, config ------------------------------------------------------------------------

    def _channel_or_404(self, ctx: _Ctx) -> MMChannel:
        channel = self._channels.get(ctx.param("channel_id"))
        if channel is None:
            raise ApiError(404, "app.channel.get.existing.app_error", "Unable to find the existing channel.")
        return channel

    def _can_read(self, channel: MMChannel, user: MMUser) -> bool:
        return self._is_member(channel, user.id) or channel.type == "O" or user.is_admin

    async def _create_channel(self, ctx: _Ctx) -> tuple[int, Any]:
        """api4/channel.go createChannel: an O or P channel on the team, its creator the only member."""
        body = ctx.json("channel")
        kind, name = body.get("type"), body.get("name")
        if body.get("team_id") != self.team.id or kind not in ("O", "P") or not isinstance(name, str) \
                or not name:
            raise _bad_body("channel")
        if any(c.team_id == self.team.id and c.name == name for c in self._channels.values()):
            message = "A channel with that name already exists on the same team."
            raise ApiError(400, "store.sql_channel.save_channel.exists.app_error", message)
        channel = MMChannel(new_id(), self.team.id, name, kind, frozenset({ctx.caller.id}))
        self._channels[channel.id] = channel
        return 201, _channel_json(channel)

    async def _get_channel(self, ctx: _Ctx) -> tuple[int, Any]:
        channel = self._channel_or_404(ctx)
        if not self._can_read(channel, ctx.caller):
            raise _forbidden()
        return 200, _channel_json(channel)

    async def _my_membership(self, ctx: _Ctx) -> tuple[int, Any]:
        channel = self._channel_or_404(ctx)
        if not self._is_member(channel, ctx.caller.id):
            raise _forbidden()  # api4/channel.go getChannelMember: read_channel, which a non-member lacks
        return 200, {"channel_id": channel.id, "user_id": ctx.caller.id, "roles": "channel_user",
                     "msg_count": 0, "mention_count": 0}  # fmt: skip

    async def _add_member(self, ctx: _Ctx) -> tuple[int, Any]:
        channel, body = self._channel_or_404(ctx), ctx.json("user_id")
        user_id = body.get("user_id")
        if not isinstance(user_id, str) or user_id not in self._users:
            raise _bad_body("user_id")
        # api4/channel.go addChannelMember: joining a public channel yourself needs join_public_channels
        # (every member of the team has it); adding to a private one needs manage_private_channel_members.
        allowed = ctx.caller.is_admin or (channel.type == "O" and user_id == ctx.caller.id) or (
            self._is_member(channel, ctx.caller.id) and channel.type in ("O", "P"))
        if not allowed:
            raise _forbidden()
        members = set(channel.members if channel.members is not None else self._users) | {user_id}
        self._channels[channel.id] = MMChannel(channel.id, channel.team_id, channel.name, channel.type,
                                               frozenset(members))
        return 201, {"channel_id": channel.id, "user_id": user_id, "roles": "channel_user"}

    async def _channel_posts(self, ctx: _Ctx) -> tuple[int, Any]:
        channel = self._channel_or_404(ctx)
        if not self._can_read(channel, ctx.caller):
            raise _forbidden()
        posts = sorted((p for p in self._posts.values() if p["channel_id"] == channel.id),
                       key=lambda p: p["create_at"], reverse=True)
        return 200, {"order": [p["id"] for p in posts], "posts": {p["id"]: _for_client(p) for p in posts},
                     "next_post_id": "", "prev_post_id": ""}  # fmt: skip

    async def _client_config(self, ctx: _Ctx) -> tuple[int, Any]:
        # api4/config.go getClientConfig (format=old): every value a string.
        # AsymmetricSigningPublicKey: a real 5.36 server publishes it here to anyone, signed in or not (checked,
        # tests/contract/test_mattermost_findings.py), as base64 of the DER public key.
        return 200, {"ShowEmailAddress": str(self.show_email).lower(), "EnableCommands": "true",
                     "SiteURL": self.url, "AsymmetricSigningPublicKey": self.signing_public_key}  # fmt: skip

    async def _patch_config(self, ctx: _Ctx) -> tuple[int, Any]:
        if not ctx.caller.is_admin:
            raise _forbidden()  # manage_system
        privacy = ctx.json("config").get("PrivacySettings") or {}
        if isinstance(privacy.get("ShowEmailAddress"), bool):
            self.show_email = privacy["ShowEmailAddress"]
        return 200, {"PrivacySettings": {"ShowEmailAddress": self.show_email}}

    # -- what the server does when a user types a command, clicks, submits --------------------------

    async def _integration(
        self, url: str, *, json_body: Any = None, form: tuple[bytes, dict[str, str]] | None = None
    ) -> httpx.Response:
        """The server's outgoing call to the bot (app/integration_action.go DoActionRequest, app/command.go
        DoCommandRequest); the integration's own failure is the server's 400 `Action integration error.`"""
        async with httpx.AsyncClient(timeout=30) as client:
            try:
                if form is not None:
                    return await client.post(url, content=form[0], headers=form[1])
                return await client.post(url, json=json_body,
                                         headers={"Accept": "application/json"})
            except httpx.HTTPError:
                raise _integration_error() from None

    async def _execute_command(self, ctx: _Ctx) -> tuple[int, Any]:
        """api4/command.go executeCommand -> app/command.go ExecuteCommand, for custom commands."""
        body = ctx.json("command")
        channel = self._channels.get(str(body.get("channel_id", "")))
        if channel is None or not self._is_member(channel, ctx.caller.id):
            raise _forbidden()  # use_slash_commands in the channel
        line = str(body.get("command", ""))
        trigger, _, text = line.removeprefix("/").partition(" ")
        command = next((c for c in self._commands.values() if c["trigger"] == trigger.lower()), None)
        if command is None:
            message = (f"Command with a trigger of '{trigger}' not found. To send a message beginning with "
                       '"/", try adding an empty space at the beginning of the message.')
            raise ApiError(404, "api.command.execute_command.not_found.app_error", message)
        trigger_id = self.issue_trigger_id(ctx.caller.id)
        form = self.command_form(token=command["token"], user_id=ctx.caller.id, user_name=ctx.caller.username,
                                 channel_id=channel.id, text=text.strip(), trigger_id=trigger_id,
                                 team_id=self.team.id, response_url=f"{self.url}/hooks/commands/{new_id()}",
                                 trigger=command["trigger"])  # fmt: skip
        answer = await self._integration(command["url"], form=form)
        if answer.status_code != 200:
            message = f"Command with a trigger of '{trigger}' returned response {answer.status_code}."
            raise ApiError(500, "api.command.execute_command.failed_resp.app_error", message)
        try:
            response = answer.json() if answer.headers.get("content-type") == "application/json" else None
        except ValueError:
            response = None
        response = response if isinstance(response, dict) else {"text": answer.text}
        if response.get("response_type") == "in_channel":
            now = _now_ms()
            post = {"id": new_id(), "create_at": now, "update_at": now, "edit_at": 0, "delete_at": 0,
                    "is_pinned": False, "user_id": ctx.caller.id, "channel_id": channel.id, "root_id": "",
                    "original_id": "", "message": response.get("text", ""), "type": "", "hashtags": "",
                    "pending_post_id": "", "reply_count": 0, "metadata": {},
                    "props": _with_action_ids({"attachments": response.get("attachments"),
                                               "from_webhook": "true"})}  # fmt: skip
            self._posts[post["id"]] = post
        else:
            self.ephemeral.append({"user_id": ctx.caller.id, "channel_id": channel.id,
                                   "message": response.get("text", ""), "props": response})  # fmt: skip
        return 200, {"response_type": response.get("response_type") or "ephemeral",
                     "text": response.get("text", ""), "attachments": response.get("attachments"), "trigger_id": new_id(),
                     "skip_slack_parsing": bool(response.get("skip_slack_parsing"))}  # fmt: skip

    async def _do_action(self, ctx: _Ctx) -> tuple[int, Any]:
        """api4/post.go doPostAction -> app/integration_action.go DoPostActionWithCookie."""
        post = self._posts.get(self._post_id(ctx))
        if post is None or not self._can_read(self._channels[post["channel_id"]], ctx.caller):
            raise _forbidden()  # read_channel on the post's channel
        action = next((a for a in _actions(post["props"]) if a.get("id") == ctx.param("action_id")), None)
        if action is None or not action.get("integration"):
            raise ApiError(404, "api.post.do_action.action_id.app_error", "Invalid action id.")
        integration = action["integration"]
        body = self.action_request(user_id=ctx.caller.id, channel_id=post["channel_id"], post_id=post["id"],
                                   context=integration.get("context"),
                                   action_type=action.get("type", "button"))  # fmt: skip
        answer = await self._integration(str(integration.get("url", "")), json_body=body)
        if answer.status_code != 200:
            raise _integration_error()
        try:
            response = answer.json() if answer.content else {}
        except ValueError:
            raise _integration_error() from None
        update = response.get("update") if isinstance(response, dict) else None
        if isinstance(update, dict):
            props = update.get("props")
            if isinstance(props, dict):
                # model.PostActionRetainPropKeys survive a replacement of the props; nothing else does.
                kept = {k: post["props"][k] for k in _RETAINED if k in post["props"]}
                props = {**{k: v for k, v in props.items() if k not in _RETAINED}, **kept}
            self._update(post, str(update.get("message", "")), props)
        if isinstance(response, dict) and response.get("ephemeral_text"):
            self.ephemeral.append({"user_id": ctx.caller.id, "channel_id": post["channel_id"],
                                   "message": response["ephemeral_text"], "root_id": post["id"]})  # fmt: skip
        return 200, {"status": "OK", "trigger_id": new_id()}

    async def _submit_dialog(self, ctx: _Ctx) -> tuple[int, Any]:
        """api4/integration_action.go submitDialog -> app SubmitInteractiveDialog: the submitter is the
        session's user, whatever the body says; the integration's errors come back as they are."""
        body = ctx.json("dialog")
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise _bad_body("url")
        submission = self.dialog_submission(
            callback_id=str(body.get("callback_id", "")), state=str(body.get("state", "")),
            user_id=ctx.caller.id, channel_id=str(body.get("channel_id", "")),
            team_id=str(body.get("team_id", "")), submission=body.get("submission"),
            cancelled=body.get("cancelled") is True,
        )  # fmt: skip
        answer = await self._integration(url, json_body=submission)
        if answer.status_code != 200:
            raise _integration_error()
        try:
            response = answer.json() if answer.content else {}
        except ValueError:
            raise _integration_error() from None
        # The SubmitDialogResponse as the server marshals it: `error` and `errors`, each omitted if empty.
        response = response if isinstance(response, dict) else {}
        return 200, {k: response[k] for k in ("error", "errors") if response.get(k)}

    # -- requests Mattermost sends to the bot ----------------------------------------------------

    def command_form(
        self,
        *,
        token: str,
        user_id: str,
        user_name: str,
        channel_id: str,
        text: str,
        trigger_id: str,
        team_id: str,
        response_url: str,
        trigger: str = "access",
    ) -> tuple[bytes, dict[str, str]]:
        """The form body and headers of a `P` (POST) custom slash command (app/command.go)."""
        channel = self._channels[channel_id]
        fields = [("token", token), ("team_id", team_id), ("team_domain", self.team.name),
                  ("channel_id", channel_id), ("channel_name", channel.name), ("user_id", user_id),
                  ("user_name", user_name), ("command", "/" + trigger), ("text", text),
                  ("trigger_id", trigger_id), ("response_url", response_url)]  # fmt: skip
        # url.Values.Encode sorts by key; repeated keys (the mention lists) keep their order.
        body = urlencode(sorted([*fields, *self._mentions(text)], key=lambda kv: kv[0])).encode()
        headers = {"Accept": "application/json", "Authorization": f"Token {token}",
                   "Content-Type": "application/x-www-form-urlencoded",
                   "User-Agent": "Mattermost-Bot/1.1"}  # fmt: skip
        return body, headers

    def _mentions(self, text: str) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        by_name = {u.username.lower(): u.id for u in self._users.values()}
        for name in dict.fromkeys(n.rstrip(".-_").lower() for n in re.findall(r"@([A-Za-z0-9._-]+)", text)):
            if name in by_name:
                pairs += [("user_mentions", name), ("user_mentions_ids", by_name[name])]
        public = {c.name: c.id for c in self._channels.values() if c.type == "O"}
        for name in dict.fromkeys(re.findall(r"~([a-z0-9_-]+)", text)):
            if name in public:
                pairs += [("channel_mentions", name), ("channel_mentions_ids", public[name])]
        return pairs

    def action_request(
        self,
        *,
        user_id: str,
        channel_id: str,
        post_id: str,
        context: Mapping[str, Any] | None,
        trigger_id: str | None = None,
        action_type: str = "button",
    ) -> dict[str, Any]:
        """The JSON body of a button click (`PostActionIntegrationRequest`); team fields empty in a DM."""
        channel = self._channels[channel_id]
        team_domain = self.team.name if channel.team_id else ""
        body: dict[str, Any] = {
            "user_id": user_id, "user_name": self._users[user_id].username,
            "channel_id": channel_id, "channel_name": channel.name,
            "team_id": channel.team_id, "team_domain": team_domain, "post_id": post_id,
            "trigger_id": trigger_id or self.issue_trigger_id(user_id),
            "type": action_type, "data_source": "",
        }  # fmt: skip
        if context:
            body["context"] = dict(context)
        return body

    def click(self, post_id: str, action: str, *, user_id: str) -> tuple[str, dict[str, Any]]:
        """(integration url, body) for clicking the action with this id or name on a stored post."""
        post = self._posts[post_id]
        for attachment in post["props"].get("attachments") or []:
            for candidate in attachment.get("actions") or []:
                if action in (candidate.get("id"), candidate.get("name")):
                    integration = candidate.get("integration") or {}
                    body = self.action_request(
                        user_id=user_id, channel_id=post["channel_id"], post_id=post_id,
                        context=integration.get("context"), action_type=candidate.get("type", "button"),
                    )  # fmt: skip
                    return integration.get("url", ""), body
        raise KeyError(f"post {post_id} has no action {action!r}")

    def dialog_submission(
        self,
        *,
        callback_id: str,
        state: str,
        user_id: str,
        channel_id: str,
        team_id: str,
        submission: Mapping[str, Any] | None,
        cancelled: bool = False,
    ) -> dict[str, Any]:
        """The JSON body of a dialog submit or cancel (`SubmitDialogRequest`; the url is cleared)."""
        submitted = dict(submission) if submission is not None else None
        return {"type": "dialog_submission", "callback_id": callback_id, "state": state, "user_id": user_id,
                "channel_id": channel_id, "team_id": team_id, "submission": submitted,
                "cancelled": cancelled}  # fmt: skip


def _fault(target: str, status: int, *, times: int, retry_after: int) -> _Fault:
    if status not in (429, 500, 502, 503, 504):
        raise ValueError(f"unsupported fault status {status}")
    method, _, prefix = target.partition(" ") if " " in target else (target, "", "")
    if method not in _METHODS:
        method, prefix = "", target
    if prefix and not prefix.startswith("/"):
        prefix = "/api/v4/" + prefix
    return _Fault(method or None, prefix or None, status, times, retry_after)


_RETAINED = ("from_webhook", "override_username", "override_icon_url")  # model.PostActionRetainPropKeys


def _integration_error() -> ApiError:
    return ApiError(400, "api.post.do_action.action_integration.app_error", "Action integration error.")


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload).encode(), status, media_type="application/json")


def _dm_name(user_a: str, user_b: str) -> str:
    return "__".join(sorted((user_a, user_b)))


def _user_json(user: MMUser) -> dict[str, Any]:
    return {"id": user.id, "create_at": 0, "update_at": 0, "delete_at": 0, "username": user.username,
            "auth_data": "", "auth_service": "", "email": user.email, "nickname": "", "first_name": "",
            "last_name": "", "position": "", "roles": "system_user", "locale": "en",
            "is_bot": user.is_bot,
            # model.User.Timezone as a real 5.36 server answers it: strings, "true"/"false" included.
            "timezone": {"automaticTimezone": "", "manualTimezone": user.tz,
                         "useAutomaticTimezone": "false" if user.tz else "true"}}  # fmt: skip


def _channel_json(channel: MMChannel) -> dict[str, Any]:
    return {"id": channel.id, "create_at": 0, "update_at": 0, "delete_at": 0, "team_id": channel.team_id,
            "type": channel.type, "display_name": "" if channel.type == "D" else channel.name,
            "name": channel.name, "header": "", "purpose": "", "last_post_at": 0,
            "total_msg_count": 0}  # fmt: skip


def _actions(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    attachments = props.get("attachments")
    if not isinstance(attachments, list):
        return []
    actions = [att.get("actions") or [] for att in attachments if isinstance(att, dict)]
    return [action for group in actions for action in group if isinstance(action, dict)]


def _with_action_ids(props: Mapping[str, Any] | None) -> dict[str, Any]:
    stored = copy.deepcopy(dict(props or {}))
    for action in _actions(stored):
        action.setdefault("id", new_id())  # Post.GenerateActionIds
    return stored


def _for_client(post: Mapping[str, Any]) -> dict[str, Any]:
    shown = copy.deepcopy(dict(post))
    for action in _actions(shown["props"]):
        action.pop("integration", None)  # Post.EncodeJSON -> StripActionIntegrations
    return shown


def _command_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {name: kind() for name, kind in _COMMAND_FIELDS.items()}
    fields = {name: body.get(name, default) for name, default in defaults.items()}
    fields["trigger"] = fields["trigger"].lower()
    return fields


def _valid_command(command: dict[str, Any]) -> dict[str, Any]:
    """Command.IsValid, in its order, with its English messages."""
    trigger, url = command["trigger"], command["url"]
    bad_trigger = not trigger or len(trigger) > 128 or trigger.startswith("/") or " " in trigger
    checks = [
        (bad_trigger, "trigger", "Invalid trigger."),
        (not url or len(url) > 1024, "url", "Invalid URL."),
        (not re.match(r"https?://[^/\s]+", url), "url_http",
         "Invalid URL. Must be a valid URL and start with http:// or https://."),
        (command["method"] not in ("P", "G"), "method", "Invalid Method."),
        (len(command["display_name"]) > 64, "display_name", "Invalid title."),
        (len(command["description"]) > 128, "description", "Invalid description."),
    ]  # fmt: skip
    for failed, field, message in checks:
        if failed:
            raise ApiError(400, f"model.command.is_valid.{field}.app_error", message)
    return command


def _dialog_problems(dialog: Mapping[str, Any]) -> list[str]:
    """The subset of Dialog.IsValid a bot most often trips over (the title is capped at 24 characters)."""
    problems = []
    title = dialog.get("title", "")
    if not title or len(title) > 24:
        problems.append(f"invalid dialog title {title!r}")
    for element in dialog.get("elements") or []:
        if not element.get("name") or not element.get("display_name"):
            problems.append(f"element {element.get('name')!r} needs a name and a display_name")
        elif len(element["display_name"]) > 24:
            problems.append(f"element {element['name']!r} display_name is longer than 24 characters")
    return problems
