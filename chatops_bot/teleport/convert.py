"""Protobuf <-> domain conversion: the only module that reads or builds Teleport's `*_pb2` messages.

Both directions live here because the devstack stand-in serves the same messages the client reads.
Wire quirks handled once: a Go zero `Timestamp` (0001-01-01) means unset, `time.Duration` fields are
int64 nanoseconds, and traits travel as `wrappers.LabelValues`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from google.protobuf.timestamp_pb2 import Timestamp

from chatops_bot.teleport.gen import authservice_pb2, types_pb2, wrappers_pb2
from commands.model import (
    AccessRequest,
    Capabilities,
    ClaimMapping,
    ClusterInfo,
    RequestConditions,
    RequestState,
    Review,
    ReviewConditions,
    Role,
    RoleConditions,
    Rule,
    Threshold,
    Traits,
    User,
)

GO_ZERO_SECONDS = -62135596800


def time_from_proto(ts: Timestamp) -> datetime | None:
    if ts.seconds in (0, GO_ZERO_SECONDS) and ts.nanos == 0:
        return None
    return datetime.fromtimestamp(ts.seconds, UTC) + timedelta(microseconds=ts.nanos // 1000)


def time_to_proto(target: Timestamp, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value.astimezone(UTC))


def duration_from_ns(ns: int) -> timedelta | None:
    return timedelta(microseconds=ns // 1000) if ns > 0 else None


def duration_to_ns(value: timedelta | None) -> int:
    # Integer arithmetic: total_seconds() is a float and drops microseconds from long durations.
    return value // timedelta(microseconds=1) * 1000 if value else 0


def traits_from_proto(values: wrappers_pb2.LabelValues) -> Traits:
    return MappingProxyType({key: tuple(v.Values) for key, v in sorted(values.Values.items())})


def traits_to_proto(target: wrappers_pb2.LabelValues, traits: Mapping[str, tuple[str, ...]]) -> None:
    for key, values in traits.items():
        target.Values[key].Values.extend(values)


def _state(value: int) -> RequestState:
    try:
        return RequestState(value)
    except ValueError:
        return RequestState.NONE


# --- access requests -------------------------------------------------------------------------------


def review_from_proto(pb: types_pb2.AccessReview) -> Review:
    return Review(
        author=pb.Author,
        proposed_state=_state(pb.ProposedState),
        reason=pb.Reason,
        created=time_from_proto(pb.Created),
        roles=tuple(pb.Roles),
        threshold_indexes=tuple(pb.ThresholdIndexes),
        submitted_by=pb.SubmittedBy,
        on_behalf=pb.submitted_on_behalf_of_author,
    )


def review_to_proto(review: Review) -> types_pb2.AccessReview:
    pb = types_pb2.AccessReview(
        Author=review.author,
        Roles=list(review.roles),
        ProposedState=review.proposed_state.value,
        Reason=review.reason,
        ThresholdIndexes=list(review.threshold_indexes),
        SubmittedBy=review.submitted_by,
        submitted_on_behalf_of_author=review.on_behalf,
    )
    time_to_proto(pb.Created, review.created)
    return pb


def threshold_to_proto(t: Threshold) -> types_pb2.AccessReviewThreshold:
    return types_pb2.AccessReviewThreshold(Name=t.name, Filter=t.filter, Approve=t.approve, Deny=t.deny)


def threshold_from_proto(pb: types_pb2.AccessReviewThreshold) -> Threshold:
    return Threshold(name=pb.Name, filter=pb.Filter, approve=pb.Approve, deny=pb.Deny)


def _resource_name(pb: types_pb2.ResourceID) -> str:
    name = f"/{pb.ClusterName}/{pb.Kind}/{pb.Name}"
    return f"{name}/{pb.SubResourceName}" if pb.SubResourceName else name


def request_from_proto(pb: types_pb2.AccessRequestV3) -> AccessRequest:
    spec = pb.Spec
    return AccessRequest(
        id=pb.Metadata.Name,
        user=spec.User,
        roles=tuple(spec.Roles),
        state=_state(spec.State),
        created=time_from_proto(spec.Created),
        access_expires=time_from_proto(spec.Expires),
        reason=spec.RequestReason,
        resolve_reason=spec.ResolveReason,
        reviews=tuple(review_from_proto(r) for r in spec.Reviews),
        suggested_reviewers=tuple(spec.SuggestedReviewers),
        thresholds=tuple(threshold_from_proto(t) for t in spec.Thresholds),
        role_threshold_mapping=MappingProxyType(
            {
                role: tuple(tuple(s.Indexes) for s in sets.Sets)
                for role, sets in sorted(spec.RoleThresholdMapping.items())
            }
        ),
        resources=tuple(_resource_name(r) for r in spec.RequestedResourceIDs),
        max_duration=time_from_proto(spec.MaxDuration),
        session_ttl=time_from_proto(spec.SessionTTL),
        resource_expiry=time_from_proto(spec.ResourceExpiry) or time_from_proto(pb.Metadata.Expires),
        system_annotations=traits_from_proto(spec.SystemAnnotations),
    )


def request_to_proto(request: AccessRequest, *, dry_run: bool = False) -> types_pb2.AccessRequestV3:
    pb = types_pb2.AccessRequestV3(Kind="access_request", Version="v3")
    pb.Metadata.Name = request.id
    pb.Metadata.Namespace = "default"
    time_to_proto(pb.Metadata.Expires, request.resource_expiry)
    spec = pb.Spec
    spec.User = request.user
    spec.Roles.extend(request.roles)
    spec.State = request.state.value
    spec.RequestReason = request.reason
    spec.ResolveReason = request.resolve_reason
    spec.Reviews.extend(review_to_proto(r) for r in request.reviews)
    spec.SuggestedReviewers.extend(request.suggested_reviewers)
    spec.Thresholds.extend(threshold_to_proto(t) for t in request.thresholds)
    for role, sets in request.role_threshold_mapping.items():
        spec.RoleThresholdMapping[role].Sets.extend(
            types_pb2.ThresholdIndexSet(Indexes=list(s)) for s in sets
        )
    traits_to_proto(spec.SystemAnnotations, request.system_annotations)
    spec.DryRun = dry_run
    time_to_proto(spec.Created, request.created)
    time_to_proto(spec.Expires, request.access_expires)
    time_to_proto(spec.MaxDuration, request.max_duration)
    time_to_proto(spec.SessionTTL, request.session_ttl)
    time_to_proto(spec.ResourceExpiry, request.resource_expiry)
    return pb


# --- users and roles -------------------------------------------------------------------------------


def user_from_proto(pb: types_pb2.UserV2) -> User:
    return User(name=pb.Metadata.Name, roles=tuple(pb.Spec.Roles), traits=traits_from_proto(pb.Spec.Traits))


def user_to_proto(user: User) -> types_pb2.UserV2:
    pb = types_pb2.UserV2(Kind="user", Version="v2")
    pb.Metadata.Name = user.name
    pb.Metadata.Namespace = "default"
    pb.Spec.Roles.extend(user.roles)
    traits_to_proto(pb.Spec.Traits, user.traits)
    return pb


def _claims_from_proto(items: object) -> tuple[ClaimMapping, ...]:
    return tuple(ClaimMapping(claim=c.Claim, value=c.Value, roles=tuple(c.Roles)) for c in items)  # type: ignore[attr-defined]


def _claims_to_proto(claims: tuple[ClaimMapping, ...]) -> list[types_pb2.ClaimMapping]:
    return [types_pb2.ClaimMapping(Claim=c.claim, Value=c.value, Roles=list(c.roles)) for c in claims]


def _conditions_from_proto(pb: types_pb2.RoleConditions) -> RoleConditions:
    request = None
    if pb.HasField("Request"):
        r = pb.Request
        request = RequestConditions(
            roles=tuple(r.Roles),
            claims_to_roles=_claims_from_proto(r.ClaimsToRoles),
            thresholds=tuple(threshold_from_proto(t) for t in r.Thresholds),
            suggested_reviewers=tuple(r.SuggestedReviewers),
            search_as_roles=tuple(r.SearchAsRoles),
            max_duration=duration_from_ns(r.MaxDuration),
            reason_mode=r.Reason.Mode if r.HasField("Reason") else "",
            annotations=traits_from_proto(r.Annotations),
        )
    review = None
    if pb.HasField("ReviewRequests"):
        v = pb.ReviewRequests
        review = ReviewConditions(
            roles=tuple(v.Roles),
            claims_to_roles=_claims_from_proto(v.ClaimsToRoles),
            where=v.Where,
            preview_as_roles=tuple(v.PreviewAsRoles),
            submit_for_users=tuple(v.SubmitForUsers),
        )
    return RoleConditions(
        logins=tuple(pb.Logins),
        rules=tuple(Rule(tuple(r.Resources), tuple(r.Verbs), r.Where) for r in pb.Rules),
        request=request,
        review_requests=review,
        impersonate_users=tuple(pb.Impersonate.Users),
        impersonate_roles=tuple(pb.Impersonate.Roles),
    )


def _conditions_to_proto(target: types_pb2.RoleConditions, c: RoleConditions) -> None:
    target.Logins.extend(c.logins)
    target.Rules.extend(
        types_pb2.Rule(Resources=list(r.resources), Verbs=list(r.verbs), Where=r.where) for r in c.rules
    )
    if c.request is not None:
        r = c.request
        target.Request.Roles.extend(r.roles)
        target.Request.ClaimsToRoles.extend(_claims_to_proto(r.claims_to_roles))
        target.Request.Thresholds.extend(threshold_to_proto(t) for t in r.thresholds)
        target.Request.SuggestedReviewers.extend(r.suggested_reviewers)
        target.Request.SearchAsRoles.extend(r.search_as_roles)
        target.Request.MaxDuration = duration_to_ns(r.max_duration)
        if r.reason_mode:
            target.Request.Reason.Mode = r.reason_mode
        traits_to_proto(target.Request.Annotations, r.annotations)
    if c.review_requests is not None:
        v = c.review_requests
        target.ReviewRequests.Roles.extend(v.roles)
        target.ReviewRequests.ClaimsToRoles.extend(_claims_to_proto(v.claims_to_roles))
        target.ReviewRequests.Where = v.where
        target.ReviewRequests.PreviewAsRoles.extend(v.preview_as_roles)
        target.ReviewRequests.SubmitForUsers.extend(v.submit_for_users)
    target.Impersonate.Users.extend(c.impersonate_users)
    target.Impersonate.Roles.extend(c.impersonate_roles)


def role_from_proto(pb: types_pb2.RoleV6) -> Role:
    return Role(
        name=pb.Metadata.Name,
        allow=_conditions_from_proto(pb.Spec.Allow),
        deny=_conditions_from_proto(pb.Spec.Deny),
        max_session_ttl=duration_from_ns(pb.Spec.Options.MaxSessionTTL),
        request_access=pb.Spec.Options.RequestAccess,
        request_prompt=pb.Spec.Options.RequestPrompt,
    )


def role_to_proto(role: Role) -> types_pb2.RoleV6:
    pb = types_pb2.RoleV6(Kind="role", Version="v7")
    pb.Metadata.Name = role.name
    pb.Metadata.Namespace = "default"
    pb.Spec.Options.MaxSessionTTL = duration_to_ns(role.max_session_ttl)
    pb.Spec.Options.RequestAccess = role.request_access
    pb.Spec.Options.RequestPrompt = role.request_prompt
    _conditions_to_proto(pb.Spec.Allow, role.allow)
    _conditions_to_proto(pb.Spec.Deny, role.deny)
    return pb


# --- the rest --------------------------------------------------------------------------------------


def capabilities_from_proto(pb: types_pb2.AccessCapabilities) -> Capabilities:
    return Capabilities(
        requestable_roles=tuple(pb.RequestableRoles),
        suggested_reviewers=tuple(pb.SuggestedReviewers),
        require_reason=pb.RequireReason,
        request_prompt=pb.RequestPrompt,
    )


def cluster_from_proto(pb: authservice_pb2.PingResponse) -> ClusterInfo:
    return ClusterInfo(
        name=pb.ClusterName,
        server_version=pb.ServerVersion,
        proxy_public_addr=pb.ProxyPublicAddr,
        advanced_access_workflows=pb.ServerFeatures.AdvancedAccessWorkflows,
    )
