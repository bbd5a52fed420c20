"""Teleport's rules on who may review or request which roles, mirrored so the bot can refuse first and say why.

Read from gravitational/teleport: `lib/services/access_request.go` (ReviewPermissionChecker,
RequestValidator, thresholdCollector), `lib/services/traits.go` (claims_to_roles), `lib/utils/parse`
(role matchers) and `lib/utils/replace.go` (globs, `$1` expansion). Wherever Teleport would error, or
our evaluation could differ from Go's, we refuse: a `PolicyError` never turns into a permission.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import cast

from commands import where
from commands.model import (
    AccessRequest,
    ClaimMapping,
    RequestConditions,
    ReviewConditions,
    Role,
    Threshold,
    User,
)

MAX_PATTERN = 512  # characters in one matcher or claim value
MAX_VALUE = 256  # characters in a role name or trait value tested against a regex
MAX_BACKTRACK = MAX_VALUE**3  # worst-case choices one regex may explore (see _check_re2_subset)
MAX_THRESHOLDS = 4096  # Teleport's own cap
DEFAULT_THRESHOLD = Threshold(name="default", approve=1, deny=1)


class PolicyError(Exception):
    """A role the bot cannot evaluate faithfully; every caller turns this into a refusal."""


class MatcherError(PolicyError):
    """A role matcher that Teleport itself would reject."""


class UnsupportedMatcher(MatcherError):
    """A matcher beyond what the bot evaluates: interpolation, regex features Python reads differently."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Matcher:
    expr: str
    test: Callable[[str], bool] = field(repr=False, compare=False)

    def matches(self, value: str) -> bool:
        if len(value) > MAX_VALUE or "\n" in value:
            raise MatcherError(f"{value[:40]!r} is too long or spans lines to be matched safely")
        return self.test(value)


_TEMPLATE = re.compile(r"([^{}]*)\{\{(\s*[^{}]*\s*)\}\}([^{}]*)")
_REGEXP_CALL = re.compile(r'\s*regexp\.(match|not_match)\(\s*("(?:[^"\\\n]|\\.)*"|`[^`]*`)\s*\)\s*')
_NOT_RE2 = ("(?=", "(?!", "(?<=", "(?<!", "(?P=", "(?>", "(?#", "(?(")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_EXPANSION = re.compile(r"\$[^$]+")
_REFERENCE = re.compile(r"\{(\w+)\}|(\w+)")


def literal_matcher(value: str) -> Matcher:
    return Matcher(value, value.__eq__)


@functools.lru_cache(
    maxsize=1024
)  # matchers are immutable; listings check many requests against one role set
def compile_matcher(expr: str) -> Matcher:
    """Teleport's `parse.NewMatcher`: literal, glob, `^regex$`, `{{regexp.match|not_match("re")}}`."""
    if len(expr) > MAX_PATTERN:
        raise UnsupportedMatcher(f"the matcher is longer than {MAX_PATTERN} characters")
    template = _TEMPLATE.fullmatch(expr)
    if template is None:
        if "{{" in expr or "}}" in expr:
            raise MatcherError(f"{expr!r} uses template brackets but is not of the form {{{{expression}}}}")
        if expr.startswith("^") and expr.endswith("$"):
            regex = _compile_regex(expr)
            return Matcher(expr, lambda value: regex.search(value) is not None)
        return Matcher(expr, lambda value: _glob_match(expr, value))
    prefix, inner, suffix = template.groups()
    call = _REGEXP_CALL.fullmatch(inner)
    if call is None:
        raise UnsupportedMatcher(
            f"{expr!r}: role matchers support only regexp.match and regexp.not_match, not interpolation"
        )
    try:
        pattern = where.unquote(call.group(2))
    except where.WhereError as err:
        raise MatcherError(f"{expr!r}: {err}") from None
    regex, negate = _compile_regex(pattern), call.group(1) == "not_match"

    def test(value: str) -> bool:
        # Go's MatchExpression: both affixes must be present, then each is trimmed once.
        if not value.startswith(prefix) or not value.endswith(suffix):
            return False
        rest = value[len(prefix) :]
        rest = rest[: len(rest) - len(suffix)] if suffix and rest.endswith(suffix) else rest
        return (regex.search(rest) is None) if negate else (regex.search(rest) is not None)

    return Matcher(expr, test)


def _glob_match(pattern: str, value: str) -> bool:
    """`^` + GlobToRegexp + `$` without a regex: `*` is the only wildcard, so leftmost search is exact."""
    if "*" not in pattern:
        return value == pattern
    first, *middle, last = pattern.split("*")
    if len(value) < len(first) + len(last) or not value.startswith(first) or not value.endswith(last):
        return False
    position, end = len(first), len(value) - len(last)
    for part in middle:
        found = value.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@functools.lru_cache(maxsize=1024)
def _compile_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN:
        raise UnsupportedMatcher(f"the regular expression is longer than {MAX_PATTERN} characters")
    _check_re2_subset(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # re.ASCII: Go's \d, \w, \s and \b are ASCII-only.
            return re.compile(pattern, re.ASCII)
    except (re.error, OverflowError, RecursionError, ValueError) as err:
        raise MatcherError(f"cannot use the regular expression {pattern!r}: {err}") from None


def _check_re2_subset(pattern: str) -> None:
    """Refuse what RE2 rejects or Python reads differently, and patterns that could backtrack for long.

    Go's RE2 runs in linear time; Python backtracks. We bound the worst case by the product of the
    choices each quantifier offers (times every start position when ^ does not anchor the search) and
    refuse repeated groups that repeat or alternate inside, like (a+)+ or (a|aa)*.
    """
    groups: list[bool] = []  # per open group: does it hold a repeat or an alternation?
    cost, index = (1 if pattern.startswith("^") else MAX_VALUE), 0
    while index < len(pattern):
        char, following = pattern[index], pattern[index + 1 : index + 2]
        quantifier = _quantifier(pattern, index)
        if char == "\\":
            if following and following in "123456789Z":
                raise UnsupportedMatcher(f"{pattern!r}: \\{following} means something else in Go")
            index += 2
        elif char == "[":
            index = _skip_class(pattern, index)
        elif char == "(":
            if pattern.startswith(_NOT_RE2, index):
                raise MatcherError(f"{pattern!r}: lookaround, backreferences and atomic groups are not RE2")
            groups.append(False)
            index += 1
        elif char == ")":
            risky = groups.pop() if groups else False
            index += 1
            if risky and pattern[index : index + 1] in ("*", "+", "{"):
                raise UnsupportedMatcher(f"{pattern!r}: a repeated group that repeats inside could backtrack")
            if risky and groups:
                groups[-1] = True
        elif quantifier:
            choices, index = quantifier
            cost *= choices
            if cost > MAX_BACKTRACK:
                raise UnsupportedMatcher(
                    f"{pattern!r}: too many repeats to match without runaway backtracking"
                )
            index += pattern[index : index + 1] == "?"  # a lazy repeat means the same in both dialects
            if pattern[index : index + 1] == "+":
                raise UnsupportedMatcher(f"{pattern!r}: possessive repeats are not RE2")
            if groups:
                groups[-1] = True
        elif char == "{" and following == ",":
            raise UnsupportedMatcher(f"{pattern!r}: {{,n}} is a repeat in Python but literal text in Go")
        else:
            if char == "|" and groups:
                groups[-1] = True
            index += 1


def _quantifier(pattern: str, index: int) -> tuple[int, int] | None:
    """The quantifier at `index` as (how many lengths it may try, the index after it), or None."""
    char = pattern[index]
    if char in "*+?":
        return (2 if char == "?" else MAX_VALUE), index + 1
    repeat = _REPEAT.match(pattern, index) if char == "{" else None
    if repeat is None:
        return None
    low, comma, high = int(repeat.group(1)), repeat.group(2), repeat.group(3)
    if max(low, int(high or 0)) > 1000:
        raise MatcherError(f"{pattern!r}: Go allows at most 1000 repetitions")
    choices = MAX_VALUE if comma and not high else (int(high) - low + 1 if comma else 1)
    return max(choices, 1), repeat.end()


def _skip_class(pattern: str, index: int) -> int:
    """Return the index after the character class opening at `index`; refuse POSIX classes."""
    index += 1
    index += pattern[index : index + 1] == "^"
    index += pattern[index : index + 1] == "]"  # a leading ] is literal in both dialects
    while index < len(pattern):
        if pattern.startswith("[:", index):
            raise UnsupportedMatcher(f"{pattern!r}: POSIX classes like [:alpha:] differ in Python")
        if pattern[index] == "]":
            return index + 1
        index += 2 if pattern[index] == "\\" else 1
    return index


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's `Regexp.Expand`: `$1`, `${1}`, `$name`, `${name}`, `$$`; unknown groups expand to ""."""
    out: list[str] = []
    rest = template
    while True:
        before, dollar, rest = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        reference = _REFERENCE.match(rest)
        if reference is None:
            out.append("$")
            continue
        rest = rest[reference.end() :]
        name = reference.group(1) or reference.group(2)
        if name.isascii() and name.isdigit() and (name == "0" or not name.startswith("0")):
            number = int(name)
            out.append((match.group(number) or "") if number <= (match.re.groups or 0) else "")
        elif name in match.re.groupindex:
            out.append(match.group(name) or "")


def _claim_roles(
    mappings: Sequence[ClaimMapping], traits: Mapping[str, Sequence[str]]
) -> list[tuple[str, bool]]:
    """Teleport's traitsToRoles: each (role, whether `$n` expansion produced it) for the matching values."""
    produced: list[tuple[str, bool]] = []
    for mapping in mappings:
        values = traits.get(mapping.claim, ())
        if not values:
            continue
        # A value is a glob unless written ^regex$; each * becomes a capture group for $1, $2...
        if mapping.value.startswith("^") and mapping.value.endswith("$"):
            regex = _compile_regex(mapping.value)
        else:
            regex = _compile_regex("^" + re.escape(mapping.value).replace(r"\*", "(.*)") + "$")
        for value in values:
            if len(value) > MAX_VALUE or "\n" in value:
                raise MatcherError(f"trait {mapping.claim} holds a value too long to match safely")
            if regex.search(value) is None:
                continue
            for role in mapping.roles:
                result = regex.sub(functools.partial(_expand, role), value)
                if result:
                    produced.append((result, result != role))
    return produced


def claims_to_roles(mappings: Sequence[ClaimMapping], traits: Mapping[str, Sequence[str]]) -> list[str]:
    """The role names `claims_to_roles` yields for these traits, deduplicated, in order."""
    return list(dict.fromkeys(role for role, _ in _claim_roles(mappings, traits)))


def role_matchers(
    roles: Sequence[str], mappings: Sequence[ClaimMapping], traits: Mapping[str, Sequence[str]]
) -> tuple[Matcher, ...]:
    """Teleport's appendRoleMatchers: role expressions plus claims; expanded claim roles match literally."""
    claimed = [
        literal_matcher(role) if expanded or _EXPANSION.search(role) else compile_matcher(role)
        for role, expanded in _claim_roles(mappings, traits)
    ]
    return tuple(compile_matcher(role) for role in roles) + tuple(claimed)


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


def review_decision(reviewer: User, reviewer_roles: Sequence[Role], request: AccessRequest) -> Decision:
    """May `reviewer` review `request`? ReviewPermissionChecker (teleport-wire.md §3.3), failing closed."""
    if reviewer.name == request.user:
        return Decision(False, "you cannot review your own request")
    if not request.roles:
        return Decision(False, "the request names no roles; refusing")
    try:
        allow = _grants(reviewer, reviewer_roles, review=True, allow=True)
        deny = _grants(reviewer, reviewer_roles, review=True, allow=False)
        if not any(grant.matchers for grant in allow):
            return Decision(False, "you have no role that allows reviewing access requests")
        # Every where clause is evaluated, so an undecidable one refuses whatever the others say.
        context = where.review_permission_context(reviewer, request)
        verdicts: dict[str, bool] = {}
        for grant in [*deny, *allow]:
            if grant.where and grant.where not in verdicts:
                try:
                    verdicts[grant.where] = where.evaluate(grant.where, context)
                except where.WhereError as err:
                    why = f"cannot evaluate the where clause of role {grant.role}: {err}; refusing"
                    return Decision(False, why)
        applies = [grant for grant in deny if verdicts.get(grant.where, True)]
        for grant in applies:
            for role in request.roles:
                if any(matcher.matches(role) for matcher in grant.matchers):
                    return Decision(False, f"your role {grant.role} forbids reviewing requests for {role}")
        granting = [grant for grant in allow if verdicts.get(grant.where, True)]
        unmatched = [r for r in request.roles if not any(m.matches(r) for g in granting for m in g.matchers)]
        granted_by = [
            g.role for g in granting if any(m.matches(r) for r in request.roles for m in g.matchers)
        ]
    except PolicyError as err:
        return Decision(False, f"{err}; refusing")
    if unmatched:
        return Decision(False, f"none of your roles allows reviewing requests for {', '.join(unmatched)}")
    return Decision(True, f"allowed by your role {', '.join(dict.fromkeys(granted_by))}")


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
    reason_required: bool = False
    # Teleport's explanation, e.g. 'required for role "dba"'; empty when no reason is required.
    reason_source: str = ""


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
        thresholds=tuple(thresholds),
        role_threshold_mapping=MappingProxyType(mapping),
        suggested_reviewers=tuple(
            dict.fromkeys(s for r in roles if r.allow.request for s in r.allow.request.suggested_reviewers)
        ),
        max_duration=min(longest.values(), default=None),
        reason_required=reason_required,
        reason_source=reason_source,
    )


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
