"""Chat user -> Teleport user: a trait on the Teleport user first, then `users.map`, then (opt-in) e-mail.

The trait index holds every Teleport user with a linking trait. When the watcher runs beside it
(`follow`), it is built from the watcher's `ListUsers` listing after every (re)connect and kept current by
the `user` events on the watch stream the watcher already holds: a user linked a moment ago works within
the second the event takes, and nothing lists every user again while the stream is up. Without a
watcher (the console), or while its stream is down, the index is listed again when it is older than a
minute, or on a miss at most every ten seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping

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
        self.traits = {platform: trait for platform, trait in traits.items() if trait}
        self.user_map = dict(user_map)
        self.match_email = match_email
        self.stream: asyncio.Event | None = None  # the watcher's `synced`, once it follows
        self._linked: dict[str, dict[str, tuple[str, ...]]] = {}  # user -> trait -> values
        self._index: dict[tuple[str, str], str] = {}
        self._built_at = float("-inf")
        self._mapped: dict[str, dict[str, str]] = {}
        for key, teleport_user in self.user_map.items():
            platform, _, chat_id = key.partition(":")
            self._mapped.setdefault(teleport_user, {}).setdefault(platform, chat_id)

    # --- look-ups ---------------------------------------------------------------------------------

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
        if not self._following and time.monotonic() - self._built_at > INDEX_MAX_AGE:
            await self._rebuild()
        linked = self._linked.get(teleport_user, {})
        found = {platform: linked[trait][0] for platform, trait in self.traits.items() if linked.get(trait)}
        return {**self._mapped.get(teleport_user, {}), **found}

    async def _by_trait(self, trait: str, chat_id: str) -> str:
        if self._following:
            return self._index.get((trait, chat_id), "")
        rebuilt = time.monotonic() - self._built_at > INDEX_MAX_AGE
        if rebuilt:
            await self._rebuild()
        found = self._index.get((trait, chat_id), "")
        if not found and not rebuilt and time.monotonic() - self._built_at > MISS_REFRESH_INTERVAL:
            # Someone linked a moment ago and no watch stream told us: look again, but at most every
            # few seconds.
            await self._rebuild()
            found = self._index.get((trait, chat_id), "")
        return found

    # --- keeping the index --------------------------------------------------------------------------

    def follow(self, synced: asyncio.Event) -> None:
        """Trust the index while `synced` (the watcher's) is set: its resyncs and user events keep it."""
        self.stream = synced

    @property
    def _following(self) -> bool:
        return self.stream is not None and self.stream.is_set() and self._built_at > float("-inf")

    @property
    def watches_users(self) -> bool:
        """Whether the watcher should watch users for this directory (only when a trait links them)."""
        return bool(self.traits)

    def users_resynced(self, users: Iterable[User]) -> None:
        """Every Teleport user, listed after a (re)connect of the watch stream."""
        self._linked, self._index = {}, {}
        for user in users:
            self.user_put(user)
        self._built_at = time.monotonic()

    def user_put(self, user: User) -> None:
        """A user created or changed (a `user` event): its old links go, its new ones count at once."""
        self.user_deleted(user.name)
        links = {trait: user.traits[trait] for trait in self.traits.values() if user.traits.get(trait)}
        if not links:
            return
        self._linked[user.name] = links
        for trait, values in links.items():
            for value in values:
                self._index[(trait, value)] = user.name

    def user_deleted(self, name: str) -> None:
        for trait, values in self._linked.pop(name, {}).items():
            for value in values:
                if self._index.get((trait, value)) == name:
                    del self._index[(trait, value)]

    async def _rebuild(self) -> None:
        try:
            users: list[User] = await self.client.list_users()  # type: ignore[attr-defined]
        except AccessDenied as err:
            logger.warning("cannot list Teleport users to match chat IDs by trait: %s", err.detail)
            users = []
        self.users_resynced(users)
