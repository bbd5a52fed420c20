"""The two Mattermosts the contract scenario runs against: a real server (Team Edition 5.36.1 with its own
PostgreSQL, `../shared/mattermost/server`, started once per test session) and the devstack stand-in,
seeded alike. Tests drive both through the same REST calls a Mattermost client makes, as alice, bob,
carol or the admin; only how an opened dialog is seen differs (a websocket event to the user's client
on the real server, the stand-in's record of it)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from chatops_bot.devstack.mattermost import DevMattermost, MMChannel, MMTeam, MMUser, new_id

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO.parent / "shared" / "mattermost" / "server"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
NAMES = ("alice", "bob", "carol")


def why_no_real_server() -> str | None:
    if not SERVER.is_file():
        return f"no real Mattermost here: {SERVER} is absent (it lives in shared/, beside the clone)"
    if not (PG_BIN / "initdb").exists():
        return f"no real Mattermost here: PostgreSQL 15 is absent ({PG_BIN}; apt-get install postgresql-15)"
    if shutil.which("curl") is None:
        return "no real Mattermost here: the server script needs curl"
    return None


@dataclass
class Site:
    """One Mattermost as its users reach it: REST calls as a named user, dialogs they were shown."""

    kind: str
    url: str
    team: str
    team_id: str
    channel_id: str
    bot_id: str
    bot_token: str
    admin_token: str
    ids: dict[str, str]
    tokens: dict[str, str]
    dialogs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ephemeral: dict[str, list[str]] = field(default_factory=dict)  # ephemeral messages each user was shown
    http: httpx.AsyncClient | None = None

    async def api(self, method: str, path: str, as_: str, body: Any = None, **params: Any) -> httpx.Response:
        token = self.admin_token if as_ == "admin" else self.bot_token if as_ == "bot" else self.tokens[as_]
        assert self.http is not None
        return await self.http.request(method, "/api/v4" + path, json=body, params=params or None,
                                       headers={"Authorization": f"Bearer {token}"})

    async def posts(self, channel_id: str, as_: str) -> list[dict[str, Any]]:
        """The channel's posts as the client loads them (`GET channels/{id}/posts`), oldest first."""
        answer = await self.api("GET", f"/channels/{channel_id}/posts", as_)
        assert answer.status_code == 200, answer.text
        listing = answer.json()
        return [listing["posts"][post_id] for post_id in reversed(listing["order"])]

    async def dm_channel(self, name: str) -> str:
        answer = await self.api("POST", "/channels/direct", name, [self.ids[name], self.bot_id])
        assert answer.status_code in (200, 201), answer.text
        return str(answer.json()["id"])


_STARTED: list[dict[str, Any]] = []  # the one server of this session, whichever module asked first


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One real Mattermost for the whole session (a start takes 10-40 s), stopped at the end. Each test
    module importing this fixture gets its own session-scoped copy of it; they share the one server."""
    reason = why_no_real_server()
    if reason:
        pytest.skip(reason)
    if _STARTED:
        yield _STARTED[0]
        return
    where = tmp_path_factory.mktemp("mattermost")
    started = subprocess.run([str(SERVER), "start", str(where)], capture_output=True, text=True, timeout=240,
                             stdin=subprocess.DEVNULL)
    try:
        if started.returncode != 0:
            pytest.fail(f"the real Mattermost did not start: {started.stderr[-2000:]}")
        _STARTED.append(json.loads((where / "seed.json").read_text()))
        yield _STARTED[0]
    finally:
        subprocess.run([str(SERVER), "stop", str(where)], capture_output=True, timeout=120)


async def _watch_dialogs(url: str, token: str, into: list[dict[str, Any]], said: list[str],
                         ready: asyncio.Event) -> None:
    """The user's client: `open_dialog` websocket events (app/integration_action.go OpenInteractiveDialog)
    and `ephemeral_message` ones (app/post.go SendEphemeralPost)."""
    async with aiohttp.ClientSession() as session:
        ws_url = url.replace("http", "ws", 1) + "/api/v4/websocket"
        async with session.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"}) as ws:
            async for message in ws:
                event = json.loads(message.data)
                if event.get("event") == "hello":
                    ready.set()
                if event.get("event") == "open_dialog":
                    into.append(json.loads(event["data"]["dialog"]))  # {trigger_id, url, dialog}
                if event.get("event") == "ephemeral_message":
                    said.append(json.loads(event["data"]["post"])["message"])


@pytest.fixture
async def real_site(real_server: dict[str, Any]) -> AsyncIterator[Site]:
    seed = real_server
    site = Site("real", seed["url"], seed["team"], seed["team_id"], seed["channel_id"], seed["bot_id"],
                seed["bot_token"], seed["admin_token"], {n: seed[f"{n}_id"] for n in NAMES},
                {n: seed[f"{n}_token"] for n in NAMES})
    watchers = []
    for name in NAMES:
        site.dialogs[name], site.ephemeral[name] = [], []
        ready = asyncio.Event()
        watchers.append(asyncio.create_task(_watch_dialogs(site.url, site.tokens[name], site.dialogs[name],
                                                           site.ephemeral[name], ready)))
        await asyncio.wait_for(ready.wait(), 10)
    async with httpx.AsyncClient(base_url=site.url, timeout=30) as http:
        site.http = http
        yield site
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)


class _StandInDialogs(dict):  # type: ignore[type-arg]
    """`site.dialogs[name]`: what the stand-in recorded as opened for that user."""

    def __init__(self, mm: DevMattermost, ids: dict[str, str]) -> None:
        super().__init__()
        self.mm, self.ids = mm, ids

    def __getitem__(self, name: str) -> list[dict[str, Any]]:
        return [{"url": d["url"], "dialog": d["dialog"]} for d in self.mm.dialogs if d["user_id"] == self.ids[name]]


class _StandInEphemeral(_StandInDialogs):
    def __getitem__(self, name: str) -> list[str]:  # type: ignore[override]
        return [str(e["message"]) for e in self.mm.ephemeral if e["user_id"] == self.ids[name]]


@pytest.fixture
async def stand_in_site() -> AsyncIterator[Site]:
    """The devstack stand-in, seeded like the real server: team `ops`, `access-requests`, three members,
    a bot that is no team admin, an admin, 3-second trigger IDs (5.36)."""
    team = MMTeam(new_id(), "ops", "Ops")
    users = {n: MMUser(new_id(), n, f"{n}@example.com", token=new_id()) for n in NAMES}
    admin = MMUser(new_id(), "admin", "admin@example.com", token=new_id(), roles="system_admin system_user")
    channel = MMChannel(new_id(), team.id, "access-requests")
    bot = MMUser(new_id(), "chatops-bot", "", True, new_id())
    mm = DevMattermost(team=team, users=[*users.values(), admin], channels=[channel], bot=bot, trigger_ttl=3.0)
    await mm.start()
    ids = {n: u.id for n, u in users.items()}
    site = Site("stand-in", mm.url, team.name, team.id, channel.id, bot.id, mm.bot_token, admin.token or "",
                ids, {n: u.token or "" for n, u in users.items()})
    site.dialogs = _StandInDialogs(mm, ids)
    site.ephemeral = _StandInEphemeral(mm, ids)
    async with httpx.AsyncClient(base_url=site.url, timeout=30) as http:
        site.http = http
        yield site
    await mm.stop()


BIN = str(Path(sys.executable).parent / "chatops-bot")


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`chatops-bot ARGS` in its own process, `env` added to ours: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(BIN, *args, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()
