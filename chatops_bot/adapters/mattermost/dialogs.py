"""`/access request` with no arguments: an interactive dialog, and its submission run as the typed command.

The form becomes the very line a person could type (`commands.forms`) and runs through `commands.dispatch`,
so the dialog and the typed command cannot drift apart.
Mattermost does not sign submissions: the dialog's `state` carries an HMAC over the user, the form and
the opening (a nonce derived from the trigger ID it was opened with), and a submission whose state the
bot did not issue to that very user is refused with 403. A state creates one request: once its
submission succeeded, the same state is answered "already submitted" until it expires. The record of
used states is this process's own, so with several replicas behind a load balancer a replayed state
could create at most one request per replica, and only within `STATE_MAX_AGE`, and only as the user it
was issued to (who could as well type the command again).
Mattermost cannot answer a submission with a message, so the outcome reaches the requester as a DM.
The same form, pre-filled with a request's roles and reason, is what an Extend button opens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import httpx
from mattermostautodriver.exceptions import InvalidMattermostError, MattermostError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from chatops_bot.adapters.base import run_command
from chatops_bot.adapters.mattermost import signing, web
from chatops_bot.adapters.mattermost.outbound import MattermostOutbound, transient
from chatops_bot.adapters.mattermost.render import Renderer, markdown, plain
from commands import messages
from commands.context import Context
from commands.dispatch import error_reply
from commands.forms import DURATION, REASON, REVIEWERS, ROLES, TICKET, FormResult, read_request_form
from commands.model import Capabilities, ChatUser
from commands.reply import Invocation, Reply
from commands.text import truncate

logger = logging.getLogger(__name__)

CALLBACK_ID = "request"
STATE_MAX_AGE = 3600.0  # seconds a form may stay open before its submission is refused
HELP_TEXT_LIMIT = 150  # DialogElementHelpTextMaxLength
DM_PATIENCE = 600.0  # seconds a request form's outcome keeps being offered to a failing Mattermost
REASON_MAX_LENGTH = 3000  # DialogElementTextareaMaxLength; the grammar checks Teleport's 4096-byte limit

Actor = Callable[[str, str], Awaitable[ChatUser]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]


def request_dialog(
    capabilities: Capabilities, state: str, *, initial_roles: Sequence[str] = (), initial_reason: str = "",
    ticket: bool = False,
) -> dict[str, Any]:
    """The dialog for what this person may request, as `actions/dialogs/open` takes it, optionally
    pre-filled (Extend): the given roles that are still requestable, and the reason. With `ticket` (a
    request gate is configured), a Ticket field too."""
    roles = capabilities.requestable_roles
    chosen = [role for role in roles if role in initial_roles]
    reason: dict[str, Any] = {
        "display_name": messages.request_form_reason(), "name": REASON, "type": "textarea",
        "optional": not capabilities.require_reason, "max_length": REASON_MAX_LENGTH,
    }  # fmt: skip
    if initial_reason:
        # An input's default, not a post: it notifies nobody, and is sent back as typed (or edited).
        reason["default"] = truncate(initial_reason, REASON_MAX_LENGTH)
    elements: list[dict[str, Any]] = [
        {"display_name": messages.request_form_roles(), "name": ROLES, "type": "select", "multiselect": True,
         "options": [{"text": messages.name(role), "value": role} for role in roles],
         # A multiselect's defaults are one comma-separated string.
         "default": ",".join(chosen) if chosen else roles[0] if len(roles) == 1 else ""},
        {"display_name": messages.request_form_duration(), "name": DURATION, "type": "text", "optional": True,
         "placeholder": "2h", "help_text": _help(messages.request_form_duration_hint())},
        {"display_name": messages.request_form_reviewers(), "name": REVIEWERS, "type": "text",
         "optional": True,
         "help_text": _help(messages.request_form_reviewers_hint(capabilities.suggested_reviewers))},
        reason,
    ]  # fmt: skip
    if ticket:
        elements.insert(-1, {"display_name": messages.request_form_ticket(), "name": TICKET, "type": "text",
                             "optional": True, "placeholder": "OPS-123",
                             "help_text": _help(messages.request_form_ticket_hint())})
    dialog: dict[str, Any] = {
        "callback_id": CALLBACK_ID,
        "title": messages.request_form_title(),
        "elements": elements,
        "submit_label": messages.request_form_submit(),
        "notify_on_cancel": False,
        "state": state,
    }
    if capabilities.request_prompt:
        dialog["introduction_text"] = markdown(messages.request_form_prompt(capabilities.request_prompt))
    return dialog


def request_line(submission: object) -> FormResult:
    """The command a submission stands for and its `request …` line, or errors keyed by element name."""
    values = submission if isinstance(submission, dict) else {}
    return read_request_form(
        _roles(values.get(ROLES)),
        duration=_text(values.get(DURATION)),
        reviewers=_text(values.get(REVIEWERS)),
        reason=_text(values.get(REASON)),
        ticket=_text(values.get(TICKET)),
    )


class RequestDialog:
    """Opens the request form for a slash command and handles its submissions."""

    def __init__(self, *, ctx: Context, outbound: MattermostOutbound, renderer: Renderer, secret: bytes,
                 url: str, actor: Actor, spawn: Spawn, max_age: float = STATE_MAX_AGE) -> None:  # fmt: skip
        self.ctx, self.outbound, self.renderer = ctx, outbound, renderer
        self.secret, self.url, self.actor, self.spawn, self.max_age = secret, url, actor, spawn, max_age
        self._used: dict[str, float] = {}  # nonce -> when it may be forgotten (its state has expired)

    async def open(
        self, invocation: Invocation, trigger_id: str, *, initial_roles: Sequence[str] = (),
        initial_reason: str = "",
    ) -> Reply | None:
        """Open the form (pre-filled for Extend); None when it opened, else why not."""
        try:
            user = await self.ctx.teleport_user(invocation)
            capabilities = await self.ctx.backend.get_capabilities(user)
        except Exception as err:
            return error_reply(err, invocation, doing="opening the request form")
        if not capabilities.requestable_roles:
            return Reply(text=messages.nothing_requestable(), ok=False)
        state = signing.dialog_state(self.secret, invocation.actor.id, CALLBACK_ID, int(time.time()),
                                     trigger_id=trigger_id)
        dialog = request_dialog(
            capabilities, state, initial_roles=initial_roles, initial_reason=initial_reason,
            ticket=bool(self.ctx.gates),
        )
        try:
            await self.outbound.open_dialog(trigger_id, self.url, dialog)
        except (MattermostError, InvalidMattermostError, httpx.HTTPError) as err:
            logger.warning("could not open the request dialog for %s: %r", invocation.actor.id, err)
            return Reply(text=messages.request_form_not_opened(), ok=False)
        return None

    async def submit(self, http_request: Request) -> Response:
        body = await web.read_body(http_request)
        payload = web.json_object(body) if body is not None else None
        if payload is None:
            return PlainTextResponse("expected a JSON object", 400)
        user_id, callback_id = web.text_of(payload.get("user_id")), web.text_of(payload.get("callback_id"))
        verified = signing.verify_dialog_state(self.secret, payload.get("state"), user_id, callback_id)
        if verified is None or callback_id != CALLBACK_ID or not user_id:
            logger.warning("refused a dialog submission the bot did not issue (user %r)", user_id[:64])
            return PlainTextResponse("forbidden", 403)
        if payload.get("cancelled") is True:
            return JSONResponse({})
        now = time.time()
        if not 0 <= now - verified.issued <= self.max_age:
            return JSONResponse({"error": messages.request_form_expired()})
        self._used = {nonce: until for nonce, until in self._used.items() if until > now}
        if verified.nonce in self._used:
            logger.warning("refused a second submission of one request form (user %s)", user_id)
            return JSONResponse({"error": messages.request_form_used()})
        # Taken before the request is made, so two submissions racing each other create one request;
        # given back when nothing was created, since Mattermost keeps the form open for corrections.
        self._used[verified.nonce] = verified.issued + self.max_age + 1
        response, created = await self._run(payload, user_id)
        if not created:
            self._used.pop(verified.nonce, None)
        return response

    async def _run(self, payload: dict[str, Any], user_id: str) -> tuple[Response, bool]:
        form = request_line(payload.get("submission"))
        command = form.command
        if command is None:
            return JSONResponse({"errors": {name: plain(text) for name, text in form.errors.items()}}), False
        actor = await self.actor(user_id, "")
        channel = web.text_of(payload.get("channel_id"))
        reply = await run_command(Invocation("mattermost", actor, form.line, channel), self.ctx, command)
        if not reply.ok:
            if reply.text == messages.reason_required(command.roles):
                return JSONResponse({"errors": {REASON: plain(reply.text)}}), False
            if command.ticket and command.ticket in reply.text:  # a request gate's refusal of the ticket
                return JSONResponse({"errors": {TICKET: plain(reply.text)}}), False
            return JSONResponse({"error": plain(reply.text)}), False
        # In the background: the DM is retried for a while, and Mattermost waits for this answer.
        self.spawn(self._deliver(user_id, reply))
        return JSONResponse({}), True

    async def _deliver(self, user_id: str, reply: Reply) -> None:
        """The outcome as a DM. Each try is retried within its post's budget; a Mattermost that stays down
        longer gets more tries until `DM_PATIENCE` runs out: an outage delays the answer, not drops it."""
        post = self.renderer.reply_post(reply)
        timer = self.outbound.timer
        deadline = timer.monotonic() + DM_PATIENCE
        while True:
            try:
                await self.outbound.direct_message(user_id, post["message"], props=post.get("props"))
                return
            except Exception as err:
                if transient(err) is None or timer.monotonic() > deadline:
                    logger.error("could not DM %s the outcome of their request form: %r", user_id, err)
                    return
                logger.warning("Mattermost still fails (%r); DMing %s the outcome again soon", err, user_id)
                await timer.sleep(self.outbound.retry.max_delay)


def _roles(value: object) -> list[str]:
    """A multiselect arrives as a list on current servers and as one string on those without it."""
    items = value if isinstance(value, list) else [value]
    roles = (role.strip() for item in items if isinstance(item, str) for role in item.split(","))
    return [role for role in roles if role]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _help(text: str) -> str:
    return truncate(text, HELP_TEXT_LIMIT)


