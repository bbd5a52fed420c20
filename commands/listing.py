"""`/access list`: pending requests I may review, my own, active elevations, or everything I can see."""

from __future__ import annotations

import math
from datetime import datetime

from commands import messages
from commands.context import Context
from commands.errors import UsageError
from commands.grammar import ListCommand
from commands.model import AccessRequest, RequestState, User
from commands.reply import Invocation, Reply

PAGE_SIZE = 10


async def run(command: ListCommand, invocation: Invocation, ctx: Context) -> Reply:
    name = await ctx.teleport_user(invocation)
    user, roles = await ctx.user_and_roles(name, fresh=False)
    reviewer = ctx.reviews_anything(user, roles)
    scope = command.scope or ("pending" if reviewer else "mine")
    now = ctx.clock.now()
    # As in Teleport: your own requests, and those you may review (asked last: the policy costs the most).
    listed = [
        r for r in await ctx.backend.list_requests()
        if _selected(scope, r, user, now)
        and (r.user == user.name or ctx.review_decision(user, roles, r).allowed)
    ]
    if not listed:
        return Reply(text=messages.nothing_listed(scope))
    pages = math.ceil(len(listed) / PAGE_SIZE)
    if command.page > pages:
        raise UsageError(messages.page_out_of_range(command.page, pages))
    # Long enough to tell apart everything this person can see, so each ID shown finds its request.
    chunk = listed[(command.page - 1) * PAGE_SIZE : command.page * PAGE_SIZE]
    lines = [messages.list_header(scope, command.page, pages, len(listed))]
    lines += [messages.list_line(r, now) for r in chunk]
    footer = messages.list_footer(scope, command.page, pages)
    if footer:
        lines.append(footer)
    return Reply(text="\n".join(lines))


def _selected(scope: str, request: AccessRequest, user: User, now: datetime) -> bool:
    """Whether a request this person can see belongs in `scope`."""
    mine = request.user == user.name
    if scope == "mine":
        return mine
    if scope == "pending":
        reviewed = any(r.author == user.name for r in request.reviews)
        return request.state is RequestState.PENDING and not mine and not reviewed
    if scope == "active":
        expires = request.access_expires
        return request.state is RequestState.APPROVED and expires is not None and expires > now
    return True
