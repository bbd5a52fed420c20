"""The Slack adapter: bolt's `AsyncApp` behind `POST /slack/events`, or over Socket Mode, with start-up checks.

Over HTTP, slash commands and interactivity (buttons, forms) share the one URL. A guard in front of bolt
(`guard`) answers 401 to anything not signed with the signing secret within 5 minutes, however its
headers are malformed, and to a signed request replayed; 200 without running to Slack's own retry of a
request already handled; 413 to oversized bodies and 400 to signed bodies bolt cannot parse or route,
so nothing runs and Slack is not called for them. Each refusal is one log line. Bolt verifies the
signature again, answers `url_verification` and `ssl_check`, and routes the rest to `Interactions`,
except a signed `/access` command, which goes to `Interactions` directly (bolt's middleware adds nothing
to it). With `slack.app_token` the bot opens a Socket Mode WebSocket instead and serves no HTTP route;
payloads and acks are the same, minus the signature (the app-level token authenticates the connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request import payload_utils
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatops_bot.adapters.base import StartFailed
from chatops_bot.server import read_body
from chatops_bot.adapters.profiles import Profiles
from chatops_bot.adapters.slack.delivery import ACK_BUDGET, Delivery, retry_handlers
from chatops_bot.adapters.slack.guard import Seen, SeenRequests, why_unsigned
from chatops_bot.adapters.slack.interactions import COMMAND, Interactions
from chatops_bot.adapters.slack.outbound import slack_profile
from chatops_bot.config import Settings
from chatops_bot.timer import REAL_TIME, Timer
from commands.context import Context

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1 << 20  # Slack's payloads are a few kilobytes; more is not Slack
SOCKET_CONNECT_TIMEOUT = 30.0
_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


class SlackStartError(StartFailed):
    """The adapter cannot start; the message names the config key to fix."""


class SlackAdapter:
    name = "slack"

    def __init__(self, *, ctx: Context, client: AsyncWebClient, signing_secret: str | None = None,
                 app_token: str | None = None, match_email: bool = False,
                 ack_budget: float = ACK_BUDGET, timer: Timer = REAL_TIME) -> None:
        """HTTP mode with `signing_secret`; Socket Mode with `app_token` (which wins when both are given).
        `timer` keeps the waits of answers retried after the ack."""
        if not signing_secret and not app_token:
            raise ValueError("a signing secret (HTTP) or an app-level token (Socket Mode) is required")
        self.client = client
        self.app_token = app_token
        self.delivery = Delivery(ack_budget=ack_budget, timer=timer)
        self.signing_secret = None if app_token else (signing_secret or "").encode()
        self.seen = SeenRequests()
        # process_before_response: the listener decides when to ack (the ack budget), and the work it
        # leaves running is ours to track (`Delivery.later`), not a task bolt forgets. The secret is
        # passed even when empty: bolt would otherwise read SLACK_SIGNING_SECRET from the environment.
        # `authorize`: bolt would otherwise call auth.test itself on the first click or form it routes, and
        # answer that click "install this app" (dropping it) if Slack is rate limiting or failing just then.
        # Its client has no token of its own, which bolt would then warn is unused. (A lambda: bolt passes
        # arguments by the names it finds, and would pass `self` too.)
        self._signed_in_as: Mapping[str, object] | None = None
        self.app = AsyncApp(client=AsyncWebClient(base_url=client.base_url),
                            authorize=lambda: self._authorize(), signing_secret=signing_secret or "",
                            process_before_response=True,
                            request_verification_enabled=self.signing_secret is not None)
        self.profiles = Profiles(partial(slack_profile, client), platform="slack")
        self.interactions = Interactions(ctx=ctx, client=client, delivery=self.delivery,
                                         match_email=match_email, profiles=self.profiles)
        self.interactions.register(self.app)
        self._socket: AsyncSocketModeHandler | None = None

    def routes(self) -> Sequence[BaseRoute]:
        return [] if self.signing_secret is None else [Route(EVENTS_PATH, self.events, methods=["POST"])]

    async def events(self, request: Request) -> Response:
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            return JSONResponse({"error": "request too large"}, status_code=413)
        refused = self._refusal(request, body)
        if refused is not None:
            return refused
        try:
            bolt_request = to_async_bolt_request(request, body)
        except Exception:  # bolt parses untrusted JSON and form data here: any failure is a malformed body
            return JSONResponse({"error": "malformed request"}, status_code=400)
        if not _routable(bolt_request.body):
            return JSONResponse({"error": "malformed request"}, status_code=400)
        if bolt_request.body.get("command") == COMMAND and "ssl_check" not in bolt_request.body:
            # A signed `/access` goes straight to its listener: bolt's middleware has nothing to add to it
            # (the signature is checked above; ssl_check and url_verification are not commands), and its
            # dispatch would cost more than answering the command (bench/ack.py).
            ack = AsyncAck()
            await self.interactions.on_command(ack, bolt_request.body)
            return to_starlette_response(ack.response or BoltResponse(status=200, body=""))
        return to_starlette_response(await self.app.async_dispatch(bolt_request))

    def _refusal(self, request: Request, body: bytes) -> Response | None:
        """The answer to a request that must not run (logged in one line), or None to run it."""
        client = request.client.host if request.client else "an unknown address"
        problem = "no signing secret" if self.signing_secret is None else why_unsigned(
            self.signing_secret, body, request.headers, time.time())
        if problem is not None:
            logger.warning("refused a Slack request from %s: %s", client, problem)
            return JSONResponse({"error": "invalid request"}, status_code=401)
        seen = self.seen.check(body, request.headers)
        if seen is Seen.REPLAY:
            logger.warning("refused a replayed Slack request from %s (its signature was accepted before)",
                           client)
            return JSONResponse({"error": "replayed request"}, status_code=401)
        if seen is Seen.RETRY:
            logger.info("Slack retried a request already handled; answered without running it again")
            return Response(status_code=200)
        return None

    async def start(self) -> None:
        """Checks the bot token (and opens the Socket Mode connection); `SlackStartError` names what to fix."""
        answer = self._signed_in_as = await self._auth_test()
        logger.info("Slack: signed in to %s as %s", answer.get("team"), answer.get("user"))
        if self.app_token is not None:
            self._socket = await self._connect_socket(self.app_token)

    async def _authorize(self) -> AuthorizeResult:
        """Who the bot is, from the auth.test `start` made (asked again only if bolt routes before that)."""
        if self._signed_in_as is None:
            self._signed_in_as = (await self.client.auth_test()).data  # type: ignore[assignment]
        answer = {key: value for key, value in (self._signed_in_as or {}).items() if isinstance(value, str)}
        return AuthorizeResult(enterprise_id=answer.get("enterprise_id"), team_id=answer.get("team_id"),
                               bot_id=answer.get("bot_id"), bot_user_id=answer.get("user_id"),
                               bot_token=self.client.token)

    async def why_not_ready(self) -> str | None:
        if self._signed_in_as is None:
            return "not signed in to Slack (auth.test has not passed)"
        if self._socket is not None and not await self._socket.client.is_connected():
            return "the Socket Mode connection is down; reconnecting"
        return None

    async def _auth_test(self) -> Mapping[str, object]:
        try:
            return (await self.client.auth_test()).data  # type: ignore[return-value]
        except SlackApiError as err:
            error = _error_code(err)
            if error in _TOKEN_ERRORS:
                raise SlackStartError(
                    f"slack.bot_token: Slack refused the token ({error}); copy the Bot User OAuth Token "
                    "(xoxb-…) from the app's OAuth & Permissions page, and reinstall the app if it was "
                    "revoked"
                ) from None
            raise SlackStartError(f"slack: auth.test failed ({error or err})") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise SlackStartError(f"slack.api_url: cannot reach {self.client.base_url}: {err}") from None

    async def _connect_socket(self, app_token: str) -> AsyncSocketModeHandler:
        handler = AsyncSocketModeHandler(self.app, app_token, web_client=self.client)
        try:
            # Asked here rather than inside connect(), which retries a refused token forever.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            await asyncio.wait_for(handler.connect_async(), SOCKET_CONNECT_TIMEOUT)
        except SlackApiError as err:
            await handler.close_async()
            raise SlackStartError(
                f"slack.app_token: Slack refused the app-level token ({_error_code(err) or err}); create one "
                "with the connections:write scope under Basic Information > App-Level Tokens, and turn on "
                "Socket Mode for the app"
            ) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            await handler.close_async()
            reason = str(err) or "timed out"
            raise SlackStartError(f"slack: cannot open the Socket Mode connection: {reason}") from None
        return handler

    async def stop(self) -> None:
        """Stops taking new work, then finishes answers already promised ("Working on it…")."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        await self.delivery.drain()


def build(settings: Settings, ctx: Context, *, client: AsyncWebClient | None = None,
          ack_budget: float = ACK_BUDGET, timer: Timer = REAL_TIME) -> SlackAdapter:
    """The adapter for `settings.slack`; `client` replaces the Web API client built from `slack.api_url`.
    `timer` keeps the retries' waits (of the Web API client built here, and of answers after the ack)."""
    slack = settings.slack
    if slack is None:
        raise ValueError("slack: not configured")
    if client is None:
        client = AsyncWebClient(token=slack.bot_token.get_secret_value(), base_url=slack.api_url,
                                retry_handlers=retry_handlers(timer))
    return SlackAdapter(
        ctx=ctx,
        client=client,
        signing_secret=slack.signing_secret.get_secret_value() if slack.signing_secret else None,
        app_token=slack.app_token.get_secret_value() if slack.app_token else None,
        match_email=settings.users.match_email,
        ack_budget=ack_budget,
        timer=timer,
    )


# What bolt's middleware reads from every body. `to_step` (deprecated workflow steps) is looked up, so a
# bolt without it (and so without the middleware that reads it) does not turn every request into a 400.
_PAYLOAD_READERS: tuple[Callable[[Any], object], ...] = tuple(
    read for read in (payload_utils.to_options, payload_utils.to_shortcut, payload_utils.to_action,
                      payload_utils.to_view, payload_utils.to_command, payload_utils.to_event,
                      payload_utils.to_message, getattr(payload_utils, "to_step", None))
    if read is not None
)


def _routable(body: Mapping[str, Any]) -> bool:
    """Whether bolt can route this payload. Bolt reads what Slack always sends (`event` and `view` as
    objects, `actions` as a list of objects with an `action_id`, `view.callback_id`, …) without checking,
    and answers a signed body that differs with a 500 and a logged traceback; so it is checked here."""
    if not all(isinstance(body.get(key, {}), Mapping) for key in ("event", "view")):
        return False
    actions = body.get("actions", [])
    if not isinstance(actions, list) or not all(isinstance(action, Mapping) for action in actions):
        return False
    view, event = body.get("view") or {}, body.get("event") or {}
    names = [body.get(key) for key in ("type", "action_id", "callback_id", "block_id")]
    names += [view.get("callback_id"), event.get("type")]
    names += [action.get(key) for action in actions for key in ("action_id", "block_id")]
    if not all(name is None or isinstance(name, str) for name in names):
        return False  # bolt matches (and words its warnings) on these as strings
    try:
        for read in _PAYLOAD_READERS:
            read(body)
    except (LookupError, TypeError, AttributeError):
        return False
    return not payload_utils.is_block_actions(body) or "action_id" in actions[0]  # type: ignore[arg-type]


def _error_code(err: SlackApiError) -> str:
    return str(err.response.get("error", "")) if err.response is not None else ""
