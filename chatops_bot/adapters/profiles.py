"""What a chat platform knows about a person that replies depend on: their e-mail (for `users.match_email`)
and their time zone (times in replies and DMs are shown in it, with UTC beside). Both platforms rate-limit
user lookups, so each answer is remembered for `ttl` seconds; a failed lookup is remembered for a short
while as "unknown" (UTC, no e-mail) rather than asked again on every message."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

TTL = 600.0
FAILED_TTL = 30.0


@dataclass(frozen=True)
class Profile:
    email: str = ""
    tz: str = ""  # IANA name, "" when unknown
    name: str = ""  # the user name, for platforms whose calls may leave it out


Fetch = Callable[[str], Awaitable[Profile]]


class Profiles:
    def __init__(self, fetch: Fetch, *, platform: str, ttl: float = TTL) -> None:
        self.fetch, self.platform, self.ttl = fetch, platform, ttl
        self._known: dict[str, tuple[float, Profile]] = {}

    async def get(self, user_id: str) -> Profile:
        cached = self._known.get(user_id)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        try:
            profile, keep = await self.fetch(user_id), self.ttl
        except Exception as err:  # a platform error or an outage: the reply still goes out, in UTC
            logger.warning("looking up %s user %s failed (%r): no e-mail or time zone for now", self.platform,
                           user_id[:32], err)
            profile, keep = Profile(), FAILED_TTL
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[user_id] = (time.monotonic() + keep, profile)
        return profile

    async def tz(self, user_id: str) -> str:
        return (await self.get(user_id)).tz
