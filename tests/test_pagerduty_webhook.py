"""Deciding from PagerDuty: a responder's signed `incident.annotated` note reaches `/pagerduty/webhook` and
becomes their review, through the same reviewer check as a chat click; forged, stale, replayed and
unmapped events review nothing. Over loopback against the devstack PagerDuty and Teleport."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ClientFactory, FixedClock
from starlette.applications import Starlette

from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.devstack.pagerduty import TOKEN, WEBHOOK_SECRET, DevPagerDuty, demo_account
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.incidents import IncidentKeeper
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.integrations.pagerduty.webhook import WebhookService, decision, signed_by
from chatops_bot.integrations.pagerduty.wiring import responders
from chatops_bot.teleport.client import TeleportClient
from commands.context import Context
from commands.model import AccessRequest, RequestState


@pytest.fixture
def seed() -> Seed:
    """The demo cluster with everyone's e-mail in the `email` trait (bob reviews dba, carol nothing)."""
    text = demo_seed_text()
    for name in ("alice", "bob", "carol"):
        text = text.replace(f"traits: {{slack_user_id: [U0{name.upper()}]",
                            f"traits: {{email: [{name}@example.com], slack_user_id: [U0{name.upper()}]")
    return load_seed(text)


@dataclass
class World:
    pagerduty: DevPagerDuty
    clock: FixedClock
    incident: str
    request: AccessRequest


@pytest.fixture
async def world(bot: TeleportClient, client_for: ClientFactory) -> AsyncIterator[World]:
    clock = FixedClock(datetime.now(UTC))
    pagerduty = DevPagerDuty(clock=clock.now)
    demo_account(pagerduty, clock.now())
    pagerduty.add_user("PDAVE01", "Dave", "dave@example.com")  # in PagerDuty, not in Teleport
    await pagerduty.start()
    client = PagerDutyClient(pagerduty.root_url, TOKEN, from_email="chatops-bot@example.com")
    settings = PagerDutySettings.model_validate({"token": TOKEN})
    ctx = Context(backend=bot, directory=responders(settings, bot), clock=clock)
    service = WebhookService(client, ctx, ["rotated-out-secret", WEBHOOK_SECRET], bot_email="chatops-bot@example.com",
                             clock=clock.now)
    receiver = LoopbackServer(Starlette(routes=list(service.routes())))
    port = await receiver.start()
    pagerduty.subscribe(f"http://127.0.0.1:{port}/pagerduty/webhook")
    request = await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-7 replica lag")
    await IncidentKeeper(client, bot, {"*": "PDBSVC1"}).sync(request)
    await pagerduty.settled()
    [incident] = pagerduty.incidents
    yield World(pagerduty, clock, incident, request)
    await receiver.stop()
    await pagerduty.stop()
    await client.close()


def reviews(teleport: DevTeleport, request_id: str) -> list[tuple[str, RequestState, str]]:
    return [(r.author, r.proposed_state, r.reason) for r in teleport.store.requests[request_id].reviews]


def test_a_decision_is_a_note_starting_with_approve_or_deny() -> None:
    assert decision("Approve: replica lag confirmed ") == ("approve", "replica lag confirmed")
    assert decision("deny\nnot during the freeze") == ("deny", "not during the freeze")
    assert decision("approved") is None and decision("bob approved in Teleport: x") is None
    assert decision("looking into it") is None


def test_any_v1_signature_with_any_configured_secret_verifies() -> None:
    body = b'{"event": {}}'
    old, new = (f"v1={hmac.new(s, body, hashlib.sha256).hexdigest()}" for s in (b"old", b"new"))
    assert signed_by(body, f"{old},{new}", ["new"]) and signed_by(body, old, ["new", "old"])
    assert not signed_by(body, old, ["new"]) and not signed_by(body + b" ", f"{old},{new}", ["old", "new"])
    assert not signed_by(body, "v1=zz", ["old"]) and not signed_by(body, "", ["old"])


async def test_a_reviewers_note_approves_on_their_behalf(world: World, teleport: DevTeleport) -> None:
    status = await world.pagerduty.write_note(world.incident, "PBOB001", "approve replica lag confirmed")
    assert status == 202
    assert reviews(teleport, world.request.id) == [("bob", RequestState.APPROVED, "replica lag confirmed")]
    assert teleport.store.requests[world.request.id].state is RequestState.APPROVED


async def test_a_note_from_someone_who_may_not_review_is_refused_and_said_so_on_the_incident(
        world: World, teleport: DevTeleport) -> None:
    assert await world.pagerduty.write_note(world.incident, "PCAROL1", "approve fine by me") == 202
    await world.pagerduty.settled()
    assert reviews(teleport, world.request.id) == []
    notes = [n["content"] for n in world.pagerduty.incidents[world.incident].notes]
    assert notes[-1].startswith("The bot did not approve for this note:")


async def test_an_unmapped_responder_reviews_nothing(world: World, teleport: DevTeleport) -> None:
    assert await world.pagerduty.write_note(world.incident, "PDAVE01", "approve") == 202
    assert reviews(teleport, world.request.id) == []


async def test_a_note_that_is_no_decision_and_the_bots_own_notes_are_ignored(world: World,
                                                                              teleport: DevTeleport) -> None:
    assert await world.pagerduty.write_note(world.incident, "PBOB001", "looking into it") == 202
    assert await world.pagerduty.write_note(world.incident, "PBOTUSR", "approve as the bot") == 202
    assert reviews(teleport, world.request.id) == []


def annotated(world: World, who: str, content: str, at: datetime | None = None) -> bytes:
    pagerduty = world.pagerduty
    note = {"incident": {"id": world.incident, "type": "incident_reference"}, "id": "PNOTE01", "content": content,
            "trimmed": False, "type": "incident_note"}
    return json.dumps(pagerduty.event("incident.annotated", note, pagerduty.users[who], at)).encode()


async def test_forged_unsigned_stale_and_replayed_events_review_nothing(world: World,
                                                                       teleport: DevTeleport) -> None:
    pagerduty = world.pagerduty
    body = annotated(world, "PBOB001", "approve")
    assert await pagerduty.deliver(body, pagerduty.signed(body, ["not-the-secret"])) == 401
    unsigned = {k: v for k, v in pagerduty.signed(body).items() if k != "X-PagerDuty-Signature"}
    assert await pagerduty.deliver(body, unsigned) == 401
    stale = annotated(world, "PBOB001", "approve", world.clock.now() - timedelta(minutes=6))
    assert await pagerduty.deliver(stale) == 400
    assert reviews(teleport, world.request.id) == []
    denial = annotated(world, "PBOB001", "deny not during the freeze")
    assert await pagerduty.deliver(denial) == 202
    assert await pagerduty.deliver(denial) == 409  # the same event again
    assert reviews(teleport, world.request.id) == [("bob", RequestState.DENIED, "not during the freeze")]


async def test_an_event_pagerduty_retries_after_an_outage_is_no_replay(world: World, teleport: DevTeleport) -> None:
    pagerduty = world.pagerduty
    body = annotated(world, "PBOB001", "approve after the outage")
    pagerduty.go_down()  # the bot cannot read the incident or the agent
    assert await pagerduty.deliver(body) == 503
    assert reviews(teleport, world.request.id) == []
    pagerduty.go_down(False)
    assert await pagerduty.deliver(body) == 202  # PagerDuty's retry of the same event
    assert reviews(teleport, world.request.id) == [("bob", RequestState.APPROVED, "after the outage")]
