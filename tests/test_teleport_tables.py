"""Teleport's own test tables for access requests, ported: the bot's rules and the devstack's against Teleport's.

The cases are facts read from Teleport 18.0's `lib/services/access_request_test.go`; the tests are ours.
Every pytest id is `<Go test>/<Go case>` so a failure can be traced to the Go table. They run against
`commands/` (`policy.review_decision` is Teleport's CanReviewRequest, `where` its predicate parsers,
`lifetimes` its TTL rules) and against the devstack (`store.prepare` is validate(), `semantics.apply_review`
is ApplyAccessReview), and through real gRPC where the case is about what the RPC answers.

Go cases with no counterpart here, and why:

- TestReviewThresholds/"trying to approve a request with assumeStartTime past expiry": the bot's review
  model carries no assume start time, and the bot never sends one.
- TestReasonRequired, the seven "resource request: ..." cases: the bot and the devstack make role requests
  only; resource-based requests (search_as_roles over nodes) are not modelled.
- TestReasonRequired's CalculateAccessCapabilities half for those same resource cases, for the same reason.

Counted here: TestReviewThresholds 15 of 16 cases (twice: in process and over gRPC),
TestThresholdReviewFilter 31 expressions, TestReasonRequired 7 of 14 cases, TestValidate_RequestedMaxDuration
13, TestCalculatePendingRequestTTL 8, TestSessionTTL 3 (twice: the rule, and over gRPC), and
TestValidate_RequestedPendingTTLAndMaxDuration 1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatops_bot.devstack import semantics
from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.store import Store
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport import convert
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from commands import lifetimes, policy, where
from commands.errors import AccessDenied, BadParameter
from commands.model import AccessRequest, RequestState, Review

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
PENDING, APPROVE, DENY, PROMOTE = (
    RequestState.PENDING, RequestState.APPROVED, RequestState.DENIED, RequestState.PROMOTED
)  # fmt: skip
REQUEST_ID = "0195a0c0-0000-7000-8000-000000000001"


def seed_of(roles: dict[str, Any], users: dict[str, list[str]]) -> Seed:
    """A devstack seed from {role: Teleport role spec} and {user: [roles]}."""
    documents = [{"kind": "role", "version": "v7", "metadata": {"name": n}, "spec": s} for n, s in roles.items()]
    documents += [
        {"kind": "user", "version": "v2", "metadata": {"name": n}, "spec": {"roles": r}} for n, r in users.items()
    ]
    return load_seed(yaml.safe_dump(documents))


def new_request(user: str, roles: tuple[str, ...], **fields: Any) -> AccessRequest:
    return AccessRequest(REQUEST_ID, user, roles, PENDING, **fields)


# --- TestReviewThresholds ---------------------------------------------------------------------------

THRESHOLD_ROLES = yaml.safe_load(
    r"""
dictator: {}
never: {}
populist:
  allow:
    request:
      roles: [dictator]
      annotations: {mechanism: [uprising, consensus]}
      thresholds:
        - {name: overwhelming consensus, approve: 3}
        - {name: popular uprising, filter: 'contains(reviewer.roles,"proletariat")', approve: 2, deny: 2}
general:
  allow:
    request:
      roles: [dictator]
      annotations: {mechanism: [coup, consensus]}
      thresholds:
        - {name: overwhelming consensus, approve: 3}
        - {name: bloodless coup, filter: 'contains(reviewer.roles,"military")', approve: 2, deny: 2}
conqueror:
  allow: {request: {roles: [dictator], annotations: {mechanism: [treachery]}}}
rationalist:
  allow:
    request:
      roles: [dictator]
      annotations: {mechanism: [consensus]}
      thresholds:
        - name: rational consensus
          filter: 'regexp.match(request.reason, "*good*") && regexp.match(review.reason, "*good*")'
          approve: 1
idealist:
  allow: {request: {roles: [never], thresholds: [{name: reality check, deny: 1}]}}
proletariat:
  allow:
    review_requests:
      roles: [dictator]
      where: 'contains(request.system_annotations["mechanism"],"uprising")'
intelligentsia:
  allow:
    review_requests:
      roles: [dictator, never]
      where: 'contains(request.system_annotations["mechanism"],"consensus") && regexp.match(request.reason, "*good*")'
military:
  allow:
    review_requests:
      roles: [dictator]
      where: >-
        contains(request.system_annotations["mechanism"],"coup")
        || contains(request.system_annotations["mechanism"],"treachery")
"""
)
THRESHOLD_USERS = {
    "alice": ["populist", "proletariat", "intelligentsia", "military"],
    "carol": ["conqueror", "proletariat", "intelligentsia", "military"],
    "erika": ["populist", "idealist"],
    "bob": ["general", "proletariat", "intelligentsia", "military"],
    "dave": ["populist", "general", "conqueror"],
    "frank": ["rationalist"],
}


@dataclass(frozen=True)
class Step:
    """One review: by a named user, or by a fresh user holding `roles` (Go's `g.user(t, roles...)`)."""

    author: str | tuple[str, ...]
    propose: RequestState = PENDING
    expect: RequestState = PENDING
    no_review: bool = False
    reason: str = ""
    error: str = ""  # Teleport's AccessDenied message, when the review must be refused with it


@dataclass(frozen=True)
class ThresholdCase:
    desc: str
    requestor: str
    steps: tuple[Step, ...]
    reason: str = ""
    roles: tuple[str, ...] = ("dictator",)


GOOD = "some very good reason"
PIM = ("proletariat", "intelligentsia", "military")
THRESHOLD_CASES = [
    ThresholdCase("populist approval via multi-threshold match", "alice", reason=GOOD, steps=(
        Step("alice", no_review=True),
        Step(("military",), no_review=True),
        Step(PIM, APPROVE),
        Step(PIM, DENY),
        Step(PIM, APPROVE, APPROVE),
    )),
    ThresholdCase("trying to deny an already approved request", "alice", reason=GOOD, steps=(
        Step("alice", no_review=True),
        Step(("military",), no_review=True),
        Step(PIM, APPROVE),
        Step(PIM, DENY),
        Step(PIM, APPROVE, APPROVE),
        Step(PIM, DENY, APPROVE, error="the access request has been already approved"),
    )),
    ThresholdCase("trying to approve an already denied request", "bob", steps=(
        Step(("military",), DENY),
        Step(("military",), DENY, DENY),
        Step(("military",), APPROVE, DENY, error="the access request has been already denied"),
    )),
    ThresholdCase("intelligentsia cannot review without reason", "alice", steps=(
        Step(("intelligentsia",), APPROVE, no_review=True),
    )),
    ThresholdCase("populist approval via consensus threshold", "alice", reason=GOOD, steps=(
        Step(("intelligentsia",), APPROVE),
        Step(("proletariat",), APPROVE),
        Step(("proletariat",), DENY),
        Step(("intelligentsia",), DENY),
        Step(("intelligentsia",), APPROVE, APPROVE),
    )),
    ThresholdCase("general denial via coup threshold", "bob", reason=GOOD, steps=(
        Step("bob", no_review=True),
        Step(("intelligentsia",), APPROVE),
        Step(("military",), APPROVE),
        Step(("proletariat",), no_review=True),
        Step(("military",), DENY),
        Step(("intelligentsia",), DENY),
        Step(("military",), DENY, DENY),
    )),
    ThresholdCase("conqueror approval via default threshold", "carol", reason=GOOD, steps=(
        Step("carol", no_review=True),
        Step(("proletariat",), no_review=True),
        Step(("intelligentsia",), no_review=True),
        Step(("military",), APPROVE, APPROVE),
    )),
    ThresholdCase("conqueror denial via default threshold", "carol", steps=(
        Step(("military",), DENY, DENY),
    )),
    ThresholdCase("multi-role requestor approval via separate threshold matches", "dave", reason=GOOD, steps=(
        Step(("military",), APPROVE),
        Step(("proletariat",), APPROVE),
        Step(("intelligentsia",), APPROVE, APPROVE),
    )),
    ThresholdCase("multi-role requestor approval via multi-threshold match", "dave", steps=(
        Step(("military", "proletariat"), APPROVE),
        Step(("military", "proletariat"), APPROVE, APPROVE),
    )),
    ThresholdCase("multi-role requestor denial via short-circuit on default", "dave", reason=GOOD, steps=(
        Step(("intelligentsia",), DENY, DENY),
    )),
    ThresholdCase("threshold omission related sanity-check", "erika", reason=GOOD, roles=("dictator", "never"),
                  steps=(Step(("intelligentsia",), DENY, DENY),)),
    ThresholdCase("threshold omission check", "erika", reason=GOOD, steps=(
        Step(("intelligentsia",), DENY),
        Step(("intelligentsia",), APPROVE),
        Step(("proletariat",), DENY),
        Step(("proletariat",), APPROVE),
    )),
    ThresholdCase("promoted skips the threshold check", "bob", reason=GOOD, steps=(
        Step(("intelligentsia",), PROMOTE, PROMOTE),
    )),
    ThresholdCase("rationalist approval with valid reasons", "frank", reason=GOOD, steps=(
        Step(("intelligentsia",), APPROVE, PENDING, reason="frank is just okay"),
        Step(("intelligentsia",), APPROVE, APPROVE, reason="frank is pretty good"),
    )),
]  # fmt: skip


def _author(case_index: int, step_index: int, step: Step) -> str:
    return step.author if isinstance(step.author, str) else f"reviewer-{case_index}-{step_index}"


THRESHOLD_SEED_USERS = dict(THRESHOLD_USERS)
for _c, _case in enumerate(THRESHOLD_CASES):
    for _s, _step in enumerate(_case.steps):
        if not isinstance(_step.author, str):
            THRESHOLD_SEED_USERS[_author(_c, _s, _step)] = list(_step.author)
THRESHOLD_SEED = seed_of(THRESHOLD_ROLES, THRESHOLD_SEED_USERS)
THRESHOLD_IDS = [f"TestReviewThresholds/{case.desc}" for case in THRESHOLD_CASES]


@pytest.mark.parametrize("case_index", range(len(THRESHOLD_CASES)), ids=THRESHOLD_IDS)
def test_review_thresholds(case_index: int) -> None:
    """CanReviewRequest is the bot's own check (commands.policy); validate and ApplyAccessReview the devstack's."""
    case = THRESHOLD_CASES[case_index]
    store = Store(THRESHOLD_SEED, clock=lambda: NOW)
    request = store.prepare(
        new_request(case.requestor, case.roles, reason=case.reason), caller_expires=NOW + 8 * HOUR, keep_id=True
    )
    for step_index, step in enumerate(case.steps):
        name = _author(case_index, step_index, step)
        reviewer = THRESHOLD_SEED.users[name]
        roles = store.roles_of(reviewer)
        decision = policy.review_decision(reviewer, roles, request)
        assert decision.allowed is not step.no_review, (step_index, decision.reason)
        if step.no_review:
            continue
        review = Review(name, step.propose, step.reason)
        if step.error:
            with pytest.raises(AccessDenied, match=step.error):
                semantics.apply_review(request, review, reviewer, roles, now=NOW)
        else:
            request = semantics.apply_review(request, review, reviewer, roles, now=NOW)
        assert request.state is step.expect, step_index


@pytest.fixture
async def threshold_cluster(cluster_ca: ClusterCA) -> AsyncIterator[DevTeleport]:
    server = DevTeleport(THRESHOLD_SEED, ca=cluster_ca)
    await server.start("127.0.0.1:0")
    yield server
    await server.stop()


@pytest.fixture
async def clients(threshold_cluster: DevTeleport, tmp_path: Path) -> AsyncIterator[Callable[..., TeleportClient]]:
    made: dict[str, TeleportClient] = {}

    def client(user: str) -> TeleportClient:
        if user not in made:
            path = tmp_path / f"{user}.pem"
            write_identity_file(threshold_cluster.identity(user), path)
            made[user] = TeleportClient(threshold_cluster.addr, IdentitySource(identity_file=str(path)), timeout=5.0)
        return made[user]

    yield client
    for each in made.values():
        await each.close()


@pytest.mark.parametrize("case_index", range(len(THRESHOLD_CASES)), ids=THRESHOLD_IDS)
async def test_review_thresholds_over_grpc(case_index: int, clients: Callable[..., TeleportClient]) -> None:
    """The same reviews submitted by each reviewer to the devstack: what SubmitAccessReview answers."""
    case = THRESHOLD_CASES[case_index]
    request = await clients(case.requestor).create_request(user=case.requestor, roles=case.roles, reason=case.reason)
    for step_index, step in enumerate(case.steps):
        reviewer = clients(_author(case_index, step_index, step))
        review = Review("", step.propose if not step.no_review else APPROVE, step.reason)
        if step.propose is PROMOTE:
            # Teleport's RPC refuses a promotion (lib/auth/auth_with_roles.go); only access lists promote.
            with pytest.raises(BadParameter, match="state promoted can be only set when promoting"):
                await reviewer.submit_review(request.id, review)
            continue
        if step.no_review or step.error:
            with pytest.raises(AccessDenied, match=step.error or "cannot review this request"):
                await reviewer.submit_review(request.id, review)
            continue
        request = await reviewer.submit_review(request.id, review)
        assert request.state is step.expect, step_index


def test_review_thresholds_system_annotations() -> None:
    """What the review rules above read: validate() attaches the requester's roles' annotations."""
    store = Store(THRESHOLD_SEED, clock=lambda: NOW)
    forged = new_request("dave", ("dictator",), system_annotations={"mechanism": ("forged",)})
    request = store.prepare(forged, caller_expires=None, keep_id=True)
    assert dict(request.system_annotations) == {"mechanism": ("consensus", "coup", "treachery", "uprising")}
    # erika's idealist annotates nothing and allows only `never`; populist's apply to dictator alone.
    erika = store.prepare(new_request("erika", ("never",)), caller_expires=None, keep_id=True)
    assert dict(erika.system_annotations) == {}


# --- TestThresholdReviewFilter ------------------------------------------------------------------------

EXAMPLE_CONTEXT = {
    "reviewer": {"roles": ("dev",), "traits": {"teams": ("staging-admin",)}},
    "review": {"reason": "ok", "annotations": {"constraints": ("no-admin",)}},
    "request": {"roles": ("dev",), "reason": "Ticket 123", "system_annotations": {"teams": ("staging-dev",)}},
}
ZERO_CONTEXT = {
    "reviewer": {"roles": (), "traits": {}},
    "review": {"reason": "", "annotations": {}},
    "request": {"roles": (), "reason": "", "system_annotations": {}},
}
FILTER_TABLE = [
    ("example", EXAMPLE_CONTEXT, True, [
        'contains(reviewer.roles,"dev")',
        'contains(reviewer.traits["teams"],"staging-admin") && contains(request.system_annotations["teams"],"staging-dev")',
        '!contains(review.annotations["constraints"],"no-admin") || !contains(request.roles,"admin")',
        'equals(request.reason,"Ticket 123") && equals(review.reason,"ok")',
        'contains(reviewer.roles,"admin") || contains(reviewer.roles,"dev")',
        '!(contains(reviewer.roles,"foo") || contains(reviewer.roles,"bar"))',
        'regexp.match(request.roles, "^dev(elopers)?$")',
        'regexp.match(request.reason, "^Ticket [0-9]+.*$") && !equals(review.reason, "")',
    ]),
    ("example", EXAMPLE_CONTEXT, False, [
        'contains(reviewer.roles, "admin")',
        "equals(request.reason,review.reason)",
        '!contains(reviewer.traits["teams"],"staging-admin")',
        'contains(reviewer.roles,"admin") && contains(reviewer.roles,"dev")',
    ]),
    ("zero", ZERO_CONTEXT, True, [
        "equals(request.reason,review.reason)",
        '!contains(reviewer.traits["teams"],"staging-admin")',
        '!contains(review.annotations["constraints"],"no-admin") || !contains(request.roles,"admin")',
        '!(contains(reviewer.roles,"foo") || contains(reviewer.roles,"bar"))',
    ]),
    ("zero", ZERO_CONTEXT, False, [
        'contains(reviewer.roles, "admin")',
        'contains(reviewer.roles,"admin") && contains(reviewer.roles,"dev")',
        'contains(reviewer.roles,"dev")',
        'contains(reviewer.traits["teams"],"staging-admin") && contains(request.system_annotations["teams"],"staging-dev")',
        'equals(request.reason,"plz") && equals(review.reason,"ok")',
        'contains(reviewer.roles,"admin") || contains(reviewer.roles,"dev")',
        'regexp.match(request.roles, "^dev(elopers)?$")',
        'regexp.match(request.reason, "^Ticket [0-9]+.*$") && !equals(review.reason, "")',
    ]),
]  # fmt: skip
FILTER_ROWS = [(ctx, expected, expr) for _, ctx, expected, exprs in FILTER_TABLE for expr in exprs]
FILTER_IDS = [
    f"TestThresholdReviewFilter/{name}/{'willMatch' if expected else 'wontMatch'}/{expr}"
    for name, _, expected, exprs in FILTER_TABLE
    for expr in exprs
]
WONT_PARSE = [
    'equals(fully.fake.path,"should-fail")',
    'fakefunc(reviewer.roles,"some-role")',
    'equals("too","many","params")',
    'contains("missing-param")',
    'contains(reviewer.partially.fake.path,"also fails")',
    "!",
    "&& missing-left",
]


@pytest.mark.parametrize(("context", "expected", "expr"), FILTER_ROWS, ids=FILTER_IDS)
def test_threshold_review_filter(context: dict[str, Any], expected: bool, expr: str) -> None:
    assert where.evaluate(expr, context) is expected


@pytest.mark.parametrize("expr", WONT_PARSE, ids=[f"TestThresholdReviewFilter/zero/wontParse/{e}" for e in WONT_PARSE])
def test_threshold_review_filter_wont_parse(expr: str) -> None:
    # Teleport refuses these when it parses, whatever the data: so must we, and not as a limit of ours.
    for context in (ZERO_CONTEXT, EXAMPLE_CONTEXT):
        with pytest.raises(where.WhereError) as caught:
            where.evaluate(expr, context)
        assert not isinstance(caught.value, where.Undecidable)


# --- TestReasonRequired (role requests) ---------------------------------------------------------------

REASON_ROLES = yaml.safe_load(
    """
cutlery-access: {allow: {node_labels: {cutlery: ['*']}}}
fork-access: {allow: {node_labels: {cutlery: [fork]}}}
cutlery-access-requester: {allow: {request: {roles: [cutlery-access]}}}
cutlery-node-requester: {allow: {request: {search_as_roles: [cutlery-access], reason: {mode: optional}}}}
fork-node-requester: {allow: {request: {search_as_roles: [fork-access]}}}
fork-node-requester-with-reason: {allow: {request: {search_as_roles: [fork-access], reason: {mode: required}}}}
fork-access-requester: {allow: {request: {roles: [fork-access]}}}
fork-access-requester-with-reason: {allow: {request: {roles: [fork-access], reason: {mode: required}}}}
"""
)
FORK_REASON = 'request reason must be specified (required for role "fork-access")'
REASON_CASES = [
    ("role request: require reason when role has reason.required",
     ["fork-access-requester-with-reason"], ("fork-access",), FORK_REASON),
    ("role request: do not require reason when role does not have reason.required",
     ["fork-access-requester"], ("fork-access",), ""),
    ("role request: require reason when _any_ role has reason.required",
     ["fork-access-requester", "fork-access-requester-with-reason", "cutlery-access-requester"], ("fork-access",),
     FORK_REASON),
    ("role request: do not require reason when all roles don't have reason.required",
     ["fork-access-requester", "cutlery-access-requester"], ("fork-access",), ""),
    ("role request: require reason when _any_ role with reason.required matches _any_ roles",
     ["fork-access-requester-with-reason", "cutlery-access-requester"], ("fork-access", "cutlery-access"), FORK_REASON),
    ("role request: do not require reason when _all_ roles do not require reason for _all_ roles",
     ["fork-access-requester", "cutlery-access-requester"], ("fork-access", "cutlery-access"), ""),
    ("role request: handle wildcard", ["fork-access-requester-with-reason"], ("*",), FORK_REASON),
]  # fmt: skip


@pytest.mark.parametrize(
    ("current", "requested", "error"),
    [case[1:] for case in REASON_CASES],
    ids=[f"TestReasonRequired/{case[0]}" for case in REASON_CASES],
)
def test_reason_required(current: list[str], requested: tuple[str, ...], error: str) -> None:
    seed = seed_of(REASON_ROLES, {"test-user": current})
    store = Store(seed, clock=lambda: NOW)
    for reason in ("", "  \t \n  "):
        draft = new_request("test-user", requested, reason=reason)
        if error:
            with pytest.raises(BadParameter) as caught:
                store.prepare(draft, caller_expires=NOW + 8 * HOUR, keep_id=True)
            assert caught.value.message == error
        else:
            store.prepare(draft, caller_expires=NOW + 8 * HOUR, keep_id=True)
    store.prepare(new_request("test-user", requested, reason="good reason"), caller_expires=None, keep_id=True)
    # CalculateAccessCapabilities: RequireReason over the requestable roles, as the devstack answers it.
    user = seed.users["test-user"]
    user_roles = store.roles_of(user)
    requestable = [r for r in seed.roles if r not in user.roles and policy.request_permission(user, user_roles, [r]).allowed]
    assert policy.request_settings(user, user_roles, requestable).reason_required is bool(error)


# --- TestValidate_RequestedMaxDuration, TestValidate_RequestedPendingTTLAndMaxDuration -------------------

DURATION_ROLES = yaml.safe_load(
    """
requestedRole: {}
requestedRole2: {}
setMaxTTLRole: {options: {max_session_ttl: 6h}}
defaultRole: {allow: {request: {roles: [requestedRole, setMaxTTLRole]}}}
defaultShortRole: {allow: {request: {roles: [requestedRole, setMaxTTLRole]}}}
maxDurationReqRole: {allow: {request: {roles: [requestedRole, setMaxTTLRole], max_duration: 168h}}}
shortMaxDurationReqRole: {allow: {request: {roles: [requestedRole], max_duration: 72h}}}
shortMaxDurationReqRole2: {allow: {request: {roles: [requestedRole2], max_duration: 24h}}}
shortMaxDurationReqRole3: {allow: {request: {roles: [requestedRole], max_duration: 24h}}}
requestRole: {allow: {request: {roles: [requestRole], max_duration: 120h}}}
"""
)
DURATION_SEED = seed_of(
    DURATION_ROLES,
    {
        "alice": ["shortMaxDurationReqRole"],
        "bob": ["defaultRole"],
        "carol": ["shortMaxDurationReqRole", "shortMaxDurationReqRole2"],
        "david": ["maxDurationReqRole"],
        "erin": ["shortMaxDurationReqRole", "shortMaxDurationReqRole3", "maxDurationReqRole"],
        "pending-alice": ["requestRole"],
    },
)


@dataclass(frozen=True)
class DurationCase:
    desc: str
    requestor: str
    roles: tuple[str, ...]
    requested: timedelta | None
    access: timedelta
    session: timedelta
    pending: timedelta
    dry_run: bool = False


H = HOUR
DURATION_CASES = [
    DurationCase("role max_duration is respected and sessionTTL does not exceed the calculated max duration",
                 "alice", ("requestedRole",), 7 * DAY, 3 * DAY, 8 * H, 3 * DAY),
    DurationCase("role max_duration is still respected even with dry run (which requests for longer maxDuration)",
                 "alice", ("requestedRole",), 10 * DAY, 3 * DAY, 8 * H, 3 * DAY, dry_run=True),
    DurationCase("when role max_duration is not set: default to defaultSessionTTL when requestedMaxDuration is not set",
                 "bob", ("requestedRole",), None, 8 * H, 8 * H, 8 * H),
    DurationCase("when role max_duration is not set: requestedMaxDuration is respected when < defaultSessionTTL",
                 "bob", ("requestedRole",), 5 * H, 5 * H, 5 * H, 5 * H),
    DurationCase("when role max_duration is not set: requestedMaxDuration is ignored if > defaultSessionTTL",
                 "bob", ("requestedRole",), 10 * H, 8 * H, 8 * H, 8 * H),
    DurationCase("when role max_duration is not set: requestedMaxDuration is ignored if > role defined sesssionTTL (6h)",
                 "bob", ("setMaxTTLRole",), DAY, 6 * H, 6 * H, 6 * H),
    DurationCase("when role max_duration is not set: requestedMaxDuration is respected when < role defined sessionTTL (6h)",
                 "bob", ("setMaxTTLRole",), 5 * H, 5 * H, 5 * H, 5 * H),
    DurationCase("requestedMaxDuration is respected if it's < the max_duration set in role",
                 "david", ("setMaxTTLRole",), DAY, DAY, 6 * H, DAY),
    DurationCase("expectedSessionTTL does not exceed requestedMaxDuration",
                 "david", ("setMaxTTLRole",), 2 * H, 2 * H, 2 * H, 2 * H),
    DurationCase("only the assigned role that allows the requested roles are considered for maxDuration",
                 "carol", ("requestedRole",), 5 * DAY, 3 * DAY, 8 * H, 3 * DAY),
    DurationCase("only the assigned role that allows the requested roles are considered for maxDuration #2",
                 "carol", ("requestedRole2",), 6 * DAY, DAY, 8 * H, DAY),
    DurationCase("role max_duration is respected when requestedMaxDuration is not set",
                 "alice", ("requestedRole",), None, 3 * DAY, 8 * H, 3 * DAY),
    DurationCase("multiple roles with different max durations assigned",
                 "erin", ("requestedRole",), None, 7 * DAY, 8 * H, 7 * DAY),
]  # fmt: skip


@pytest.mark.parametrize(
    "case", DURATION_CASES, ids=[f"TestValidate_RequestedMaxDuration/{case.desc}" for case in DURATION_CASES]
)
def test_validate_requested_max_duration(case: DurationCase) -> None:
    store = Store(DURATION_SEED, clock=lambda: NOW)
    draft = new_request(
        case.requestor, case.roles, created=NOW, max_duration=NOW + case.requested if case.requested else None
    )
    request = store.prepare(draft, caller_expires=NOW + 8 * HOUR, keep_id=True, dry_run=case.dry_run)
    assert request.access_expires == NOW + case.access
    assert request.max_duration == NOW + case.access
    assert request.session_ttl == NOW + case.session
    assert request.resource_expiry == NOW + case.pending


def test_validate_requested_pending_ttl_and_max_duration() -> None:
    """TestValidate_RequestedPendingTTLAndMaxDuration: both what was asked, within the role's limits."""
    store = Store(DURATION_SEED, clock=lambda: NOW)
    draft = new_request("pending-alice", ("requestRole",), max_duration=NOW + 4 * DAY, resource_expiry=NOW + 2 * DAY)
    request = store.prepare(draft, caller_expires=NOW + 8 * HOUR, keep_id=True)
    assert (request.access_expires, request.max_duration) == (NOW + 4 * DAY, NOW + 4 * DAY)
    assert request.session_ttl == NOW + 8 * HOUR
    assert request.resource_expiry == NOW + 2 * DAY


# --- TestCalculatePendingRequestTTL ---------------------------------------------------------------------

WEEK = lifetimes.PENDING_TTL
PENDING_CASES = [
    ("valid: requested ttl < access expiry", WEEK - 3 * DAY, WEEK - 4 * DAY, WEEK - 4 * DAY),
    ("valid: requested ttl == access expiry", WEEK - 3 * DAY, WEEK - 3 * DAY, WEEK - 3 * DAY),
    ("valid: requested ttl == default request ttl", WEEK, WEEK, WEEK),
    ("valid: no TTL request defaults to the const requestTTL if access expiry is larger", WEEK + 3 * DAY, None, WEEK),
    ("valid: no TTL request defaults to accessExpiry if const requestTTL is larger", WEEK - 3 * DAY, None,
     WEEK - 3 * DAY),
    ("invalid: requested ttl > access expiry", WEEK - 3 * DAY, WEEK - 2 * DAY, None),
    ("invalid: requested ttl > default request TTL", WEEK + DAY, WEEK + DAY, None),
    ("invalid: requested ttl < now", WEEK - 3 * DAY, -3 * DAY, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("access", "requested", "expected"),
    [case[1:] for case in PENDING_CASES],
    ids=[f"TestCalculatePendingRequestTTL/{case[0]}" for case in PENDING_CASES],
)
def test_calculate_pending_request_ttl(
    access: timedelta, requested: timedelta | None, expected: timedelta | None
) -> None:
    def ttl() -> timedelta:
        return lifetimes.pending_ttl(
            now=NOW, access_expires=NOW + access, requested=NOW + requested if requested is not None else None
        )

    if expected is None:
        with pytest.raises(BadParameter, match="invalid request TTL"):
            ttl()
    else:
        assert ttl() == expected


# --- TestSessionTTL -----------------------------------------------------------------------------------

MAX_ACCESS = lifetimes.MAX_ACCESS_DURATION
SESSION_CASES = [
    ("less than identity expiration and role session ttl allowed", 13 * timedelta(minutes=1), MAX_ACCESS, MAX_ACCESS,
     13 * timedelta(minutes=1)),
    ("greater than identity expiration and role session ttl not allowed", timedelta(minutes=14),
     timedelta(minutes=13), timedelta(minutes=13), None),
    ("greater than certificate duration not allowed", MAX_ACCESS + timedelta(minutes=1), MAX_ACCESS, MAX_ACCESS,
     None),
]  # fmt: skip
SESSION_IDS = [f"TestSessionTTL/{case[0]}" for case in SESSION_CASES]


@pytest.mark.parametrize(("access", "identity", "role_ttl", "expected"), [c[1:] for c in SESSION_CASES], ids=SESSION_IDS)
def test_session_ttl(access: timedelta, identity: timedelta, role_ttl: timedelta, expected: timedelta | None) -> None:
    def ttl() -> timedelta:
        return lifetimes.session_ttl(
            now=NOW, identity_expires=NOW + identity, access_expires=NOW + access, role_ttls=[role_ttl]
        )

    if expected is None:
        with pytest.raises(BadParameter, match="invalid session TTL"):
            ttl()
    else:
        assert ttl() == expected


SESSION_SEED = seed_of(
    {"bar": {"options": {"max_session_ttl": "336h"}}, "bar-requester": {"allow": {"request": {"roles": ["bar"]}}}},
    {"foo": ["bar-requester"]},
)


@pytest.mark.parametrize(("access", "identity", "role_ttl", "expected"), [c[1:] for c in SESSION_CASES], ids=SESSION_IDS)
async def test_session_ttl_over_grpc(
    access: timedelta, identity: timedelta, role_ttl: timedelta, expected: timedelta | None, cluster_ca: ClusterCA,
    tmp_path: Path,
) -> None:
    """A client that sends its own access expiry (Spec.Expires) gets what Teleport grants, or its refusal."""
    seed = SESSION_SEED
    if role_ttl != MAX_ACCESS:
        bar = {"options": {"max_session_ttl": f"{int(role_ttl.total_seconds())}s"}}
        seed = seed_of({"bar": bar, "bar-requester": {"allow": {"request": {"roles": ["bar"]}}}}, {"foo": ["bar-requester"]})
    server = DevTeleport(seed, ca=cluster_ca)
    await server.start("127.0.0.1:0")
    path = tmp_path / "foo.pem"
    write_identity_file(server.identity("foo", valid_for=identity), path)
    client = TeleportClient(server.addr, IdentitySource(identity_file=str(path)), timeout=5.0)
    try:
        now = datetime.now(UTC)
        draft = new_request("foo", ("bar",), access_expires=now + access)
        call = client._call("CreateAccessRequestV2", convert.request_to_proto(draft))  # the bot sends no expiry
        if expected is None:
            with pytest.raises(BadParameter, match="invalid session TTL"):
                await call
            return
        created = convert.request_from_proto(await call)
        assert created.session_ttl is not None and created.access_expires is not None and created.created
        assert abs(created.session_ttl - created.created - expected) < timedelta(seconds=5)
        assert abs(created.access_expires - created.created - expected) < timedelta(seconds=5)
    finally:
        await client.close()
        await server.stop()
