"""Every `/access` command against the devstack Teleport over gRPC: what people read, what Teleport holds.

Each test types a command as someone (`say`), then checks two things: the reply as the console renders it,
and what the stand-in Teleport stored (`teleport.store`). A refusal must leave Teleport exactly as it was.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatops_bot.adapters.console.render import render
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from commands import messages
from commands.context import Context
from commands.dispatch import dispatch
from commands.model import AccessRequest, ChatUser, RequestState, Role, RoleConditions, User
from commands.reply import Action, Invocation, Reply
from chatops_bot.teleport.client import TeleportClient
from conftest import ClientFactory, FixedClock, Unchanged

MakeContext = Callable[..., Context]

# --- seed variants: the demo seed with one thing changed ------------------------------------------------

REQUESTER_BLOCK = "      suggested_reviewers: [bob]\n      max_duration: 8h\n"
BOT_REVIEW_BLOCK = '    review_requests:\n      submit_for_users: ["*"]\n'


def variant(*changes: tuple[str, str], extra: str = "") -> str:
    """The demo seed with each (old, new) replaced once, plus extra resources."""
    text = demo_seed_text()
    for old, new in changes:
        assert text.count(old) == 1, f"the demo seed no longer holds {old!r}"
        text = text.replace(old, new)
    return text + extra


def user(name: str, *roles: str) -> str:
    listed = ", ".join(roles)
    return f"---\nkind: user\nversion: v2\nmetadata: {{name: {name}}}\nspec: {{roles: [{listed}]}}\n"


REASON_REQUIRED = variant((REQUESTER_BLOCK, REQUESTER_BLOCK + "      reason: {mode: required}\n"))
# Two approvals per request; dave reviews dba too; erin both requests and reviews dba.
TWO_APPROVALS = variant(
    (REQUESTER_BLOCK, REQUESTER_BLOCK + "      thresholds: [{name: two, approve: 2, deny: 2}]\n"),
    extra=user("dave", "dba-reviewer") + user("erin", "requester", "dba-reviewer"),
)
# The bot may review dba itself (review.mode: as_bot).
BOT_REVIEWS = variant((BOT_REVIEW_BLOCK, BOT_REVIEW_BLOCK + "      roles: [dba]\n"))
BOT_REVIEWS_TWO_APPROVALS = variant(
    (BOT_REVIEW_BLOCK, BOT_REVIEW_BLOCK + "      roles: [dba]\n"),
    (REQUESTER_BLOCK, REQUESTER_BLOCK + "      thresholds: [{name: two, approve: 2, deny: 1}]\n"),
)
BOT_REVIEWS_TWO_DENIALS = variant(
    (BOT_REVIEW_BLOCK, BOT_REVIEW_BLOCK + "      roles: [dba]\n"),
    (REQUESTER_BLOCK, REQUESTER_BLOCK + "      thresholds: [{name: two, approve: 1, deny: 2}]\n"),
)
# pat may preview dba requests but review none.
PREVIEWER = variant(
    extra="---\nkind: role\nversion: v7\nmetadata: {name: previewer}\n"
    "spec: {allow: {review_requests: {preview_as_roles: [dba]}}}\n" + user("pat", "previewer")
)
# dave requests `auditor`, which bob may not review: a request bob and alice cannot see.
AUDITOR = variant(
    extra="""---
kind: role
version: v7
metadata: {name: auditor}
spec: {allow: {logins: [audit]}}
---
kind: role
version: v7
metadata: {name: auditor-requester}
spec: {allow: {request: {roles: [auditor]}}}
"""
    + user("dave", "auditor-requester")
)


@pytest.fixture
def seed_yaml() -> str:
    """Overridden per test with `@pytest.mark.parametrize("seed_yaml", [VARIANT])`."""
    return demo_seed_text()


@pytest.fixture
def seed(seed_yaml: str) -> Seed:
    return load_seed(seed_yaml)


def with_seed(text: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("seed_yaml", [text], ids=["seed variant"])


@pytest.fixture
def ctx(make_context: MakeContext) -> Context:
    return make_context()


# --- helpers --------------------------------------------------------------------------------------------


async def say(ctx: Context, who: str, text: str) -> Reply:
    """`who` types `/access <text>` in the console."""
    return await dispatch(Invocation(platform="console", actor=ChatUser("console", who, who), text=text), ctx)


def shown(reply: Reply) -> str:
    """Everything the person sees: the text and every card, as the console renders it."""
    return render(reply)


def requests(teleport: DevTeleport) -> list[AccessRequest]:
    return list(teleport.store.requests.values())


def only_request(teleport: DevTeleport) -> AccessRequest:
    stored = requests(teleport)
    assert len(stored) == 1, stored
    return stored[0]


def field(reply: Reply, label: str) -> str:
    (card,) = reply.cards
    values = [f.value for f in card.fields if f.label == label]
    assert len(values) == 1, (label, card.fields)
    return values[0]


async def create(
    ctx: Context, who: str = "alice", text: str = "request dba INC-4411 replica lag"
) -> AccessRequest:
    reply = await say(ctx, who, text)
    assert reply.ok, reply.text
    (card,) = reply.cards
    return card.request


async def made_with_tsh(client: TeleportClient, reason: str, *roles: str) -> AccessRequest:
    """A request its user made outside chat (`tsh request create`), with their own identity: the bot
    refuses a second pending request for the same roles, Teleport does not."""
    user = client.identity.username
    return await client.create_request(user=user, roles=list(roles or ("dba",)), reason=reason)


def reasons(reply: Reply) -> list[str]:
    """The reason column of a list reply, top to bottom."""
    return [line.split(" · ")[1] for line in reply.text.splitlines()[1:] if " · " in line]


async def refused(ctx: Context, teleport: DevTeleport, who: str, text: str) -> str:
    """Run a command that must be refused; returns the reply text, after checking Teleport is unchanged."""
    with Unchanged(teleport):
        reply = await say(ctx, who, text)
    assert not reply.ok, reply.text
    assert not reply.cards
    assert "Sorry, something went wrong" not in reply.text
    return reply.text


# --- request --------------------------------------------------------------------------------------------


async def test_request_stores_roles_reason_duration_and_reviewers(
    ctx: Context, teleport: DevTeleport
) -> None:
    reply = await say(ctx, "alice", "request dba --for 2h --reviewers bob INC-4411 replica lag")

    stored = only_request(teleport)
    assert (stored.user, stored.roles, stored.state) == ("alice", ("dba",), RequestState.PENDING)
    assert stored.reason == "INC-4411 replica lag"
    assert stored.suggested_reviewers == ("bob",)
    assert stored.created and stored.access_expires and stored.max_duration
    assert abs(stored.access_expires - stored.created - timedelta(hours=2)) < timedelta(seconds=5)
    assert abs(stored.max_duration - stored.created - timedelta(hours=2)) < timedelta(seconds=5)

    assert reply.ok
    assert reply.text == f"Requested dba for alice (request {stored.id[-8:]}). Asked to review: bob."
    assert field(reply, "Request") == stored.id
    assert field(reply, "Roles") == "dba"
    assert field(reply, "Reason") == "INC-4411 replica lag"
    assert field(reply, "Reviewers asked") == "bob"
    assert field(reply, "State") == "Pending (0 of 1 approvals)"
    assert field(reply, "Access until") == f"{stored.access_expires:%Y-%m-%d %H:%M} UTC (in 2h)"
    assert reply.cards[0].actions == ()  # alice cannot review her own request


async def test_the_card_shows_the_access_teleport_grants_for_a_short_request(
    ctx: Context, teleport: DevTeleport
) -> None:
    # Teleport's validate(): --for 13m is 13 minutes of access and 13-minute certificates, not 30 hours.
    reply = await say(ctx, "alice", "request dba --for 13m INC-4411 quick look")

    stored = only_request(teleport)
    assert stored.created and stored.access_expires and stored.session_ttl and stored.resource_expiry
    for moment in (stored.access_expires, stored.session_ttl, stored.resource_expiry):
        assert abs(moment - stored.created - timedelta(minutes=13)) < timedelta(seconds=5)
    assert field(reply, "Access until").startswith(f"{stored.access_expires:%Y-%m-%d %H:%M} UTC")


@with_seed(TWO_APPROVALS)
async def test_request_names_the_reviewers_asked_for(ctx: Context, teleport: DevTeleport) -> None:
    reply = await say(ctx, "alice", "request dba --reviewers @dave,bob INC-1")
    assert only_request(teleport).suggested_reviewers == ("dave", "bob")
    assert reply.text.endswith("Asked to review: dave, bob.")


async def test_reviewers_who_cannot_review_are_named_before_anything_is_created(
    ctx: Context, teleport: DevTeleport
) -> None:
    text = await refused(ctx, teleport, "alice", "request dba --reviewers carol,mallory,alice,bob INC-1")
    assert text == (
        "Nothing was requested: carol may not review requests for dba; mallory is not a Teleport user; "
        "alice is you, and nobody may review their own request. Name other reviewers, or leave out --reviewers."
    )
    assert requests(teleport) == []
    # With the duration checked by the same dry run.
    text = await refused(ctx, teleport, "alice", "request dba --for 1h --reviewers carol INC-1")
    assert text.startswith("Nothing was requested: carol may not review requests for dba.")


EXTRA_ROLE_REVIEWER = variant(
    extra="---\nkind: role\nversion: v7\nmetadata: {name: extra}\nspec: {allow: {logins: [x]}}\n"
    + user("gus", "dba-reviewer", "extra")
)


@with_seed(EXTRA_ROLE_REVIEWER)
async def test_a_reviewer_whose_roles_cannot_be_loaded_is_refused_too(ctx: Context, teleport: DevTeleport) -> None:
    del teleport.store.seed.roles["extra"]  # `tctl rm role/extra`, gus still holding it: fail closed
    text = await refused(ctx, teleport, "alice", "request dba --reviewers gus INC-1")
    assert text.startswith("Nothing was requested: gus's Teleport roles could not all be loaded")


async def test_a_second_identical_pending_request_points_to_the_first(
    ctx: Context, teleport: DevTeleport, client_for: ClientFactory
) -> None:
    first = await create(ctx)
    short = first.id[-8:]
    for again in ("request dba INC-4411 again", "request dba --for 1h other words"):
        assert await refused(ctx, teleport, "alice", again) == (
            f"You already asked for dba: {short}, still pending. Nothing new was requested. "
            f"`/access show {short}` shows it; `/access cancel {short}` withdraws it."
        )
    # Made outside chat, the same: what counts is what Teleport holds.
    await say(ctx, "alice", f"cancel {short}")
    elsewhere = await made_with_tsh(client_for("alice"), "from tsh")
    assert elsewhere.id[-8:] in await refused(ctx, teleport, "alice", "request dba INC-1")
    # Once it is decided, asking again is fine.
    await say(ctx, "bob", f"deny {elsewhere.id} no")
    assert (await say(ctx, "alice", "request dba INC-4411 again")).ok


# --- roles ----------------------------------------------------------------------------------------------

ROLES_VARIANT = variant(
    (REQUESTER_BLOCK, "      suggested_reviewers: [bob]\n      max_duration: 8h\n      reason: {mode: required}\n"),
    extra="""---
kind: role
version: v7
metadata: {name: viewer}
spec: {options: {max_session_ttl: 2h}, allow: {logins: [viewer]}}
---
kind: role
version: v7
metadata: {name: viewer-requester}
spec: {allow: {request: {roles: [viewer]}}}
""" + user("alice", "requester", "viewer-requester", "developer").replace("alice}", "alice2}"),
)


async def test_roles_says_what_alice_may_request_for_how_long_and_who_reviews(
    ctx: Context, teleport: DevTeleport
) -> None:
    with Unchanged(teleport):
        reply = await say(ctx, "alice", "roles")
    assert reply.ok
    assert reply.text.splitlines() == [
        "Roles you may request (1)",
        "dba \u00b7 up to 8h \u00b7 reason optional \u00b7 reviewers asked: bob",
        "Ask with `/access request ROLE --for DURATION REASON…`; without --for you get the longest.",
    ]
    assert (await say(ctx, "carol", "roles")).text == (
        "Teleport lets you request no roles, so there is nothing to ask for. Ask an admin if that is wrong."
    )


@with_seed(ROLES_VARIANT)
async def test_roles_shows_each_roles_own_limit_and_reason_rule(ctx: Context, teleport: DevTeleport) -> None:
    with Unchanged(teleport):
        reply = await say(ctx, "alice2", "roles")
    assert reply.text.splitlines()[:3] == [
        "Roles you may request (2)",
        "dba \u00b7 up to 8h \u00b7 reason required \u00b7 reviewers asked: bob",
        "viewer \u00b7 up to 2h \u00b7 reason optional \u00b7 reviewers asked: bob",
    ]


async def test_help_lists_roles_and_cancel(ctx: Context) -> None:
    text = (await say(ctx, "carol", "help")).text
    assert "/access roles\n    What you may request." in text
    assert "/access cancel ID\n    Withdraw your own pending request." in text


# --- cancel ---------------------------------------------------------------------------------------------


async def test_the_requester_withdraws_a_pending_request_by_either_form_of_its_id(
    ctx: Context, teleport: DevTeleport
) -> None:
    for form in (lambda i: i[-8:], lambda i: i):
        request = await create(ctx)
        reply = await say(ctx, "alice", f"cancel {form(request.id)}")
        assert reply.ok, reply.text
        assert reply.text == (
            f"You withdrew your request for dba ({request.id[-8:]}). Nothing was granted; "
            "its cards and the reviewers' messages say it was withdrawn."
        )
        assert request.id not in teleport.store.requests


async def test_nobody_else_may_withdraw_a_request(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    short = request.id[-8:]
    # bob may see it (he reviews dba), so he is told whose it is; carol may not even see it.
    assert await refused(ctx, teleport, "bob", f"cancel {short}") == (
        f"Only alice, who made request {short}, may withdraw it."
    )
    assert await refused(ctx, teleport, "carol", f"cancel {request.id}") == (
        f"There is no access request with ID {request.id} that you can see."
    )


async def test_a_decided_request_cannot_be_withdrawn(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await say(ctx, "bob", f"approve {request.id}")
    text = await refused(ctx, teleport, "alice", f"cancel {request.id}")
    assert text.startswith(f"Request {request.id[-8:]} was already approved by bob at ")
    assert text.endswith("Only a pending request can be withdrawn.")


async def test_request_without_duration_gets_the_role_maximum(ctx: Context, teleport: DevTeleport) -> None:
    await create(ctx)
    stored = only_request(teleport)
    assert stored.access_expires and stored.created
    assert abs(stored.access_expires - stored.created - timedelta(hours=8)) < timedelta(seconds=5)


async def test_request_longer_than_the_role_allows_is_refused(ctx: Context, teleport: DevTeleport) -> None:
    text = await refused(ctx, teleport, "alice", "request dba --for 10h INC-4411 replica lag")
    assert text == (
        "You asked for 10h, but dba allows at most 8h of access. Nothing was requested; "
        "try again with --for 8h or less."
    )
    assert requests(teleport) == []


async def test_request_for_a_role_alice_may_not_request_is_refused(
    ctx: Context, teleport: DevTeleport
) -> None:
    for command in ("request dba-reviewer INC-1", "request dba-reviewer --for 1h INC-1"):
        text = await refused(ctx, teleport, "alice", command)
        assert text == "You may not request dba-reviewer. Roles you may request: dba."
    assert requests(teleport) == []


async def test_a_mistyped_role_gets_the_nearest_one_alice_may_request(ctx: Context, teleport: DevTeleport) -> None:
    text = await refused(ctx, teleport, "alice", "request dab --for 1h INC-1")

    assert text == "You may not request dab. Did you mean dba? Roles you may request: dba."
    assert requests(teleport) == []


@with_seed(REASON_REQUIRED)
@pytest.mark.parametrize("command", ["request dba", "request dba --for 2h", "request dba --reviewers bob"])
async def test_request_without_a_required_reason_is_refused(
    ctx: Context, teleport: DevTeleport, command: str
) -> None:
    text = await refused(ctx, teleport, "alice", command)
    assert text == (
        "Teleport requires a reason to request dba. Add one after the roles, "
        "e.g. `/access request dba INC-4411 replica lag`."
    )
    assert requests(teleport) == []
    await create(ctx, text=command + " INC-4411")
    assert only_request(teleport).reason == "INC-4411"


async def test_request_with_bad_grammar_says_how(ctx: Context, teleport: DevTeleport) -> None:
    text = await refused(ctx, teleport, "alice", "request dba INC-1 --for 2h")
    assert text == (
        "`--for` must come before the reason text.\nUsage: `/access request ROLE[,ROLE…] [--for DURATION] "
        "[--reviewers USER[,USER…]] [--reason TEXT | TEXT…]`"
    )


async def test_hostile_text_is_stored_as_typed_but_shown_harmlessly(
    ctx: Context, teleport: DevTeleport
) -> None:
    hostile = "@channel <!here> <@U123> *bold* \x07"
    reply = await say(ctx, "alice", f"request dba {hostile}")
    assert reply.ok, reply.text
    stored = only_request(teleport)
    assert stored.reason == "@channel <!here> <@U123> *bold*"  # as typed, the bell removed

    listed = await say(ctx, "bob", "list")
    card = await say(ctx, "bob", f"show {stored.id}")
    for seen in (shown(reply), listed.text, shown(card)):
        assert "\x07" not in seen
        # Markup and mentions are shown as typed, but only inside code, which no platform interprets and where
        # a mention notifies nobody.
        outside_code = re.sub(r"```.*?```|`[^`]*`", "", seen, flags=re.DOTALL)
        for typed in ("@channel", "<!here>", "<@U123>", "*bold*"):
            assert typed in seen and typed not in outside_code, typed


async def test_hostile_role_name_in_teleports_refusal_pings_nobody(
    ctx: Context, teleport: DevTeleport
) -> None:
    text = await refused(ctx, teleport, "alice", "request @channel INC-1")
    assert "@channel" not in text
    assert text == "You may not request @\u2060channel. Roles you may request: dba."


# --- list -----------------------------------------------------------------------------------------------


async def test_list_defaults_to_pending_for_reviewers_and_mine_for_others(
    ctx: Context, teleport: DevTeleport
) -> None:
    request = await create(ctx)
    line = f"{request.id[-8:]}  alice  dba  · INC-4411 replica lag · requested just now · Pending (0 of 1 approvals)"

    bob = await say(ctx, "bob", "list")
    assert bob.text.splitlines() == ["Waiting for your review (1, page 1 of 1)", line]
    alice = await say(ctx, "alice", "list")
    assert alice.text.splitlines() == ["Your requests (1, page 1 of 1)", line]
    assert (await say(ctx, "carol", "list")).text == "You have no access requests."
    assert (await say(ctx, "carol", "list all")).text == "There are no access requests to show."
    assert (await say(ctx, "alice", "list pending")).text == "Nothing is waiting for your review."


@with_seed(PREVIEWER)
async def test_list_defaults_to_mine_for_someone_who_may_only_preview(
    ctx: Context, teleport: DevTeleport
) -> None:
    await create(ctx)
    assert (await say(ctx, "pat", "list")).text == "You have no access requests."


@with_seed(TWO_APPROVALS)
async def test_pending_leaves_out_own_requests_and_ones_already_reviewed(
    ctx: Context, teleport: DevTeleport, client_for: ClientFactory
) -> None:
    first = await create(ctx, "alice", "request dba first")
    second = await made_with_tsh(client_for("alice"), "second")
    own = await create(ctx, "erin", "request dba erins own")

    erin = await say(ctx, "erin", "list")
    assert erin.text.splitlines()[0] == "Waiting for your review (2, page 1 of 1)"
    assert reasons(erin) == ["second", "first"]
    assert reasons(await say(ctx, "erin", "list mine")) == ["erins own"]
    assert own.user == "erin"

    reply = await say(ctx, "bob", f"approve {first.id}")
    assert reply.text == (
        f"You approved request {first.id[-8:]}. It needs more approvals before it takes effect."
    )
    assert reasons(await say(ctx, "bob", "list")) == ["erins own", "second"]
    dave = await say(ctx, "dave", "list")
    assert reasons(dave) == ["erins own", "second", "first"]
    assert "Pending (1 of 2 approvals)" in dave.text


async def test_active_shows_time_left(make_context: MakeContext, teleport: DevTeleport) -> None:
    ctx = make_context()
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    request = await create(ctx, text="request dba --for 2h INC-1")
    assert (await say(ctx, "alice", "list active")).text == "There is no active elevated access."
    await say(ctx, "bob", f"approve {request.id}")

    active = await say(ctx, "alice", "list active")
    assert active.text.splitlines() == [
        "Active access (1, page 1 of 1)",
        f"{request.id[-8:]}  alice  dba  · INC-1 · requested just now · Approved, 2h left",
    ]
    clock.advance(timedelta(minutes=30))
    assert "Approved, 1h30m left" in (await say(ctx, "bob", "list active")).text
    clock.advance(timedelta(hours=2))
    assert (await say(ctx, "alice", "list active")).text == "There is no active elevated access."


async def test_list_pages_newest_first(ctx: Context, teleport: DevTeleport, client_for: ClientFactory) -> None:
    alice = client_for("alice")
    for number in range(25):
        await made_with_tsh(alice, f"INC-{number}")

    pages = [await say(ctx, "bob", f"list --page {page}") for page in (1, 2, 3)]
    first, second, third = (page.text.splitlines() for page in pages)
    assert first[0] == "Waiting for your review (25, page 1 of 3)"
    assert first[-1] == "More: `/access list pending --page 2`"
    assert second[-1] == "More: `/access list pending --page 3`"
    assert third[0] == "Waiting for your review (25, page 3 of 3)"
    lines = first[1:-1] + second[1:-1] + third[1:]
    assert [len(first[1:-1]), len(second[1:-1]), len(third[1:])] == [10, 10, 5]
    # Newest first.
    assert [line.split(" · ")[1] for line in lines] == [f"INC-{n}" for n in reversed(range(25))]

    text = await refused(ctx, teleport, "bob", "list --page 4")
    assert text == "There is no page 4: the list has 3 pages."

    # Requests made within a minute share their first 8 characters (UUIDv7 starts with the time): the
    # list shows each one's short ID, its random last 8 characters, and each one shown finds its request.
    ids = [line.split()[0] for line in lines]
    assert len(set(ids)) == 25
    for shown_id, number in zip(ids[:3], (24, 23, 22)):
        card = await say(ctx, "bob", f"show {shown_id}")
        assert card.ok, card.text
        assert field(card, "Reason") == f"INC-{number}"


# --- show -----------------------------------------------------------------------------------------------


async def test_show_by_full_id_and_by_short_id(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    for shown_id in (request.id, request.id[-8:], request.id[-8:].upper(), request.id.upper()):
        reply = await say(ctx, "bob", f"show {shown_id}")
        assert reply.ok, reply.text
        assert reply.text == f"Request {request.id[-8:]}"
        assert field(reply, "Request") == request.id
        assert field(reply, "State") == "Pending (0 of 1 approvals)"
        assert reply.cards[0].actions == (Action.APPROVE, Action.DENY)
    own = await say(ctx, "alice", f"show {request.id}")
    assert own.ok and own.cards[0].actions == ()
    # A prefix is not an ID: those of requests made in the same minute are the same (UUIDv7).
    assert (await refused(ctx, teleport, "bob", f"show {request.id[:13]}")).startswith(
        f"`{request.id[:13]}` is not a request ID: give the full request ID or its short ID"
    )
    # Its first 8 characters, copied instead of the last 8, get pointed to the short ID, for whoever may see it.
    assert await refused(ctx, teleport, "bob", f"show {request.id[:8]}") == (
        f"`{request.id[:8]}` is the start of request {request.id}; its short ID is the last 8 characters: "
        f"`{request.id[-8:]}`."
    )
    assert await refused(ctx, teleport, "carol", f"show {request.id[:8]}") == (
        f"There is no access request with ID {request.id[:8]} that you can see."
    )


async def test_show_hides_requests_from_people_who_may_not_see_them(
    ctx: Context, teleport: DevTeleport
) -> None:
    request = await create(ctx)
    text = await refused(ctx, teleport, "carol", f"show {request.id}")
    assert text == f"There is no access request with ID {request.id} that you can see."
    text = await refused(ctx, teleport, "carol", f"show {request.id[-8:]}")
    assert text == f"There is no access request with ID {request.id[-8:]} that you can see."


async def test_show_after_approval_lists_the_review(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await say(ctx, "bob", f"approve {request.id} go ahead")
    reply = await say(ctx, "alice", f"show {request.id}")
    assert field(reply, "State") == "Approved by bob: go ahead"
    assert field(reply, "Review") == "bob approved: go ahead"
    assert reply.cards[0].actions == ()


@with_seed(AUDITOR)
async def test_every_form_of_the_id_of_a_request_someone_may_not_see_gets_the_same_answer(
    ctx: Context, teleport: DevTeleport
) -> None:
    hidden = await create(ctx, "dave", "request auditor audit")
    unknown = "0191e2a4-0000-7000-8000-00000000abcd"
    for who in ("alice", "bob", "carol"):
        for verb in ("show", "cancel"):
            for form in (str.lower, str.upper, lambda i: i[-8:], lambda i: i[-8:].upper()):
                answers = [await refused(ctx, teleport, who, f"{verb} {form(i)}") for i in (hidden.id, unknown)]
                assert answers == [
                    f"There is no access request with ID {form(i).lower()} that you can see."
                    for i in (hidden.id, unknown)
                ]
    # A reviewer of other roles gets the same answer when reviewing it; someone who reviews nothing is
    # told that, whatever the ID.
    for form in (hidden.id, hidden.id[-8:], unknown, unknown[-8:]):
        assert await refused(ctx, teleport, "bob", f"approve {form}") == (
            f"There is no access request with ID {form} that you can see."
        )
        assert await refused(ctx, teleport, "carol", f"deny {form} no") == (
            "You may not review this request: you have no role that allows reviewing access requests."
        )


async def test_a_short_id_two_requests_share_lists_them_and_finds_neither(
    ctx: Context, teleport: DevTeleport
) -> None:
    first = await create(ctx)
    # 32 random bits rarely collide; a copy with another start makes them.
    twin = replace(first, id="00000000" + first.id[8:], reason="twin")
    teleport.store.put(twin)
    short = first.id[-8:]
    assert await refused(ctx, teleport, "bob", f"approve {short}") == (
        f"ID {short} matches 2 requests: {first.id} (alice: dba), {twin.id} (alice: dba). Give the full ID."
    )
    assert (await say(ctx, "bob", f"show {first.id}")).ok


# --- approve and deny -----------------------------------------------------------------------------------


async def test_approve_on_behalf_of_the_reviewer(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    reply = await say(ctx, "bob", f"approve {request.id[-8:]} go ahead")
    assert reply.ok
    assert reply.text == f"You approved request {request.id[-8:]}. The request is now approved."

    stored = only_request(teleport)
    assert stored.state is RequestState.APPROVED
    (review,) = stored.reviews
    assert (review.author, review.submitted_by, review.reason) == ("bob", "chatops-bot", "go ahead")
    assert review.proposed_state is RequestState.APPROVED
    assert stored.resolve_reason == "go ahead"


async def test_deny_with_a_reason(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    reply = await say(ctx, "bob", f"deny {request.id} not during the freeze")
    assert reply.text == f"You denied request {request.id[-8:]}. The request is now denied."
    stored = only_request(teleport)
    assert stored.state is RequestState.DENIED
    assert stored.resolve_reason == "not during the freeze"
    assert [(r.author, r.proposed_state, r.reason) for r in stored.reviews] == [
        ("bob", RequestState.DENIED, "not during the freeze")
    ]


async def test_unknown_chat_user_is_told_how_to_get_linked(
    bot: object, teleport: DevTeleport, ctx: Context
) -> None:
    request = await create(ctx)
    directory = TeleportDirectory(bot, traits={"console": "console_id"}, user_map={})
    linked = Context(backend=ctx.backend, directory=directory, clock=FixedClock())
    for command in (f"approve {request.id}", "list", "request dba INC-1", f"show {request.id}"):
        text = await refused(linked, teleport, "mallory", command)
        assert text == (
            "I don't know which Teleport user you are, mallory. To get linked, add the trait "
            "`console_id: mallory` to your Teleport user (or ask an admin to add `console:mallory` "
            "to `users.map` in the bot's config)."
        )


class CountingClient:
    """The bot's client, counting how often the directory lists every Teleport user."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.listings = 0

    async def list_users(self) -> list[User]:
        self.listings += 1
        return await self.client.list_users()  # type: ignore[attr-defined,no-any-return]


async def test_directory_lists_users_once_per_lookup(bot: object, teleport: DevTeleport) -> None:
    counting = CountingClient(bot)
    directory = TeleportDirectory(counting, traits={"slack": "slack_user_id"}, user_map={})
    assert await directory.teleport_user(ChatUser("slack", "U0BOB", "bob")) == "bob"
    assert counting.listings == 1
    with pytest.raises(Exception, match="I don't know which Teleport user you are, mallory"):
        await directory.teleport_user(ChatUser("slack", "U0MALLORY", "mallory"))
    assert counting.listings == 1  # the index is seconds old: a miss does not list everyone again
    fresh = TeleportDirectory(counting, traits={"slack": "slack_user_id"}, user_map={})
    with pytest.raises(Exception, match="mallory"):
        await fresh.teleport_user(ChatUser("slack", "U0MALLORY", "mallory"))
    assert counting.listings == 2  # built once for the first lookup, not twice


async def test_review_of_an_unknown_or_malformed_id_is_refused(ctx: Context, teleport: DevTeleport) -> None:
    await create(ctx)
    unknown = "0191e2a4-0000-7000-8000-000000000000"
    assert await refused(ctx, teleport, "bob", f"approve {unknown}") == (
        f"There is no access request with ID {unknown} that you can see."
    )
    assert await refused(ctx, teleport, "bob", "approve ffffffff") == (
        "There is no access request with ID ffffffff that you can see."
    )
    too_long = "3f2a1c9e-8b7d-4c1e-9f00-5a6b7c8d9e0f0"
    for malformed, echoed in (("xyz", "xyz"), ("ffffff", "ffffff"), ("<!here>", "‹!here›"),
                              (too_long, too_long[:31] + "…")):
        assert await refused(ctx, teleport, "bob", f"approve {malformed}") == (
            f"`{echoed}` is not a request ID: give the full request ID or its short ID, the last 8 characters "
            "that lists and replies show.\nUsage: `/access approve ID [REASON…]`"
        )
    assert await refused(ctx, teleport, "bob", "deny") == (
        "Give the ID of the request.\nUsage: `/access deny ID [REASON…]`"
    )


async def test_someone_who_may_not_review_is_refused_with_the_rule(
    ctx: Context, teleport: DevTeleport
) -> None:
    request = await create(ctx)
    assert await refused(ctx, teleport, "carol", f"approve {request.id}") == (
        "You may not review this request: you have no role that allows reviewing access requests."
    )


async def test_the_short_id_in_replies_finds_the_request_even_among_requests_made_together(
    ctx: Context, teleport: DevTeleport, client_for: ClientFactory
) -> None:
    # UUIDv7s made within a minute share their first 8 characters; the short ID is their random end.
    first, second = await create(ctx), await made_with_tsh(client_for("alice"), "again")
    assert first.id[:8] == second.id[:8] and first.id[-8:] != second.id[-8:]
    reply = await say(ctx, "bob", f"approve {second.id[-8:]}")
    assert reply.text == f"You approved request {second.id[-8:]}. The request is now approved."
    assert teleport.store.requests[first.id].state is RequestState.PENDING


async def test_own_request_cannot_be_reviewed(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    assert await refused(ctx, teleport, "alice", f"approve {request.id}") == (
        "You cannot review your own access request."
    )


async def test_already_resolved_request_says_by_whom_and_when(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await say(ctx, "bob", f"approve {request.id}")
    (review,) = only_request(teleport).reviews
    assert review.created
    for command in (f"approve {request.id}", f"deny {request.id} too late"):
        assert await refused(ctx, teleport, "bob", command) == (
            f"Request {request.id[-8:]} was already approved by you at {review.created:%Y-%m-%d %H:%M} UTC."
        )
    # Someone who may not review it learns nothing about how it ended.
    assert await refused(ctx, teleport, "carol", f"approve {request.id}") == (
        "You may not review this request: you have no role that allows reviewing access requests."
    )


@with_seed(TWO_APPROVALS)
async def test_a_review_that_does_not_decide_says_what_is_missing(
    ctx: Context, teleport: DevTeleport, client_for: ClientFactory
) -> None:
    first = await create(ctx, text="request dba first")
    second = await made_with_tsh(client_for("alice"), "second")
    reply = await say(ctx, "bob", f"approve {first.id}")
    assert reply.text == (
        f"You approved request {first.id[-8:]}. It needs more approvals before it takes effect."
    )
    reply = await say(ctx, "bob", f"deny {second.id} not now")
    assert reply.text == f"You denied request {second.id[-8:]}. It needs more denials before it is denied."
    reply = await say(ctx, "dave", f"deny {second.id} agreed")
    assert reply.text == f"You denied request {second.id[-8:]}. The request is now denied."
    assert [r.state for r in requests(teleport)] == [RequestState.PENDING, RequestState.DENIED]
    # bob has had his say on `first`: no buttons for him any more, but still for dave.
    assert (await say(ctx, "bob", f"show {first.id}")).cards[0].actions == ()
    assert (await say(ctx, "dave", f"show {first.id}")).cards[0].actions == (Action.APPROVE, Action.DENY)


@with_seed(TWO_APPROVALS)
async def test_already_reviewed_request_is_refused(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await say(ctx, "bob", f"approve {request.id}")
    assert await refused(ctx, teleport, "bob", f"approve {request.id}") == (
        f"You have already reviewed request {request.id[-8:]}; Teleport counts one review per person."
    )
    reply = await say(ctx, "dave", f"approve {request.id} second pair of eyes")
    assert reply.text == f"You approved request {request.id[-8:]}. The request is now approved."
    stored = only_request(teleport)
    assert stored.state is RequestState.APPROVED
    assert [r.author for r in stored.reviews] == ["bob", "dave"]


async def test_web_only_roles_are_sent_to_teleport(make_context: MakeContext, teleport: DevTeleport) -> None:
    ctx = make_context(web_only_roles=frozenset({"dba"}))
    request = await create(ctx)
    assert await refused(ctx, teleport, "bob", f"approve {request.id}") == (
        "Requests for dba must be reviewed in Teleport, where MFA applies (`tsh request review`)."
    )
    with_url = make_context(web_only_roles=frozenset({"dba"}), web_proxy_addr="https://teleport.example.com/")
    assert await refused(with_url, teleport, "bob", f"deny {request.id} no") == (
        "Requests for dba must be reviewed in Teleport, where MFA applies: "
        f"https://teleport.example.com/web/requests/{request.id}."
    )
    card = await say(ctx, "bob", f"show {request.id}")
    assert card.cards[0].actions == ()


@with_seed(BOT_REVIEWS_TWO_APPROVALS)
async def test_as_bot_refuses_requests_needing_two_approvals(
    make_context: MakeContext, teleport: DevTeleport
) -> None:
    ctx = make_context(review_mode="as_bot")
    request = await create(ctx)
    assert await refused(ctx, teleport, "bob", f"approve {request.id}") == (
        f"Request {request.id[-8:]} needs 2 approvals, but this bot reviews as one identity "
        "(review.mode: as_bot) and can only count once. "
        "Review it in Teleport (`tsh request review`) or the Web UI."
    )
    # One denial decides it, so the bot may deny.
    reply = await say(ctx, "bob", f"deny {request.id} not now")
    assert reply.text == f"You denied request {request.id[-8:]}. The request is now denied."
    (review,) = only_request(teleport).reviews
    assert (review.author, review.reason) == ("chatops-bot", "reviewed in chat by bob: not now")


@with_seed(BOT_REVIEWS_TWO_DENIALS)
async def test_as_bot_refuses_to_deny_requests_needing_two_denials(
    make_context: MakeContext, teleport: DevTeleport
) -> None:
    ctx = make_context(review_mode="as_bot")
    request = await create(ctx)
    assert await refused(ctx, teleport, "bob", f"deny {request.id} no") == (
        f"Request {request.id[-8:]} needs 2 denials, but this bot reviews as one identity "
        "(review.mode: as_bot) and can only count once. "
        "Review it in Teleport (`tsh request review`) or the Web UI."
    )
    reply = await say(ctx, "bob", f"approve {request.id}")
    assert reply.text == f"You approved request {request.id[-8:]}. The request is now approved."


@with_seed(BOT_REVIEWS)
async def test_as_bot_approves_as_the_bot_naming_the_reviewer(
    make_context: MakeContext, teleport: DevTeleport
) -> None:
    ctx = make_context(review_mode="as_bot")
    request = await create(ctx)
    reply = await say(ctx, "bob", f"approve {request.id} go ahead")
    assert reply.text == f"You approved request {request.id[-8:]}. The request is now approved."
    stored = only_request(teleport)
    assert stored.state is RequestState.APPROVED
    (review,) = stored.reviews
    assert (review.author, review.submitted_by) == ("chatops-bot", "")
    assert review.reason == "reviewed in chat by bob: go ahead"
    # The bot's own check still applies: carol is refused before anything reaches Teleport.
    other = await create(ctx)
    assert await refused(ctx, teleport, "carol", f"approve {other.id}") == (
        "You may not review this request: you have no role that allows reviewing access requests."
    )


async def test_resolve_mode_sets_the_state_with_the_reviewer_as_delegator(
    make_context: MakeContext, teleport: DevTeleport
) -> None:
    ctx = make_context(review_mode="resolve")
    request = await create(ctx)
    reply = await say(ctx, "bob", f"approve {request.id} go ahead")
    assert reply.text == f"You approved request {request.id[-8:]}. The request is now approved."
    stored = only_request(teleport)
    assert (stored.state, stored.reviews, stored.resolve_reason) == (RequestState.APPROVED, (), "go ahead")
    assert teleport.store.audit == [
        {"event": "access_request.update", "id": request.id, "state": "APPROVED",
         "delegator": "console:bob", "updated_by": "chatops-bot"}
    ]
    assert await refused(ctx, teleport, "bob", f"deny {request.id} changed my mind") == (
        f"Request {request.id[-8:]} was already approved."
    )
    # The bot's check is the only gate in this mode: it must hold.
    other = await create(ctx)
    assert await refused(ctx, teleport, "carol", f"approve {other.id}") == (
        "You may not review this request: you have no role that allows reviewing access requests."
    )
    assert await refused(ctx, teleport, "alice", f"approve {other.id}") == (
        "You cannot review your own access request."
    )


async def test_deny_reason_required(make_context: MakeContext, teleport: DevTeleport) -> None:
    ctx = make_context(deny_reason_required=True)
    request = await create(ctx)
    assert await refused(ctx, teleport, "bob", f"deny {request.id}") == (
        "Say why you deny it: `/access deny ID REASON…` (review.deny_reason_required is on)."
    )
    reply = await say(ctx, "bob", f"deny {request.id} not now")
    assert reply.ok and only_request(teleport).state is RequestState.DENIED


# --- failures -------------------------------------------------------------------------------------------


async def test_teleport_unreachable_says_so(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await teleport.stop()
    for who, command in (("bob", "list"), ("alice", "request dba INC-1"), ("bob", f"approve {request.id}")):
        reply = await say(ctx, who, command)
        assert not reply.ok
        assert reply.text == "Teleport is unreachable right now; nothing was changed. Try again in a minute."
    assert only_request(teleport).state is RequestState.PENDING


class BrokenBackend:
    """An AccessBackend that knows alice and her roles, and fails with a bug when asked for requests."""

    async def get_user(self, name: str) -> User:
        return User(name, roles=("requester",))

    async def get_role(self, name: str) -> Role:
        return Role(name, allow=RoleConditions())

    async def list_requests(self, **_: object) -> list[AccessRequest]:
        raise RuntimeError("connection string postgres://admin:hunter2@db")


async def test_a_bug_is_logged_and_the_person_gets_an_apology(caplog: pytest.LogCaptureFixture) -> None:
    backend = BrokenBackend()
    directory = TeleportDirectory(backend, traits={}, user_map={})
    ctx = Context(backend=backend, directory=directory, clock=FixedClock())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="commands.dispatch"):
        reply = await say(ctx, "alice", "list")
    assert not reply.ok
    match = re.fullmatch(
        r"Sorry, something went wrong on my side \(error id ([0-9a-f]{12})\)\. "
        r"Check `/access list mine` before trying again\.",
        reply.text,
    )
    assert match, reply.text
    assert "hunter2" not in shown(reply)
    (record,) = caplog.records
    assert record.exc_info and isinstance(record.exc_info[1], RuntimeError)
    assert record.correlation_id == match.group(1)  # type: ignore[attr-defined]
    assert match.group(1) in record.getMessage()  # findable in plain-text logs too
    assert "Traceback" in caplog.text and "hunter2" in caplog.text


# --- help -----------------------------------------------------------------------------------------------


async def test_help(ctx: Context) -> None:
    for text in ("help", "", "   "):
        reply = await say(ctx, "carol", text)
        assert reply.ok
        lines = reply.text.splitlines()
        assert lines[0] == "Request, list and review Teleport access requests."
        for usage in ("/access request ROLE", "/access list", "/access show ID", "/access approve ID",
                      "/access deny ID", "/access help [SUBCOMMAND]"):
            assert any(line.startswith(usage) for line in lines), usage
        assert lines[-1] == "`/access help SUBCOMMAND` for details."


async def test_help_for_one_subcommand(ctx: Context) -> None:
    reply = await say(ctx, "carol", "help request")
    lines = reply.text.splitlines()
    assert lines[0].startswith("/access request ROLE[,ROLE…] [--for DURATION]")
    assert lines[1] == "Ask for one or more roles."
    assert lines[-1] == "Example: /access request dba --for 2h INC-4411 replica lag"
    reply = await say(ctx, "carol", "help APPROVE")
    assert reply.text.splitlines()[:2] == ["/access approve ID [REASON…]", "Approve a request."]


async def test_unknown_subcommand_suggests_the_nearest(ctx: Context, teleport: DevTeleport) -> None:
    assert await refused(ctx, teleport, "carol", "help aprove") == (
        "There is no subcommand `aprove`. Did you mean `approve`?\nUsage: `/access help [SUBCOMMAND]`"
    )
    assert await refused(ctx, teleport, "carol", "reqest dba") == (
        "Unknown subcommand `reqest`. Did you mean `request`?\n"
        "Usage: `/access request|roles|list|show|approve|deny|cancel|help …`"
    )


# --- property -------------------------------------------------------------------------------------------

WORDS = ("request", "list", "show", "approve", "deny", "help", "dba", "--for", "--page", "--reviewers",
         "--reason", "mine", "pending", "active", "all", "2h", "10h", "0", "@here", '"', "'", "\u2014for")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), max_size=6).map(" ".join),
))
@example("request dba --for 13d23h59m59s because")
@example("request dba \ud800")
@example("approve 000000")
@example("show " + "f" * 36)
@example("list --page 999999")
@example("request dba --reviewers " + ",".join(f"u{n}" for n in range(20)) + " x")
async def test_any_text_gets_a_reply_never_an_apology(ctx: Context, text: str) -> None:
    reply = await say(ctx, "alice", text)
    assert isinstance(reply, Reply)
    assert not reply.text.startswith("Sorry, something went wrong"), (text, reply.text)


# --- what the requester is told -------------------------------------------------------------------------


async def test_the_approval_tells_the_requester_how_to_use_the_access(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await say(ctx, "bob", f"approve {request.id} go")
    approved = teleport.store.requests[request.id]
    url = messages.web_link("teleport.example.com:443", request.id)
    text = messages.request_outcome(approved, url)
    assert text.endswith(
        f" To use it: `tsh login --request-id={request.id}`, or assume it in the Web UI: "
        f"https://teleport.example.com:443/web/requests/{request.id}."
    )
    assert "Web UI" not in messages.request_outcome(approved)
    denied = replace(approved, state=RequestState.DENIED)
    assert "tsh login" not in messages.request_outcome(denied, url)


async def test_no_reason_reads_the_same_on_card_and_list(ctx: Context, teleport: DevTeleport) -> None:
    reply = await say(ctx, "alice", "request dba")
    assert field(reply, "Reason") == "no reason given"
    assert reasons(await say(ctx, "alice", "list")) == ["no reason given"]


@pytest.mark.parametrize("text", ["list", "request dba INC-1", "show 00000000", "roles"])
async def test_someone_linked_to_a_teleport_user_that_does_not_exist_is_told_so(
        ctx: Context, teleport: DevTeleport, text: str) -> None:
    """The console's `--as`, or a users.map entry, naming a user Teleport does not have (renamed, deleted)."""
    assert await refused(ctx, teleport, "dave", text) == (
        "You are linked to the Teleport user dave, but Teleport has no such user (renamed or deleted?). Ask an "
        "admin to fix the link (the trait on your Teleport user, or `users.map`).")


async def test_the_requester_showing_approved_access_is_told_how_to_use_it(ctx: Context, teleport: DevTeleport) -> None:
    request = await create(ctx)
    await say(ctx, "bob", f"approve {request.id}")
    own = await say(ctx, "alice", f"show {request.id[-8:]}")
    assert own.text == f"Request {request.id[-8:]}. To use it: `tsh login --request-id={request.id}`."
    assert (await say(ctx, "bob", f"show {request.id[-8:]}")).text == f"Request {request.id[-8:]}"


async def test_the_console_says_at_once_when_it_types_as_someone_teleport_does_not_have(ctx: Context) -> None:
    from chatops_bot.adapters.console.session import ConsoleSession

    written: list[str] = []
    session = ConsoleSession(ctx, user="alice", write=written.append)
    await session.handle("as dave")
    await session.handle("as bob")
    assert written == ["(now typing as dave); Teleport has no user dave, so its commands will be refused",
                       "(now typing as bob)"]
