"""`/access request`: ask Teleport for elevated access on behalf of the chat user.

Before anything is created: a second pending request for the same roles is refused with the first one's
ID, the request gates are asked (a Jira ticket that must be In Progress; a gate may put the ticket key in
the reason), and the reviewers named with `--reviewers` are checked (each a Teleport user, not the
requester, and allowed to review these roles). A dry run shows what Teleport would create; the checks run
against it.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from commands import messages
from commands.context import Context
from commands.errors import BackendError, BadParameter, NotFound, PermissionRefused, UnknownUserError, UsageError
from commands.grammar import RequestCommand
from commands.model import AccessRequest, RequestState
from commands.ports import Proposal
from commands.reply import Invocation, Reply
from commands.text import REASON_LIMIT, safe_text

# Teleport measures durations from its own clock; allow for the round trip before calling it capped.
CAP_TOLERANCE = timedelta(minutes=1)


async def run(command: RequestCommand, invocation: Invocation, ctx: Context) -> Reply:
    user = await ctx.teleport_user(invocation)
    await _refuse_duplicate(command, user, ctx)
    command, notes = await _pass_gates(command, user, invocation, ctx)
    if command.duration is not None or command.reviewers:
        preview = await _create(command, user, ctx, dry_run=True)
        if command.duration is not None:
            _check_duration(command, preview)
        if command.reviewers:
            await _check_reviewers(command, preview, ctx)
    request = await _create(command, user, ctx)
    now = ctx.clock.now()
    card = messages.card(request, now=now, web_url=ctx.web_url(request.id), tally=await ctx.tally(request),
                         tz=invocation.actor.tz, details=await ctx.card_details(request))
    told = " ".join([messages.created(request), *(safe_text(n, limit=REASON_LIMIT) for n in notes)])
    return Reply(text=told, cards=(card,))


async def _pass_gates(command: RequestCommand, user: str, invocation: Invocation,
                      ctx: Context) -> tuple[RequestCommand, list[str]]:
    """The command as the gates pass it (their reason), and what they say; a gate refuses by raising."""
    if command.ticket and not ctx.gates:
        raise UsageError(messages.no_ticket_checks(command.ticket))
    notes: list[str] = []
    for gate in ctx.gates:
        proposal = Proposal(user=user, roles=command.roles, reason=command.reason, ticket=command.ticket,
                            email=invocation.actor.email)
        result = await gate.check(proposal)
        command = dataclasses.replace(command, reason=result.reason)
        if result.note:
            notes.append(result.note)
    return command, notes


async def _create(command: RequestCommand, user: str, ctx: Context, *, dry_run: bool = False) -> AccessRequest:
    """The request created (or, with `dry_run`, previewed), Teleport's refusals put in the person's words.
    A dry run sends a stand-in reason when none was given: the real create says if one is required."""
    try:
        return await ctx.backend.create_request(
            user=user,
            roles=command.roles,
            reason=command.reason or ("dry run" if dry_run else ""),
            max_duration=command.duration,
            suggested_reviewers=command.reviewers,
            dry_run=dry_run,
        )
    except NotFound as err:
        if f'user "{user}"' in err.detail:  # linked to a Teleport user that is not there
            raise UnknownUserError(messages.no_teleport_user(user)) from None
        raise
    except BadParameter as err:
        if not command.reason and "reason" in err.detail:
            raise UsageError(messages.reason_required(command.roles)) from None
        if "can not request role" in err.detail:
            raise PermissionRefused(await _not_requestable(command, user, ctx)) from None
        raise


async def _refuse_duplicate(command: RequestCommand, user: str, ctx: Context) -> None:
    """The same person asking again for the same roles while the first request waits: point to it."""
    wanted = set(command.roles)
    for pending in await ctx.backend.list_requests(user=user, state=RequestState.PENDING):
        if pending.user == user and pending.state is RequestState.PENDING and set(pending.roles) == wanted:
            raise UsageError(messages.already_asked(pending))


async def _not_requestable(command: RequestCommand, user: str, ctx: Context) -> str:
    """Which of the roles this person may not request, the nearest they may, and all they may."""
    try:
        allowed = (await ctx.backend.get_capabilities(user)).requestable_roles
    except BackendError:
        allowed = ()
    refused = [role for role in command.roles if role not in allowed]
    return messages.not_requestable(refused or list(command.roles), allowed)


def _check_duration(command: RequestCommand, preview: AccessRequest) -> None:
    """Teleport silently caps a duration at the roles' max_duration; we say so instead, before creating."""
    assert command.duration is not None
    allowed = preview.requested_duration
    if allowed is not None and allowed + CAP_TOLERANCE < command.duration:
        raise UsageError(messages.duration_capped(command.duration, allowed, command.roles))


async def _check_reviewers(command: RequestCommand, preview: AccessRequest, ctx: Context) -> None:
    """Each reviewer named must be a Teleport user other than the requester who may review the request as
    Teleport would create it (the reviewer policy, with their roles); anything undecidable refuses."""
    problems: list[str] = []
    for reviewer in command.reviewers:
        if reviewer == preview.user:
            problems.append(messages.reviewer_is_requester(reviewer))
            continue
        try:
            user, roles = await ctx.user_and_roles(reviewer)
        except (NotFound, UnknownUserError):
            problems.append(messages.reviewer_unknown(reviewer))
            continue
        except PermissionRefused:
            problems.append(messages.reviewer_unchecked(reviewer))
            continue
        if not ctx.review_decision(user, roles, preview).allowed:
            problems.append(messages.reviewer_may_not(reviewer, preview.roles))
    if problems:
        raise UsageError(messages.reviewers_refused(problems))
