"""The bot against a real Mattermost (5.36.1), and the devstack stand-in held to the same scenario.

alice asks for dba with `/access` through `POST commands/execute`, so the server itself calls the bot;
cards reach the channel and bob's DM; carol's click is refused, bob approves on his DM card; alice is
told, reminded with Extend, extends through the dialog; a request made through the dialog that
`/access request` opens is denied on the channel card. What users see after each step (posts, their
messages and attachments, status codes) is written down as a transcript; the stand-in must produce the
very same transcript as the real server: it is trusted only where it matches.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from conftest import FixedClock
from mm_sites import Site, cli, real_server, real_site, stand_in_site  # noqa: F401  (fixtures)

from chatops_bot import runtime
from chatops_bot.config import Settings
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.seed import load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.reminders import Reminders
from chatops_bot.server import build_app
from chatops_bot.watcher import Backoff, Lanes, Watcher
from chatops_bot.wiring import chat_adapters, command_context, teleport_client
from commands.model import RequestState

FAST = Backoff(first=0.05, maximum=0.3)
SECRET = "an action secret of at least thirty-two characters"
# Access expiry follows the wall clock by a few seconds in places; the two runs are minutes apart.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?(?= UTC)")
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REMINDERS = {"before_expiry": ["15m"], "on_expiry": False, "nudge_pending_after": "30m", "max_nudges": 0}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `check` every 20 ms until it returns without an AssertionError (no sleeps of fixed length)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.02)


@dataclass
class Bot:
    url: str
    settings: Settings
    reminders: Reminders
    watcher: Watcher
    stop: Callable[[], Awaitable[None]]


def config_for(site: Site, teleport: DevTeleport, tmp_path: Path, port: int, token: str) -> dict[str, Any]:
    identity = tmp_path / "chatops-bot.pem"
    write_identity_file(teleport.identity("chatops-bot"), identity)
    return {
        "teleport": {"addr": teleport.addr, "identity_file": str(identity)},
        "server": {"listen": f"127.0.0.1:{port}"},
        "mattermost": {"url": site.url, "bot_token": site.bot_token, "command_tokens": [token] if token else [],
                       "action_secret": SECRET, "public_url": f"http://127.0.0.1:{port}"},
        "routing": {"role_to_recipients": {"mattermost": {"*": [f"{site.team}/access-requests"]}}},
        "reminders": REMINDERS,
    }


async def start_bot(settings: Settings, clock: FixedClock, sock: socket.socket) -> Bot:
    """The bot as `serve` assembles it, with the test's clock for reminders, on `sock`."""
    client = teleport_client(settings)
    adapters = chat_adapters(settings, command_context(settings, client))
    for adapter in adapters:
        await adapter.start()
    notifier = runtime.notifier(settings, client, runtime.outbounds(adapters))
    keeper = Reminders(notifier, settings.reminders, clock)
    watcher = Watcher(client, notifier, backoff=FAST, lanes=Lanes(notifier, retry=FAST), observers=[keeper])
    keeper.follow(watcher.synced)
    keeper.start()
    task = asyncio.create_task(watcher.run())
    server = uvicorn.Server(uvicorn.Config(build_app(adapters), log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(watcher.synced.wait(), 10)

    async def stop() -> None:
        await keeper.stop()
        task.cancel()
        server.should_exit = True
        await asyncio.gather(task, serving, return_exceptions=True)
        for adapter in adapters:
            await adapter.stop()
        await client.close()

    return Bot(f"http://127.0.0.1:{sock.getsockname()[1]}", settings, keeper, watcher, stop)


# --- what users see, written so that two servers can be compared ---------------------------------------------

ATTACHMENT_KEYS = ("title", "title_link", "text", "color", "footer")


class Transcript:
    """Steps with what they showed, request IDs and user IDs replaced by stable names."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.lines: list[tuple[str, Any]] = []
        self._requests: dict[str, str] = {}

    def name(self, text: str) -> str:
        def request(match: re.Match[str]) -> str:
            return self._requests.setdefault(match.group(), f"<request {len(self._requests) + 1}>")

        text = TIMESTAMP.sub("<time>", REQUEST_ID.sub(request, text.replace("\\-", "-")))
        for short in [r[-8:] for r in self._requests]:
            text = text.replace(short, self._requests[next(r for r in self._requests if r.endswith(short))])
        for user, user_id in {**self.site.ids, "bot": self.site.bot_id}.items():
            text = text.replace(user_id, f"<{user}>")
        return text

    def post(self, post: dict[str, Any]) -> dict[str, Any]:
        props = post.get("props") or {}
        attachments = [{**{k: self.name(str(a.get(k) or "")) for k in ATTACHMENT_KEYS},
                        "fields": [(f["title"], self.name(str(f["value"]))) for f in a.get("fields") or []],
                        "actions": [b["name"] for b in a.get("actions") or []]}
                       for a in props.get("attachments") or []]
        return {"message": self.name(post["message"]), "attachments": attachments,
                "from_bot": props.get("from_bot"), "edited": post["edit_at"] > 0, "root": bool(post["root_id"])}

    def add(self, step: str, seen: Any) -> None:
        self.lines.append((step, seen))


def card_of(posts: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    shown = request_id.replace("-", "\\-")
    found = [p for p in posts if not p["root_id"] and shown in
             [f["value"] for a in p["props"].get("attachments") or [] for f in a.get("fields") or []]]
    assert len(found) == 1, f"{len(found)} cards for {request_id}"
    return found[0]


def buttons(post: dict[str, Any]) -> dict[str, str]:
    return {b["name"]: b["id"] for a in post["props"].get("attachments") or [] for b in a.get("actions") or []}


def state_of(post: dict[str, Any]) -> str:
    return str(post["props"]["attachments"][0]["text"])


async def scenario(site: Site, teleport: DevTeleport, clock: FixedClock, tmp_path: Path) -> Transcript:
    seen = Transcript(site)
    tmp_path.mkdir(parents=True, exist_ok=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config_path = tmp_path / "config.yaml"
    import yaml

    config_path.write_text(yaml.safe_dump(config_for(site, teleport, tmp_path, port, "")))

    # 1. Registration: the bot's own token is refused on a default server, in one line naming both ways out.
    command_url = f"http://127.0.0.1:{port}/mattermost/command"
    code, out, err = await cli("mattermost-register", "-c", str(config_path), "--team", site.team,
                               "--url", command_url)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "team admin" in err and "--admin-token-env" in err and "manage_slash_commands" in err
    seen.add("register as the bot", (code, err.strip()))
    code, out, err = await cli("mattermost-register", "-c", str(config_path), "--team", site.team,
                               "--url", command_url, "--admin-token-env", "ADMIN_TOKEN",
                               env={"ADMIN_TOKEN": site.admin_token})
    assert code == 0, err
    command_token = out.strip().splitlines()[-1]
    seen.add("register with --admin-token-env", (code, out.splitlines()[0].split(" (command")[0]))

    settings = Settings.model_validate(config_for(site, teleport, tmp_path, port, command_token))
    bot = await start_bot(settings, clock, sock)
    try:
        await _decide(site, teleport, clock, bot, seen)
    finally:
        await bot.stop()
    return seen


async def execute(site: Site, user: str, text: str, channel_id: str = "") -> tuple[int, dict[str, Any]]:
    answer = await site.api("POST", "/commands/execute", user,
                            {"channel_id": channel_id or site.channel_id, "team_id": site.team_id,
                             "command": f"/access {text}"})
    return answer.status_code, answer.json()


async def click(site: Site, user: str, post: dict[str, Any], name: str, *, ephemeral: bool = True
                ) -> tuple[int, str, str]:
    """`user` clicks; the status, the answer's status field, and the ephemeral message they were shown."""
    before = len(site.ephemeral[user])
    answer = await site.api("POST", f"/posts/{post['id']}/actions/{buttons(post)[name]}", user)

    async def shown() -> str:
        assert len(site.ephemeral[user]) > before
        return site.ephemeral[user][before]

    said = await eventually(shown) if answer.status_code == 200 and ephemeral else ""
    return answer.status_code, str(answer.json().get("status")), said


async def _decide(site: Site, teleport: DevTeleport, clock: FixedClock, bot: Bot, seen: Transcript) -> None:
    status, answer = await execute(site, "alice", "request dba --for 1h INC-7 replica lag")
    request_id = str(answer["attachments"][0]["fields"][0]["value"]).replace("\\-", "-")
    seen.name(request_id)
    seen.add("alice types /access request dba", (status, seen.name(str(answer.get("text")))))
    bob_dm = await site.dm_channel("bob")

    async def cards() -> tuple[dict[str, Any], dict[str, Any]]:
        return (card_of(await site.posts(site.channel_id, "bob"), request_id),
                card_of(await site.posts(bob_dm, "bob"), request_id))

    channel_card, dm_card = await eventually(cards)
    seen.add("the channel card", seen.post(channel_card))
    seen.add("bob's DM card", seen.post(dm_card))

    status, ok, said = await click(site, "carol", channel_card, "Approve")
    seen.add("carol clicks Approve on the channel card", (status, ok, seen.name(said)))
    assert teleport.store.request(request_id).state is RequestState.PENDING
    status, ok, said = await click(site, "bob", dm_card, "Approve")
    seen.add("bob clicks Approve on his DM card", (status, ok, seen.name(said)))

    async def decided() -> tuple[dict[str, Any], dict[str, Any]]:
        now = await cards()
        assert all("Approved" in state_of(p) and not buttons(p) for p in now), [state_of(p) for p in now]
        return now

    channel_card, dm_card = await eventually(decided)
    assert dm_card["message"], "the DM's text was erased"
    assert dm_card["props"].get("from_bot") == "true", "the DM card lost its BOT badge"
    seen.add("the channel card, approved", seen.post(channel_card))
    seen.add("bob's DM card, approved", seen.post(dm_card))
    await _told_reminded_extended(site, teleport, clock, bot, seen, request_id)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


async def _teleport(site: Site, cluster_ca: ClusterCA, clock: FixedClock) -> DevTeleport:
    text = demo_seed_text()
    for name in ("alice", "bob", "carol"):
        text = text.replace(f"{name}mmid".ljust(26, "0"), site.ids[name])
    server = DevTeleport(load_seed(text), cluster_name="devstack.example.com", ca=cluster_ca, clock=clock.now)
    await server.start("127.0.0.1:0")
    return server


_STAND_IN: list[Transcript] = []  # the stand-in's transcript, played once and compared with the real one


async def _play(site: Site, cluster_ca: ClusterCA, tmp_path: Path) -> Transcript:
    clock = FixedClock()
    teleport = await _teleport(site, cluster_ca, clock)
    try:
        return await scenario(site, teleport, clock, tmp_path / site.kind)
    finally:
        await teleport.stop()


async def test_the_stand_in_plays_the_scenario(stand_in_site: Site, cluster_ca: ClusterCA, tmp_path: Path) -> None:
    _STAND_IN[:] = [await _play(stand_in_site, cluster_ca, tmp_path)]


async def test_a_real_mattermost_sees_what_the_stand_in_sees(
        real_site: Site, cluster_ca: ClusterCA, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    real = await _play(real_site, cluster_ca, tmp_path)
    if not _STAND_IN:  # run on its own (-k): play the stand-in too
        _STAND_IN.append(await _play(request.getfixturevalue("stand_in_site"), cluster_ca, tmp_path))
    for (step, on_real), (same_step, on_stand_in) in zip(real.lines, _STAND_IN[0].lines, strict=True):
        assert step == same_step
        assert on_stand_in == on_real, f"the stand-in differs from a real Mattermost at: {step}"


async def _told_reminded_extended(site: Site, teleport: DevTeleport, clock: FixedClock, bot: Bot, seen: Transcript,
                                  request_id: str) -> None:
    alice_dm = await site.dm_channel("alice")

    async def outcome() -> dict[str, Any]:
        told = [p for p in await site.posts(alice_dm, "alice") if "approved" in p["message"]]
        assert len(told) == 1
        return told[0]

    seen.add("alice is told", seen.post(await eventually(outcome)))
    ends = teleport.store.request(request_id).access_expires
    assert ends is not None
    clock.current = ends - timedelta(minutes=14)
    bot.reminders.clock_moved()

    async def reminded() -> dict[str, Any]:
        found = [p for p in await site.posts(alice_dm, "alice") if "Extend" in buttons(p)]
        assert len(found) == 1
        return found[0]

    reminder = await eventually(reminded)
    seen.add("alice's reminder", seen.post(reminder))
    status, ok, _ = await click(site, "alice", reminder, "Extend", ephemeral=False)
    seen.add("alice clicks Extend", (status, ok))

    async def opened() -> dict[str, Any]:
        assert site.dialogs["alice"]
        return site.dialogs["alice"][-1]

    form = await eventually(opened)
    dialog = form["dialog"]
    seen.add("the Extend form", (dialog["title"], [(e["name"], seen.name(str(e.get("default", ""))))
                                                   for e in dialog["elements"]]))
    before = set(teleport.store.requests)
    body = {"url": form["url"], "callback_id": dialog["callback_id"], "state": dialog["state"],
            "channel_id": alice_dm, "team_id": site.team_id,
            "submission": {"roles": "dba", "duration": "1h", "reason": "INC-7 still lagging"}}
    for attempt in ("alice submits the Extend form", "alice submits the same form again"):
        answer = await site.api("POST", "/actions/dialogs/submit", "alice", body)
        seen.add(attempt, (answer.status_code, answer.json()))
    made = set(teleport.store.requests) - before
    assert len(made) == 1, f"{len(made)} requests from one form"  # once, however often it is sent
    (extension,) = made
    seen.name(extension)

    async def extension_card() -> dict[str, Any]:
        return card_of(await site.posts(site.channel_id, "bob"), extension)

    card = await eventually(extension_card)
    status, ok, said = await click(site, "bob", card, "Deny")
    seen.add("bob clicks Deny on the channel card", (status, ok, seen.name(said)))

    async def denied() -> dict[str, Any]:
        now = await extension_card()
        assert "Denied" in state_of(now) and not buttons(now), state_of(now)
        return now

    seen.add("the channel card, denied", seen.post(await eventually(denied)))
    status, answer = await execute(site, "carol", "request")
    seen.add("carol types /access request", (status, answer.get("text")))
