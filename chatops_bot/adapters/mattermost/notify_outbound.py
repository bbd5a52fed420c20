"""The notifier's way out to Mattermost: cards as posts, patched in place and replied to in threads, and DMs.

A message reference is `<channel ID>/<post ID>`: a thread reply needs the channel as well as its root.
Recipients are channel IDs as they are, `team/channel` names (`GET teams/name/…`, then
`GET teams/{id}/channels/name/…`), or an e-mail address, whose DM is opened. Posting goes through
`MattermostOutbound`, which retries what can be retried without posting twice.

A card is patched by props alone, so a DM's message (the text before its card) stays; the props carry
`from_bot` each time, because a patch replaces them whole and the server only adds that prop when a
post is created (api4/post.go `createPost`; app/post.go `UpdatePost` keeps nothing of the old props).
Recipients that the start-up check refused (`preflight.check`) resolve to nothing, so they are skipped.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mattermostautodriver.exceptions import ResourceNotFound

from chatops_bot.adapters.mattermost.outbound import MattermostOutbound
from chatops_bot.adapters.mattermost.render import STATE_FIELD, Renderer, markdown
from chatops_bot.adapters.profiles import Profiles
from commands.reply import Reply, RequestCard

logger = logging.getLogger(__name__)

_ID = re.compile(r"[a-z0-9]{26}")


class MattermostNotifyOutbound:
    platform = "mattermost"

    def __init__(self, outbound: MattermostOutbound, renderer: Renderer, profiles: Profiles | None = None) -> None:
        self.outbound = outbound
        self.renderer = renderer
        self.profiles = profiles or Profiles(outbound.profile, platform="mattermost")
        self._channels: dict[str, str] = {}

    async def post_card(self, recipient: str, card: RequestCard) -> str:
        post = await self.outbound.create_post(recipient, "", props=self._props(card))
        return f"{recipient}/{post['id']}"

    async def update_card(self, ref: str, card: RequestCard) -> None:
        # Props only: a DM's message (the text before its card) stays as it was.
        await self.outbound.patch_post(_split(ref)[1], props=self._props(card))

    async def reply_in_thread(self, ref: str, text: str) -> None:
        channel, root = _split(ref)
        message = self.renderer.reply_post(Reply(text))["message"]
        await self.outbound.create_post(channel, message, root_id=root)

    async def dm(self, chat_user_id: str, text: str, card: RequestCard | None = None) -> str:
        message = self.renderer.reply_post(Reply(text))["message"]
        props = self._props(card) if card is not None else None
        post = await self.outbound.direct_message(chat_user_id, message, props=props)
        return f"{post['channel_id']}/{post['id']}"

    async def time_zone(self, chat_user_id: str) -> str:
        return await self.profiles.tz(chat_user_id)

    async def resolve_recipient(self, name: str) -> str | None:
        wanted = name.strip()
        if wanted in self.outbound.refused_channels:
            return None
        if _ID.fullmatch(wanted):
            return wanted
        if wanted not in self._channels:
            found = await self._lookup(wanted)
            if found is None:
                return None
            self._channels[wanted] = found
        found = self._channels[wanted]
        return None if found in self.outbound.refused_channels else found

    async def _lookup(self, name: str) -> str | None:
        driver = self.outbound.driver
        try:
            if "@" in name:
                user = await self.outbound.user_by_email(name)
                return await self.outbound.direct_channel(str(user["id"])) if user else None
            team_name, _, channel_name = name.partition("/")
            team = await driver.teams.get_team_by_name(team_name)
            channel = await driver.channels.get_channel_by_name(team["id"], channel_name)
            return str(channel["id"])
        except ResourceNotFound:
            return None

    def _props(self, card: RequestCard) -> dict[str, Any]:
        props: dict[str, Any] = self.renderer.card_post(card)["props"]
        props["from_bot"] = "true"  # the post's BOT badge, which a patch would otherwise drop
        # The renderer words the state from the request; the card's State field is what the notifier
        # means (e.g. "Expired" for a request Teleport no longer has), so that is what the post says.
        state = next((f.value for f in card.fields if f.label == STATE_FIELD), None)
        if state is not None:
            for attachment in props["attachments"]:
                attachment["text"] = f"**{markdown(state)}**"
        return props


def _split(ref: str) -> tuple[str, str]:
    channel, _, post_id = ref.partition("/")
    if not channel or not post_id:
        raise ValueError(f"not a Mattermost message reference: {ref!r}")
    return channel, post_id
