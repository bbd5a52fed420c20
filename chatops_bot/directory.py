"""Chat user -> Teleport user: a trait on the Teleport user first, then `users.map`, then (opt-in) e-mail.

The trait index is built from one `GetUsers` listing and refreshed when it is older than a minute, or
on a miss at most every ten seconds, so a newly linked user works without restarting the bot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from commands import messages
from commands.errors import AccessDenied, NotFound, UnknownUserError
from commands.model import ChatUser, User

logger = logging.getLogger(__name__)

INDEX_MAX_AGE = 60.0
MISS_REFRESH_INTERVAL = 10.0


class TeleportDirectory:
    def __init__(
        self,
        client: object,
        *,
        traits: Mapping[str, str],
        user_map: Mapping[str, str],
        match_email: bool = False,
    ) -> None:
        """`traits` maps a platform ("slack") to the Teleport trait holding its user IDs."""
        self.client = client
        self.traits = dict(traits)
        self.user_map = dict(user_map)
        self.match_email = match_email
        self._index: dict[tuple[str, str], str] = {}
        self._chat_ids: dict[str, dict[str, str]] = {}
        self._built_at = float("-inf")
        self._mapped: dict[str, dict[str, str]] = {}
        for key, teleport_user in self.user_map.items():
            platform, _, chat_id = key.partition(":")
            self._mapped.setdefault(teleport_user, {}).setdefault(platform, chat_id)

    async def teleport_user(self, chat_user: ChatUser) -> str:
        mapped = self.user_map.get(f"{chat_user.platform}:{chat_user.id}")
        trait = self.traits.get(chat_user.platform, "")
        if trait:
            found = await self._by_trait(trait, chat_user.id)
            if found:
                return found
        if mapped:
            return mapped
        if self.match_email and chat_user.email:
            try:
                return (await self.client.get_user(chat_user.email)).name  # type: ignore[attr-defined]
            except NotFound:
                pass
        if chat_user.platform == "console" and not trait:
            # The console is a local operator tool: its user name is taken as the Teleport user name.
            return chat_user.id
        raise UnknownUserError(messages.unknown_user(chat_user, trait))

    async def chat_ids(self, teleport_user: str) -> dict[str, str]:
        """The other way round, for notifications: platform -> chat user ID, the trait first, then the map."""
        if time.monotonic() - self._built_at > INDEX_MAX_AGE:
            await self._rebuild()
        return {**self._mapped.get(teleport_user, {}), **self._chat_ids.get(teleport_user, {})}

    async def _by_trait(self, trait: str, chat_id: str) -> str:
        rebuilt = time.monotonic() - self._built_at > INDEX_MAX_AGE
        if rebuilt:
            await self._rebuild()
        found = self._index.get((trait, chat_id), "")
        if not found and not rebuilt and time.monotonic() - self._built_at > MISS_REFRESH_INTERVAL:
            # Someone linked a moment ago: look again, but at most every few seconds.
            await self._rebuild()
            found = self._index.get((trait, chat_id), "")
        return found

    async def _rebuild(self) -> None:
        try:
            users: list[User] = await self.client.get_users()  # type: ignore[attr-defined]
        except AccessDenied as err:
            logger.warning("cannot list Teleport users to match chat IDs by trait: %s", err.detail)
            users = []
        index: dict[tuple[str, str], str] = {}
        chat_ids: dict[str, dict[str, str]] = {}
        for user in users:
            for platform, trait in self.traits.items():
                values = user.traits.get(trait, ())
                for value in values:
                    index[(trait, value)] = user.name
                if values:
                    chat_ids.setdefault(user.name, {})[platform] = values[0]
        self._index, self._chat_ids = index, chat_ids
        self._built_at = time.monotonic()
