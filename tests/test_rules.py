"""`review.rules`, evaluated in memory: Teleport's matching, deny before allow, every role covered, fail closed."""

from __future__ import annotations

import pytest

from commands import approvals, rules
from commands.approvals import Approval
from commands.matchers import PolicyError
from commands.model import AccessRequest, RequestState, User
from commands.rules import ReviewRule

DBA_TWO = ReviewRule(roles=("dba", "db-*"), reviewer_roles=("dba-lead",), reviewer_users=("alice@example.com",),
                     approvals=2)
AUDIT = ReviewRule(roles=("^audit-(read|write)$",), reviewer_roles=("sec*",))
NO_CONTRACTORS = ReviewRule(roles=("*",), reviewer_users=("contractor-*",), deny=True)
RULES = (DBA_TWO, AUDIT, NO_CONTRACTORS)


def request(*roles: str, user: str = "mallory") -> AccessRequest:
    return AccessRequest(id="req-1", user=user, roles=roles, state=RequestState.PENDING)


def who(name: str, *roles: str) -> User:
    return User(name, roles=roles)


def test_a_reviewer_named_by_role_or_user_may_decide_covered_roles() -> None:
    by_role = rules.decide(RULES, who("bob", "dba-lead"), request("dba", "db-replica"))
    assert (by_role.allowed, by_role.reason, by_role.approvals_needed) == (True, "allowed by review.rules[0]", 2)
    by_name = rules.decide(RULES, who("alice@example.com"), request("db-replica"))
    assert by_name.allowed and by_name.approvals_needed == 2


def test_globs_and_regexes_match_as_teleport_matches_them() -> None:
    assert rules.decide(RULES, who("sam", "security"), request("audit-read")).allowed
    refused = rules.decide(RULES, who("sam", "security"), request("audit-reader"))
    assert refused == rules.RuleDecision(False, "no entry in review.rules lets you review requests for audit-reader")


def test_every_requested_role_must_be_covered_for_this_reviewer() -> None:
    decision = rules.decide(RULES, who("bob", "dba-lead"), request("dba", "audit-read"))
    assert decision == rules.RuleDecision(False, "no entry in review.rules lets you review requests for audit-read")
    both = rules.decide(RULES, who("bob", "dba-lead", "sec-team"), request("dba", "audit-read"))
    assert (both.allowed, both.reason, both.approvals_needed) == (
        True, "allowed by review.rules[0], review.rules[1]", 2)


def test_a_deny_rule_wins_over_an_allow_rule() -> None:
    decision = rules.decide(RULES, who("contractor-zed", "dba-lead"), request("dba"))
    assert decision == rules.RuleDecision(False, "review.rules[2] forbids you reviewing requests for dba")


def test_nobody_reviews_their_own_request() -> None:
    decision = rules.decide(RULES, who("bob", "dba-lead"), request("dba", user="bob"))
    assert decision == rules.RuleDecision(False, "you cannot review your own request")


def test_someone_no_rule_names_is_refused() -> None:
    decision = rules.decide(RULES, who("carol", "developer"), request("dba"))
    assert decision == rules.RuleDecision(
        False, "no entry in review.rules names you or one of your roles as a reviewer")
    assert not rules.names_reviewer(RULES, who("carol", "developer"))
    assert rules.names_reviewer(RULES, who("bob", "dba-lead"))


def test_a_role_needs_the_largest_approvals_of_the_rules_covering_it() -> None:
    lenient = ReviewRule(roles=("dba",), reviewer_users=("dave",), approvals=1)
    strict = ReviewRule(roles=("dba",), reviewer_users=("erin",), approvals=3)
    assert rules.approvals_needed((lenient, strict), request("dba")) == 3
    # dave's own rule asks for one, but the role needs three whoever reviews.
    assert rules.decide((lenient, strict), who("dave"), request("dba")).approvals_needed == 3
    assert rules.approvals_needed((lenient,), request("dba", "other")) == 0


def test_what_cannot_be_evaluated_refuses() -> None:
    odd = ReviewRule(roles=("{{internal.logins}}",), reviewer_users=("bob",))
    decision = rules.decide((odd,), who("bob"), request("dba"))
    assert not decision.allowed and decision.reason.endswith("; refusing")
    assert not rules.decide(RULES, who("bob", "dba-lead"), request()).allowed
    long_name = "db-" + "x" * 300
    assert not rules.decide(RULES, who("bob", "dba-lead"), request(long_name)).allowed
    with pytest.raises(PolicyError):
        rules.check_rule(odd)


def test_a_rule_must_say_what_and_who() -> None:
    with pytest.raises(ValueError):
        ReviewRule(roles=(), reviewer_users=("bob",))
    with pytest.raises(ValueError):
        ReviewRule(roles=("dba",))
    with pytest.raises(ValueError):
        ReviewRule(roles=("dba",), reviewer_users=("bob",), approvals=0)


def test_the_recorded_approvals_round_trip_and_garbage_is_refused() -> None:
    recorded = (Approval("bob", "slack", "looks fine"), Approval("carol", "mattermost"))
    assert approvals.decode(approvals.encode(recorded)) == recorded
    assert approvals.decode("") == ()
    assert approvals.delegator(recorded) == "slack:bob,mattermost:carol"
    for garbage in ("{", '{"user": "bob"}', '[{"platform": "slack"}]', "[1]"):
        with pytest.raises(approvals.LedgerError):
            approvals.decode(garbage)
