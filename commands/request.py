"""`/access request`: ask Teleport for elevated access on behalf of the chat user."""

from __future__ import annotations

from datetime import timedelta

from commands import messages
from commands.context import Context
from commands.errors import BackendError, BadParameter, PermissionRefused, UsageError
from commands.grammar import RequestCommand
from commands.reply import Invocation, Reply

# Teleport measures durations from its own clock; allow for the round trip before calling it capped.
CAP_TOLERANCE = timedelta(minutes=1)


async def run(command: RequestCommand, invocation: Invocation, ctx: Context) -> Reply:
    user = await ctx.teleport_user(invocation)
    if command.duration is not None:
        await _check_duration(command, user, ctx)
    try:
        request = await ctx.backend.create_request(
            user=user,
            roles=command.roles,
            reason=command.reason,
            max_duration=command.duration,
            suggested_reviewers=command.reviewers,
        )
    except BadParameter as err:
        if not command.reason and "reason" in err.detail:
            raise UsageError(messages.reason_required(command.roles)) from None
        if "can not request role" in err.detail:
            raise PermissionRefused(await _not_requestable(command, user, ctx)) from None
        raise
    now = ctx.clock.now()
    card = messages.card(request, now=now, web_url=ctx.web_url(request.id), tally=await ctx.tally(request))
    return Reply(text=messages.created(request), cards=(card,))


async def _not_requestable(command: RequestCommand, user: str, ctx: Context) -> str:
    """Which of the roles this person may not request, the nearest they may, and all they may."""
    try:
        allowed = (await ctx.backend.get_capabilities(user)).requestable_roles
    except BackendError:
        allowed = ()
    refused = [role for role in command.roles if role not in allowed]
    return messages.not_requestable(refused or list(command.roles), allowed)


async def _check_duration(command: RequestCommand, user: str, ctx: Context) -> None:
    """Teleport silently caps a duration at the roles' max_duration; we say so instead, before creating."""
    assert command.duration is not None
    try:
        preview = await ctx.backend.create_request(
            user=user,
            roles=command.roles,
            reason=command.reason or "dry run",
            max_duration=command.duration,
            suggested_reviewers=command.reviewers,
            dry_run=True,
        )
    except BadParameter:
        return  # the real create reports a bad parameter, and the reply says what to do
    allowed = preview.requested_duration
    if allowed is not None and allowed + CAP_TOLERANCE < command.duration:
        raise UsageError(messages.duration_capped(command.duration, allowed, command.roles))
