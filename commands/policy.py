"""Teleport's rules on who may review or request which roles, mirrored so the bot can refuse first and say why.

Read from gravitational/teleport: `lib/services/access_request.go` (ReviewPermissionChecker,
RequestValidator, thresholdCollector). Role matchers and claims_to_roles are `commands.matchers`.
Wherever Teleport would error, or our evaluation could differ from Go's, we refuse: a `PolicyError`
never turns into a permission.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import cast

from commands import where
from commands.matchers import (
    Matcher,
    PolicyError,
    UnsupportedMatcher,
    compile_matcher,
    literal_matcher,
    role_matchers,
)
from commands.model import AccessRequest, RequestConditions, ReviewConditions, Role, Threshold, User

MAX_THRESHOLDS = 4096  # Teleport's own cap
DEFAULT_THRESHOLD = Threshold(name="default", approve=1, deny=1)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def _assigned(user: User, roles: Sequence[Role]) -> list[Role]:
    """The user's statically assigned roles, in assignment order; any role not loaded is undecidable."""
    by_name = {role.name: role for role in roles}
    for name in user.roles:
        if name not in by_name:
            raise PolicyError(f"role {name} of user {user.name} could not be loaded")
    return [by_name[name] for name in dict.fromkeys(user.roles)]


@dataclass(frozen=True)
class _Grant:
    """One role's allow or deny block, compiled for one user."""

    role: str
    conditions: RequestConditions | ReviewConditions
    matchers: tuple[Matcher, ...]

    @property
    def where(self) -> str:
        return self.conditions.where if isinstance(self.conditions, ReviewConditions) else ""


def _grants(user: User, roles: Sequence[Role], *, review: bool, allow: bool) -> list[_Grant]:
    grants = []
    for role in _assigned(user, roles):
        side = role.allow if allow else role.deny
        conditions = side.review_requests if review else side.request
        if conditions is None:
            continue
        try:
            matchers = role_matchers(conditions.roles, conditions.claims_to_roles, user.traits)
        except PolicyError as err:
            block = "review_requests" if review else "request"
            raise PolicyError(f"cannot evaluate the {block} rules of role {role.name}: {err}") from None
        grants.append(_Grant(role.name, conditions, matchers))
    return grants


def _review_blocks(
    reviewer: User, roles: Sequence[Role], *, allow: bool
) -> tuple[list[_Grant], list[str]]:
    """Each role's allow or deny `review_requests`, compiled; and why any allow block was left out.

    Teleport fails the whole check on a matcher it rejects, so do we. An allow block that only the bot
    cannot evaluate (`UnsupportedMatcher`) is left out: allow blocks only add permissions, so the
    others still decide correctly when they suffice. A deny block the bot cannot evaluate refuses.
    """
    grants, skipped = [], []
    for role in roles:
        conditions = (role.allow if allow else role.deny).review_requests
        if conditions is None:
            continue
        try:
            matchers = role_matchers(conditions.roles, conditions.claims_to_roles, reviewer.traits)
        except UnsupportedMatcher as err:
            if not allow:
                raise PolicyError(f"cannot evaluate the review_requests rules of role {role.name}: {err}") from None
            skipped.append(f"role {role.name} could not be evaluated: {err}")
            continue
        except PolicyError as err:
            raise PolicyError(f"cannot evaluate the review_requests rules of role {role.name}: {err}") from None
        grants.append(_Grant(role.name, conditions, matchers))
    return grants, skipped


def review_decision(reviewer: User, reviewer_roles: Sequence[Role], request: AccessRequest) -> Decision:
    """May `reviewer` review `request`? ReviewPermissionChecker (teleport-wire.md §3.3), failing closed.

    Teleport groups the reviewer's roles by their `where` and evaluates each group on its own: deny
    groups first, then allow groups until every requested role is matched. Go visits the groups in no
    fixed order, so a `where` that Teleport itself cannot evaluate may or may not fail the check: we
    refuse. A `where` that only the bot cannot evaluate (`where.Undecidable`) leaves that role's allow
    block out, and refuses in a deny block whose roles match the request.
    """
    if reviewer.name == request.user:
        return Decision(False, "you cannot review your own request")
    if not request.roles:
        return Decision(False, "the request names no roles; refusing")
    try:
        roles = _assigned(reviewer, reviewer_roles)
        allow, skipped = _review_blocks(reviewer, roles, allow=True)
        deny, _ = _review_blocks(reviewer, roles, allow=False)
        if not skipped and not any(grant.matchers for grant in allow):
            return Decision(False, "you have no role that allows reviewing access requests")
        context = where.review_permission_context(reviewer, request)
        for grant in deny:
            if not _applies(grant, context, request.roles, deny=True):
                continue
            for role in request.roles:
                if any(matcher.matches(role) for matcher in grant.matchers):
                    return Decision(False, f"your role {grant.role} forbids reviewing requests for {role}")
        granting = []
        for grant in allow:
            try:
                if _applies(grant, context, request.roles, deny=False):
                    granting.append(grant)
            except where.Undecidable as err:
                skipped.append(f"the where clause of role {grant.role} could not be evaluated: {err}")
        unmatched = [r for r in request.roles if not any(m.matches(r) for g in granting for m in g.matchers)]
        granted_by = [
            g.role for g in granting if any(m.matches(r) for r in request.roles for m in g.matchers)
        ]
    except _Refusal as refusal:
        return Decision(False, str(refusal))
    except PolicyError as err:
        return Decision(False, f"{err}; refusing")
    if unmatched:
        why = f"none of your roles allows reviewing requests for {', '.join(unmatched)}"
        return Decision(False, "; ".join([why, *skipped]))
    return Decision(True, f"allowed by your role {', '.join(dict.fromkeys(granted_by))}")


class _Refusal(Exception):
    """A where clause that decides the review is refused; the message is the reason."""


def _applies(grant: _Grant, context: Mapping[str, Mapping[str, object]], requested: Sequence[str], *, deny: bool) -> bool:
    """Is this block's `where` empty or true? Raises `_Refusal` where Teleport could fail the check, and
    `where.Undecidable` (allow blocks only) where only the bot cannot tell."""
    if not grant.where:
        return True
    try:
        return where.evaluate(grant.where, context)
    except where.Undecidable as err:
        if not deny:
            raise
        if not any(matcher.matches(role) for role in requested for matcher in grant.matchers):
            return False  # whatever the where says, this deny block matches none of the requested roles
        raise _Refusal(f"cannot evaluate the where clause of role {grant.role}: {err}; refusing") from None
    except where.WhereError as err:
        raise _Refusal(f"cannot evaluate the where clause of role {grant.role}: {err}; refusing") from None


def request_permission(user: User, user_roles: Sequence[Role], requested: Sequence[str]) -> Decision:
    """May `user` request these roles? RequestValidator.CanRequestRole for each: deny first, then allow."""
    if not requested:
        return Decision(False, "no roles were requested")
    try:
        allow = _grants(user, user_roles, review=False, allow=True)
        deny = _grants(user, user_roles, review=False, allow=False)
        for name in requested:
            denied_by = next((g.role for g in deny if any(m.matches(name) for m in g.matchers)), None)
            if denied_by:
                return Decision(
                    False, f'user {user.name} may not request role "{name}" (denied by role {denied_by})'
                )
            if not any(m.matches(name) for g in allow for m in g.matchers):
                return Decision(False, f'user {user.name} may not request role "{name}"')
    except PolicyError as err:
        return Decision(False, f"{err}; refusing")
    return Decision(True, f"user {user.name} may request {', '.join(requested)}")


@dataclass(frozen=True)
class RequestSettings:
    """What Teleport derives from the requester's roles when a request is created."""

    thresholds: tuple[Threshold, ...] = ()
    role_threshold_mapping: Mapping[str, tuple[tuple[int, ...], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    suggested_reviewers: tuple[str, ...] = ()
    max_duration: timedelta | None = None
    # Per requested role, the longest allow.request.max_duration among the roles granting it.
    role_max_durations: Mapping[str, timedelta] = field(default_factory=lambda: MappingProxyType({}))
    reason_required: bool = False
    # Teleport's explanation, e.g. 'required for role "dba"'; empty when no reason is required.
    reason_source: str = ""
    system_annotations: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


def request_settings(user: User, user_roles: Sequence[Role], requested: Sequence[str]) -> RequestSettings:
    """Thresholds, suggested reviewers, max duration and reason rule for `user` requesting `requested`.

    A requested role takes one threshold set (AND) from every requester role whose allow.request
    matchers (or search_as_roles) match it; a set is that role's thresholds (OR), or approve=1/deny=1
    when it lists none. Its max duration is the longest among those roles, and the request's is the
    shortest over the requested roles that have one. (Teleport's loop lets a role without max_duration
    lift the cap or not depending on list order; we always keep the cap.) Suggested reviewers come
    from all the user's roles. Raises `PolicyError` when a role cannot be evaluated.
    """
    roles = _assigned(user, user_roles)
    groups: list[tuple[tuple[Matcher, ...], RequestConditions]] = []
    for grant in _grants(user, roles, review=False, allow=True):
        conditions = cast(RequestConditions, grant.conditions)
        matchers = grant.matchers + tuple(literal_matcher(r) for r in conditions.search_as_roles)
        if matchers:
            groups.append((matchers, conditions))
    thresholds: list[Threshold] = []
    mapping: dict[str, tuple[tuple[int, ...], ...]] = {}
    longest: dict[str, timedelta] = {}
    for name in dict.fromkeys(requested):
        sets = []
        for matchers, conditions in groups:
            if not any(matcher.matches(name) for matcher in matchers):
                continue
            sets.append(tuple(_push(thresholds, t) for t in conditions.thresholds or (DEFAULT_THRESHOLD,)))
            if conditions.max_duration:
                # The most generous grant for this role wins (Teleport's maxDurationForRole).
                longest[name] = max(longest.get(name, conditions.max_duration), conditions.max_duration)
        if sets:
            mapping[name] = tuple(sets)
    reason_required, reason_source = _reason_rule(roles, requested)
    return RequestSettings(
        system_annotations=_system_annotations(user, roles, requested),
        thresholds=tuple(thresholds),
        role_threshold_mapping=MappingProxyType(mapping),
        suggested_reviewers=tuple(
            dict.fromkeys(s for r in roles if r.allow.request for s in r.allow.request.suggested_reviewers)
        ),
        max_duration=min(longest.values(), default=None),
        role_max_durations=MappingProxyType(longest),
        reason_required=reason_required,
        reason_source=reason_source,
    )


def _system_annotations(
    user: User, roles: Sequence[Role], requested: Sequence[str]
) -> Mapping[str, tuple[str, ...]]:
    """requestValidator.systemAnnotations: each allow.request annotation of a role whose request matchers
    match a requested role, unless any role's deny.request lists the same key and value; sorted."""
    denied = {
        (key, value)
        for grant in _grants(user, roles, review=False, allow=False)
        for key, templates in cast(RequestConditions, grant.conditions).annotations.items()
        for template in templates
        for value in _expand(template, user.traits)
    }
    found: dict[str, set[str]] = {}
    for grant in _grants(user, roles, review=False, allow=True):
        annotations = cast(RequestConditions, grant.conditions).annotations
        if not annotations or not any(m.matches(name) for name in requested for m in grant.matchers):
            continue
        for key, templates in annotations.items():
            for template in templates:
                for value in _expand(template, user.traits):
                    if (key, value) not in denied:
                        found.setdefault(key, set()).add(value)
    return MappingProxyType({key: tuple(sorted(values)) for key, values in sorted(found.items())})


_INTERNAL_TRAITS = frozenset(
    "logins windows_logins kubernetes_groups kubernetes_users db_names db_users db_roles aws_role_arns "
    "azure_identities gcp_service_accounts jwt github_orgs".split()
)
_TRAIT_TEMPLATE = re.compile(r"([^{}]*)\{\{\s*(internal|external)(?:\.(\w+)|\[\"([^\"]+)\"\])\s*\}\}([^{}]*)")


def _expand(template: str, traits: Mapping[str, Sequence[str]]) -> list[str]:
    """Teleport's ApplyValueTraits for an annotation value: a literal, or one trait interpolated.

    A trait the user lacks yields nothing (Teleport skips the value). Template functions such as
    `email.local` are not mirrored: such a value raises `PolicyError`.
    """
    if "{{" not in template and "}}" not in template:
        return [template]
    match = _TRAIT_TEMPLATE.fullmatch(template)
    if match is None:
        raise PolicyError(f"cannot expand the annotation value {template!r}")
    prefix, namespace, name, quoted_name, suffix = match.groups()
    if namespace == "internal" and (name or quoted_name) not in _INTERNAL_TRAITS:
        return []  # Teleport: "unsupported variable", and the value is skipped
    return [f"{prefix}{value}{suffix}" for value in traits.get(name or quoted_name, ()) if value]


def _push(thresholds: list[Threshold], threshold: Threshold) -> int:
    """thresholdCollector.pushThreshold: identical thresholds are stored once."""
    if threshold in thresholds:
        return thresholds.index(threshold)
    if len(thresholds) >= MAX_THRESHOLDS:
        raise PolicyError(f"max review thresholds exceeded (max={MAX_THRESHOLDS})")
    thresholds.append(threshold)
    return len(thresholds) - 1


def _reason_rule(roles: Sequence[Role], requested: Sequence[str]) -> tuple[bool, str]:
    # Teleport's RequireReason() is true for `request_access: reason` only, not `always`.
    if any(role.request_access == "reason" for role in roles):
        return True, "required request_access option in one of the roles"
    for name in requested:
        for role in roles:
            conditions = role.allow.request
            # Teleport looks names up literally in allow.request.roles/search_as_roles, so a glob there
            # does not make a reason mandatory.
            if (
                conditions
                and conditions.reason_mode == "required"
                and (name in conditions.roles or name in conditions.search_as_roles)
            ):
                return True, f'required for role "{name}"'
    return False, ""


def may_submit_for(caller: User, caller_roles: Sequence[Role], author: str) -> bool:
    """May `caller` (a plugin) submit reviews authored by `author`? `review_requests.submit_for_users`."""
    try:
        roles = _assigned(caller, caller_roles)
        sides = [(r.deny.review_requests, r.allow.review_requests) for r in roles]
        deny = [compile_matcher(e) for d, _ in sides if d for e in d.submit_for_users]
        allow = [compile_matcher(e) for _, a in sides if a for e in a.submit_for_users]
        if any(matcher.matches(author) for matcher in deny):
            return False
        return any(matcher.matches(author) for matcher in allow)
    except PolicyError:
        return False
