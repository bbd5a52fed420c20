"""The devstack PagerDuty and the bot's client over loopback: auth, pagination, on-calls over time, 429s,
incidents with `From` and dedup, and signed v3 webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.devstack.pagerduty import TOKEN, DevPagerDuty, Shift, Target, demo_account
from chatops_bot.integrations.pagerduty.client import (
    PagerDutyClient,
    PagerDutyRefused,
    PagerDutyUnavailable,
)
from chatops_bot.timer import Timer
from conftest import FixedClock


class VirtualTimer(Timer):
    """Time that passes only when something sleeps on it: waits are recorded, not spent."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 12, 5, 3, 0, tzinfo=UTC))


@pytest.fixture
async def pagerduty(clock: FixedClock) -> AsyncIterator[DevPagerDuty]:
    server = DevPagerDuty(clock=clock.now)
    demo_account(server, clock.now())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(pagerduty: DevPagerDuty) -> AsyncIterator[PagerDutyClient]:
    made = PagerDutyClient(pagerduty.root_url, TOKEN, from_email="chatops-bot@example.com", timer=VirtualTimer())
    yield made
    await made.close()


async def test_a_wrong_token_is_refused_with_401(pagerduty: DevPagerDuty) -> None:
    wrong = PagerDutyClient(pagerduty.root_url, "not-the-token")
    try:
        with pytest.raises(PagerDutyRefused) as refused:
            await wrong.get("/users")
    finally:
        await wrong.close()
    assert refused.value.status == 401
    assert "not-the-token" not in str(refused.value)


async def test_a_listing_is_read_page_after_page(pagerduty: DevPagerDuty, client: PagerDutyClient) -> None:
    for n in range(230):
        pagerduty.add_user(f"PU{n:05d}", f"User {n}", f"user{n}@example.com")
    users = await client.listing("/users", "users")
    assert len(users) == 234  # the demo's four and 230 more, over three pages of 100
    assert [m for m, path in pagerduty.requests if path == "/users"] == ["GET"] * 3
    raw = await client.get("/users", {"limit": "500", "total": "true"})
    assert (raw["limit"], raw["more"], raw["total"]) == (100, True, 234)


async def test_on_call_follows_the_clock_and_the_filters(pagerduty: DevPagerDuty, client: PagerDutyClient,
                                                         clock: FixedClock) -> None:
    now = await client.listing("/oncalls", "oncalls", {"user_ids[]": ["PALICE1"]})
    assert [(o["schedule"]["id"], o["escalation_level"]) for o in now] == [("P1X2Y3", 1)]
    assert now[0]["escalation_policy"]["id"] == "PDBAEP1" and now[0]["end"] == "2026-12-05T15:00:00Z"
    by_schedule = await client.listing("/oncalls", "oncalls", {"schedule_ids[]": ["P4Q5R6"]})
    assert [(o["user"]["id"], o["escalation_level"]) for o in by_schedule] == [("PBOB001", 2)]
    clock.advance(timedelta(hours=13))  # both shifts are over
    assert await client.listing("/oncalls", "oncalls", {"escalation_policy_ids[]": ["PDBAEP1"]}) == []


async def test_a_user_targeted_directly_is_on_call_without_a_schedule(pagerduty: DevPagerDuty,
                                                                       client: PagerDutyClient) -> None:
    pagerduty.add_policy("PDIRECT", "Direct", [[Target("user", "PCAROL1")]])
    entries = await client.listing("/oncalls", "oncalls", {"user_ids[]": ["PCAROL1"], "earliest": "true"})
    assert [(o["escalation_policy"]["id"], o["schedule"], o["start"]) for o in entries] == [("PDIRECT", None, None)]


async def test_429_is_waited_out_for_as_long_as_retry_after_says(pagerduty: DevPagerDuty,
                                                                 client: PagerDutyClient) -> None:
    pagerduty.rate_limit(2, retry_after=3)
    users = await client.listing("/users", "users")
    assert len(users) == 4
    assert client.timer.slept == [3.0, 3.0]  # type: ignore[attr-defined]


async def test_a_rate_limit_longer_than_the_deadline_gives_up(pagerduty: DevPagerDuty) -> None:
    timer = VirtualTimer()
    hurried = PagerDutyClient(pagerduty.root_url, TOKEN, deadline=5.0, timer=timer)
    pagerduty.rate_limit(1, retry_after=30)
    try:
        with pytest.raises(PagerDutyUnavailable, match="rate limited"):
            await hurried.get("/users")
    finally:
        await hurried.close()
    assert timer.slept == []


async def test_an_unreachable_pagerduty_is_unavailable_not_an_answer(pagerduty: DevPagerDuty) -> None:
    pagerduty.go_down()
    unreachable = PagerDutyClient("http://127.0.0.1:9", TOKEN)
    down = PagerDutyClient(pagerduty.root_url, TOKEN)
    try:
        with pytest.raises(PagerDutyUnavailable):
            await unreachable.get("/users")
        with pytest.raises(PagerDutyUnavailable, match="503"):
            await down.get("/users")
    finally:
        await unreachable.close()
        await down.close()


async def test_incident_writes_need_from_and_an_open_key_is_not_opened_twice(pagerduty: DevPagerDuty,
                                                                           client: PagerDutyClient) -> None:
    body = {"incident": {"type": "incident", "title": "access request", "incident_key": "req-1",
                         "service": {"id": "PDBSVC1", "type": "service_reference"}}}
    anonymous = PagerDutyClient(pagerduty.root_url, TOKEN)
    try:
        with pytest.raises(PagerDutyRefused) as refused:
            await anonymous.post("/incidents", body)
    finally:
        await anonymous.close()
    assert refused.value.status == 400 and "From" in refused.value.errors[0]
    created = (await client.post("/incidents", body))["incident"]
    with pytest.raises(PagerDutyRefused, match="already exists"):
        await client.post("/incidents", body)
    await client.post(f"/incidents/{created['id']}/notes", {"note": {"content": "bob approved"}})
    await client.put(f"/incidents/{created['id']}", {"incident": {"type": "incident_reference",
                                                                  "status": "resolved"}})
    found = await client.listing("/incidents", "incidents", {"incident_key": "req-1"})
    assert [(i["id"], i["status"]) for i in found] == [(created["id"], "resolved")]
    notes = (await client.get(f"/incidents/{created['id']}/notes"))["notes"]
    assert [(n["content"], n["user"]["id"]) for n in notes] == [("bob approved", "PBOTUSR")]
    await client.post("/incidents", body)  # the key is free again once the first is resolved


async def test_webhooks_are_signed_with_every_secret_over_the_raw_body(pagerduty: DevPagerDuty) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=202)

    receiver = LoopbackServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    port = await receiver.start()
    try:
        pagerduty.subscribe(f"http://127.0.0.1:{port}/hook", secrets=["old-secret", "new-secret"])
        incident = await _open_incident(pagerduty)
        status = await pagerduty.write_note(incident, "PBOB001", "approve looks fine")
        await pagerduty.settled()
    finally:
        await receiver.stop()
    assert status == 202
    kinds = [json.loads(body)["event"]["event_type"] for body, _ in received]
    assert kinds == ["incident.triggered", "incident.annotated"]
    body, headers = received[-1]
    event = json.loads(body)["event"]
    assert event["agent"]["id"] == "PBOB001" and event["data"]["content"] == "approve looks fine"
    assert event["data"]["incident"]["id"] == incident and event["occurred_at"] == "2026-12-05T03:00:00Z"
    expected = [f"v1={hmac.new(s, body, hashlib.sha256).hexdigest()}" for s in (b"old-secret", b"new-secret")]
    assert headers["x-pagerduty-signature"].split(",") == expected


async def _open_incident(pagerduty: DevPagerDuty) -> str:
    writer = PagerDutyClient(pagerduty.root_url, TOKEN, from_email="chatops-bot@example.com")
    try:
        body = {"incident": {"type": "incident", "title": "t", "service": {"id": "PDBSVC1", "type": "service_reference"}}}
        return str((await writer.post("/incidents", body))["incident"]["id"])
    finally:
        await writer.close()


def test_shifts_end_where_the_next_begins() -> None:
    pagerduty = DevPagerDuty()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pagerduty.add_user("PA", "A", "a@example.com")
    pagerduty.add_user("PB", "B", "b@example.com")
    pagerduty.add_schedule("PS", "S", [Shift("PA", start, start + timedelta(hours=8)),
                                      Shift("PB", start + timedelta(hours=8), start + timedelta(hours=16))])
    pagerduty.add_policy("PE", "E", [[Target("schedule", "PS")]])
    at_handover = pagerduty.on_call(start + timedelta(hours=8))
    assert [user.id for _, _, _, user, _ in at_handover] == ["PB"]
