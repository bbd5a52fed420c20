"""Outbound webhooks end to end: requests made and decided in the devstack Teleport (real gRPC) reach a
receiver on loopback as signed events that the `standardwebhooks` verifier accepts and the JSON Schema in
docs/ describes, each once, retried while the receiver fails, and never twice across a restart or replicas.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import ClientFactory
from webhook_receiver import OTHER_SECRET, SECRET, Answer, Receiver

from chatops_bot.config import RemindersSettings
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.integrations import Integration
from chatops_bot.integrations.webhooks.integration import WebhookFollower, WebhooksService, build
from chatops_bot.integrations.webhooks.outbound import WebhookEvents
from chatops_bot.integrations.webhooks.settings import WebhooksSettings
from chatops_bot.notify import Notifier
from chatops_bot.reminders import ReminderListener, Reminders
from chatops_bot.server import build_app
from chatops_bot.timer import Quickened
from chatops_bot.watcher import Watcher
from commands.model import AccessRequest, RequestState, Review

SPEED = 2000.0  # the webhooks' waits (backoff, leases) run this much faster than real time
AUDITOR_SEED = """
---
kind: role
version: v7
metadata: {name: auditor}
spec: {allow: {logins: [audit]}}
---
kind: role
version: v7
metadata: {name: auditor-requester}
spec: {allow: {request: {roles: [auditor]}}}
---
kind: role
version: v7
metadata: {name: auditor-reviewer}
spec: {allow: {review_requests: {roles: [auditor]}}}
"""


@pytest.fixture
def seed() -> Seed:
    """The demo cluster, plus `auditor`: alice may request it and bob review it, as for dba."""
    text = demo_seed_text().replace("roles: [requester, developer]", "roles: [requester, auditor-requester, developer]")
    text = text.replace("roles: [dba-reviewer, developer]", "roles: [dba-reviewer, auditor-reviewer, developer]")
    return load_seed(text + AUDITOR_SEED)


@pytest.fixture
def timer() -> Quickened:
    return Quickened(SPEED)


@pytest.fixture
async def receiver(timer: Quickened) -> AsyncIterator[Receiver]:
    found = Receiver(timer)
    await found.start()
    yield found
    await found.stop()


class NoChat:
    async def chat_ids(self, teleport_user: str) -> dict[str, str]:
        return {}


@dataclass
class Bot:
    """A bot process with webhooks and no chat platform: the watcher, and the webhooks' follower."""

    integration: Integration
    watcher: Watcher
    task: asyncio.Task[None]
    reminders: Reminders | None = None

    @property
    def follower(self) -> WebhookFollower:
        observer = self.integration.observers[0]
        assert isinstance(observer, WebhookFollower)
        return observer

    @property
    def handler(self) -> WebhookEvents:
        return self.follower.handler

    @property
    def service(self) -> WebhooksService:
        service = self.integration.services[0]
        assert isinstance(service, WebhooksService)
        return service

    async def stop(self) -> None:
        if self.reminders is not None:
            await self.reminders.stop()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.service.stop()


MakeBot = Callable[..., Awaitable[Bot]]


class MovableClock:
    """The system clock, plus however far the test moved it; Teleport and the bot share it."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
def clock(teleport: DevTeleport) -> MovableClock:
    shared = MovableClock()
    teleport.store.clock = shared.now
    return shared


@pytest.fixture
async def make_bot(client_for: ClientFactory, receiver: Receiver, clock: MovableClock,
                   timer: Quickened) -> AsyncIterator[MakeBot]:
    running: list[Bot] = []

    async def make(*, endpoints: list[dict[str, Any]] | None = None, process: str = "one",
                   reminders: RemindersSettings | None = None, **section: Any) -> Bot:
        """`reminders`: run the reminders too, on the test's clock, telling the webhooks what they send."""
        endpoints = endpoints or [{"name": "siem", "url": receiver.url("siem"), "secret": SECRET}]
        settings = WebhooksSettings.model_validate({"endpoints": endpoints, **section})
        client = client_for("chatops-bot")
        integration = build(settings, client, timer=timer, process=process, clock=clock)
        notifier = Notifier(client, [], routing={}, chat_ids=NoChat(), clock=clock)
        observers = list(integration.observers)
        keeper = None
        if reminders is not None:
            keeper = Reminders(notifier, reminders, clock)
            keeper.listeners.extend(o for o in observers if isinstance(o, ReminderListener))
            observers.append(keeper)
        watcher = Watcher(client, notifier, observers=observers, timer=timer)
        if keeper is not None:
            keeper.follow(watcher.synced)
            keeper.start()
        bot = Bot(integration, watcher, asyncio.create_task(watcher.run()), keeper)
        running.append(bot)
        await asyncio.wait_for(watcher.synced.wait(), 5)
        return bot

    yield make
    for bot in running:
        await bot.stop()


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Waits until `check()` holds; fails the test after `timeout` real seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the check never held"
        await asyncio.sleep(0.01)


async def settled(*bots: Bot) -> None:
    """Every lane is done or waiting for its next try."""
    for bot in bots:
        await bot.follower.lanes.idle()


async def request(client_for: ClientFactory, role: str = "dba") -> AccessRequest:
    return await client_for("alice").create_request(user="alice", roles=[role], reason="INC-7 replica lag")


async def review(client_for: ClientFactory, request_id: str, state: RequestState, who: str = "bob") -> None:
    await client_for(who).submit_review(request_id, Review(author=who, proposed_state=state, reason="on call"))


def record(teleport: DevTeleport, request_id: str, key: str) -> str:
    """What the bot's plugin data on the request holds under `key`."""
    return teleport.store.plugin_data.get(request_id, {}).get("chatops-bot", {}).get(key, "")


def types(receiver: Receiver, path: str = "siem", **kw: Any) -> list[str]:
    return [call.type for call in receiver.at(path, **kw)]


# --- every event, once, verifiable -------------------------------------------------------------------------


async def test_every_request_event_arrives_once_signed_and_as_the_schema_says(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver, teleport: DevTeleport) -> None:
    bot = await make_bot()
    approved = await request(client_for)
    await review(client_for, approved.id, RequestState.APPROVED)
    denied = await request(client_for, "auditor")
    await review(client_for, denied.id, RequestState.DENIED)
    deleted = await request(client_for)
    await eventually(lambda: types(receiver).count("access_request.created") == 3)
    await client_for("chatops-bot").delete_request(deleted.id)
    await eventually(lambda: len(receiver.calls) == 8)
    await settled(bot)

    documents = [call.verified() for call in receiver.calls]
    by_request = Counter((doc["data"]["request"]["id"], doc["type"]) for doc in documents)
    assert by_request == Counter({
        (approved.id, "access_request.created"): 1, (approved.id, "access_request.reviewed"): 1,
        (approved.id, "access_request.approved"): 1,
        (denied.id, "access_request.created"): 1, (denied.id, "access_request.reviewed"): 1,
        (denied.id, "access_request.denied"): 1,
        (deleted.id, "access_request.created"): 1, (deleted.id, "access_request.deleted"): 1,
    })
    # In the order they happened, per request; the same event always has the same id.
    assert [c.type for c in receiver.calls if approved.id in c.id] == [
        "access_request.created", "access_request.reviewed", "access_request.approved"]
    assert {c.id for c in receiver.calls} == {f"msg_{approved.id}_created", f"msg_{approved.id}_reviewed.1",
                                               f"msg_{approved.id}_approved", f"msg_{denied.id}_created",
                                               f"msg_{denied.id}_reviewed.1", f"msg_{denied.id}_denied",
                                               f"msg_{deleted.id}_created", f"msg_{deleted.id}_deleted"}
    review_doc = next(d for d in documents if d["type"] == "access_request.reviewed"
                      and d["data"]["request"]["id"] == approved.id)
    assert review_doc["data"]["review"] == {"author": "bob", "decision": "approve", "reason": "on call",
                                            "created": review_doc["data"]["review"]["created"], "submitted_by": None}
    assert documents[0]["data"]["request"]["user"] == "alice"
    # Nothing more goes out: a resync brings every request back, all of them already sent.
    await bot.watcher.resync()
    await settled(bot)
    assert len(receiver.calls) == 8


async def test_a_pending_request_whose_time_runs_out_is_expired_not_deleted(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver, teleport: DevTeleport,
        clock: MovableClock) -> None:
    await make_bot()
    pending = await request(client_for)
    await eventually(lambda: types(receiver) == ["access_request.created"])
    assert pending.resource_expiry is not None
    clock.ahead = pending.resource_expiry - clock.now() + timedelta(seconds=1)
    teleport.store.expire()
    await eventually(lambda: types(receiver) == ["access_request.created", "access_request.expired"])
    expired = receiver.calls[1].verified()
    assert expired["data"]["request"]["state"] == "pending"
    assert receiver.calls[1].id == f"msg_{pending.id}_expired"


async def test_reminders_send_access_expiring_and_access_ended(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver, clock: MovableClock) -> None:
    bot = await make_bot(reminders=RemindersSettings(before_expiry=(timedelta(minutes=15),), max_nudges=0))
    assert bot.reminders is not None
    made = await request(client_for)
    await review(client_for, made.id, RequestState.APPROVED)
    await eventually(lambda: "access_request.approved" in types(receiver))
    approved = await client_for("chatops-bot").get_request(made.id)
    assert approved.access_expires is not None

    async def at(when: datetime) -> None:
        clock.ahead = when - datetime.now(UTC)
        assert bot.reminders is not None
        bot.reminders.clock_moved()
        await bot.reminders.idle()

    await at(approved.access_expires - timedelta(minutes=15, seconds=-1))
    await eventually(lambda: types(receiver)[-1] == "access.expiring")
    await at(approved.access_expires - timedelta(seconds=10))  # the reminders claim "ended" ahead
    await at(approved.access_expires + timedelta(seconds=1))  # Teleport drops the request: access.ended still goes
    await eventually(lambda: types(receiver)[-1] == "access.ended")
    expiring, ended = (call.verified() for call in receiver.calls[-2:])
    assert expiring["data"]["expires_in_seconds"] == 900
    assert expiring["timestamp"] == (approved.access_expires - timedelta(seconds=900)).isoformat().replace(
        "+00:00", "Z")
    assert ended["data"]["request"]["id"] == made.id
    await settled(bot)
    assert len(receiver.calls) == 5


async def test_each_endpoint_hears_only_its_events_and_roles_under_its_own_secret(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver) -> None:
    await make_bot(endpoints=[
        {"name": "siem", "url": receiver.url("siem"), "secret": SECRET},
        {"name": "dba-decisions", "url": receiver.url("dba"), "secret": OTHER_SECRET, "roles": ["db*"],
         "events": ["access_request.approved", "access_request.denied"]},
    ])
    dba = await request(client_for)
    audit = await request(client_for, "auditor")
    await review(client_for, dba.id, RequestState.APPROVED)
    await review(client_for, audit.id, RequestState.APPROVED)
    await eventually(lambda: len(receiver.at("siem")) == 6)
    await eventually(lambda: len(receiver.at("dba")) == 1)
    assert receiver.at("dba")[0].verified(OTHER_SECRET)["data"]["request"]["id"] == dba.id
    with pytest.raises(Exception, match="signature"):
        receiver.at("dba")[0].verified(SECRET)


# --- delivery: retries, restarts, replicas ------------------------------------------------------------------


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_try_with_the_same_id(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver, teleport: DevTeleport) -> None:
    receiver.answer("siem", Answer(503), Answer(429, headers={"retry-after": "30"}))
    await make_bot()
    made = await request(client_for)
    await eventually(lambda: record(teleport, made.id, "webhook:siem:created") == "done")
    calls = receiver.at("siem")
    assert [c.status for c in calls] == [503, 429, 200]
    assert {c.id for c in calls} == {f"msg_{made.id}_created"}
    assert all(c.verified() for c in calls)
    # Backoff, then at least the Retry-After the receiver asked for (on the quickened timer).
    assert calls[1].at - calls[0].at >= 3.0
    assert calls[2].at - calls[1].at >= 30.0


async def test_a_bot_restarted_mid_retry_neither_loses_nor_repeats_the_event(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver, teleport: DevTeleport,
        timer: Quickened) -> None:
    receiver.answer("siem", Answer(500, headers={"retry-after": "600"}))
    first = await make_bot(process="first")
    made = await request(client_for)
    await eventually(lambda: record(teleport, made.id, "webhook:siem:created").startswith("first@"))
    await eventually(lambda: record(teleport, made.id, "webhook:siem:created").split("@")[2] == "1")
    failed_at = receiver.at("siem")[0].at
    await first.stop()  # while waiting ten minutes to try again
    await make_bot(process="second")
    await eventually(lambda: record(teleport, made.id, "webhook:siem:created") == "done")
    await asyncio.sleep(0.2)  # 400 s on the webhooks' timer: time enough for a repeat to show
    calls = receiver.at("siem")
    assert [c.status for c in calls] == [500, 200]
    assert {c.id for c in calls} == {f"msg_{made.id}_created"}
    # The second process took over when the first's next try was due and it did not come.
    assert calls[1].at - failed_at >= 600


async def test_two_replicas_send_each_event_once(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver) -> None:
    one, two = await make_bot(process="one"), await make_bot(process="two")
    made = await request(client_for)
    await review(client_for, made.id, RequestState.APPROVED)
    await eventually(lambda: len(receiver.calls) >= 3)
    await settled(one, two)
    await asyncio.sleep(0.1)
    assert sorted(types(receiver)) == ["access_request.approved", "access_request.created",
                                       "access_request.reviewed"]


async def test_a_receiver_that_refuses_is_not_asked_again_and_one_that_keeps_failing_is_given_up_and_reported(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver, teleport: DevTeleport) -> None:
    receiver.answer("strict", Answer(400))
    receiver.answer("down", *[Answer(503)] * 50)
    bot = await make_bot(endpoints=[
        {"name": "strict", "url": receiver.url("strict"), "secret": SECRET, "events": ["access_request.created"]},
        {"name": "down", "url": receiver.url("down"), "secret": SECRET, "events": ["access_request.created"]},
    ], retry_for="2m")
    made = await request(client_for)
    await eventually(lambda: record(teleport, made.id, "webhook:down:created") == "gave-up")
    assert record(teleport, made.id, "webhook:strict:created") == "refused:400"
    assert len(receiver.at("strict")) == 1
    down = receiver.at("down")
    assert 3 <= len(down) < 10  # 5 s, 10 s, 20 s, 40 s… within two minutes
    assert down[-1].at - down[0].at <= 120 + 30  # the event loop's lag, quickened, on top
    # Reported, without making the bot unready: chat goes on.
    transport = httpx.ASGITransport(app=build_app([bot.service]))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        ready = await http.get("/readyz")
        exported = (await http.get("/metrics")).text
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "webhooks": f"ok, but failing webhook endpoints: down (HTTP 503, {len(down)} tries in a row)"}
    assert 'chatops_webhook_endpoint_failing{endpoint="down"} 1.0' in exported
    assert 'chatops_webhook_endpoint_failing{endpoint="strict"} 0.0' in exported
    assert 'chatops_webhook_deliveries_total{endpoint="down",outcome="gave_up"}' in exported


async def test_a_first_start_sends_nothing_older_than_retry_for_but_what_comes_next(
        make_bot: MakeBot, client_for: ClientFactory, receiver: Receiver, clock: MovableClock) -> None:
    old = await request(client_for)
    clock.ahead = timedelta(minutes=3)  # the bot starts three minutes after the request was made
    bot = await make_bot(retry_for="1m")
    await review(client_for, old.id, RequestState.APPROVED)
    await eventually(lambda: types(receiver) == ["access_request.reviewed", "access_request.approved"])
    await settled(bot)
    assert types(receiver) == ["access_request.reviewed", "access_request.approved"]
