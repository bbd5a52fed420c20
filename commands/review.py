"""`/access approve` and `/access deny`: our own reviewer check first (fail closed), then the review.

How the decision reaches Teleport depends on `review.mode` (ARCHITECTURE.md, "Reviews"):
`on_behalf` submits with the reviewer as Author (Teleport checks them again), `as_bot` submits as the
bot (one review per request), `resolve` sets the state directly with the reviewer as Delegator.
"""

from __future__ import annotations

from commands import messages, policy
from commands.context import Context
from commands.errors import PermissionRefused, UsageError
from commands.grammar import ReviewCommand
from commands.model import AccessRequest, RequestState, Review
from commands.reply import Invocation, Reply


async def run(command: ReviewCommand, invocation: Invocation, ctx: Context) -> Reply:
    name = await ctx.teleport_user(invocation)
    user, roles = await ctx.user_and_roles(name)
    request = await ctx.find_request(
        command.request_id, lambda r: r.user == name or policy.review_decision(user, roles, r).allowed
    )
    if request.user == name:
        raise PermissionRefused(messages.own_request())
    # Who may review comes first: someone who may not must learn nothing more about the request.
    decision = policy.review_decision(user, roles, request)
    if not decision.allowed:
        raise PermissionRefused(messages.refused(decision.reason))
    if request.state is not RequestState.PENDING:
        raise UsageError(messages.already_resolved(request, ctx.clock.now()))
    if any(r.author == name for r in request.reviews):
        raise UsageError(messages.already_reviewed(request.id))
    web_only = sorted(ctx.config.web_only_roles.intersection(request.roles))
    if web_only:
        raise PermissionRefused(messages.web_only(web_only, ctx.web_url(request.id)))
    if command.approve is False and ctx.config.deny_reason_required and not command.reason:
        raise UsageError(messages.deny_reason_required())

    state = RequestState.APPROVED if command.approve else RequestState.DENIED
    mode = ctx.config.review_mode
    if mode == "resolve":
        await ctx.backend.set_state(
            request.id,
            state=state,
            reason=command.reason,
            delegator=f"{invocation.platform}:{name}",
        )
        return Reply(text=messages.reviewed(request.id, command.approve, state))
    if mode == "as_bot":
        # The bot's one review can only count once, so it cannot decide a request needing more.
        needed = request.approvals_needed if command.approve else _denials_needed(request)
        if needed > 1:
            raise PermissionRefused(messages.as_bot_needs_one(request, needed, command.approve))
        review = Review(author="", proposed_state=state, reason=messages.as_bot_reason(command.reason, name))
    else:
        review = Review(author=name, proposed_state=state, reason=command.reason, on_behalf=True)
    updated = await ctx.backend.submit_review(request.id, review)
    return Reply(text=messages.reviewed(request.id, command.approve, updated.state))


def _denials_needed(request: AccessRequest) -> int:
    """Teleport denies at the first threshold whose denials reach its (non-zero) Deny: the smallest."""
    return min((t.deny for t in request.thresholds if t.deny), default=1)
