"""Slash commands, button clicks and form submissions from Slack, each run as an `Invocation` by `commands`.

Buttons are commands: Approve on a card runs `approve ID` for the person who clicked, with the same checks
as typing it. The ID a click carries must be the one of the card it was clicked on (the message the
payload carries holds the card); a click that names another request is refused and runs nothing. A
refusal goes to that person only; a review that went through replaces the clicked card with the request
as Teleport now holds it. The `/access request` form and the deny-reason form become the
`/access` line they stand for (`forms`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from chatops_bot.adapters.base import run_command
from chatops_bot.adapters.profiles import Profile, Profiles
from chatops_bot.adapters.slack import forms, render
from chatops_bot.adapters.slack.delivery import Delivery
from chatops_bot.adapters.slack.forms import Metadata
from commands import messages
from commands.context import Context
from commands.dispatch import error_reply
from commands.errors import CommandError
from commands.model import ChatUser
from commands.reply import Action, Invocation, Reply

logger = logging.getLogger(__name__)

_USER_ID = re.compile(r"[A-Z0-9]{2,32}")  # the shape of every user ID Slack issues (U…, W…)

COMMAND = "/access"
PLATFORM = "slack"
_REQUEST_ID = re.compile(r"[0-9a-f][0-9a-f-]{5,35}")

Ack = Callable[..., Awaitable[Any]]
Body = Mapping[str, Any]


class Interactions:
    def __init__(self, *, ctx: Context, client: AsyncWebClient, delivery: Delivery,
                 match_email: bool, profiles: Profiles) -> None:
        self.ctx = ctx
        self.client = client
        self.delivery = delivery
        self.match_email = match_email
        self.profiles = profiles

    def register(self, app: AsyncApp) -> None:
        app.command(COMMAND)(self.on_command)
        app.action(render.ACTION_IDS[Action.APPROVE])(self.on_review_click)
        app.action(render.ACTION_IDS[Action.DENY])(self.on_review_click)
        app.action(render.ACTION_IDS[Action.EXTEND])(self.on_extend_click)
        app.view(render.REQUEST_FORM)(self.on_request_form)
        app.view(render.DENY_FORM)(self.on_deny_form)

    # -- `/access …` --------------------------------------------------------------------------------

    async def on_command(self, ack: Ack, body: Body) -> None:
        user_id, user_name = _field(body, "user_id"), _field(body, "user_name")
        channel, text, response_url = _field(body, "channel_id"), _field(body, "text"), _field(body, "response_url")
        if not user_id:
            await ack()
            return
        if text.lower().split() == ["request"]:
            await ack()  # the form is the answer; opening it may wait on Teleport and on rate limits
            self.delivery.later(self._open_request_form(
                user_id, user_name, channel, _field(body, "trigger_id"), Metadata(channel, response_url)))
            return
        task = await self.delivery.within_budget(self._run(user_id, user_name, channel, text))
        if task.done():
            await ack(**_payload(task.result()))
            return
        await ack(text=messages.working_on_it(), response_type="ephemeral")
        self.delivery.later(self._answer_later(task, response_url))

    async def _run(self, user_id: str, user_name: str, channel: str, text: str) -> Reply:
        actor = await self._actor(user_id, user_name)
        invocation = Invocation(platform=PLATFORM, actor=actor, text=text, channel=channel)
        return await run_command(invocation, self.ctx)

    async def _actor(self, user_id: str, user_name: str) -> ChatUser:
        # Only an ID Slack issues is looked up: a forged body's `user` is never sent on to Slack.
        profile = await self.profiles.get(user_id) if _USER_ID.fullmatch(user_id) else Profile()
        return ChatUser(PLATFORM, user_id, user_name, profile.email if self.match_email else "", profile.tz)

    async def _answer_later(self, task: asyncio.Task[Reply], response_url: str) -> None:
        await self.delivery.post(response_url, _payload(await task))

    # -- Approve / Deny / Extend --------------------------------------------------------------------

    async def on_review_click(self, ack: Ack, body: Body) -> None:
        await ack()
        click = self._checked(_Click.read(body))
        if click is None:
            return
        if click.action_id == render.ACTION_IDS[Action.DENY] and self.ctx.config.deny_reason_required:
            self.delivery.later(self._open_deny_form(click))
            return
        verb = "approve" if click.action_id == render.ACTION_IDS[Action.APPROVE] else "deny"
        self.delivery.later(self._review(click, f"{verb} {click.request_id}"))

    async def _review(self, click: _Click, line: str) -> None:
        reply = await self._run(click.user_id, click.user_name, click.channel, line)
        await self._after_review(reply, click.request_id, click.response_url)

    async def _after_review(self, reply: Reply, request_id: str, response_url: str) -> None:
        """A refusal to the reviewer alone; a review that went through also redraws the card from Teleport."""
        if reply.ok:
            card = await self.ctx.current_card(request_id)
            if card is not None:
                redrawn = {**render.card_message(card), "replace_original": True}
                await self.delivery.post(response_url, redrawn)
        await self.delivery.post(response_url, {**_payload(reply), "replace_original": False})

    async def on_extend_click(self, ack: Ack, body: Body) -> None:
        await ack()
        click = self._checked(_Click.read(body))
        if click is not None:
            self.delivery.later(self._extend(click))

    def _checked(self, click: _Click | None) -> _Click | None:
        """`click` when it names the request of the card it was clicked on; else the clicker is told."""
        if click is None or click.on_its_card:
            return click
        logger.warning("refused a click by %s whose request ID is not the one of the card it is on",
                       click.user_id[:40], extra={"platform": PLATFORM, "request_id": click.request_id})
        self.delivery.later(self._tell(click.response_url, messages.click_not_for_this_card()))
        return None

    async def _extend(self, click: _Click) -> None:
        try:
            original = await self.ctx.backend.get_request(click.request_id)
            roles, reason = original.roles, original.reason
        except CommandError:
            roles, reason = (), ""  # the form still opens; the person picks the roles again
        await self._open_request_form(click.user_id, click.user_name, click.channel, click.trigger_id,
                                      Metadata(click.channel, click.response_url), initial_roles=roles,
                                      initial_reason=messages.extension_reason(click.request_id, reason))

    # -- forms --------------------------------------------------------------------------------------

    async def _open_request_form(self, user_id: str, user_name: str, channel: str, trigger_id: str,
                                 metadata: Metadata, *, initial_roles: Sequence[str] = (),
                                 initial_reason: str = "") -> None:
        invocation = Invocation(PLATFORM, ChatUser(PLATFORM, user_id, user_name), "request", channel)
        try:
            invocation = replace(invocation, actor=await self._actor(user_id, user_name))
            capabilities = await self.ctx.backend.get_capabilities(await self.ctx.teleport_user(invocation))
        except Exception as err:
            told = error_reply(err, invocation, doing="preparing a Slack form")
            await self._tell(metadata.response_url, told.text)
            return
        if not capabilities.requestable_roles:
            await self._tell(metadata.response_url, messages.nothing_requestable())
            return
        view = render.modal_for_request(capabilities, private_metadata=metadata.dump(),
                                        initial_roles=initial_roles, initial_reason=initial_reason,
                                        ticket=bool(self.ctx.gates))
        await self._open_view(trigger_id, view, metadata.response_url)

    async def _open_deny_form(self, click: _Click) -> None:
        metadata = Metadata(click.channel, click.response_url, click.request_id)
        view = render.deny_reason_modal(click.request_id, private_metadata=metadata.dump())
        await self._open_view(click.trigger_id, view, click.response_url)

    async def _open_view(self, trigger_id: str, view: dict[str, Any], response_url: str) -> None:
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError) as err:
            # Most often the trigger expired (3 s): the person is told to run it again.
            logger.warning("views.open failed: %s", err)
            await self._tell(response_url, messages.form_not_opened())

    async def on_request_form(self, ack: Ack, body: Body, view: Body) -> None:
        metadata = Metadata.load(view.get("private_metadata"))
        submission = forms.request_submission(_values(view))
        user_id, user_name = _field(body, "user", "id"), _field(body, "user", "username")
        if not user_id:
            await ack()
            return
        if submission.errors or submission.command is None:
            await ack(response_action="errors", errors=dict(submission.errors or {}))
            return
        line = submission.line
        task = await self.delivery.within_budget(self._run(user_id, user_name, metadata.channel, line))
        if not task.done():
            await ack()
            self.delivery.later(self._answer_later(task, metadata.response_url))
            return
        reply = task.result()
        if not reply.ok:
            block = forms.refusal_block(reply.text, submission.command)
            await ack(response_action="errors", errors={block: reply.text})
            return
        await ack()
        self.delivery.later(self.delivery.post(metadata.response_url, _payload(reply)))

    async def on_deny_form(self, ack: Ack, body: Body, view: Body) -> None:
        metadata = Metadata.load(view.get("private_metadata"))
        user_id, user_name = _field(body, "user", "id"), _field(body, "user", "username")
        if not _REQUEST_ID.fullmatch(metadata.request_id) or not user_id:
            await ack()
            return
        line = forms.deny_line(metadata.request_id, _values(view))
        task = await self.delivery.within_budget(self._run(user_id, user_name, metadata.channel, line))
        if not task.done():
            await ack()
            self.delivery.later(self._after_review_later(task, metadata))
            return
        reply = task.result()
        if not reply.ok:
            await ack(response_action="errors", errors={render.REASON_BLOCK: reply.text})
            return
        await ack()
        self.delivery.later(self._after_review(reply, metadata.request_id, metadata.response_url))

    async def _after_review_later(self, task: asyncio.Task[Reply], metadata: Metadata) -> None:
        await self._after_review(await task, metadata.request_id, metadata.response_url)

    # -- helpers ------------------------------------------------------------------------------------

    async def _tell(self, response_url: str, text: str) -> None:
        told = {**_payload(Reply(text=text, ok=False)), "replace_original": False}
        await self.delivery.post(response_url, told)


class _Click:
    """A click on one of our buttons; `read` is None for anything else (a value that is not a request ID)."""

    def __init__(self, body: Body, action: Mapping[str, Any]) -> None:
        self.action_id = str(action.get("action_id") or "")
        self.request_id = str(action.get("value") or "")
        self.user_id, self.user_name = _field(body, "user", "id"), _field(body, "user", "username")
        self.channel = _field(body, "channel", "id") or _field(body, "container", "channel_id")
        self.response_url, self.trigger_id = _field(body, "response_url"), _field(body, "trigger_id")
        self.on_its_card = _on_its_card(body, action, self.request_id)

    @classmethod
    def read(cls, body: Body) -> _Click | None:
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], Mapping):
            return None
        click = cls(body, actions[0])
        if not click.user_id or not _REQUEST_ID.fullmatch(click.request_id):
            logger.warning("ignoring a click without a user or a request ID (%r)", click.request_id[:40])
            return None
        return click


def _on_its_card(body: Body, action: Mapping[str, Any], request_id: str) -> bool:
    """Whether `request_id` is the ID of the card holding the clicked button. Slack sends a copy of the
    message with a click on a channel message; of an ephemeral one it sends none, and the value is all
    there is (those cards were shown to the clicker alone)."""
    container = body.get("container")
    ephemeral = isinstance(container, Mapping) and container.get("is_ephemeral") is True
    if ephemeral and "message" not in body:
        return True
    message = body.get("message")
    blocks = message.get("blocks") if isinstance(message, Mapping) else None
    return render.card_id(blocks, action.get("block_id")) == request_id


def _payload(reply: Reply) -> dict[str, Any]:
    return {**render.message(reply), "response_type": "ephemeral" if reply.ephemeral else "in_channel"}


def _field(data: Mapping[str, Any], *path: str) -> str:
    """A string nested in a payload, or "" when any step is missing or not what Slack documents."""
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else ""


def _values(view: Body) -> Mapping[str, Any]:
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    return values if isinstance(values, Mapping) else {}


