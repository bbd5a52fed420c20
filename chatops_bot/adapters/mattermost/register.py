"""Registering `/access` as a custom slash command on a Mattermost team, or bringing it up to date.

A bot account holds no `manage_slash_commands` on a default server (its role is a plain `system_user`,
and the team permission belongs to team and system admins: server/channels/api4/command.go), so the
usual first run is refused. Every refusal becomes one `RegisterError` line that names the way out.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import httpx
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import (
    InvalidMattermostError,
    InvalidOrMissingParameters,
    MattermostError,
    NoAccessTokenProvided,
    NotEnoughPermissions,
    ResourceNotFound,
)

from commands import messages
from commands.usage import USAGE

logger = logging.getLogger(__name__)

TRIGGER = "access"
# The usage line without the command itself: Mattermost shows the hint after `/access `.
HINT = USAGE.split(maxsplit=1)[1]
DUPLICATE_TRIGGER = "api.command.duplicate_trigger.app_error"
ADMIN_TOKEN_OPTION = "--admin-token-env"


class RegisterError(Exception):
    """Registration failed for a reason the operator can act on; the message is one line saying how."""


def command_spec(url: str) -> dict[str, Any]:
    """The command's fields as the bot wants them (method `P`: the token stays out of URLs and logs)."""
    return {
        "trigger": TRIGGER,
        "method": "P",
        "url": url,
        "auto_complete": True,
        "auto_complete_desc": messages.command_description(),
        "auto_complete_hint": HINT,
        "display_name": messages.command_display_name(),
        "description": messages.command_description(),
    }


def no_permission(team_name: str, token_key: str) -> str:
    return (f"{token_key}: this account may not manage slash commands on team {team_name!r} (Mattermost "
            "answered 403: no manage_slash_commands, which a bot account lacks on a default server); either "
            f"make the bot a team admin of {team_name!r}, or run this once with an admin's token: "
            f"{ADMIN_TOKEN_OPTION} VARIABLE")


async def register_command(
    driver: AsyncTypedDriver, team_name: str, url: str, *, token_key: str = "mattermost.bot_token"
) -> tuple[dict[str, Any], str]:
    """Create `/access` on the team, or update the existing one to match; returns it and its token.

    Updating keeps the token (Mattermost never changes it on update), so running this again after moving
    the bot does not invalidate `mattermost.command_tokens`. Nothing is written when nothing differs.
    `token_key` names where the driver's token came from, for the error lines. Raises `RegisterError`.
    """
    try:
        return await _register(driver, team_name, url, token_key)
    except NoAccessTokenProvided as err:
        raise RegisterError(f"{token_key}: Mattermost refused the token ({err})") from None
    except NotEnoughPermissions:
        raise RegisterError(no_permission(team_name, token_key)) from None
    except (MattermostError, InvalidMattermostError) as err:
        status = getattr(err, "status_code", "?")
        raise RegisterError(f"mattermost.url: Mattermost answered {status}: {err}") from None
    except httpx.HTTPError as err:
        raise RegisterError(f"mattermost.url: cannot reach Mattermost: {err!r}") from None


async def _register(
    driver: AsyncTypedDriver, team_name: str, url: str, token_key: str
) -> tuple[dict[str, Any], str]:
    try:
        team = await driver.teams.get_team_by_name(team_name)
    except ResourceNotFound:
        message = f"--team: no team {team_name!r} that this account can see (is it a member?)"
        raise RegisterError(message) from None
    wanted = command_spec(url)
    listed = await driver.commands.list_commands(team_id=team["id"], custom_only=True)
    existing = next((c for c in listed if c.get("trigger") == TRIGGER), None)
    if existing is None:
        try:
            created = cast(dict[str, Any], await driver.client.post(
                # Not `commands.create_command`: its typed signature cannot carry the autocomplete fields.
                "/api/v4/commands", options={"team_id": team["id"], **wanted}
            ))
        except InvalidOrMissingParameters as err:
            if err.error_id != DUPLICATE_TRIGGER:
                raise
            # Listed commands are only this account's own unless it may manage others' (api4/command.go
            # listCommands): someone else made /access, and only they or an admin may change it.
            raise RegisterError(
                f"--team: /{TRIGGER} already exists on team {team_name!r}, created by another account that "
                f"this token may not see or change; run this with an admin's token ({ADMIN_TOKEN_OPTION}) "
                f"to take it over, or delete it (Integrations > Slash Commands) and run this again"
            ) from None
        logger.info("created /%s on team %s (command %s)", TRIGGER, team_name, created["id"])
        return created, str(created["token"])
    if all(existing.get(key) == value for key, value in wanted.items()):
        return cast(dict[str, Any], existing), str(existing["token"])
    updated = cast(
        dict[str, Any], await driver.commands.update_command(existing["id"], options={**existing, **wanted})
    )
    logger.info("updated /%s on team %s (command %s)", TRIGGER, team_name, updated["id"])
    return updated, str(updated["token"])
