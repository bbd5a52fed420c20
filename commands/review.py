"""`/access approve` and `/access deny`: our own reviewer check first (fail closed), then the review.

How the decision reaches Teleport depends on `review.mode` (ARCHITECTURE.md, "Reviews"):
`on_behalf` submits with the reviewer as Author (Teleport checks them again), `as_bot` submits as the
bot (one review per request), `resolve` sets the state directly with the reviewer as Delegator. In
`resolve` with `review.rules` (Community Edition), the rules say who may decide, approvals are counted per
person in plugin data (`commands.approvals`), and the approval that reaches the count sets the state,
naming every approver; an allowed reviewer's denial denies at once.
"""

from __future__ import annotations

from commands import approvals, messages, rules
from commands.approvals import Approval
from commands.context import Context
from commands.errors import NoSuchRequest, PermissionRefused, UsageError
from commands.grammar import ReviewCommand
from commands.matchers import PolicyError
from commands.model import AccessRequest, RequestState, Review
from commands.reply import Invocation, Reply


async def run(command: ReviewCommand, invocation: Invocation, ctx: Context) -> Reply:
    name = await ctx.teleport_user(invocation)
    user, roles = await ctx.user_and_roles(name)
    try:
        request = await ctx.find_request(
            command.request_id, lambda r: r.user == name or ctx.review_decision(user, roles, r).allowed
        )
    except NoSuchRequest:
        # Someone who may review nothing is told so, the same for every ID, whether or not it exists.
        if not ctx.reviews_anything(user, roles):
            raise PermissionRefused(messages.reviews_nothing(ctx.config.uses_rules)) from None
        raise
    if request.user == name:
        raise PermissionRefused(messages.own_request())
    # Who may review comes first: someone who may not must learn nothing more about the request.
    decision = ctx.review_decision(user, roles, request)
    if not decision.allowed:
        raise PermissionRefused(messages.refused(decision.reason))
    if request.state is not RequestState.PENDING:
        raise UsageError(messages.already_resolved(request, ctx.clock.now(), invocation.actor.tz, name))
    if any(r.author == name for r in request.reviews):
        raise UsageError(messages.already_reviewed(request.id))
    web_only = sorted(ctx.config.web_only_roles.intersection(request.roles))
    if web_only:
        raise PermissionRefused(messages.web_only(web_only, ctx.web_url(request.id)))
    if command.approve is False and ctx.config.deny_reason_required and not command.reason:
        raise UsageError(messages.deny_reason_required())

    state = RequestState.APPROVED if command.approve else RequestState.DENIED
    mode = ctx.config.review_mode
    if ctx.config.uses_rules:
        return await _by_rules(command, invocation.platform, name, request, ctx, invocation.actor.tz)
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


async def _by_rules(
    command: ReviewCommand, platform: str, name: str, request: AccessRequest, ctx: Context, tz: str
) -> Reply:
    """`review.rules`: a denial resolves at once; an approval is counted, and the one reaching the count
    resolves, naming every approver in Teleport's reason and Delegator."""
    if not command.approve:
        reason = messages.rules_denied_reason(name, platform, command.reason)
        await ctx.backend.set_state(request.id, state=RequestState.DENIED, reason=reason,
                                    delegator=f"{platform}:{name}")
        return Reply(text=messages.reviewed(request.id, False, RequestState.DENIED))
    try:
        needed = rules.approvals_needed(ctx.config.review_rules, request)
    except PolicyError as err:  # decided moments ago; only a changed role name could get here
        raise PermissionRefused(messages.refused(f"{err}; refusing")) from None
    try:
        tally, added = await approvals.record(ctx.backend, request.id, Approval(name, platform, command.reason), needed)
    except approvals.LedgerError:
        raise PermissionRefused(messages.approvals_unreadable()) from None
    except approvals.Contended:
        raise UsageError(messages.approvals_contended()) from None
    if not added and tally.count < needed:
        raise UsageError(messages.already_approved(request.id, tally))
    if tally.count < needed:
        if added and ctx.changed is not None:
            ctx.changed(request.id)
        return Reply(text=messages.approval_counted(request.id, tally))
    if not added:
        # Counted before, but the state was never set (Teleport failed then): finish, unless already done.
        current = await ctx.backend.get_request(request.id)
        if current.state is not RequestState.PENDING:
            raise UsageError(messages.already_resolved(current, ctx.clock.now(), tz, name))
    await ctx.backend.set_state(
        request.id,
        state=RequestState.APPROVED,
        reason=messages.rules_approved_reason(tally.approvals),
        delegator=approvals.delegator(tally.approvals),
    )
    return Reply(text=messages.reviewed(request.id, True, RequestState.APPROVED))
