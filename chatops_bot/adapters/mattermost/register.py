"""Registering `/access` as a custom slash command on a Mattermost team, or bringing it up to date."""

from __future__ import annotations

import logging
from typing import Any, cast

from mattermostautodriver import AsyncTypedDriver

from commands import messages
from commands.usage import USAGE

logger = logging.getLogger(__name__)

TRIGGER = "access"
# The usage line without the command itself: Mattermost shows the hint after `/access `.
HINT = USAGE.split(maxsplit=1)[1]


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


async def register_command(driver: AsyncTypedDriver, team_name: str, url: str) -> tuple[dict[str, Any], str]:
    """Create `/access` on the team, or update the existing one to match; returns it and its token.

    Updating keeps the token (Mattermost never changes it on update), so running this again after moving
    the bot does not invalidate `mattermost.command_tokens`. Nothing is written when nothing differs.
    """
    team = await driver.teams.get_team_by_name(team_name)
    wanted = command_spec(url)
    listed = await driver.commands.list_commands(team_id=team["id"], custom_only=True)
    existing = next((c for c in listed if c.get("trigger") == TRIGGER), None)
    if existing is None:
        created = cast(dict[str, Any], await driver.client.post(
            # Not `commands.create_command`: its typed signature cannot carry the autocomplete fields.
            "/api/v4/commands", options={"team_id": team["id"], **wanted}
        ))
        logger.info("created /%s on team %s (command %s)", TRIGGER, team_name, created["id"])
        return created, str(created["token"])
    if all(existing.get(key) == value for key, value in wanted.items()):
        return cast(dict[str, Any], existing), str(existing["token"])
    updated = cast(
        dict[str, Any], await driver.commands.update_command(existing["id"], options={**existing, **wanted})
    )
    logger.info("updated /%s on team %s (command %s)", TRIGGER, team_name, updated["id"])
    return updated, str(updated["token"])
