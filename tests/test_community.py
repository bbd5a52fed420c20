"""Community Edition approvals from chat: `review.mode: resolve` with `review.rules`, against the devstack Teleport.

No role in this cluster can review (Community Edition refuses `review_requests` and thresholds), so the bot
decides by its own rules, counts approvals per person in plugin data, and resolves with SetAccessRequestState.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import ClientFactory, FixedClock, Unchanged
from test_cli import run, write_config
from test_preflight import community
from test_watcher import (
    MakeBot,
    eventually,
    make_bot,
    mm_buttons,
    one_card_each,
    platforms,
    settled,
    slack_buttons,
)

from chatops_bot import runtime, teleport_role
from chatops_bot.automatic import AutomaticReviewer, Verdict
from chatops_bot.watcher import Follower
from chatops_bot.adapters.mattermost.render import Renderer
from chatops_bot.adapters.slack.render import card_blocks
from chatops_bot.devstack.mattermost import DevMattermost
from chatops_bot.devstack.pki import ClusterCA
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.teleport.client import TeleportClient
from commands import approvals
from commands.context import CommandConfig, Context
from commands.dispatch import dispatch
from commands.model import AccessRequest, ChatUser, RequestState
from commands.reply import Invocation, Reply, RequestCard
from commands.rules import ReviewRule

# Fixtures from elsewhere: a bot with Slack and Mattermost stand-ins, a Community Edition devstack process.
__all__ = ["community", "make_bot", "platforms"]

# Roles as Community Edition accepts them: nobody holds review_requests, requests carry no thresholds.
COMMUNITY_SEED = """
kind: role
version: v7
metadata: {name: requester}
spec: {allow: {request: {roles: [dba], max_duration: 8h}}}
---
kind: role
version: v7
metadata: {name: dba}
spec: {allow: {logins: [postgres]}}
---
kind: role
version: v7
metadata: {name: dba-lead}
spec: {allow: {logins: [ubuntu]}}
---
kind: role
version: v7
metadata: {name: developer}
spec: {allow: {logins: [ubuntu]}}
""" + "".join(
    f"---\nkind: user\nversion: v2\nmetadata: {{name: {name}}}\nspec: {{roles: [{roles}]}}\n"
    for name, roles in [
        ("alice", "requester, developer"),
        ("bob", "dba-lead"),
        ("dave", "dba-lead"),
        ("carol", "developer"),
        ("mallory", "dba-lead"),
        ("erin", "requester, dba-lead"),
    ]
) + "---\n" + teleport_role.render("resolve")  # the bot's role exactly as `chatops-bot teleport-role` prints it

# dba needs two approvals from dba leads; mallory may never decide anything.
RULES = (
    ReviewRule(roles=("db*",), reviewer_roles=("dba-lead",), approvals=2),
    ReviewRule(roles=("*",), reviewer_users=("mallory",), deny=True),
)
# Chat users on two platforms, linked by users.map; the console takes names as they are.
USER_MAP = {"slack:U0BOB": "bob", "mattermost:davemmid": "dave", "slack:U0ALICE": "alice"}


@pytest.fixture
def seed() -> Seed:
    return load_seed(COMMUNITY_SEED)


@pytest.fixture
async def teleport(seed: Seed, cluster_ca: ClusterCA) -> AsyncIterator[DevTeleport]:
    """The devstack playing Community Edition: it refuses roles with review rules or thresholds."""
    server = DevTeleport(seed, cluster_name="devstack.example.com", ca=cluster_ca, edition="community")
    await server.start("127.0.0.1:0")
    yield server
    await server.stop()


@pytest.fixture
def ctx(bot: TeleportClient) -> Context:
    config = CommandConfig(review_mode="resolve", review_rules=RULES)
    directory = TeleportDirectory(bot, traits={}, user_map=USER_MAP)
    return Context(backend=bot, directory=directory, clock=FixedClock(), config=config)


async def say(ctx: Context, who: str, text: str, platform: str = "console") -> Reply:
    chat_id = next((k.partition(":")[2] for k, v in USER_MAP.items() if v == who and k.startswith(platform)), who)
    return await dispatch(Invocation(platform=platform, actor=ChatUser(platform, chat_id, who), text=text), ctx)


async def create(ctx: Context, who: str = "alice") -> AccessRequest:
    reply = await say(ctx, who, "request dba INC-4411 replica lag")
    assert reply.ok, reply.text
    return reply.cards[0].request


async def refused(ctx: Context, teleport: DevTeleport, who: str, text: str) -> str:
    with Unchanged(teleport):
        reply = await say(ctx, who, text)
    assert not reply.ok and not reply.cards, reply.text
    return reply.text


class OnCall:
    """A decider that finds every requester on call: PagerDuty's verdict, without PagerDuty."""

    name = "pagerduty"

    def covers(self, request: AccessRequest) -> bool:
        return True

    async def verdict(self, request: AccessRequest) -> Verdict:
        return Verdict(True, "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1", "pagerduty")


def stored(teleport: DevTeleport, request_id: str) -> AccessRequest:
    return teleport.store.requests[request_id]


def counted(teleport: DevTeleport, request_id: str) -> list[str]:
    data = teleport.store.plugin_data.get(request_id, {}).get("chatops-bot", {})
    return [a.user for a in approvals.decode(data.get(approvals.KEY, ""))]


def state_field(card: RequestCard) -> str:
    return next(f.value for f in card.fields if f.label == "State")


async def test_two_approvals_from_two_people_approve_naming_both(
    ctx: Context, teleport: DevTeleport
) -> None:
    request = await create(ctx)
    short = request.id[-8:]
    assert state_field((await say(ctx, "alice", f"show {request.id}")).cards[0]) == "Pending (0 of 2 approvals)"

    reply = await say(ctx, "bob", f"approve {request.id} looks fine", platform="slack")
    assert reply.text == f"You approved request {short}: 1 of 2 approvals. It takes effect after 1 more approval."
    assert stored(teleport, request.id).state is RequestState.PENDING
    assert teleport.store.audit == []
    assert counted(teleport, request.id) == ["bob"]

    # Every card the bot draws says so: the reply to show, and the clicked card redrawn on both platforms.
    shown = (await say(ctx, "dave", f"show {request.id}")).cards[0]
    assert state_field(shown) == "Pending (1 of 2 approvals)"
    assert ("Review", "bob approved: looks fine") in [(f.label, f.value) for f in shown.fields]
    redrawn = await ctx.current_card(request.id)
    assert redrawn is not None and state_field(redrawn) == "Pending (1 of 2 approvals)"
    attachment = Renderer("https://bot.example.com/mattermost/actions", b"k" * 32).attachment(redrawn, ephemeral=False)
    assert attachment["text"] == "**Pending \\(1 of 2 approvals\\)**"
    assert "Pending (1 of 2 approvals)" in json.dumps(card_blocks(redrawn))

    assert await refused(ctx, teleport, "bob", f"approve {request.id} again") == (
        f"You already approved request {short} (1 of 2 approvals); each person counts once."
    )
    assert counted(teleport, request.id) == ["bob"]

    reply = await say(ctx, "dave", f"approve {request.id} ok by me", platform="mattermost")
    assert reply.text == f"You approved request {short}. The request is now approved."
    decided = stored(teleport, request.id)
    assert decided.state is RequestState.APPROVED
    assert decided.resolve_reason == "approved by bob via slack: looks fine; dave via mattermost: ok by me"
    assert teleport.store.audit == [
        {"event": "access_request.update", "id": request.id, "state": "APPROVED",
         "delegator": "slack:bob,mattermost:dave", "updated_by": "chatops-bot"}
    ]
    assert await refused(ctx, teleport, "erin", f"approve {request.id}") == (
        f"Request {short} was already approved."
    )


async def test_a_reviewer_no_rule_names_is_refused_with_the_reason(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    assert await refused(ctx, teleport, "carol", f"approve {request.id}") == (
        "You may not review this request: no entry in review.rules names you or one of your roles as a reviewer."
    )
    assert counted(teleport, request.id) == []


async def test_a_deny_rule_wins_over_an_allow_rule(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    # mallory may not review it, so she may not see it either: every form of its ID answers alike.
    for verb in ("approve", "deny"):
        for form in (request.id, request.id[-8:]):
            assert await refused(ctx, teleport, "mallory", f"{verb} {form}") == (
                f"There is no access request with ID {form} that you can see."
            )
    assert counted(teleport, request.id) == []


async def test_nobody_decides_their_own_request(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx, "erin")
    assert await refused(ctx, teleport, "erin", f"approve {request.id}") == (
        "You cannot review your own access request."
    )
    assert counted(teleport, request.id) == []


async def test_a_double_click_counts_once(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    replies = await asyncio.gather(*(say(ctx, "bob", f"approve {request.id}") for _ in range(4)))
    texts = sorted(reply.text for reply in replies)
    short = request.id[-8:]
    assert texts == sorted(
        [f"You approved request {short}: 1 of 2 approvals. It takes effect after 1 more approval."]
        + [f"You already approved request {short} (1 of 2 approvals); each person counts once."] * 3
    )
    assert counted(teleport, request.id) == ["bob"]
    assert stored(teleport, request.id).state is RequestState.PENDING


async def test_two_bot_processes_count_each_person_once(
    ctx: Context, teleport: DevTeleport, client_for: Callable[..., TeleportClient]
) -> None:
    # A second replica: its own connection, the same plugin data.
    other = Context(backend=client_for("chatops-bot"), directory=ctx.directory, clock=FixedClock(),
                    config=ctx.config)
    request = await create(ctx)
    await asyncio.gather(say(ctx, "bob", f"approve {request.id}"), say(other, "bob", f"approve {request.id}"),
                         say(ctx, "dave", f"approve {request.id}"))
    assert sorted(counted(teleport, request.id)) == ["bob", "dave"]
    assert stored(teleport, request.id).state is RequestState.APPROVED
    (event,) = teleport.store.audit
    assert sorted(event["delegator"].split(",")) == ["console:bob", "console:dave"]


async def test_one_denial_by_an_allowed_reviewer_denies_at_once(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await say(ctx, "bob", f"approve {request.id}")
    reply = await say(ctx, "dave", f"deny {request.id} not during the freeze")
    assert reply.text == f"You denied request {request.id[-8:]}. The request is now denied."
    decided = stored(teleport, request.id)
    assert decided.state is RequestState.DENIED
    assert decided.resolve_reason == "denied in chat by dave via console: not during the freeze"
    assert teleport.store.audit == [
        {"event": "access_request.update", "id": request.id, "state": "DENIED",
         "delegator": "console:dave", "updated_by": "chatops-bot"}
    ]


async def test_approvals_recorded_but_not_applied_are_finished_by_the_next_click(
    ctx: Context, teleport: DevTeleport
) -> None:
    # As if the bot died between counting the second approval and setting the state.
    request = await create(ctx)
    both = approvals.encode([approvals.Approval("bob", "slack"), approvals.Approval("dave", "console")])
    teleport.store.update_plugin_data(request.id, "chatops-bot", {approvals.KEY: both}, {})
    reply = await say(ctx, "dave", f"approve {request.id}")
    assert reply.text == f"You approved request {request.id[-8:]}. The request is now approved."
    assert stored(teleport, request.id).state is RequestState.APPROVED
    assert teleport.store.audit[0]["delegator"] == "slack:bob,console:dave"


async def test_unreadable_approvals_refuse(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    teleport.store.update_plugin_data(request.id, "chatops-bot", {approvals.KEY: "not json"}, {})
    assert await refused(ctx, teleport, "bob", f"approve {request.id}") == (
        "I cannot read the approvals recorded on this request, so I cannot count yours. Nothing was changed."
    )


async def test_reviewers_named_by_the_rules_see_pending_requests(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    listed = await say(ctx, "bob", "list")
    assert listed.text.startswith("Waiting for your review (1, page 1 of 1)")
    assert request.id[-8:] in listed.text
    assert (await say(ctx, "carol", "list")).text == "You have no access requests."


async def test_channel_cards_count_by_the_rules_and_close_when_the_count_is_reached(
    ctx: Context, make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost],
    teleport: DevTeleport,
) -> None:
    slack, mm = platforms
    rules = [{"roles": ["db*"], "reviewers": {"roles": ["dba-lead"]}, "approvals": 2},
             {"roles": ["*"], "reviewers": {"users": ["mallory"]}, "deny": True}]
    bot = await make_bot(review={"mode": "resolve", "rules": rules})
    request = await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-7")

    def posted() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert "Pending (0 of 2 approvals)" in json.dumps(card["blocks"])
        assert post["props"]["attachments"][0]["text"] == "**Pending \\(0 of 2 approvals\\)**"

    await eventually(posted)
    await say(ctx, "bob", f"approve {request.id}")
    await say(ctx, "dave", f"approve {request.id}")

    def approved() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert slack_buttons(card) == [] and mm_buttons(post) == []
        assert "Approved: approved by bob via console; dave via console" in json.dumps(card["blocks"])

    await eventually(approved)
    await settled(bot)


async def test_an_approval_counted_in_chat_redraws_every_card_not_only_the_clicked_one(
    ctx: Context, make_bot: MakeBot, client_for: ClientFactory, platforms: tuple[DevSlack, DevMattermost],
) -> None:
    """The count lives in plugin data, so Teleport sends no event for it: `Context.changed` redraws the cards."""
    slack, mm = platforms
    rules = [{"roles": ["db*"], "reviewers": {"roles": ["dba-lead"]}, "approvals": 2}]
    bot = await make_bot(review={"mode": "resolve", "rules": rules})
    redraw = runtime.Redraw()
    redraw.connect(bot.watcher.notifier, bot.watcher.lanes, bot.client)
    request = await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-7")
    await eventually(lambda: one_card_each(slack, mm, request.id))

    await say(replace(ctx, changed=redraw), "bob", f"approve {request.id}")

    def counted_everywhere() -> None:
        card, post = one_card_each(slack, mm, request.id)
        assert "Pending (1 of 2 approvals)" in json.dumps(card["blocks"])
        assert post["props"]["attachments"][0]["text"] == "**Pending \\(1 of 2 approvals\\)**"

    await eventually(counted_everywhere)
    await settled(bot)


def test_check_config_accepts_resolve_with_rules_on_community_edition(
    community: tuple[str, Path], tmp_path: Path
) -> None:
    addr, identities = community
    config = write_config(tmp_path / "dev.yaml", addr, identities / "chatops-bot.pem")
    config.write_text(config.read_text() + (
        "review:\n  mode: resolve\n  rules:\n"
        "    - {roles: [dba], reviewers: {roles: [dba-approver]}, approvals: 2}\n"))

    result = run("check-config", "--connect", "--verbose", "-c", str(config))

    assert result.returncode == 0, result.stderr
    assert "Community Edition, cluster 'devstack.example.com', as chatops-bot" in result.stdout
    assert "  rules:\n  - roles: [dba]\n    reviewers:\n      roles: [dba-approver]\n      users: []\n" \
        "    approvals: 2\n    deny: false\n" in result.stdout


async def test_an_automatic_approval_counts_as_one_and_a_person_completes_it(
    ctx: Context, teleport: DevTeleport, bot: TeleportClient
) -> None:
    """Community Edition: an on-call verdict is one approval in the bot's count, never the whole of two."""

    request = await create(ctx)
    follower = Follower(AutomaticReviewer(bot, [OnCall()], mode="resolve", rules=RULES))
    follower.put(request)
    await follower.lanes.idle()
    await follower.close()
    assert stored(teleport, request.id).state is RequestState.PENDING
    assert counted(teleport, request.id) == ["pagerduty"]
    shown = (await say(ctx, "alice", f"show {request.id}")).cards[0]
    assert state_field(shown) == "Pending (1 of 2 approvals)"

    await say(ctx, "bob", f"approve {request.id} confirmed", platform="slack")
    decided = stored(teleport, request.id)
    assert decided.state is RequestState.APPROVED
    assert decided.resolve_reason == ("approved by pagerduty via automatic: on call: DBA primary (PagerDuty "
                                      "schedule P1X2Y3), level 1; bob via slack: confirmed")
    assert teleport.store.audit[-1]["delegator"] == "automatic:pagerduty,slack:bob"


async def test_an_automatic_approval_of_a_role_no_rule_lets_anyone_decide_is_not_applied(
    ctx: Context, teleport: DevTeleport, bot: TeleportClient, caplog: pytest.LogCaptureFixture
) -> None:
    """review.rules name nobody who may decide dba here: an on-call verdict may not approve it either."""

    request = await create(ctx)
    only_web = (ReviewRule(roles=("web",), reviewer_roles=("dba-lead",)),)
    follower = Follower(AutomaticReviewer(bot, [OnCall()], mode="resolve", rules=only_web))
    with Unchanged(teleport), caplog.at_level("WARNING", logger="chatops_bot.automatic"):
        follower.put(request)
        await follower.lanes.idle()
        await follower.close()
    assert stored(teleport, request.id).state is RequestState.PENDING
    assert counted(teleport, request.id) == []
    assert any("review.rules name nobody who may decide dba" in r.getMessage() for r in caplog.records)
