"""The decision hook end to end: the bot POSTs each new pending request it covers, signed, to a receiver on
loopback, and the shared `AutomaticReviewer` applies the answer in the devstack Teleport. Approve and deny
become the bot's review with the hook's name and reason; "none", no answer in time, a 500, garbage or an
oversized answer leave the request untouched for a person, and the log says why.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from conftest import ClientFactory
from test_webhooks import eventually, receiver, timer
from webhook_receiver import SECRET, Answer, Receiver

from chatops_bot import automatic
from chatops_bot.automatic import AutomaticReviewer
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.integrations.webhooks.integration import build
from chatops_bot.integrations.webhooks.send import MAX_ANSWER
from chatops_bot.integrations.webhooks.settings import WebhooksSettings
from chatops_bot.notify import Notifier
from chatops_bot.timer import Quickened
from chatops_bot.watcher import Follower, Watcher
from chatops_bot.wiring import SystemClock
from commands.model import AccessRequest, RequestState

__all__ = ["receiver", "timer"]

# The bot may review dba itself (its review is the automatic decision); auditor stays out of the hook's roles.
SEED = """
---
kind: role
version: v7
metadata: {name: chatops-bot-automatic}
spec: {allow: {review_requests: {roles: [dba]}}}
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
"""
DEADLINE = timedelta(milliseconds=300)


@pytest.fixture
def seed() -> Seed:
    text = demo_seed_text().replace("roles: [chatops-bot]", "roles: [chatops-bot, chatops-bot-automatic]")
    text = text.replace("roles: [requester, developer]", "roles: [requester, auditor-requester, developer]")
    return load_seed(text + SEED)


class NoChat:
    async def chat_ids(self, teleport_user: str) -> dict[str, str]:
        return {}


Start = Callable[..., Awaitable[None]]


@pytest.fixture
async def start_bot(client_for: ClientFactory, receiver: Receiver, timer: Quickened) -> AsyncIterator[Start]:
    """A bot whose only outside system is the decision hook at `receiver/decide`, for dba."""
    tasks: list[asyncio.Task[None]] = []
    senders: list[Any] = []

    async def start(*, mode: str = "on_behalf", **decide: Any) -> None:
        """`mode`: `review.mode` (`resolve`: Community Edition, the state set with the hook as Delegator)."""
        settings = WebhooksSettings.model_validate({"decide": {
            "name": "oncall", "url": receiver.url("decide"), "secret": SECRET, "roles": ["dba"],
            "timeout": DEADLINE, **decide}})
        client = client_for("chatops-bot")
        integration = build(settings, client, timer=timer)
        senders.extend(integration.services)
        reviewer = AutomaticReviewer(client, integration.deciders, mode=mode)
        notifier = Notifier(client, [], routing={}, chat_ids=NoChat(), clock=SystemClock())
        watcher = Watcher(client, notifier, observers=[Follower(reviewer, timer=timer)], timer=timer)
        tasks.append(asyncio.create_task(watcher.run()))
        await asyncio.wait_for(watcher.synced.wait(), 5)

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for service in senders:
        await service.stop()


def settled(teleport: DevTeleport, request_id: str) -> bool:
    """The automatic reviewer is done with the request (whatever it decided)."""
    data = teleport.store.plugin_data.get(request_id, {}).get("chatops-bot", {})
    return '"done"' in data.get(automatic.KEY, "")


async def dba(client_for: ClientFactory, role: str = "dba") -> AccessRequest:
    return await client_for("alice").create_request(user="alice", roles=[role], reason="INC-7 replica lag")


@pytest.mark.parametrize(("answer", "state", "reason"), [
    (Answer(200, b'{"decision": "approve", "reason": "alice is on call for DBA primary"}'),
     RequestState.APPROVED, "oncall: alice is on call for DBA primary"),
    (Answer(200, b'{"decision": "deny", "reason": "alice is not on call\\u0007 today"}'),
     RequestState.DENIED, "oncall: alice is not on call today"),
], ids=["approve", "deny"])
async def test_an_approving_or_denying_hook_decides_as_the_bot_with_its_name_and_reason(
        start_bot: Start, receiver: Receiver, client_for: ClientFactory, teleport: DevTeleport,
        answer: Answer, state: RequestState, reason: str) -> None:
    receiver.answer("decide", answer)
    await start_bot()
    made = await dba(client_for)
    await eventually(lambda: teleport.store.requests[made.id].state is state)
    reviews = teleport.store.requests[made.id].reviews
    assert [(r.author, r.proposed_state, r.reason) for r in reviews] == [("chatops-bot", state, reason)]
    [asked] = receiver.at("decide")
    document = asked.verified()
    assert (document["type"], document["data"]["request"]["id"]) == ("access_request.decide", made.id)
    assert document["data"]["request"]["state"] == "pending"
    assert asked.id == f"msg_{made.id}_decide"


async def test_with_review_mode_resolve_the_hook_is_the_delegator_of_the_state_it_sets(
        start_bot: Start, receiver: Receiver, client_for: ClientFactory, teleport: DevTeleport) -> None:
    receiver.answer("decide", Answer(200, b'{"decision": "deny", "reason": "outside the change window"}'))
    await start_bot(mode="resolve")
    made = await dba(client_for)
    await eventually(lambda: teleport.store.requests[made.id].state is RequestState.DENIED)
    stored = teleport.store.requests[made.id]
    assert (stored.resolve_reason, stored.reviews) == ("oncall: outside the change window", ())
    assert teleport.store.audit[-1]["delegator"] == "automatic:webhook:oncall"


@pytest.mark.parametrize(("answer", "why"), [
    (Answer(200, b'{"decision": "none", "reason": "nobody on call knows alice"}'),
     "leaves the request to a human (nobody on call knows alice)"),
    (Answer(200, b'{"decision": "approve"}', delay=DEADLINE.total_seconds() + 0.2), "no answer (timeout)"),
    (Answer(500, b'{"decision": "approve"}'), "HTTP 500"),
    (Answer(200, b"<html>approve</html>"), "the answer is not JSON"),
    (Answer(200, b'{"decision": "yes"}'), '"decision" is not "approve", "deny" or "none"'),
    (Answer(200, b'{"decision": "approve", "reason": "' + b"x" * MAX_ANSWER + b'"}'),
     f"the answer is longer than {MAX_ANSWER} bytes"),
], ids=["none", "timeout", "500", "garbage", "unknown-decision", "oversized"])
async def test_a_hook_that_does_not_decide_leaves_the_request_to_a_person_and_the_log_says_why(
        start_bot: Start, receiver: Receiver, client_for: ClientFactory, teleport: DevTeleport,
        caplog: pytest.LogCaptureFixture, answer: Answer, why: str) -> None:
    receiver.answer("decide", answer)
    await start_bot()
    with caplog.at_level(logging.INFO, logger="chatops_bot.integrations.webhooks.decide"):
        made = await dba(client_for)
        await eventually(lambda: settled(teleport, made.id))
    stored = teleport.store.requests[made.id]
    assert (stored.state, stored.reviews) == (RequestState.PENDING, ())
    assert len(receiver.at("decide")) == 1  # asked once: "none" is an answer, not a reason to ask again
    said = [r.getMessage() for r in caplog.records if r.name.endswith("webhooks.decide")]
    assert len(said) == 1 and why in said[0], said


async def test_the_hook_is_asked_only_about_requests_whose_roles_it_was_given(
        start_bot: Start, receiver: Receiver, client_for: ClientFactory, teleport: DevTeleport) -> None:
    receiver.answer("decide", Answer(200, json.dumps({"decision": "approve", "reason": "r"}).encode()))
    await start_bot()
    audit = await dba(client_for, "auditor")
    made = await dba(client_for)
    await eventually(lambda: teleport.store.requests[made.id].state is RequestState.APPROVED)
    assert [c.verified()["data"]["request"]["id"] for c in receiver.at("decide")] == [made.id]
    assert teleport.store.requests[audit.id].state is RequestState.PENDING
