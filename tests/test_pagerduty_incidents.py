"""An incident per access request, against the devstack PagerDuty and Teleport: opened once per routed
service (however many processes and retries), each review a note, resolved when the request is decided or
deleted, with what was done kept in plugin data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from conftest import ClientFactory, FixedClock

from chatops_bot.devstack.pagerduty import TOKEN, DevPagerDuty, demo_account
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.incidents import IncidentKeeper, incident_key, services_for
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import Later
from commands.model import AccessRequest, RequestState, Review

ROUTES = {"dba": "PDBSVC1", "*": "PDEFAULT"}


@pytest.fixture
async def pagerduty() -> AsyncIterator[DevPagerDuty]:
    clock = FixedClock(datetime(2026, 12, 5, 3, 0, tzinfo=UTC))
    server = DevPagerDuty(clock=clock.now)
    demo_account(server, clock.now())
    server.add_service("PDEFAULT", "Access requests", "PDBAEP1")
    await server.start()
    yield server
    await server.stop()


Make = Callable[[], IncidentKeeper]


@pytest.fixture
async def keeper(pagerduty: DevPagerDuty, bot: TeleportClient) -> AsyncIterator[Make]:
    """A keeper as one bot process would have it (each call: another process)."""
    clients: list[PagerDutyClient] = []

    def make() -> IncidentKeeper:
        clients.append(PagerDutyClient(pagerduty.root_url, TOKEN, from_email="chatops-bot@example.com"))
        return IncidentKeeper(clients[-1], bot, ROUTES, web_proxy_addr="teleport.example.com:443")

    yield make
    for client in clients:
        await client.close()


async def alices(client_for: ClientFactory) -> AccessRequest:
    return await client_for("alice").create_request(user="alice", roles=["dba"], reason="INC-7 replica lag")


def test_roles_route_to_their_service_or_the_default() -> None:
    assert services_for(ROUTES, ["dba", "web", "ops"]) == ["PDBSVC1", "PDEFAULT"]
    assert services_for({"dba": "PDBSVC1"}, ["web"]) == []


async def test_a_pending_request_opens_one_incident_however_often_and_by_whomever_it_is_synced(
        keeper: Make, pagerduty: DevPagerDuty, client_for: ClientFactory) -> None:
    request = await alices(client_for)
    first, second = keeper(), keeper()
    await first.sync(request)
    await first.sync(request)
    await second.sync(request)
    [incident] = pagerduty.incidents.values()
    assert (incident.service, incident.incident_key, incident.status) == ("PDBSVC1", incident_key(request.id),
                                                                          "triggered")
    assert incident.title == "Access request: alice requests dba"
    assert f"Review in Teleport: https://teleport.example.com:443/web/requests/{request.id}" in incident.body
    assert 'Write a note "approve [reason]"' in incident.body


async def test_an_incident_created_but_not_recorded_is_found_again_by_its_key(
        keeper: Make, pagerduty: DevPagerDuty, client_for: ClientFactory) -> None:
    request = await alices(client_for)
    writer = PagerDutyClient(pagerduty.root_url, TOKEN, from_email="chatops-bot@example.com")
    try:  # as if a process died right after PagerDuty created it
        await writer.post("/incidents", {"incident": {"type": "incident", "title": "t", "incident_key":
                                                      incident_key(request.id),
                                                      "service": {"id": "PDBSVC1", "type": "service_reference"}}})
    finally:
        await writer.close()
    await keeper().sync(request)
    assert len(pagerduty.incidents) == 1


async def test_each_review_is_a_note_once_and_the_outcome_resolves_it(
        keeper: Make, pagerduty: DevPagerDuty, client_for: ClientFactory, bot: TeleportClient) -> None:
    request = await alices(client_for)
    await keeper().sync(request)
    reviewed = await client_for("bob").submit_review(request.id, Review(
        author="bob", proposed_state=RequestState.APPROVED, reason="replica lag confirmed"))
    assert reviewed.state is RequestState.APPROVED
    await keeper().sync(reviewed)
    await keeper().sync(reviewed)  # a second process, or a retry: nothing more
    [incident] = pagerduty.incidents.values()
    assert [n["content"] for n in incident.notes] == ["bob approved in Teleport: replica lag confirmed",
                                                      "The access request was approved in Teleport."]
    assert incident.status == "resolved"
    record = json.loads((await bot.get_plugin_data(request.id))["pagerduty:PDBSVC1"])
    assert (record["incident"], record["notes"], record["resolved"], record["by"]) == (incident.id, 1, True, "")


async def test_a_deleted_request_resolves_its_incident(keeper: Make, pagerduty: DevPagerDuty,
                                                       client_for: ClientFactory, bot: TeleportClient) -> None:
    request = await alices(client_for)
    await keeper().sync(request)
    await bot.delete_request(request.id)
    await keeper().closed(request.id)  # another process than the one that opened it
    [incident] = pagerduty.incidents.values()
    assert incident.status == "resolved"
    assert incident.notes[-1]["content"] == "The access request was deleted or expired in Teleport."


async def test_a_request_decided_before_it_was_seen_gets_no_incident(
        keeper: Make, pagerduty: DevPagerDuty, client_for: ClientFactory) -> None:
    request = await alices(client_for)
    denied = await client_for("bob").submit_review(request.id, Review(
        author="bob", proposed_state=RequestState.DENIED, reason="not now"))
    await keeper().sync(denied)
    assert pagerduty.incidents == {}


async def test_a_claim_another_process_holds_is_waited_for(keeper: Make, pagerduty: DevPagerDuty,
                                                          client_for: ClientFactory, bot: TeleportClient) -> None:
    request = await alices(client_for)
    held = json.dumps({"incident": "", "notes": 0, "resolved": False, "by": "someone-else",
                       "at": int(datetime.now(UTC).timestamp())})
    await bot.update_plugin_data(request.id, set={"pagerduty:PDBSVC1": held})
    with pytest.raises(Later):
        await keeper().sync(request)
    assert pagerduty.incidents == {}


async def test_pagerduty_down_is_asked_again_later_and_then_opens_the_incident(
        keeper: Make, pagerduty: DevPagerDuty, client_for: ClientFactory, bot: TeleportClient) -> None:
    request = await alices(client_for)
    one = keeper()
    pagerduty.go_down()
    with pytest.raises(Later, match="PagerDuty unavailable"):
        await one.sync(request)
    pagerduty.go_down(False)
    await one.sync(request)  # the claim it gave back is its own to take again at once
    assert len(pagerduty.incidents) == 1
