"""`chatops-bot demo`: the devstack Teleport with a bundled seed, driven through the console adapter.

Everything is real except the people: gRPC over mutual TLS to the stand-in, the bot's own identity
file, Teleport's rules deciding. The scripted walk-through prints a transcript and exits 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from chatops_bot.adapters.console.prompt import ask
from chatops_bot.adapters.console.session import ConsoleSession
from chatops_bot.devstack.jira import DevJira, seed_demo
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.integrations.pagerduty.demo import walk_through as pagerduty_walk_through
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from chatops_bot.wiring import SystemClock
from commands.messages import short_id
from commands.context import CommandConfig, Context

BOT_USER = "chatops-bot"
# Who types what, and whether the bot should go along with it (carol may not review: a refusal).
SCRIPT = (
    ("alice", "/access help", True),
    ("alice", "/access request dba --for 2h INC-4411 replica lag on the primary", True),
    # carol saw the card in the channel: its buttons and text carry the full ID.
    ("carol", "/access approve {full_id} looks fine to me", False),
    ("bob", "/access list", True),
    ("bob", "/access approve {id} go ahead", True),
    ("alice", "/access list active", True),
)
# With --jira: dba requests need an In-Progress ticket in OPS (the devstack Jira's demo tickets).
JIRA_SCRIPT = (
    ("alice", "/access help request", True),
    ("alice", "/access request dba --for 2h replica lag on the primary", False),
    ("alice", "/access request dba --ticket OPS-2 --for 2h disk full again", False),
    ("alice", "/access request dba --ticket OPS-1 --for 2h replica lag on the primary", True),
    ("bob", "/access approve {id} go ahead", True),
)
JIRA_RULE = {"roles": ["dba"], "projects": ["OPS", "INC"], "statuses": ["In Progress"]}
EXIT_UNEXPECTED = 1


def demo_seed_text(edition: str = "enterprise") -> str:
    """The demo cluster; on Community Edition without review rules in roles (`community_seed.yaml`)."""
    name = "community_seed.yaml" if edition == "community" else "demo_seed.yaml"
    return resources.files("chatops_bot.devstack").joinpath(name).read_text()


async def start_demo(workdir: Path) -> tuple[DevTeleport, TeleportClient, Context]:
    teleport = DevTeleport(load_seed(demo_seed_text()), cluster_name="demo.example.com")
    addr = await teleport.start("127.0.0.1:0")
    identity_path = workdir / f"{BOT_USER}.pem"
    write_identity_file(teleport.identity(BOT_USER), identity_path)
    client = TeleportClient(addr, IdentitySource(identity_file=str(identity_path)))
    directory = TeleportDirectory(client, traits={}, user_map={})
    return teleport, client, Context(backend=client, directory=directory, clock=SystemClock(), config=CommandConfig())


async def run_demo(*, write: Callable[[str], None] = print, interactive: bool = False,
                   read: Callable[[str], str] = input, jira: bool = False) -> int:
    """Run the demo; 0 when every scripted step went as the script says, else `EXIT_UNEXPECTED`. With
    `jira`, a devstack Jira too, and dba requests must cite an In-Progress OPS ticket."""
    with tempfile.TemporaryDirectory(prefix="chatops-demo-") as tmp:
        teleport, client, ctx = await start_demo(Path(tmp))
        stand_in = None
        try:
            info = await client.ping()
            write(f"Connected to the devstack Teleport {info.name!r} ({info.server_version}) over mutual TLS.")
            if jira:
                stand_in, ctx = await _with_jira(ctx, client)
                write(f"And to the devstack Jira at {stand_in.url}: dba requests need an In-Progress OPS ticket "
                      f"(OPS-1 is, OPS-2 is Done).")
            session = ConsoleSession(ctx, user="alice", write=write)
            if interactive:
                await _interactive(session, write, read)
                return 0
            outcome = await _scripted(session, teleport, write, JIRA_SCRIPT if jira else SCRIPT)
        finally:
            await client.close()
            if stand_in is not None:
                await stand_in.stop()
            await teleport.stop()
        # Issue 16: PagerDuty on-call approval, on a cluster and account of its own.
        if outcome == 0 and not jira and not await pagerduty_walk_through(demo_seed_text(), Path(tmp), write):
            write("\nThe demo stopped: PagerDuty did not decide as scripted.")
            return EXIT_UNEXPECTED
        return outcome


async def _with_jira(ctx: Context, client: TeleportClient) -> tuple[DevJira, Context]:
    """The devstack Jira with its demo tickets, and the context with its ticket gate and card detail."""
    from chatops_bot.integrations.jira.card import TicketCard
    from chatops_bot.integrations.jira.client import JiraClient
    from chatops_bot.integrations.jira.gate import TicketGate
    from chatops_bot.integrations.jira.settings import JiraSettings

    stand_in = DevJira()
    seed_demo(stand_in)
    url = await stand_in.start()
    email, token = stand_in.api_token_auth()
    settings = JiraSettings.model_validate({"url": url, "email": email, "api_token": token,
                                            "require_ticket": [JIRA_RULE]})
    jira = JiraClient(settings)
    return stand_in, dataclasses.replace(ctx, gates=(TicketGate(settings, jira, client.get_user),),
                                         details=(TicketCard(settings, jira),))


async def _scripted(session: ConsoleSession, teleport: DevTeleport, write: Callable[[str], None],
                    script: tuple[tuple[str, str, bool], ...] = SCRIPT) -> int:
    for step, (user, line, should_succeed) in enumerate(script, start=1):
        latest = max(teleport.store.requests.values(), key=lambda r: r.created or datetime.min.replace(tzinfo=UTC),
                     default=None)
        line = line.format(id=short_id(latest.id) if latest else "", full_id=latest.id if latest else "")
        session.user = user
        write(f"\n{user}> {line}")
        reply = await session.handle(line)
        if reply is None or reply.ok is not should_succeed:
            # A demo that carries on after a surprise would only show more surprises.
            write(f"\nThe demo stopped: step {step} did not go as scripted.")
            return EXIT_UNEXPECTED
    return 0


async def _interactive(session: ConsoleSession, write: Callable[[str], None], read: Callable[[str], str]) -> None:
    write("Seed users: alice (may request dba), bob (reviews dba), carol (reviews nothing).")
    write("Type `/access …`, `as bob` to switch user, or an empty line / Ctrl-D to quit.")
    while True:
        try:
            line = await ask(read, f"{session.user}> ")
        except EOFError:
            return
        if not line.strip():
            return
        await session.handle(line)
