"""`/access cancel`: the requester withdraws their own pending request; nobody else may.

Teleport has no withdrawal of its own: DeleteAccessRequest needs `access_request: delete`, with no
exception for a user's own pending request (lib/auth/auth_with_roles.go, ServerWithRoles.DeleteAccessRequest).
The bot holds that grant (`chatops-bot teleport-role`), so this command is the gate: only the requester,
only while pending. The watcher then sees the deletion and closes every card and reviewer DM.
"""

from __future__ import annotations

from commands import messages
from commands.context import Context
from commands.errors import NotFound, PermissionRefused, UsageError
from commands.grammar import CancelCommand
from commands.model import RequestState
from commands.reply import Invocation, Reply


async def run(command: CancelCommand, invocation: Invocation, ctx: Context) -> Reply:
    name = await ctx.teleport_user(invocation)
    user, roles = await ctx.user_and_roles(name)
    request = await ctx.find_request(
        command.request_id, lambda r: r.user == name or ctx.review_decision(user, roles, r).allowed
    )
    if request.user != name:
        raise PermissionRefused(messages.not_yours_to_withdraw(request))
    if request.state is not RequestState.PENDING:
        raise UsageError(messages.not_withdrawable(request, ctx.clock.now()))
    try:
        await ctx.backend.delete_request(request.id)
    except NotFound:
        raise UsageError(messages.not_found(command.request_id)) from None
    return Reply(text=messages.withdrawn(request))
