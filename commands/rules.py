"""The bot's own reviewer policy (`review.rules`), for clusters where the bot alone decides (review.mode: resolve).

On Teleport Community Edition no role may hold `review_requests` or request thresholds, so nobody can review in
Teleport's sense and the bot resolves requests with `SetAccessRequestState`. These rules say who may decide
then, with Teleport's own semantics so that they can later move into Teleport roles unchanged: matchers are
Teleport's (literal, glob, `^regex$`; `commands.matchers`), deny rules are read before allow rules, nobody
reviews their own request, every requested role must be covered, and anything the bot cannot evaluate
refuses. A requested role needs the largest `approvals` among the allow rules that cover it (whoever is
reviewing), and a request the largest over its roles: adding a rule never lowers what a role needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commands.matchers import Matcher, PolicyError, compile_matcher
from commands.model import AccessRequest, User


@dataclass(frozen=True)
class ReviewRule:
    """One entry of `review.rules`: reviewers (by Teleport role or user) and the requested roles they may
    decide (or, with `deny`, may not), and how many distinct approvals those requested roles need."""

    roles: tuple[str, ...]
    reviewer_roles: tuple[str, ...] = ()
    reviewer_users: tuple[str, ...] = ()
    approvals: int = 1
    deny: bool = False

    def __post_init__(self) -> None:
        if not self.roles:
            raise ValueError("a review rule must name the requested roles it covers")
        if not self.reviewer_roles and not self.reviewer_users:
            raise ValueError("a review rule must name reviewer roles or users")
        if self.approvals < 1:
            raise ValueError("a review rule needs at least one approval")


@dataclass(frozen=True)
class RuleDecision:
    allowed: bool
    reason: str
    # Distinct approvals the request needs; 0 when the rules cannot say (the request is then undecidable).
    approvals_needed: int = 0


def check_rule(rule: ReviewRule) -> None:
    """Compile every matcher of `rule`; raises `PolicyError` (with the reason) for one that cannot be used."""
    for expr in (*rule.roles, *rule.reviewer_roles, *rule.reviewer_users):
        compile_matcher(expr)


def decide(rules: Sequence[ReviewRule], reviewer: User, request: AccessRequest) -> RuleDecision:
    """May `reviewer` approve or deny `request` under `rules`? Fails closed on anything undecidable."""
    if reviewer.name == request.user:
        return RuleDecision(False, "you cannot review your own request")
    if not request.roles:
        return RuleDecision(False, "the request names no roles; refusing")
    try:
        needed = approvals_needed(rules, request)
        for index, rule in _numbered(rules, deny=True):
            if _applies_to(rule, reviewer):
                forbidden = [role for role in request.roles if _covers(rule, role)]
                if forbidden:
                    return RuleDecision(
                        False, f"review.rules[{index}] forbids you reviewing requests for {', '.join(forbidden)}"
                    )
        mine = [(index, rule) for index, rule in _numbered(rules, deny=False) if _applies_to(rule, reviewer)]
        if not mine:
            return RuleDecision(False, "no entry in review.rules names you or one of your roles as a reviewer")
        uncovered = [role for role in request.roles if not any(_covers(rule, role) for _, rule in mine)]
        granted_by = [f"review.rules[{index}]" for index, rule in mine
                      if any(_covers(rule, role) for role in request.roles)]
    except PolicyError as err:
        return RuleDecision(False, f"{err}; refusing")
    if uncovered:
        return RuleDecision(False, f"no entry in review.rules lets you review requests for {', '.join(uncovered)}")
    if needed == 0:
        return RuleDecision(False, "review.rules cannot say how many approvals this request needs; refusing")
    return RuleDecision(True, f"allowed by {', '.join(granted_by)}", needed)


def names_reviewer(rules: Sequence[ReviewRule], user: User) -> bool:
    """Whether some allow rule names `user` (by name or role): their `/access list` opens on what is pending."""
    try:
        return any(_applies_to(rule, user) for _, rule in _numbered(rules, deny=False))
    except PolicyError:
        return False


def approvals_needed(rules: Sequence[ReviewRule], request: AccessRequest) -> int:
    """The distinct approvals `request` needs: per requested role the largest `approvals` of the allow rules
    covering it, then the largest over the roles; 0 when a role is covered by none (nobody may decide it).
    Raises `PolicyError` when a matcher cannot be evaluated."""
    needed = 0
    for role in dict.fromkeys(request.roles):
        covering = [rule.approvals for _, rule in _numbered(rules, deny=False) if _covers(rule, role)]
        if not covering:
            return 0
        needed = max(needed, *covering)
    return needed


def _numbered(rules: Sequence[ReviewRule], *, deny: bool) -> list[tuple[int, ReviewRule]]:
    """The deny (or allow) rules with their index in `review.rules`, for the reasons people read."""
    return [(index, rule) for index, rule in enumerate(rules) if rule.deny is deny]


def _covers(rule: ReviewRule, requested_role: str) -> bool:
    return _any_match(rule.roles, requested_role)


def _applies_to(rule: ReviewRule, reviewer: User) -> bool:
    """Whether the rule names this reviewer, by Teleport user name or by one of their assigned roles."""
    if _any_match(rule.reviewer_users, reviewer.name):
        return True
    return any(_any_match(rule.reviewer_roles, role) for role in dict.fromkeys(reviewer.roles))


def _any_match(exprs: Sequence[str], value: str) -> bool:
    matchers: list[Matcher] = [compile_matcher(expr) for expr in exprs]
    return any(matcher.matches(value) for matcher in matchers)
