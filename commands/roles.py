"""`/access roles`: what this person may request, for how long at most, whether a reason is required, and
who would be asked to review it.

The roles come from Teleport's access capabilities; the rest from a dry-run `CreateAccessRequestV2` per
role, so each figure is what Teleport would grant this person now (the roles' `max_duration` and
`max_session_ttl`, capped by the identity that creates the request), not our reading of the roles.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from commands import messages
from commands.context import Context
from commands.errors import BadParameter, NotFound, UnknownUserError
from commands.reply import Invocation, Reply

# What a dry run sends as the reason once Teleport said one is required; a dry run creates nothing.
DRY_RUN_REASON = "dry run"


async def run(invocation: Invocation, ctx: Context) -> Reply:
    user = await ctx.teleport_user(invocation)
    try:
        capabilities = await ctx.backend.get_capabilities(user)
    except NotFound as err:
        if f'user "{user}"' not in err.detail:
            raise
        raise UnknownUserError(messages.no_teleport_user(user)) from None
    roles = sorted(capabilities.requestable_roles)
    if not roles:
        return Reply(text=messages.nothing_requestable())
    previews = await asyncio.gather(*(_preview(user, role, ctx) for role in roles))
    lines = [messages.roles_header(len(roles))]
    lines += [messages.role_line(role, *preview) for role, preview in zip(roles, previews)]
    lines.append(messages.roles_footer())
    return Reply(text="\n".join(lines))


async def _preview(user: str, role: str, ctx: Context) -> tuple[timedelta | None, bool | None, tuple[str, ...]]:
    """(longest access, whether a reason is required, reviewers asked) for `role`, from dry runs: first
    without a reason, then, if Teleport wants one, with one. None where Teleport would not say."""
    required: bool | None = False
    for reason in ("", DRY_RUN_REASON):
        try:
            preview = await ctx.backend.create_request(user=user, roles=(role,), reason=reason, dry_run=True)
        except BadParameter as err:
            if reason or "reason" not in err.detail:
                return None, required if reason else None, ()
            required = True
            continue
        return preview.requested_duration, required, preview.suggested_reviewers
    return None, required, ()
