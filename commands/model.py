"""The domain model every layer shares: access requests, reviews, users and roles, as frozen dataclasses.

Nothing here knows about protobuf, Slack or Mattermost; the Teleport converter and the chat adapters
translate into and out of these types at the edge.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

Traits = Mapping[str, tuple[str, ...]]



def _empty() -> Mapping:  # type: ignore[type-arg]
    return MappingProxyType({})


class RequestState(enum.Enum):
    """Teleport's `types.RequestState`; the values are the wire numbers."""

    NONE = 0
    PENDING = 1
    APPROVED = 2
    DENIED = 3
    PROMOTED = 4

    @property
    def resolved(self) -> bool:
        return self in (RequestState.APPROVED, RequestState.DENIED, RequestState.PROMOTED)


@dataclass(frozen=True)
class Review:
    author: str
    proposed_state: RequestState
    reason: str = ""
    created: datetime | None = None
    roles: tuple[str, ...] = ()
    threshold_indexes: tuple[int, ...] = ()
    # The identity (our bot) that submitted on the author's behalf; empty when the author submitted it.
    submitted_by: str = ""
    # Sent as true when the bot submits for `author` (Teleport >= 18.11 refuses such a review without it).
    on_behalf: bool = False


@dataclass(frozen=True)
class Threshold:
    name: str = ""
    filter: str = ""
    approve: int = 0
    deny: int = 0


@dataclass(frozen=True)
class AccessRequest:
    """One Teleport access request. `access_expires` is Spec.Expires: when the elevated access ends."""

    id: str
    user: str
    roles: tuple[str, ...]
    state: RequestState
    created: datetime | None = None
    access_expires: datetime | None = None
    reason: str = ""
    resolve_reason: str = ""
    reviews: tuple[Review, ...] = ()
    suggested_reviewers: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    # role -> sets (AND) of threshold-index sets (OR); see teleport-wire.md §3.2.
    role_threshold_mapping: Mapping[str, tuple[tuple[int, ...], ...]] = field(default_factory=_empty)
    resources: tuple[str, ...] = ()
    max_duration: datetime | None = None
    session_ttl: datetime | None = None
    resource_expiry: datetime | None = None
    system_annotations: Traits = field(default_factory=_empty)

    @property
    def approvals(self) -> int:
        return sum(1 for r in self.reviews if r.proposed_state is RequestState.APPROVED)

    @property
    def denials(self) -> int:
        return sum(1 for r in self.reviews if r.proposed_state is RequestState.DENIED)

    @property
    def approvals_needed(self) -> int:
        """The approvals this request needs, as a person would count them (the largest threshold)."""
        return max((t.approve for t in self.thresholds if t.approve), default=1)

    @property
    def requested_duration(self) -> timedelta | None:
        if self.created is None or self.access_expires is None:
            return None
        return self.access_expires - self.created


@dataclass(frozen=True)
class ClaimMapping:
    claim: str
    value: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    resources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    where: str = ""


@dataclass(frozen=True)
class RequestConditions:
    """`allow.request` / `deny.request` of a role."""

    roles: tuple[str, ...] = ()
    claims_to_roles: tuple[ClaimMapping, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    suggested_reviewers: tuple[str, ...] = ()
    search_as_roles: tuple[str, ...] = ()
    max_duration: timedelta | None = None
    reason_mode: str = ""
    # `annotations`: key -> values (which may name traits, `{{external.team}}`); Teleport copies the ones
    # that apply into a new request's system annotations.
    annotations: Traits = field(default_factory=_empty)


@dataclass(frozen=True)
class ReviewConditions:
    """`allow.review_requests` / `deny.review_requests` of a role."""

    roles: tuple[str, ...] = ()
    claims_to_roles: tuple[ClaimMapping, ...] = ()
    where: str = ""
    preview_as_roles: tuple[str, ...] = ()
    submit_for_users: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleConditions:
    logins: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    request: RequestConditions | None = None
    review_requests: ReviewConditions | None = None
    impersonate_users: tuple[str, ...] = ()
    impersonate_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Role:
    name: str
    allow: RoleConditions = RoleConditions()
    deny: RoleConditions = RoleConditions()
    max_session_ttl: timedelta | None = None
    # Role option `request_access`: "", "optional", "note", "always" or "reason".
    request_access: str = ""
    request_prompt: str = ""


@dataclass(frozen=True)
class User:
    """A Teleport user with its statically assigned roles and traits."""

    name: str
    roles: tuple[str, ...] = ()
    traits: Traits = field(default_factory=_empty)


@dataclass(frozen=True)
class Capabilities:
    """What a user may request (`GetAccessCapabilities`)."""

    requestable_roles: tuple[str, ...] = ()
    suggested_reviewers: tuple[str, ...] = ()
    require_reason: bool = False
    request_prompt: str = ""


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    server_version: str
    proxy_public_addr: str = ""
    # Ping's ServerFeatures.AdvancedAccessWorkflows: false on Community Edition, where no role may hold
    # review_requests or request thresholds.
    advanced_access_workflows: bool = False


@dataclass(frozen=True)
class ChatUser:
    """Who typed or clicked, as the chat platform names them."""

    platform: str
    id: str
    name: str = ""
    email: str = ""
    tz: str = ""  # the IANA time zone the platform has for them ("Europe/Paris"); "" when it does not say
