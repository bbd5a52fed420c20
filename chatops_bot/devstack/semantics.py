"""How reviews move an access request in the devstack Teleport: thresholds, their filters, the resulting state.

A mirror of `lib/services/access_request.go` (thresholdCollector, ApplyAccessReview,
collectReviewThresholdIndexes, calculateReviewBasedResolution); the rules are in teleport-wire.md §3.2.
Errors are the `commands.errors` Teleport errors the stand-in sends back as gRPC statuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from commands import policy, where
from commands.errors import AccessDenied, AlreadyExists, BadParameter, NotImplementedByServer
from commands.model import AccessRequest, RequestState, Review, Role, Threshold, User

RoleThresholdMapping = Mapping[str, tuple[tuple[int, ...], ...]]


def compute_thresholds(
    requester: User, requester_roles: Sequence[Role], requested: Sequence[str]
) -> tuple[tuple[Threshold, ...], RoleThresholdMapping]:
    """The request's Thresholds and RoleThresholdMapping, as Teleport stores them on create.

    Each requested role gets one index set per requester role whose allow.request matches it (all sets
    must pass); a set lists that role's thresholds (any one may pass), approve=1/deny=1 if it has none.
    Identical thresholds are stored once.
    """
    try:
        settings = policy.request_settings(requester, requester_roles, requested)
    except policy.PolicyError as err:
        raise BadParameter(str(err)) from None
    for role in requested:
        if role not in settings.role_threshold_mapping:
            raise BadParameter(f'role "{role}" matches no threshold sets')
    return settings.thresholds, settings.role_threshold_mapping


def threshold_indexes(request: AccessRequest, review: Review, reviewer: User) -> tuple[int, ...]:
    """The thresholds this review counts toward: those whose filter is empty or true for it."""
    context = where.threshold_filter_context(reviewer, review, request)
    indexes = []
    for index, threshold in enumerate(request.thresholds):
        if threshold.filter:
            try:
                if not where.evaluate(threshold.filter, context):
                    continue
            except where.WhereError as err:
                raise BadParameter(f"invalid threshold filter {threshold.filter!r}: {err}") from None
        indexes.append(index)
    return tuple(indexes)


def _role_approved(
    sets: Sequence[Sequence[int]], thresholds: Sequence[Threshold], approvals: list[int]
) -> bool:
    return all(any(thresholds[i].approve and approvals[i] >= thresholds[i].approve for i in s) for s in sets)


def resolution(request: AccessRequest) -> tuple[RequestState, str] | None:
    """The state the reviews so far resolve the request to, with the deciding review's reason, or None.

    Reviews count in order. The first time any threshold's denials reach its (non-zero) Deny, the
    request is denied; it is approved once every role has, in every one of its sets, a threshold whose
    approvals reached its (non-zero) Approve. Either way the review that got there decides.
    """
    thresholds, reviews = request.thresholds, request.reviews
    if not thresholds or not reviews:
        return None
    approvals, denials = [0] * len(thresholds), [0] * len(thresholds)
    denied = approved = False
    for review in reviews:
        if review.proposed_state is RequestState.PROMOTED:
            # "Promote skips the threshold check": the promotion decides, like a denial without counts.
            return RequestState.PROMOTED, review.reason
        for index in review.threshold_indexes:
            if index >= len(thresholds):
                raise BadParameter(f"threshold index {index} out of range")
            if review.proposed_state is RequestState.APPROVED:
                approvals[index] += 1
            elif review.proposed_state is RequestState.DENIED:
                denials[index] += 1
            else:
                raise BadParameter(
                    f"cannot calculate state-transition, unexpected proposal: {review.proposed_state.name}"
                )
        if any(t.deny and denials[i] >= t.deny for i, t in enumerate(thresholds)):
            denied = True
            break
        # Approval counts only grow, so "every role approved now" is Teleport's incremental check.
        if all(
            _role_approved(sets, thresholds, approvals) for sets in request.role_threshold_mapping.values()
        ):
            approved = True
            break
    last = review
    if last.proposed_state is RequestState.APPROVED and approved:
        return RequestState.APPROVED, last.reason
    if last.proposed_state is RequestState.DENIED and denied:
        return RequestState.DENIED, last.reason
    return None


def _check_compatible(request: AccessRequest, review: Review) -> None:
    """Teleport's checkReviewCompat (lib/services/access_request.go)."""
    if not review.proposed_state.resolved:
        raise BadParameter(f"invalid state proposal: {review.proposed_state.name} (expected approval/denial)")
    if not request.thresholds:
        raise BadParameter("request is uninitialized or does not support reviews")
    if any(existing.author == review.author for existing in request.reviews):
        raise AlreadyExists(f'user "{review.author}" has already reviewed this request')
    mapping = request.role_threshold_mapping
    if review.roles and len(set(review.roles)) != len(mapping):
        raise NotImplementedByServer(
            "role subselection is not yet supported in reviews, try omitting role list"
        )
    for role in review.roles:
        if role not in mapping:
            raise BadParameter(f'role "{role}" is not a member of this request')


def apply_review(
    request: AccessRequest,
    review: Review,
    reviewer: User,
    reviewer_roles: Sequence[Role],
    *,
    now: datetime | None = None,
) -> AccessRequest:
    """Check and append `review`, count it toward its thresholds and apply any resulting state change.

    In Teleport's order (DynamicAccessService.ApplyAccessReview in lib/services/local/dynamic_access.go,
    then ApplyAccessReview in lib/services/access_request.go): may the reviewer review it at all, is the
    review compatible (a second review by the same author is AlreadyExists), which thresholds it counts
    toward, and only then is a request that is no longer pending refused, as AccessDenied.
    """
    decision = policy.review_decision(reviewer, reviewer_roles, request)
    if not decision.allowed:
        raise AccessDenied(f'user "{reviewer.name}" cannot review this request: {decision.reason}')
    if review.author and review.author != reviewer.name:
        raise BadParameter(f'mismatched review author (expected "{reviewer.name}", got "{review.author}")')
    review = replace(review, author=reviewer.name, roles=tuple(sorted(set(review.roles))))
    _check_compatible(request, review)
    review = replace(
        review,
        threshold_indexes=threshold_indexes(request, review, reviewer),
        created=review.created or now or datetime.now(UTC),
    )
    if request.state.resolved:
        raise AccessDenied(f"the access request has been already {request.state.name.lower()}")
    updated = replace(request, reviews=(*request.reviews, review))
    outcome = resolution(updated)
    if outcome is None:
        return updated
    state, reason = outcome
    # Once resolved, the request object lives until the access it grants expires.
    return replace(updated, state=state, resolve_reason=reason, resource_expiry=updated.access_expires)
