"""The PagerDuty part of `chatops-bot demo`: alice's request approved while she is on call, and, once her
shift is over, waiting for a person. The devstack Teleport and PagerDuty on loopback, the real decider and
the shared automatic reviewer; only the clock of PagerDuty is moved by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatops_bot.adapters.console.session import ConsoleSession
from chatops_bot.automatic import AutomaticReviewer
from chatops_bot.devstack.pagerduty import TOKEN, DevPagerDuty, demo_account
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.decider import PagerDutyDecider
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from chatops_bot.wiring import SystemClock
from commands.context import Context
from commands.model import RequestState

BOT_USER = "chatops-bot"
RULE = {"name": "dba-primary", "roles": ["dba"], "schedules": ["P1X2Y3"], "max_level": 1}
AUTOMATIC_ROLE = """
---
kind: role
version: v7
metadata: {name: chatops-bot-automatic}
spec: {allow: {review_requests: {roles: [dba]}}}
"""


def seed_text(demo_seed: str) -> str:
    """The demo cluster with alice's, bob's and carol's e-mail in the `email` trait (as an SSO connector
    fills it), and the bot allowed to review `dba`, the one role the rule covers."""
    for name in ("alice", "bob", "carol"):
        demo_seed = demo_seed.replace(f"traits: {{slack_user_id: [U0{name.upper()}]",
                                      f"traits: {{email: [{name}@example.com], slack_user_id: [U0{name.upper()}]")
    return demo_seed.replace("roles: [chatops-bot]", "roles: [chatops-bot, chatops-bot-automatic]") + AUTOMATIC_ROLE


class _Clock:
    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        return self.current


async def walk_through(demo_seed: str, workdir: Path, write: Callable[[str], None]) -> bool:
    """Whether it went as told: the on-call request approved by PagerDuty, the off-call one pending."""
    teleport = DevTeleport(load_seed(seed_text(demo_seed)), cluster_name="demo.example.com")
    clock = _Clock()
    pagerduty = DevPagerDuty(clock=clock.now)
    demo_account(pagerduty, clock.now())
    identity = workdir / f"{BOT_USER}-pagerduty.pem"
    addr = await teleport.start("127.0.0.1:0")
    write_identity_file(teleport.identity(BOT_USER), identity)
    bot = TeleportClient(addr, IdentitySource(identity_file=str(identity)))
    client = PagerDutyClient(await pagerduty.start(), TOKEN)
    try:
        settings = PagerDutySettings.model_validate({"token": TOKEN, "auto_approve": [RULE]})
        reviewer = AutomaticReviewer(bot, [PagerDutyDecider(settings, PagerDutyAccount(client), bot)],
                                     mode="on_behalf")
        ctx = Context(backend=bot, directory=TeleportDirectory(bot, traits={}, user_map={}), clock=SystemClock())
        session = ConsoleSession(ctx, user="alice", write=write)
        write("\n--- PagerDuty: on-call auto-approval (rule dba-primary: dba, schedule P1X2Y3, level 1) ---")
        write("alice is on call for DBA primary in PagerDuty (schedule P1X2Y3, level 1).")
        on_call = await _request(session, teleport, reviewer, "INC-4412 failover drill", write)
        clock.current += timedelta(hours=13)
        write("\n13 hours later alice's shift is over.")
        off_call = await _request(session, teleport, reviewer, "INC-4413 slow queries", write)
        return on_call is RequestState.APPROVED and off_call is RequestState.PENDING
    finally:
        await client.close()
        await pagerduty.stop()
        await bot.close()
        await teleport.stop()


async def _request(session: ConsoleSession, teleport: DevTeleport, reviewer: AutomaticReviewer, reason: str,
                   write: Callable[[str], None]) -> RequestState:
    line = f"/access request dba --for 1h {reason}"
    write(f"\nalice> {line}")
    before = set(teleport.store.requests)
    await session.handle(line)
    [request_id] = set(teleport.store.requests) - before
    await reviewer.sync(teleport.store.requests[request_id])  # what the watcher does for a new request
    request = teleport.store.requests[request_id]
    if request.state is RequestState.APPROVED:
        write(f"PagerDuty: approved by {request.reviews[0].author}: {request.reviews[0].reason}")
    else:
        write("PagerDuty: no rule is met; the request waits for a reviewer (its card says nothing about PagerDuty).")
    return request.state
