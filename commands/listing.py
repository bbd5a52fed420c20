"""`/access list`: pending requests I may review, my own, active elevations, or everything I can see."""

from __future__ import annotations

import math

from commands import messages, policy
from commands.context import Context
from commands.errors import UsageError
from commands.grammar import ListCommand
from commands.model import AccessRequest, RequestState, Role, User
from commands.reply import Invocation, Reply

PAGE_SIZE = 10


async def run(command: ListCommand, invocation: Invocation, ctx: Context) -> Reply:
    name = await ctx.teleport_user(invocation)
    user, roles = await ctx.user_and_roles(name)
    scope = command.scope or ("pending" if _is_reviewer(roles) else "mine")
    now = ctx.clock.now()
    visible = [r for r in await ctx.backend.list_requests() if _selected(scope, r, user, roles, now)]
    if not visible:
        return Reply(text=messages.nothing_listed(scope))
    pages = math.ceil(len(visible) / PAGE_SIZE)
    if command.page > pages:
        raise UsageError(messages.page_out_of_range(command.page, pages))
    chunk = visible[(command.page - 1) * PAGE_SIZE : command.page * PAGE_SIZE]
    lines = [messages.list_header(scope, command.page, pages, len(visible))]
    lines += [messages.list_line(r, now) for r in chunk]
    footer = messages.list_footer(scope, command.page, pages)
    if footer:
        lines.append(footer)
    return Reply(text="\n".join(lines))


def _is_reviewer(roles: list[Role]) -> bool:
    return any(r.allow.review_requests is not None for r in roles)


def _selected(scope: str, request: AccessRequest, user: User, roles: list[Role], now: object) -> bool:
    mine = request.user == user.name
    if scope == "mine":
        return mine
    may_review = not mine and policy.review_decision(user, roles, request).allowed
    if scope == "pending":
        reviewed = any(r.author == user.name for r in request.reviews)
        return request.state is RequestState.PENDING and may_review and not reviewed
    if not (mine or may_review):
        return False
    if scope == "active":
        return request.state is RequestState.APPROVED and bool(request.access_expires and request.access_expires > now)  # type: ignore[operator]
    return True
