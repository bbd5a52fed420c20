"""Automatic decisions (PagerDuty on-call, a decision webhook) applied by the shared `AutomaticReviewer`,
against the devstack Teleport: each verdict reaches Teleport once, as the bot's own review with the
decider's reason (or, with `review.mode: resolve`, as the state with the decider as Delegator), whatever
restarts and replicas do; no verdict, or a decider that cannot answer yet, leaves the request to a person.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from conftest import ClientFactory
from test_watcher import (
    EXTRA_SEED,
    FAST,
    MakeBot,
    eventually,
    holds,
    make_bot,
    one_card_each,
    platforms,
    request_dba,
    review,
    settled,
)

from chatops_bot import automatic
from chatops_bot.automatic import AutomaticReviewer, Undecided, Verdict
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.watcher import Follower
from commands.model import AccessRequest, RequestState

__all__ = ["make_bot", "platforms"]

ON_CALL = Verdict(True, "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1", "pagerduty",
                  "Auto-approved: alice is on call for DBA primary")
# What Teleport must let the bot do to review by itself: `review_requests` for the roles automatic rules cover.
AUTO_SEED = """
---
kind: role
version: v7
metadata: {name: chatops-bot-automatic}
spec: {allow: {review_requests: {roles: [dba, auditor]}}}
"""


@pytest.fixture
def seed() -> Seed:
    """The demo cluster with `auditor` (two approvals), and a bot allowed to review dba and auditor."""
    text = demo_seed_text().replace("roles: [requester, developer]",
                                    "roles: [requester, auditor-requester, developer]")
    text = text.replace("roles: [dba-reviewer, developer]", "roles: [dba-reviewer, auditor-reviewer, developer]")
    text = text.replace("roles: [chatops-bot]", "roles: [chatops-bot, chatops-bot-automatic]")
    return load_seed(text + EXTRA_SEED + AUTO_SEED)


class Scripted:
    """A decider for the requests asking for `dba` or `auditor`, answering from a script (the last answer
    repeats); an exception in the script is raised."""

    name = "scripted"

    def __init__(self, *answers: Verdict | None | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def covers(self, request: AccessRequest) -> bool:
        return bool({"dba", "auditor"} & set(request.roles))

    async def verdict(self, request: AccessRequest) -> Verdict | None:
        self.asked.append(request.id)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def auto_record(teleport: DevTeleport, request_id: str) -> str:
    return teleport.store.plugin_data.get(request_id, {}).get("chatops-bot", {}).get(automatic.KEY, "")


def state_of(teleport: DevTeleport, request_id: str) -> RequestState:
    return teleport.store.requests[request_id].state


async def test_a_verdict_is_the_bots_own_review_with_the_reason_and_shows_on_every_card(
        make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory, platforms) -> None:
    decider = Scripted(ON_CALL)
    bot = await make_bot(deciders=[decider])
    request = await request_dba(client_for)
    await eventually(holds(lambda: state_of(teleport, request.id) is RequestState.APPROVED))
    stored = teleport.store.requests[request.id]
    assert [(r.author, r.proposed_state, r.reason) for r in stored.reviews] == [
        ("chatops-bot", RequestState.APPROVED, ON_CALL.reason)]
    assert decider.asked == [request.id]

    def cards_say_why() -> None:
        slack_card, mm_post = one_card_each(*platforms, request.id)
        assert ON_CALL.card in json.dumps(slack_card["blocks"])
        assert ON_CALL.card in json.dumps(mm_post["props"])

    await eventually(cards_say_why)
    await settled(bot)


async def test_two_bots_apply_one_verdict_once(make_bot: MakeBot, teleport: DevTeleport,
                                               client_for: ClientFactory) -> None:
    first, second = Scripted(ON_CALL), Scripted(ON_CALL)
    await make_bot(deciders=[first])
    await make_bot(deciders=[second])
    request = await request_dba(client_for)
    await eventually(holds(lambda: state_of(teleport, request.id) is RequestState.APPROVED))
    await eventually(holds(lambda: "done" in auto_record(teleport, request.id)))
    assert len(teleport.store.requests[request.id].reviews) == 1
    assert len(first.asked) + len(second.asked) == 1


async def test_a_decider_that_cannot_answer_is_asked_again_and_nothing_is_approved_meanwhile(
        make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    decider = Scripted(Undecided("PagerDuty is unreachable"), Undecided("PagerDuty is unreachable"), ON_CALL)
    await make_bot(deciders=[decider])
    with caplog.at_level(logging.WARNING, logger="chatops_bot.automatic"):
        request = await request_dba(client_for)
        await eventually(holds(lambda: state_of(teleport, request.id) is RequestState.APPROVED))
    assert decider.asked == [request.id] * 3
    assert sum("PagerDuty is unreachable" in r.getMessage() for r in caplog.records) == 2


async def test_no_verdict_leaves_the_request_to_people_and_a_restart_does_not_ask_again(
        make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory) -> None:
    decider = Scripted(None)
    bot = await make_bot(deciders=[decider])
    request = await request_dba(client_for)
    await eventually(holds(lambda: auto_record(teleport, request.id) == '{"done":"none"}'))
    await settled(bot)
    await bot.stop()
    again = Scripted(ON_CALL)
    restarted = await make_bot(deciders=[again])
    await settled(restarted)
    assert again.asked == []
    assert state_of(teleport, request.id) is RequestState.PENDING
    assert teleport.store.requests[request.id].reviews == ()


async def test_a_denial_denies(make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory) -> None:
    await make_bot(deciders=[Scripted(Verdict(False, "change freeze until Monday", "webhook:servicenow"))])
    request = await request_dba(client_for)
    await eventually(holds(lambda: state_of(teleport, request.id) is RequestState.DENIED))
    assert teleport.store.requests[request.id].reviews[0].reason == "change freeze until Monday"


async def test_an_approval_is_one_of_several_when_teleport_needs_more_and_the_card_says_so(
        make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory, platforms) -> None:
    await make_bot(deciders=[Scripted(ON_CALL)])
    request = await request_dba(client_for, roles=("auditor",))
    await eventually(holds(lambda: len(teleport.store.requests[request.id].reviews) == 1))
    assert state_of(teleport, request.id) is RequestState.PENDING

    def card_says_a_person_must_approve() -> None:
        slack_card, _ = one_card_each(*platforms, request.id)
        assert f"{ON_CALL.card} (one of 2 approvals; a person must approve too)" in json.dumps(slack_card["blocks"])

    await eventually(card_says_a_person_must_approve)
    await review(client_for, "bob", request.id, RequestState.APPROVED)
    await eventually(holds(lambda: state_of(teleport, request.id) is RequestState.APPROVED))


async def test_a_decider_that_fails_unexpectedly_decides_nothing(
        make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    bot = await make_bot(deciders=[Scripted(RuntimeError("bug"))])
    with caplog.at_level(logging.ERROR, logger="chatops_bot.automatic"):
        request = await request_dba(client_for)
        await eventually(holds(lambda: auto_record(teleport, request.id)
                               == '{"done":"none"}'))
    await settled(bot)
    assert state_of(teleport, request.id) is RequestState.PENDING
    assert any("decider scripted failed" in r.getMessage() for r in caplog.records)


async def test_a_claim_left_by_a_dead_process_after_its_review_landed_is_settled_not_applied_again(
        make_bot: MakeBot, teleport: DevTeleport, client_for: ClientFactory) -> None:
    request = await request_dba(client_for)
    bot_client = client_for("chatops-bot")
    stale = automatic.Record(by="dead", at=int(time.time() - 2 * automatic.CLAIM_LEASE), verdict=ON_CALL)
    await bot_client.update_plugin_data(request.id, set={automatic.KEY: stale.dump()})
    await bot_client.submit_review(request.id, automatic.Review(author="", proposed_state=RequestState.APPROVED,
                                                                reason=ON_CALL.reason))
    decider = Scripted(ON_CALL)
    # The approved request is not pending: the lane never looks. Make it one that needs two approvals.
    two = await request_dba(client_for, roles=("auditor",))
    await bot_client.update_plugin_data(two.id, set={automatic.KEY: stale.dump()})
    await bot_client.submit_review(two.id, automatic.Review(author="", proposed_state=RequestState.APPROVED,
                                                            reason=ON_CALL.reason))
    bot = await make_bot(deciders=[decider])
    await eventually(holds(lambda: '"done":"approved"' in auto_record(teleport, two.id)))
    await settled(bot)
    assert decider.asked == []
    assert len(teleport.store.requests[two.id].reviews) == 1


async def test_resolve_mode_sets_the_state_with_the_decider_as_delegator(
        teleport: DevTeleport, client_for: ClientFactory) -> None:
    reviewer = AutomaticReviewer(client_for("chatops-bot"), [Scripted(ON_CALL)], mode="resolve", retry=FAST)
    follower = Follower(reviewer)
    request = await request_dba(client_for)
    follower.put(request)
    await follower.lanes.idle()
    await follower.close()
    assert state_of(teleport, request.id) is RequestState.APPROVED
    assert teleport.store.requests[request.id].resolve_reason == ON_CALL.reason
    assert teleport.store.audit[-1]["delegator"] == "automatic:pagerduty"
