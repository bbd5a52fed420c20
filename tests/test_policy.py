"""Who may review or request which roles: Teleport-format roles against the bot's policy and matchers."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chatops_bot.devstack.seed import parse_role
from commands import matchers, policy
from commands.model import AccessRequest, ClaimMapping, RequestState, Role, Threshold, User


def roles_from(specs: str | dict[str, Any]) -> list[Role]:
    """Roles given as {name: spec} (or that as YAML), each parsed as a Teleport `kind: role` resource."""
    parsed: dict[str, Any] = yaml.safe_load(specs) if isinstance(specs, str) else specs
    return [
        parse_role({"kind": "role", "version": "v7", "metadata": {"name": n}, "spec": s})
        for n, s in parsed.items()
    ]


# Each row: the reviewer's roles ({name: Teleport role spec}), optional reviewer traits, the requested
# roles (alice's request) and the expected decision with a substring of its reason.
REVIEW_TABLE = r"""
- id: self-review
  roles: {reviewer: {allow: {review_requests: {roles: [dba]}}}}
  reviewer: alice
  request: [dba]
  expect: [false, you cannot review your own request]
- id: literal allow
  roles: {reviewer: {allow: {review_requests: {roles: [dba]}}}}
  request: [dba]
  expect: [true, allowed by your role reviewer]
- id: literal, other role
  roles: {reviewer: {allow: {review_requests: {roles: [dba]}}}}
  request: [dev]
  expect: [false, none of your roles allows reviewing requests for dev]
- id: glob
  roles: {r: {allow: {review_requests: {roles: ['db*']}}}}
  request: [dba]
  expect: [true, allowed]
- id: glob is anchored
  roles: {r: {allow: {review_requests: {roles: ['db*']}}}}
  request: [prod-db]
  expect: [false, none of your roles]
- id: regex
  roles: {r: {allow: {review_requests: {roles: ['^(dba|dev)$']}}}}
  request: [dev]
  expect: [true, allowed]
- id: regex is anchored by its ^ and $
  roles: {r: {allow: {review_requests: {roles: ['^(dba|dev)$']}}}}
  request: [dbax]
  expect: [false, none of your roles]
- id: regexp.match
  roles: {r: {allow: {review_requests: {roles: ['{{regexp.match("^db")}}']}}}}
  request: [dba]
  expect: [true, allowed]
- id: regexp.match searches like Go's MatchString
  roles: {r: {allow: {review_requests: {roles: ['{{regexp.match("ba")}}']}}}}
  request: [dba]
  expect: [true, allowed]
- id: regexp.match miss
  roles: {r: {allow: {review_requests: {roles: ['{{regexp.match("^prod")}}']}}}}
  request: [dba]
  expect: [false, none of your roles allows reviewing requests for dba]
- id: regexp.not_match
  roles: {r: {allow: {review_requests: {roles: ['{{regexp.not_match("prod")}}']}}}}
  request: [dba]
  expect: [true, allowed]
- id: regexp.not_match refuses a match
  roles: {r: {allow: {review_requests: {roles: ['{{regexp.not_match("prod")}}']}}}}
  request: [dba-prod]
  expect: [false, none of your roles]
- id: deny beats allow
  roles:
    all: {allow: {review_requests: {roles: ['*']}}}
    dba-deny: {deny: {review_requests: {roles: [dba]}}}
  request: [dba]
  expect: [false, your role dba-deny forbids reviewing requests for dba]
- id: deny beats allow in the same role
  roles: {r: {allow: {review_requests: {roles: ['*']}}, deny: {review_requests: {roles: [dba]}}}}
  request: [dba]
  expect: [false, your role r forbids]
- id: deny via glob
  roles:
    all: {allow: {review_requests: {roles: ['*']}}}
    no-prod: {deny: {review_requests: {roles: ['prod-*']}}}
  request: [dev, prod-db]
  expect: [false, your role no-prod forbids reviewing requests for prod-db]
- id: a deny glob leaves other roles reviewable
  roles:
    all: {allow: {review_requests: {roles: ['*']}}}
    no-prod: {deny: {review_requests: {roles: ['prod-*']}}}
  request: [dev]
  expect: [true, allowed by your role all]
- id: multi-role request, one role allowed
  roles: {reviewer: {allow: {review_requests: {roles: [dba]}}}}
  request: [dba, root]
  expect: [false, none of your roles allows reviewing requests for root]
- id: multi-role request, covered by two roles
  roles:
    reviewer: {allow: {review_requests: {roles: [dba]}}}
    other: {allow: {review_requests: {roles: [root]}}}
  request: [dba, root]
  expect: [true, "allowed by your role reviewer, other"]
- id: claims_to_roles with $1
  roles: {r: {allow: {review_requests: {claims_to_roles: [{claim: team, value: 'team-*', roles: ['$1']}]}}}}
  traits: {team: [team-dba]}
  request: [dba]
  expect: [true, allowed]
- id: claims_to_roles, other team
  roles: {r: {allow: {review_requests: {claims_to_roles: [{claim: team, value: 'team-*', roles: ['$1']}]}}}}
  traits: {team: [team-dev]}
  request: [dba]
  expect: [false, none of your roles]
- id: claims_to_roles without the trait
  roles: {r: {allow: {review_requests: {claims_to_roles: [{claim: team, value: 'team-*', roles: ['$1']}]}}}}
  request: [dba]
  expect: [false, you have no role that allows reviewing access requests]
- id: claims_to_roles yielding a glob
  roles: {r: {allow: {review_requests: {claims_to_roles: [{claim: groups, value: admins, roles: ['db*']}]}}}}
  traits: {groups: [admins]}
  request: [dba]
  expect: [true, allowed]
- id: deny via claims_to_roles
  roles:
    r:
      allow: {review_requests: {roles: ['*']}}
      deny: {review_requests: {claims_to_roles: [{claim: contractor, value: 'yes', roles: ['*']}]}}
  traits: {contractor: ['yes']}
  request: [dba]
  expect: [false, your role r forbids]
- id: where contains, true
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'contains(reviewer.traits["team"], "dba")'}}}}
  traits: {team: [dba]}
  request: [dba]
  expect: [true, allowed]
- id: where contains, false
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'contains(reviewer.traits["team"], "dba")'}}}}
  traits: {team: [dev]}
  request: [dba]
  expect: [false, none of your roles]
- id: where on a missing trait sees an empty list
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'contains(reviewer.traits.team, "dba")'}}}}
  request: [dba]
  expect: [false, none of your roles]
- id: where equals, true
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'equals(request.reason, "x")'}}}}
  reason: x
  request: [dba]
  expect: [true, allowed]
- id: where equals, false
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'equals(request.reason, "x")'}}}}
  reason: y
  request: [dba]
  expect: [false, none of your roles]
- id: where with !
  roles: {r: {allow: {review_requests: {roles: [dba], where: '!equals(request.reason, "x")'}}}}
  reason: y
  request: [dba]
  expect: [true, allowed]
- id: where with &&
  roles:
    r: {allow: {review_requests: {roles: [dba],
        where: 'contains(reviewer.roles, "r") && contains(request.roles, "dba")'}}}
  request: [dba]
  expect: [true, allowed]
- id: where with &&, false
  roles:
    r: {allow: {review_requests: {roles: [dba], where: 'contains(reviewer.roles, "r") && equals(request.reason, "x")'}}}
  request: [dba]
  expect: [false, none of your roles]
- id: where with ||
  roles:
    r: {allow: {review_requests: {roles: [dba],
        where: 'equals(request.reason, "x") || contains(reviewer.traits["team"], "dba")'}}}
  traits: {team: [dba]}
  request: [dba]
  expect: [true, allowed]
- id: where on a deny block, true
  roles:
    r:
      allow: {review_requests: {roles: ['*']}}
      deny: {review_requests: {roles: ['*'], where: 'contains(reviewer.traits["contractor"], "true")'}}
  traits: {contractor: ['true']}
  request: [dba]
  expect: [false, your role r forbids]
- id: where on a deny block, false
  roles:
    r:
      allow: {review_requests: {roles: ['*']}}
      deny: {review_requests: {roles: ['*'], where: 'contains(reviewer.traits["contractor"], "true")'}}
  request: [dba]
  expect: [true, allowed]
- id: where naming the review (not in the permission context) refuses
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'equals(review.reason, "x")'}}}}
  request: [dba]
  expect: [false, "cannot evaluate the where clause of role r: unknown identifier 'review'"]
- id: where with a type error refuses
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'equals(request.roles, "dba")'}}}}
  request: [dba]
  expect: [false, cannot evaluate the where clause of role r]
- id: a where Teleport cannot evaluate refuses even when another role allows
  roles:
    reviewer: {allow: {review_requests: {roles: [dba]}}}
    odd: {allow: {review_requests: {roles: [dba], where: 'equals(request.roles, "dba")'}}}
  request: [dba]
  expect: [false, cannot evaluate the where clause of role odd]
- id: contains on a string tests it as a one-element list, as Teleport does
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'contains(request.reason, "INC-1")'}}}}
  request: [dba]
  expect: [true, allowed by your role r]
- id: regexp.match in where
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'regexp.match(request.reason, "INC-*")'}}}}
  request: [dba]
  expect: [true, allowed by your role r]
- id: == in where
  roles: {r: {allow: {review_requests: {roles: [dba], where: 'request.reason == "INC-2"'}}}}
  request: [dba]
  expect: [false, none of your roles allows reviewing requests for dba]
- id: a where only the bot cannot evaluate leaves that role out; another role still allows
  roles:
    reviewer: {allow: {review_requests: {roles: [dba]}}}
    odd: {allow: {review_requests: {roles: ['*'], where: 'regexp.match(request.roles, "^(a+)+$")'}}}
  request: [dba]
  expect: [true, allowed by your role reviewer]
- id: a where only the bot cannot evaluate leaves that role out, and says so
  roles:
    reviewer: {allow: {review_requests: {roles: [dev]}}}
    odd: {allow: {review_requests: {roles: ['*'], where: 'regexp.match(request.roles, "^(a+)+$")'}}}
  request: [dba]
  expect: [false, "none of your roles allows reviewing requests for dba; the where clause of role odd could not be evaluated"]
- id: a deny where only the bot cannot evaluate refuses when its roles match
  roles:
    reviewer: {allow: {review_requests: {roles: [dba]}}}
    d: {deny: {review_requests: {roles: [dba], where: 'regexp.match(request.roles, "^(a+)+$")'}}}
  request: [dba]
  expect: [false, cannot evaluate the where clause of role d]
- id: a deny where only the bot cannot evaluate does not matter when its roles match none
  roles:
    reviewer: {allow: {review_requests: {roles: [dba]}}}
    d: {deny: {review_requests: {roles: [root], where: 'regexp.match(request.roles, "^(a+)+$")'}}}
  request: [dba]
  expect: [true, allowed by your role reviewer]
- id: an allow role the bot cannot evaluate is left out; another role still allows
  roles:
    reviewer: {allow: {review_requests: {roles: [dba]}}}
    odd: {allow: {review_requests: {roles: ['^(a+)+$']}}}
  request: [dba]
  expect: [true, allowed by your role reviewer]
- id: no review_requests at all
  roles: {plain: {allow: {logins: [ubuntu]}}}
  request: [dba]
  expect: [false, you have no role that allows reviewing access requests]
- id: preview_as_roles grants no review
  roles: {p: {allow: {review_requests: {preview_as_roles: [dba]}}}}
  request: [dba]
  expect: [false, you have no role that allows reviewing access requests]
- id: interpolation is refused as unsupported
  roles: {r: {allow: {review_requests: {roles: ['{{internal.logins}}', dba]}}}}
  request: [dba]
  expect: [false, cannot evaluate the review_requests rules of role r]
- id: interpolation in a deny block is refused too
  roles:
    reviewer: {allow: {review_requests: {roles: [dba]}}}
    d: {deny: {review_requests: {roles: ['{{external.team}}']}}}
  request: [dba]
  expect: [false, not interpolation]
- id: a catastrophic regex is refused
  roles: {r: {allow: {review_requests: {roles: ['^(a+)+$', dba]}}}}
  request: [dba]
  expect: [false, could backtrack]
- id: a broken template is refused
  roles: {r: {allow: {review_requests: {roles: ['{{regexp.match("a")']}}}}
  request: [dba]
  expect: [false, template brackets]
"""

REVIEW_ROWS = yaml.safe_load(REVIEW_TABLE)


@pytest.mark.parametrize("row", REVIEW_ROWS, ids=[row["id"] for row in REVIEW_ROWS])
def test_review_decision(row: dict[str, Any]) -> None:
    roles = roles_from(row["roles"])
    traits = {key: tuple(values) for key, values in row.get("traits", {}).items()}
    reviewer = User(row.get("reviewer", "bob"), tuple(role.name for role in roles), traits)
    request = AccessRequest(
        "id-1", "alice", tuple(row["request"]), RequestState.PENDING, reason=row.get("reason", "INC-1")
    )
    decision = policy.review_decision(reviewer, roles, request)
    allowed, reason = row["expect"]
    assert decision.allowed is allowed, decision.reason
    assert reason in decision.reason


def test_a_role_that_cannot_be_loaded_refuses() -> None:
    reviewer = User("bob", ("reviewer", "missing"))
    request = AccessRequest("id-1", "alice", ("dba",), RequestState.PENDING)
    decision = policy.review_decision(
        reviewer, roles_from("reviewer: {allow: {review_requests: {roles: [dba]}}}"), request
    )
    assert not decision.allowed
    assert "missing" in decision.reason and "refusing" in decision.reason


REQUESTER = """
base:
  allow:
    request:
      roles: [dba, 'dev-*']
      claims_to_roles: [{claim: groups, value: '^oncall-(.*)$', roles: ['$1-oncall']}]
      thresholds: [{name: two, approve: 2, deny: 1}]
      suggested_reviewers: [carol, dave]
      max_duration: 4h
no-root:
  deny:
    request:
      roles: [root, dev-secret]
"""


@pytest.mark.parametrize(
    ("requested", "allowed", "reason"),
    [
        (("dba",), True, "may request dba"),
        (("dev-web",), True, "may request"),
        (("root",), False, 'user alice may not request role "root"'),
        (("dev-secret",), False, 'may not request role "dev-secret" (denied by role no-root)'),
        (("dba", "prod"), False, 'may not request role "prod"'),
        (("db-oncall",), True, "may request"),
        (("web-oncall",), False, 'may not request role "web-oncall"'),
        ((), False, "no roles were requested"),
    ],
)
def test_request_permission(requested: tuple[str, ...], allowed: bool, reason: str) -> None:
    roles = roles_from(REQUESTER)
    alice = User("alice", ("base", "no-root"), {"groups": ("oncall-db",)})
    decision = policy.request_permission(alice, roles, requested)
    assert decision.allowed is allowed
    assert reason in decision.reason


def test_request_permission_refuses_unsupported_matchers() -> None:
    roles = roles_from("r: {allow: {request: {roles: ['{{internal.logins}}']}}}")
    decision = policy.request_permission(User("alice", ("r",)), roles, ["dba"])
    assert not decision.allowed
    assert "cannot evaluate the request rules of role r" in decision.reason


def test_request_settings_default_threshold_and_reviewers() -> None:
    roles = roles_from("r: {allow: {request: {roles: [dba], suggested_reviewers: [carol, carol, dave]}}}")
    settings = policy.request_settings(User("alice", ("r",)), roles, ["dba"])
    assert settings.thresholds == (Threshold("default", "", 1, 1),)
    assert dict(settings.role_threshold_mapping) == {"dba": ((0,),)}
    assert settings.suggested_reviewers == ("carol", "dave")
    assert settings.max_duration is None
    assert not settings.reason_required


def test_request_settings_one_set_per_granting_role_and_identical_thresholds_once() -> None:
    roles = roles_from(
        """
        a: {allow: {request: {roles: [dba], thresholds: [{approve: 2, deny: 1}, {filter: 'x', approve: 1}]}}}
        b: {allow: {request: {roles: ['db*', dev], thresholds: [{approve: 2, deny: 1}]}}}
        c: {allow: {request: {roles: [dev]}}}
        """
    )
    settings = policy.request_settings(User("alice", ("a", "b", "c")), roles, ["dba", "dev"])
    two, filtered, default = Threshold("", "", 2, 1), Threshold("", "x", 1, 0), Threshold("default", "", 1, 1)
    assert settings.thresholds == (two, filtered, default)
    assert dict(settings.role_threshold_mapping) == {"dba": ((0, 1), (0,)), "dev": ((0,), (2,))}


def test_request_settings_max_duration_most_generous_grant_then_strictest_role() -> None:
    roles = roles_from(
        """
        short: {allow: {request: {roles: [dba, dev], max_duration: 2h}}}
        long: {allow: {request: {roles: [dba], max_duration: 8h}}}
        """
    )
    user = User("alice", ("short", "long"))
    assert policy.request_settings(user, roles, ["dba"]).max_duration == timedelta(hours=8)
    assert policy.request_settings(user, roles, ["dba", "dev"]).max_duration == timedelta(hours=2)


@pytest.mark.parametrize(
    ("spec", "requested", "required", "source"),
    [
        (
            "{options: {request_access: reason}, allow: {request: {roles: [dba]}}}",
            ["dba"],
            True,
            "required request_access option in one of the roles",
        ),
        ("{options: {request_access: always}, allow: {request: {roles: [dba]}}}", ["dba"], False, ""),
        (
            "{allow: {request: {roles: [dba, dev], reason: {mode: required}}}}",
            ["dev"],
            True,
            'required for role "dev"',
        ),
        ("{allow: {request: {roles: ['db*'], reason: {mode: required}}}}", ["dba"], False, ""),
        ("{allow: {request: {roles: [dba], reason: {mode: optional}}}}", ["dba"], False, ""),
    ],
)
def test_request_settings_reason_rule(spec: str, requested: list[str], required: bool, source: str) -> None:
    roles = roles_from(f"r: {spec}")
    settings = policy.request_settings(User("alice", ("r",)), roles, requested)
    assert (settings.reason_required, settings.reason_source) == (required, source)


@pytest.mark.parametrize(
    ("expr", "value", "expected"),
    [
        ("dba", "dba", True),
        ("dba", "dbax", False),
        ("*", "anything", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "aXcYb", False),
        ("a.b", "aXb", False),
        ("^a.b$", "aXb", True),
        ("^a*b*c*$", "aabbcc", True),
        ('{{regexp.match("^a.*b")}}', "aXbY", True),
        ("^foo", "^foo", True),
        ('env-{{regexp.match("^(dev|stage)$")}}', "env-dev", True),
        ('env-{{regexp.match("^(dev|stage)$")}}', "env-prod", False),
        ("{{regexp.not_match(`prod`)}}", "dev", True),
    ],
)
def test_compile_matcher(expr: str, value: str, expected: bool) -> None:
    assert matchers.compile_matcher(expr).matches(value) is expected


@pytest.mark.parametrize(
    "expr",
    [
        "{{internal.logins}}",
        "{{email.local(external.email)}}",
        "^(?=a)b$",
        "^a\\1$",
        "^[[:alpha:]]$",
        "^a++$",
        "^(a|aa)*$",
        "^a{,3}$",
        "^a*b*c*d*$",
        '{{regexp.match("a*b*c*")}}',
        "^" + "a?" * 30 + "$",
        "x" * 600,
        "^\\pL$",
        '{{regexp.match("a")',
    ],
)
def test_compile_matcher_refuses(expr: str) -> None:
    with pytest.raises(matchers.MatcherError):
        matchers.compile_matcher(expr)


@pytest.mark.parametrize(
    "expr", ["^a*a*a*$", '{{regexp.match("a*a*c")}}', "^(a|b)?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a*$", "*a*a*a*c"]
)
@pytest.mark.parametrize("value", ["a" * 255 + "b", "-" * 256, "ab" * 128])
def test_accepted_patterns_stay_fast_on_hostile_values(expr: str, value: str) -> None:
    matcher = matchers.compile_matcher(expr)
    started = time.perf_counter()
    matcher.matches(value)
    assert time.perf_counter() - started < 0.5


def test_claims_to_roles_expands_captures_like_go() -> None:
    mappings = [
        ClaimMapping("groups", "^team-(?P<team>[a-z]+)$", ("${team}-reviewer", "$1x", "$$1", "static")),
        ClaimMapping("groups", "admins", ("admin",)),
    ]
    traits = {"groups": ("team-dba", "admins", "other")}
    # Go reads `$1x` as the (missing) group "1x", so it expands to nothing and is dropped.
    assert matchers.claims_to_roles(mappings, traits) == ["dba-reviewer", "$1", "static", "admin"]


def test_claims_to_roles_ignores_case_mismatches() -> None:
    mappings = [ClaimMapping("groups", "Admins", ("admin",))]
    assert matchers.claims_to_roles(mappings, {"groups": ("admins",)}) == []


def test_may_submit_for() -> None:
    roles = roles_from(
        """
        plugin: {allow: {review_requests: {submit_for_users: ['*']}}, deny: {review_requests: {submit_for_users: [root]}}}
        """
    )
    bot = User("chatops-bot", ("plugin",))
    assert policy.may_submit_for(bot, roles, "alice")
    assert not policy.may_submit_for(bot, roles, "root")
    assert not policy.may_submit_for(User("x", ("other",)), roles, "alice")


REGEX_PIECES = st.sampled_from(
    list("ab.*+?|()[]{},^$\\-:0129") + ["{{", "}}", "regexp.match(", '"', "(?", "[:"]
)


@settings(max_examples=800, deadline=None)
@given(
    st.one_of(st.text(max_size=60), st.lists(REGEX_PIECES, max_size=30).map("".join)), st.text(max_size=30)
)
def test_any_matcher_text_compiles_and_matches_or_is_refused(expr: str, value: str) -> None:
    try:
        outcome = matchers.compile_matcher(expr).matches(value)
    except matchers.PolicyError:
        return
    assert isinstance(outcome, bool)


@settings(max_examples=300, deadline=None)
@given(st.lists(REGEX_PIECES, max_size=20).map("".join), st.text(max_size=20), st.text(max_size=20))
def test_any_claim_mapping_yields_roles_or_is_refused(value: str, role: str, trait: str) -> None:
    try:
        roles = matchers.claims_to_roles([ClaimMapping("c", value, (role,))], {"c": (trait,)})
    except matchers.PolicyError:
        return
    assert all(isinstance(name, str) and name for name in roles)
