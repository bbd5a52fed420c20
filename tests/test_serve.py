"""`chatops-bot serve` as deployed: one process, one config, Slack and Mattermost at once, SIGTERM to stop."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chatops_bot.devstack.mattermost import BOT_USER_ID, DevMattermost, MMChannel, MMTeam, MMUser
from conftest import free_port

from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.slack import DevSlack
from chatops_bot.devstack.teleport import DevTeleport

BIN = shutil.which("chatops-bot", path=str(Path(sys.executable).parent)) or "chatops-bot"
TEAM = MMTeam("team".ljust(26, "0"), "ops", "Ops")
ALICE_MM = MMUser("alicemmid".ljust(26, "0"), "alice", "alice@example.com")
ACCESS_MM = MMChannel("chanaccess".ljust(26, "0"), TEAM.id, "access-requests")
COMMAND_TOKEN = "k3" * 13


@pytest.fixture
async def platforms() -> AsyncIterator[tuple[DevSlack, DevMattermost]]:
    slack = DevSlack()
    # The bot is a team admin here, the first way out `mattermost-register` names for a default server.
    mattermost = DevMattermost(team=TEAM, users=[ALICE_MM], channels=[ACCESS_MM], team_admins=[BOT_USER_ID])
    await slack.start()
    await mattermost.start()
    yield slack, mattermost
    await slack.stop()
    await mattermost.stop()


def write_config(tmp_path: Path, teleport: DevTeleport, slack: DevSlack, mm: DevMattermost, port: int) -> Path:
    identity = tmp_path / "bot.pem"
    write_identity_file(teleport.identity("chatops-bot"), identity)
    config = tmp_path / "config.yaml"
    config.write_text(f"""
teleport: {{addr: "{teleport.addr}", identity_file: "{identity}"}}
server: {{listen: "127.0.0.1:{port}"}}
slack: {{bot_token: xoxb-devstack, signing_secret: "{slack.signing_secret}", api_url: "{slack.api_url}"}}
mattermost:
  url: "{mm.url}"
  bot_token: "{mm.bot_token}"
  command_tokens: ["{COMMAND_TOKEN}"]
  action_secret: "an action secret of at least thirty-two characters"
  public_url: "http://127.0.0.1:{port}"
""")
    return config


async def wait_healthy(http: httpx.AsyncClient, proc: asyncio.subprocess.Process) -> None:
    for _ in range(200):
        if proc.returncode is not None:
            raise AssertionError(f"serve exited with {proc.returncode}")
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("serve did not become healthy within 10 s")


async def test_one_process_serves_slack_and_mattermost_and_stops_cleanly_on_sigterm(
    teleport: DevTeleport, platforms: tuple[DevSlack, DevMattermost], tmp_path: Path
) -> None:
    slack, mm = platforms
    port = free_port()
    config = write_config(tmp_path, teleport, slack, mm, port)
    proc = await asyncio.create_subprocess_exec(BIN, "serve", "-c", str(config), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env={**os.environ})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await wait_healthy(http, proc)

            body = slack.slash_command_body("U0ALICE", "request dba --for 1h INC-1 from slack", "C0ACCESS")
            answer = await http.post("/slack/events", content=body, headers=slack.signed_headers(body))
            assert answer.status_code == 200
            assert "Requested dba for alice" in answer.json()["text"]

            form, headers = mm.command_form(token=COMMAND_TOKEN, user_id=ALICE_MM.id, user_name="alice",
                                            channel_id=ACCESS_MM.id, text="list mine",
                                            trigger_id=mm.issue_trigger_id(ALICE_MM.id), team_id=TEAM.id,
                                            response_url=f"{mm.url}/hooks/commands/x")
            answer = await http.post("/mattermost/command", content=form, headers=headers)
            assert answer.status_code == 200
            assert "Your requests (1, page 1 of 1)" in answer.json()["text"]

        stored = list(teleport.store.requests.values())
        assert [(r.user, r.roles, r.reason) for r in stored] == [("alice", ("dba",), "INC-1 from slack")]
        assert [c.method for c in slack.calls if c.method == "auth.test"]
        assert any(c.path == "/api/v4/users/me" for c in mm.calls)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


async def test_serve_names_the_key_when_slack_refuses_the_token(
    teleport: DevTeleport, platforms: tuple[DevSlack, DevMattermost], tmp_path: Path
) -> None:
    slack, mm = platforms
    config = write_config(tmp_path, teleport, slack, mm, free_port())
    config.write_text(config.read_text().replace("bot_token: xoxb-devstack", "bot_token: xoxb-revoked"))
    proc = await asyncio.create_subprocess_exec(BIN, "serve", "-c", str(config), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 1
    assert any(line.startswith("slack.bot_token: Slack refused") for line in stderr.decode().splitlines())
    assert "xoxb-revoked" not in stderr.decode()
    assert b"Traceback" not in stderr


async def test_mattermost_register_creates_the_command_and_prints_its_token(
    teleport: DevTeleport, platforms: tuple[DevSlack, DevMattermost], tmp_path: Path
) -> None:
    slack, mm = platforms
    config = write_config(tmp_path, teleport, slack, mm, free_port())
    url = "https://bot.example.com/mattermost/command"
    outputs = []
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(
            BIN, "mattermost-register", "-c", str(config), "--team", "ops", "--url", url,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 0, stderr.decode()
        outputs.append(stdout.decode().splitlines())
    [command] = mm.commands.values()
    assert command["trigger"] == "access" and command["url"] == url
    assert outputs[0][-1] == outputs[1][-1] == command["token"]


async def test_the_first_registration_needs_no_command_token_but_everything_else_does(
    teleport: DevTeleport, platforms: tuple[DevSlack, DevMattermost], tmp_path: Path
) -> None:
    slack, mm = platforms
    config = write_config(tmp_path, teleport, slack, mm, free_port())
    config.write_text("\n".join(line for line in config.read_text().splitlines() if "command_tokens" not in line))

    async def run(*args: str) -> tuple[int | None, str, str]:
        proc = await asyncio.create_subprocess_exec(
            BIN, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
        return proc.returncode, stdout.decode(), stderr.decode()

    code, out, err = await run("mattermost-register", "-c", str(config), "--team", "ops",
                               "--url", "https://bot.example.com/mattermost/command")
    [command] = mm.commands.values()
    assert (code, out.splitlines()[-1]) == (0, command["token"]), err
    code, out, err = await run("check-config", "-c", str(config))
    assert code == 2
    assert "mattermost.command_tokens: must not be empty (`chatops-bot mattermost-register` prints the token)" in err
