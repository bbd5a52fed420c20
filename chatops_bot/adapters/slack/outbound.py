"""The notifier's way out to Slack: cards posted, updated in place and answered in their thread, and DMs.

A message reference is `<channel ID>/<ts>`, which is all `chat.update` and `thread_ts` need. Recipients
are channel IDs as they are, `#name` or `name` looked up with `conversations.list` (needs the
`channels:read` scope, and `groups:read` for private channels; refreshed at most once a minute while a
name is missing), or a member's ID, whose DM is opened. The client's retry
handlers (see `delivery.retry_handlers`) already retry 429s, 5xx and lost connections.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from functools import partial

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from chatops_bot.adapters.profiles import Profile, Profiles
from chatops_bot.adapters.slack import render
from commands.reply import Reply, RequestCard

logger = logging.getLogger(__name__)

_CONVERSATION_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
_MEMBER_ID = re.compile(r"[UW][A-Z0-9]{6,}")
LIST_PAGE_SIZE = 200
# conversations.list is Tier 2 (about 20 calls a minute): a name still missing waits this long to be asked.
NAMES_REFRESH = 60.0


async def slack_profile(client: AsyncWebClient, user_id: str) -> Profile:
    """`users.info` (Tier 4): the profile e-mail (`users:read.email`) and the IANA time zone (`tz`)."""
    answer = await client.users_info(user=user_id)
    data = answer.data if isinstance(answer.data, dict) else {}
    user = data.get("user") if isinstance(data.get("user"), dict) else {}
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    return Profile(email=str(profile.get("email") or ""), tz=str(user.get("tz") or ""))


class SlackOutbound:
    platform = "slack"

    def __init__(self, client: AsyncWebClient, profiles: Profiles | None = None) -> None:
        self.client = client
        self.profiles = profiles or Profiles(partial(slack_profile, client), platform="slack")
        self._names: dict[str, str] = {}
        self._names_at = float("-inf")
        self._listing = asyncio.Lock()
        self._dms: dict[str, str] = {}

    async def post_card(self, recipient: str, card: RequestCard) -> str:
        answer = await self.client.chat_postMessage(channel=recipient, **render.card_message(card))
        return _ref(answer)

    async def update_card(self, ref: str, card: RequestCard) -> None:
        channel, ts = _split(ref)
        await self.client.chat_update(channel=channel, ts=ts, **render.card_message(card))

    async def reply_in_thread(self, ref: str, text: str) -> None:
        channel, ts = _split(ref)
        await self.client.chat_postMessage(channel=channel, thread_ts=ts, **render.message(Reply(text)))

    async def time_zone(self, chat_user_id: str) -> str:
        return await self.profiles.tz(chat_user_id)

    async def dm(self, chat_user_id: str, text: str, card: RequestCard | None = None) -> str:
        """`text`, then the card as a message of its own, so that updating the card leaves the text be."""
        channel = await self._dm_channel(chat_user_id)
        answer = await self.client.chat_postMessage(channel=channel, **render.message(Reply(text)))
        if card is None:
            return _ref(answer)
        return await self.post_card(channel, card)

    async def resolve_recipient(self, name: str) -> str | None:
        wanted = name.strip()
        if _CONVERSATION_ID.fullmatch(wanted):
            return wanted
        if _MEMBER_ID.fullmatch(wanted):
            try:
                return await self._dm_channel(wanted)
            except SlackApiError as err:
                logger.warning("Slack cannot open a DM with %s: %s", wanted, _error(err))
                return None
        wanted = wanted.removeprefix("#")
        async with self._listing:  # callers at the same time wait for one listing, not "no such channel"
            if wanted not in self._names and time.monotonic() - self._names_at > NAMES_REFRESH:
                self._names_at = time.monotonic()  # a failing listing is not retried for every request either
                self._names = await self._channel_names()
        return self._names.get(wanted)

    async def _dm_channel(self, user_id: str) -> str:
        if user_id not in self._dms:
            answer = await self.client.conversations_open(users=user_id)
            self._dms[user_id] = str(answer["channel"]["id"])
        return self._dms[user_id]

    async def _channel_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        cursor = ""
        while True:
            answer = await self.client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=LIST_PAGE_SIZE,
                cursor=cursor or None,
            )
            for channel in answer.get("channels") or []:
                names[str(channel.get("name", ""))] = str(channel["id"])
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return names


def _ref(answer: AsyncSlackResponse) -> str:
    return f"{answer['channel']}/{answer['ts']}"


def _split(ref: str) -> tuple[str, str]:
    channel, _, ts = ref.partition("/")
    if not channel or not ts:
        raise ValueError(f"not a Slack message reference: {ref!r}")
    return channel, ts


def _error(err: SlackApiError) -> str:
    return str(err.response.get("error", "")) if err.response is not None else str(err)
