"""What a Mattermost server's settings and memberships mean for the configured routes, found before the
first card is due: at start-up (logged, and the routes that cannot work are skipped) and by
`chatops-bot check-config --connect` (printed).

Two things a real server showed: with `PrivacySettings.ShowEmailAddress=false` (a common hardening) every
user's e-mail reads as empty and `GET users/email/…` is refused (api4/user.go, `getUserByEmail`), so
e-mail recipients and `users.match_email` silently fail; and the bot can neither post in nor edit posts
in a channel it is not a member of (api4/post.go, `createPost` and `patchPost` check channel
permissions), so a card routed there would be retried forever. A public channel is joined when the server
lets the bot; anything else is refused with a line saying what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import httpx
from mattermostautodriver.exceptions import InvalidMattermostError, MattermostError

from chatops_bot.adapters.mattermost.outbound import MattermostOutbound
from chatops_bot.preflight import Finding

logger = logging.getLogger(__name__)

ROUTES_KEY = "routing.role_to_recipients.mattermost"


def is_email(recipient: str) -> bool:
    return "@" in recipient


async def emails_hidden(outbound: MattermostOutbound) -> bool:
    config = await outbound.client_config()
    return str(config.get("ShowEmailAddress", "true")).lower() == "false"


async def check(
    outbound: MattermostOutbound, recipients: Iterable[str], *, match_email: bool, join: bool = True
) -> list[Finding]:
    """Findings about every routed recipient (joining public channels when `join`); refused routes are
    recorded in `outbound.refused_channels`, so the notifier skips them instead of failing on each card."""
    found: list[Finding] = []
    wanted = list(dict.fromkeys(r.strip() for r in recipients))
    hidden = False
    if match_email or any(is_email(r) for r in wanted):
        try:
            hidden = await emails_hidden(outbound)
        except (MattermostError, InvalidMattermostError, httpx.HTTPError) as err:
            logger.warning("cannot read Mattermost's client config: %r", err)
    if hidden and match_email:
        found.append(Finding(False, (
            "users.match_email: Mattermost hides e-mail addresses (PrivacySettings.ShowEmailAddress is "
            "false), so nobody is linked by e-mail on Mattermost; link people by the users.mattermost_user_id_trait "
            "trait on their Teleport user or by users.map")))
    for recipient in wanted:
        if is_email(recipient):
            if hidden:
                outbound.refused_channels[recipient] = "e-mail addresses are hidden"
                found.append(Finding(True, (
                    f"{ROUTES_KEY}: {recipient}: Mattermost hides e-mail addresses (PrivacySettings."
                    "ShowEmailAddress is false), so this DM cannot be opened and is skipped; route to a "
                    "channel (team/channel or a channel ID) instead, or make the person a suggested "
                    "reviewer linked by trait or users.map")))
            continue
        found.extend(await _check_channel(outbound, recipient, join=join))
    return found


async def _check_channel(outbound: MattermostOutbound, recipient: str, *, join: bool) -> list[Finding]:
    try:
        channel = await _find(outbound, recipient)
        if channel is None:
            outbound.refused_channels[recipient] = "no such channel"
            return [Finding(True, (
                f"{ROUTES_KEY}: {recipient}: no channel the bot can see by that name or ID (a private "
                "channel the bot is not in?); invite the bot (/invite @chatops-bot) or fix the name"))]
        channel_id = str(channel["id"])
        if await outbound.is_member(channel_id):
            return []
        if channel.get("type") == "O" and join and await outbound.join(channel_id):
            logger.info("joined Mattermost channel %s (%s) to post request cards there",
                        recipient, channel_id)
            return [Finding(False, f"{ROUTES_KEY}: {recipient}: the bot was not a member; it joined")]
    except (MattermostError, InvalidMattermostError, httpx.HTTPError) as err:
        return [Finding(False, f"{ROUTES_KEY}: {recipient}: cannot check the bot's membership now: {err!r}")]
    kind = "public" if channel.get("type") == "O" else "private"
    outbound.refused_channels[recipient] = outbound.refused_channels[channel_id] = "not a member"
    verb = "was not allowed to join it" if join or kind == "private" else "has not joined it"
    return [Finding(True, (
        f"{ROUTES_KEY}: {recipient}: the bot is not a member of this {kind} channel and {verb}, so it "
        "could post no card there (Mattermost answers 403) and the route is skipped; invite the bot "
        "(/invite @chatops-bot) or remove the route"))]


async def _find(outbound: MattermostOutbound, recipient: str) -> dict[str, object] | None:
    if "/" in recipient:
        team_name, _, channel_name = recipient.partition("/")
        return await outbound.channel_by_name(team_name, channel_name)
    return await outbound.channel(recipient)
