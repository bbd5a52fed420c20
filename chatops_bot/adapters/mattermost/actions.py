"""Approve / Deny / Extend clicks: verify the bot's MAC, then run the click as what it stands for.

A click becomes `approve <id>` or `deny <id>` through `commands.dispatch`, so it gets exactly the checks
typing gets (who may review, own request, already decided). Every click answers with `ephemeral_text`
only, never an `update`: the watcher sees Teleport's new state and patches every card once, the clicked
one included. An `update` would write that card a second time, replace its message (erasing a DM's
text) and drop its `from_bot` prop (app/integration_action.go `DoPostActionWithCookie` keeps only
`model.PostActionRetainPropKeys`).
Extend opens the request dialog (with the click's trigger ID) pre-filled with the request's roles and
reason; only submitting that dialog creates anything, so the click itself never changes Teleport.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from chatops_bot.adapters.base import run_command
from chatops_bot.adapters.mattermost import signing, web
from chatops_bot.adapters.mattermost.dialogs import RequestDialog
from chatops_bot.adapters.mattermost.render import Renderer
from chatops_bot.adapters.mattermost.trigger import Triggers
from commands import messages
from commands.context import Context
from commands.errors import CommandError
from commands.model import ChatUser
from commands.reply import Action, Invocation

logger = logging.getLogger(__name__)

Actor = Callable[[str, str], Awaitable[ChatUser]]


class ActionHandler:
    def __init__(self, *, ctx: Context, renderer: Renderer, secret: bytes, actor: Actor,
                 dialog: RequestDialog, triggers: Triggers) -> None:  # fmt: skip
        self.ctx, self.renderer, self.secret, self.actor, self.dialog = ctx, renderer, secret, actor, dialog
        self.triggers = triggers

    async def click(self, request: Request) -> Response:
        body = await web.read_body(request)
        payload = web.json_object(body) if body is not None else None
        if payload is None:
            return PlainTextResponse("expected a JSON object", 400)
        context = payload.get("context")
        verified = signing.verify_action(self.secret, context)
        user_id = web.text_of(payload.get("user_id"))
        if verified is None or not user_id:
            # Mattermost never sends a context the bot did not write: this did not come from a real click.
            logger.warning("refused a click whose context the bot did not sign (user %r)", user_id[:64])
            return PlainTextResponse("forbidden", 403)
        trigger_id = web.text_of(payload.get("trigger_id"))
        refusal = await self.triggers.refusal(trigger_id, user_id, "click")
        if refusal is not None:
            return JSONResponse(self.renderer.action_response(refusal))
        actor = await self.actor(user_id, web.text_of(payload.get("user_name")))
        channel = web.text_of(payload.get("channel_id"))
        if verified.action == Action.EXTEND.value:
            invocation = Invocation("mattermost", actor, "request", channel)
            return await self._extend(invocation, verified.request_id, trigger_id)
        invocation = Invocation(
            platform="mattermost",
            actor=actor,
            text=f"{verified.action} {verified.request_id}",
            channel=channel,
        )
        reply = await run_command(invocation, self.ctx)
        return JSONResponse(self.renderer.action_response(reply))

    async def _extend(self, invocation: Invocation, request_id: str, trigger_id: str) -> Response:
        """Open the request dialog for the same roles, the reason saying what it extends."""
        try:
            original = await self.ctx.backend.get_request(request_id)
            roles, reason = original.roles, original.reason
        except CommandError as err:
            # The dialog still opens; the person picks the roles again.
            logger.warning("extending %s without its roles: %s", request_id, err.message)
            roles, reason = (), ""
        prefilled = messages.extension_reason(request_id, reason)
        reply = await self.dialog.open(invocation, trigger_id, initial_roles=roles, initial_reason=prefilled)
        if reply is None:
            return JSONResponse({})  # the dialog is the answer: no update, no ephemeral text
        return JSONResponse(self.renderer.action_response(reply))
