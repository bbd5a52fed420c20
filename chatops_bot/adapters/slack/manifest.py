"""The Slack app manifest for `chatops-bot slack-manifest`: `/access`, interactivity and the scopes used.

The scopes are exactly what the bot calls: `commands` (the slash command), `chat:write` (cards and
updates), `im:write` (DMs to requesters and reviewers), `users:read` (users.info), and
`users:read.email` only when `users.match_email` lets an e-mail address link a Slack user to Teleport,
and `channels:read` only when a route names a channel (`#name`), which is looked up with conversations.list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from chatops_bot.adapters.slack.app import EVENTS_PATH
from chatops_bot.adapters.slack.interactions import COMMAND
from commands.grammar import USAGE
from commands.help import INTRO

APP_NAME = "Teleport Access"
BOT_NAME = "chatops-bot"
BASE_SCOPES = ("commands", "chat:write", "im:write", "users:read")
EMAIL_SCOPE = "users:read.email"
CHANNELS_SCOPE = "channels:read"


def manifest(url: str | None, *, socket_mode: bool, match_email: bool, channel_names: bool = False) -> dict[str, Any]:
    """The manifest as a dict (the CLI prints it as YAML); `url` is the bot's public HTTPS base URL."""
    events_url = None if socket_mode else _events_url(url)
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": INTRO,
        "usage_hint": USAGE.removeprefix(f"{COMMAND} "),
        "should_escape": False,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    if events_url is not None:
        command["url"] = events_url
        interactivity["request_url"] = events_url
    scopes = [*BASE_SCOPES, *([EMAIL_SCOPE] if match_email else []), *([CHANNELS_SCOPE] if channel_names else [])]
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {"name": APP_NAME, "description": INTRO},
        "features": {
            "bot_user": {"display_name": BOT_NAME, "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": scopes}},
        "settings": {
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def _events_url(url: str | None) -> str:
    if not url:
        raise ValueError("--url is required unless --socket-mode: Slack needs a request URL to call")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"--url must be an https:// URL (Slack only calls HTTPS request URLs), not {url!r}")
    if parts.query or parts.fragment:
        raise ValueError("--url must be the bot's base URL, without a query or fragment")
    return f"https://{parts.netloc}{parts.path.rstrip('/')}{EVENTS_PATH}"
