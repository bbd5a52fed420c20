"""Expiry reminders, "access ended" and pending nudges, end to end over loopback: the devstack Teleport and
the bot share a clock the test moves, so an hour passes in a moment; APScheduler fires the jobs.

alice requests dba (bob is the suggested reviewer) and is linked on Slack and Mattermost, so every DM to her
arrives on both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from chatops_bot import logs, runtime
from chatops_bot.adapters.base import ChatAdapter
from chatops_bot.config import Settings
from chatops_bot.devstack.mattermost import DevMattermost
from chatops_bot.devstack.pki import ClusterCA
from chatops_bot.devstack.seed import Seed
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.reminders import Reminders
from chatops_bot.server import build_app
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.watcher import Lanes, Watcher
from chatops_bot.wiring import chat_adapters, command_context, teleport_client
from commands import messages
from commands.model import AccessRequest, RequestState
from conftest import ClientFactory, FixedClock
from test_watcher import (  # noqa: F401  (fixtures)
    holds,
    ACCESS_MM,
    FAST,
    MM_USERS,
    TEAM,
    bot_settings,
    eventually,
    mm_cards,
    mm_dm,
    one_card_each,
    platforms,
    request_dba,
    review,
    seed,
    slack_cards,
    slack_dm,
)

Platforms = tuple[DevSlack, DevMattermost]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def teleport(seed: Seed, cluster_ca: ClusterCA, clock: FixedClock) -> AsyncIterator[DevTeleport]:
    """The devstack Teleport on the test's clock: access expiry and request expiry follow it."""
    server = DevTeleport(seed, cluster_name="devstack.example.com", ca=cluster_ca, clock=clock.now)
    await server.start("127.0.0.1:0")
    yield server
    await server.stop()


@dataclass
class Bot:
    client: TeleportClient
    adapters: list[ChatAdapter]
    reminders: Reminders
    watcher: Watcher
    task: asyncio.Task[None]
    url: str = ""
    server: uvicorn.Server | None = None

    async def stop(self) -> None:
        await self.reminders.stop()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if self.server is not None:
            self.server.should_exit = True
            await asyncio.sleep(0.2)
        for adapter in reversed(self.adapters):
            await adapter.stop()
        await self.client.close()


MakeBot = Callable[..., Awaitable[Bot]]
REMINDERS = {"before_expiry": ["15m", "5m"], "on_expiry": True, "nudge_pending_after": "30m", "max_nudges": 2}


@pytest.fixture
async def make_bot(teleport: DevTeleport, platforms: Platforms, tmp_path: Path,
                   clock: FixedClock) -> AsyncIterator[MakeBot]:
    slack, mm = platforms
    running: list[Bot] = []

    async def make(*, serve: bool = False, claim_lease: float | None = None, **reminders: Any) -> Bot:
        """`claim_lease`: how old another process's claim on cards or an outcome DM must be before this
        one takes it over (shortened for drills that kill a process holding one)."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = bot_settings(tmp_path, teleport, slack, mm, port=port, reminders={**REMINDERS, **reminders})
        settings = Settings.model_validate(config)
        client = teleport_client(settings)
        adapters = chat_adapters(settings, command_context(settings, client))
        for adapter in adapters:
            await adapter.start()
        notifier = runtime.notifier(settings, client, runtime.outbounds(adapters))
        if claim_lease is not None:
            notifier.claim_lease = claim_lease
        keeper = Reminders(notifier, settings.reminders, clock)
        watcher = Watcher(client, notifier, backoff=FAST, lanes=Lanes(notifier, retry=FAST), observers=[keeper])
        keeper.follow(watcher.synced)
        keeper.start()
        bot = Bot(client, adapters, keeper, watcher, asyncio.create_task(watcher.run()), f"http://127.0.0.1:{port}")
        if serve:
            bot.server = uvicorn.Server(uvicorn.Config(build_app(adapters), log_level="warning", lifespan="off"))
            asyncio.create_task(bot.server.serve(sockets=[sock]))
            while not bot.server.started:
                await asyncio.sleep(0.01)
        running.append(bot)
        await asyncio.wait_for(watcher.synced.wait(), 5)
        return bot

    yield make
    for bot in running:
        if not bot.task.done():
            await bot.stop()


async def moment(clock: FixedClock, when: datetime, *bots: Bot) -> None:
    """The shared clock jumps to `when`; every bot's due jobs run, and what they sent has arrived."""
    clock.current = when
    for bot in bots:
        bot.reminders.clock_moved()
    for bot in bots:  # idle() sees a job due now until APScheduler has handed it to a task
        await bot.reminders.idle()
        await bot.watcher.lanes.idle()


async def approved_dba(client_for: ClientFactory, slack: DevSlack, mm: DevMattermost,
                       lasting: timedelta | None = None) -> AccessRequest:
    if lasting is None:
        request = await request_dba(client_for)
    else:
        request = await client_for("alice").create_request(user="alice", roles=("dba",), reason="INC-7 replica lag",
                                                           max_duration=lasting)
    await eventually(lambda: one_card_each(slack, mm, request.id))
    await review(client_for, "bob", request.id, RequestState.APPROVED, "go ahead")
    approved = await client_for("alice").get_request(request.id)
    assert approved.state is RequestState.APPROVED and approved.access_expires is not None
    return approved


def texts(messages: list[dict[str, Any]], key: str = "text") -> list[str]:
    return [str(m.get(key, "")) for m in messages]


async def alice_hears(slack: DevSlack, mm: DevMattermost, fragment: str) -> tuple[list[str], list[str]]:
    """What alice got on each platform whose text has `fragment`."""
    said = [m for m in await slack_dm(slack, "U0ALICE") if not any(b["type"] == "actions" for b in m["blocks"])]
    on_slack = [t for t in texts(said) if fragment in t]  # the text, not the card that follows it
    on_mm = [t for t in texts(mm_dm(mm, "alice"), "message") if fragment in t]
    return on_slack, on_mm


def utc(moment_: datetime) -> str:
    return f"{moment_:%Y-%m-%d %H:%M:%S} UTC"


# --- tests --------------------------------------------------------------------------------------------------


async def test_reminders_at_each_lead_then_access_ended_with_the_card_updated(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None

    await moment(clock, ends - timedelta(minutes=15, seconds=1), bot)
    assert await alice_hears(slack, mm, "ends in") == ([], [])

    await moment(clock, ends - timedelta(minutes=15) + timedelta(seconds=1), bot)
    first = f"Your dba access ({request.id[-8:]}) ends in 15m, at {utc(ends)}."
    on_slack, on_mm = await alice_hears(slack, mm, "ends in")
    assert [t.split(" Need")[0] for t in on_slack] == [first] and len(on_mm) == 1
    assert on_mm[0].replace("\\", "").startswith(first)
    card = (await slack_dm(slack, "U0ALICE"))[-1]
    buttons = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["text"]["text"]) for e in buttons] == [("access_extend", "Extend")]
    assert request.id in json.dumps(card["blocks"])
    post = mm_dm(mm, "alice")[-1]
    assert [a["name"] for a in post["props"]["attachments"][0]["actions"]] == ["Extend"]

    await moment(clock, ends - timedelta(minutes=5) + timedelta(seconds=1), bot)
    on_slack, on_mm = await alice_hears(slack, mm, "ends in")
    assert [t.split(",")[0] for t in on_slack] == [f"Your dba access ({request.id[-8:]}) ends in 15m",
                                                   f"Your dba access ({request.id[-8:]}) ends in 5m"]
    assert len(on_mm) == 2

    await moment(clock, ends - timedelta(seconds=10), bot)  # "ended" is claimed, not yet sent
    assert await alice_hears(slack, mm, "ended") == ([], [])
    await moment(clock, ends + timedelta(seconds=1), bot)
    ended = f"Your dba access ({request.id[-8:]}) ended at {utc(ends)}. Use /access request to ask again."
    assert await alice_hears(slack, mm, "ended at") == ([ended], [ended])
    card, post = one_card_each(slack, mm, request.id)
    assert "access ended at" in json.dumps(card["blocks"])
    assert "access ended at" in post["props"]["attachments"][0]["text"]

    await moment(clock, ends + timedelta(hours=1), bot)  # nothing more, ever
    assert len((await alice_hears(slack, mm, "ends in"))[0]) == 2
    assert len((await alice_hears(slack, mm, "ended at"))[0]) == 1


async def test_each_dm_shows_the_time_in_the_zone_the_person_set_on_that_platform(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    slack.users["U0ALICE"] = replace(slack.users["U0ALICE"], tz="Asia/Kolkata")
    mm.set_time_zone(MM_USERS["alice"].id, "America/New_York")
    bot = await make_bot()
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None
    await moment(clock, ends - timedelta(seconds=10), bot)
    await moment(clock, ends + timedelta(seconds=1), bot)
    on_slack, on_mm = await alice_hears(slack, mm, "ended at")
    assert on_slack == [f"Your dba access ({request.id[-8:]}) ended at {messages.stamp(ends, 'Asia/Kolkata', seconds=True)}. "
                        "Use /access request to ask again."]
    assert messages.stamp(ends, "America/New_York", seconds=True) in on_mm[0]
    assert " UTC)" in on_slack[0] and ("EST " in on_mm[0] or "EDT " in on_mm[0])


async def test_a_lead_that_passed_before_the_approval_is_skipped(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    bot = await make_bot(on_expiry=False)
    request = await request_dba(client_for)  # Teleport fixes the access expiry now, at creation
    ends = request.access_expires
    assert ends is not None
    clock.current = ends - timedelta(minutes=10)  # approved with 10 minutes left: past the 15-minute lead
    await review(client_for, "bob", request.id, RequestState.APPROVED, "late, sorry")
    await moment(clock, ends - timedelta(minutes=10) + timedelta(seconds=1), bot)
    assert await alice_hears(slack, mm, "ends in") == ([], [])
    await moment(clock, ends - timedelta(minutes=5) + timedelta(seconds=1), bot)
    on_slack, on_mm = await alice_hears(slack, mm, "ends in")
    assert [t.split(",")[0] for t in on_slack] == [f"Your dba access ({request.id[-8:]}) ends in 5m"]
    assert len(on_mm) == 1


async def test_a_request_denied_or_deleted_before_its_reminder_gets_none(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    bot = await make_bot()
    deleted = await approved_dba(client_for, slack, mm)
    await client_for("admin").delete_request(deleted.id)
    denied = await request_dba(client_for)
    await review(client_for, "bob", denied.id, RequestState.DENIED, "not today")
    assert deleted.access_expires is not None
    for step in range(0, 9 * 60, 5):  # through every lead time, the end and beyond, 5 minutes at a time
        await moment(clock, deleted.access_expires - timedelta(hours=8, minutes=-step), bot)
    assert await alice_hears(slack, mm, "ends in") == ([], [])
    assert await alice_hears(slack, mm, "ended at") == ([], [])
    assert bot.reminders.jobs == 0


async def test_a_bot_restarted_between_scheduling_and_firing_sends_once(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    first = await make_bot()
    request = await approved_dba(client_for, slack, mm)
    assert request.access_expires is not None
    await eventually(holds(lambda: first.reminders.jobs == 1))  # scheduled
    await first.stop()
    second = await make_bot()
    due = request.access_expires - timedelta(minutes=15) + timedelta(seconds=1)
    await moment(clock, due, second)
    await second.stop()
    third = await make_bot()  # restarted right after sending: the same reminder is due again for it
    await moment(clock, due + timedelta(seconds=5), third)
    on_slack, on_mm = await alice_hears(slack, mm, "ends in")
    assert (len(on_slack), len(on_mm)) == (1, 1)


async def test_a_reminder_missed_while_down_is_sent_late_but_never_after_the_access_ended(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    first = await make_bot(before_expiry=["15m"], on_expiry=False)
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None
    await first.stop()
    clock.current = ends - timedelta(minutes=10)  # down when the 15-minute reminder fell due
    late = await make_bot(before_expiry=["15m"], on_expiry=False)
    await moment(clock, clock.current, late)
    on_slack, on_mm = await alice_hears(slack, mm, "ends in")
    assert [t.split(",")[0] for t in on_slack] == [f"Your dba access ({request.id[-8:]}) ends in 10m"]
    assert len(on_mm) == 1

    second = await approved_dba(client_for, slack, mm)  # the same again, but down until after its end
    assert second.access_expires is not None
    await late.stop()
    clock.current = second.access_expires + timedelta(seconds=1)
    after = await make_bot(before_expiry=["15m"], on_expiry=False)
    await moment(clock, clock.current, after)
    assert [t for t in (await alice_hears(slack, mm, "ends in"))[0] if second.id[-8:] in t] == []


async def test_reminders_a_minute_apart_are_each_sent_on_time(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    """The suppression of a late reminder right before the next must not swallow one that is on time."""
    slack, mm = platforms
    bot = await make_bot(before_expiry=["15m", "14m30s"], on_expiry=False)
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None

    await moment(clock, ends - timedelta(minutes=15) + timedelta(seconds=1), bot)
    await moment(clock, ends - timedelta(minutes=14, seconds=30) + timedelta(seconds=1), bot)

    on_slack, on_mm = await alice_hears(slack, mm, "ends in")
    assert [t.split(",")[0] for t in on_slack] == [f"Your dba access ({request.id[-8:]}) ends in 15m",
                                                   f"Your dba access ({request.id[-8:]}) ends in 14m"]
    assert len(on_mm) == 2


async def test_a_bot_stopped_in_the_last_seconds_leaves_access_ended_to_the_next(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    """A deploy in the 30 s between claiming "ended" and sending it must not lose the message."""
    slack, mm = platforms
    first = await make_bot(before_expiry=[])
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None
    await moment(clock, ends - timedelta(seconds=10), first)  # "ended" claimed, held for the end
    await first.stop()  # graceful: the claim goes back

    second = await make_bot(before_expiry=[])
    await moment(clock, ends - timedelta(seconds=5), second)
    await moment(clock, ends + timedelta(seconds=1), second)

    ended = f"Your dba access ({request.id[-8:]}) ended at {utc(ends)}. Use /access request to ask again."
    assert await alice_hears(slack, mm, "ended at") == ([ended], [ended])


async def crash(bot: Bot) -> None:
    """The bot process as kill -9 leaves it: nothing given back, nothing finished."""
    bot.reminders.scheduler.shutdown(wait=False)
    for task in list(bot.reminders._firing):
        task.cancel()
    bot.task.cancel()
    await asyncio.gather(bot.task, return_exceptions=True)
    for adapter in reversed(bot.adapters):
        await adapter.stop()
    await bot.client.close()


async def test_a_bot_killed_in_the_last_seconds_leaves_access_ended_to_the_next(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock,
        caplog: pytest.LogCaptureFixture) -> None:
    """kill -9 after claiming "ended": the claim is a lease the dead process no longer renews, and the next
    process takes it over once it lapses, in time for the end (issue 13, item 8)."""
    slack, mm = platforms
    first = await make_bot(before_expiry=[])
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None
    await moment(clock, ends - timedelta(seconds=25), first)  # claimed, renewed at -25 s for the last time
    await crash(first)

    second = await make_bot(before_expiry=[])
    with caplog.at_level(logging.WARNING, logger="chatops_bot.reminders"):
        await moment(clock, ends - timedelta(seconds=20), second)  # held, by all it can tell: not yet
        await moment(clock, ends - timedelta(seconds=15), second)
        await moment(clock, ends - timedelta(seconds=10), second)  # lapsed: taken over
        await moment(clock, ends + timedelta(seconds=1), second)
    ended = f"Your dba access ({request.id[-8:]}) ended at {utc(ends)}. Use /access request to ask again."
    assert await alice_hears(slack, mm, "ended at") == ([ended], [ended])
    assert any("took over the ended reminder" in r.getMessage() for r in caplog.records)


async def test_a_live_holder_keeps_its_claim_by_renewing_it(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    one, two = await make_bot(before_expiry=[]), await make_bot(before_expiry=[])
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None
    for seconds in range(-28, 2, 4):  # time passing in steps shorter than a renewal: both alive throughout
        await moment(clock, ends + timedelta(seconds=seconds), one, two)
    assert tuple(len(x) for x in await alice_hears(slack, mm, "ended at")) == (1, 1)


async def test_two_bot_processes_send_each_reminder_once(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    one, two = await make_bot(), await make_bot()
    request = await approved_dba(client_for, slack, mm)
    ends = request.access_expires
    assert ends is not None
    await eventually(holds(lambda: one.reminders.jobs == two.reminders.jobs == 1))
    leads = (timedelta(minutes=15), timedelta(minutes=5), *(timedelta(seconds=s) for s in range(28, -2, -4)))
    for lead in leads:  # through the last half minute in steps shorter than a renewal, as time passes
        await moment(clock, ends - lead + timedelta(seconds=1), one, two)
    on_slack, on_mm = await alice_hears(slack, mm, "ends in")
    assert (len(on_slack), len(on_mm)) == (2, 2)
    assert tuple(len(x) for x in await alice_hears(slack, mm, "ended at")) == (1, 1)


async def test_nudges_reach_the_thread_and_the_reviewer_and_stop_at_the_maximum(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)
    card, post = await _cards(slack, mm, request.id)
    start = clock.now()
    for minutes in range(5, 4 * 60, 5):
        await moment(clock, start + timedelta(minutes=minutes), bot)
    nudge = f"Still waiting after 30m: alice asked for dba ({request.id[-8:]}) and has 0 of 1 approvals so far."
    thread = [m["text"] for m in slack.messages["C0ACCESS"] if m.get("thread_ts") == card["ts"] != m["ts"]]
    assert thread == [nudge, nudge.replace("30m", "1h")]
    mm_thread = [p["message"] for p in mm.posts_in(ACCESS_MM.id) if p["root_id"] == post["id"]]
    assert len(mm_thread) == 2 and mm_thread[0].startswith("Still waiting after 30m")
    to_bob = [p for p in mm_dm(mm, "bob") if p["message"].startswith("Still waiting")]
    assert len(to_bob) == 2
    # Text only: a card in the DM would keep buttons that nothing redraws once the request is decided.
    assert [p["props"].get("attachments") for p in to_bob] == [None, None]


async def test_nudges_stop_once_the_request_is_decided(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    slack, mm = platforms
    bot = await make_bot()
    request = await request_dba(client_for)
    card, _ = await _cards(slack, mm, request.id)
    start = clock.now()
    await moment(clock, start + timedelta(minutes=31), bot)
    await review(client_for, "bob", request.id, RequestState.DENIED, "no")
    await eventually(holds(lambda: bot.reminders.jobs == 0))
    await moment(clock, start + timedelta(minutes=61), bot)
    thread = [m["text"] for m in slack.messages["C0ACCESS"] if m.get("thread_ts") == card["ts"] != m["ts"]]
    assert [t.split(":")[0] for t in thread] == ["Still waiting after 31m", "bob denied this request"]


async def test_extend_in_the_reminder_opens_the_dialog_prefilled_and_requests_the_same_roles(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock,
        teleport: DevTeleport) -> None:
    slack, mm = platforms
    bot = await make_bot(serve=True)
    # Short access, so that the clock moves only minutes: the new request is timed by the bot's own clock.
    request = await approved_dba(client_for, slack, mm, lasting=timedelta(minutes=20))
    assert request.access_expires is not None
    await moment(clock, request.access_expires - timedelta(minutes=14), bot)
    (reminder,) = [p for p in mm_dm(mm, "alice") if p["message"].startswith("Your dba access")]
    url, body = mm.click(reminder["id"], "Extend", user_id=MM_USERS["alice"].id)
    async with httpx.AsyncClient(base_url=bot.url, timeout=10) as http:
        assert url == bot.url + "/mattermost/actions"
        answer = await http.post("/mattermost/actions", json=body)
        assert (answer.status_code, answer.json()) == (200, {})  # the dialog is the answer
        dialog = mm.dialogs[-1]["dialog"]
        elements = {e["name"]: e for e in dialog["elements"]}
        reason = f"extension of {request.id[-8:]}: INC-7 replica lag"
        assert (elements["roles"]["default"], elements["reason"]["default"]) == ("dba", reason)
        submission = mm.dialog_submission(
            callback_id=dialog["callback_id"], state=dialog["state"], user_id=MM_USERS["alice"].id,
            channel_id=reminder["channel_id"], team_id=TEAM.id,
            submission={"roles": ["dba"], "duration": "1h", "reason": reason})
        assert (await http.post("/mattermost/dialogs", json=submission)).status_code == 200
    (extension,) = [r for r in teleport.store.requests.values() if r.id != request.id]
    assert (extension.user, extension.roles, extension.reason) == ("alice", ("dba",), reason)
    assert extension.state is RequestState.PENDING


async def _cards(slack: DevSlack, mm: DevMattermost, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    await eventually(lambda: one_card_each(slack, mm, request_id))
    return one_card_each(slack, mm, request_id)



async def test_dms_mattermost_refuses_are_logged_by_the_bot_with_the_request_id_and_not_by_the_library(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock,
        caplog: pytest.LogCaptureFixture) -> None:
    slack, mm = platforms
    logs.quiet_libraries()  # what `chatops-bot serve` does when it sets up its log
    mm.remove_user(MM_USERS["alice"].id)  # her Teleport trait still names the account: every DM is a 400
    bot = await make_bot()
    caplog.set_level(logging.INFO)
    request = await approved_dba(client_for, slack, mm)  # alice is told the outcome: on Slack only
    assert request.access_expires is not None
    await moment(clock, request.access_expires - timedelta(minutes=15) + timedelta(seconds=1), bot)
    assert len((await alice_hears(slack, mm, "ends in"))[0]) == 1

    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in problems if r.name.startswith("mattermostautodriver")] == []
    said = {r.getMessage().split(":")[0] for r in problems}
    assert {"DM to alice on mattermost failed", "reminder DM failed"} <= said, said
    ours = [r for r in problems if r.name in ("chatops_bot.notify", "chatops_bot.reminders")]
    assert [(r.getMessage(), vars(r).get("request_id")) for r in ours
            if vars(r).get("request_id") != request.id] == []
    plain = logs.PlainFormatter()  # the ID is in the line people read, not only in the JSON field
    assert [plain.format(r) for r in ours if request.id not in plain.format(r)] == []


async def test_drill_restarts_across_the_last_minute_and_an_outage_deliver_everything_exactly_once(
        make_bot: MakeBot, client_for: ClientFactory, platforms: Platforms, clock: FixedClock) -> None:
    """Issue 13's fault drill. One elevation's last minute and a Mattermost outage, across a graceful restart
    and two kill -9s, one of them while the outage left a decided request's cards and DMs half done: every
    card, outcome DM, reminder and "ended" DM arrives once on each platform."""
    slack, mm = platforms
    options: dict[str, Any] = {"before_expiry": ["1m"], "claim_lease": 2.0}
    bot = await make_bot(**options)
    first = await approved_dba(client_for, slack, mm)
    ends = first.access_expires
    assert ends is not None
    for _ in range(500):  # the outcome DM reached alice on both platforms before the deploy
        if all(await alice_hears(slack, mm, f"({first.id[-8:]}) was approved")):
            break
        await asyncio.sleep(0.02)
    await moment(clock, ends - timedelta(seconds=90), bot)
    await bot.stop()  # a deploy
    bot = await make_bot(**options)

    mm.fail_next("POST /api/v4/posts", 500, times=10_000)  # Mattermost refuses every post from now on
    second = await client_for("alice").create_request(user="alice", roles=("dba",), reason="INC-8 second")
    await eventually(holds(lambda: len(slack_cards(slack, "C0ACCESS", second.id)) == 1))
    await review(client_for, "bob", second.id, RequestState.APPROVED, "ok")
    await crash(bot)  # killed during the outage, the second request's Mattermost card and DMs not yet sent
    mm.clear_faults()
    bot = await make_bot(**options)
    await eventually(holds(lambda: len(mm_cards(mm, ACCESS_MM.id, second.id)) == 1), timeout=15)

    await moment(clock, ends - timedelta(seconds=59), bot)  # "ends in 1m"
    await moment(clock, ends - timedelta(seconds=25), bot)  # "ended" claimed
    await crash(bot)
    bot = await make_bot(**options)
    for seconds in (-20, -15, -10, -5, 1):
        await moment(clock, ends + timedelta(seconds=seconds), bot)
    await bot.watcher.lanes.idle()

    for request in (first, second):
        one_card_each(slack, mm, request.id)
        outcome = f"Your request for dba ({request.id[-8:]}) was approved"
        assert tuple(len(x) for x in await alice_hears(slack, mm, outcome)) == (1, 1), request.id
    short = first.id[-8:]
    assert tuple(len(x) for x in await alice_hears(slack, mm, f"access ({short}) ends in")) == (1, 1)
    assert tuple(len(x) for x in await alice_hears(slack, mm, f"access ({short}) ended at")) == (1, 1)
