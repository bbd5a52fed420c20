"""`PagerDutyDecider` against the devstack PagerDuty and the devstack Teleport over loopback: who on call
gets which role approved, with what reason, and nothing approved when PagerDuty cannot be asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatops_bot.automatic import Undecided
from chatops_bot.devstack.pagerduty import TOKEN, DevPagerDuty, Shift, Target, demo_account
from chatops_bot.devstack.pki import ClusterCA
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.decider import PagerDutyDecider
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.teleport.client import TeleportClient
from commands.model import AccessRequest
from conftest import FixedClock

SEED = """
kind: role
version: v7
metadata: {name: requester}
spec:
  allow:
    request: {roles: [dba, web], max_duration: 8h}
---
kind: role
version: v7
metadata: {name: critical-requester}
spec:
  allow:
    request:
      roles: [dba]
      thresholds: [{approve: 2, deny: 1}]
---
kind: role
version: v7
metadata: {name: dba}
spec: {allow: {logins: [postgres]}}
---
kind: role
version: v7
metadata: {name: web}
spec: {allow: {logins: [ubuntu]}}
---
kind: role
version: v7
metadata: {name: chatops-bot}
spec:
  allow:
    rules:
      - {resources: [access_request], verbs: [list, read, create, delete, update]}
      - {resources: [access_plugin_data], verbs: [list, read, update]}
      - {resources: [user], verbs: [list, read]}
      - {resources: [role], verbs: [list, read]}
    review_requests: {roles: [dba]}
---
kind: user
version: v2
metadata: {name: chatops-bot}
spec: {roles: [chatops-bot]}
"""
PEOPLE = {"alice": "requester", "bob": "requester", "carol": "requester", "erin": "critical-requester"}


def pagerduty_seed() -> Seed:
    """alice, bob, carol and erin with their e-mail in the `email` trait; dave without one."""
    users = "".join(f"---\nkind: user\nversion: v2\nmetadata: {{name: {name}}}\n"
                    f"spec: {{roles: [{role}], traits: {{email: [{name}@example.com]}}}}\n"
                    for name, role in PEOPLE.items())
    bare = "".join(f"---\nkind: user\nversion: v2\nmetadata: {{name: '{name}'}}\nspec: {{roles: [requester]}}\n"
                   for name in ("dave", "frank@example.com"))
    return load_seed(SEED + users + bare)


RULE: dict[str, Any] = {"name": "dba-primary", "roles": ["dba"], "schedules": ["P1X2Y3"], "max_level": 1}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 12, 5, 3, 0, tzinfo=UTC))


@pytest.fixture
async def pagerduty(clock: FixedClock) -> AsyncIterator[DevPagerDuty]:
    server = DevPagerDuty(clock=clock.now)
    demo_account(server, clock.now())
    server.add_user("PERIN01", "Erin", "erin@example.com")
    server.schedules["P1X2Y3"].shifts.append(Shift("PERIN01", clock.now(), clock.now() + timedelta(hours=1)))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def teleport(cluster_ca: ClusterCA) -> AsyncIterator[DevTeleport]:
    server = DevTeleport(pagerduty_seed(), cluster_name="devstack.example.com", ca=cluster_ca)
    await server.start("127.0.0.1:0")
    yield server
    await server.stop()


Make = Callable[..., PagerDutyDecider]


@pytest.fixture
async def make_decider(pagerduty: DevPagerDuty, bot: TeleportClient) -> AsyncIterator[Make]:
    clients: list[PagerDutyClient] = []

    def make(*rules: dict[str, Any], url: str = "", **settings: Any) -> PagerDutyDecider:
        config = PagerDutySettings.model_validate({"token": TOKEN, "auto_approve": list(rules or [RULE]),
                                                   "timeout": "2s", **settings})
        client = PagerDutyClient(url or pagerduty.root_url, TOKEN, deadline=config.timeout.total_seconds())
        clients.append(client)
        return PagerDutyDecider(config, PagerDutyAccount(client), bot)

    yield make
    for client in clients:
        await client.close()


async def request(client_for: Callable[..., TeleportClient], user: str, roles: list[str],
                  duration: timedelta | None = None) -> AccessRequest:
    return await client_for(user).create_request(user=user, roles=roles, reason="INC-1", max_duration=duration)


async def test_on_call_at_an_allowed_level_is_approved_with_the_rule_in_the_reason(
        make_decider: Make, client_for: Callable[..., TeleportClient]) -> None:
    verdict = await make_decider().verdict(await request(client_for, "alice", ["dba"]))
    assert verdict is not None and verdict.approve and verdict.source == "pagerduty"
    assert verdict.reason == "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1 (rule dba-primary: dba)"
    assert verdict.card == "Auto-approved: alice is on call for DBA primary"


async def test_off_call_nothing_is_said(make_decider: Make, client_for: Callable[..., TeleportClient],
                                        clock: FixedClock) -> None:
    decider = make_decider()
    alices = await request(client_for, "alice", ["dba"])
    assert await decider.verdict(await request(client_for, "carol", ["dba"])) is None  # never on call
    clock.advance(timedelta(hours=13))  # alice's shift is over
    assert await decider.verdict(alices) is None


async def test_a_level_below_the_rules_maximum_does_not_count(make_decider: Make,
                                                             client_for: Callable[..., TeleportClient]) -> None:
    bobs = await request(client_for, "bob", ["dba"])  # bob is DBA secondary: level 2 of policy PDBAEP1
    primary_only = {"name": "dba-ep", "roles": ["dba"], "escalation_policies": ["PDBAEP1"], "max_level": 1}
    assert await make_decider(primary_only).verdict(bobs) is None
    verdict = await make_decider({**primary_only, "max_level": 2}).verdict(bobs)
    assert verdict is not None
    assert verdict.reason.startswith("on call: DBA secondary (PagerDuty schedule P4Q5R6), level 2")


async def test_every_requested_role_must_be_covered(make_decider: Make,
                                                    client_for: Callable[..., TeleportClient]) -> None:
    both = await request(client_for, "alice", ["dba", "web"])
    decider = make_decider()
    assert not decider.covers(both)
    assert await decider.verdict(both) is None
    web = {"name": "web", "roles": ["w*"], "escalation_policies": ["PDBAEP1"]}
    verdict = await make_decider(RULE, web).verdict(both)
    assert verdict is not None
    assert verdict.reason == ("on call: DBA primary (PagerDuty schedule P1X2Y3), level 1 (rule dba-primary: dba); "
                              "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1 (rule web: web)")


async def test_an_incident_only_rule_needs_an_open_incident(make_decider: Make, pagerduty: DevPagerDuty,
                                                            client_for: Callable[..., TeleportClient]) -> None:
    decider = make_decider({**RULE, "while_incident_on": ["PDBSVC1"]})
    alices = await request(client_for, "alice", ["dba"])
    assert await decider.verdict(alices) is None
    writer = PagerDutyClient(pagerduty.root_url, TOKEN, from_email="bob@example.com")
    try:
        await writer.post("/incidents", {"incident": {"type": "incident", "title": "replica lag",
                                                      "service": {"id": "PDBSVC1", "type": "service_reference"}}})
    finally:
        await writer.close()
    assert await decider.verdict(alices) is not None


async def test_a_request_longer_than_the_cap_waits_for_a_human(make_decider: Make,
                                                              client_for: Callable[..., TeleportClient]) -> None:
    decider = make_decider({**RULE, "max_duration": "2h"})
    assert await decider.verdict(await request(client_for, "alice", ["dba"], timedelta(hours=6))) is None
    assert await decider.verdict(await request(client_for, "alice", ["dba"], timedelta(hours=1))) is not None


async def test_pagerduty_unreachable_or_rate_limited_is_undecided_never_approved(
        make_decider: Make, pagerduty: DevPagerDuty, client_for: Callable[..., TeleportClient]) -> None:
    alices = await request(client_for, "alice", ["dba"])
    with pytest.raises(Undecided):
        await make_decider(url="http://127.0.0.1:9").verdict(alices)
    pagerduty.go_down()
    with pytest.raises(Undecided, match="503"):
        await make_decider().verdict(alices)
    pagerduty.go_down(False)
    pagerduty.rate_limit(1, retry_after=60)  # longer than the 2 s the call may take
    with pytest.raises(Undecided, match="rate limited"):
        await make_decider().verdict(alices)
    assert await make_decider().verdict(alices) is not None  # and once PagerDuty answers, it is approved


async def test_the_requester_is_found_by_trait_or_by_an_e_mail_user_name(
        make_decider: Make, client_for: Callable[..., TeleportClient], pagerduty: DevPagerDuty) -> None:
    daves = await request(client_for, "dave", ["dba"])  # no e-mail trait
    assert await make_decider().verdict(daves) is None
    pagerduty.add_user("PDAVE01", "Dave", "dave@example.com")
    pagerduty.schedules["P1X2Y3"].shifts.append(Shift("PDAVE01", datetime(2026, 12, 5, tzinfo=UTC),
                                                      datetime(2026, 12, 6, tzinfo=UTC)))
    assert await make_decider(email_trait="nonexistent").verdict(
        await request(client_for, "alice", ["dba"])) is None
    assert await make_decider(requester_email="user_name").verdict(daves) is None  # "dave" is no e-mail
    pagerduty.add_user("PFRANK1", "Frank", "Frank@Example.com")
    pagerduty.schedules["P1X2Y3"].shifts.append(Shift("PFRANK1", datetime(2026, 12, 5, tzinfo=UTC),
                                                      datetime(2026, 12, 6, tzinfo=UTC)))
    franks = await request(client_for, "frank@example.com", ["dba"])
    assert await make_decider().verdict(franks) is None  # no email trait
    assert await make_decider(requester_email="user_name").verdict(franks) is not None


async def test_a_request_needing_two_approvals_says_one_more_is_needed(
        make_decider: Make, client_for: Callable[..., TeleportClient]) -> None:
    verdict = await make_decider().verdict(await request(client_for, "erin", ["dba"]))
    assert verdict is not None
    assert verdict.card == ("Approved once by PagerDuty: erin is on call for DBA primary; this request needs "
                            "2 approvals, so 1 more must come from a reviewer")


async def test_a_user_targeted_directly_by_a_policy_is_named_by_the_policy(
        make_decider: Make, pagerduty: DevPagerDuty, client_for: Callable[..., TeleportClient]) -> None:
    pagerduty.add_policy("PWEBEP1", "Web", [[Target("user", "PCAROL1")]])
    rule = {"name": "web", "roles": ["web"], "escalation_policies": ["PWEBEP1"]}
    verdict = await make_decider(rule).verdict(await request(client_for, "carol", ["web"]))
    assert verdict is not None
    assert verdict.reason == "on call: Web (PagerDuty escalation policy PWEBEP1), level 1 (rule web: web)"
    assert verdict.card == "Auto-approved: carol is on call for Web"
