"""The Mattermost adapter: the slash command, button and dialog endpoints, and the bot's REST session.

Mattermost calls three URLs: `/mattermost/command` (the form it posts for `/access`, with the command
token), `/mattermost/actions` (button clicks, JSON) and `/mattermost/dialogs` (dialog submissions,
JSON). Each is verified before anything runs, turned into an `Invocation`, and answered with JSON.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from chatops_bot.adapters.base import run_command
from chatops_bot.adapters.mattermost import preflight, signing, web
from chatops_bot.adapters.mattermost.actions import ActionHandler
from chatops_bot.adapters.mattermost.dialogs import RequestDialog
from chatops_bot.adapters.mattermost.outbound import MattermostOutbound, RetryPolicy
from chatops_bot.adapters.mattermost.render import Renderer
from chatops_bot.adapters.mattermost.trigger import Triggers
from chatops_bot.adapters.profiles import Profiles
from chatops_bot.config import MattermostSettings, Settings
from chatops_bot.timer import REAL_TIME, Timer
from commands.context import Context
from commands.model import ChatUser
from commands.reply import Invocation

logger = logging.getLogger(__name__)

COMMAND_PATH = "/mattermost/command"
ACTIONS_PATH = "/mattermost/actions"
DIALOGS_PATH = "/mattermost/dialogs"
_USER_ID = re.compile(r"[A-Za-z0-9]{26}")  # model.IsValidId
STOP_GRACE = 10.0  # seconds `stop()` lets background deliveries finish before cancelling them


class MattermostAdapter:
    name = "mattermost"

    def __init__(
        self,
        settings: MattermostSettings,
        ctx: Context,
        *,
        outbound: MattermostOutbound,
        match_email: bool = False,
        recipients: Sequence[str] = (),
    ) -> None:
        self.ctx = ctx
        self.outbound = outbound
        self.match_email = match_email
        self.recipients = tuple(recipients)  # every routed recipient, checked at start-up
        self._tokens = tuple(token.get_secret_value() for token in settings.command_tokens)
        secret = settings.action_secret.get_secret_value().encode()
        public = settings.public_url.rstrip("/")
        self.render = Renderer(actions_url=public + ACTIONS_PATH, action_secret=secret)
        self.dialog = RequestDialog(
            ctx=ctx, outbound=outbound, renderer=self.render, secret=secret, url=public + DIALOGS_PATH,
            actor=self.actor, spawn=self.spawn,
        )
        self.triggers = Triggers(outbound)
        self.profiles = Profiles(outbound.profile, platform="mattermost")
        self.actions = ActionHandler(ctx=ctx, renderer=self.render, secret=secret, actor=self.actor,
                                     dialog=self.dialog, triggers=self.triggers)  # fmt: skip
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> Sequence[BaseRoute]:
        # POST only: Starlette answers anything else with 405, so a `G` command leaks no token to logs.
        return [
            Route(COMMAND_PATH, self.command, methods=["POST"]),
            Route(ACTIONS_PATH, self.actions.click, methods=["POST"]),
            Route(DIALOGS_PATH, self.dialog.submit, methods=["POST"]),
        ]

    async def start(self) -> None:
        await self.outbound.login()
        await self.triggers.load()
        # Routes that cannot work (a channel the bot is not in, e-mail hidden by the server) are said
        # once here and skipped, rather than failing, and being retried, on every card.
        for finding in await preflight.check(self.outbound, self.recipients, match_email=self.match_email):
            (logger.error if finding.fatal else logger.warning)("%s", finding.text)

    async def why_not_ready(self) -> str | None:
        if not self.outbound.bot_user_id:
            return "not logged in to Mattermost (GET users/me not passed)"
        return self.triggers.problem

    async def stop(self) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE)
            for task in pending:
                logger.error("stopping with a Mattermost delivery still retrying; it is cancelled")
                task.cancel()
        await self.outbound.close()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` after the response is sent, keeping a reference so it is neither collected nor lost."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def command(self, request: Request) -> Response:
        body = await web.read_body(request)
        fields = web.form_fields(body) if body is not None else None
        if fields is None:
            return PlainTextResponse("expected a form", 400)
        if not signing.command_token_ok(
            self._tokens, web.first(fields, "token"), request.headers.get("authorization", "")
        ):
            logger.warning("refused a slash command with a wrong or missing token")
            return PlainTextResponse("unauthorized", 401)
        user_id = web.first(fields, "user_id") or ""
        if not user_id:
            return PlainTextResponse("user_id is missing", 400)
        trigger_id = web.first(fields, "trigger_id") or ""
        refusal = await self.triggers.refusal(trigger_id, user_id, "slash command")
        if refusal is not None:
            return JSONResponse(self.render.command_response(refusal))
        text = web.first(fields, "text") or ""
        actor = await self.actor(user_id, web.first(fields, "user_name") or "")
        invocation = Invocation("mattermost", actor, text, web.first(fields, "channel_id") or "")
        if text.strip().lower() == "request" and trigger_id:
            reply = await self.dialog.open(invocation, trigger_id)
            if reply is None:
                return JSONResponse({"response_type": "ephemeral", "text": "", "skip_slack_parsing": True})
        else:
            reply = await run_command(invocation, self.ctx)
        return JSONResponse(self.render.command_response(reply))

    async def actor(self, user_id: str, user_name: str) -> ChatUser:
        """Who typed or clicked. Their time zone, the e-mail (for `users.match_email`) and a missing user name
        come from `GET users/{id}` (remembered a while); if Mattermost cannot say, the directory still has
        the trait to go by, and times are shown in UTC."""
        if not _USER_ID.fullmatch(user_id):
            # Not an ID Mattermost issues (a forged body): nothing to look up, and no path to put in a URL.
            return ChatUser("mattermost", user_id, user_name)
        profile = await self.profiles.get(user_id)
        email = profile.email if self.match_email else ""
        return ChatUser("mattermost", user_id, user_name or profile.name, email, profile.tz)


def build(settings: Settings, ctx: Context, *, retry: RetryPolicy = RetryPolicy(),
          timer: Timer = REAL_TIME) -> MattermostAdapter:
    """The adapter for `settings.mattermost`, sharing the command context with every other platform;
    `timer` keeps its retries' waits and budgets."""
    if settings.mattermost is None:
        raise ValueError("mattermost: the section is missing, so there is no Mattermost adapter to build")
    outbound = MattermostOutbound.from_settings(settings.mattermost, retry=retry, timer=timer)
    match_email = settings.users.match_email
    routed = settings.routing.role_to_recipients.mattermost
    recipients = [name for names in routed.values() for name in names]
    return MattermostAdapter(settings.mattermost, ctx, outbound=outbound, match_email=match_email,
                             recipients=recipients)
