"""How reviews resolve a request in the devstack Teleport, and the Teleport-format seed it starts from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatops_bot.devstack import semantics
from chatops_bot.devstack.seed import Seed, SeedError, load_seed
from commands.errors import AccessDenied, AlreadyExists, BadParameter, NotImplementedByServer
from commands.model import AccessRequest, RequestState, Review, Threshold

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

SEED = """
- {kind: role, version: v7, metadata: {name: requester-default}, spec: {allow: {request: {roles: [dba, dev]}}}}
- kind: role
  version: v7
  metadata: {name: requester-two}
  spec: {allow: {request: {roles: [dba], thresholds: [{name: two, approve: 2, deny: 2}]}}}
- kind: role
  version: v7
  metadata: {name: requester-senior}
  spec:
    allow:
      request:
        roles: [dba]
        thresholds:
          - {name: senior, approve: 1, deny: 1, filter: 'contains(reviewer.traits["level"], "senior")'}
- kind: role
  version: v7
  metadata: {name: requester-filter-error}
  spec: {allow: {request: {roles: [dba], thresholds: [{approve: 1, filter: 'review.reason'}]}}}
- {kind: role, version: v7, metadata: {name: reviewer}, spec: {allow: {review_requests: {roles: ['*']}}}}
- {kind: role, version: v7, metadata: {name: dba-reviewer}, spec: {allow: {review_requests: {roles: [dba]}}}}
- {kind: role, version: v7, metadata: {name: dba}, spec: {}}
- {kind: role, version: v7, metadata: {name: dev}, spec: {}}
- {kind: user, version: v2, metadata: {name: alice}, spec: {roles: [requester-default]}}
- {kind: user, version: v2, metadata: {name: bob}, spec: {roles: [reviewer], traits: {level: [senior]}}}
- {kind: user, version: v2, metadata: {name: carol}, spec: {roles: [reviewer], traits: {level: [junior]}}}
- {kind: user, version: v2, metadata: {name: dave}, spec: {roles: [reviewer]}}
- {kind: user, version: v2, metadata: {name: erin}, spec: {roles: [dba-reviewer]}}
"""


@pytest.fixture(scope="module")
def seed() -> Seed:
    return load_seed(SEED)


def new_request(seed: Seed, requester_roles: tuple[str, ...], roles: tuple[str, ...]) -> AccessRequest:
    alice = replace(seed.users["alice"], roles=requester_roles)
    thresholds, mapping = semantics.compute_thresholds(alice, [seed.roles[r] for r in requester_roles], roles)
    return AccessRequest(
        "8f9c2f7e-0000-7000-8000-000000000001", "alice", roles, RequestState.PENDING,
        created=NOW, access_expires=NOW + timedelta(hours=8), resource_expiry=NOW + timedelta(hours=1),
        reason="INC-1", thresholds=thresholds, role_threshold_mapping=mapping,
    )  # fmt: skip


def review(
    seed: Seed, request: AccessRequest, author: str, state: RequestState, reason: str = ""
) -> AccessRequest:
    user = seed.users[author]
    return semantics.apply_review(
        request, Review(author, state, reason), user, [seed.roles[r] for r in user.roles], now=NOW
    )


APPROVE, DENY = RequestState.APPROVED, RequestState.DENIED


def test_default_threshold_one_approval_approves(seed: Seed) -> None:
    request = new_request(seed, ("requester-default",), ("dba",))
    assert request.thresholds == (Threshold("default", "", 1, 1),)
    approved = review(seed, request, "bob", APPROVE, "ok for INC-1")
    assert approved.state is APPROVE
    assert approved.resolve_reason == "ok for INC-1"
    assert approved.reviews[0].threshold_indexes == (0,)
    assert approved.reviews[0].created == NOW
    assert approved.resource_expiry == approved.access_expires


def test_default_threshold_one_denial_denies(seed: Seed) -> None:
    denied = review(seed, new_request(seed, ("requester-default",), ("dba",)), "bob", DENY, "not now")
    assert (denied.state, denied.resolve_reason) == (DENY, "not now")


def test_approve_two_needs_two_distinct_reviewers(seed: Seed) -> None:
    request = new_request(seed, ("requester-two",), ("dba",))
    once = review(seed, request, "bob", APPROVE, "first")
    assert once.state is RequestState.PENDING
    with pytest.raises(AlreadyExists, match="has already reviewed"):
        review(seed, once, "bob", APPROVE)
    twice = review(seed, once, "carol", APPROVE, "second")
    assert (twice.state, twice.resolve_reason) == (APPROVE, "second")


def test_a_filtered_threshold_counts_only_matching_reviewers(seed: Seed) -> None:
    request = new_request(seed, ("requester-senior",), ("dba",))
    junior = review(seed, request, "carol", APPROVE, "junior says yes")
    assert junior.reviews[0].threshold_indexes == ()
    assert junior.state is RequestState.PENDING
    unlabelled = review(seed, junior, "dave", DENY, "no trait, no count")
    assert unlabelled.state is RequestState.PENDING
    senior = review(seed, unlabelled, "bob", APPROVE, "senior approves")
    assert senior.reviews[-1].threshold_indexes == (0,)
    assert (senior.state, senior.resolve_reason) == (APPROVE, "senior approves")


def test_denied_at_the_first_deny_threshold_reached(seed: Seed) -> None:
    # dba carries two sets: the default (deny 1) and "two" (deny 2); one denial hits the default.
    request = new_request(seed, ("requester-default", "requester-two"), ("dba",))
    assert len(request.role_threshold_mapping["dba"]) == 2
    approved_once = review(seed, request, "bob", APPROVE, "yes")
    assert approved_once.state is RequestState.PENDING  # "two" still needs a second approval
    denied = review(seed, approved_once, "carol", DENY, "too broad")
    assert (denied.state, denied.resolve_reason) == (DENY, "too broad")


def test_a_multi_role_request_is_approved_only_when_every_role_is(seed: Seed) -> None:
    request = new_request(seed, ("requester-default", "requester-two"), ("dba", "dev"))
    # dev needs the default threshold only; dba needs both the default and "two".
    first = review(seed, request, "bob", APPROVE, "first")
    assert first.state is RequestState.PENDING
    second = review(seed, first, "carol", APPROVE, "second")
    assert (second.state, second.resolve_reason) == (APPROVE, "second")


def test_resolution_replays_reviews_in_order() -> None:
    thresholds = (Threshold("a", "", 2, 2),)
    request = AccessRequest(
        "id", "alice", ("dba",), RequestState.PENDING, thresholds=thresholds,
        role_threshold_mapping={"dba": ((0,),)},
        reviews=(Review("b", APPROVE, "1", threshold_indexes=(0,)), Review("c", DENY, "2", threshold_indexes=(0,)),
                 Review("d", DENY, "3", threshold_indexes=(0,))),
    )  # fmt: skip
    assert semantics.resolution(request) == (DENY, "3")
    approving = replace(
        request, reviews=(*request.reviews[:2], Review("d", APPROVE, "4", threshold_indexes=(0,)))
    )
    assert semantics.resolution(approving) == (APPROVE, "4")
    assert semantics.resolution(replace(request, reviews=request.reviews[:1])) is None


def test_reviews_are_checked_like_teleport(seed: Seed) -> None:
    request = new_request(seed, ("requester-default",), ("dba",))
    with pytest.raises(AccessDenied, match="cannot review your own request"):
        review(seed, request, "alice", APPROVE)
    dev_request = new_request(seed, ("requester-default",), ("dev",))
    with pytest.raises(AccessDenied, match="none of your roles allows reviewing requests for dev"):
        review(seed, dev_request, "erin", APPROVE)
    with pytest.raises(BadParameter, match="invalid state proposal"):
        review(seed, request, "bob", RequestState.PENDING)
    with pytest.raises(BadParameter, match="mismatched review author"):
        semantics.apply_review(request, Review("carol", APPROVE), seed.users["bob"], [seed.roles["reviewer"]])
    with pytest.raises(NotImplementedByServer, match="role subselection"):
        semantics.apply_review(
            new_request(seed, ("requester-default",), ("dba", "dev")),
            Review("bob", APPROVE, roles=("dba",)),
            seed.users["bob"],
            [seed.roles["reviewer"]],
        )
    resolved = review(seed, request, "bob", APPROVE)
    with pytest.raises(AccessDenied, match="the access request has been already approved"):
        review(seed, resolved, "carol", APPROVE)
    with pytest.raises(AlreadyExists, match="has already reviewed"):
        review(seed, resolved, "bob", DENY)  # Teleport checks the author before the state


def test_an_undecidable_threshold_filter_rejects_the_review(seed: Seed) -> None:
    request = new_request(seed, ("requester-filter-error",), ("dba",))
    with pytest.raises(BadParameter, match="invalid threshold filter"):
        review(seed, request, "bob", APPROVE)


def test_compute_thresholds_refuses_a_role_nobody_grants(seed: Seed) -> None:
    with pytest.raises(BadParameter, match='role "root" matches no threshold sets'):
        semantics.compute_thresholds(seed.users["alice"], [seed.roles["requester-default"]], ["root"])


# --- the seed file the stand-in starts from ---------------------------------------------------------

FULL_ROLE = """
kind: role
version: v7
metadata: {name: dba-requester, description: ignored}
spec:
  options: {max_session_ttl: 8h30m, request_access: reason, request_prompt: 'Ticket?', forward_agent: true}
  allow:
    logins: [ubuntu]
    node_labels: {env: dev}
    rules: [{resources: [access_request], verbs: [list, read], where: 'contains(user.spec.roles, "x")'}]
    impersonate: {users: [alice], roles: [dba], where: 'true'}
    request:
      roles: [dba]
      claims_to_roles: [{claim: groups, value: 'oncall-*', roles: ['$1']}]
      thresholds: [{name: two, approve: 2, deny: 1, filter: 'contains(reviewer.roles, "sre")'}]
      suggested_reviewers: [carol]
      search_as_roles: [access]
      max_duration: 90m
      annotations: {pagerduty_services: [db]}
      reason: {mode: required}
    review_requests:
      roles: [dev]
      claims_to_roles: [{claim: team, value: dba, roles: [dba]}]
      where: 'contains(reviewer.traits["team"], "dba")'
      preview_as_roles: [access]
      submit_for_users: ['*']
  deny:
    request: {roles: [root]}
    review_requests: {roles: [root]}
"""


def test_a_full_teleport_role_parses() -> None:
    seed = load_seed(FULL_ROLE + "---\n" + SEED)
    role = seed.roles["dba-requester"]
    assert role.max_session_ttl == timedelta(hours=8, minutes=30)
    assert (role.request_access, role.request_prompt) == ("reason", "Ticket?")
    request = role.allow.request
    assert request is not None and request.roles == ("dba",)
    assert request.claims_to_roles[0].roles == ("$1",)
    assert request.thresholds == (Threshold("two", 'contains(reviewer.roles, "sre")', 2, 1),)
    assert (request.max_duration, request.reason_mode) == (timedelta(minutes=90), "required")
    review_rules = role.allow.review_requests
    assert review_rules is not None and review_rules.where == 'contains(reviewer.traits["team"], "dba")'
    assert review_rules.submit_for_users == ("*",)
    assert role.allow.rules[0].verbs == ("list", "read")
    assert (role.allow.impersonate_users, role.allow.impersonate_roles) == (("alice",), ("dba",))
    assert role.deny.request is not None and role.deny.request.roles == ("root",)
    assert seed.users["bob"].traits == {"level": ("senior",)}


def test_a_seed_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED)
    assert (
        set(load_seed(path).users)
        == set(load_seed(str(path)).users)
        == {"alice", "bob", "carol", "dave", "erin"}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {kind: role, version: v7, spec: {}}", "resource #1: metadata.name: is required"),
        ("- {kind: role, version: v9, metadata: {name: r}}", "role 'r': version: expected one of v3"),
        ("- {kind: node, version: v2, metadata: {name: n}}", "resource #1: kind: expected role or user"),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {allow: {request: {role: [dba]}}}}",
            "role 'r': spec.allow.request.role: unknown key",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {allow: {request: {roles: dba}}}}",
            "role 'r': spec.allow.request.roles: expected a list of strings",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {allow: {request: {thresholds: [{approve: yes}]}}}}",
            "role 'r': spec.allow.request.thresholds[0].approve: expected a whole number",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {allow: {request: {thresholds: [{deny: -1}]}}}}",
            "spec.allow.request.thresholds[0].deny: expected a whole number",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {deny: {request: {thresholds: [{deny: 1}]}}}}",
            "spec.deny.request.thresholds: deny.request cannot contain thresholds",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {options: {max_session_ttl: 8 hours}}}",
            "role 'r': spec.options.max_session_ttl: expected a duration like 8h",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {options: {request_access: sometimes}}}",
            "spec.options.request_access: expected one of optional, note, always, reason",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {allow: {request: {reason: {mode: maybe}}}}}",
            "spec.allow.request.reason.mode: expected one of optional, required",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {allow: {review_requests: {where: [x]}}}}",
            "spec.allow.review_requests.where: expected a string",
        ),
        (
            "- {kind: role, version: v7, metadata: {name: r}, spec: {allow: {request: {claims_to_roles: [{value: x}]}}}}",
            "spec.allow.request.claims_to_roles[0].claim: is required",
        ),
        (
            "- {kind: user, version: v2, metadata: {name: u}, spec: {traits: {team: dba}}}",
            "user 'u': spec.traits.team: expected a list of strings",
        ),
        (
            "- {kind: user, version: v2, metadata: {name: u}, spec: {roles: [ghost]}}",
            "user 'u': spec.roles: role 'ghost' is not defined in the seed",
        ),
        (
            "- {kind: user, version: v2, metadata: {name: u}}\n- {kind: user, version: v2, metadata: {name: u}}",
            "user 'u': metadata.name: defined twice",
        ),
        ("- kind: role\n  version: [v7", "the seed is not valid YAML"),
    ],
)
def test_seed_errors_name_the_resource_and_key(text: str, message: str) -> None:
    with pytest.raises(SeedError) as caught:
        load_seed(text)
    assert message in str(caught.value)
