"""The one entry point: an `Invocation` in, a `Reply` out, whatever platform it came from.

Errors written for people (`CommandError`) become the reply; anything else is a bug: it is logged with
its traceback and a correlation id, and the person sees only a short apology with that id.
"""

from __future__ import annotations

import logging
import uuid

from commands import cancel, help, listing, messages, request, review, roles, show
from commands.context import Context
from commands.errors import BackendError, CommandError, Unavailable, UsageError
from commands.grammar import (
    CancelCommand,
    Command,
    HelpCommand,
    ListCommand,
    RequestCommand,
    ReviewCommand,
    RolesCommand,
    ShowCommand,
    parse,
)
from commands.reply import Invocation, Reply

logger = logging.getLogger(__name__)


async def dispatch(invocation: Invocation, ctx: Context) -> Reply:
    """Parse and run what a person typed or clicked."""
    try:
        command = parse(invocation.text)
    except CommandError as err:
        return error_reply(err, invocation)
    return await run(command, invocation, ctx)


async def run(command: Command, invocation: Invocation, ctx: Context) -> Reply:
    """Run an already parsed command (a submitted form, say) with the same error handling as typing."""
    try:
        match command:
            case HelpCommand():
                return await help.run(command, ctx)
            case RequestCommand():
                return await request.run(command, invocation, ctx)
            case ListCommand():
                return await listing.run(command, invocation, ctx)
            case ShowCommand():
                return await show.run(command, invocation, ctx)
            case ReviewCommand():
                return await review.run(command, invocation, ctx)
            case CancelCommand():
                return await cancel.run(command, invocation, ctx)
            case RolesCommand():
                return await roles.run(invocation, ctx)
            case _:
                raise AssertionError(f"no handler for {command!r}")
    except Exception as err:
        return error_reply(err, invocation)


def error_reply(err: Exception, invocation: Invocation, *, doing: str = "command") -> Reply:
    """What the person is told: a `CommandError`'s own words, or, for a bug, an apology with an error id."""
    if isinstance(err, BackendError):
        # Teleport refusing or failing is the operator's business too (an expired identity, a missing
        # permission): the detail goes to the log, the person gets the short words.
        logger.warning(
            "Teleport: %s",
            err.detail or err.message,
            extra={"platform": invocation.platform, "chat_user": invocation.actor.id},
        )
        # Built around Teleport's own words, which echo what the person typed (a role named `@channel`).
        outcome = "unavailable" if isinstance(err, Unavailable) else "refused"
        return Reply(text=messages.backend_error(err.message), ok=False, outcome=outcome)
    if isinstance(err, CommandError):
        return Reply(text=err.message, ok=False, outcome="usage" if isinstance(err, UsageError) else "refused")
    correlation_id = uuid.uuid4().hex[:12]
    # The id goes in the message as well as in `extra`: it is what the person reports, and a plain text
    # log format shows no extras.
    logger.error(
        "%s failed (error id %s)",
        doing,
        correlation_id,
        exc_info=err,
        extra={
            "correlation_id": correlation_id,
            "platform": invocation.platform,
            "chat_user": invocation.actor.id,
        },
    )
    return Reply(text=messages.apology(correlation_id), ok=False, outcome="error")
