"""`/access request` with no arguments: an interactive dialog, and its submission run as the typed command.

The form becomes the very line a person could type (`request ROLES --for=… --reviewers=… --reason=…`,
each value quoted with `shlex.quote`, which the grammar's POSIX lexer reads back unchanged), parsed by
`commands.grammar` and run by `commands.request`, so the dialog and the typed command cannot drift apart.
Mattermost does not sign submissions: the dialog's `state` carries an HMAC over the user and the form,
and a submission whose state the bot did not issue to that very user is refused with 403.
Mattermost cannot answer a submission with a message, so the outcome reaches the requester as a DM.
"""

from __future__ import annotations

import logging
import shlex
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
from mattermostautodriver.exceptions import InvalidMattermostError, MattermostError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from chatops_bot.adapters.mattermost import signing, web
from chatops_bot.adapters.mattermost.outbound import MattermostOutbound
from chatops_bot.adapters.mattermost.render import Renderer, markdown, plain
from commands import messages, request
from commands.context import Context
from commands.errors import BackendError, CommandError, UsageError
from commands.grammar import RequestCommand, parse
from commands.model import Capabilities, ChatUser
from commands.reply import Invocation, Reply
from commands.text import truncate

logger = logging.getLogger(__name__)

CALLBACK_ID = "request"
STATE_MAX_AGE = 3600.0  # seconds a form may stay open before its submission is refused
ROLES, DURATION, REVIEWERS, REASON = "roles", "duration", "reviewers", "reason"
HELP_TEXT_LIMIT = 150  # DialogElementHelpTextMaxLength
REASON_MAX_LENGTH = 3000  # DialogElementTextareaMaxLength; the grammar checks Teleport's 4096-byte limit
_USAGE_SUFFIX = "\nUsage: "

Actor = Callable[[str, str], Awaitable[ChatUser]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]


def request_dialog(capabilities: Capabilities, state: str) -> dict[str, Any]:
    """The dialog for what this person may request, as `actions/dialogs/open` takes it."""
    roles = capabilities.requestable_roles
    elements: list[dict[str, Any]] = [
        {"display_name": messages.request_form_roles(), "name": ROLES, "type": "select", "multiselect": True,
         "options": [{"text": messages.name(role), "value": role} for role in roles],
         "default": roles[0] if len(roles) == 1 else ""},
        {"display_name": messages.request_form_duration(), "name": DURATION, "type": "text", "optional": True,
         "placeholder": "2h", "help_text": _help(messages.request_form_duration_hint())},
        {"display_name": messages.request_form_reviewers(), "name": REVIEWERS, "type": "text",
         "optional": True,
         "help_text": _help(messages.request_form_reviewers_hint(capabilities.suggested_reviewers))},
        {"display_name": messages.request_form_reason(), "name": REASON, "type": "textarea",
         "optional": not capabilities.require_reason, "max_length": REASON_MAX_LENGTH},
    ]  # fmt: skip
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


def request_line(submission: object) -> tuple[RequestCommand | None, str, dict[str, str]]:
    """The command a submission stands for and its `request …` line, or errors keyed by element name."""
    values = submission if isinstance(submission, dict) else {}
    roles = _roles(values.get(ROLES))
    if not roles:
        return None, "", {ROLES: messages.request_form_no_roles()}
    base = "request " + shlex.quote(",".join(roles))
    reviewers = ",".join(name for name in _text(values.get(REVIEWERS)).replace(",", " ").split() if name)
    options = [
        (DURATION, "--for", _text(values.get(DURATION)).strip()),
        (REVIEWERS, "--reviewers", reviewers),
        (REASON, "--reason", _text(values.get(REASON)).strip()),
    ]
    errors: dict[str, str] = {}
    line = base
    for element, option, value in options:
        if value:
            word = f" {option}={shlex.quote(value)}"
            try:
                parse(base + word)  # each field on its own, so every error lands under its own field
            except UsageError as err:
                errors[element] = _without_usage(err.message)
            line += word
    if errors:
        return None, "", errors
    try:
        command = parse(line)
    except UsageError as err:
        return None, "", {ROLES: _without_usage(err.message)}
    assert isinstance(command, RequestCommand)
    return command, line, {}


class RequestDialog:
    """Opens the request form for a slash command and handles its submissions."""

    def __init__(self, *, ctx: Context, outbound: MattermostOutbound, renderer: Renderer, secret: bytes,
                 url: str, actor: Actor, spawn: Spawn, max_age: float = STATE_MAX_AGE) -> None:  # fmt: skip
        self.ctx, self.outbound, self.renderer = ctx, outbound, renderer
        self.secret, self.url, self.actor, self.spawn, self.max_age = secret, url, actor, spawn, max_age

    async def open(self, invocation: Invocation, trigger_id: str) -> Reply | None:
        """Open the form; None when it opened (the command then answers nothing), else why not."""
        try:
            user = await self.ctx.teleport_user(invocation)
            capabilities = await self.ctx.backend.get_capabilities(user)
        except CommandError as err:
            return _refusal(err)
        except Exception:
            return _apology(invocation, "opening the request form")
        if not capabilities.requestable_roles:
            return Reply(text=messages.nothing_requestable(), ok=False)
        state = signing.dialog_state(self.secret, invocation.actor.id, CALLBACK_ID, int(time.time()))
        try:
            await self.outbound.open_dialog(trigger_id, self.url, request_dialog(capabilities, state))
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
        issued = signing.dialog_state_issued(self.secret, payload.get("state"), user_id, callback_id)
        if issued is None or callback_id != CALLBACK_ID or not user_id:
            logger.warning("refused a dialog submission the bot did not issue (user %r)", user_id[:64])
            return PlainTextResponse("forbidden", 403)
        if payload.get("cancelled") is True:
            return JSONResponse({})
        if not 0 <= time.time() - issued <= self.max_age:
            return JSONResponse({"error": messages.request_form_expired()})
        command, line, errors = request_line(payload.get("submission"))
        if command is None:
            return JSONResponse({"errors": {name: plain(text) for name, text in errors.items()}})
        actor = await self.actor(user_id, "")
        channel = web.text_of(payload.get("channel_id"))
        reply = await self._run(command, Invocation("mattermost", actor, line, channel))
        if not reply.ok:
            if reply.text == messages.reason_required(command.roles):
                return JSONResponse({"errors": {REASON: plain(reply.text)}})
            return JSONResponse({"error": plain(reply.text)})
        # In the background: the DM is retried for a while, and Mattermost waits for this answer.
        self.spawn(self._deliver(user_id, reply))
        return JSONResponse({})

    async def _run(self, command: RequestCommand, invocation: Invocation) -> Reply:
        """`commands.request.run`, with the error handling `commands.dispatch` gives a typed command."""
        try:
            return await request.run(command, invocation, self.ctx)
        except CommandError as err:
            return _refusal(err)
        except Exception:
            return _apology(invocation, "a submitted request form")

    async def _deliver(self, user_id: str, reply: Reply) -> None:
        post = self.renderer.reply_post(reply)
        try:
            await self.outbound.direct_message(user_id, post["message"], props=post.get("props"))
        except Exception:
            logger.exception("could not DM %s the outcome of their request form", user_id)


def _refusal(err: CommandError) -> Reply:
    if isinstance(err, BackendError):
        return Reply(text=messages.backend_error(err.message), ok=False)
    return Reply(text=err.message, ok=False)


def _apology(invocation: Invocation, what: str) -> Reply:
    """A bug: logged with its traceback and an id; the person sees only the apology with that id."""
    correlation_id = uuid.uuid4().hex[:12]
    logger.exception(
        "%s failed (error id %s)",
        what,
        correlation_id,
        extra={"correlation_id": correlation_id, "platform": "mattermost", "chat_user": invocation.actor.id},
    )
    return Reply(text=messages.apology(correlation_id), ok=False)


def _roles(value: object) -> list[str]:
    """A multiselect arrives as a list on current servers and as one string on those without it."""
    items = value if isinstance(value, list) else [value]
    roles = (role.strip() for item in items if isinstance(item, str) for role in item.split(","))
    return [role for role in roles if role]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _help(text: str) -> str:
    return truncate(text, HELP_TEXT_LIMIT)


def _without_usage(message: str) -> str:
    """A grammar refusal without its closing usage line, which is about typing, not the form."""
    return message.rsplit(_USAGE_SUFFIX, 1)[0]
