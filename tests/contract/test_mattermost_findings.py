"""What a real Mattermost showed about settings and memberships, checked on it and on the stand-in alike:
`mattermost-register` on a default server, hidden e-mail addresses, channels the bot is not in, and the
driver's own error logging. Each test fails on the code before its fix."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml
from conftest import free_port
from mattermostautodriver.exceptions import NotEnoughPermissions
from mm_sites import Site, cli, real_server, real_site, stand_in_site  # noqa: F401  (fixtures)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatops_bot import logs
from chatops_bot.adapters.mattermost.outbound import MattermostOutbound
from chatops_bot.adapters.mattermost.trigger import Triggers
from chatops_bot.config import MattermostSettings, Settings
from chatops_bot.devstack.loopback import LoopbackServer
from chatops_bot.devstack.mattermost import new_id
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.teleport import DevTeleport

SECRET = "an action secret of at least thirty-two characters"


@pytest.fixture(params=["stand-in", "real"])
def site(request: pytest.FixtureRequest) -> Site:
    return request.getfixturevalue("stand_in_site" if request.param == "stand-in" else "real_site")


def write_config(tmp_path: Path, site: Site, teleport: DevTeleport, **sections: Any) -> Path:
    identity = tmp_path / "chatops-bot.pem"
    write_identity_file(teleport.identity("chatops-bot"), identity)
    config = {
        "teleport": {"addr": teleport.addr, "identity_file": str(identity)},
        "mattermost": {"url": site.url, "bot_token": site.bot_token, "command_tokens": ["x" * 26],
                       "action_secret": SECRET, "public_url": "http://127.0.0.1:9"},
        **sections,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def hidden_emails(site: Site) -> AsyncIterator[None]:
    """`PrivacySettings.ShowEmailAddress=false`, set as an admin does, and back afterwards."""
    answer = await site.api("PUT", "/config/patch", "admin", {"PrivacySettings": {"ShowEmailAddress": False}})
    assert answer.status_code == 200, answer.text
    yield
    await site.api("PUT", "/config/patch", "admin", {"PrivacySettings": {"ShowEmailAddress": True}})


async def test_hidden_email_addresses_are_named_with_what_to_use_instead(
        site: Site, hidden_emails: None, teleport: DevTeleport, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path, site, teleport, users={"match_email": True}, routing={
        "role_to_recipients": {"mattermost": {"*": ["alice@example.com"]}}})
    code, out, err = await cli("check-config", "--connect", "-c", str(config))
    assert code == 2, out + err
    assert ("error: routing.role_to_recipients.mattermost: alice@example.com: Mattermost hides e-mail addresses"
            in err)
    assert "route to a channel (team/channel or a channel ID)" in err
    assert "warning: users.match_email: Mattermost hides e-mail addresses" in out
    assert "by users.map" in out and "Traceback" not in err

    # The bot's own look-up is refused (403, not "no such user"), and the driver does not log it as an error.
    settings = Settings.model_validate({
        "teleport": {"addr": teleport.addr, "identity_file": "unused.pem"},
        "mattermost": {"url": site.url, "bot_token": site.bot_token, "command_tokens": ["x" * 26],
                       "action_secret": SECRET, "public_url": "http://127.0.0.1:9"}})
    logs.quiet_libraries()  # as `serve` and every CLI command set logging up
    outbound = MattermostOutbound.from_settings(settings.mattermost)  # type: ignore[arg-type]
    try:
        await outbound.login()
        with caplog.at_level(logging.INFO), pytest.raises(NotEnoughPermissions):
            await outbound.user_by_email("alice@example.com")
    finally:
        await outbound.close()
    assert not [r for r in caplog.records if r.name.startswith("mattermostautodriver") and r.levelno >= logging.INFO]


async def test_channels_the_bot_is_not_in_are_joined_when_public_and_refused_when_private(
        site: Site, teleport: DevTeleport, tmp_path: Path) -> None:
    public, private = f"oncall-{new_id()[:8]}", f"secret-{new_id()[:8]}"
    for name, kind in ((public, "O"), (private, "P")):
        made = await site.api("POST", "/channels", "admin", {"team_id": site.team_id, "name": name,
                                                              "display_name": name, "type": kind})
        assert made.status_code == 201, made.text
    public_id = (await site.api("GET", f"/teams/{site.team_id}/channels/name/{public}", "admin")).json()["id"]
    assert (await site.api("POST", "/posts", "bot", {"channel_id": public_id, "message": "x"})).status_code == 403
    config = write_config(tmp_path, site, teleport, routing={"role_to_recipients": {"mattermost": {
        "dba": [f"{site.team}/{public}"], "*": [f"{site.team}/{private}", f"{site.team}/access-requests"]}}})

    code, out, err = await cli("check-config", "--connect", "-c", str(config))
    assert code == 2, out + err
    assert f"warning: routing.role_to_recipients.mattermost: {site.team}/{public}: the bot was not a member; it joined" in out
    (refusal,) = [line for line in err.splitlines() if private in line]
    assert refusal.startswith(f"error: routing.role_to_recipients.mattermost: {site.team}/{private}: no channel")
    assert "/invite @chatops-bot" in refusal
    said = [line for line in (out + err).splitlines() if line.startswith(("warning:", "error:"))]
    assert not [line for line in said if "access-requests" in line]  # a channel the bot is in needs no word
    # Joined for real: the bot may now post (and so edit) there.
    assert (await site.api("GET", f"/channels/{public_id}/members/me", "bot")).status_code == 200
    assert (await site.api("POST", "/posts", "bot", {"channel_id": public_id, "message": "x"})).status_code == 201


async def test_register_failures_are_one_line_naming_the_key(site: Site, teleport: DevTeleport,
                                                             tmp_path: Path) -> None:
    config = write_config(tmp_path, site, teleport)
    url = "http://127.0.0.1:9/mattermost/command"
    code, out, err = await cli("mattermost-register", "-c", str(config), "--team", site.team, "--url", url,
                               "--admin-token-env", "ADMIN_TOKEN", env={"ADMIN_TOKEN": "not-a-token"})
    assert (code, len(err.splitlines())) == (1, 1), err
    assert err.startswith("--admin-token-env: Mattermost at") and "refused the token" in err

    config.write_text(config.read_text().replace(site.bot_token, "not-a-token"))
    code, out, err = await cli("mattermost-register", "-c", str(config), "--team", site.team, "--url", url)
    assert (code, len(err.splitlines())) == (1, 1), err
    assert err.startswith("mattermost.bot_token: Mattermost at") and "refused the token" in err

    config.write_text(config.read_text().replace(site.url, f"http://127.0.0.1:{free_port()}"))
    code, out, err = await cli("mattermost-register", "-c", str(config), "--team", site.team, "--url", url)
    assert (code, len(err.splitlines())) == (1, 1), err
    assert err.startswith("mattermost.url: cannot reach Mattermost") and "Traceback" not in err


async def refusals(site: Site) -> list[tuple[str, int, str, str]]:
    """What Mattermost answers to calls it refuses: status, error id and its English message."""
    hidden = f"hidden-{new_id()[:8]}"
    made = await site.api("POST", "/channels", "admin", {"team_id": site.team_id, "name": hidden,
                                                          "display_name": hidden, "type": "O"})
    channel_id = made.json()["id"]
    posted = await site.api("POST", "/posts", "alice", {"channel_id": site.channel_id, "message": "plain"})
    calls = {
        "bot creates a command": ("POST", "/commands", "bot", {"team_id": site.team_id, "trigger": "access",
                                                                "method": "P", "url": "http://127.0.0.1:9/x"}),
        "bot lists commands": ("GET", f"/commands?team_id={site.team_id}&custom_only=true", "bot", None),
        "bot posts where it is not a member": ("POST", "/posts", "bot", {"channel_id": channel_id, "message": "x"}),
        "bot asks its membership there": ("GET", f"/channels/{channel_id}/members/me", "bot", None),
        "bot edits alice's post": ("PUT", f"/posts/{posted.json()['id']}/patch", "bot", {"message": "y"}),
        "a click on a post without that action": ("POST", f"/posts/{posted.json()['id']}/actions/nope", "bob",
                                                  None),
        "an unknown command": ("POST", "/commands/execute", "alice",
                               {"channel_id": site.channel_id, "command": "/nosuchthing"}),
        "a bad token": ("GET", "/users/me", "nobody", None),
    }
    site.tokens.setdefault("nobody", "not-a-token")
    seen = []
    for what, (method, path, who, body) in calls.items():
        path, _, query = path.partition("?")
        params = dict(pair.split("=") for pair in query.split("&")) if query else {}
        answer = await site.api(method, path, who, body, **params)
        error = answer.json()
        seen.append((what, answer.status_code, error.get("id"), error.get("message")))
    return seen


async def test_refusals_read_the_same_on_the_stand_in_as_on_a_real_mattermost(
        real_site: Site, stand_in_site: Site) -> None:
    real, stand_in = await refusals(real_site), await refusals(stand_in_site)
    for on_real, on_stand_in in zip(real, stand_in, strict=True):
        assert on_stand_in == on_real


async def test_the_trigger_id_proves_who_acted_on_the_stand_in_as_on_a_real_mattermost(site: Site) -> None:
    """Both servers sign the trigger ID of a slash command for the user who typed it, with the key their
    client config publishes: the bot believes it for that user once, and for no one else (issue 13, item 1)."""
    forms: list[dict[str, str]] = []

    async def capture(request: Request) -> JSONResponse:
        forms.append({k: v[0] for k, v in parse_qs((await request.body()).decode()).items()})
        return JSONResponse({"text": "seen"})

    listener = LoopbackServer(Starlette(routes=[Route("/", capture, methods=["POST"])]))
    port = await listener.start()
    try:
        trigger = "trig" + new_id()[:8]
        made = await site.api("POST", "/commands", "admin", {"team_id": site.team_id, "trigger": trigger,
                                                             "url": f"http://127.0.0.1:{port}/", "method": "P"})
        assert made.status_code == 201, made.text
        ran = await site.api("POST", "/commands/execute", "alice",
                             {"channel_id": site.channel_id, "command": f"/{trigger} hi"})
        assert ran.status_code == 200, ran.text
    finally:
        await listener.stop()
    (form,) = forms
    assert form["user_id"] == site.ids["alice"]

    settings = MattermostSettings(url=site.url, bot_token=site.bot_token, command_tokens=("x" * 26,),
                                  action_secret=SECRET, public_url="http://127.0.0.1:9")
    outbound = MattermostOutbound.from_settings(settings)
    triggers = Triggers(outbound)
    try:
        await outbound.login()
        await triggers.load()
    finally:
        await outbound.close()
    assert triggers.problem is None
    assert await triggers.refusal(form["trigger_id"], site.ids["bob"], "slash command") is not None
    assert await triggers.refusal(form["trigger_id"], site.ids["alice"], "slash command") is None
    assert await triggers.refusal(form["trigger_id"], site.ids["alice"], "slash command") is not None


async def test_a_mention_inside_code_notifies_nobody_on_a_real_mattermost(real_site: Site) -> None:
    """Why a reason is shown exactly as typed inside code (`commands.text.as_typed`), its `@channel` kept:
    Mattermost counts no mention in an inline code span or a code block, and one outside code it does."""
    site = real_site
    channel = site.channel_id

    async def carols_mentions() -> int:
        answer = await site.api("GET", f"/users/{site.ids['carol']}/channels/{channel}/unread", "carol")
        assert answer.status_code == 200, answer.text
        return int(answer.json()["mention_count"])

    viewed = await site.api("POST", f"/channels/members/{site.ids['carol']}/view", "carol", {"channel_id": channel})
    assert viewed.status_code == 200, viewed.text
    counts = [await carols_mentions()]
    for message in ("reason: `@channel fix *db* <now>`", "```\n@channel in a block\n```", "@channel outside code"):
        posted = await site.api("POST", "/posts", "bob", {"channel_id": channel, "message": message})
        assert posted.status_code == 201, posted.text
        for _ in range(50):  # the count is updated just after the post is answered
            await asyncio.sleep(0.05)
            if message.startswith("@") and await carols_mentions() > counts[-1]:
                break
        counts.append(await carols_mentions())
    assert [b - a for a, b in zip(counts, counts[1:])] == [0, 0, 1]


async def test_a_users_time_zone_reads_the_same_on_the_stand_in_as_on_a_real_mattermost(site: Site) -> None:
    """The bot shows times in the zone Mattermost has for a person: `timezone` as a real server answers it."""
    zone = {"useAutomaticTimezone": "false", "manualTimezone": "Europe/Paris", "automaticTimezone": ""}
    patched = await site.api("PUT", f"/users/{site.ids['alice']}/patch", "alice", {"timezone": zone})
    try:
        assert patched.status_code == 200, patched.text
        seen = await site.api("GET", f"/users/{site.ids['alice']}", "bot")
        assert seen.status_code == 200, seen.text
        assert seen.json()["timezone"] == zone
    finally:  # the real server lives for the whole run: alice reads UTC again for the other tests
        automatic = {"useAutomaticTimezone": "true", "manualTimezone": "", "automaticTimezone": ""}
        await site.api("PUT", f"/users/{site.ids['alice']}/patch", "alice", {"timezone": automatic})
