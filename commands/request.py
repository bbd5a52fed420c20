"""`/access request`: ask Teleport for elevated access on behalf of the chat user."""

from __future__ import annotations

from datetime import timedelta

from commands import messages
from commands.context import Context
from commands.errors import BadParameter, NotImplementedByServer, UsageError
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
        raise
    now = ctx.clock.now()
    text = messages.created(request)
    granted = request.requested_duration
    if command.duration and granted is not None and granted + CAP_TOLERANCE < command.duration:
        # Only when Teleport could not be asked beforehand (no dry run): say so rather than let it pass.
        text += " " + messages.duration_was_capped(command.duration, granted, command.roles)
    card = messages.card(request, now=now, web_url=ctx.web_url(request.id), tally=await ctx.tally(request))
    return Reply(text=text, cards=(card,))


async def _check_duration(command: RequestCommand, user: str, ctx: Context) -> None:
    """Teleport silently caps a duration at the roles' max_duration; we say so instead, before creating.

    A server older than CreateAccessRequestV2 has no dry run: then the reply says what was granted.
    """
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
    except (BadParameter, NotImplementedByServer):
        return  # the real create reports a bad parameter with Teleport's words
    allowed = preview.requested_duration
    if allowed is not None and allowed + CAP_TOLERANCE < command.duration:
        raise UsageError(messages.duration_capped(command.duration, allowed, command.roles))
